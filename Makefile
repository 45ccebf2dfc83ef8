# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both build .venv/ first if it is missing. CPU machines get the CPU build of torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BONDHU := $(VENV)/bin/bondhu
TORCH_CPU := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# llama-cpp-python (the dev and export extras) compiles llama.cpp during the install. These
# switches exist in the CMakeLists of llama-cpp-python 0.3.36 and its llama.cpp: LLAVA_BUILD is
# the multimodal (mtmd) library, which Bondhu never loads; llama.cpp's tests, examples and tools
# are already off when it is built inside the Python package, and are pinned off here; GGML_CUDA
# keeps a GPU machine's build CPU-only (Bondhu only quantizes and scores with it). GGML_NATIVE
# stays on: -march=native is what makes llama.cpp fast on the machine it is built on.
LLAMA_CPP_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_TOOLS=OFF -DGGML_CUDA=OFF

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q torch; \
	else $(PY) -m pip install -q $(TORCH_CPU); fi
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" $(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The whole pipeline on the bundled default: inspect → train (tiny model, CPU) → evaluate → chat.
demo: venv
	$(BONDHU) data inspect data/bondhu-empathy/train.jsonl --output runs/inspect
	$(BONDHU) train configs/tiny-cpu.yaml
	$(BONDHU) evaluate runs/tiny-demo
	$(BONDHU) chat runs/tiny-demo --message "আজ মনটা খুব খারাপ, কিছুই ভালো লাগছে না।"

# ruff (lint and format) and the import-linter contracts of pyproject.toml: the layers stay layers.
lint: venv
	$(VENV)/bin/ruff check src benchmarks tests data
	$(VENV)/bin/ruff format --check src benchmarks tests data
	$(VENV)/bin/lint-imports

test: venv lint
	$(PY) -m pytest -q

clean:
	rm -rf runs .pytest_cache
