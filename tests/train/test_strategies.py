"""Which strategy each setting picks, and why; and data, model and run-directory errors as a user meets them."""

import pytest

from bondhu.errors import BondhuError
from bondhu.train import strategies
from bondhu.train.strategies import LoRAStrategy, QLoRAStrategy, UnslothStrategy, select_strategy
from helpers import MINI


def test_auto_on_this_cpu_machine_picks_qlora_and_says_why():
    choice = select_strategy("auto")
    assert isinstance(choice.strategy, QLoRAStrategy)
    assert "unsloth skipped: no CUDA GPU" in choice.reason and "qlora" in choice.reason


def test_auto_picks_unsloth_when_a_gpu_and_unsloth_are_there(monkeypatch):
    monkeypatch.setattr(strategies, "unsloth_usable", lambda: (True, "a CUDA GPU is present and unsloth imports"))
    choice = select_strategy("auto")
    assert isinstance(choice.strategy, UnslothStrategy) and "CUDA GPU" in choice.reason
    # several processes: Unsloth runs DDP too (one whole model per rank), and the reason says so
    multi = select_strategy("auto", num_processes=2)
    assert isinstance(multi.strategy, UnslothStrategy) and "DDP on 2 processes" in multi.reason


def test_auto_falls_back_to_lora_without_bitsandbytes(monkeypatch):
    monkeypatch.setattr(strategies, "bitsandbytes_usable", lambda: (False, "bitsandbytes is not installed"))
    choice = select_strategy("auto")
    assert isinstance(choice.strategy, LoRAStrategy)
    assert "qlora skipped: bitsandbytes is not installed" in choice.reason


def test_names_pick_their_strategy():
    assert isinstance(select_strategy("lora").strategy, LoRAStrategy)
    assert isinstance(select_strategy("qlora").strategy, QLoRAStrategy)
    assert "by name" in select_strategy("qlora").reason


def test_unsloth_by_name_without_gpu_is_a_clear_error():
    with pytest.raises(BondhuError, match="unsloth cannot run here: no CUDA GPU"):
        select_strategy("unsloth")


def test_unsloth_trains_packed_rows_without_cudnn_attention_and_restores_it():
    import torch

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with UnslothStrategy().training_context(padding_free=True):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with pytest.raises(RuntimeError):  # restored on the way out of a failed run, too
        with UnslothStrategy().training_context(padding_free=True):
            raise RuntimeError("out of memory")
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    # padded batches and the PEFT strategies leave attention to torch's own choice
    for strategy, packed in ((UnslothStrategy(), False), (QLoRAStrategy(), True), (LoRAStrategy(), True)):
        with strategy.training_context(padding_free=packed):
            assert torch.backends.cuda.cudnn_sdp_enabled() == before


@pytest.fixture()
def fake_unsloth(tmp_path, monkeypatch):
    """An installed ``unsloth`` that fails on import the way Unsloth does without a working GPU,
    and counts how often it was imported."""
    import sys

    pkg = tmp_path / "site" / "unsloth"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import builtins\nbuiltins.UNSLOTH_IMPORTS = getattr(builtins, "
        "'UNSLOTH_IMPORTS', 0) + 1\nraise NotImplementedError('Unsloth cannot find "
        "any torch accelerator')\n"
    )
    monkeypatch.syspath_prepend(str(pkg.parent))
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    import builtins

    monkeypatch.setattr(builtins, "UNSLOTH_IMPORTS", 0, raising=False)
    return lambda: builtins.UNSLOTH_IMPORTS


def test_unsloth_is_never_imported_without_a_gpu(fake_unsloth, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    choice = select_strategy("auto")
    assert choice.strategy.name != "unsloth" and "no CUDA GPU" in choice.reason
    assert fake_unsloth() == 0


def test_an_unsloth_that_fails_to_import_falls_back_or_is_named(fake_unsloth, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU, but Unsloth refuses it
    choice = select_strategy("auto")
    assert choice.strategy.name in ("qlora", "lora") and fake_unsloth() == 1
    assert "unsloth failed to import (NotImplementedError: Unsloth cannot find" in choice.reason
    with pytest.raises(BondhuError, match="training.strategy=unsloth cannot run here: unsloth failed to import"):
        select_strategy("unsloth")


def test_missing_dataset_and_model_are_one_line_errors(run_cli, tiny_overrides, tmp_path):
    no_data = run_cli("train", "tiny-cpu", *tiny_overrides, f"data.train={tmp_path / 'none.jsonl'}")
    assert no_data.code == 2 and "none.jsonl: source: file not found" in no_data.err
    no_model = run_cli(
        "train",
        "tiny-cpu",
        f"output.runs_dir={tmp_path}",
        "model.tiny=null",
        f"model.name_or_path={tmp_path / 'no-model'}",
        f"data.train={MINI}",
    )
    assert no_model.code == 1 and "cannot load the model or tokenizer" in no_model.err
    assert "Traceback" not in no_data.err + no_model.err


def test_existing_run_needs_resume_or_overwrite(run_cli, tiny_overrides):
    args = [
        "train",
        "tiny-cpu",
        *tiny_overrides,
        f"data.train={MINI}",
        "data.validation=null",
        "training.max_steps=1",
        "training.strategy=lora",
        "output.overwrite=false",
        "output.name=twice",
    ]
    assert run_cli(*args).code == 0
    again = run_cli(*args)
    assert again.code == 1 and "already holds a run" in again.err
    assert run_cli(*args[:-1], "output.name=never", "--resume").code == 1
