"""Data: loading, cleaning, templating and tokenizing Bengali conversations."""

from bondhu.data.normalize import normalize_bengali

__all__ = ["DatasetProcessor", "normalize_bengali"]


def __getattr__(name: str):
    if name == "DatasetProcessor":
        from bondhu.data.processor import DatasetProcessor

        return DatasetProcessor
    raise AttributeError(f"module 'bondhu.data' has no attribute {name!r}")
