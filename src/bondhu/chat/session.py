"""ChatSession: multi-turn, streamed, safety-checked conversation with a loaded model."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

from bondhu.config import BondhuConfig, GenerationSettings
from bondhu.data.normalize import normalize_bengali
from bondhu.data.template import with_system
from bondhu.inference.model import LoadedModel, Usage, load_for_inference, prompt_ids, stream
from bondhu.safety import Assessment, SafetyLayer


def filter_stream(pieces: Iterator[str], safety: SafetyLayer) -> Iterator[str]:
    """Remove unlisted phone numbers from streamed text (``SafetyLayer.clean_output``) without ever
    emitting part of one, however its digits and the words around it are split."""
    numbers = safety.number_stream()
    for piece in pieces:
        if out := numbers.feed(piece):
            yield out
    if out := numbers.flush():
        yield out


def trim_history(loaded: LoadedModel, messages: list[dict], budget: int) -> tuple[list[dict], list[int]]:
    """Drop the oldest turns until the prompt fits ``budget`` tokens; system and newest turn always stay.

    Returns the kept messages and their prompt's token ids (the last ones measured, so the
    prompt is not tokenized again to generate from it).
    """
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    body = messages[len(system) :]
    ids = prompt_ids(loaded, system + body)
    while len(body) > 1 and len(ids) > budget:
        body = body[2:] if len(body) > 2 and body[1]["role"] == "assistant" else body[1:]
        ids = prompt_ids(loaded, system + body)
    return system + body, ids


class Withdrawn(str):
    """A piece that withdraws everything streamed before it: the model's reply gave method details
    or encouraged self-harm, and this text replaces it (a server sends it as its own event)."""

    reason: str = ""


class OutputCheck:
    """The reply so far, checked as it grows: ``feed`` returns the piece while the reply is safe,
    and a ``Withdrawn`` replacement at its first unsafe stretch (after which nothing more is sent)."""

    def __init__(self, safety: SafetyLayer):
        self.safety, self.check = safety, safety.reply_check()

    def feed(self, piece: str) -> str:
        if self.check is not None and (reason := self.check.feed(piece)):
            out = Withdrawn(self.safety.replacement)
            out.reason = reason
            return out
        return piece


def guard_output(pieces: Iterator[str], safety: SafetyLayer, stop: threading.Event | None) -> Iterator[str]:
    """Pass pieces through while the reply so far is safe; on the first unsafe stretch, stop the
    model and yield a ``Withdrawn`` replacement instead of the rest."""
    check = OutputCheck(safety)
    for piece in pieces:
        out = check.feed(piece)
        if isinstance(out, Withdrawn):
            if stop is not None:
                stop.set()
            yield out
            return
        yield out


@dataclass
class Reply:
    """One answer: its assessment, and its text as a stream of pieces."""

    assessment: Assessment
    pieces: Iterator[str] | AsyncIterator[str]  # asynchronous when an upstream engine writes the reply
    crisis: bool
    # What the model read and wrote. A crisis reply is Bondhu's fixed text, not the model's, so it counts 0 and 0.
    usage: Usage
    check_in: str | None = None  # follows the model's reply on a concern


@dataclass
class Turn:
    """A conversation checked before any model reads it: what the model is sent (normalized, with
    the system prompt and, after a concern or a recent crisis, the safety note), the assessment,
    and Bondhu's own texts for it."""

    messages: list[dict]
    assessment: Assessment
    crisis_text: str | None  # the fixed crisis reply: the model is not called
    check_in: str | None  # follows the model's reply on a concern


def _with_note(messages: list[dict], note: str | None) -> list[dict]:
    if not note:
        return messages
    return [{"role": "system", "content": messages[0]["content"] + "\n\n" + note}, *messages[1:]]


def check_turn(messages: list[dict], system_prompt: str, safety: SafetyLayer) -> Turn:
    """Normalize the conversation, open it with ``system_prompt`` and assess it as a whole: the
    half of a turn that is the same whichever model writes the reply."""
    messages = with_system(
        [{"role": m["role"], "content": normalize_bengali(m["content"])} for m in messages], system_prompt
    )
    assessment = safety.check_conversation(messages)
    return Turn(
        _with_note(messages, safety.system_note(assessment)),
        assessment,
        safety.reply_for(assessment),
        safety.check_in_for(assessment),
    )


def respond(
    loaded: LoadedModel,
    messages: list[dict],
    settings: GenerationSettings,
    safety: SafetyLayer,
    context_tokens: int,
    stop: threading.Event | None = None,
    wait_s: float | None = None,
) -> Reply:
    """Assess the conversation, then stream the crisis message, or a generated, checked and filtered
    reply (followed by a check-in on a concern). ``wait_s``: how long the reply may wait for the model."""
    turn = check_turn(messages, loaded.config.data.system_prompt, safety)
    if turn.crisis_text is not None:
        return Reply(turn.assessment, iter([turn.crisis_text]), True, Usage())
    _, prompt = trim_history(loaded, turn.messages, max(64, context_tokens - settings.max_new_tokens))
    stop, usage = stop or threading.Event(), Usage(len(prompt))
    generated = stream(loaded, prompt, settings, stop, usage, wait_s)
    pieces = guard_output(filter_stream(generated, safety), safety, stop)
    return Reply(turn.assessment, pieces, False, usage, turn.check_in)


class ChatSession:
    """A conversation that keeps its history, streams replies and checks every user message."""

    def __init__(self, loaded: LoadedModel, config: BondhuConfig | None = None, safety: SafetyLayer | None = None):
        self.loaded = loaded
        self.config = config or loaded.config
        self.safety = safety or SafetyLayer.from_config(self.config.chat, self.config.safety)
        self.history: list[dict] = []
        self.last_assessment: Assessment | None = None

    @classmethod
    def from_run(cls, run: str | Path, backend: str = "auto") -> "ChatSession":
        return cls(load_for_inference(run, backend=backend))

    def settings(self, **overrides) -> GenerationSettings:
        return self.config.generation.model_copy(update={k: v for k, v in overrides.items() if v is not None})

    def send(self, text: str, stop: threading.Event | None = None, **overrides) -> Iterator[str]:
        """Stream the reply to ``text``; the exchange joins the history once the reply ends."""
        self.history.append({"role": "user", "content": normalize_bengali(text)})
        reply = respond(
            self.loaded, self.history, self.settings(**overrides), self.safety, self.config.chat.context_tokens, stop
        )
        self.last_assessment = reply.assessment
        parts: list[str] = []
        try:
            for piece in reply.pieces:
                if isinstance(piece, Withdrawn):
                    parts = [str(piece)]
                    yield "\n\n" + piece
                    continue
                parts.append(piece)
                yield piece
            if reply.check_in:
                parts.append("\n\n" + reply.check_in)
                yield "\n\n" + reply.check_in
        finally:
            # A reply cut short (Ctrl-C, /stop) still stays in the history as far as it got.
            self.history.append({"role": "assistant", "content": "".join(parts).strip() or "…"})

    def ask(self, text: str, **overrides) -> str:
        return "".join(self.send(text, **overrides))

    def reset(self) -> None:
        self.history.clear()

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(json.dumps({"messages": self.history}, ensure_ascii=False, indent=2), "utf-8")
        return out
