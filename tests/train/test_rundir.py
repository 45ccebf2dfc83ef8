"""What a finished run leaves behind: loss.csv, loss.png, summary.json and the memory figures."""

import csv
import json

from bondhu.train import rundir


def test_loss_rows_merge_training_and_validation_by_step(tmp_path):
    history = [
        {"step": 1, "loss": 2.0, "learning_rate": 1e-3, "epoch": 0.5},
        {"step": 2, "loss": 1.5},
        {"step": 2, "eval_loss": 1.7},
        {"step": 3, "grad_norm": 0.1},
        {"train_runtime": 9.0},
    ]
    rows = rundir.write_loss_csv(history, tmp_path / "loss.csv")
    assert [(r["step"], r["loss"], r["eval_loss"]) for r in rows] == [(1, 2.0, ""), (2, 1.5, 1.7)]
    on_disk = list(csv.DictReader(open(tmp_path / "loss.csv", encoding="utf-8")))
    assert [r["eval_loss"] for r in on_disk] == ["", "1.7"]


def test_the_plot_and_the_summary_are_written(tmp_path):
    rows = rundir.write_loss_csv([{"step": 1, "loss": 2.0}, {"step": 2, "eval_loss": 1.9}], tmp_path / "l.csv")
    rundir.plot_loss(rows, tmp_path / "loss.png", "tiny")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    rundir.write_summary(tmp_path / "summary.json", {"name": "বন্ধু", "steps": 2})
    assert json.loads((tmp_path / "summary.json").read_text("utf-8")) == {"name": "বন্ধু", "steps": 2}
    assert "বন্ধু" in (tmp_path / "summary.json").read_text("utf-8")  # not \\u-escaped
    assert rundir.peak_memory_gib()["peak_rss_gib"] > 0
