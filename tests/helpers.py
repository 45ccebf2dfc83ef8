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
