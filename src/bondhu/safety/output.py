"""The check on model output: a reply that gives method details or encourages self-harm is
replaced before the person sees it.

Method details are a means of self-harm (the lexicon's ``method`` concept) next to how-to,
amount or lethality words ("কীভাবে", "mg", "how to", "lethal"); encouragement is a short list of
phrases that tell the person to die or hurt themselves. Both live in ``concepts.yaml`` under
``output_concepts``, folded like the user-side concepts so Banglish output is caught too.
"""

from __future__ import annotations

from bondhu.safety.canonical import folded_words
from bondhu.safety.lexicon import _heads, _spans, load_concepts

REPLACEMENT = (
    "আমি এই উত্তরটা দিতে পারব না, কারণ এতে এমন কিছু ছিল যা তোমার ক্ষতি করতে পারে। তোমার নিরাপত্তা "
    "আমার কাছে সবচেয়ে জরুরি। তুমি কি এখন নিরাপদে আছ? চাইলে আমাকে বলো তোমার মনে কী চলছে।"
)


def reason_in(tokens: list[str]) -> str | None:
    """``unsafe_reason`` of text already split into ``canonical.folded_words``. Phrases whose first word is no
    token's prefix are skipped without a scan, as in the lexicon: they cannot match."""
    out, heads = load_concepts(section="output_concepts"), _heads(tokens)
    if _spans(tokens, out["encouragement"], set(), heads):
        return "encouragement"
    method = _spans(tokens, load_concepts()["method"], set(), heads)
    if not method:
        return None
    near = _spans(tokens, out["instruction"], set(), heads)
    digits = [i for i, t in enumerate(tokens) if any(ch.isdigit() for ch in t)]
    for a, b in method:
        if any(abs(x - a) <= 8 or abs(y - b) <= 8 for x, y in near) or any(abs(i - a) <= 4 for i in digits):
            return "method details"
    return None


def unsafe_reason(text: str) -> str | None:
    """Why ``text`` must not be shown ("method details" or "encouragement"), or None."""
    return reason_in(folded_words(text))


class ReplyCheck:
    """``unsafe_reason`` of a reply that grows piece by piece, at a cost per piece that does not grow
    with the reply (checking the whole reply at every piece costs its length squared).

    Exact, not a sample: text cut at whitespace tokenizes as its two halves do (every step of
    ``clean`` and ``words`` is local to a word), so the words before the last whitespace are final
    and kept as tokens. The text so far was safe, so anything that makes it unsafe now involves a
    token after that point, and all the evidence lies within ``reach`` tokens of it: a phrase
    spans at most twice its words, a method and its instruction are at most 8 tokens apart, a
    digit at most 4. Only those tokens and the unfinished tail are checked."""

    def __init__(self):
        out = load_concepts(section="output_concepts")
        phrases = [*out["encouragement"], *out["instruction"], *load_concepts()["method"]]
        self.reach = 4 * max(len(p.keys) for p in phrases) + 24
        self.tokens: list[str] = []  # the last ``reach`` final tokens
        self.tail = ""  # the text after the last whitespace, whose last word may still grow
        self._checked: list[str] = []  # what the last check read: the same tokens need no second look

    def feed(self, piece: str) -> str | None:
        """The reason the reply so far must not be shown, or None; the reply is ``piece`` longer now."""
        self.tail += piece
        cut = len(self.tail)
        while cut and not self.tail[cut - 1].isspace():  # str.isspace is exactly re's \s, which clean uses
            cut -= 1
        done = folded_words(self.tail[:cut]) if cut else []
        window = self.tokens + done + folded_words(self.tail[cut:])
        # A piece of punctuation or space changes no token, and the same tokens were safe a piece ago.
        reason = None if window == self._checked else reason_in(window)
        self.tokens, self.tail, self._checked = (self.tokens + done)[-self.reach :], self.tail[cut:], window
        return reason
