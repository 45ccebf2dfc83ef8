"""Pooling and splitting conversations (`bondhu data split`)."""

import json

import pytest

from bondhu.data.splits import pool_records, stratified_split, write_splits
from bondhu.errors import BondhuError
from helpers import MINI


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def _records(n, emotions=("sad", "angry")):
    return [
        {
            "id": f"c{i:02d}",
            "emotion": emotions[i % len(emotions)],
            "situation": "",
            "messages": [{"role": "user", "content": f"মন খারাপ {i}"}, {"role": "assistant", "content": "শুনছি।"}],
        }
        for i in range(n)
    ]


def test_pooling_normalizes_text_and_keeps_every_record(tmp_path):
    raw = _records(2)
    raw[0]["messages"][0]["content"] = "  আজ\u200b মনটা   ভালো নেই  "
    pooled = pool_records([MINI, _write(tmp_path / "more.jsonl", raw)])
    assert len(pooled) == len(MINI.read_text("utf-8").splitlines()) + 2
    assert pooled[-2]["messages"][0]["content"] == "আজ মনটা ভালো নেই"


def test_a_repeated_id_names_the_file_and_line(tmp_path):
    a = _write(tmp_path / "a.jsonl", _records(3))
    b = _write(tmp_path / "b.jsonl", _records(2)[1:])
    with pytest.raises(BondhuError, match=r"b\.jsonl:1: id: duplicate id 'c01'"):
        pool_records([a, b])


def test_splits_are_disjoint_stratified_and_reproducible(tmp_path):
    records = _records(40)
    first = stratified_split(records, seed=3)
    assert first == stratified_split(list(reversed(records)), seed=3)
    ids = [{r["id"] for r in rows} for rows in first.values()]
    assert sum(map(len, ids)) == 40 and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for rows in first.values():  # each emotion keeps its share in every split
        emotions = [r["emotion"] for r in rows]
        assert emotions.count("sad") == emotions.count("angry")
    assert stratified_split(records, seed=4) != first
    assert write_splits(records, tmp_path / "out", seed=3) == {"train": 32, "validation": 4, "test": 4}
    assert (tmp_path / "out" / "test.jsonl").read_text("utf-8").count("\n") == 4


def test_a_scenario_never_crosses_splits():
    records = _records(40)
    for i in range(0, 40, 4):  # pairs of conversations about one event, under different emotions
        records[i]["scenario"] = records[i + 1]["scenario"] = f"event-{i}"
    splits = stratified_split(records, seed=1)
    where = {r["id"]: name for name, rows in splits.items() for r in rows}
    for i in range(0, 40, 4):
        assert where[f"c{i:02d}"] == where[f"c{i + 1:02d}"]
    assert sum(map(len, splits.values())) == 40 and all(splits.values())
