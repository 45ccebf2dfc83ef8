"""`bondhu evaluate` on a tiny trained run, offline."""

import json
import math
import shutil

import pytest

from helpers import MINI


@pytest.fixture(scope="module")
def trained_run(train_tiny_run):
    # One eval batch holds the whole validation set, so the trainer's eval loss is token-weighted too.
    return train_tiny_run(
        "ev",
        f"data.validation={MINI}",
        f"data.test={MINI}",
        "training.max_steps=-1",
        "training.epochs=2",
        "training.per_device_batch_size=8",
        "evaluation.max_new_tokens=12",
    )


def test_full_evaluate_writes_every_output(trained_run, run_cli):
    run = trained_run
    result = run_cli("evaluate", run, "--split", "test")
    assert result.code == 0, result.err
    out = json.loads((run / "eval" / "metrics.json").read_text("utf-8"))
    assert set(out["results"]) == {"fine-tuned", "base"} and out["samples"] == 6
    for name in ("fine-tuned", "base"):
        r = out["results"][name]
        assert r["perplexity"] > 1 and 0 <= r["bleu"] <= 100 and 0 <= r["rougeL"] <= 1
        assert 0 <= r["bengali_ratio"] <= 1 and r["mean_tokens"] > 0
    assert "tok:none" in out["signatures"]["bleu"] and "bondhu-bn" in out["signatures"]["tokenization"]
    report = (run / "eval" / "report.md").read_text("utf-8")
    assert "| Perplexity ↓ |" in report and "**reference**" in report and "**base**" in report
    gens = [json.loads(x) for x in (run / "eval" / "generations.jsonl").read_text("utf-8").splitlines()]
    assert len(gens) == 6 and set(gens[0]["replies"]) == {"fine-tuned", "base"}
    assert (run / "eval" / "metrics.png").stat().st_size > 1000
    assert "BLEU" in result.out and "fine-tuned" in result.out


def test_evaluation_is_deterministic(trained_run):
    from bondhu.evaluate.evaluator import Evaluator

    run = trained_run
    a = Evaluator(run, "test", 3, False, progress=False).evaluate()
    b = Evaluator(run, "test", 3, False, progress=False).evaluate()
    assert a["results"] == b["results"]


def test_perplexity_equals_exp_of_the_trainers_eval_loss(trained_run):
    from bondhu.evaluate.evaluator import Evaluator

    run = trained_run
    rows = list(__import__("csv").DictReader(open(run / "loss.csv", encoding="utf-8")))
    eval_loss = float([r for r in rows if r["eval_loss"]][-1]["eval_loss"])
    out = Evaluator(run, "validation", None, False, progress=False).evaluate()
    assert out["results"]["fine-tuned"]["perplexity"] == pytest.approx(math.exp(eval_loss), rel=1e-4)


def test_unknown_run_and_missing_adapter(run_cli, trained_run, tmp_path):
    missing = run_cli("evaluate", tmp_path / "nope")
    assert missing.code == 1 and "run directory not found" in missing.err
    run = trained_run
    broken = tmp_path / "broken"
    shutil.copytree(run, broken, ignore=shutil.ignore_patterns("adapter", "checkpoints"))
    result = run_cli("evaluate", broken)
    assert result.code == 1 and "has no adapter" in result.err and "Traceback" not in result.err


def test_empty_split_and_non_bengali_references(trained_run, tmp_path, run_cli):
    import yaml

    run = trained_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints"))
    english = tmp_path / "english.jsonl"
    good = MINI.read_text("utf-8").splitlines()[0]
    english.write_text(
        good
        + "\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "আমার মন খারাপ"},
                    {"role": "assistant", "content": "I am sorry, what happened?"},
                ]
            }
        )
        + "\n"
    )
    cfg = yaml.safe_load((copy / "config.yaml").read_text("utf-8"))
    cfg["data"]["test"] = str(english)
    cfg["data"]["validation"] = None
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")
    result = run_cli("evaluate", copy, "--no-base")
    assert result.code == 0, result.err
    out = json.loads((copy / "eval" / "metrics.json").read_text("utf-8"))
    assert out["samples"] == 1 and out["skipped"] == {"reference_not_bengali": 1}
    none = run_cli("evaluate", copy, "--split", "validation")
    assert none.code == 1 and "no data.validation split" in none.err
