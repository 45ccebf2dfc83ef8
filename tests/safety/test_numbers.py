"""The phone-number filter on model output."""

from __future__ import annotations

import pytest

from bondhu.safety import PLACEHOLDER, allowed_numbers, filter_unlisted_numbers


# ---------------------------------------------------------------- number filter
@pytest.mark.parametrize(
    "text",
    [
        "এখনই 911 এ কল করো",
        "Call the lifeline at 1-800-273-8255 tonight",
        "ফোন করো ০১৭১২৩৪৫৬৭৮ নম্বরে",
        "Ring +44 20 7946 0958",
        "হেল্পলাইন ৯৮৮ তে যোগাযোগ করো",
        "01712-345678",
        "call 017.1234.5678",  # split by dots
        "call 0171\u200b234\u200b5678",  # split by zero-width spaces
        "ফোন: ٠١٧١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "फ़ोन: ०१७१२३४५६७८",  # Devanagari digits
        "হেল্পলাইন ৯\u200c৮\u200c৮",  # a short code split by zero-width non-joiners
    ],
)
def test_unlisted_numbers_are_removed(helplines, text):
    cleaned = filter_unlisted_numbers(text, helplines)
    assert PLACEHOLDER in cleaned
    assert not any(ch.isdigit() for ch in cleaned.replace(PLACEHOLDER, "")), cleaned


@pytest.mark.parametrize(
    "text",
    [
        "জরুরি হলে 999 নম্বরে কল করো",
        "কান পেতে রই: 09612119911",
        "ভারতে Tele-MANAS: 14416 বা 1-800-891-4416, জরুরি হলে 112",
        "৯৯৯ নম্বরে ফোন করো",
        "Call +880 9612-119911",
        "২০২৪ সালে ৩ দিন হাসপাতালে ছিলাম",
        "Wait 10 minutes, breathe slowly, count to 100",
        "২০২৩-২০২৪ সেশনে ভর্তি হয়েছি",
        "৫০০০০০০ টাকা ঋণ",
        "দাম ৩.৫ টাকা",
        "call ٩٩٩ now",  # a listed number in Arabic-Indic digits
    ],
)
def test_listed_numbers_and_ordinary_numbers_are_kept(helplines, text):
    assert filter_unlisted_numbers(text, helplines) == text


def test_allowed_numbers_compare_by_digits(helplines):
    allowed = allowed_numbers(helplines)
    assert {"999", "112", "14416"} <= allowed
    # "+8809612119911" and "09612119911" are the same number
    assert filter_unlisted_numbers("+8809612119911", helplines) == "+8809612119911"
    assert filter_unlisted_numbers("০৯৬১২১১৯৯১১", helplines) == "০৯৬১২১১৯৯১১"


def test_the_text_around_a_removed_number_is_kept_exactly(helplines):
    text = "ফোন করো ০১৭\u200b১২৩৪৫৬৭৮ এখনই, বা ৯৯৯"
    assert filter_unlisted_numbers(text, helplines) == f"ফোন করো {PLACEHOLDER} এখনই, বা ৯৯৯"
