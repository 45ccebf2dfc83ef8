"""The ``bondhu`` command: data, train, export, evaluate, chat and serve."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from bondhu.chat import cli as chat_cli
from bondhu.config import BondhuConfig, load_config
from bondhu.errors import BondhuError
from bondhu.evaluate import cli as evaluate_cli
from bondhu.safety.cli import safety_app
from bondhu.serve import cli as serve_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Bondhu: an empathetic Bengali LLaMA 3.1 chatbot.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect conversation data.")
app.add_typer(data_app, name="data")
app.add_typer(safety_app, name="safety")
console = Console()
err_console = Console(stderr=True)

DEFAULT_PRESET = "tiny-cpu"
REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_config_path(config: str | None) -> Path | None:
    """A path, or a preset name from configs/ (``tiny-cpu``, ``llama31-8b-t4``, ...)."""
    if config is None:
        config = DEFAULT_PRESET
    p = Path(config)
    if p.is_file():
        return p
    for base in (Path("configs"), REPO_ROOT / "configs"):
        candidate = base / f"{config}.yaml"
        if candidate.is_file():
            return candidate
    return p  # load_config reports it as not found


def get_config(config: str | None, overrides: list[str] | None) -> BondhuConfig:
    return load_config(resolve_config_path(config), overrides)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("bondhu").setLevel(logging.INFO)
    # torchao (imported by transformers whenever it is installed) warns about its optional GPU
    # kernels on every CPU-only start, and torch about torchao's enum registrations.
    for noisy in (
        "transformers",
        "datasets",
        "trl",
        "bitsandbytes",
        "peft",
        "accelerate",
        "httpx",
        "torchao",
        "torch.utils._pytree",
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not verbose:  # Bondhu draws its own progress; the libraries' per-file bars are noise here
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def _counts_table(title: str, counts: dict, column: str = "reason") -> Table:
    table = Table(title=title)
    table.add_column(column)
    table.add_column("records", justify="right")
    for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(n))
    return table


def _print_report(report: dict) -> None:
    console.print(f"read {report['read']}, kept {report['kept']}, skipped {report['skipped_total']}")
    for key, title in (("skipped", "skipped records"), ("changed", "changed records"), ("flagged", "flagged records")):
        if report[key]:
            console.print(_counts_table(title, report[key]))


# ---------------------------------------------------------------------- data
@data_app.command("prepare")
def data_prepare(
    input: str = typer.Argument(..., help="JSONL/JSON/CSV/Parquet file, saved dataset folder, or Hub dataset id"),
    output: Path = typer.Option(
        Path("runs/prepared"), "--output", "-o", help="Folder for dataset/, conversations.jsonl, report.json"
    ),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config file or preset (default: tiny-cpu)"),
    fmt: Optional[str] = typer.Option(None, "--format", help="auto, native, messages, sharegpt or becc"),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first invalid record (exit code 2)"),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides"),
):
    """Clean, template and tokenize conversations; skipped records are counted by reason."""
    from bondhu.data.processor import DatasetProcessor
    from bondhu.train.loading import load_tokenizer

    extra = list(overrides or []) + ([f"data.format={fmt}"] if fmt else [])
    cfg = get_config(config, extra)
    processor = DatasetProcessor(load_tokenizer(cfg.model), cfg.data, cfg.model.pad_token)
    prepared = processor.prepare(input, strict=strict)
    out = prepared.save(output)
    _print_report(prepared.report.to_json())
    console.print(f"wrote {len(prepared.rows)} conversations to {out}/ (report: {out / 'report.json'})")


@data_app.command("inspect")
def data_inspect(
    input: str = typer.Argument(..., help="Conversation file, folder or Hub id"),
    config: Optional[str] = typer.Option(None, "--config", "-c"),
    output: Path = typer.Option(Path("runs/inspect"), "--output", "-o", help="Folder for stats.json and lengths.png"),
    overrides: Optional[List[str]] = typer.Argument(None),
):
    """Counts, emotions, token-length percentiles, tokens per word, and a histogram PNG."""
    from bondhu.data.inspect import dataset_stats, plot_lengths
    from bondhu.data.processor import DatasetProcessor
    from bondhu.train.loading import load_tokenizer

    cfg = get_config(config, overrides)
    tokenizer = load_tokenizer(cfg.model)
    prepared = DatasetProcessor(tokenizer, cfg.data, cfg.model.pad_token).prepare(input)
    stats = dataset_stats(prepared, tokenizer)
    output.mkdir(parents=True, exist_ok=True)
    png = plot_lengths([r["length"] for r in prepared.rows], output / "lengths.png")
    (output / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), "utf-8")
    table = Table(title=f"{input}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    table.add_row("conversations", str(stats["conversations"]))
    table.add_row("user turns", f"{stats['user_turns']} ({stats['turns_per_conversation']} per conversation)")
    for k, v in stats["token_length"].items():
        table.add_row(f"tokens {k}", str(v))
    table.add_row("tokens per word", str(stats["tokens_per_word"]))
    table.add_row("characters per token", str(stats["chars_per_token"]))
    table.add_row("tokenizer", str(stats["tokenizer"]))
    console.print(table)
    console.print(_counts_table("emotions", stats["emotions"], "emotion"))
    console.print(f"histogram: {png}")


@data_app.command("audit")
def data_audit(
    files: List[Path] = typer.Argument(..., help="JSONL splits, each named by its stem (train.jsonl → train)"),
    output: Path = typer.Option(Path("runs/audit"), "--output", "-o", help="Folder for audit.json and audit.png"),
    calques: Optional[Path] = typer.Option(None, "--calques", help="Your own list of phrases to count, one a line"),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the bundled dataset's targets are missed"),
):
    """What a conversation set teaches: question habits, lengths, openers, scripts, calques, leaks between splits."""
    from bondhu.data.audit import audit, plot
    from bondhu.safety import CrisisDetector

    phrases = None
    if calques is not None:
        if not calques.is_file():
            raise BondhuError(f"{calques}: calque list not found")
        phrases = [
            ln.strip() for ln in calques.read_text("utf-8").splitlines() if ln.strip() and not ln.startswith("#")
        ]
    report = audit([str(f) for f in files], phrases, CrisisDetector().highest_level)
    output.mkdir(parents=True, exist_ok=True)
    (output / "audit.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), "utf-8")
    plot(report, output / "audit.png")
    _print_audit(report)
    console.print(f"report: {output / 'audit.json'}, {output / 'audit.png'}")
    if strict and report["targets_missed"]:
        raise BondhuError("targets missed: " + "; ".join(report["targets_missed"]))


def _print_audit(report: dict) -> None:
    table = Table(title="audit")
    for col in (
        "split",
        "conversations",
        "ends with ?",
        "no ?",
        "reply chars p10/p50/p90",
        "romanized/mixed",
        "practical*",
        "calques",
        "risk told",
    ):
        table.add_column(col)
    for name, s in {**report["splits"], "all": report["overall"]}.items():
        r = s["reply_chars"]
        told = sum(v for k, v in s.get("risk", {}).get("levels", {}).items() if k != "none")
        table.add_row(
            name,
            str(s["conversations"]),
            f"{s['question_ending']:.0%}",
            f"{s['no_question']:.0%}",
            f"{r['p10']}/{r['p50']}/{r['p90']}",
            f"{s['conversations_with_romanized_or_mixed_users']:.0%}",
            f"{s['practical_requests_heuristic']:.0%}",
            str(sum(s["calques"].values())),
            str(told),
        )
    console.print(table)
    x = report["cross_split"]
    console.print(
        f"across splits: {len(x['shared_scenarios'])} shared scenarios, {len(x['near_copies'])} near-copies; "
        f"8-gram overlap with train {x['ngram_overlap_with_train']}  (* a word-list heuristic)"
    )
    for line in report["targets_missed"]:
        console.print(f"[yellow]target missed:[/] {line}")


@data_app.command("split")
def data_split(
    inputs: List[Path] = typer.Argument(..., help="Native-format JSONL files to pool"),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for train/validation/test.jsonl"),
    seed: int = typer.Option(0, help="Changes which conversations land in each split"),
):
    """Pool conversations, normalize their text, and write 80/10/10 splits stratified by emotion."""
    from bondhu.data.splits import pool_records, write_splits

    records = pool_records(inputs)
    sizes = write_splits(records, output, seed)
    console.print(f"{len(records)} conversations → " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


# ---------------------------------------------------------------------- train
@app.command()
def train(
    config: Optional[str] = typer.Argument(None, help="Config file or preset (default: tiny-cpu)"),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. training.epochs=2"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint"),
    num_processes: Optional[int] = typer.Option(None, "--num-processes", help="Data-parallel processes (accelerate)"),
):
    """Fine-tune with LoRA/QLoRA and write runs/<name>/."""
    extra = list(overrides or [])
    if num_processes:
        extra.append(f"training.num_processes={num_processes}")
    cfg = get_config(config, extra)
    from bondhu.train.distributed import in_launched_process, launch

    if cfg.training.num_processes > 1 and not in_launched_process():
        sys.exit(launch(resolve_config_path(config), extra, resume, cfg.training.num_processes))
    from bondhu.train.finetuner import LLAMAFineTuner

    summary = LLAMAFineTuner(cfg).train(resume=resume)
    if not summary:
        return
    console.print(f"strategy [bold]{summary['strategy']}[/]: {summary['strategy_reason']}")
    console.print(
        summary["plan"]["description"]
        + "".join(
            f"\n  (fell back from {f['from']} at step {f['at_step']}: out of memory)" for f in summary["plan_fallbacks"]
        )
    )
    loss = (
        f"loss {summary['first_loss']:.3f} → {summary['last_loss']:.3f}, " if summary["first_loss"] is not None else ""
    )
    steady = summary["tokens_per_second_after_warmup"]
    speed = f"{summary['tokens_per_second'] or 0:,.0f} tokens/s" + (
        f" ({steady:,.0f} after {summary['warmup_steps_excluded']} warm-up steps)" if steady else ""
    )
    console.print(f"{summary['steps']} steps, {loss}{speed}, padding-free {summary['padding_free_on']}")
    if summary["interrupted"]:
        console.print(f"interrupted: checkpoint saved; continue with `bondhu train {config or ''} --resume`")
        sys.exit(130)
    console.print(f"run directory: {cfg.run_dir}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run directory (runs/<name>)"),
    merged: bool = typer.Option(False, "--merged", help="Merge the adapter into 16-bit weights (RUN/merged)"),
    gguf: Optional[str] = typer.Option(
        None, "--gguf", help="GGUF types for llama.cpp and Ollama, comma-separated: f16, q8_0, q4_k_m, ... (RUN/gguf)"
    ),
    report: bool = typer.Option(False, "--report", help="With --gguf: each file's perplexity, into report.json"),
    report_samples: int = typer.Option(16, "--report-samples", min=1, help="Conversations --report scores"),
    output: Optional[Path] = typer.Option(None, "--output", "-o"),
    dtype: str = typer.Option("auto", help="The merge's precision: bfloat16, float16, float32 or auto"),
):
    """Export a run: the merged 16-bit model (``--merged``) for vLLM or plain transformers, and GGUF
    files (``--gguf``) with an Ollama Modelfile."""
    from bondhu.export import export_gguf, export_merged, parse_types

    if not merged and not gguf:
        raise BondhuError(
            "nothing to export: pass --merged or --gguf TYPE[,TYPE...] (the adapter itself is already in RUN/adapter)"
        )
    if merged and gguf and output:
        raise BondhuError("--output names one folder: export --merged and --gguf in two commands")
    if report and not gguf:
        raise BondhuError("--report scores GGUF files: pass --gguf too")
    types = parse_types(gguf) if gguf else []  # an unknown type fails here, before the model loads
    if merged:
        console.print(f"merged model written to {export_merged(run, output, dtype)}")
    if types:
        done = export_gguf(run, types, output, dtype, report, report_samples)
        _print_gguf(done)


def _print_gguf(done) -> None:
    table = Table(title=f"GGUF files in {done.folder}")
    for col in ("type", "file", "MiB") + (("perplexity", "× f16") if done.report else ()):
        table.add_column(col)
    figures = done.report["files"] if done.report else {}
    for kind, path in done.files.items():
        row = [kind, path.name, f"{path.stat().st_size / 2**20:,.1f}"]
        if kind in figures:
            row += [f"{figures[kind]['perplexity']:.3f}", f"{figures[kind]['ratio_to_f16']:.3f}"]
        table.add_row(*row)
    console.print(table)
    if "f16" in figures and "f16" not in done.files:
        console.print(f"f16 (written to quantize from, not kept): perplexity {figures['f16']['perplexity']:.3f}")
    for kind, (fell_back, total) in done.fallbacks.items():
        console.print(
            f"[yellow]{kind}:[/] {fell_back} of {total} tensors have rows the type's blocks do not divide "
            "and were stored in another type (llama.cpp's fallback)"
        )
    console.print(f"Ollama: ollama create bondhu -f {done.modelfile}  (see {done.readme})")


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    verbose = "-v" in sys.argv or "--verbose" in sys.argv
    sys.argv = [a for a in sys.argv if a not in ("-v", "--verbose")]
    _setup_logging(verbose)
    try:
        app(standalone_mode=False)
    except BondhuError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except typer.Exit as done:
        sys.exit(getattr(done, "exit_code", getattr(done, "code", 0)) or 0)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as err:  # the last line of defence: still no traceback unless asked
        import click

        if type(err).__name__ == "BadParameter" and hasattr(err, "format_message"):
            err_console.print(f"[bold red]error:[/] {err.format_message()}", highlight=False, soft_wrap=True)
            sys.exit(2)
        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        if os.environ.get("BONDHU_DEBUG"):
            raise
        err_console.print(
            f"[bold red]error:[/] {type(err).__name__}: {err} (set BONDHU_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


# The front ends own their commands; they are registered here, top-down.
app.command()(chat_cli.chat)
app.command()(evaluate_cli.evaluate)
app.command()(serve_cli.serve)

if __name__ == "__main__":
    main()
