"""The evaluation report: metrics.json, report.md, generations.jsonl and the chart."""

import json
from types import SimpleNamespace

from bondhu.evaluate.report import table_rows, write_outputs


def _out():
    metric = {
        "perplexity": 12.5,
        "bleu": 3.2,
        "chrf++": 20.1,
        "rouge1": 0.2,
        "rouge2": 0.05,
        "rougeL": 0.18,
        "distinct1": 0.5,
        "distinct2": 0.8,
        "mean_words": 6.0,
        "mean_tokens": 30.0,
        "bengali_ratio": 0.97,
    }
    return {
        "run": "runs/x",
        "split": "test",
        "samples": 1,
        "model": "tiny",
        "adapter": "runs/x/adapter",
        "backend": "hf",
        "results": {"base": dict(metric, perplexity=40.0), "fine-tuned": metric},
        "signatures": {"bleu": "sig-bleu", "chrf++": "sig-chrf", "tokenization": "bengali words"},
        "generation": {"do_sample": False},
        "skipped": {},
    }


def test_every_file_is_written_and_names_both_models(tmp_path):
    sample = SimpleNamespace(
        id="c1",
        emotion="sad",
        history=[{"role": "user", "content": "মন খারাপ"}],
        reference="শুনছি।",
        replies={"base": "হুম", "fine-tuned": "শুনছি, বলো।"},
    )
    write_outputs(tmp_path / "eval", _out(), [sample])
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text("utf-8"))
    assert saved["results"]["fine-tuned"]["perplexity"] == 12.5
    report = (tmp_path / "eval" / "report.md").read_text("utf-8")
    assert "base" in report and "fine-tuned" in report and "sig-bleu" in report
    gens = [json.loads(line) for line in (tmp_path / "eval" / "generations.jsonl").read_text("utf-8").splitlines()]
    assert gens[0]["replies"]["fine-tuned"] == "শুনছি, বলো।"
    assert (tmp_path / "eval" / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_table_rows_show_a_dash_for_a_missing_metric():
    out = _out()
    del out["results"]["base"]["bleu"]
    rows = table_rows(out["results"])
    bleu = next(r for r in rows if "BLEU" in r[0])
    assert bleu[1] == "–" and bleu[2] != "–"
