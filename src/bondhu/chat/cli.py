"""`bondhu chat RUN`: an interactive Bengali chat in the terminal, or one answer with --message."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()

HELP = "/reset নতুন করে শুরু · /save FILE কথোপকথন সংরক্ষণ · /exit বের হও · Ctrl-C উত্তর থামায়"


def _print_stream(session, text: str, **overrides) -> None:
    stop = threading.Event()
    try:
        for piece in session.send(text, stop=stop, **overrides):
            console.print(piece, end="", highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        stop.set()
        console.print(" [dim](থামানো হলো)[/]", end="")
    console.print()


def chat(
    run: Path = typer.Argument(..., help="Run directory, or a merged export"),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Answer once and exit (for scripts)"),
    backend: str = typer.Option("auto", "--backend", help="auto, hf, unsloth or fast"),
    temperature: Optional[float] = typer.Option(None, min=0.0, max=2.0),
    top_p: Optional[float] = typer.Option(None, min=0.0, max=1.0),
    max_new_tokens: Optional[int] = typer.Option(None, min=1),
    repetition_penalty: Optional[float] = typer.Option(None, min=1.0, max=2.0),
    seed: Optional[int] = typer.Option(None),
):
    """Talk to a trained run in Bengali; every message passes the crisis-safety layer first."""
    from bondhu.chat.session import ChatSession

    overrides = dict(
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty,
        seed=seed,
    )
    session = ChatSession.from_run(run, backend=backend)
    if message is not None:
        _print_stream(session, message, **overrides)
        return
    console.print(f"[bold]বন্ধু[/] · {HELP}\n[dim]এটি একটি এআই, কোনো কাউন্সেলর নয়।[/]")
    while True:
        try:
            text = console.input("[bold green]তুমি:[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            session.reset()
            console.print("[dim]নতুন কথোপকথন শুরু হলো।[/]")
            continue
        if text.startswith("/save"):
            target = text[5:].strip() or "bondhu-chat.json"
            console.print(f"[dim]সংরক্ষিত: {session.save(target)}[/]")
            continue
        console.print("[bold]বন্ধু:[/] ", end="")
        _print_stream(session, text, **overrides)
