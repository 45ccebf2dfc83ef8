import pytest

from bondhu.data.normalize import bengali_ratio, fix_mojibake, normalize_bengali
from helpers import mojibake


@pytest.mark.parametrize(
    "a,b",
    [
        ("\u09df", "\u09af\u09bc"),  # য়: one code point vs য + nukta
        ("\u09dc", "\u09a1\u09bc"),  # ড়
        ("\u09dd", "\u09a2\u09bc"),  # ঢ়
        ("\u09cb", "\u09c7\u09be"),  # ো: one code point vs ে + া
        ("\u09cc", "\u09c7\u09d7"),  # ৌ: one code point vs ে + ৗ
    ],
)
def test_canonically_equivalent_spellings_become_one(a, b):
    assert normalize_bengali(f"ক{a}টি") == normalize_bengali(f"ক{b}টি")


def test_whole_words_with_mixed_spellings_match():
    assert normalize_bengali("আমি ভাল\u09c7\u09be আছি, জা\u09af\u09bcগা") == normalize_bengali("আমি ভালো আছি, জায়গা")


def test_invisible_characters_removed_but_joiners_kept():
    text = "র\u200d্যাব\u200b সফ\u00adটওয়্যার \u200cক্ষ"
    out = normalize_bengali(text)
    assert "\u200b" not in out and "\u00ad" not in out
    assert "\u200d" in out and "\u200c" in out


def test_whitespace_unified():
    assert normalize_bengali("  আমি\t\tভালো \u00a0 আছি \r\n\r\n\r\n তুমি  ") == "আমি ভালো আছি\n\nতুমি"


@pytest.mark.parametrize("text", ["জায়গা  ভালো\u200b", "ক\u09c7\u09be", " a\r\nb ", "র\u200d্যাব"])
def test_idempotent(text):
    once = normalize_bengali(text)
    assert normalize_bengali(once) == once


def test_mojibake_repaired():
    original = "আমি ভালো আছি, তুমি কেমন আছো?"
    broken = mojibake(original)
    assert broken != original and "à¦" in broken
    assert fix_mojibake(broken) == original
    assert fix_mojibake(original) == original
    assert fix_mojibake("plain English") == "plain English"


def test_bengali_ratio():
    assert bengali_ratio("আমি ভালো") == 1.0
    assert bengali_ratio("hello") == 0.0
    assert bengali_ratio("১২৩ !!") == 0.0  # digits and punctuation are not letters
    assert bengali_ratio("আমি ok") == pytest.approx(3 / 5)
