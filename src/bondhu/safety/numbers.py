"""The phone-number filter on model output: only numbers from the helpline file may appear.

Numbers are recognised whatever digits they are written in (ASCII, Bengali, Arabic-Indic,
Devanagari, ...) and however they are split: spaces, dashes, dots and zero-width characters
between digit groups. A number the model invents for a crisis line could send a person in
danger to a stranger, so an unlisted one is replaced.
"""

from __future__ import annotations

import re
from bisect import bisect_left

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
_BEFORE, _AFTER = 30, 25  # characters before and after a short code where a call word makes it a phone number
_UNIT_CHARS = 8  # enough text after a number to read any unit in _UNIT_AFTER ("rupees", "টাকা")
_OPENING = re.compile(r"(?:\+\(?|\()$")  # a reply that ends where a number may begin ("+", "(")


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
        _CALL_WORDS.search(text[max(0, m.start() - _BEFORE) : m.start()] + " " + text[m.end() : m.end() + _AFTER])
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


class NumberStream:
    """``replace_unlisted`` of a reply still being written, handed out as it becomes final.

    A number is held back until it has ended and the text after it that decides it has arrived:
    the next 25 characters (a call word there makes a short code a phone number) and the first
    word after any spaces (a unit makes it an amount). Text before it can be sent at once. So what
    ``feed`` and ``flush`` return, joined, is ``replace_unlisted`` of the whole reply however it was
    split, and never part of a number that is later removed. Each call reads the new text and a
    window of 30 visible characters before it (the call words a number may follow), not the reply."""

    def __init__(self, allowed: set[str]):
        self.allowed, self.text, self.done = allowed, "", 0  # self.text[:self.done] has been handed out

    def feed(self, piece: str) -> str:
        """What may be sent now that the reply is ``piece`` longer."""
        self.text += piece
        return self._settle(final=False)

    def flush(self) -> str:
        """The rest, once the reply has ended."""
        return self._settle(final=True)

    def _settle(self, final: bool) -> str:
        start = _back(self.text, self.done, _BEFORE + 1)
        window = self.text[start:]
        norm, index = _matchable(window)
        first = bisect_left(index, self.done - start)  # the first visible character not handed out
        out, last, hold = [], self.done - start, len(window)
        for m in _PHONE_RUN.finditer(norm, first):  # a run before ``first`` ended before it
            if not final and _undecided(norm, m):
                hold = index[m.start()]
                break
            if _phone_like(norm, m) and not _is_listed(m.group(), self.allowed):
                out += [window[last : index[m.start()]], PLACEHOLDER]
                last = index[m.end() - 1] + 1
        else:
            if not final and (opening := _OPENING.search(norm, first)):
                hold = index[opening.start()]
        out.append(window[last:hold])
        # Keep only what the next call reads: the held-back text and the window before it.
        self.done = start + hold
        keep = _back(self.text, self.done, _BEFORE + 1)
        self.text, self.done = self.text[keep:], self.done - keep
        return "".join(out)


def _undecided(norm: str, m: re.Match[str]) -> bool:
    """Whether text still to come can change what the filter does with the run ``m``: it may still
    grow (a separator, a bracket and a digit continue it), or it has 3 digits or more and the text
    after it that decides it (a call word within 25 characters, a unit after the spaces) is not all there."""
    after = len(norm) - m.end()
    if sum(c.isdigit() for c in m.group()) < 3:  # never phone-like once it has stopped growing
        return after < 3
    return after < _AFTER or len(norm[m.end() :].lstrip()) < _UNIT_CHARS


def _back(text: str, end: int, visible: int) -> int:
    """Where the ``visible`` visible characters before ``end`` begin (0 if there are fewer)."""
    i = end
    while i > 0 and visible > 0:
        i -= 1
        visible -= not INVISIBLE.match(text[i])
    return i
