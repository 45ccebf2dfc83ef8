"""`bondhu export --gguf`: llama.cpp runs the exported files as the transformers path runs the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

llama_cpp = pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

TWO_TURNS = [
    {"role": "user", "content": "আজ মনটা খুব খারাপ, কিছুই ভালো লাগছে না।"},
    {"role": "assistant", "content": "শুনে খারাপ লাগছে। কী হয়েছে, একটু বলবে?"},
    {"role": "user", "content": "অফিসে সারাদিন বকা খেয়েছি।"},
]
TYPES = "q4_k_m,f16,q8_0"  # q4_k_m first: the Modelfile uses the first type


@pytest.fixture(scope="module")
def exported(kquant_run):
    """One export of the k-quant run, through the CLI, with the perplexity report."""
    from typer.testing import CliRunner

    from bondhu.cli import app

    result = CliRunner().invoke(app, ["export", str(kquant_run), "--gguf", TYPES, "--report", "--report-samples", "4"])
    assert result.exit_code == 0, result.output
    return kquant_run / "gguf", result.output


@pytest.fixture(scope="module")
def hf(kquant_run):
    """The reference: the run's base with the adapter unmerged, in float32, through transformers."""
    from bondhu.inference.model import load_for_inference

    return load_for_inference(kquant_run, backend="hf")


def gguf_file(folder: Path, kind: str) -> Path:
    return folder / f"kquant-{kind}.gguf"


def load(path: Path, n_ctx: int = 1024):
    from bondhu.export.llamacpp import load_gguf

    return load_gguf(path, n_ctx, threads=2)


def bondhu_prompt(hf, messages) -> list[int]:
    """The prompt ids Bondhu's chat and evaluation build: the run's system prompt, the template."""
    from bondhu.data.template import with_system
    from bondhu.inference.model import prompt_ids

    return prompt_ids(hf, with_system(messages, hf.config.data.system_prompt))


