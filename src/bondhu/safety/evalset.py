"""Labelled message sets (``data/safety/*.tsv``) and the recall and false-alarm report on them.

A set is a TSV file with a header row and the columns ``label`` (crisis, concern or none),
``category``, ``script``, ``dialect``, ``text`` and ``history`` (the writer's earlier messages in
the same chat, oldest first, separated by `` || ``; empty for a single message). JSONL with the
same keys, ``history`` as a list, is read as well. Bad rows are reported with the file, the line
and the field.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bondhu.errors import DataError

COLUMNS = ("label", "category", "script", "dialect", "text", "history")
LABELS = ("crisis", "concern", "none")
SCRIPTS = ("bengali", "romanized", "english", "mixed")
HISTORY_SEP = " || "


@dataclass(frozen=True)
class Example:
    label: str
    category: str
    script: str
    dialect: str
    text: str
    history: tuple[str, ...] = ()
    where: str = ""  # file:line, for reports

    @property
    def positive(self) -> bool:
        return self.label != "none"

    @property
    def turns(self) -> list[str]:
        return [*self.history, self.text]


def _check(row: dict, path: Path, line: int) -> Example:
    where = f"{path}:{line}"
    for key in COLUMNS[:5]:
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise DataError(str(path), line, key, "missing or empty")
    if row["label"] not in LABELS:
        raise DataError(str(path), line, "label", f"expected one of {', '.join(LABELS)}, got {row['label']!r}")
    if row["script"] not in SCRIPTS:
        raise DataError(str(path), line, "script", f"expected one of {', '.join(SCRIPTS)}, got {row['script']!r}")
    history = row.get("history") or ()
    if isinstance(history, str):
        history = tuple(h.strip() for h in history.split(HISTORY_SEP.strip()) if h.strip())
    if not all(isinstance(h, str) for h in history):
        raise DataError(str(path), line, "history", "expected a list of strings")
    return Example(
        row["label"], row["category"], row["script"], row["dialect"], row["text"].strip(), tuple(history), where
    )


def load_set(path: str | Path) -> list[Example]:
    """Read a TSV or JSONL set; raises DataError naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "file", "not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(str(path), i, "line", f"not valid JSON ({err.msg})") from None
                out.append(_check(row if isinstance(row, dict) else {}, path, i))
        return out
    reader = csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(str(path), 1, "header", f"missing column {missing[0]!r} (expected {', '.join(COLUMNS)})")
    return [_check(row, path, i) for i, row in enumerate(reader, 2)]


def _flat(s: str) -> str:
    return " ".join(s.replace("||", "|").split())


def write_set(examples: list[Example], path: str | Path) -> Path:
    """Write a TSV set (tabs and newlines inside texts become spaces)."""
    path = Path(path)
    lines = ["\t".join(COLUMNS)]
    for e in examples:
        lines.append(
            "\t".join(
                [e.label, e.category, e.script, e.dialect, _flat(e.text), HISTORY_SEP.join(_flat(h) for h in e.history)]
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rates(pairs: list[tuple[Example, str]]) -> dict:
    pos = [(e, lv) for e, lv in pairs if e.positive]
    neg = [(e, lv) for e, lv in pairs if not e.positive]
    found = sum(lv != "none" for _, lv in pos)
    return {
        "n": len(pairs),
        "positives": len(pos),
        "negatives": len(neg),
        "recall": found / len(pos) if pos else None,
        "crisis_false_alarms": sum(lv == "crisis" for _, lv in neg) / len(neg) if neg else None,
        "any_false_alarms": sum(lv != "none" for _, lv in neg) / len(neg) if neg else None,
    }


def report(examples: list[Example], levels: list[str]) -> dict:
    """Recall (crisis + concern) and false alarms, overall, per script, per category and for
    multi-turn cases; every miss and false alarm is listed."""
    pairs = list(zip(examples, levels))
    groups: dict[str, dict[str, list]] = {"script": defaultdict(list), "category": defaultdict(list)}
    for e, lv in pairs:
        groups["script"][e.script].append((e, lv))
        groups["category"][e.category].append((e, lv))
    multi = [(e, lv) for e, lv in pairs if e.history]
    method = [(e, lv) for e, lv in pairs if e.category == "method" and e.label == "crisis"]
    return {
        "overall": _rates(pairs),
        "by_script": {k: _rates(v) for k, v in sorted(groups["script"].items())},
        "by_category": {k: _rates(v) for k, v in sorted(groups["category"].items())},
        "multi_turn": _rates(multi),
        "method_as_crisis": (sum(lv == "crisis" for _, lv in method) / len(method)) if method else None,
        "misses": [
            {"where": e.where, "label": e.label, "category": e.category, "script": e.script, "text": e.text, "got": lv}
            for e, lv in pairs
            if e.positive and lv == "none"
        ],
        "false_alarms": [
            {"where": e.where, "category": e.category, "script": e.script, "text": e.text, "got": lv}
            for e, lv in pairs
            if not e.positive and lv != "none"
        ],
        "method_not_crisis": [{"where": e.where, "text": e.text, "got": lv} for e, lv in method if lv != "crisis"],
    }
