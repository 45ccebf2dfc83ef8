"""Canonical text: one key for Bengali script, Banglish and chat spellings."""

from __future__ import annotations

import pytest

from bondhu.safety.canonical import clean, fold, to_ascii_digits


@pytest.mark.parametrize(
    "variants",
    [
        ["বাঁচতে চাই না", "bachte chai na", "bacte cai na", "বাচতে চাই না"],  # chandrabindu dropped
        ["নিজেকে শেষ করে দেব", "nijeke shesh kore deb"],
        ["ঘুমের ওষুধ খাব", "ghumer oshudh khabo", "ghumer osud khabo"],
        ["সবার জন্য একটা বোঝা", "sobar jonno ekta bojha"],
        ["ক্ষমা করে দিও", "khoma kore dio"],
        ["ছাদ থেকে লাফ", "chad theke laf", "chhad theke laaf"],
        ["বিদায়", "biday", "bidai"],
        ["গলায় দড়ি", "golay dori"],
    ],
)
def test_bengali_script_and_banglish_fold_to_one_key(variants):
    assert len({fold(v) for v in variants}) == 1, [fold(v) for v in variants]


def test_nukta_letters_in_either_encoding_are_one_letter():
    assert fold("\u09df") == fold("\u09af\u09bc")  # য় precomposed and decomposed
    assert fold("\u09dc") == fold("\u09a1\u09bc")  # ড়
    assert clean("কাপড়\u09dc") == clean("কাপড়\u09a1\u09bc")


def test_zero_width_repeats_emoji_and_digits():
    assert fold("মর\u200bতে") == fold("মরতে")
    assert fold("plzzzzz") == fold("plz") and fold("নাাাা") == fold("না")
    assert "pills" in clean("💊💊 tonight") and "haha" in clean("I'm dead 💀")
    assert "🙂" not in clean("ভালো 🙂")
    assert to_ascii_digits("১৯৮৮ ٠١٢ ०१२") == "1988 012 012"


def test_code_mixed_text_keeps_both_parts():
    assert fold("life টা end করে দিতে চাই") == "life ta end kre dite cai"
