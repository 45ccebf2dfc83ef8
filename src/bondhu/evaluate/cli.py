"""`bondhu evaluate RUN`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from bondhu.run import RunDir

console = Console()


def evaluate(
    run: Path = typer.Argument(..., help="Run directory (runs/<name>)"),
    base: Optional[bool] = typer.Option(None, "--base/--no-base", help="Also score the base model (default: config)"),
    split: Optional[str] = typer.Option(None, "--split", help="train, validation or test (default: test)"),
    max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1),
    backend: str = typer.Option("auto", "--backend", help="auto, hf, unsloth or fast"),
):
    """Perplexity, BLEU, chrF++, ROUGE, distinct-n, length and Bengali share; writes RUN/eval/."""
    from bondhu.evaluate.evaluator import Evaluator
    from bondhu.evaluate.report import table_rows

    out = Evaluator(run, split, max_samples, base, backend).evaluate()
    table = Table(title=f"{run} · {out['split']} · {out['samples']} conversations")
    table.add_column("metric")
    for m in out["results"]:
        table.add_column(m, justify="right")
    for row in table_rows(out["results"]):
        table.add_row(*row)
    console.print(table)
    console.print(f"BLEU signature: {out['signatures']['bleu']}")
    console.print(f"report: {RunDir(run).eval / 'report.md'}")
