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


# ---------------------------------------------------------------- the filter on a streamed reply
STREAMED = [
    "আমার বন্ধুর নম্বর 12345 এ ফোন করো।",  # a short code the call word after it makes a phone number
    "the code is 4321, then call it",
    "৫০০ টাকা লাগবে, আর ৯৯৯ নম্বরে কল করো",  # an amount, then a listed number
    "call +880 1712-345678 or +(91) 98765 43210 now",
    "ফোন করো ০১৭\u200b১২৩৪৫৬৭৮ এখনই, বা ৯৯৯",
    "দাম ৩.৫ টাকা, ২০২৪ সালে ৩ দিন, 1 2 3 4 5 6 7 8 গুনে শ্বাস নাও",
    "কান পেতে রই: 09612119911 (বিকেল ৩টা থেকে)",
    "ring 988" + " " * 40 + "later",  # the context after a number arriving long after it
    "number\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b 5551234",
    "১২ (৩৪৫) ৬৭-৮৯০১ নম্বরে, 12 (3 or 4) people, 7 (8",  # short runs that grow, and ones that stop
]


@pytest.mark.parametrize("text", STREAMED)
def test_a_streamed_reply_is_filtered_as_the_whole_reply_is(helplines, text):
    import random

    from bondhu.safety.numbers import NumberStream

    whole, rng = filter_unlisted_numbers(text, helplines), random.Random(text)
    for size in [1, 2, 3, 5, 8, None]:
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 12))) if size is None else None
        bounds = [0, *cuts, len(text)] if cuts else list(range(0, len(text), size)) + [len(text)]
        stream, out = NumberStream(allowed_numbers(helplines)), []
        for a, b in zip(bounds, bounds[1:]):
            out.append(stream.feed(text[a:b]))
            # whatever has been handed out is the start of the filtered reply, never a removed number's part
            assert whole.startswith("".join(out)), ("".join(out), whole)
        out.append(stream.flush())
        assert "".join(out) == whole


def test_text_after_a_number_too_short_to_be_a_phone_is_not_held_back(helplines):
    from bondhu.safety.numbers import NumberStream

    stream = NumberStream(allowed_numbers(helplines))
    assert stream.feed("৩ দিন পরে") == "৩ দিন পরে" and stream.feed(" 10") == " " and stream.feed(" মিনিট") == "10 মিনিট"


def test_random_streams_of_numbers_and_words_are_filtered_as_whole_replies(helplines):
    import random

    from bondhu.safety.numbers import NumberStream

    atoms = ["call", " ", "  ", "ফোন", "নম্বরে", "টাকা", "%", "জন", "১", "৩", "9", "0", "1", "-", ".", "(", ")"]
    atoms += ["+", "\u200b", "৯৯৯", "09612119911", "+880", "আমি", ",", "।", "number", "rs", "2024", "\n"]
    rng, allowed = random.Random(7), allowed_numbers(helplines)
    for _ in range(1500):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 40)))
        whole, stream, out, i = filter_unlisted_numbers(text, helplines), NumberStream(allowed), [], 0
        while i < len(text):
            size = rng.randint(1, 6)
            out.append(stream.feed(text[i : i + size]))
            i += size
            assert whole.startswith("".join(out)), (text, out)
        assert "".join(out) + stream.flush() == whole, text
