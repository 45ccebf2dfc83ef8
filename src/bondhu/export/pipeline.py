"""`bondhu export --gguf`: merge the run, write the f16 GGUF, quantize it, and write the Modelfile,
README and (with ``report``) the perplexity of each file.

Every file is written under a hidden temporary name in the output folder and renamed into place
only when complete, so a failure or an interrupt never leaves a file that looks like a finished
GGUF; the temporary is deleted instead.
"""

from __future__ import annotations

import gc
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bondhu.config import BondhuConfig
from bondhu.errors import BondhuError
from bondhu.export.gguf import GGUFMeta, require_gguf, write_f16_gguf
from bondhu.export.llamacpp import require_llama_cpp
from bondhu.export.modelfile import modelfile, readme
from bondhu.export.quantize import parse_types, quantize
from bondhu.export.vocab import template_with_system
from bondhu.run import RunDir

log = logging.getLogger(__name__)


@dataclass
class GGUFExport:
    """What an export wrote: the folder, one file per type (in the order asked), the Ollama and
    README files, the perplexity report, and the tensors each quantization had to fall back on."""

    folder: Path
    files: dict[str, Path]
    modelfile: Path
    readme: Path
    report: dict | None = None
    fallbacks: dict[str, tuple[int, int]] = field(default_factory=dict)


def partial_name(final: Path) -> Path:
    """The hidden name a file is written under until it is complete (never ending in .gguf)."""
    return final.with_name(f".{final.name}.partial")


@contextmanager
def staged(final: Path):
    """Yield a temporary path beside ``final``; rename it to ``final`` when the block succeeds,
    delete it when the block fails."""
    tmp = partial_name(final)
    try:
        yield tmp
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def step(name: str):
    """Turn a library's exception inside the block into one BondhuError that names the step."""
    try:
        yield
    except BondhuError:
        raise
    except Exception as err:
        raise BondhuError(f"{name} failed: {type(err).__name__}: {err}") from err


def _write_text(path: Path, text: str) -> None:
    with staged(path) as tmp:
        tmp.write_text(text, "utf-8")


def gguf_meta(cfg: BondhuConfig, tokenizer) -> GGUFMeta:
    """The GGUF's name, chat template (with the run's system prompt) and sampling defaults."""
    if not getattr(tokenizer, "chat_template", None):
        raise BondhuError("GGUF export: the tokenizer has no chat template to store in the file")
    gen = cfg.generation
    sampling = {"temp": gen.temperature if gen.samples else 0.0, "top_p": gen.top_p, "top_k": gen.top_k}
    sampling["penalty_repeat"] = gen.repetition_penalty
    prompt = cfg.data.system_prompt
    return GGUFMeta(cfg.output.name, prompt, template_with_system(tokenizer.chat_template, prompt), sampling)


def export_gguf(
    run: str | Path,
    types: str | list[str],
    output: str | Path | None = None,
    dtype: str = "auto",
    report: bool = False,
    report_samples: int = 16,
    threads: int = 0,
) -> GGUFExport:
    """Export RUN as GGUF files of ``types`` (f16, q8_0, q4_k_m, ...) into ``output`` (default
    RUN/gguf), with a Modelfile for the first type and a README; ``report`` adds each file's
    perplexity on the evaluation split (report.json). ``dtype`` is the merge's precision ("auto":
    float16, the f16 file's own)."""
    types = parse_types(types)
    require_gguf()
    if report or types != ["f16"]:
        require_llama_cpp()
    from bondhu.inference.merge import merged_model

    model, tokenizer, cfg = merged_model(run, "float16" if dtype == "auto" else dtype)
    meta = gguf_meta(cfg, tokenizer)
    folder = Path(output) if output else RunDir(run).gguf
    folder.mkdir(parents=True, exist_ok=True)
    f16 = folder / f"{cfg.output.name}-f16.gguf"
    scratch = partial_name(f16)
    files: dict[str, Path] = {}
    result = GGUFExport(folder, files, folder / "Modelfile", folder / "README.md")
    try:
        with step(f"writing the f16 GGUF ({f16})"):
            write_f16_gguf(model, tokenizer, scratch, meta)
        del model  # the quantizer reads the file; an 8B model's 16 GB need not stay in memory
        gc.collect()
        if "f16" in types:
            scratch.replace(f16)
        source = f16 if "f16" in types else scratch
        for kind in types:
            target = folder / f"{cfg.output.name}-{kind}.gguf"
            files[kind] = f16 if kind == "f16" else _quantized(source, target, kind, threads, result.fallbacks)
        if report:
            result.report = _report(cfg, tokenizer, source, files, report_samples, threads)
            _write_text(folder / "report.json", json.dumps(result.report, ensure_ascii=False, indent=2) + "\n")
    finally:
        scratch.unlink(missing_ok=True)
    first = files[types[0]].name
    _write_text(result.modelfile, modelfile(first, cfg.data.system_prompt, cfg.generation, cfg.chat.context_tokens))
    _write_text(result.readme, readme(cfg.output.name, [p.name for p in files.values()], first, result.report))
    return result


def _quantized(source: Path, target: Path, kind: str, threads: int, fallbacks: dict) -> Path:
    """``target``, quantized from ``source``; the tensors that fell back are noted in ``fallbacks``."""
    with step(f"quantizing to {kind}"), staged(target) as tmp:
        if fell_back := quantize(source, tmp, kind, threads):
            fallbacks[kind] = fell_back
    return target


def _report(cfg: BondhuConfig, tokenizer, f16: Path, files: dict[str, Path], samples: int, threads: int) -> dict:
    """Perplexity of f16 (kept or not) and of every quantized file, on the same conversations."""
    from bondhu.export.report import gguf_perplexity, scoring_rows

    rows, texts = scoring_rows(cfg, tokenizer, samples)
    scored = {"f16": f16, **{k: v for k, v in files.items() if k != "f16"}}
    figures = {}
    for kind, path in scored.items():
        with step(f"scoring {kind} for the report"):
            figures[kind] = {
                "file": files[kind].name if kind in files else None,
                **gguf_perplexity(path, rows, texts, threads or None),
            }
    base = figures["f16"]["perplexity"]
    for figure in figures.values():
        figure["ratio_to_f16"] = figure["perplexity"] / base
    return {"split": cfg.evaluation.split, "samples": len(rows), "files": figures}
