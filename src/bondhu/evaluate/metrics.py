"""Bengali-aware text metrics (BLEU, chrF++, ROUGE, distinct-n, script ratio) and
token-weighted perplexity.

Common tools mis-handle Bengali: ``rouge_score``'s default tokenizer deletes every
non-Latin character (so any two Bengali texts score 0), sacrebleu's ``13a`` leaves
the danda ``।`` glued to the preceding word, and the ``flores`` tokenizers need a
download. Every metric here therefore runs on ``normalize_bengali`` output split by
one Unicode-aware tokenizer, so the same spelling variants and punctuation count the
same way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import regex
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from bondhu.data.normalize import bengali_ratio, normalize_bengali

BLEU_TOKENIZATION = "bondhu-bn: normalize_bengali + Unicode word/punctuation split, then sacrebleu tokenize=none"

# ZWJ/ZWNJ select conjunct and ya-phala shapes (e.g. র‍্যাব), so they belong to the
# word they sit in; a word may also end in one (old-style khanda ta: ত্‍).
_JOINERS = "\u200c\u200d"
_WORD = r"[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N}" + _JOINERS + r"]*"
# Anything else that is visible becomes a one-character token, so "।", "?!" and
# curly quotes never fuse with words or with each other.
_PUNCT = r"[^\s\p{L}\p{M}\p{N}" + _JOINERS + r"]"
_TOKEN_RE = regex.compile(f"{_WORD}|{_PUNCT}")
_WORD_RE = regex.compile(_WORD)

# Longest first, so "গুলো" wins over "ে"/"র". One suffix is stripped per word: a
# recall-oriented approximation for ROUGE, not a morphological analyser.
BENGALI_SUFFIXES = ("গুলো", "গুলি", "দের", "েরা", "রা", "কে", "তে", "ের", "ে", "র")
_MIN_STEM = 2


def tokenize_bengali(text: str) -> list[str]:
    """Normalize ``text`` and split it into word tokens and one-character punctuation tokens."""
    return _TOKEN_RE.findall(normalize_bengali(text))


def word_tokens(text: str, lowercase: bool = False) -> list[str]:
    """Word tokens of ``text`` (as ``tokenize_bengali``) with punctuation dropped."""
    words = [t for t in tokenize_bengali(text) if _WORD_RE.match(t)]
    # str.lower leaves Bengali untouched (caseless script), so this only folds Latin.
    return [w.lower() for w in words] if lowercase else words


def stem_bengali(word: str) -> str:
    """Strip one common inflectional suffix if at least two characters of stem remain."""
    for suffix in BENGALI_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)]
    return word


class BengaliRougeTokenizer:
    """Tokenizer for ``rouge_score.RougeScorer(tokenizer=...)`` built on ``word_tokens``."""

    def __init__(self, stem: bool = False) -> None:
        self.stem = stem

    def tokenize(self, text: str) -> list[str]:
        """Lowercased word tokens of ``text``, optionally suffix-stemmed."""
        # Lowercasing mirrors rouge_score's own default so English scores stay comparable.
        words = word_tokens(text, lowercase=True)
        return [stem_bengali(w) for w in words] if self.stem else words


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    # A bare string would be iterated character by character and silently "work".
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("hypotheses and references must be sequences of strings, not str")
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("need at least one hypothesis/reference pair")


def _joined_tokens(text: str) -> str:
    return " ".join(tokenize_bengali(text))


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU (0-100) on Bengali-tokenized text, one reference per hypothesis."""
    _check_pairs(hypotheses, references)
    metric = BLEU(tokenize="none")
    result = metric.corpus_score([_joined_tokens(h) for h in hypotheses], [[_joined_tokens(r) for r in references]])
    return {
        "score": float(result.score),
        "signature": str(metric.get_signature()),
        "tokenization": BLEU_TOKENIZATION,
    }


