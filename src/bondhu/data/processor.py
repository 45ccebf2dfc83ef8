"""DatasetProcessor: files in, tokenized conversations with assistant-only labels out."""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from bondhu.config import DataConfig
from bondhu.data.clean import Cleaner, Report
from bondhu.data.loaders import Conversation, detect_format, read_records, to_conversation
from bondhu.data.template import EOT, render, with_system
from bondhu.errors import DataError

IGNORE = -100
_INDEX = re.compile(r"\[\d+\]")


def skip_reason(err: DataError) -> str:
    """A short, countable reason such as ``messages.content: empty``."""
    return f"{_INDEX.sub('', err.field)}: {err.reason.split(' (')[0].split(';')[0]}"


def ensure_pad_token(tokenizer, pad_token: str = "<|finetune_right_pad_id|>") -> None:
    """Give the tokenizer a pad token that is not EOS, so padding never masks the stop token."""
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    if pad_token in tokenizer.get_vocab():
        tokenizer.pad_token = pad_token
    else:
        tokenizer.add_special_tokens({"pad_token": pad_token})
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError("the pad token must differ from the EOS token")


@dataclass
class Prepared:
    """The output of ``DatasetProcessor.prepare``: rows ready for the trainer, plus the report."""

    rows: list[dict]
    conversations: list[Conversation]
    report: Report

    def to_dataset(self):
        import datasets

        cols = ("input_ids", "labels", "id", "emotion", "length")
        return datasets.Dataset.from_dict({c: [r[c] for r in self.rows] for c in cols})

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_dataset().save_to_disk(str(out / "dataset"))
        with open(out / "conversations.jsonl", "w", encoding="utf-8") as f:
            for c in self.conversations:
                f.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
        (out / "report.json").write_text(json.dumps(self.report.to_json(), ensure_ascii=False, indent=2), "utf-8")
        return out


