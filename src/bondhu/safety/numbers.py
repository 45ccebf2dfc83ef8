"""The phone-number filter on model output: only numbers from the helpline file may appear.

Numbers are recognised whatever digits they are written in (ASCII, Bengali, Arabic-Indic,
Devanagari, ...) and however they are split: spaces, dashes, dots and zero-width characters
between digit groups. A number the model invents for a crisis line could send a person in
danger to a stranger, so an unlisted one is replaced.
"""

from __future__ import annotations

import re

from bondhu.safety.canonical import INVISIBLE, to_ascii_digits

PLACEHOLDER = "[নম্বর সরানো হয়েছে]"
# Digit groups joined by single spaces, dashes, dots or parentheses, matched on a copy of the text
# with ASCII digits and no zero-width characters. Bengali suffixes may follow directly
# ("৯১১তে"), so only a digit may not follow the run. A decimal ("3.5") has too few digits to count.
_PHONE_RUN = re.compile(r"(?<![0-9+a-zA-Z])\+?\(?[0-9]+\)?(?:(?:[ \-]|\.(?=[0-9]))?\(?[0-9]+\)?)*(?![0-9])")
_CALL_WORDS = re.compile(
    r"কল|ফোন|ডায়াল|হেল্পলাইন|হটলাইন|নম্বর|নাম্বার|যোগাযোগ|call|dial|phone|helpline|hotline|number|ring"
    r"|text|sms|whatsapp|contact|tel|kol|fon|nombor|nambar",
    re.IGNORECASE,
)
# Dates, years and year ranges ("২০২৩-২০২৪ সেশন") are not phone numbers.
_NOT_PHONE = re.compile(r"\d{1,2}[-/]\d{1,2}[-/]\d{2,4}|\d{4}-\d{2}-\d{2}|(?:19|20)\d\d(?:\s?-\s?(?:19|20)?\d\d)?")
_UNIT_AFTER = re.compile(r"\s*(?:টাকা|taka|tk|৳|rupees?|rs\b|%|জন|people|km|kg)", re.IGNORECASE)
_COUNTRY_CODES = ("880", "91")  # the shipped regions; other codes can never equal a listed number anyway


def _canonical(raw: str) -> str:
    text = to_ascii_digits(raw).strip()
    digits, intl = re.sub(r"\D", "", text), text.startswith(("+", "00"))
    digits = digits[2:] if text.startswith("00") else digits
    for cc in _COUNTRY_CODES:
        # Without "+" a leading 91/880 is a country code only if a full national number follows.
        if digits.startswith(cc) and len(digits) - len(cc) >= (3 if intl else 9):
            digits = digits[len(cc) :]
            break
    return digits[1:] if digits.startswith("0") and len(digits) > 3 else digits  # drop the trunk 0


def allowed_numbers(helplines: dict) -> set[str]:
    """Canonical digits (no country code, no trunk 0) of every number and tel in the helpline file."""
    return {
        _canonical(n)
        for reg in helplines["regions"].values()
        for ln in reg["lines"]
        for n in [ln["number"], ln["tel"], *ln.get("alt_numbers", [])]
    }


def _is_listed(run: str, allowed: set[str]) -> bool:
    # One run can hold listed numbers side by side ("999 09612119911") or end in prose ("৯৯৯ ১০ মিনিটে").
    parts = run.replace(".", " ").split()
    while len(parts) > 1 and len(parts[-1]) <= 2:
        parts.pop()
    ok = [True] + [False] * len(parts)
    for j in range(1, len(parts) + 1):
        # A phone number spans at most ~5 groups ("+44 20 7946 0958"); the cap keeps this linear.
        ok[j] = any(ok[i] and _canonical(" ".join(parts[i:j])) in allowed for i in range(max(0, j - 5), j))
    return ok[-1]


def _phone_like(text: str, m: re.Match[str]) -> bool:
    run = m.group().replace(".", " ")
    n = sum(c.isdigit() for c in run)
    if n < 3 or _NOT_PHONE.fullmatch(run.strip("+() ")) or _UNIT_AFTER.match(text, m.end()):
        return False
    # Short codes (911, 988, 16263) count only near a call word, so "৩০০ জন" or "page 112" stay.
    return n >= 7 or bool(
        _CALL_WORDS.search(text[max(0, m.start() - 30) : m.start()] + " " + text[m.end() : m.end() + 25])
    )


def filter_unlisted_numbers(text: str, helplines: dict) -> str:
    """Replace phone-like numbers that are not in the helpline file with a placeholder."""
    return replace_unlisted(text, allowed_numbers(helplines))


def _matchable(text: str) -> tuple[str, list[int]]:
    """The text with ASCII digits and no zero-width characters, and each kept character's index."""
    keep = [i for i, c in enumerate(text) if not INVISIBLE.match(c)]
    return to_ascii_digits("".join(text[i] for i in keep)), keep


def replace_unlisted(text: str, allowed: set[str]) -> str:
    """``filter_unlisted_numbers`` with the allowed set already built (it runs on every streamed piece)."""
    norm, index = _matchable(text)
    out, last = [], 0
    for m in _PHONE_RUN.finditer(norm):
        if _phone_like(norm, m) and not _is_listed(m.group(), allowed):
            start, end = index[m.start()], index[m.end() - 1] + 1
            out += [text[last:start], PLACEHOLDER]
            last = end
    return "".join(out) + text[last:]
