"""Crisis-safety layer: detection quality on the phrase set, the crisis reply, the number filter
and helpline-file validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bondhu.chat.safety import (
    PLACEHOLDER,
    SafetyAssessment,
    SafetyLayer,
    allowed_numbers,
    assess,
    crisis_reply,
    detect_script,
    evaluate,
    filter_unlisted_numbers,
    load_helplines,
)
from bondhu.data.normalize import bengali_ratio

PHRASES = Path(__file__).with_name("safety_phrases.jsonl")
SCRIPTS = ("bengali", "romanized", "english")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(ln) for ln in PHRASES.read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def helplines() -> dict:
    return load_helplines()


# ---------------------------------------------------------------- phrase set and detection
def test_phrase_set_is_big_balanced_and_well_formed(rows):
    assert len(rows) >= 66
    for r in rows:
        assert set(r) == {"text", "crisis", "script", "note"}, r
        assert r["script"] in SCRIPTS and isinstance(r["crisis"], bool) and r["note"], r
    for script in SCRIPTS:
        sel = [r for r in rows if r["script"] == script]
        pos = sum(r["crisis"] for r in sel)
        assert pos >= 11 and len(sel) - pos >= 11, (script, pos, len(sel))
    assert len({r["text"] for r in rows}) == len(rows), "duplicate phrases"


@pytest.mark.parametrize("script", ["all", *SCRIPTS])
def test_recall_is_total_and_false_alarms_are_rare(rows, script):
    sel = [r for r in rows if script in ("all", r["script"])]
    results = [(r, assess(r["text"])) for r in sel]
    missed = [r["text"] for r, a in results if r["crisis"] and not a.is_crisis]
    false_alarms = [(r["text"], a.matched) for r, a in results if not r["crisis"] and a.is_crisis]
    pos, neg = sum(r["crisis"] for r in sel), sum(not r["crisis"] for r in sel)
    recall, far = 1 - len(missed) / pos, len(false_alarms) / neg
    print(f"\n{script}: n={len(sel)} recall={recall:.3f} false_alarm_rate={far:.3f}")
    assert not missed, f"missed crisis phrases: {missed}"
    assert far <= 0.10, f"false alarms: {false_alarms}"


def test_every_crisis_names_a_category_and_its_rules(rows):
    for r in rows:
        a = assess(r["text"])
        assert isinstance(a, SafetyAssessment)
        if a.is_crisis:
            assert a.category in {"suicidal_ideation", "suicide_plan", "self_harm"} and a.matched
        else:
            assert a.category is None and a.matched == ()


@pytest.mark.parametrize("text, category", [
    ("I bought pills to end it", "suicide_plan"),
    ("দড়ি কিনে এনেছি। ফ্যানে ঝুলে পড়ব আজ", "suicide_plan"),
    ("আজ রাতে নিজেকে শেষ করে দেব", "suicide_plan"),  # intent + time counts as a plan
    ("ami ar bachte chai na", "suicidal_ideation"),
    ("I've been cutting myself again", "self_harm"),
    ("ব্লেড দিয়ে হাত কাটি", "self_harm"),
])
def test_categories(text, category):
    assert assess(text).category == category


def test_a_masked_idiom_does_not_hide_a_real_signal():
    assert not assess("হাসতে হাসতে মরে গেলাম").is_crisis
    assert assess("হাসতে হাসতে মরে গেলাম, কিন্তু সত্যি বলতে আর বাঁচতে চাই না").is_crisis


def test_a_news_mention_does_not_hide_the_persons_own_wish():
    assert not assess("খবরে দেখলাম এক ছাত্র আত্মহত্যা করেছে").is_crisis
    assert assess("খবরে দেখলাম এক ছাত্র আত্মহত্যা করেছে, আমিও আত্মহত্যা করতে চাই").is_crisis


def test_script_detection_agrees_with_labels(rows):
    agree = sum(detect_script(r["text"]) == r["script"] for r in rows) / len(rows)
    print(f"\nscript detection agreement: {agree:.3f}")
    assert agree >= 0.9
    assert detect_script("ami khub sad, I want to talk") in {"romanized", "english"}
    assert detect_script("আমি খুব sad feel করছি today honestly") == "mixed"


def test_cli_prints_per_script_numbers():
    out = subprocess.run([sys.executable, "-m", "bondhu.chat.safety", "--eval", str(PHRASES)],
                         capture_output=True, text=True, check=True).stdout
    for word in ("precision", "recall", "false_alarm", "all", *SCRIPTS):
        assert word in out
    assert evaluate(PHRASES)["all"]["recall"] == 1.0


# ---------------------------------------------------------------- crisis reply
def test_crisis_reply_is_warm_bengali_and_lists_every_helpline(helplines):
    reply = crisis_reply(helplines)
    for number in ("999", "09612119911", "14416", "1-800-891-4416", "112"):
        assert number in reply
    assert "আমি এখানে আছি" in reply and "শুনছি" in reply  # stays with the person
    assert "গুরুত্বপূর্ণ" in reply  # their feelings matter
    assert "বিশ্বাসের" in reply and "জরুরি" in reply  # a trusted person, emergency
    assert reply.rstrip().endswith("?")  # invites them to keep talking
    assert bengali_ratio(reply) > 0.7
    assert not any(w in reply for w in ("আপনি", "আপনার", "করুন")), "must use tumi form"


def test_crisis_reply_regions(helplines):
    india = crisis_reply(helplines, regions=["IN"])
    assert "14416" in india and "09612119911" not in india
    assert crisis_reply(helplines, regions=["XX"]) == crisis_reply(helplines)  # unknown: all regions
    assert crisis_reply() == crisis_reply(helplines)


def test_safety_layer(helplines):
    layer = SafetyLayer(helplines)
    assert layer.reply_for(layer.check("গরমে মরে যাচ্ছি")) is None
    reply = layer.reply_for(layer.check("আমি আর বাঁচতে চাই না"))
    assert reply is not None and "09612119911" in reply
    assert layer.clean_output("Call 988 now") == f"Call {PLACEHOLDER} now"


# ---------------------------------------------------------------- number filter
@pytest.mark.parametrize("text", [
    "এখনই 911 এ কল করো",
    "Call the lifeline at 1-800-273-8255 tonight",
    "ফোন করো ০১৭১২৩৪৫৬৭৮ নম্বরে",
    "Ring +44 20 7946 0958",
    "হেল্পলাইন ৯৮৮ তে যোগাযোগ করো",
    "01712-345678",
])
def test_unlisted_numbers_are_removed(helplines, text):
    cleaned = filter_unlisted_numbers(text, helplines)
    assert PLACEHOLDER in cleaned
    assert not any(ch.isdigit() for ch in cleaned.replace(PLACEHOLDER, "")), cleaned


@pytest.mark.parametrize("text", [
    "জরুরি হলে 999 নম্বরে কল করো",
    "কান পেতে রই: 09612119911",
    "ভারতে Tele-MANAS: 14416 বা 1-800-891-4416, জরুরি হলে 112",
    "৯৯৯ নম্বরে ফোন করো",
    "Call +880 9612-119911",
    "২০২৪ সালে ৩ দিন হাসপাতালে ছিলাম",
    "Wait 10 minutes, breathe slowly, count to 100",
    "২০২৩-২০২৪ সেশনে ভর্তি হয়েছি",
    "৫০০০০০০ টাকা ঋণ",
])
def test_listed_numbers_and_ordinary_numbers_are_kept(helplines, text):
    assert filter_unlisted_numbers(text, helplines) == text


def test_allowed_numbers_compare_by_digits(helplines):
    allowed = allowed_numbers(helplines)
    assert {"999", "112", "14416"} <= allowed
    # "+8809612119911" and "09612119911" are the same number
    assert filter_unlisted_numbers("+8809612119911", helplines) == "+8809612119911"
    assert filter_unlisted_numbers("০৯৬১২১১৯৯১১", helplines) == "০৯৬১২১১৯৯১১"


# ---------------------------------------------------------------- helpline file
def test_bundled_helplines_are_valid(helplines):
    assert helplines["version"] == 1 and helplines["last_verified"]
    assert set(helplines["regions"]) == {"BD", "IN"}
    kpr = helplines["regions"]["BD"]["lines"][1]
    assert kpr["number"] == "09612119911" and "verify" in kpr.get("verify", "")


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "helplines.json"
    path.write_text(json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_missing_line_field_names_the_field_and_file(helplines, tmp_path):
    data = json.loads(json.dumps(helplines))
    del data["regions"]["BD"]["lines"][1]["tel"]
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=r"regions\.BD\.lines\[1\]\.tel") as err:
        load_helplines(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("regions"), "regions"),
    (lambda d: d.pop("version"), "version"),
    (lambda d: d["regions"]["IN"].pop("name"), r"regions\.IN\.name"),
    (lambda d: d["regions"]["IN"]["lines"][0]["name"].pop("en"), r"lines\[0\]\.name\.en"),
    (lambda d: d["regions"]["BD"]["lines"][0].update(tel="call 999"), r"lines\[0\]\.tel"),
    (lambda d: d["regions"]["BD"].update(lines=[]), r"regions\.BD\.lines"),
])
def test_invalid_files_raise_value_error(helplines, tmp_path, mutate, field):
    data = json.loads(json.dumps(helplines))
    mutate(data)
    with pytest.raises(ValueError, match=field):
        load_helplines(_write(tmp_path, data))


def test_broken_json_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_helplines(_write(tmp_path, "{not json"))
