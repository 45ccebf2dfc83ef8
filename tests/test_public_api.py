"""The names users import, and that importing Bondhu stays light."""

import subprocess
import sys


def test_public_names():
    from bondhu import ChatSession, DatasetProcessor, Evaluator, LLAMAFineTuner, normalize_bengali
    from bondhu.data import normalize_bengali as nb

    assert nb is normalize_bengali and normalize_bengali(" ক\u09c7\u09be ") == "কো"
    assert all(callable(x) for x in (ChatSession, DatasetProcessor, Evaluator, LLAMAFineTuner))


def test_import_does_not_load_torch_or_unsloth():
    code = "import sys, bondhu, bondhu.config, bondhu.cli; print('torch' in sys.modules, 'unsloth' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
