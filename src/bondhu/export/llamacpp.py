"""llama-cpp-python, imported only here and only when needed, so the rest of Bondhu (and an f16
export) works without it: the import, llama.cpp's log, and loading a GGUF file to score it.
"""

from __future__ import annotations

import ctypes
import logging
import re
from contextlib import contextmanager
from pathlib import Path

from bondhu.errors import BondhuError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'bondhu[export]'"


def require_llama_cpp():
    """The ``llama_cpp`` module (llama-cpp-python), or a one-line error that says how to install it."""
    try:
        import llama_cpp
    except ImportError as err:
        raise BondhuError(
            f"quantizing and checking GGUF files needs llama-cpp-python ({err}): {INSTALL_HINT}"
        ) from None
    return llama_cpp


# ggml.h's enum ggml_log_level; CONT continues the previous message at its level.
LOG_ERROR, LOG_CONT = 4, 5


class LlamaLog:
    """What llama.cpp logged while a call ran: its lines, the last error, and the fallback count."""

    def __init__(self):
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.level = 0

    def add(self, level: int, text: str) -> None:
        self.level = self.level if level == LOG_CONT else level
        self.lines.append(text)
        if self.level == LOG_ERROR:
            self.errors.append(text)
        log.debug("llama.cpp: %s", text.rstrip())

    @property
    def error(self) -> str | None:
        """The last non-blank error line llama.cpp printed (its reason for failing)."""
        lines = [ln.strip(" =\n") for e in self.errors for ln in e.splitlines() if ln.strip(" =")]
        return lines[-1] if lines else None

    def fallbacks(self) -> tuple[int, int] | None:
        """(tensors that fell back to another type, all tensors), as the quantizer reports them."""
        found = re.search(r"(\d+) of (\d+) tensor\(s\) required fallback", "".join(self.lines))
        return (int(found[1]), int(found[2])) if found else None


@contextmanager
def captured_log(llama_cpp):
    """Route llama.cpp's log into a LlamaLog (and Python's debug log) while the block runs: the
    quantizer prints a line per tensor, and its error line belongs in Bondhu's one-line error."""
    record = LlamaLog()

    @llama_cpp.llama_log_callback
    def callback(level, text, _user_data):
        record.add(level, text.decode("utf-8", "replace") if text else "")

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield record
    finally:
        # Back to llama-cpp-python's own handler (NULL, llama.cpp's stderr default, if it has none).
        default = getattr(getattr(llama_cpp, "_logger", None), "llama_log_callback", None)
        llama_cpp.llama_log_set(default, ctypes.c_void_p(0))


def load_gguf(path: Path, n_ctx: int, threads: int | None = None, logits_all: bool = True):
    """A llama_cpp.Llama for the GGUF at ``path``, loaded without llama.cpp's extra weight buffers.

    Those buffers repack quantized weights for the CPU's fastest kernels. On a CPU with AMX (Xeon
    Sapphire Rapids and later), the AMX kernels of the llama.cpp in llama-cpp-python 0.3.36 crash
    the process at the first batch of more than one token (llama.cpp issue #20824 reports the
    same crash). Bondhu loads files to measure them, which the plain kernels do as well, only
    more slowly. llama-server's switch for the same thing is --no-repack.
    """
    llama_cpp = require_llama_cpp()
    import llama_cpp.llama as module

    defaults = module.llama_cpp.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    # Llama() takes no such argument, and builds its model parameters from this function.
    module.llama_cpp.llama_model_default_params = without_extra_buffers
    try:
        return llama_cpp.Llama(str(path), n_ctx=n_ctx, logits_all=logits_all, n_threads=threads, verbose=False)
    finally:
        module.llama_cpp.llama_model_default_params = defaults
