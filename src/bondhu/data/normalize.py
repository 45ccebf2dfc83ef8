"""Bengali text cleaning shared by training data, prompts and metric inputs."""

from __future__ import annotations

import re
import unicodedata

import ftfy

BENGALI_BLOCK = (0x0980, 0x09FF)

# NFC already unifies the two spellings Bengali text arrives in: ো/ৌ typed as two parts
# are composed, and য়/ড়/ঢ় typed as one code point are split into letter + nukta (Unicode
# excludes those three from composition, so letter + nukta is the stable form that every
# NFC-aware tool agrees on).
# Invisible characters that break token matching but carry no meaning in Bengali.
# ZWJ (U+200D) and ZWNJ (U+200C) are kept: they select conjunct and ya-phala forms.
_INVISIBLE = re.compile("[\u200b\u00ad\u2060\ufeff\u200e\u200f]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_LINE_EDGES = re.compile(r" *\n *")


def normalize_bengali(text: str) -> str:
    """Return one canonical spelling of ``text``: NFC, no
    zero-width spaces or soft hyphens, single spaces and trimmed edges. Idempotent."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    text = _LINE_EDGES.sub("\n", text)
    return text.strip()


def is_bengali_char(ch: str) -> bool:
    return BENGALI_BLOCK[0] <= ord(ch) <= BENGALI_BLOCK[1]


def bengali_ratio(text: str) -> float:
    """Share of letters (Unicode category L* or M*) that are Bengali script; 0.0 for no letters."""
    letters = [c for c in text if unicodedata.category(c)[0] in "LM"]
    if not letters:
        return 0.0
    return sum(is_bengali_char(c) for c in letters) / len(letters)


# Bengali UTF-8 bytes are E0 A6 xx / E0 A7 xx; read as cp1252 they start with "à¦" or "à§".
# "â€" starts cp1252-read quotes and dashes, "Ã" other Latin-1 round trips, and "Â" the lead
# byte of a no-break space (C2 A0) whose second byte was later turned into a plain space.
_MOJIBAKE_HINT = re.compile("\u00e0[\u00a6\u00a7]|\u00e2\u20ac|\u00c3.|\u00c2")
# A stray "Â" that ftfy cannot place (its no-break space already gone) is never part of a word:
# Latin words with Â (Âge) have a Latin letter beside it.
_STRAY_A_CIRCUMFLEX = re.compile("(?<![A-Za-z\u00c0-\u024f])\u00c2(?![A-Za-z\u00c0-\u024f])")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as cp1252 or Latin-1 (Bengali letters, quotes, no-break
    spaces); text without such traces is returned unchanged."""
    if not _MOJIBAKE_HINT.search(text):
        return text
    fixed = ftfy.fix_encoding(text)
    return _STRAY_A_CIRCUMFLEX.sub("", fixed)


def has_mojibake(text: str) -> bool:
    """Whether ``text`` still shows traces of a wrong decoding after ``fix_mojibake``."""
    return bool(_MOJIBAKE_HINT.search(text))
