"""Rebuild the classifier: fit on the training and development sets, choose thresholds on the
development set's out-of-fold predictions.

The development set is cut into ``folds`` contiguous blocks (its rows come writer by writer, so a
block is mostly one writer's). Each block is predicted by a model fitted without it, so the
thresholds are chosen on predictions for messages, and mostly writers, that model never saw; the
shipped model is then fitted on everything. Fitting on the development writers' messages, not only
choosing thresholds on them, roughly halved the false alarms at the same recall (docs/safety.md).
Thresholds are chosen for the whole detector (lexicon and classifier together), because that is
what runs (``choose_thresholds`` says how). The gate, ordinary and blind sets play no part here.
"""

from __future__ import annotations

import numpy as np

from bondhu.safety import classifier as clf
from bondhu.safety.evalset import Example
from bondhu.safety.lexicon import judge, pool

FOLDS = 5
# The recall asked of the joined-turns search below. The detector as chat runs it reads the
# newest turn and the turns together, and carries a standing risk, so it finds a little more
# than the joined turns alone (``detector_figures``; docs/safety.md has both).
TARGET_RECALL = 0.975
MAX_CRISIS_FALSE_ALARMS = 0.025
_THRESHOLDS = ("concern_at", "crisis_at", "lexicon_at", "escalate_at")  # as the model file stores them


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


def cross_fit(
    train: list[Example], dev: list[Example], folds: int = FOLDS, seed: int = 0
) -> tuple[np.ndarray, list[tuple[np.ndarray, clf.Classifier]]]:
    """P(none), P(concern), P(crisis) for each development example, from a model fitted on the
    training set and the other ``folds - 1`` contiguous blocks of the development set; and each
    block with its model."""
    proba, fitted = np.zeros((len(dev), 3)), []
    for block in np.array_split(np.arange(len(dev)), folds):
        held = set(block.tolist())
        rest = train + [e for i, e in enumerate(dev) if i not in held]
        model = clf.train([conversation_text(e) for e in rest], [e.label for e in rest], seed=seed)
        proba[block] = model.probabilities([conversation_text(dev[i]) for i in block])
        fitted.append((block, model))
    return proba, fitted


def detector_figures(dev: list[Example], fitted: list[tuple[np.ndarray, clf.Classifier]], thresholds: dict) -> dict:
    """The whole detector's development figures, as chat runs it (``assess_conversation``), each
    block judged by the model fitted without it."""
    from bondhu.safety.detector import CrisisDetector
    from bondhu.safety.evalset import report

    levels: list[str] = [""] * len(dev)
    for block, model in fitted:
        for key in _THRESHOLDS:
            setattr(model, key, thresholds[key])
        detector = CrisisDetector(classifier=model)
        for i in block:
            levels[i] = detector.assess_conversation(dev[i].turns).level
    r = report(dev, levels)
    overall = r["overall"]
    return {
        "recall": overall["recall"],
        "crisis_false_alarms": overall["crisis_false_alarms"],
        "any_false_alarms": overall["any_false_alarms"],
        "multi_turn_recall": r["multi_turn"]["recall"],
        "method_as_crisis": r["method_as_crisis"],
        "recall_by_script": {k: v["recall"] for k, v in r["by_script"].items()},
    }


def choose_thresholds(
    proba: np.ndarray,
    dev: list[Example],
    target_recall: float = TARGET_RECALL,
    max_crisis_false_alarms: float = MAX_CRISIS_FALSE_ALARMS,
) -> dict:
    """The thresholds for ``dev``'s probabilities ``proba`` (rows of P(none), P(concern),
    P(crisis)), with the development figures they give.

    First ``concern_at`` and ``lexicon_at``: of the pairs whose recall on development positives
    reaches ``target_recall``, the one with the fewest false alarms (the higher thresholds on a
    tie). Then ``crisis_at`` and ``escalate_at`` (where a rule's crisis or a named means makes a
    crisis): of the pairs whose crisis false alarms stay at or
    under ``max_crisis_false_alarms``, the one that calls the most crisis-labelled messages a
    crisis."""
    texts = [conversation_text(e) for e in dev]
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
    train: list[Example],
    dev: list[Example],
    seed: int = 0,
    target_recall: float = TARGET_RECALL,
    folds: int = FOLDS,
) -> tuple[clf.Classifier, dict]:
    """Thresholds from ``dev``'s out-of-fold predictions, then one model fitted on ``train`` and
    ``dev`` together (multi-turn examples as their joined turns). The figures include the whole
    detector's out-of-fold development figures under ``detector``."""
    proba, fitted = cross_fit(train, dev, folds, seed)
    figures = choose_thresholds(proba, dev, target_recall, MAX_CRISIS_FALSE_ALARMS)
    figures["detector"] = detector_figures(dev, fitted, figures)
    both = train + dev
    model = clf.train([conversation_text(e) for e in both], [e.label for e in both], seed=seed)
    for key in _THRESHOLDS:
        setattr(model, key, figures[key])
    model.meta.update({"n_dev": len(dev), "folds": folds, "seed": seed, "target_recall": target_recall, **figures})
    return model, figures
