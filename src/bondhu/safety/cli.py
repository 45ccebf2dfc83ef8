"""`bondhu safety check | eval | train`: the crisis detector from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

safety_app = typer.Typer(
    no_args_is_help=True, help="Check messages for crisis risk, score a labelled set, rebuild the classifier."
)
console = Console()
DATA = Path("data/safety")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


@safety_app.command("check")
def check(
    text: str = typer.Argument(..., help="The newest user message"),
    history: Optional[List[str]] = typer.Option(
        None, "--history", "-H", help="An earlier user message (repeatable, oldest first)"
    ),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="A model file from `bondhu safety train`"),
):
    """Print the level (crisis, concern, none), the category and the reasons."""
    from bondhu.safety import classifier as clf
    from bondhu.safety.detector import CrisisDetector

    detector = CrisisDetector(clf.load(classifier) if classifier else None)
    a = detector.assess_conversation([*(history or []), text])
    console.print(f"level: [bold]{a.level}[/]" + (f" ({a.category})" if a.category else ""), highlight=False)
    console.print(f"script: {a.script}   risk score: {a.score:.2f}" + ("   elevated: yes" if a.elevated else ""))
    for reason in a.reasons:
        console.print(f"  - {reason}", highlight=False)


def _table(title: str, rows: dict) -> Table:
    table = Table(title=title)
    for col in ("", "n", "recall", "crisis false alarms", "any false alarms"):
        table.add_column(col, justify="left" if not col else "right")
    for name, r in rows.items():
        table.add_row(name, str(r["n"]), _pct(r["recall"]), _pct(r["crisis_false_alarms"]), _pct(r["any_false_alarms"]))
    return table


@safety_app.command("eval")
def evaluate(
    file: Path = typer.Argument(..., help="A labelled set: TSV (data/safety/*.tsv) or JSONL"),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="A model file from `bondhu safety train`"),
    output: Optional[Path] = typer.Option(None, "--json", help="Also write the whole report as JSON"),
):
    """Recall of crisis + concern and false alarms, overall, per script and per category; every miss."""
    from bondhu.safety import classifier as clf
    from bondhu.safety.detector import CrisisDetector
    from bondhu.safety.evalset import load_set, report

    examples = load_set(file)
    detector = CrisisDetector(clf.load(classifier) if classifier else None)
    levels = [detector.assess_conversation(e.turns).level for e in examples]
    out = report(examples, levels)
    console.print(
        _table(
            f"{file} · {len(examples)} messages",
            {"all": out["overall"], **out["by_script"], "multi-turn": out["multi_turn"]},
        )
    )
    console.print(_table("per category", out["by_category"]))
    if out["method_as_crisis"] is not None:
        console.print(f"method with intent answered as crisis: {_pct(out['method_as_crisis'])}")
    for title, key in (
        ("misses", "misses"),
        ("false alarms", "false_alarms"),
        ("method not crisis", "method_not_crisis"),
    ):
        if out[key]:
            console.print(f"[bold]{title}[/] ({len(out[key])}):")
            for m in out[key]:
                console.print(
                    f"  {m['where']} [{m.get('category', 'method')}, got {m['got']}] {m['text']}",
                    highlight=False,
                    markup=False,
                )
    if output:
        output.write_text(json.dumps(out, ensure_ascii=False, indent=2), "utf-8")
        console.print(f"report: {output}")


@safety_app.command("train")
def train(
    train_file: Path = typer.Option(DATA / "train.tsv", "--train", help="Training set"),
    dev_file: Path = typer.Option(DATA / "dev.tsv", "--dev", help="Development set, for the thresholds"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Model file (default: the bundled one)"),
    seed: int = typer.Option(0, "--seed"),
    target_recall: Optional[float] = typer.Option(
        None, "--target-recall", min=0.5, max=1.0, help="Recall asked of the threshold search (default: build's)"
    ),
    folds: Optional[int] = typer.Option(
        None, "--folds", min=2, help="Development blocks, each judged by a model fitted without it (default 5)"
    ),
):
    """Rebuild the classifier from the training and development sets; thresholds come from the
    development set's out-of-fold predictions."""
    import time

    from bondhu.safety import classifier as clf
    from bondhu.safety.build import FOLDS, TARGET_RECALL, build
    from bondhu.safety.evalset import load_set

    start = time.perf_counter()
    model, figures = build(
        load_set(train_file), load_set(dev_file), seed, target_recall or TARGET_RECALL, folds or FOLDS
    )
    path = model.save(output or clf.bundled_path())
    size = path.stat().st_size / 2**20
    console.print(
        f"trained on {model.meta['n_train']} messages in {time.perf_counter() - start:.1f} s; "
        f"thresholds concern {figures['concern_at']:.2f}, crisis {figures['crisis_at']:.2f}"
    )
    d = figures["detector"]
    console.print(
        f"development, out of fold, as chat runs it: recall {_pct(d['recall'])} (multi-turn "
        f"{_pct(d['multi_turn_recall'])}), crisis false alarms {_pct(d['crisis_false_alarms'])}, any false alarms "
        f"{_pct(d['any_false_alarms'])}, method with intent as crisis {_pct(d['method_as_crisis'])}"
    )
    console.print(f"written {path} ({size:.2f} MB)")
