"""RunDir: the run directory's layout, and the checks that fail before a slow model load."""

import pytest

from bondhu.errors import BondhuError
from bondhu.run import RunDir


def test_the_layout_is_named_in_one_place(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.config_file == tmp_path / "r" / "config.yaml"
    assert (run.adapter, run.checkpoints, run.summary) == (
        tmp_path / "r" / "adapter",
        tmp_path / "r" / "checkpoints",
        tmp_path / "r" / "summary.json",
    )
    assert (run.eval, run.merged) == (tmp_path / "r" / "eval", tmp_path / "r" / "merged")


def test_a_missing_run_and_a_folder_that_is_not_one_are_told_apart(tmp_path):
    with pytest.raises(BondhuError, match="run directory not found"):
        RunDir(tmp_path / "nowhere").config()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BondhuError, match="no config.yaml"):
        RunDir(tmp_path / "empty").config()


def test_checkpoints_and_a_finished_run_are_seen(tmp_path):
    run = RunDir(tmp_path)
    assert not run.holds_a_run() and not run.has_checkpoint()
    (tmp_path / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    assert run.holds_a_run() and run.has_checkpoint()


def test_the_adapter_is_checked_before_any_model_loads(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(BondhuError, match="the run has no adapter"):
        run.checked_adapter()
    run.adapter.mkdir()
    (run.adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(BondhuError, match="weights are missing"):
        run.checked_adapter()
    (run.adapter / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BondhuError, match=r"adapter_model\.safetensors: the adapter could not be loaded"):
        run.checked_adapter()
