"""Canonical text for the crisis check: one form for Bengali script, Banglish and chat spellings.

Two steps, both lossy on purpose:

1. ``clean`` fixes what only hides words: NFC with the nukta letters unified (য় and য + ়
   are one letter here), zero-width characters removed, emoji that carry meaning turned into
   words (💊 "pills", 🔪 "knife"), the rest dropped, letters repeated for stress collapsed
   ("plzzz", "নাাা"), and any digit script read as ASCII digits.
2. ``fold`` maps Bengali script and Latin letters onto one phonetic key. Chat Banglish has no
   fixed spelling (bachte, banchte, bacte; sesh, shesh), and people typing Bengali script
   drop vowel signs and confuse শ/স/ষ, so the key keeps only what both agree on: aspiration
   and the three sibilants merge, ব/ভ/v are one, the inherent vowel and ও/o vanish, and a
   doubled letter is single. "বাঁচতে চাই না", "bachte chai na" and "bacte cai na" all fold to
   "bacte cai na".

Avro Phonetic (``avro.py``) was tried for step 2 and not used: it is a typing scheme, so it
reads chat spellings literally ("chai" becomes ছাই, ash; "bojha" becomes বঝা). Folding both
scripts into a key needs no guess about which Bengali word was meant. English words fold too
("myself" becomes "miself"), which is harmless: the concept lexicon folds its own entries with
the same function, so a concept written once in Bengali script and once in English matches
Bengali script, Banglish, English and any mix of them.
"""

from __future__ import annotations

import re
import unicodedata

# Precomposed nukta letters that NFC leaves alone or splits inconsistently across inputs.
_NUKTA = {"\u09df": "\u09af\u09bc", "\u09dc": "\u09a1\u09bc", "\u09dd": "\u09a2\u09bc"}
INVISIBLE = re.compile("[\u200b-\u200f\u00ad\u2060-\u2064\ufeff\u034f\u180e]")
_EMOJI_WORDS = {
    "💊": " pills ",
    "🔪": " knife ",
    "🗡": " knife ",
    "🩸": " blood ",
    "🪢": " rope ",
    "🔫": " gun ",
    "☠": " death ",
    "⚰": " death ",
    "🪦": " death ",
    "😂": " haha ",
    "🤣": " haha ",
    "😆": " haha ",
    "😹": " haha ",
    "💀": " haha ",  # "I'm dead 💀" is laughter in chat
}
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d\u20e3]")
_REPEAT = re.compile(r"(.)\1{2,}")
_REPEAT_SIGN = re.compile("([\u09be-\u09cc\u09d7])\\1+")


def to_ascii_digits(text: str) -> str:
    """Every decimal digit (Bengali ০-৯, Arabic-Indic ٠-٩, Devanagari ०-९, ...) as 0-9."""
    return "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() else c for c in text)


def clean(text: str) -> str:
    """NFC, unified nukta letters, no zero-width characters, emoji as words, stress repeats collapsed."""
    text = unicodedata.normalize("NFC", text)
    for composed, parts in _NUKTA.items():
        text = text.replace(composed, parts)
    text = INVISIBLE.sub("", text)
    for emoji, word in _EMOJI_WORDS.items():
        text = text.replace(emoji, word)
    text = _EMOJI.sub(" ", text)
    text = _REPEAT.sub(r"\1\1", text)  # "plzzzz" -> "plzz"; the fold makes it single
    text = _REPEAT_SIGN.sub(r"\1", text)  # "নাাা" -> "না"
    text = to_ascii_digits(text).lower().replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip()


