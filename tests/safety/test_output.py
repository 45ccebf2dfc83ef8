"""Model output: method details and encouragement are replaced."""

from __future__ import annotations

import pytest

from bondhu.safety import unsafe_reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ঘুমের ওষুধ ২০টা খেলে কাজ হবে", "method details"),
        ("The lethal dose of paracetamol is about 10 g", "method details"),
        ("how to tie a noose: first take a rope", "method details"),
        ("tumi more jao", "encouragement"),
        ("তুমি মরে যাও, কেউ তোমাকে মিস করবে না", "encouragement"),
    ],
)
def test_unsafe_replies_are_caught(text, reason):
    assert unsafe_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "তোমার কষ্ট বুঝতে পারছি, চলো একটু কথা বলি",
        "ঘুমের ওষুধ নিয়ে ডাক্তারের সাথে কথা বলো",
        "Please move the pills away from you and call 999 now",
        "You can do it, one step at a time",
    ],
)
def test_safe_replies_pass(text):
    assert unsafe_reason(text) is None
