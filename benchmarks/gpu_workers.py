"""One benchmark section per process (Unsloth patches transformers globally, so sections
must not share a process). Called by benchmarks/gpu.py; prints one ``RESULT {json}`` line.

    python benchmarks/gpu_workers.py SECTION --model DIR [--steps N] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# The one path edit: the product's sources and this folder, for the section modules below.
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parent)]

import gpu_infer  # noqa: E402
import gpu_profile  # noqa: E402
import gpu_scaling  # noqa: E402
import gpu_train  # noqa: E402
from common import CLOCK  # noqa: E402

SECTIONS = {**gpu_train.SECTIONS, **gpu_infer.SECTIONS, **gpu_scaling.SECTIONS, **gpu_profile.SECTIONS}
UNSLOTH_SECTIONS = {
    "train_unsloth",
    "train_unsloth_ckpt",
    "train_unsloth_double",
    "fallback_unsloth",
    "seed_recipe",
    "bare_unsloth",
    "bare_unsloth_none",
    "t4_longest",
    "infer_unsloth",
    "profile_unsloth",
    "profile_bare",
}


def preload(section: str, tiny: bool) -> None:
    """The heavy imports, before any timing: Unsloth first where the section uses it, as
    `bondhu train` with strategy unsloth does (Unsloth patches transformers as it loads)."""
    if section in UNSLOTH_SECTIONS and not tiny:
        import unsloth  # noqa: F401
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--model", default="/tmp/llama31-8b-random")
    p.add_argument("--runs", default="/tmp/bench-runs")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the timing (torch.compile)")
    p.add_argument("--tiny", action="store_true", help="CPU dry run on a tiny model of the same code path")
    p.add_argument("--set", action="append", help="extra config override for the bondhu train sections (key=value)")
    p.add_argument("--go", help="after the imports, wait until this file exists (gpu.py's prefetch)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    preload(args.section, args.tiny)
    if args.go:  # started ahead by gpu.py: imports done, wait for the card
        CLOCK.import_seconds = round(time.perf_counter() - CLOCK.t0, 1)
        while not Path(args.go).exists():
            time.sleep(0.1)
        CLOCK.t0 = time.perf_counter()
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()
