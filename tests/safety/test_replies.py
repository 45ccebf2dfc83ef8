"""Helplines and fixed replies: the crisis message, the concern check-in, helpline-file validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bondhu.data.normalize import bengali_ratio
from bondhu.safety import Assessment, SafetyLayer, concern_check_in, crisis_follow_up, crisis_reply, load_helplines


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


def test_concern_check_in_asks_directly_and_lists_helplines(helplines):
    text = concern_check_in(helplines)
    assert "নিজেকে আঘাত" in text and text.count("?") == 1  # one plain, direct question
    for number in ("999", "09612119911", "14416"):
        assert number in text
    assert bengali_ratio(text) > 0.7
    assert "14416" in concern_check_in(helplines, ["IN"]) and "09612119911" not in concern_check_in(helplines, ["IN"])


def test_crisis_follow_up_remembers_asks_if_safe_and_lists_helplines(helplines):
    text = crisis_follow_up(helplines)
    assert "ভুলে যাইনি" in text and "নিরাপদে আছ?" in text  # not forgotten; are you safe now
    for number in ("999", "09612119911", "14416"):
        assert number in text
    assert bengali_ratio(text) > 0.7 and not any(w in text for w in ("আপনি", "করুন"))
    assert "09612119911" not in crisis_follow_up(helplines, ["IN"])


def test_a_standing_crisis_gets_the_models_reply_and_the_follow_up_not_the_crisis_reply(helplines):
    layer = SafetyLayer(helplines)
    now = Assessment("crisis", "method")
    standing = Assessment("crisis", "method", elevated=True, from_context=True, standing=True)
    assert layer.reply_for(now) == crisis_reply(helplines) and layer.check_in_for(now) is None
    assert layer.reply_for(standing) is None and layer.check_in_for(standing) == crisis_follow_up(helplines)
    assert layer.system_note(standing) is not None and standing.needs_helplines
    assert layer.check_in_for(Assessment("concern")) == concern_check_in(helplines)


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


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("regions"), "regions"),
        (lambda d: d.pop("version"), "version"),
        (lambda d: d["regions"]["IN"].pop("name"), r"regions\.IN\.name"),
        (lambda d: d["regions"]["IN"]["lines"][0]["name"].pop("en"), r"lines\[0\]\.name\.en"),
        (lambda d: d["regions"]["BD"]["lines"][0].update(tel="call 999"), r"lines\[0\]\.tel"),
        (lambda d: d["regions"]["BD"].update(lines=[]), r"regions\.BD\.lines"),
    ],
)
def test_invalid_files_raise_value_error(helplines, tmp_path, mutate, field):
    data = json.loads(json.dumps(helplines))
    mutate(data)
    with pytest.raises(ValueError, match=field):
        load_helplines(_write(tmp_path, data))


def test_broken_json_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_helplines(_write(tmp_path, "{not json"))
