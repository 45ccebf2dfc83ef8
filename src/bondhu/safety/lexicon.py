"""The concept lexicon: risk factors found in folded text, combined into a level with reasons.

The concepts live in ``concepts.yaml`` as plain phrases; each is folded by
``bondhu.safety.canonical`` so one entry serves Bengali script, Banglish and typos. The text is
read clause by clause:

1. Safe senses are removed first: idioms ("গরমে মরে যাচ্ছি", "killing me"), everyday uses
   (প্রশ্ন ফাঁস, ফাঁসির রায়, pesticide for the paddy), denials ("মরতে চাই না") and the
   recovered past ("এখন ভালো আছি"). Their words cannot match anything later.
2. A clause about news, fiction, study or grief, or about another person with no first-person
   subject, contributes nothing.
3. What is left is pooled over the message and combined: a method, suicide or self-harm with
   intent, a time or a plan is ``crisis``; a death wish, a prayer to be taken, burden,
   hopelessness about ending things or self-harm alone is ``concern``.

It is one of the detector's two parts; the trained classifier is the other, and either one
can raise the alarm (``bondhu.safety.detector``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from bondhu.safety.canonical import clean, fold_word, folded_words, words

_CLAUSE = re.compile(r"[।!?.;:\n]+|,\s*(?:কিন্তু|তবে|but|tobe|kintu)\b", re.IGNORECASE)
_SAFE_SPANS = ("safe_idiom", "safe_everyday", "safe_denial", "safe_past")
_SAFE_CLAUSES = ("safe_news", "safe_fiction", "safe_study", "safe_grief")
_SUBJECTS = {fold_word(w) for w in ("আমি", "মুই", "আঁই", "i", "i'm", "im", "myself", "নিজেকে", "নিজেরে", "me")}
_NEG_SUFFIXES = ("na", "ni", "nai", "ne")
# English words that fold like a Bengali negation (Chittagonian "ন" and "on" both fold to "n"):
# "kill myself on Friday" is no denial.
_NOT_NEGATIONS = frozenset({"on", "in", "an", "one", "own", "none"})


@dataclass(frozen=True)
class Phrase:
    keys: tuple[tuple[str, bool], ...]  # (folded word, matches as a prefix)


@dataclass(frozen=True)
class Verdict:
    """The lexicon's level ("crisis", "concern" or "none"), its category and the reasons."""

    level: str
    category: str | None
    reasons: tuple[str, ...]

    @property
    def means_with_intent(self) -> bool:
        """The method rule fired: a named means with intent, the lexicon's clearest crisis."""
        return self.level == "crisis" and self.category == "method"


def _phrase(text: str) -> Phrase:
    keys = []
    for w in text.split():
        prefix = w.endswith("*")
        keys.append((fold_word(clean(w.rstrip("*"))), prefix))
    return Phrase(tuple((k, p) for k, p in keys if k))


@lru_cache(maxsize=4)
def load_concepts(path: str | None = None, section: str = "concepts") -> dict[str, tuple[Phrase, ...]]:
    """The folded concepts of one section of ``concepts.yaml`` (the bundled file unless ``path``
    is given): ``concepts`` for user messages, ``output_concepts`` for model replies."""
    raw = (
        Path(path).read_text("utf-8")
        if path
        else resources.files("bondhu.safety").joinpath("concepts.yaml").read_text("utf-8")
    )
    data = yaml.safe_load(raw)[section]
    for name, phrases in data.items():
        bad = [p for p in phrases if not isinstance(p, str)]
        if bad:  # YAML reads a bare no/yes/on as a boolean
            raise ValueError(f"{path or 'concepts.yaml'}: {section}.{name}: {bad[0]!r} is not a string; quote it")
    return {name: tuple(p for p in map(_phrase, phrases) if p.keys) for name, phrases in data.items()}


def _word_match(token: str, key: str, prefix: bool) -> bool:
    if token == key:
        return True
    if prefix:
        return token.startswith(key)
    # Bengali case endings attach to the word ("রাতেই", "ফ্যানে"); allow two more letters.
    return len(key) >= 3 and token.startswith(key) and len(token) - len(key) <= 2


