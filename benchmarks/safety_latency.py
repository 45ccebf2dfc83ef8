"""Time the crisis check per message on this machine: load time of the classifier file, then
``CrisisDetector.assess`` (lexicon + classifier) and ``assess_conversation`` (three turns) over
the development set, one message at a time, as chat and the server call it.

    python benchmarks/safety_latency.py [--out benchmarks/results/safety-latency-<host>.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from bondhu.safety import CrisisDetector
from bondhu.safety import classifier as clf
from bondhu.safety.evalset import load_set

DEV = Path(__file__).resolve().parents[1] / "data" / "safety" / "dev.tsv"


def _ms(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "mean_ms": 1000 * statistics.mean(s),
        "p50_ms": 1000 * s[len(s) // 2],
        "p95_ms": 1000 * s[int(len(s) * 0.95)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    model = clf.load()
    load_s = time.perf_counter() - start
    detector = CrisisDetector(model)
    examples = load_set(DEV)
    detector.assess("warm-up")
    single, conversation = [], []
    for e in examples:
        t = time.perf_counter()
        detector.assess(e.text)
        single.append(time.perf_counter() - t)
        t = time.perf_counter()
        detector.assess_conversation(e.turns)
        conversation.append(time.perf_counter() - t)
    out = {
        "machine": f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "messages": len(examples),
        "model_file_mb": clf.bundled_path().stat().st_size / 2**20,
        "load_s": load_s,
        "assess": _ms(single),
        "assess_conversation": _ms(conversation),
    }
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
