"""Deterministic train/validation/test splits, stratified by emotion."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path


def _order_key(conv_id: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{conv_id}".encode()).hexdigest()


def stratified_split(records: list[dict], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[dict]]:
    """Split records so each emotion keeps the same proportions; the same input always gives the same split."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r.get("emotion") or ""].append(r)
    out = {"train": [], "validation": [], "test": []}
    for emotion in sorted(groups):
        items = sorted(groups[emotion], key=lambda r: _order_key(str(r["id"]), seed))
        n = len(items)
        n_test = round(n * fractions[2])
        n_val = round(n * fractions[1])
        out["test"] += items[:n_test]
        out["validation"] += items[n_test:n_test + n_val]
        out["train"] += items[n_test + n_val:]
    for name in out:
        out[name].sort(key=lambda r: str(r["id"]))
    return out


def write_splits(records: list[dict], out_dir: str | Path, seed: int = 0) -> dict[str, int]:
    """Write train/validation/test JSONL files into ``out_dir``; returns their sizes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, rows in stratified_split(records, seed=seed).items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        sizes[name] = len(rows)
    return sizes
