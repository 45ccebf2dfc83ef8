"""The check on model output: a reply that gives method details or encourages self-harm is
replaced before the person sees it.

Method details are a means of self-harm (the lexicon's ``method`` concept) next to how-to,
amount or lethality words ("কীভাবে", "mg", "how to", "lethal"); encouragement is a short list of
phrases that tell the person to die or hurt themselves. Both live in ``concepts.yaml`` under
``output_concepts``, folded like the user-side concepts so Banglish output is caught too.
"""

from __future__ import annotations

from bondhu.safety.canonical import clean, fold_word, words
from bondhu.safety.lexicon import find, load_concepts

REPLACEMENT = (
    "আমি এই উত্তরটা দিতে পারব না, কারণ এতে এমন কিছু ছিল যা তোমার ক্ষতি করতে পারে। তোমার নিরাপত্তা "
    "আমার কাছে সবচেয়ে জরুরি। তুমি কি এখন নিরাপদে আছ? চাইলে আমাকে বলো তোমার মনে কী চলছে।"
)


def unsafe_reason(text: str) -> str | None:
    """Why ``text`` must not be shown ("method details" or "encouragement"), or None."""
    tokens = [fold_word(w) for w in words(clean(text))]
    out = load_concepts(section="output_concepts")
    if any(find(tokens, p, set()) for p in out["encouragement"]):
        return "encouragement"
    method = [s for p in load_concepts()["method"] for s in find(tokens, p, set())]
    if not method:
        return None
    near = [s for p in out["instruction"] for s in find(tokens, p, set())]
    digits = [i for i, t in enumerate(tokens) if any(ch.isdigit() for ch in t)]
    for a, b in method:
        if any(abs(x - a) <= 8 or abs(y - b) <= 8 for x, y in near) or any(abs(i - a) <= 4 for i in digits):
            return "method details"
    return None
