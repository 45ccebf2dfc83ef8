"""A Llama 3 tokenizer in GGUF terms: a byte-level BPE ("gpt2") with the "llama-bpe" pre-tokenizer.

llama.cpp knows a pre-tokenizer by name, not by its regex, so the name is only right when the
tokenizer really splits text with Llama 3's regex; that is checked here before anything is written.
Bondhu's chat template goes in with its default system prompt, so llama.cpp's Jinja renders
what Bondhu trains on even when a client sends no system message.
"""

from __future__ import annotations

import json
import logging

from bondhu.errors import BondhuError
from bondhu.train.tiny import LLAMA3_SPLIT

log = logging.getLogger(__name__)

EOT = "<|eot_id|>"
EOM = "<|eom_id|>"


def add_vocab(writer, gguf, tokenizer, vocab_size: int, chat_template: str) -> None:
    """Tokens, token types, merges, special ids and the chat template, on ``writer``."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    check_llama3_pretokenizer(spec)
    tokens, types = token_table(spec, vocab_size, gguf.TokenType)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges(spec))
    ids = {t: i for i, t in enumerate(tokens)}
    # Bondhu ends every turn with <|eot_id|> and generation stops there, so it is EOS as well as EOT.
    eot = ids.get(EOT, tokenizer.eos_token_id)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(eot)
    writer.add_eot_token_id(eot)
    if EOM in ids:
        writer.add_eom_token_id(ids[EOM])
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(tokenizer.pad_token_id)
    # The template writes <|begin_of_text|> itself; llama.cpp's chat paths know that and add no
    # second one, while a plain prompt (Ollama's TEMPLATE has no BOS) gets it from here.
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(chat_template)


def check_llama3_pretokenizer(spec: dict) -> None:
    """Refuse a tokenizer whose pre-tokenizer is not Llama 3's regex followed by byte-level
    mapping: llama.cpp would split its text differently, and every prompt would be tokenized wrong."""
    if spec.get("model", {}).get("type") != "BPE":
        raise BondhuError("GGUF export: the tokenizer is not a BPE tokenizer (Llama 3's is)")
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    patterns = [s.get("pattern", {}).get("Regex") for s in steps if s.get("type") == "Split"]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if patterns != [LLAMA3_SPLIT] or len(byte_level) != 1 or spec.get("normalizer"):
        raise BondhuError(
            "GGUF export: the tokenizer does not pre-tokenize as Llama 3 does (its Split regex, then "
            "byte-level, no normalizer), so llama.cpp's 'llama-bpe' would tokenize text differently"
        )
    if not spec["model"].get("ignore_merges"):
        # llama.cpp takes a word that is itself a token whole (as Llama 3's tokenizer does); a
        # tokenizer that merges it piece by piece can differ on rare words.
        log.warning("the tokenizer's BPE does not set ignore_merges; llama.cpp may split a few rare words differently")


def token_table(spec: dict, vocab_size: int, token_type) -> tuple[list[str], list[int]]:
    """Each id's token text and type: added special tokens are CONTROL, other added tokens
    USER_DEFINED, and ids the tokenizer never assigns (embedding rows kept for padding) UNUSED."""
    by_id = {i: t for t, i in spec["model"]["vocab"].items()}
    added = {a["id"]: a for a in spec.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(token_type.CONTROL if added[i].get("special") else token_type.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(token_type.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(token_type.UNUSED)
    if len(by_id.keys() | added.keys()) > vocab_size:
        raise BondhuError(f"GGUF export: the tokenizer has more tokens than the model's {vocab_size} embeddings")
    return tokens, types


def merges(spec: dict) -> list[str]:
    """The BPE merges as "left right" strings; a space inside a piece is written as U+0120, its
    byte-level form (as the gguf package does), since llama.cpp splits each merge at its first space."""
    out = []
    for pair in spec["model"].get("merges", []):
        if isinstance(pair, str):
            out.append(pair)
        else:
            out.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair))
    return out


def jinja_string(text: str) -> str:
    """``text`` as a double-quoted Jinja string literal. Only escapes that both Python's Jinja and
    llama.cpp's own Jinja lexer read the same way are used."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, c) for c in text) + '"'


def template_with_system(template: str, system_prompt: str) -> str:
    """The tokenizer's chat template unchanged, after one statement that opens a conversation
    without a system message with ``system_prompt``: what ``with_system`` does before Bondhu
    renders a conversation in training, evaluation and chat."""
    if not system_prompt:
        return template
    first = "{%- if not messages or messages[0]['role'] != 'system' %}"
    first += "{%- set messages = [{'role': 'system', 'content': " + jinja_string(system_prompt) + "}] + messages %}"
    return first + "{%- endif %}" + template
