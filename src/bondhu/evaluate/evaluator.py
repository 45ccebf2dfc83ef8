"""Evaluator: generate replies for held-out conversations and score them, base vs fine-tuned."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bondhu.data.normalize import bengali_ratio
from bondhu.data.processor import DatasetProcessor
from bondhu.errors import BondhuError
from bondhu.evaluate import metrics as M
from bondhu.run import RunDir

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One evaluation item: the history, the reference final reply, and where it came from."""

    id: str
    history: list[dict]
    reference: str
    emotion: str | None = None
    replies: dict = field(default_factory=dict)


def score(replies: list[str], references: list[str], tokenizer) -> dict:
    """Every text metric for one model's replies."""
    bleu, chrf, rouge = M.bleu(replies, references), M.chrf_pp(replies, references), M.rouge(replies, references)
    lengths = M.length_stats(replies, tokenizer)
    return {
        "bleu": bleu["score"],
        "chrf++": chrf["score"],
        "rouge1": rouge["rouge1"],
        "rouge2": rouge["rouge2"],
        "rougeL": rouge["rougeL"],
        "distinct1": M.distinct_n(replies, 1),
        "distinct2": M.distinct_n(replies, 2),
        "mean_words": lengths["mean_words"],
        "mean_tokens": lengths.get("mean_tokens"),
        "bengali_ratio": M.bengali_script_ratio(replies),
        "_signatures": {"bleu": bleu["signature"], "chrf++": chrf["signature"], "tokenization": bleu["tokenization"]},
    }


class Evaluator:
    """Scores a run on one split: perplexity on assistant tokens, and text metrics on generated replies."""

    def __init__(
        self,
        run: str | Path,
        split: str | None = None,
        max_samples: int | None = None,
        compare_base: bool | None = None,
        backend: str = "auto",
        progress: bool = True,
    ):

        self.run = Path(run)
        self.cfg = RunDir(self.run).config()
        ev = self.cfg.evaluation
        self.split = split or ev.split
        self.max_samples = max_samples if max_samples is not None else ev.max_samples
        self.compare_base = ev.compare_base if compare_base is None else compare_base
        self.backend = backend
        self.progress = progress
        # The run's sampling settings, with evaluation's length, greedy choice and seed.
        self.settings = self.cfg.generation.model_copy(
            update=dict(max_new_tokens=ev.max_new_tokens, do_sample=ev.do_sample, seed=ev.seed)
        )
        self.skipped: dict[str, int] = {}

    def _source(self) -> str:
        source = getattr(self.cfg.data, self.split)
        if not source:
            raise BondhuError(f"{self.run}: the run's config has no data.{self.split} split to evaluate on")
        return source

    def load_samples(self, processor: DatasetProcessor) -> list[Sample]:
        """Held-out conversations, each split into history and final assistant reply."""
        source = self._source()
        conversations, report = processor.load(source)
        self.skipped.update(report.skipped)
        samples = []
        for c in conversations:
            reference = c.messages[-1]["content"]
            if bengali_ratio(reference) == 0.0:
                self.skipped["reference_not_bengali"] = self.skipped.get("reference_not_bengali", 0) + 1
                continue
            samples.append(Sample(c.id, c.messages[:-1], reference, c.emotion))
        if self.max_samples:
            samples = samples[: self.max_samples]
        if not samples:
            raise BondhuError(f"{source}: the {self.split} split has no usable conversations (skipped: {self.skipped})")
        return samples

    def evaluate(self) -> dict:
        """Run everything and write RUN/eval/: metrics.json, report.md, metrics.png, generations.jsonl."""
        from bondhu.evaluate.report import write_outputs
        from bondhu.inference.model import generate, load_for_inference

        loaded = load_for_inference(self.run, backend=self.backend)
        processor = DatasetProcessor(loaded.tokenizer, self.cfg.data, self.cfg.model.pad_token)
        samples = self.load_samples(processor)
        models = ["fine-tuned"] + (["base"] if self.compare_base else [])
        rows = processor.encode_many([s.history + [{"role": "assistant", "content": s.reference}] for s in samples])
        conversations = [processor.with_system(s.history) for s in samples]
        references = [s.reference for s in samples]
        results: dict[str, dict] = {}
        for name in self._track(models, "models"):
            base = name == "base"
            target = loaded
            if base and not loaded.has_adapter:  # merged weights: the base needs its own copy
                target, base = load_for_inference(self.run, backend="hf", base_only=True), False
            with target.adapter_off(base):
                ppl = M.perplexity(
                    target.model,
                    rows,
                    batch_size=self.cfg.evaluation.batch_size,
                    pad_token_id=target.tokenizer.pad_token_id,
                )
            replies = []
            bs = self.cfg.evaluation.batch_size
            for start in self._track(range(0, len(conversations), bs), f"generating ({name})"):
                replies += generate(target, conversations[start : start + bs], self.settings, batch_size=bs, base=base)
            for s, r in zip(samples, replies):
                s.replies[name] = r
            results[name] = {
                "perplexity": ppl["perplexity"],
                "eval_nll": ppl["mean_nll"],
                "scored_tokens": ppl["tokens"],
                **score(replies, references, loaded.tokenizer),
            }
        signatures = results["fine-tuned"].pop("_signatures")
        if "base" in results:
            results["base"].pop("_signatures")
        out = {
            "run": str(self.run),
            "split": self.split,
            "samples": len(samples),
            "skipped": self.skipped,
            "model": self.cfg.model.name_or_path,
            "adapter": loaded.adapter,
            "backend": loaded.backend,
            "generation": self.settings.model_dump(),
            "signatures": signatures,
            "results": results,
        }
        write_outputs(RunDir(self.run).eval, out, samples)
        return out

    def _track(self, items, label):
        if not self.progress:
            return items
        from rich.progress import track

        return track(list(items), description=label, transient=True)