def find(tokens: list[str], phrase: Phrase, used: set[int]) -> list[tuple[int, int]]:
    """Spans where ``phrase`` matches, its words at most one other word apart, avoiding ``used``."""
    spans = []
    first, rest = phrase.keys[0], phrase.keys[1:]
    for i, tok in enumerate(tokens):
        if i in used or not _word_match(tok, *first):
            continue
        j, ok = i, True
        for key, prefix in rest:
            nxt = next(
                (
                    k
                    for k in (j + 1, j + 2)
                    if k < len(tokens) and k not in used and _word_match(tokens[k], key, prefix)
                ),
                None,
            )
            if nxt is None:
                ok = False
                break
            j = nxt
        if ok:
            spans.append((i, j + 1))
    return spans


def _heads(tokens: list[str]) -> set[str]:
    """Every prefix of every token: a phrase can match only if its first word is one of them."""
    return {t[:k] for t in tokens for k in range(1, len(t) + 1)}


def _spans(tokens: list[str], phrases, used: set[int], heads: set[str]) -> list[tuple[int, int]]:
    """Where any of ``phrases`` matches; those whose first word is none of ``heads`` are skipped
    without a scan (most of the lexicon, for any one clause)."""
    return [s for p in phrases if p.keys[0][0] in heads for s in find(tokens, p, used)]


def _negated(tokens: list[str], spans: list[tuple[int, int]], concepts: dict, raw: list[str]) -> bool:
    """Whether every span is negated: a negation in the two words after it (Bengali puts it after
    the verb: "নিজেকে মেরে ফেলব না"), a fused one ("চাইনা"), or "not"/"don't" just before it.
    ``raw`` holds the unfolded words, to tell "on" from "ন"."""
    if not spans:
        return False
    neg = {p.keys[0][0] for p in concepts["negation"]}

    def is_neg(k: int) -> bool:
        return tokens[k] in neg and raw[k].lower() not in _NOT_NEGATIONS

    def one(span: tuple[int, int]) -> bool:
        a, b = span
        last = tokens[b - 1]
        fused = any(last.endswith(s) and len(last) > len(s) + 2 for s in _NEG_SUFFIXES)
        after = range(b, min(b + 2, len(tokens)))
        return fused or any(is_neg(k) for k in after) or any(is_neg(k) for k in range(max(0, a - 2), a))

    return all(one(s) for s in spans)


def clause_concepts(clause: str, concepts: dict) -> dict[str, list[tuple[int, int]]] | None:
    """Risk concepts of one clause after safe senses are removed; None when the clause's context
    (news, fiction, study, grief, someone else) means it says nothing about the writer."""
    raw = words(clean(clause))
    tokens = [fold_word(w) for w in raw]
    heads = _heads(tokens)
    used: set[int] = set()
    for name in _SAFE_SPANS:
        for a, b in _spans(tokens, concepts[name], used, heads):
            used.update(range(a, b))
    risk = [n for n in concepts if not n.startswith("safe_") and n != "negation"]
    hits = {n: _spans(tokens, concepts[n], used, heads) for n in risk}
    subject = any(t in _SUBJECTS for i, t in enumerate(tokens) if i not in used)
    wants = bool(hits["want"])
    if any(_spans(tokens, concepts[n], used, heads) for n in _SAFE_CLAUSES) and not (subject and wants):
        return None
    if _spans(tokens, concepts["safe_other_person"], used, heads) and not subject:
        return None
    hits["_negated_die"] = [(0, 0)] if _negated(tokens, hits["die"] + hits["suicide"], concepts, raw) else []
    hits["_negated_want"] = [(0, 0)] if _negated(tokens, hits["want"], concepts, raw) else []
    return hits


def _pool(text: str, concepts: dict) -> dict[str, bool]:
    pooled: dict[str, bool] = {}
    negated_die, any_die = True, False
    for clause in filter(None, (c.strip() for c in _CLAUSE.split(text))):
        hits = clause_concepts(clause, concepts)
        if hits is None:
            continue
        for name, spans in hits.items():
            if not name.startswith("_"):
                pooled[name] = pooled.get(name, False) or bool(spans)
        if hits["die"] or hits["suicide"]:
            any_die = True
            negated_die &= bool(hits["_negated_die"] or hits["_negated_want"])
    pooled["negated_die"] = any_die and negated_die
    return pooled


