"""Rebuild the classifier: fit on the training set, choose thresholds on the development set.

Thresholds are chosen for the whole detector (lexicon and classifier together), because that is
what runs (``choose_thresholds`` says how). The blind set plays no part here.
"""

from __future__ import annotations

import numpy as np

from bondhu.safety import classifier as clf
from bondhu.safety.evalset import Example
from bondhu.safety.lexicon import judge, pool


def conversation_text(e: Example, window: int = 3) -> str:
    """What the detector reads for an example: its last ``window`` turns, joined."""
    return "\n".join(e.turns[-window:])


RANKS = {"none": 0, "concern": 1, "crisis": 2}


def combine_arrays(
    lex: np.ndarray,
    means: np.ndarray,
    concern: np.ndarray,
    crisis: np.ndarray,
    concern_at: float,
    crisis_at: float,
    lexicon_at: float,
    escalate_at: float,
    with_intent: np.ndarray | None = None,
) -> np.ndarray:
    """``bondhu.safety.detector.combine`` over arrays: level ranks (0 none, 1 concern, 2 crisis)
    from the lexicon's ranks, its means flags (and means-with-intent flags) and the classifier's
    probabilities."""
    risk = concern + crisis
    intent = np.zeros_like(means) if with_intent is None else with_intent
    lexr = np.where(risk < lexicon_at, 0, lex)
    lexr = np.where((lexr == 2) & (risk < max(concern_at, escalate_at)) & ~intent, 1, lexr)
    model = np.where(crisis >= crisis_at, 2, np.where(risk >= concern_at, 1, 0))
    model = np.where(means & (model > 0) & (risk >= escalate_at), 2, model)
    return np.maximum(lexr, model)


def choose_thresholds(
    model: clf.Classifier, dev: list[Example], target_recall: float = 0.98, max_crisis_false_alarms: float = 0.02
) -> dict:
    """Set ``model``'s thresholds from ``dev`` and return the development figures they give.

    First ``concern_at`` and ``lexicon_at``: of the pairs whose recall on development positives
    reaches ``target_recall``, the one with the fewest false alarms (the higher thresholds on a
    tie). Then ``crisis_at`` and ``escalate_at`` (where a rule's crisis or a named means makes a
    crisis): of the pairs whose crisis false alarms stay at or
    under ``max_crisis_false_alarms``, the one that calls the most crisis-labelled messages a
    crisis."""
    texts = [conversation_text(e) for e in dev]
    proba = model.probabilities(texts)
    concern, crisis = proba[:, 1], proba[:, 2]
    verdicts = [judge(t) for t in texts]
    lex = np.array([RANKS[v.level] for v in verdicts])
    intent = np.array([v.means_with_intent for v in verdicts])
    means = np.array([bool(pool(t).get("method")) for t in texts])
    pos = np.array([e.positive for e in dev])
    is_crisis = np.array([e.label == "crisis" for e in dev])
    grid = np.round(np.arange(0.02, 0.96, 0.01), 2)

    def levels(ca, cr, la, ma):
        return combine_arrays(lex, means, concern, crisis, ca, cr, la, ma, intent)

    best = (2.0, 0.0, float(grid[0]), 0.0)
    for t in grid:
        for g in (0.0, *np.round(np.arange(0.05, t + 1e-9, 0.05), 2)):
            found = levels(t, 2.0, g, 2.0) > 0
            if found[pos].mean() >= target_recall:
                best = min(best, (float(found[~pos].mean()), -float(t + g), float(t), float(g)))
    _, _, concern_at, lexicon_at = best
    crisis_best = (1, 0.0, 0.95, 1.01)  # where nothing holds the limit: the classifier's crisis alone
    for cr in grid[grid >= concern_at]:
        for ma in (*grid[grid >= concern_at], 1.01):
            lv = levels(concern_at, cr, lexicon_at, ma)
            if (lv[~pos] == 2).mean() <= max_crisis_false_alarms:
                crisis_best = min(crisis_best, (-int((lv[is_crisis] == 2).sum()), float(cr + ma), float(cr), float(ma)))
    _, _, crisis_at, escalate_at = crisis_best
    model.concern_at, model.crisis_at, model.lexicon_at, model.escalate_at = (
        concern_at,
        crisis_at,
        lexicon_at,
        escalate_at,
    )
    lv = levels(concern_at, crisis_at, lexicon_at, escalate_at)
    return {
        "concern_at": concern_at,
        "crisis_at": crisis_at,
        "lexicon_at": lexicon_at,
        "escalate_at": escalate_at,
        "dev_recall": float((lv[pos] > 0).mean()),
        "dev_any_false_alarms": float((lv[~pos] > 0).mean()),
        "dev_crisis_false_alarms": float((lv[~pos] == 2).mean()),
        "dev_crisis_as_crisis": float((lv[is_crisis] == 2).mean()),
    }


def build(
    train: list[Example], dev: list[Example], seed: int = 0, target_recall: float = 0.98
) -> tuple[clf.Classifier, dict]:
    """Train on ``train`` (multi-turn examples as their joined turns), tune on ``dev``."""
    model = clf.train([conversation_text(e) for e in train], [e.label for e in train], seed=seed)
    figures = choose_thresholds(model, dev, target_recall)
    model.meta.update({"n_dev": len(dev), "seed": seed, "target_recall": target_recall, **figures})
    return model, figures