def chrf_pp(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus chrF++ (0-100; character 6-grams plus word 1-2-grams) on normalized text."""
    _check_pairs(hypotheses, references)
    metric = CHRF(word_order=2)
    # Character n-grams ignore whitespace, so pre-splitting only changes the word
    # n-grams: chrF++ peels ASCII punctuation off words itself but not the danda.
    result = metric.corpus_score([_joined_tokens(h) for h in hypotheses], [[_joined_tokens(r) for r in references]])
    return {"score": float(result.score), "signature": str(metric.get_signature())}


def rouge(hypotheses: Sequence[str], references: Sequence[str], stem: bool = False) -> dict[str, float]:
    """Mean ROUGE-1/-2/-L F1 in [0, 1] using Bengali word tokens (optionally stemmed)."""
    _check_pairs(hypotheses, references)
    types = ("rouge1", "rouge2", "rougeL")
    # With a custom tokenizer rouge_score ignores use_stemmer; stemming is ours.
    scorer = rouge_scorer.RougeScorer(list(types), tokenizer=BengaliRougeTokenizer(stem))
    totals = dict.fromkeys(types, 0.0)
    for hyp, ref in zip(hypotheses, references):
        scores = scorer.score(ref, hyp)  # rouge_score takes (target, prediction)
        for name in types:
            totals[name] += scores[name].fmeasure
    return {name: totals[name] / len(hypotheses) for name in types}


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams over all responses (n-grams never cross responses)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = word_tokens(text)
        for i in range(len(words) - n + 1):
            seen.add(tuple(words[i : i + n]))
            total += 1
    return len(seen) / total if total else 0.0


def length_stats(texts: Sequence[str], tokenizer: Any = None) -> dict[str, float]:
    """Mean word count, plus mean model-token count when a HF tokenizer is given."""
    if not texts:
        raise ValueError("need at least one text")
    stats = {"mean_words": sum(len(word_tokens(t)) for t in texts) / len(texts)}
    if tokenizer is not None:
        # Token counts use the raw text: that is what the model actually produced.
        counts = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        stats["mean_tokens"] = sum(counts) / len(texts)
    return stats


def bengali_script_ratio(texts: Sequence[str]) -> float:
    """Mean share of Bengali-script letters per response; 0.0 for no responses."""
    if not texts:
        return 0.0
    return sum(bengali_ratio(normalize_bengali(t)) for t in texts) / len(texts)


def perplexity(model: Any, examples: Sequence[dict], batch_size: int = 8, pad_token_id: int = 0) -> dict[str, float]:
    """Token-weighted perplexity over scored (labels != -100) tokens of a causal LM."""
    import torch
    import torch.nn.functional as F

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i, ex in enumerate(examples):
        if len(ex["input_ids"]) != len(ex["labels"]):
            raise ValueError(f"example {i}: input_ids and labels differ in length")
    # Position 0 is never predicted, so it cannot count as a scored token.
    scored = sum(sum(1 for lab in ex["labels"][1:] if lab != -100) for ex in examples)
    if scored == 0:
        raise ValueError("no scored tokens (all labels are -100)")

    device = next(model.parameters()).device
    # Skip examples with nothing scored, and length-sort the rest so batches waste
    # less compute on padding; the NLL sum does not depend on order.
    useful = [i for i, ex in enumerate(examples) if any(x != -100 for x in ex["labels"][1:])]
    order = sorted(useful, key=lambda i: len(examples[i]["input_ids"]))
    total_nll = 0.0
    total_tokens = 0
    was_training = model.training
    model.eval()  # dropout would make the number random
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                batch = [examples[i] for i in order[start : start + batch_size]]
                width = max(len(ex["input_ids"]) for ex in batch)
                ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, ex in enumerate(batch):
                    k = len(ex["input_ids"])
                    ids[row, :k] = torch.tensor(ex["input_ids"], dtype=torch.long)
                    labels[row, :k] = torch.tensor(ex["labels"], dtype=torch.long)
                    mask[row, :k] = 1
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                logits = model(input_ids=ids, attention_mask=mask).logits
                target = labels[:, 1:]
                keep = target != -100
                # Select scored positions before upcasting: full fp32 logits of a
                # 128k-vocab model would dwarf the model's own activations.
                picked = logits[:, :-1][keep].float()
                total_nll += F.cross_entropy(picked, target[keep], reduction="sum").item()
                total_tokens += int(keep.sum().item())
    finally:
        model.train(was_training)

    mean_nll = total_nll / total_tokens
    return {"perplexity": math.exp(mean_nll), "mean_nll": mean_nll, "tokens": total_tokens}
