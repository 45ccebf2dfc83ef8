"""The real Llama 3.1 tokenizer from a local tiktoken rank file, for measuring only.

Bondhu never ships or requires this file: users get the tokenizer with the model from
the Hub. Benchmarks use it when it is present (``../shared/llama3/tokenizer.model`` or
``$LLAMA3_RANKS``) to measure real Bengali token counts; otherwise they fall back to a
BPE tokenizer of the same vocabulary size trained on the bundled data.
"""

from __future__ import annotations

import os
from pathlib import Path

SPECIALS = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128004: "<|finetune_right_pad_id|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128008: "<|eom_id|>",
    128009: "<|eot_id|>",
    128010: "<|python_tag|>",
}
SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def ranks_path() -> Path | None:
    for candidate in (
        os.environ.get("LLAMA3_RANKS"),
        Path(__file__).resolve().parents[2] / "shared/llama3/tokenizer.model",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def load_llama31_tokenizer():
    """A transformers fast tokenizer equal to Llama 3.1's, or None when the rank file is absent."""
    path = ranks_path()
    if path is None:
        return None
    import base64

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_map = bytes_to_unicode()
    vocab, ranks = {}, {}
    for line in path.read_text().splitlines():
        token, rank = line.split()
        raw = base64.b64decode(token)
        vocab["".join(byte_map[b] for b in raw)] = int(rank)
        ranks[raw] = int(rank)
    # Rebuild merges from the ranks the way transformers' TikTokenConverter does: every split of a
    # token into two known pieces becomes a merge, ordered by the merged token's rank.
    merges = []
    for raw, rank in ranks.items():
        local = [(raw[:i], raw[i:]) for i in range(1, len(raw)) if raw[:i] in ranks and raw[i:] in ranks]
        local.sort(key=lambda p: (ranks[p[0]], ranks[p[1]]))
        merges += [(rank, a, b) for a, b in local]
    merges.sort(key=lambda m: m[0])
    merges = [("".join(byte_map[x] for x in a), "".join(byte_map[x] for x in b)) for _, a, b in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [SPECIALS.get(i, f"<|reserved_special_token_{i - 128000}|>") for i in range(128000, 128256)]
    tok.add_special_tokens(specials)
    from bondhu.train.tiny import as_llama31_tokenizer

    return as_llama31_tokenizer(tok)
