"""What a finished run leaves behind: loss.csv, loss.png and summary.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_loss_csv(log_history: list[dict], path: Path) -> list[dict]:
    """One row per logged step with training and validation loss (blank where absent)."""
    rows: dict[int, dict] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None or ("loss" not in entry and "eval_loss" not in entry):
            continue
        row = rows.setdefault(
            step, {"step": step, "epoch": entry.get("epoch", ""), "loss": "", "eval_loss": "", "learning_rate": ""}
        )
        for key in ("loss", "eval_loss", "learning_rate"):
            if key in entry:
                row[key] = entry[key]
    ordered = [rows[s] for s in sorted(rows)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", "loss", "eval_loss", "learning_rate"])
        writer.writeheader()
        writer.writerows(ordered)
    return ordered


def plot_loss(rows: list[dict], path: Path, title: str) -> None:
    try:
        import matplotlib
    except ImportError:  # a trimmed environment (e.g. a benchmark machine): the CSV still has everything
        import logging

        logging.getLogger(__name__).warning("matplotlib is not installed: skipping %s", path)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(r["step"], r["loss"]) for r in rows if r["loss"] != ""]
    val = [(r["step"], r["eval_loss"]) for r in rows if r["eval_loss"] != ""]
    if train:
        ax.plot(*zip(*train), label="train", color="#2a7f62")
    if val:
        ax.plot(*zip(*val), "o-", label="validation", color="#c0392b")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_title(title)
    if train or val:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(path: Path, summary: dict) -> None:
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")


def peak_memory_gib() -> dict:
    """Peak GPU memory allocated (CUDA) or peak resident memory of this process (CPU)."""
    import resource

    import torch

    out = {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if torch.cuda.is_available():
        out["peak_gpu_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        out["peak_gpu_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    return out
