"""Build a tiny Llama-architecture model and a BPE tokenizer trained on local text.

Everything offline runs on this: the demo, the tests and CI. It has the Llama 3.1
special tokens and chat template, so the data path is the one the 8B model sees.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from bondhu.config import TinyModelSpec
from bondhu.data.template import LLAMA31_TEMPLATE, STOP_TOKENS

log = logging.getLogger(__name__)

# The Llama 3.1 special tokens that the chat format uses (ids 128000-128010 upstream).
SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|finetune_right_pad_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
# The Llama 3 pre-tokenizer split (from Meta's tokenizer code), so word pieces match upstream.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def corpus_texts(paths: list[str], roles: tuple[str, ...] = ("user", "assistant")) -> list[str]:
    """Message texts of the given roles, plus situations, from JSONL conversation files."""
    texts = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            texts.extend(m["content"] for m in rec.get("messages", []) if m.get("role") in roles)
            if rec.get("situation"):
                texts.append(rec["situation"])
    return texts


def train_tokenizer(texts: list[str], vocab_size: int):
    """Train a byte-level BPE with the Llama 3 split and specials; returns a fast HF tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    # ignore_merges as in Llama 3's tokenizer.json: a word that is itself a token is taken whole.
    # llama.cpp's "llama-bpe" does the same, so a GGUF export tokenizes exactly as this tokenizer.
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return as_llama31_tokenizer(tok)


def as_llama31_tokenizer(tok):
    """A ``tokenizers`` object as transformers sees Llama 3.1's: its specials, Bondhu's pad token
    (not EOS) and the chat template Bondhu trains with."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        chat_template=LLAMA31_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
    )


def build_tiny_model(spec: TinyModelSpec, tokenizer):
    """A randomly initialised LlamaForCausalLM of the given shape (seeded)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    ids = tokenizer.convert_tokens_to_ids
    eos = [ids(t) for t in STOP_TOKENS]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=ids("<|begin_of_text|>"),
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        rope_theta=500000.0,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def pretrain(model, tokenizer, texts: list[str], epochs: float, seed: int, block: int = 256, batch: int = 16) -> float:
    """A short full-parameter LM pass over plain text; returns the last batch loss."""
    import random

    import torch

    end = tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    ids: list[int] = []
    for row in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids += row + [end]
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block, block)]
    rng = random.Random(seed)
    steps = max(1, int(len(blocks) / batch * epochs))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        x = torch.tensor(rng.sample(blocks, min(batch, len(blocks))))
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    model.eval()
    return loss.item()


def ensure_tiny(path: str | Path, spec: TinyModelSpec) -> Path:
    """Build the tiny model and tokenizer into ``path`` unless they are already there."""
    out = Path(path)
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    missing = [p for p in spec.tokenizer_corpus if not Path(p).is_file()]
    if missing:
        from bondhu.errors import BondhuError

        raise BondhuError(f"{missing[0]}: model.tiny.tokenizer_corpus file not found")
    log.info("building tiny model in %s", out)
    texts = corpus_texts(spec.tokenizer_corpus)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = build_tiny_model(spec, tokenizer)
    if spec.pretrain_epochs:
        # Only what users say: the base learns Bengali, and Bondhu's replies are left for fine-tuning.
        plain = corpus_texts(spec.tokenizer_corpus, roles=("user",))
        loss = pretrain(model, tokenizer, plain, spec.pretrain_epochs, spec.seed)
        log.info("tiny model pretrained on %d texts (last LM loss %.2f)", len(plain), loss)
    # Written aside and renamed into place in one step: several processes (DDP ranks) may build
    # it at once, and none may ever read a half-written model.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(out)
    except OSError:  # another process got there first, with the same deterministic build
        shutil.rmtree(staging, ignore_errors=True)
    return out