_VIRAMA, _NUKTA_SIGN = "\u09cd", "\u09bc"
# Bengali letters to Latin, already folded: aspirates lose their h, sibilants are s, ব/ভ are b.
_BN = {
    "অ": "",
    "আ": "a",
    "ই": "i",
    "ঈ": "i",
    "উ": "u",
    "ঊ": "u",
    "ঋ": "ri",
    "এ": "e",
    "ঐ": "oi",
    "ও": "",
    "ঔ": "ou",
    "া": "a",
    "ি": "i",
    "ী": "i",
    "ু": "u",
    "ূ": "u",
    "ৃ": "ri",
    "ে": "e",
    "ৈ": "oi",
    "ো": "",
    "ৌ": "ou",
    "ক": "k",
    "খ": "k",
    "গ": "g",
    "ঘ": "g",
    "ঙ": "ng",
    "চ": "c",
    "ছ": "c",
    "জ": "j",
    "ঝ": "j",
    "ঞ": "n",
    "ট": "t",
    "ঠ": "t",
    "ড": "d",
    "ঢ": "d",
    "ণ": "n",
    "ত": "t",
    "থ": "t",
    "দ": "d",
    "ধ": "d",
    "ন": "n",
    "প": "p",
    "ফ": "f",
    "ব": "b",
    "ভ": "b",
    "ম": "m",
    "য": "j",
    "র": "r",
    "ল": "l",
    "শ": "s",
    "ষ": "s",
    "স": "s",
    "হ": "h",
    "ৎ": "t",
    "ং": "ng",
    "ঃ": "",
    "ঁ": "",
    "ৗ": "u",
}
_BN_AFTER_NUKTA = {"য": "y", "ড": "r", "ঢ": "r"}
# Latin chat spellings, longest first: "chh" and "ch" are চ/ছ, "sh" is শ, "ph" is ফ, "w" is ও/য়.
_LATIN = [
    ("chh", "c"),
    ("kkh", "k"),
    ("ch", "c"),
    ("sh", "s"),
    ("ph", "f"),
    ("kh", "k"),
    ("gh", "g"),
    ("jh", "j"),
    ("th", "t"),
    ("dh", "d"),
    ("bh", "b"),
    ("rh", "r"),
    ("v", "b"),
    ("z", "j"),
    ("q", "k"),
    ("x", "ks"),
    ("w", ""),
    ("o", ""),
    ("h", "h"),
]
_LATIN_RE = re.compile("|".join(re.escape(a) for a, _ in _LATIN))
_LATIN_MAP = dict(_LATIN)


def _fold_bengali(word: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(word):
        ch, nxt = word[i], word[i + 1] if i + 1 < len(word) else ""
        if ch == "ক" and word[i + 1 : i + 3] == _VIRAMA + "ষ":  # ক্ষ is said kh: Banglish writes khoma
            out.append("k")
            i += 3
            continue
        if ch == _VIRAMA and nxt in ("য", "ব"):  # ya-phala and ba-phala double the consonant
            i += 2
            continue
        if nxt == _NUKTA_SIGN and ch in _BN_AFTER_NUKTA:
            out.append(_BN_AFTER_NUKTA[ch])
            i += 2
            continue
        out.append(_BN.get(ch, "" if "\u0980" <= ch <= "\u09ff" else ch))
        i += 1
    return "".join(out)


def _squeeze(key: str) -> str:
    key = re.sub(r"(.)\1+", r"\1", key)
    # য়/y between or after vowels is a glide Banglish often leaves out ("jawa", "jaoa", "jaowa");
    # at the end of a word it is the vowel i ("amy" for ami, "jay" for jai).
    key = re.sub(r"y$", "i", key)
    key = re.sub(r"(?<=[aeiu])y", "", key)
    return re.sub(r"^y", "", key) or key


# English lexicon words whose key is also the key of a common Bengali word: দিয়ে / "diye" ("with",
# "by") folds to "die", and "গুণ" / "gun" ("times") to "gun". Only the English spelling keeps the
# key; the Bengali word (in either script) gets it marked, so "ভাত দিয়ে মাছ খেতে চাই" is no wish
# to die and "তিন গুণ দাম" no weapon. A marked key starts with "~", so no phrase's prefix matches it.
_ENGLISH_KEYS = {"die", "gun"}


def fold_word(word: str) -> str:
    """The phonetic key of one word (see the module docstring)."""
    if any("\u0980" <= c <= "\u09ff" for c in word):
        key = _fold_bengali(word)
    else:
        key = word
    key = _squeeze(_LATIN_RE.sub(lambda m: _LATIN_MAP[m.group()], key))
    if key in _ENGLISH_KEYS and word.lower() != key:
        return "~" + key
    return key


_WORD = re.compile(r"[a-z0-9'\u0980-\u09ff]+")


def words(text: str) -> list[str]:
    """The cleaned text's words, split on anything that is not a letter, digit or Bengali sign."""
    return [w.strip("'") for w in _WORD.findall(text) if w.strip("'")]


def folded_words(text: str) -> list[str]:
    """``clean`` then the phonetic key of every word, in order: the tokens the lexicon reads."""
    return [fold_word(w) for w in words(clean(text))]


def fold(text: str) -> str:
    """``clean`` then the phonetic key of every word, joined by single spaces."""
    return " ".join(k for k in folded_words(text) if k)
