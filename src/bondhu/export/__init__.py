"""`bondhu export`: a run's adapter merged into its base and written for other runtimes.

``export_merged`` writes a Hugging Face model (vLLM, plain transformers).
"""

from bondhu.export.hf import export_merged

__all__ = ["export_merged"]
