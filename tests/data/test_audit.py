"""`bondhu data audit`: its figures on small sets whose answers are known, and its errors."""

import json

import pytest

from bondhu.data.audit import Targets, audit, check, script_of
from bondhu.errors import DataError


def conv(cid, user, reply, scenario=None, emotion="sad"):
    out = {
        "id": cid,
        "emotion": emotion,
        "situation": "",
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}],
    }
    return {**out, "scenario": scenario} if scenario else out


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_question_habits_scripts_calques_and_openers(tmp_path):
    rows = [
        conv("a", "আজ মনটা খারাপ।", "শুনে খারাপ লাগল। কী হয়েছে?"),
        conv("b", "ami valo nei re, ki korbo bujhtesi na", "হুম, বুঝলাম। একটু পানি খেয়ে নাও, তারপর বলো।"),
        conv("c", "office e boss ta abar shout korlo, আমি আর পারছি না", "এটা সত্যিই ক্লান্তিকর, একদম ন্যায্য রাগ।"),
    ]
    report = audit([write(tmp_path / "train.jsonl", rows)], calques=["ন্যায্য"])
    s = report["overall"]
    assert s["conversations"] == 3 and s["assistant_turns"] == 3
    assert s["question_ending"] == pytest.approx(1 / 3) and s["no_question"] == pytest.approx(2 / 3)
    assert s["conversations_with_romanized_or_mixed_users"] == pytest.approx(2 / 3)
    assert s["practical_requests_heuristic"] == pytest.approx(1 / 3)  # "ki korbo"
    assert s["calques"] == {"ন্যায্য": 1}
    assert s["top_openers"][0][1] == 1 and len(s["top_openers"]) == 3
    assert (script_of("ami valo nei"), script_of("আমি ভালো নেই"), script_of("life টা end করে দিতে চাই")) == (
        "romanized",
        "bengali",
        "mixed",
    )


def test_leaks_between_splits_are_found(tmp_path):
    story = "ঈদের আগের রাতে বাজারে আগুন লাগল, আমাদের দোকানটা পুড়ে ছাই হয়ে গেছে, কিছুই বাঁচাতে পারিনি"
    train = write(
        tmp_path / "train.jsonl",
        [conv("t1", story, "খুব কষ্টের।", "market-fire"), conv("t2", "পরীক্ষা ভালো হয়নি।", "আবার চেষ্টা করা যাবে।", "exam")],
    )
    test = write(
        tmp_path / "test.jsonl",
        [conv("x1", story + "।", "এটা ভয়ানক।", "market-fire-2"), conv("x2", "নতুন চাকরি পেয়েছি!", "দারুণ খবর!", "exam")],
    )
    x = audit([train, test])["cross_split"]
    assert x["shared_scenarios"] == [["exam", "train", "test"]]
    assert [row[:2] for row in x["near_copies"]] == [["x1", "t1"]]
    assert x["ngram_overlap_with_train"]["test"] > 0


def test_targets_are_checked_and_named(tmp_path):
    report = audit([write(tmp_path / "train.jsonl", [conv("a", "মন খারাপ", "কেন?")])])
    missed = check(report, Targets())
    assert any(m.startswith("conversations 1 < 1500") for m in missed)
    assert any("question-ending replies 100.0%" in m for m in missed)
    assert not check(
        report,
        Targets(
            conversations=1,
            per_emotion=1,
            train=1,
            validation=0,
            test=0,
            max_question_ending=1,
            min_no_question=0,
            min_romanized_or_mixed=0,
            min_practical=0,
            min_risk_disclosures=0,
            min_red_flags=0,
        ),
    )


def test_bad_input_names_the_file_line_and_field(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps(conv("a", "x", "y")) + "\n" + '{"id": "b", "messages": [{"role": "user"}]}\n', "utf-8")
    with pytest.raises(DataError) as err:
        audit([bad])
    assert err.value.line == 2 and "messages" in err.value.field


def test_the_cli_writes_json_and_png(tmp_path, run_cli):
    f = write(tmp_path / "train.jsonl", [conv("a", "আজ মনটা খারাপ।", "শুনছি। কী হয়েছে?")])
    result = run_cli("data", "audit", str(f), "--output", str(tmp_path / "out"))
    assert result.code == 0, result.err
    saved = json.loads((tmp_path / "out" / "audit.json").read_text("utf-8"))
    assert saved["overall"]["conversations"] == 1 and (tmp_path / "out" / "audit.png").stat().st_size > 1000
    assert "risk" in saved["overall"]  # the crisis detector read the user turns
    missing = run_cli("data", "audit", str(tmp_path / "nope.jsonl"))
    assert missing.code != 0 and "nope.jsonl" in missing.err and "Traceback" not in missing.err


def test_the_bundled_dataset_meets_the_dataset_targets():
    from bondhu.safety import CrisisDetector
    from helpers import ROOT

    folder = ROOT / "data" / "bondhu-empathy"
    files = [folder / f"{s}.jsonl" for s in ("train", "validation", "test")]
    report = audit(files, risk=CrisisDetector().highest_level)
    assert report["targets_missed"] == []
