"""The names users import, and that importing Bondhu stays light."""

import subprocess
import sys


def test_public_names():
    from bondhu import ChatSession, DatasetProcessor, Evaluator, LLAMAFineTuner, normalize_bengali
    from bondhu.data import normalize_bengali as nb

    assert nb is normalize_bengali and normalize_bengali(" ক\u09c7\u09be ") == "কো"
    # Each name is the class its module defines, with the entry points the README shows.
    from bondhu.chat.session import ChatSession as session_cls
    from bondhu.data.processor import DatasetProcessor as processor_cls
    from bondhu.evaluate.evaluator import Evaluator as evaluator_cls
    from bondhu.train.finetuner import LLAMAFineTuner as finetuner_cls

    assert (ChatSession, DatasetProcessor, Evaluator, LLAMAFineTuner) == (
        session_cls,
        processor_cls,
        evaluator_cls,
        finetuner_cls,
    )
    for cls, method in (
        (ChatSession, "from_run"),
        (ChatSession, "send"),
        (DatasetProcessor, "prepare"),
        (Evaluator, "evaluate"),
        (LLAMAFineTuner, "train"),
    ):
        assert callable(getattr(cls, method, None)), f"{cls.__name__}.{method}"


def test_import_does_not_load_torch_or_unsloth():
    code = "import sys, bondhu, bondhu.config, bondhu.cli; print('torch' in sys.modules, 'unsloth' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
