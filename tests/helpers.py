"""Paths shared by the tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINI = FIXTURES / "mini.jsonl"
BUNDLED = ROOT / "data" / "bondhu-empathy"


def mojibake(text: str) -> str:
    """UTF-8 text misread as cp1252, the classic broken form; the five bytes cp1252 cannot decode
    pass through as latin-1 characters."""
    return "".join(
        bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b) for b in text.encode("utf-8")
    )


# Llama 3.1-8B-Instruct's rope scaling (its config.json), for the GGUF tests' rope_freqs tensor.
LLAMA31_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