class DatasetProcessor:
    """Load, clean, template and tokenize Bengali conversations for Llama 3.1 fine-tuning.

    Labels are -100 everywhere except each assistant turn's text and its ``<|eot_id|>``.
    Nothing is truncated unless ``config.overflow`` says so, and every record that is
    skipped or changed is counted by reason in the report.
    """

    def __init__(self, tokenizer, config: DataConfig | None = None, pad_token: str = "<|finetune_right_pad_id|>"):
        self.tokenizer = tokenizer
        self.config = config or DataConfig()
        ensure_pad_token(tokenizer, pad_token)

    # ------------------------------------------------------------ loading
    def load(self, source: str, strict: bool | None = None) -> tuple[list[Conversation], Report]:
        """Read and clean ``source``; invalid records are skipped and counted unless strict."""
        strict = self.config.strict if strict is None else strict
        report = Report(source=source)
        records = read_records(source, self.config.hub_split)
        fmt = self.config.format
        if fmt == "auto":
            first = next((r.data for r in records if r.error is None), None)
            if first is None:
                raise records[0].error
            try:
                fmt = detect_format(first)
            except DataError as err:
                raise DataError(source, records[0].line, err.field, err.reason) from None
        cleaner = Cleaner(self.config.min_bengali_ratio, self.config.non_bengali, self.config.crisis_numbers)
        conversations: list[Conversation] = []
        for index, rec in enumerate(records, start=1):
            report.read += 1
            try:
                if rec.error:
                    raise rec.error
                conv = to_conversation(rec, fmt, index, self.config.becc_title)
            except DataError as err:
                if strict:
                    raise
                report.skip(skip_reason(err), f"{err.file}:{err.line}", err.reason)
                continue
            conv = cleaner.clean(conv, report)
            if conv is not None:
                conversations.append(conv)
        return conversations, report

    # ------------------------------------------------------------ encoding
    def with_system(self, messages: list[dict]) -> list[dict]:
        return with_system(messages, self.config.system_prompt)

    def _assistant_spans(self, text: str, messages: list[dict]) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for m in messages:
            if m["role"] != "assistant":
                continue
            content = m["content"].strip()
            start = text.find(content + EOT, pos)
            if start < 0:
                raise ValueError("the chat template does not reproduce an assistant turn followed by <|eot_id|>")
            pos = start + len(content) + len(EOT)
            spans.append((start, pos))
        return spans

    def encode_many(self, message_lists: list[list[dict]]) -> list[dict]:
        """Tokenize whole conversations (batched) and build assistant-only labels.

        A token is trained on when its text lies inside an assistant span (the reply and its
        ``<|eot_id|>``). Token offsets ascend, so each span's tokens are found by bisection and
        only those are checked, rather than every token of the conversation.
        """
        texts = [render(self.tokenizer, self.with_system(m)) for m in message_lists]
        enc = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        out = []
        for text, msgs, ids, offsets in zip(texts, message_lists, enc["input_ids"], enc["offset_mapping"]):
            labels = [IGNORE] * len(ids)
            for start, end in self._assistant_spans(text, msgs):
                lo = bisect_left(offsets, start, key=itemgetter(0))
                hi = bisect_left(offsets, end, lo, key=itemgetter(0))
                labels[lo:hi] = [t if s < e <= end else IGNORE for t, (s, e) in zip(ids[lo:hi], offsets[lo:hi])]
            out.append({"input_ids": list(ids), "labels": labels, "length": len(ids)})
        return out

    def encode(self, messages: list[dict]) -> dict:
        return self.encode_many([messages])[0]

    def _fit(self, conv: Conversation, row: dict, report: Report) -> dict | None:
        limit = self.config.max_length
        if limit is None or row["length"] <= limit:
            return row
        where = f"{conv.file}:{conv.line}"
        policy = self.config.overflow
        if policy == "error":
            raise DataError(
                conv.file,
                conv.line,
                "messages",
                f"the conversation is {row['length']} tokens, over "
                f"data.max_length={limit}; set data.overflow=drop or truncate_history, or raise max_length",
            )
        if policy == "drop":
            report.skip("too_long", where, f"{conv.id} ({row['length']} tokens)")
            return None
        system = [m for m in conv.messages[:1] if m["role"] == "system"]
        body = conv.messages[len(system) :]
        while len(body) > 2:
            body = body[2:]  # drop the oldest user+assistant exchange
            row = self.encode(system + body)
            if row["length"] <= limit:
                conv.messages = system + body
                report.changed["history_truncated"] += 1
                return row
        report.skip("too_long_after_truncation", where, f"{conv.id} ({row['length']} tokens)")
        return None

    def prepare(
        self, source: str, strict: bool | None = None, batch_size: int = 512, subset: int | None = None
    ) -> Prepared:
        """Load, clean and tokenize ``source``; the report counts every skip and change. ``subset``
        keeps that many conversations, evenly spaced, and counts the rest as skipped."""
        conversations, report = self.load(source, strict)
        if subset is not None and len(conversations) > subset:
            keep = {round(i * len(conversations) / subset) for i in range(subset)}
            for i, conv in enumerate(conversations):
                if i not in keep:
                    report.skip("outside_train_subset", f"{conv.file}:{conv.line}", conv.id)
            conversations = [c for i, c in enumerate(conversations) if i in keep]
        rows, kept = [], []
        for start in range(0, len(conversations), batch_size):
            chunk = conversations[start : start + batch_size]
            for conv, row in zip(chunk, self.encode_many([c.messages for c in chunk])):
                row = self._fit(conv, row, report)
                if row is None:
                    continue
                if row["labels"].count(IGNORE) == len(row["labels"]):
                    report.skip("no_assistant_tokens", f"{conv.file}:{conv.line}", conv.id)
                    continue
                row.update(id=conv.id, emotion=conv.emotion or "")
                rows.append(row)
                kept.append(conv)
        report.kept = len(rows)
        return Prepared(rows, kept, report)
