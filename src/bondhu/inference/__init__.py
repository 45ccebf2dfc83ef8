"""Generation from a trained run: load it (adapter, merged or fast), then generate or stream.

Chat, evaluation, the server and export all come through here, so they see the same model,
template and settings. It depends on ``train`` (to load a base as training did), ``data`` (the
chat template) and ``config``, and on nothing above it.
"""

from bondhu.inference.model import LoadedModel, QueueTimeout, Usage, generate, load_for_inference, prompt_ids, stream

__all__ = ["LoadedModel", "QueueTimeout", "Usage", "generate", "load_for_inference", "prompt_ids", "stream"]
