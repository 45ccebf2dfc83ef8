"""Load a trained run (or a plain model) for inference, and generate from it.

Evaluation, the terminal chat and the server all go through ``load_for_inference`` and
``generate``/``stream``, so the three see the same model, template and settings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bondhu.config import BondhuConfig, GenerationSettings
from bondhu.data.template import render
from bondhu.errors import BondhuError
from bondhu.inference.loaded import LoadedModel
from bondhu.run import RunDir

log = logging.getLogger(__name__)


def load_for_inference(run: str | Path, backend: str = "auto", base_only: bool = False) -> LoadedModel:
    """Load RUN's base model the way it was trained, plus its adapter (unless ``base_only``).

    RUN may also be a merged export (a folder with config.json and weights).
    """
    path = Path(run)
    if (path / "config.json").is_file() and not (path / "config.yaml").is_file():
        return _load_plain(path)
    cfg = RunDir(path).config()
    if backend == "auto":
        backend = cfg.chat.backend  # the run's own choice (a preset may pick "fast")
    if backend == "fast" and not base_only:
        from bondhu.inference.fast import load_fast

        return load_fast(path, cfg)
    from bondhu.train.adapter import attach
    from bondhu.train.strategies import select_strategy, unsloth_usable

    adapter = None if base_only else RunDir(path).checked_adapter()

    # Load the base exactly as training did (same quantization), so the adapter sees the weights it learned on.
    trained_with = cfg.training.strategy
    if backend == "unsloth":
        name = "unsloth"
    elif trained_with == "unsloth" and (backend == "hf" or not unsloth_usable()[0]):
        name = "qlora"  # the same NF4 base through bitsandbytes
    else:
        name = trained_with
    strategy = select_strategy(name).strategy
    model, tokenizer = strategy.load(cfg)
    if adapter is not None:
        model = attach(model, adapter)
    model = strategy.for_inference(model)
    return LoadedModel(model, tokenizer, cfg, cfg.model.name_or_path, adapter and str(adapter), strategy.name)


def _load_plain(path: Path) -> LoadedModel:
    from transformers import AutoModelForCausalLM

    from bondhu.train.loading import load_tokenizer

    cfg = BondhuConfig()
    cfg.model.name_or_path = str(path)
    tokenizer = load_tokenizer(cfg.model, str(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype="auto").eval()
    return LoadedModel(model, tokenizer, cfg, str(path), None, "hf")


def generation_kwargs(loaded: LoadedModel, settings: GenerationSettings) -> dict:
    """The keyword arguments ``model.generate`` gets for ``settings`` (stop tokens, sampling, limits)."""
    tok = loaded.tokenizer
    kwargs = dict(
        max_new_tokens=settings.max_new_tokens,
        eos_token_id=loaded.stop_ids,
        pad_token_id=tok.pad_token_id,
        repetition_penalty=settings.repetition_penalty,
        use_cache=True,
    )
    if settings.samples:
        kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


def _seed(settings: GenerationSettings) -> None:
    if settings.seed is not None:
        from transformers import set_seed

        set_seed(settings.seed)


def prompt_ids(loaded: LoadedModel, messages: list[dict]) -> list[int]:
    text = render(loaded.tokenizer, messages, add_generation_prompt=True)
    return loaded.tokenizer(text, add_special_tokens=False)["input_ids"]


def generate(
    loaded: LoadedModel,
    conversations: list[list[dict]],
    settings: GenerationSettings,
    batch_size: int = 8,
    base: bool = False,
) -> list[str]:
    """Reply to each conversation (batched, left-padded, KV cache); ``base`` disables the adapter.

    The fast backend replies one conversation at a time through its decoder: at batch 1 it is
    faster than batched ``generate`` on the 4-bit backends (docs/benchmarks.md)."""
    import torch

    if base and loaded.merged:
        raise BondhuError("the base model cannot be had from merged weights; load it with base_only=True")
    if loaded.decoder is not None:
        return _decoder_replies(loaded, conversations, settings)
    tok, model = loaded.tokenizer, loaded.model
    device = next(model.parameters()).device
    replies: list[str] = []
    kwargs = generation_kwargs(loaded, settings)
    with loaded.lock, loaded.adapter_off(base), torch.inference_mode():
        for start in range(0, len(conversations), batch_size):
            _seed(settings)
            batch = [prompt_ids(loaded, c) for c in conversations[start : start + batch_size]]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, row in enumerate(batch):
                ids[i, width - len(row) :] = torch.tensor(row)
                mask[i, width - len(row) :] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
            replies += [tok.decode(o[width:], skip_special_tokens=True).strip() for o in out]
    return replies


def _decoder_replies(loaded: LoadedModel, conversations: list[list[dict]], settings: GenerationSettings) -> list[str]:
    """The fast backend's replies: one conversation at a time through its decoder, each seeded as
    ``generate`` seeds a batch."""
    import torch

    replies = []
    with loaded.lock, torch.inference_mode():
        for conversation in conversations:
            _seed(settings)
            new = list(loaded.decoder.tokens(prompt_ids(loaded, conversation), settings, loaded.stop_ids))
            replies.append(loaded.tokenizer.decode(new, skip_special_tokens=True).strip())
    return replies


class QueueTimeout(BondhuError):
    """The model stayed busy with other replies for longer than the caller would wait."""


@dataclass
class Usage:
    """Tokens the model read and wrote for one reply; ``stream`` counts ``completion_tokens`` as it goes."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # the engine's own ("stop", "length"), when it says (an upstream engine does)


