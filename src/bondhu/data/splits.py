"""Deterministic train/validation/test splits, stratified by emotion."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from bondhu.errors import BondhuError


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
        out["validation"] += items[n_test : n_test + n_val]
        out["train"] += items[n_test + n_val :]
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


def pool_records(paths: list[str | Path]) -> list[dict]:
    """Native-format records from several files, their text normalized; a repeated id is an error
    naming the file and line, so two sources can never silently share a conversation."""
    from bondhu.data.loaders import read_records
    from bondhu.data.normalize import normalize_bengali

    records, seen = [], set()
    for path in paths:
        for rec in read_records(str(path)):
            if rec.error:
                raise rec.error
            r = rec.data
            if r["id"] in seen:
                raise BondhuError(f"{path}:{rec.line}: id: duplicate id {r['id']!r}")
            seen.add(r["id"])
            r["situation"] = normalize_bengali(r.get("situation") or "")
            r["messages"] = [{"role": m["role"], "content": normalize_bengali(m["content"])} for m in r["messages"]]
            records.append(r)
    return records
