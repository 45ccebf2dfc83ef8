"""Rebuild the classifier: fit on the training set, choose thresholds on the development set.

Thresholds are chosen for the whole detector (lexicon and classifier together), because that is
what runs: ``concern_at`` is the highest that still reaches ``target_recall`` on development
positives, and ``crisis_at`` the lowest whose crisis false alarms on development negatives stay
at or under ``max_crisis_false_alarms``. The blind set plays no part here.
"""

from __future__ import annotations

import numpy as np

from bondhu.safety import classifier as clf
from bondhu.safety.detector import combine
from bondhu.safety.evalset import Example
from bondhu.safety.lexicon import judge


def conversation_text(e: Example, window: int = 3) -> str:
    """What the detector reads for an example: its last ``window`` turns, joined."""
    return "\n".join(e.turns[-window:])


def _combined(lex: list[str], concern: np.ndarray, crisis: np.ndarray, concern_at: float, crisis_at: float) -> list[str]:
    """What the detector decides for each text at these thresholds (as ``CrisisDetector._score``)."""
    return [combine(lv, clf.level_of(p, c, concern_at, crisis_at), p + c, concern_at)
            for lv, p, c in zip(lex, concern, crisis)]


def choose_thresholds(model: clf.Classifier, dev: list[Example], target_recall: float = 0.98,
                      max_crisis_false_alarms: float = 0.02) -> dict:
    """Set ``model``'s thresholds from ``dev`` and return the development figures they give."""
    texts = [conversation_text(e) for e in dev]
    proba = model.probabilities(texts)
    concern, crisis = proba[:, 1], proba[:, 2]
    lex = [judge(t).level for t in texts]
    pos = np.array([e.positive for e in dev])
    grid = np.round(np.arange(0.02, 0.96, 0.01), 2)
    concern_at = grid[0]
    for t in grid:
        found = np.array([lv != "none" for lv in _combined(lex, concern, crisis, t, 2.0)])
        if found[pos].mean() >= target_recall:
            concern_at = t
    crisis_at = 0.95
    for t in grid[::-1]:
        if t < concern_at:
            break
        levels = _combined(lex, concern, crisis, concern_at, t)
        if np.mean([lv == "crisis" for lv, p in zip(levels, pos) if not p]) <= max_crisis_false_alarms:
            crisis_at = t
    model.concern_at, model.crisis_at = float(concern_at), float(crisis_at)
    levels = _combined(lex, concern, crisis, model.concern_at, model.crisis_at)
    found = np.array([lv != "none" for lv in levels])
    return {"concern_at": model.concern_at, "crisis_at": model.crisis_at,
            "dev_recall": float(found[pos].mean()), "dev_any_false_alarms": float(found[~pos].mean()),
            "dev_crisis_false_alarms": float(np.mean([lv == "crisis" for lv, p in zip(levels, pos) if not p]))}


def build(train: list[Example], dev: list[Example], seed: int = 0, target_recall: float = 0.98) -> tuple[clf.Classifier, dict]:
    """Train on ``train`` (multi-turn examples as their joined turns), tune on ``dev``."""
    model = clf.train([conversation_text(e) for e in train], [e.label for e in train], seed=seed)
    figures = choose_thresholds(model, dev, target_recall)
    model.meta.update({"n_dev": len(dev), "seed": seed, "target_recall": target_recall, **figures})
    return model, figures