def mentions(text: str, concept: str) -> bool:
    """Whether any phrase of ``concept`` is in ``text``, safe senses not removed: for the words that
    take a risk back ("haha no, it's for the fan"), which often come with the very words that mark
    a safe sense."""
    tokens = folded_words(text)
    return bool(_spans(tokens, load_concepts()[concept], set(), _heads(tokens)))


@lru_cache(maxsize=4096)
def pool(text: str) -> dict[str, bool]:
    """The concepts of ``text`` with the bundled lexicon, computed once per text: the verdict and
    the classifier's concept features both read it. Callers must not change the dict."""
    return _pool(text, load_concepts())


def _rules(c: dict[str, bool]) -> list[tuple[str, str, str, bool]]:
    """(level, category, reason, whether it fires) for the pooled concepts ``c``, crisis rules first."""
    death = (c.get("suicide") or c.get("die")) and not c["negated_die"]
    urge = c.get("want") or c.get("intent") or c.get("time")
    return [
        (
            "crisis",
            "method",
            "a means with intent",
            c.get("method")
            and (
                (c.get("intent") and (c.get("time") or death))
                or (death and c.get("want"))
                or (c.get("suicide") and not c["negated_die"])
                or c.get("act_done")
            ),
        ),
        (
            "crisis",
            "suicidal_intent",
            "suicide with intent or a time",
            c.get("suicide") and not c["negated_die"] and urge,
        ),
        (
            "crisis",
            "plan_time",
            "no will to live, with a time or a plan",
            c.get("no_will_to_live") and (c.get("time") or c.get("intent")) and c.get("method"),
        ),
        (
            "crisis",
            "goodbye",
            "goodbye for ever",
            c.get("goodbye") and (c.get("forever") or death or c.get("method") or c.get("no_will_to_live")),
        ),
        (
            "crisis",
            "hopeless_intent",
            "decided to go, after hopelessness or burden",
            c.get("leaving")
            and c.get("decided")
            and (c.get("hopeless") or c.get("burden") or c.get("no_will_to_live")),
        ),
        ("crisis", "self_harm", "self-harm now or planned", c.get("self_harm") and (c.get("intent") or c.get("time"))),
        ("crisis", "in_progress", "self-harm just done", c.get("self_harm") and c.get("act_done")),
        ("concern", "death_wish", "no will to live", c.get("no_will_to_live")),
        ("concern", "death_wish", "wish to die", c.get("die") and c.get("want") and not c["negated_die"]),
        ("concern", "religious", "a prayer to be taken", c.get("god") and c.get("god_take")),
        ("concern", "burden", "feeling a burden", c.get("burden") and c.get("first_person")),
        (
            "concern",
            "hopeless_intent",
            "hopeless, with ending in view",
            c.get("hopeless") and (death or c.get("forever") or c.get("goodbye")),
        ),
        (
            "concern",
            "hopeless_intent",
            "going away, after hopelessness or burden",
            c.get("leaving") and (c.get("hopeless") or c.get("burden")),
        ),
        ("concern", "self_harm", "self-harm", c.get("self_harm")),
        ("concern", "suicidal_intent", "suicide named", c.get("suicide") and not c["negated_die"]),
        ("concern", "method", "a means with a time", c.get("method") and c.get("time") and c.get("hopeless")),
    ]


def judge(text: str, concepts: dict | None = None) -> Verdict:
    """The lexicon's verdict on one text (a message, or recent messages joined by newlines)."""
    c = _pool(text, concepts) if concepts else pool(text)
    fired = [(level, cat, why) for level, cat, why, ok in _rules(c) if ok]
    if not fired:
        return Verdict("none", None, ())
    level = "crisis" if any(f[0] == "crisis" for f in fired) else "concern"
    top = next(f for f in fired if f[0] == level)
    return Verdict(level, top[1], tuple(f"lexicon: {why}" for lv, _, why in fired if lv == level))