def hf_logits(hf, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return hf.model(input_ids=torch.tensor([ids])).logits[0].float().numpy()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def centered(logits: np.ndarray) -> np.ndarray:
    return logits - logits.mean(axis=-1, keepdims=True)  # softmax ignores a shift per position


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """The logits' error relative to their spread, over all positions."""
    return float(np.linalg.norm(centered(ours) - centered(ref)) / np.linalg.norm(centered(ref)))


def gguf_logits(path: Path, ids: list[int]) -> np.ndarray:
    llm = load(path)
    try:
        llm.eval(ids)
        return np.asarray(llm.scores[: len(ids)], dtype=np.float64)
    finally:
        llm.close()


# Measured on this model: f16's logits differ from transformers' float32 ones by 7.0e-4 of their
# spread (f16 rounding of the weights). The same file written without Llama 3.1's rope factors
# differed by 4.6e-3 on this fixture's first version (pretrained on v1's users), and without the K
# row permutation by far more, so 1.5e-3 tells a right conversion from those while leaving twice
# the measured error for another CPU.
F16_RELATIVE_LOGIT_ERROR = 1.5e-3


def test_f16_greedy_tokens_and_logits_equal_the_transformers_path(exported, hf):
    folder, _ = exported
    prompt = bondhu_prompt(hf, TWO_TURNS)
    ids, leads = list(prompt), []
    for _ in range(16):
        last = hf_logits(hf, ids)[-1]
        top2 = np.sort(last)[-2:]
        leads.append(float(top2[1] - top2[0]))
        ids.append(int(last.argmax()))
    llm = load(gguf_file(folder, "f16"))
    try:
        ours = []
        for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
            ours.append(int(token))
            if len(ours) == 16:
                break
    finally:
        llm.close()
    # The smallest lead of the greedy token over the runner-up tells a real mismatch from a tie.
    assert ours == ids[len(prompt) :], f"smallest top-1 lead on the transformers path: {min(leads):.4f}"
    assert relative_error(gguf_logits(gguf_file(folder, "f16"), ids), hf_logits(hf, ids)) < F16_RELATIVE_LOGIT_ERROR


# The q8_0 bounds, measured on this model over the 304 positions of a two-turn prompt: the logits'
# error relative to their spread is 1.3e-2 (f16: 7.0e-4, q4_k_m: 1.3e-1), the largest error of
# one logit 0.034, and the largest KL divergence 4.3e-5 (q4_k_m: 5.5e-3). q8_0 keeps each weight
# to one of 255 steps of its 32-value block's scale; what is left of the error is what these
# measure. The bounds allow about twice the measured value or more, for another CPU's arithmetic,
# and stay well below q4_k_m's. A tiny model's probabilities differ little even for a broken
# file, so the main bounds are on logits. A lead of the top token over the runner-up above 0.2 is more than twice
# the largest logit error, so at those positions q8_0 must pick the same token.
Q8_RELATIVE_LOGIT_ERROR = 2.5e-2
Q8_MAX_KL = 6e-4
DECISIVE_LEAD = 0.2


def test_q8_0_logits_agree_closely_with_the_transformers_path(exported, hf):
    folder, _ = exported
    ids = bondhu_prompt(hf, TWO_TURNS)
    ref = hf_logits(hf, ids).astype(np.float64)
    ours = gguf_logits(gguf_file(folder, "q8_0"), ids)
    assert relative_error(ours, ref) < Q8_RELATIVE_LOGIT_ERROR
    log_p, log_q = log_softmax(ref), log_softmax(ours)
    assert (np.exp(log_p) * (log_p - log_q)).sum(axis=-1).max() < Q8_MAX_KL
    top2 = np.sort(ref, axis=-1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > DECISIVE_LEAD
    assert decisive.sum() >= 20  # measured: 274 of the 304 positions
    assert (ours.argmax(-1) == ref.argmax(-1))[decisive].all()


def test_embedded_template_renders_bondhus_prompt_and_chat_stops_at_eot(exported, hf):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from bondhu.data.template import render

    folder, _ = exported
    tok = hf.tokenizer
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    llm = load(gguf_file(folder, "q8_0"))
    try:
        meta = llm.metadata
        assert int(meta["tokenizer.ggml.eos_token_id"]) == int(meta["tokenizer.ggml.eot_token_id"]) == eot
        assert meta["tokenizer.ggml.pre"] == "llama-bpe" and meta["tokenizer.ggml.model"] == "gpt2"
        template = meta["tokenizer.chat_template"]
        formatter = Jinja2ChatFormatter(template, eos_token="<|eot_id|>", bos_token=tok.bos_token)
        own_system = [{"role": "system", "content": "তুমি একজন সাহায্যকারী।"}, *TWO_TURNS]
        for messages, expected in (
            (TWO_TURNS, bondhu_prompt(hf, TWO_TURNS)),  # no system message: the run's own is added
            (own_system, tok(render(tok, own_system, add_generation_prompt=True), add_special_tokens=False).input_ids),
        ):
            text = formatter(messages=messages).prompt
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == list(expected)

        def chat(bias_token: int) -> dict:
            # Greedy, with one token pushed to the top: <|eot_id|> must end the reply as a stop,
            # while any other token runs to the length limit (so the check can fail).
            return llm.create_chat_completion(
                TWO_TURNS, max_tokens=8, temperature=0.0, logit_bias={bias_token: 100.0}, seed=0
            )["choices"][0]

        stopped, ran_on = chat(eot), chat(tok("বন্ধু", add_special_tokens=False).input_ids[0])
    finally:
        llm.close()
    assert stopped["finish_reason"] == "stop" and stopped["message"]["content"] == ""
    assert ran_on["finish_reason"] == "length"


def test_q4_k_m_loads_keeps_its_k_quants_and_reports_its_perplexity(exported):
    folder, output = exported
    reader = gguf.GGUFReader(gguf_file(folder, "q4_k_m"))
    kinds = {t.tensor_type.name for t in reader.tensors}
    assert {"Q4_K", "Q6_K"} <= kinds and "Q5_0" not in kinds  # no fallback: every row fits 256-blocks
    llm = load(gguf_file(folder, "q4_k_m"), n_ctx=64)
    try:
        assert llm.tokenize("বন্ধু".encode(), add_bos=True)[0] == llm.token_bos()
    finally:
        llm.close()
    report = json.loads((folder / "report.json").read_text("utf-8"))
    figures = report["files"]
    assert set(figures) == {"f16", "q4_k_m", "q8_0"} and report["samples"] == 4
    for figure in figures.values():
        assert math.isfinite(figure["perplexity"]) and figure["tokens"] > 0
        assert figure["tokenization_identical"] == 4  # llama.cpp tokenizes each text as transformers did
    # Measured on this model: q4_k_m 1.003 × f16's perplexity (1204.9 against 1201.0), q8_0 0.9998 ×.
    # A tiny model's perplexity barely moves with its weights' rounding, so the logit
    # tests above are the sharp checks; 1.05 × still fails a quantization that garbles the weights.
    assert abs(figures["q8_0"]["ratio_to_f16"] - 1) < 0.01
    assert figures["q4_k_m"]["ratio_to_f16"] < 1.05
    assert f"{figures['q4_k_m']['perplexity']:.3f}" in output


def test_folder_has_the_modelfile_and_readme_and_no_partial_files(exported):
    folder, _ = exported
    modelfile = (folder / "Modelfile").read_text("utf-8")
    assert "FROM ./kquant-q4_k_m.gguf" in modelfile
    readme = (folder / "README.md").read_text("utf-8")
    for command in ("ollama create bondhu -f Modelfile", "ollama run bondhu", "llama-server -m kquant-q4_k_m.gguf"):
        assert command in readme
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["Modelfile", "README.md", "report.json", *(f"kquant-{t}.gguf" for t in TYPES.split(","))]
    )


def test_unknown_type_is_refused_before_any_work(run_cli, kquant_run, tmp_path):
    result = run_cli("export", kquant_run, "--gguf", "f16,q4_k_x", "--output", tmp_path / "out")
    assert result.code == 1
    assert "'q4_k_x': unknown type; valid types: f16, bf16, q8_0" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "out").exists()


