"""Dataset statistics: what a user checks before spending GPU hours."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from bondhu.data.processor import Prepared


def percentiles(values: list[int]) -> dict:
    if not values:
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0}
    arr = np.asarray(values)
    return {
        "p50": int(np.percentile(arr, 50)),
        "p90": int(np.percentile(arr, 90)),
        "p99": int(np.percentile(arr, 99)),
        "max": int(arr.max()),
    }


def dataset_stats(prepared: Prepared, tokenizer) -> dict:
    """Counts, emotion distribution, token-length percentiles and tokens per word."""
    convs = prepared.conversations
    lengths = [r["length"] for r in prepared.rows]
    turns = [sum(m["role"] == "user" for m in c.messages) for c in convs]
    texts = [m["content"] for c in convs for m in c.messages if m["role"] != "system"]
    words = sum(len(t.split()) for t in texts)
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0
    chars = sum(len(t) for t in texts)
    return {
        "conversations": len(convs),
        "user_turns": int(sum(turns)),
        "turns_per_conversation": round(float(np.mean(turns)), 2) if turns else 0.0,
        "emotions": dict(Counter(c.emotion or "(none)" for c in convs).most_common()),
        "token_length": percentiles(lengths),
        "tokens_per_word": round(tokens / words, 2) if words else 0.0,
        "chars_per_token": round(chars / tokens, 2) if tokens else 0.0,
        "tokenizer": getattr(tokenizer, "name_or_path", type(tokenizer).__name__),
    }


def plot_lengths(lengths: list[int], path: str | Path, title: str = "Token length per conversation") -> Path:
    """Write a histogram PNG of conversation token lengths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lengths, bins=min(50, max(5, len(set(lengths)))), color="#2a7f62")
    for q, style in ((50, "--"), (90, ":")):
        if lengths:
            ax.axvline(np.percentile(lengths, q), color="black", linestyle=style, label=f"p{q}")
    ax.set_xlabel("tokens (full chat template)")
    ax.set_ylabel("conversations")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
