"""`bondhu safety check | eval | train` as a user runs them."""

from __future__ import annotations

import json


def test_check_prints_level_category_and_reasons(run_cli):
    out = run_cli("safety", "check", "ajke rate ghumer oshudh gula sob kheye felbo")
    assert out.code == 0 and "level: crisis (method)" in out.out and "lexicon:" in out.out
    quiet = run_cli("safety", "check", "আজ আমার জন্মদিন, খুব খুশি লাগছে")
    assert quiet.code == 0 and "level: none" in quiet.out
    context = run_cli("safety", "check", "তাই ঠিক করেছি চলে যাব", "--history", "সব চেষ্টা করে দেখেছি, কিছুতেই কিছু হয় না")
    assert "level: crisis" in context.out


def test_eval_reports_per_script_and_category_and_lists_misses(run_cli, tmp_path):
    rows = [
        "label\tcategory\tscript\tdialect\ttext\thistory",
        "crisis\tmethod\tromanized\tdhaka\tajke rate ghumer oshudh gula sob kheye felbo\t",
        "crisis\tmethod\tenglish\tstandard\tbanana smoothie recipe please\t",
        "none\teveryday_use\tbengali\tstandard\tভাত রান্না করতে কতক্ষণ লাগে?\t",
    ]
    path = tmp_path / "set.tsv"
    path.write_text("\n".join(rows) + "\n", "utf-8")
    out = run_cli("safety", "eval", str(path), "--json", str(tmp_path / "r.json"))
    assert out.code == 0
    for word in ("recall", "crisis false alarms", "romanized", "english", "per category", "misses", "banana"):
        assert word in out.out, word
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert report["overall"]["recall"] == 0.5 and report["overall"]["any_false_alarms"] == 0.0
    assert [m["where"] for m in report["misses"]] == [f"{path}:3"]


def test_eval_of_a_bad_file_is_one_line(run_cli, tmp_path):
    out = run_cli("safety", "eval", str(tmp_path / "none.tsv"))
    assert out.code != 0 and "none.tsv: file: not found" in out.err and "Traceback" not in out.err


def test_train_rebuilds_a_model_that_check_can_use(run_cli, tmp_path):
    rows = ["label\tcategory\tscript\tdialect\ttext\thistory"]
    for i in range(12):
        rows.append(f"crisis\tmethod\tbengali\tstandard\tআজ রাতে ঘুমের ওষুধ {i} টা খেয়ে ফেলব\t")
        rows.append(f"none\tdistress\tbengali\tstandard\tআজ রাতে {i} টা সিনেমা দেখব\t")
        rows.append(f"concern\tburden\tbengali\tstandard\tআমি সবার কাছে বোঝা {i}\t")
    data = tmp_path / "train.tsv"
    data.write_text("\n".join(rows) + "\n", "utf-8")
    model = tmp_path / "m.joblib"
    out = run_cli("safety", "train", "--train", str(data), "--dev", str(data), "-o", str(model))
    assert out.code == 0 and model.is_file() and "thresholds" in out.out and "MB" in out.out
    check = run_cli("safety", "check", "আজ রাতে ঘুমের ওষুধ খেয়ে ফেলব", "--classifier", str(model))
    assert "level: crisis" in check.out
