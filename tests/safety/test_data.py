"""The labelled message sets: size, balance, and the split that keeps the gate and blind sets out of fitting."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bondhu.errors import DataError
from bondhu.safety.canonical import fold
from bondhu.safety.evalset import SCRIPTS, load_set

DATA = Path(__file__).resolve().parents[2] / "data" / "safety"


@pytest.fixture(scope="module")
def sets() -> dict:
    return {name: load_set(DATA / f"{name}.tsv") for name in ("train", "dev", "gate", "ordinary", "blind")}


def test_the_training_set_is_big_and_has_as_many_hard_negatives_as_positives(sets):
    train = sets["train"]
    assert len(train) >= 4000
    labels = Counter(e.label for e in train)
    assert labels["none"] >= labels["crisis"] + labels["concern"]
    for script in SCRIPTS:
        assert sum(e.script == script and e.positive for e in train) >= 200, script
    assert sum(bool(e.history) for e in train) >= 200


def test_the_blind_set_meets_the_protocol(sets):
    blind = sets["blind"]
    assert len(blind) >= 300 and sum(bool(e.history) for e in blind) >= 30
    assert sum(not e.positive for e in blind) >= len(blind) / 3 - 1
    assert {e.script for e in blind} == set(SCRIPTS)


def test_no_message_is_in_two_sets(sets):
    keys = {name: {fold(" ".join(e.turns)) for e in rows} for name, rows in sets.items()}
    names = list(keys)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not keys[a] & keys[b], (a, b)


def test_bad_rows_name_the_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tcategory\tscript\tdialect\ttext\thistory\nmaybe\tx\tbengali\tstandard\thi\t\n", "utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:2: label: expected one of crisis, concern, none"):
        load_set(bad)
    header = tmp_path / "header.tsv"
    header.write_text("label\ttext\n", "utf-8")
    with pytest.raises(DataError, match=r"header\.tsv:1: header: missing column 'category'"):
        load_set(header)
