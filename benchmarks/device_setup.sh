#!/usr/bin/env bash
# Prepares what the GPU benchmarks carry to the lent H100 machine (it has no package index):
# .device-site/ (Unsloth, bitsandbytes, TRL, datasets and Bondhu's pure-Python needs) and
# .bench/llama31-tok.tgz (the Llama 3.1 tokenizer rebuilt from ../shared/llama3, measuring only).
# Neither is committed. Usage, from the project root: benchmarks/device_setup.sh
# The site is also packed as .device-site.tgz (about a quarter of its size), since the tree, the
# site and the tokenizer together pass the 64 MiB a device call may carry. Carry
# [".device-site.tgz", ".bench"] and start the command with: tar xzf .device-site.tgz &&
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
EXTRA_DEVICE_PKGS="typer==0.29.2 rich==15.0.0 click==8.5.1 shellingham==1.5.4 markdown-it-py==4.3.0 mdurl==0.1.2 \
pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 pyyaml==6.0.4 ftfy==6.3.1 \
wcwidth==0.9.4 regex==2026.11.19" ../shared/tools/device-site.sh
# Stay under the 64 MiB a device call may carry: drop what the benchmarks never import.
rm -rf .device-site/unsloth_cli .device-site/yaml/_yaml*.so
find .device-site -name __pycache__ -type d -prune -exec rm -rf {} +
grep -qx '/.bench/' .git/info/exclude || echo '/.bench/' >> .git/info/exclude
grep -qx '/.device-site.tgz' .git/info/exclude || echo '/.device-site.tgz' >> .git/info/exclude
tar czf .device-site.tgz .device-site
mkdir -p .bench
.venv/bin/python - <<'PY'
import sys, tarfile, tempfile
sys.path.insert(0, "benchmarks")
from llama3_tokenizer import load_llama31_tokenizer
tok = load_llama31_tokenizer()
if tok is None:
    sys.exit("../shared/llama3/tokenizer.model not found; the benchmarks will train a stand-in tokenizer")
with tempfile.TemporaryDirectory() as d:
    tok.save_pretrained(f"{d}/llama31-tok")
    with tarfile.open(".bench/llama31-tok.tgz", "w:gz") as t:
        t.add(f"{d}/llama31-tok", arcname="llama31-tok")
PY
du -sh .device-site .device-site.tgz .bench
