"""`bondhu export`: a run's adapter merged into its base and written for other runtimes.

``export_merged`` writes a Hugging Face model (vLLM, plain transformers); ``export_gguf`` writes
GGUF files for llama.cpp and Ollama (f16 with the gguf package, the rest with llama.cpp's
quantizer), an Ollama Modelfile and a README.
"""

from bondhu.export.hf import export_merged
from bondhu.export.pipeline import GGUFExport, export_gguf
from bondhu.export.quantize import GGUF_TYPES, parse_types

__all__ = ["GGUF_TYPES", "GGUFExport", "export_gguf", "export_merged", "parse_types"]
