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
    """Split records so each emotion keeps the same proportions; the same input always gives the same split.

    Conversations that share a ``scenario`` (else each is its own, by id) always land in the same
    split, so a model is never tested on an event it was trained on under another emotion."""
    scenarios: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        scenarios[str(r.get("scenario") or r["id"])].append(r)
    groups: dict[str, list[tuple[str, list[dict]]]] = defaultdict(list)
    for key, members in scenarios.items():
        groups[members[0].get("emotion") or ""].append((key, members))
    out = {"train": [], "validation": [], "test": []}
    for emotion in sorted(groups):
        items = sorted(groups[emotion], key=lambda km: _order_key(km[0], seed))
        n = sum(len(m) for _, m in items)
        quota = {"test": round(n * fractions[2]), "validation": round(n * fractions[1])}
        for _, members in items:
            name = next((k for k in ("test", "validation") if quota[k] > 0), "train")
            if name != "train":
                quota[name] -= len(members)
            out[name] += members
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
