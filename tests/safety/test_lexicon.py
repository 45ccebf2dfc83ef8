"""The concept lexicon: risk factors, person and negation, and the non-crisis senses."""

from __future__ import annotations

import pytest

from bondhu.safety.lexicon import judge, load_concepts


@pytest.mark.parametrize(
    "text, category",
    [
        ("আজ রাতে ঘুমের ওষুধ সব খেয়ে ফেলব", "method"),
        ("ajke rate ghumer oshudh gula sob kheye felbo", "method"),
        ("sleeping pills গুলো সব খেয়ে নিব tonight", "method"),
        ("I tied a rope to the ceiling fan, I'm going to do it tonight", "method"),
        ("I loaded my revolver and I will use it on myself tonight", "method"),  # round 8's means
        ("kal bike ta truck er samne dhukay dibo, ar bachte chai na", "method"),
        ("আজ রাতেই ইনজেকশনটা নিজের শিরায় দিয়ে দেব, আর বাঁচতে চাই না", "method"),
        ("নিজেকে শেষ করে দেব আজকে", "suicidal_intent"),
        ("I want to kill myself", "suicidal_intent"),
        ("সবাইকে বিদায়, চিরতরে চলে যাচ্ছি", "goodbye"),
        ("এইমাত্র নিজেকে কেটেছি, রক্ত থামছে না", "in_progress"),
    ],
)
def test_crisis_concepts(text, category):
    v = judge(text)
    assert v.level == "crisis" and v.category == category and v.reasons, v


@pytest.mark.parametrize(
    "text",
    [
        "আমি আর বাঁচতে চাই না",
        "ami sobar jonno ekta bojha",
        "আল্লাহ আমারে তুইলা নাও",
        "মাঝে মাঝে নিজের হাত কাটতে ইচ্ছে করে",
    ],
)
def test_concern_concepts(text):
    assert judge(text).level == "concern"


@pytest.mark.parametrize(
    "text",
    [
        "এবারও প্রশ্ন ফাঁস হয়েছে, পরীক্ষা বাতিল হবে?",
        "খুনির ফাঁসির রায় হয়েছে আজ",
        "ধানের ক্ষেতে কীটনাশক কখন দিতে হয়?",
        "গরমে মরে যাচ্ছি আজকে",
        "this exam is killing me lol",
        "আমি মরতে চাই না, শুধু কথা বলতে চাই",
        "খবরে দেখলাম এক ছাত্র আত্মহত্যা করেছে",
        "সবাইকে বিদায়, কাল থেকে নতুন অফিসে জয়েন করছি!",
        "আমি নিজেকে মেরে ফেলব না, চিন্তা কোরো না",  # the negation comes after the verb
        "ami nijeke mere felbo na",
        "সবজি কাটতে গিয়ে হাত কেটে ফেলেছি",  # a kitchen accident
        "আমি ভাত দিয়ে মাছ খেতে চাই",  # দিয়ে ("with") folds like English "die"
        "ma ke ekta gift diye dite chai",
        "তিন গুণ দাম দিয়ে কিনতে হবে, আর পারছি না",  # গুণ ("times") folds like "gun"
    ],
)
def test_non_crisis_senses(text):
    assert judge(text).level == "none", judge(text)


def test_english_on_is_not_the_negation_it_folds_like():
    # "on" and Chittagonian "ন" share a folded form; only the second denies.
    assert judge("gonna kill myself on my birthday next week").level == "crisis"


def test_a_bare_no_in_the_yaml_is_rejected_with_its_place(tmp_path):
    bad = tmp_path / "concepts.yaml"
    bad.write_text("concepts:\n  negation:\n    - no\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"concepts\.negation: False is not a string"):
        load_concepts(str(bad))