def test_failed_quantization_is_one_error_and_leaves_no_partial_file(run_cli, kquant_run, tmp_path, monkeypatch):
    from bondhu.export import quantize

    # Q4_2 (llama_ftype 5) was removed from llama.cpp; its quantizer rejects it after the f16
    # file is written, which is the failure this checks.
    monkeypatch.setitem(quantize.GGUF_TYPES, "q4_2", 5)
    out = tmp_path / "out"
    result = run_cli("export", kquant_run, "--gguf", "q8_0,q4_2", "--output", out)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors == ["error: quantizing to q4_2 failed (llama.cpp: invalid output file type 5)"]
    assert "Traceback" not in result.err
    assert sorted(p.name for p in out.iterdir()) == ["kquant-q8_0.gguf"]  # finished before the failure


def test_failed_conversion_is_one_error_and_leaves_no_file(run_cli, kquant_run, tmp_path, monkeypatch):
    from bondhu.export import gguf as writer

    def broken(*args, **kwargs):
        # The sixth tensor cannot be converted: the file is then part written.
        for n, (name, shape, dtype, source) in enumerate(plan(*args, **kwargs)):
            yield name, shape, dtype, (source if n != 5 else fail)

    def fail():
        raise OSError(28, "No space left on device")

    plan = writer._tensor_plan
    monkeypatch.setattr(writer, "_tensor_plan", broken)
    out = tmp_path / "out"
    result = run_cli("export", kquant_run, "--gguf", "f16", "--output", out)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "writing the f16 GGUF" in errors[0] and "No space left on device" in errors[0]
    assert list(out.iterdir()) == []


def test_rows_a_k_quant_cannot_hold_fall_back_and_are_counted(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bondhu.export.gguf import GGUFMeta, write_f16_gguf
    from bondhu.export.quantize import quantize

    # The session's tiny model has 64- and 128-wide rows; q4_k_m's 256-value blocks fit none of
    # them, and llama.cpp stores every matrix in q5_0 (q8_0 where it wanted q6_k) instead: why
    # the tests above use a model of their own.
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    f16 = tmp_path / "tiny-f16.gguf"
    write_f16_gguf(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tok, f16, GGUFMeta("t", "", tok.chat_template))
    assert quantize(f16, tmp_path / "tiny-q4_k_m.gguf", "q4_k_m") == (15, 21)  # llama.cpp's own count
    assert quantize(f16, tmp_path / "tiny-q8_0.gguf", "q8_0") is None  # 32-value blocks fit
