"""The typed config: YAML plus key=value overrides, rejected at load time with the field named."""

import pytest

from bondhu.config import ServeConfig, load_config, parse_overrides
from bondhu.errors import ConfigError
from helpers import ROOT


def test_overrides_are_yaml_values_in_dotted_sections():
    assert parse_overrides(["training.epochs=2", "lora.r=8", "data.validation=null", "chat.helpline_regions=[BD]"]) == {
        "training": {"epochs": 2},
        "lora": {"r": 8},
        "data": {"validation": None},
        "chat": {"helpline_regions": ["BD"]},
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["training.epochs"])


def test_checkpointing_is_auto_true_or_false_and_the_budget_positive():
    assert load_config(None).training.gradient_checkpointing == "auto"
    assert load_config(None, ["training.gradient_checkpointing=false"]).training.gradient_checkpointing is False
    with pytest.raises(ConfigError, match="training.gradient_checkpointing"):
        load_config(None, ["training.gradient_checkpointing=sometimes"])
    with pytest.raises(ConfigError, match="training.memory_budget_gib"):
        load_config(None, ["training.memory_budget_gib=0"])


def test_the_tiny_models_heads_must_divide():
    with pytest.raises(ConfigError, match="hidden_size must be divisible"):
        load_config(ROOT / "configs" / "tiny-cpu.yaml", ["model.tiny.hidden_size=130"])


def test_an_api_key_must_fit_an_http_header():
    assert ServeConfig(api_key="s3cret-key").api_key == "s3cret-key"
    for bad in ("with space", "কী", ""):
        with pytest.raises(ValueError, match="printable ASCII"):
            ServeConfig(api_key=bad)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["training.epochs=lots"], "training.epochs: Input should be a valid number"),
        (["training.stratgy=qlora"], "training.stratgy: unknown field"),
        (["training.strategy=fast"], "training.strategy: Input should be 'auto', 'unsloth', 'qlora' or 'lora'"),
        (["lora.r=0"], "lora.r: Input should be greater than or equal to 1"),
        (["trainingepochs"], "expected key=value"),
    ],
)
def test_bad_config_values_are_one_line_errors(run_cli, args, fragment):
    result = run_cli("train", "tiny-cpu", *args)
    assert result.code == 2
    assert fragment in result.err and result.err.strip().count("\n") == 0 and "Traceback" not in result.err


def test_bad_config_files(run_cli, tmp_path):
    missing = run_cli("train", tmp_path / "nope.yaml")
    assert missing.code == 2 and "config file not found" in missing.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("training:\n  epochs: [1,\n", "utf-8")
    result = run_cli("train", broken)
    assert result.code == 2 and f"{broken}:" in result.err and "not valid YAML" in result.err


def test_presets_load():
    from bondhu.config import load_config

    presets = sorted((ROOT / "configs").glob("*.yaml"))
    assert {"tiny-cpu.yaml", "llama31-8b.yaml"} <= {p.name for p in presets}
    for preset in presets:  # each validates (load_config raises on a bad key or value) and names a model
        assert load_config(preset).model.name_or_path, preset
