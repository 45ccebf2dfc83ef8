"""Data-preparation throughput: ``DatasetProcessor.prepare`` on 10,000 conversations.

    .venv/bin/python benchmarks/data_throughput.py            # measure and print a markdown snippet
    .venv/bin/python benchmarks/data_throughput.py --write    # also update docs/benchmarks.md

The conversations are synthesized from the bundled training set: each one strings together
2-4 user+assistant exchanges taken from different bundled conversations (the bundled ones
have 2-4 exchanges too), gets a unique id, and no two share the same exchanges, so the
cleaner's duplicate filters keep all of them. They are shuffled with a fixed seed and written
to a temporary JSONL file, which ``prepare`` then reads, cleans, templates and tokenizes.

The tokenizer is the real Llama 3.1 one (128,256 tokens) when ``../shared/llama3`` holds its
rank file (see ``llama3_tokenizer.py``); otherwise a byte-level BPE trained on the bundled data,
as large as that data allows, stands in. The output says which one ran. Only ``prepare`` is
timed, not building the tokenizer or writing the input file. Tokenization is single-threaded,
as in the ``bondhu`` CLI (TOKENIZERS_PARALLELISM=false); run with TOKENIZERS_PARALLELISM=true
to measure the tokenizer's thread pool instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED = ROOT / "data" / "bondhu-empathy" / "train.jsonl"
PRESET = ROOT / "configs" / "llama31-8b-t4.yaml"
BEGIN, END = "<!-- data:begin -->", "<!-- data:end -->"
TARGET_SECONDS = 20.0
MACHINE = "2-core CPU dev machine, Python {python}, no GPU"


def synthesize(source: Path, n: int, seed: int) -> list[dict]:
    """``n`` distinct native-format conversations recombined from the exchanges in ``source``."""
    rng = random.Random(seed)
    convs = [json.loads(line) for line in source.read_text("utf-8").splitlines() if line.strip()]
    exchanges = []  # (source conversation index, user message, assistant reply)
    for ci, c in enumerate(convs):
        body = [m for m in c["messages"] if m["role"] != "system"]
        exchanges += [(ci, body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]
    out, seen = [], set()
    while len(out) < n:
        turns = rng.randint(2, 4)
        picked = rng.sample(range(len(exchanges)), turns)
        if len({exchanges[i][0] for i in picked}) < turns or tuple(picked) in seen:
            continue  # every exchange from a different conversation; never the same combination twice
        seen.add(tuple(picked))
        first = convs[exchanges[picked[0]][0]]
        messages = [m for i in picked for m in exchanges[i][1:]]
        out.append(
            {
                "id": f"synth-{len(out):05d}",
                "emotion": first.get("emotion"),
                "situation": first.get("situation"),
                "messages": messages,
            }
        )
    rng.shuffle(out)
    return out


def load_tokenizer() -> tuple[object, str]:
    """The real Llama 3.1 tokenizer if its rank file is present, else a BPE trained on the bundled data."""
    from llama3_tokenizer import load_llama31_tokenizer, ranks_path

    tok = load_llama31_tokenizer()
    if tok is not None:
        return tok, f"Llama 3.1 tokenizer ({len(tok):,} tokens, rebuilt from {ranks_path().name})"
    from bondhu.train.tiny import corpus_texts, train_tokenizer

    # The BPE trainer stops when no pair is left to merge, so the vocabulary is "as large as the data allows".
    tok = train_tokenizer(corpus_texts([str(BUNDLED)]), 128256)
    return tok, f"fallback BPE trained on the bundled data ({len(tok):,} tokens; Llama 3.1's rank file not found)"


def breakdown(processor, path: Path, batch_size: int = 512) -> dict:
    """One more pass, phase by phase: where prepare's time goes (labels and the rest: the remainder)."""
    from bondhu.data.template import render

    tok = processor.tokenizer
    t0 = time.perf_counter()
    conversations, _ = processor.load(str(path))
    t1 = time.perf_counter()
    texts = [render(tok, processor.with_system(c.messages)) for c in conversations]
    t2 = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        tok(
            texts[i : i + batch_size],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
    t3 = time.perf_counter()
    for i in range(0, len(texts), batch_size):  # the Rust tokenizer alone, without the conversion to Python lists
        tok.backend_tokenizer.encode_batch(texts[i : i + batch_size], add_special_tokens=False)
    t4 = time.perf_counter()
    return {
        "load_and_clean": round(t1 - t0, 2),
        "chat_template": round(t2 - t1, 2),
        "tokenizer_call": round(t3 - t2, 2),
        "tokenizer_backend": round(t4 - t3, 2),
    }


def measure(conversations: int, seed: int, repeat: int, phases: bool = False) -> dict:
    from bondhu.config import load_config
    from bondhu.data.processor import DatasetProcessor

    t0 = time.perf_counter()
    tokenizer, tokenizer_name = load_tokenizer()
    tokenizer_seconds = time.perf_counter() - t0
    data_config = load_config(PRESET).data  # max_length 2048, overflow truncate_history
    records = synthesize(BUNDLED, conversations, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        input_mib = path.stat().st_size / 2**20
        times, prepared = [], None
        for _ in range(repeat):
            processor = DatasetProcessor(tokenizer, data_config)  # fresh: the cleaner's duplicate sets start empty
            start = time.perf_counter()
            prepared = processor.prepare(str(path))
            times.append(time.perf_counter() - start)
        phase_seconds = breakdown(DatasetProcessor(tokenizer, data_config), path) if phases else None
    report = prepared.report.to_json()
    lengths = sorted(r["length"] for r in prepared.rows)
    seconds = statistics.median(times)
    tokens = sum(lengths)
    return {
        "date": dt.date.today().isoformat(),
        "machine": MACHINE.format(python=platform.python_version()),
        "cpus": os.cpu_count(),
        "tokenizer": tokenizer_name,
        "tokenizer_build_seconds": round(tokenizer_seconds, 2),
        "preset": str(PRESET.relative_to(ROOT)),
        "max_length": data_config.max_length,
        "overflow": data_config.overflow,
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
        "conversations": conversations,
        "messages": sum(len(r["messages"]) for r in records),
        "input_mib": round(input_mib, 2),
        "repeat": repeat,
        "seconds_each": [round(t, 2) for t in times],
        "seconds": round(seconds, 2),
        "conversations_per_second": round(conversations / seconds, 1),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds),
        "tokens_median": lengths[len(lengths) // 2],
        "tokens_max": lengths[-1],
        "read": report["read"],
        "kept": report["kept"],
        "skipped": report["skipped_total"],
        "skipped_by_reason": report["skipped"],
        "changed": report["changed"],
        "flagged": report["flagged"],
        "phases": phase_seconds,
    }


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"


def markdown(r: dict) -> str:
    ok = "meets" if r["seconds"] < TARGET_SECONDS else "misses"
    runs = (
        f"median of {r['repeat']} runs: " + ", ".join(f"{s} s" for s in r["seconds_each"])
        if r["repeat"] > 1
        else "one run"
    )
    return "\n".join(
        [
            f"Measured {r['date']} on a {r['machine']} (`benchmarks/data_throughput.py`).",
            "",
            f"`DatasetProcessor.prepare` (read, validate, clean, deduplicate, apply the chat template, tokenize, "
            f"build assistant-only labels) on {r['conversations']:,} conversations ({r['messages']:,} messages, "
            f"{r['input_mib']} MiB of JSONL) recombined from the bundled training set, 2-4 exchanges each, "
            f"with the data settings of `{r['preset']}` (max_length {r['max_length']}, overflow {r['overflow']}). "
            f"Tokenizer: {r['tokenizer']}; TOKENIZERS_PARALLELISM={r['tokenizers_parallelism']}"
            f"{' (as the `bondhu` CLI sets it)' if r['tokenizers_parallelism'] == 'false' else ''}.",
            "",
            "| Measure | Result |",
            "|---|---|",
            f"| Total time, {r['conversations']:,} conversations | {r['seconds']} s ({runs})"
            + (f"; target < {TARGET_SECONDS:.0f} s: {ok} it |" if r["conversations"] == 10_000 else " |"),
            f"| Conversations per second | {r['conversations_per_second']:,} |",
            f"| Tokens per second | {r['tokens_per_second']:,} ({r['tokens']:,} tokens; median {r['tokens_median']:,}, "
            f"longest {r['tokens_max']:,} per conversation) |",
            f"| Kept / read | {r['kept']:,} / {r['read']:,} |",
            f"| Skipped | {r['skipped']} ({_counts(r['skipped_by_reason'])}) |",
            f"| Changed | {_counts(r['changed'])} |",
            f"| Flagged | {_counts(r['flagged'])} |",
            *_phase_lines(r),
        ]
    )


def _phase_lines(r: dict) -> list[str]:
    ph = r.get("phases")
    if not ph:
        return []
    rest = r["seconds"] - ph["load_and_clean"] - ph["chat_template"] - ph["tokenizer_call"]
    return [
        "",
        "Where the time goes (one more pass, phase by phase):",
        "",
        "| Phase | Seconds |",
        "|---|---|",
        f"| Read, validate and clean (`DatasetProcessor.load`: normalization, Bengali share, duplicate keys, "
        f"crisis-number check) | {ph['load_and_clean']} |",
        f"| Chat template | {ph['chat_template']} |",
        f"| Tokenizer call with offsets | {ph['tokenizer_call']}, of which the Rust tokenizer {ph['tokenizer_backend']} "  # noqa: E501
        f"and the conversion to Python lists the rest |",
        f"| Assistant-only labels, overflow handling, rows (the remainder) | {max(rest, 0):.2f} |",
    ]


def write_docs(snippet: str) -> Path:
    """Replace the ``data`` section of docs/benchmarks.md; every other section is left as it is."""
    doc = ROOT / "docs" / "benchmarks.md"
    block = f"{BEGIN}\n{snippet}\n{END}"
    text = doc.read_text("utf-8") if doc.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, count=1, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Data preparation throughput\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, "utf-8")
    return doc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="runs of prepare; the median is reported")
    p.add_argument("--phases", action="store_true", help="add a pass that times each phase of prepare")
    p.add_argument("--write", action="store_true", help="update the data section of docs/benchmarks.md")
    p.add_argument("--json", type=Path, help="also save the raw result here")
    args = p.parse_args()

    result = measure(args.conversations, args.seed, args.repeat, args.phases)
    snippet = markdown(result)
    print(snippet)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    if args.write:
        print(f"\nupdated {write_docs(snippet)}")
    if result["skipped"]:
        sys.exit(f"error: {result['skipped']} conversations were skipped: {result['skipped_by_reason']}")


if __name__ == "__main__":
    main()
