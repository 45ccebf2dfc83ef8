"""Generation throughput of the evaluation path on the 8B shape: batch 1 against batch 16.

Runs the `infer_hf` section of the GPU benchmark (HF generate on the 4-bit base with the run's
unmerged LoRA adapter, greedy, 128-token prompts), which reports generated tokens/s at both
batch sizes and their ratio (target: batch 16 ≥ 8 × batch 1). Needs a CUDA GPU:

    python benchmarks/gpu_workers.py build     # once: the random-weight 8B-shaped model
    python benchmarks/eval_throughput.py

Results of the lent H100 are in docs/benchmarks.md.
"""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.exit(subprocess.call([sys.executable, str(here / "gpu_workers.py"), "infer_hf", *sys.argv[1:]]))
