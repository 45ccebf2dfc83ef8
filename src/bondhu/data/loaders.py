"""Read conversations from files or the Hub into one schema, locating every problem.

Each record keeps the file and line it came from, so any later error can be reported
as ``FILE:LINE: field: reason``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bondhu.errors import DataError

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "chatgpt": "assistant",
    "bard": "assistant",
}
BECC_COLUMNS = ("Topics", "Question-Title", "Questions", "Answers")


@dataclass
class RawRecord:
    """One undecoded row: the parsed object plus where it came from."""

    data: Any
    file: str
    line: int | None
    error: DataError | None = None  # set when this row could not be parsed at all


@dataclass
class Conversation:
    """A validated conversation in Bondhu's native schema."""

    id: str
    messages: list[dict]
    emotion: str | None = None
    situation: str | None = None
    file: str = ""
    line: int | None = None
    flags: list[str] = field(default_factory=list)
    scenario: str | None = None  # the event the conversation is about: splits never share one

    def to_json(self) -> dict:
        out = {"id": self.id, "emotion": self.emotion, "situation": self.situation, "messages": self.messages}
        return {**out, "scenario": self.scenario} if self.scenario else out


# ---------------------------------------------------------------- reading files


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            name, line, "encoding", f"invalid UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
        ) from None


def _read_jsonl(raw: bytes, name: str) -> Iterator[RawRecord]:
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        raise DataError(
            name,
            1,
            "format",
            "the file is one JSON array, but JSONL needs one JSON object per "
            "line; write one conversation per line or rename the file to .json",
        )
    # Line by line, so one bad line is one skipped record rather than a lost file.
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            yield RawRecord(
                None,
                name,
                number,
                DataError(
                    name, number, "encoding", f"invalid UTF-8 (byte 0x{line[err.start]:02x} at column {err.start + 1})"
                ),
            )
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            yield RawRecord(
                None, name, number, DataError(name, number, "json", f"invalid JSON ({err.msg} at column {err.colno})")
            )
            continue
        if not isinstance(obj, dict):
            yield RawRecord(
                None, name, number, DataError(name, number, "json", f"expected a JSON object, got {type(obj).__name__}")
            )
            continue
        yield RawRecord(obj, name, number)


def _read_json(text: str, name: str) -> Iterator[RawRecord]:
    decoder = json.JSONDecoder()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(name, err.lineno, "json", f"invalid JSON ({err.msg} at column {err.colno})") from None
    if isinstance(whole, dict):
        for key in ("data", "conversations", "rows"):
            if isinstance(whole.get(key), list):
                whole = whole[key]
                break
        else:
            yield RawRecord(whole, name, 1)
            return
    if not isinstance(whole, list):
        raise DataError(name, 1, "json", "expected a list of conversation objects")
    # Walk the array again with raw_decode so each element keeps its starting line.
    pos = text.index("[") + 1
    for item in whole:
        while text[pos] in " \t\r\n,":
            pos += 1
        line = text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, pos)
        if not isinstance(item, dict):
            raise DataError(name, line, "json", f"expected a JSON object, got {type(item).__name__}")
        yield RawRecord(item, name, line)


def _read_csv(text: str, name: str) -> Iterator[RawRecord]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(name, 1, "header", "the CSV file has no header row")
    start = 2
    for row in reader:
        yield RawRecord(dict(row), name, start)
        start = reader.line_num + 1


def _rows_of_table(rows: list[dict], name: str) -> Iterator[RawRecord]:
    for index, row in enumerate(rows, start=1):
        yield RawRecord(row, name, index)


def read_records(source: str, hub_split: str = "train") -> list[RawRecord]:
    """Read every record of a JSONL/JSON/CSV/Parquet file, a saved dataset, or a Hub dataset id."""
    path = Path(source)
    if path.is_dir():
        if (
            (path / "dataset_info.json").exists()
            or (path / "state.json").exists()
            or (path / "dataset_dict.json").exists()
        ):
            import datasets

            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[hub_split] if hub_split in ds else ds[next(iter(ds))]
            return list(_rows_of_table(ds.to_list(), source))
        raise DataError(source, None, "source", "is a folder but not a saved `datasets` dataset")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                rows = pq.read_table(path).to_pylist()
            except Exception as err:  # pyarrow raises several types for a bad file
                raise DataError(source, None, "parquet", f"cannot read Parquet ({err})") from None
            records = list(_rows_of_table(rows, source))
        else:
            raw = path.read_bytes()
            if not raw.strip():
                raise DataError(source, None, "file", "the file is empty")
            if suffix in (".json", ".csv"):
                reader = _read_json if suffix == ".json" else _read_csv
                records = list(reader(_decode(raw, source), source))
            else:
                records = list(_read_jsonl(raw, source))
        if not records:
            raise DataError(source, None, "file", "the file holds no records")
        return records
    if looks_like_hub_id(source):
        return _read_hub(source, hub_split)
    raise DataError(source, None, "source", "file not found")


def looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not Path(source).suffix


def _read_hub(repo_id: str, split: str) -> list[RawRecord]:
    import datasets

    try:
        ds = datasets.load_dataset(repo_id, split=split)
    except Exception as err:  # offline, missing, gated: all reach the user the same way
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            repo_id, None, "source", f"not a local file, and loading it from the Hugging Face Hub failed: {reason}"
        ) from None
    return list(_rows_of_table(ds.to_list(), f"hf://{repo_id}"))


# ---------------------------------------------------------------- format presets


def detect_format(sample: dict) -> str:
    """Name the preset that fits a record's keys: native, messages, sharegpt or becc."""
    keys = set(sample)
    if "messages" in keys:
        return "native" if keys & {"emotion", "situation"} else "messages"
    if "conversations" in keys:
        return "sharegpt"
    if {"Questions", "Answers"} <= keys:
        return "becc"
    raise DataError(
        "",
        None,
        "format",
        f"cannot tell the format from the fields {sorted(keys)}; "
        "expected messages, conversations (ShareGPT) or Questions/Answers (BECC)",
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas/CSV
        return None
    return str(value)


def to_conversation(rec: RawRecord, fmt: str, index: int, becc_title: bool = False) -> Conversation:
    """Convert one record of the given preset into a validated Conversation."""
    d = rec.data
    fail = lambda field, reason: DataError(rec.file, rec.line, field, reason)  # noqa: E731
    if fmt in ("native", "messages"):
        msgs = d.get("messages")
        if not isinstance(msgs, list):
            raise fail("messages", "missing or not a list")
        messages = []
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise fail(f"messages[{i}]", "expected an object with role and content")
            messages.append({"role": m.get("role"), "content": m.get("content")})
        conv_id = str(d.get("id") or f"row-{index}")
        conv = Conversation(
            conv_id,
            messages,
            _text(d.get("emotion")),
            _text(d.get("situation")),
            rec.file,
            rec.line,
            scenario=_text(d.get("scenario")),
        )
    elif fmt == "sharegpt":
        turns = d.get("conversations")
        if not isinstance(turns, list):
            raise fail("conversations", "missing or not a list")
        messages = []
        for i, t in enumerate(turns):
            if not isinstance(t, dict):
                raise fail(f"conversations[{i}]", "expected an object with from and value")
            role = SHAREGPT_ROLES.get(str(t.get("from", "")).lower())
            if role is None:
                raise fail(f"conversations[{i}].from", f"unknown speaker {t.get('from')!r}")
            messages.append({"role": role, "content": t.get("value")})
        conv = Conversation(str(d.get("id") or f"row-{index}"), messages, None, None, rec.file, rec.line)
    elif fmt == "becc":
        missing = [c for c in BECC_COLUMNS if c not in d]
        if missing:
            raise fail(missing[0], "column missing")
        title, question = _text(d.get("Question-Title")) or "", _text(d.get("Questions")) or ""
        # The title is kept as the situation, and goes before the question only when asked
        # (data.becc_title): see DataConfig for why it is off by default.
        user = question
        if becc_title and title.strip() and title.strip() not in question:
            user = f"{title}\n{question}".strip()
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _text(d.get("Answers"))}]
        conv = Conversation(f"becc-{index}", messages, _text(d.get("Topics")), title or None, rec.file, rec.line)
    else:
        raise fail("format", f"unknown format {fmt!r}")
    validate_messages(conv)
    return conv


def validate_messages(conv: Conversation) -> None:
    """Check roles, order and content; raise DataError naming the first bad field."""
    fail = lambda field, reason: DataError(conv.file, conv.line, field, reason)  # noqa: E731
    msgs = conv.messages
    if not msgs:
        raise fail("messages", "empty conversation")
    for i, m in enumerate(msgs):
        if m["role"] not in ROLES:
            raise fail(f"messages[{i}].role", f"unknown role {m['role']!r}; expected one of {', '.join(ROLES)}")
        content = m["content"]
        if content is None:
            raise fail(f"messages[{i}].content", "missing")
        if not isinstance(content, str):
            raise fail(f"messages[{i}].content", f"expected text, got {type(content).__name__}")
        if not content.strip():
            raise fail(f"messages[{i}].content", "empty")
    body = msgs[1:] if msgs[0]["role"] == "system" else msgs
    for i, m in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            pos = i + (len(msgs) - len(body))
            raise fail(
                f"messages[{pos}].role",
                f"expected {expected!r} (turns alternate user, assistant, ...), got {m['role']!r}",
            )
    if not body or body[-1]["role"] != "assistant":
        raise fail("messages", "the conversation must end with an assistant turn")
