"""Regression gates on the gate set (data/safety/gate.tsv) and on ordinary chat, both held out
from fitting and from the thresholds. The gate set is two blind sets, each measured once, whose
misses were then read, so these catch a detector that got worse (a lexicon edit, a stale model
file), not how well it generalizes. The figure that says that is the blind set's, in
docs/safety.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from bondhu.safety import CrisisDetector
from bondhu.safety.evalset import SCRIPTS, load_set, report

DATA = Path(__file__).resolve().parents[2] / "data" / "safety"
GATE = DATA / "gate.tsv"


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector()


@pytest.fixture(scope="module")
def gate_report(detector) -> dict:
    examples = load_set(GATE)
    return report(examples, [detector.assess_conversation(e.turns).level for e in examples])


# Set just under what the shipped model reaches through assess_conversation (docs/safety.md has
# the figures).
def test_recall_on_the_gate_set(gate_report):
    assert gate_report["overall"]["n"] >= 700  # the fourth and tenth blind sets
    assert gate_report["overall"]["recall"] >= 0.97
    for script in SCRIPTS:
        assert gate_report["by_script"][script]["recall"] >= 0.96, script
    assert gate_report["multi_turn"]["recall"] >= 0.96


def test_messages_with_a_method_and_intent_are_mostly_crises(gate_report):
    assert gate_report["method_as_crisis"] >= 0.9


def test_false_alarms_on_the_gate_set(gate_report):
    assert gate_report["overall"]["crisis_false_alarms"] <= CRISIS_FALSE_ALARMS
    assert gate_report["overall"]["any_false_alarms"] <= ANY_FALSE_ALARMS


CRISIS_FALSE_ALARMS = 0.02
ANY_FALSE_ALARMS = 0.08


def test_ordinary_support_chats_rarely_raise_an_alarm(detector):
    # User turns of the empathy datasets' validation and test splits (v1, and the v2 drafts):
    # sad, scared, proud or angry people with no risk at all (docs/safety.md).
    examples = load_set(DATA / "ordinary.tsv")
    ordinary = report(examples, [detector.assess_conversation(e.turns).level for e in examples])["overall"]
    assert ordinary["n"] >= 800
    assert ordinary["crisis_false_alarms"] <= 0.015
    assert ordinary["any_false_alarms"] <= 0.10