def _stream_kwargs(loaded: LoadedModel, prompt: list[int], settings: GenerationSettings, streamer, stopping) -> dict:
    import torch

    ids = torch.tensor([prompt], device=next(loaded.model.parameters()).device)
    return dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        streamer=streamer,
        stopping_criteria=stopping,
        **generation_kwargs(loaded, settings),
    )


def stream(
    loaded: LoadedModel,
    prompt: list[int],
    settings: GenerationSettings,
    stop: threading.Event | None = None,
    usage: Usage | None = None,
    wait_s: float | None = None,
) -> Iterator[str]:
    """Yield the reply to ``prompt`` (token ids from ``prompt_ids``) piece by piece; ``stop`` ends it early.

    ``usage`` gets the number of tokens generated. ``wait_s``: how long to wait for the model
    while other replies hold it, after which ``QueueTimeout`` is raised (None: no limit)."""
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return stop.is_set()

    class _Counting(TextIteratorStreamer):
        def put(self, value):
            if not self.next_tokens_are_prompt:
                usage.completion_tokens += value.numel()
            super().put(value)

    stop = stop or threading.Event()  # also ends generation when the consumer stops reading
    usage = usage or Usage(len(prompt))
    # The streamer itself never times out: the wait for the model lock is bounded by wait_s instead.
    streamer = _Counting(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None)
    kwargs = _stream_kwargs(loaded, prompt, settings, streamer, StoppingCriteriaList([_Stop()]))
    errors: list[BaseException] = []

    def work():
        try:
            if not loaded.lock.acquire(timeout=-1 if wait_s is None else wait_s):
                raise QueueTimeout(f"the model stayed busy for {wait_s:g} s; please retry")
            try:
                _generate(loaded, prompt, settings, stop, streamer, kwargs)
            finally:
                loaded.lock.release()
        except BaseException as err:  # surfaced to the consumer below
            errors.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]


def _generate(
    loaded: LoadedModel, prompt: list[int], settings: GenerationSettings, stop: threading.Event, streamer, kwargs: dict
) -> None:
    """One reply into ``streamer``, with the model lock held: ``generate``, or the fast decoder."""
    import torch

    with torch.inference_mode():
        if stop.is_set():  # cancelled while queued: skip the prompt pass
            streamer.end()
            return
        _seed(settings)
        if loaded.decoder is None:
            loaded.model.generate(**kwargs)
            return
        streamer.put(kwargs["input_ids"])  # taken as the prompt and skipped, as generate() does
        for token in loaded.decoder.tokens(prompt, settings, loaded.stop_ids, stop):
            streamer.put(torch.tensor([token]))
        streamer.end()
