"""Evaluation outputs: metrics.json, report.md, metrics.png and generations.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

ROWS = [
    ("perplexity", "Perplexity ↓", "{:.2f}"),
    ("bleu", "BLEU", "{:.2f}"),
    ("chrf++", "chrF++", "{:.2f}"),
    ("rouge1", "ROUGE-1 F1", "{:.3f}"),
    ("rouge2", "ROUGE-2 F1", "{:.3f}"),
    ("rougeL", "ROUGE-L F1", "{:.3f}"),
    ("distinct1", "distinct-1", "{:.3f}"),
    ("distinct2", "distinct-2", "{:.3f}"),
    ("mean_words", "mean words", "{:.1f}"),
    ("mean_tokens", "mean tokens", "{:.1f}"),
    ("bengali_ratio", "Bengali script share", "{:.3f}"),
]


def table_rows(results: dict) -> list[list[str]]:
    models = list(results)
    rows = []
    for key, label, fmt in ROWS:
        rows.append([label] + [fmt.format(results[m][key]) if results[m].get(key) is not None else "–" for m in models])
    return rows


def _markdown(out: dict, samples) -> str:
    models = list(out["results"])
    lines = [
        f"# Evaluation of `{out['run']}`",
        "",
        f"Split `{out['split']}`, {out['samples']} conversations; model `{out['model']}`, "
        f"adapter `{out['adapter']}`, backend `{out['backend']}`.",
        "",
        "| metric | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(out["results"])]
    sig = out["signatures"]
    lines += [
        "",
        f"- BLEU: sacrebleu `{sig['bleu']}`",
        f"- chrF++: sacrebleu `{sig['chrf++']}`",
        f"- Tokenization: {sig['tokenization']}",
        "- ROUGE: F1 over Unicode word tokens (Bengali words kept, punctuation dropped), no stemming.",
        "- Perplexity: token-weighted over the assistant's tokens of each full conversation.",
        f"- Decoding: {json.dumps(out['generation'])}",
    ]
    if out["skipped"]:
        lines += [f"- Skipped: {json.dumps(out['skipped'], ensure_ascii=False)}"]
    lines += ["", "## Samples", ""]
    for s in samples[:10]:
        lines += [f"### {s.id} ({s.emotion or '–'})", ""]
        for m in s.history:
            lines.append(f"> **{m['role']}**: {m['content']}  ")
        lines += ["", f"- **reference**: {s.reference}"]
        for name in models:
            lines.append(f"- **{name}**: {s.replies.get(name, '')}")
        lines.append("")
    return "\n".join(lines)


def _plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [
        ("bleu", "BLEU/100"),
        ("chrf++", "chrF++/100"),
        ("rouge1", "ROUGE-1"),
        ("rougeL", "ROUGE-L"),
        ("distinct2", "distinct-2"),
        ("bengali_ratio", "Bengali share"),
    ]
    models = list(out["results"])
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        vals = [out["results"][m][k] / (100 if k in ("bleu", "chrf++") else 1) for k, _ in keys]
        ax.bar(x + i * width, vals, width, label=m)
    ax.set_xticks(x + width * (len(models) - 1) / 2, [label for _, label in keys])
    ax.set_ylim(0, 1)
    ax.set_title(f"{Path(out['run']).name}: {out['split']} split")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(eval_dir: Path, out: dict, samples) -> None:
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "metrics.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), "utf-8")
    (eval_dir / "report.md").write_text(_markdown(out, samples), "utf-8")
    with open(eval_dir / "generations.jsonl", "w", encoding="utf-8") as f:
        for s in samples:
            f.write(
                json.dumps(
                    {
                        "id": s.id,
                        "emotion": s.emotion,
                        "history": s.history,
                        "reference": s.reference,
                        "replies": s.replies,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    _plot(out, eval_dir / "metrics.png")
