"""Cleaning rules applied to every conversation, each counted by reason in a Report."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field

import regex

from bondhu.data.loaders import Conversation
from bondhu.data.normalize import bengali_ratio, fix_mojibake, has_mojibake, normalize_bengali

# Crisis lines of other countries: wrong for a Bengali speaker in Bangladesh or India, and
# the source of most foreign numbers in machine-translated corpora. US: 911, 988, the old
# Lifeline 1-800-273-8255 (TALK), Crisis Text Line 741741; UK: 999 is also Bangladesh's
# emergency number, so only Samaritans' 116 123 is listed; Australia: Lifeline 13 11 14.
# The US country code needs a "+" or a separator, so the year 1988 is not "+1 988"; the short
# numbers' parts are split by spaces only, so a date such as 13-11-14 is not Lifeline.
FOREIGN_CRISIS = re.compile(
    r"(?:\+1[\s.-]?|\b1[\s.-])?(?:\(?800\)?[\s.-]?273[\s.-]?(?:8255|TALK)"
    r"|911|988|741 ?741|116 ?123|13 11 14)",
    re.IGNORECASE,
)
# A match inside something else is not a phone number: part of a longer run of digits, of a
# date or decimal (9.11.2024, 9/11, 9:11), an amount (৳988, 988 টাকা) or a year (৯৮৮ সালে).
_AMOUNT_BEFORE = re.compile(r"(?:[৳$₹£€]|\b(?:tk|rs|usd|bdt|inr)\.?)\s*$", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    r"\s*(?:%|টাকা|taka|tk\b|rupees?|রুপি|ডলার|dollars?|সাল|খ্রি|বছর|years?|জন|kg|কেজি|km|"
    r"কিমি|মিটার|গ্রাম|পাতা|পৃষ্ঠা|page|পিস|টি\b|টা\b|তম|th\b|st\b|nd\b|rd\b)",
    re.IGNORECASE,
)
_BN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
_ANY_DIGIT = re.compile(r"\d")
_SENTENCE = re.compile(r"(?<=[।.!?])\s+")
_PUNCT = regex.compile(r"[\p{P}\p{S}\s]+")


@dataclass
class Report:
    """Counts of what happened to the input: kept, changed and skipped, each by reason."""

    source: str = ""
    read: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    changed: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def skip(self, reason: str, where: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, []).append(f"{where} {detail}".strip())

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "read": self.read,
            "kept": self.kept,
            "skipped_total": sum(self.skipped.values()),
            "skipped": dict(self.skipped),
            "changed": dict(self.changed),
            "flagged": dict(self.flagged),
            "examples": {k: v[:5] for k, v in self.examples.items()},
        }


def has_foreign_crisis_number(text: str) -> bool:
    """Whether ``text`` gives a foreign crisis line's number (in ASCII or Bengali digits)."""
    # Every listed number contains digits (and \d matches Bengali digits too), so text without
    # any digit, which is most messages, skips the costly digit translation and the search.
    if not _ANY_DIGIT.search(text):
        return False
    ascii_text = text.translate(_BN_DIGITS)
    return any(_standalone(ascii_text, m.start(), m.end()) for m in FOREIGN_CRISIS.finditer(ascii_text))


def _standalone(text: str, start: int, end: int) -> bool:
    before, after = text[max(0, start - 12) : start], text[end : end + 12]
    if (before and before[-1].isdigit()) or (after and after[0].isdigit()):
        return False
    if (len(before) > 1 and before[-1] in ".,/:-" and before[-2].isdigit()) or (
        len(after) > 1 and after[0] in ".,/:-" and after[1].isdigit()
    ):
        return False
    return not (_AMOUNT_BEFORE.search(before) or _UNIT_AFTER.match(after))


def _drop_crisis_sentences(text: str) -> str:
    kept = [s for s in _SENTENCE.split(text) if not has_foreign_crisis_number(s)]
    return " ".join(kept).strip()


def _key(messages: list[dict]) -> str:
    return hashlib.sha1(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()


class Cleaner:
    """Repairs, normalises, deduplicates and filters conversations, recording each action."""

    def __init__(self, min_bengali_ratio: float = 0.5, non_bengali: str = "flag", crisis_numbers: str = "remove"):
        self.min_bengali_ratio = min_bengali_ratio
        self.non_bengali = non_bengali
        self.crisis_numbers = crisis_numbers
        self._raw_seen: set[str] = set()
        self._norm_seen: set[str] = set()

    def clean(self, conv: Conversation, report: Report) -> Conversation | None:
        """Return the cleaned conversation, or None when it is skipped (counted in ``report``)."""
        where = f"{conv.file}:{conv.line}" if conv.line else conv.file
        raw_key = _key(conv.messages)
        if raw_key in self._raw_seen:
            report.skip("duplicate_exact", where, conv.id)
            return None
        self._raw_seen.add(raw_key)

        repaired = normalized = False
        messages = []
        for m in conv.messages:
            text = fix_mojibake(m["content"])
            repaired |= text != m["content"]
            clean = normalize_bengali(text)
            normalized |= clean != text
            messages.append({"role": m["role"], "content": clean})
        if repaired:
            report.changed["mojibake_repaired"] += 1
        if any(has_mojibake(m["content"]) for m in messages):  # what ftfy could not undo is never passed silently
            report.flagged["mojibake_left"] += 1
            conv.flags.append("mojibake_left")
        if normalized:
            report.changed["unicode_normalized"] += 1
        conv.situation = normalize_bengali(fix_mojibake(conv.situation)) if conv.situation else conv.situation

        norm_key = _key([{**m, "content": _PUNCT.sub(" ", m["content"]).strip().lower()} for m in messages])
        if norm_key in self._norm_seen:
            report.skip("duplicate_normalized", where, conv.id)
            return None
        self._norm_seen.add(norm_key)

        if any(has_foreign_crisis_number(m["content"]) for m in messages):
            if self.crisis_numbers == "flag":
                report.flagged["foreign_crisis_number"] += 1
                conv.flags.append("foreign_crisis_number")
            else:
                for m in messages:
                    if has_foreign_crisis_number(m["content"]):
                        m["content"] = _drop_crisis_sentences(m["content"])
                if any(not m["content"] for m in messages):
                    report.skip("foreign_crisis_number_only", where, conv.id)
                    return None
                report.changed["foreign_crisis_number_removed"] += 1

        ratio = bengali_ratio(" ".join(m["content"] for m in messages if m["role"] != "system"))
        if ratio < self.min_bengali_ratio:
            if self.non_bengali == "drop":
                report.skip("not_bengali", where, f"{conv.id} (Bengali share {ratio:.2f})")
                return None
            report.flagged["not_bengali"] += 1
            conv.flags.append("not_bengali")
        conv.messages = messages
        return conv
