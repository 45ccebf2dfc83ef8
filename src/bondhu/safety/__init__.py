"""Crisis safety: canonical text, a detector (lexicon plus trained classifier) with
conversation-level risk, tiered replies, and checks on model output. See docs/safety.md."""

from bondhu.safety.canonical import clean, fold
from bondhu.safety.detector import Assessment, CrisisDetector, Detector, detect_script
from bondhu.safety.layer import SAFETY_NOTE, SafetyLayer
from bondhu.safety.numbers import PLACEHOLDER, allowed_numbers, filter_unlisted_numbers
from bondhu.safety.output import unsafe_reason
from bondhu.safety.replies import (
    chosen_regions,
    concern_check_in,
    crisis_follow_up,
    crisis_reply,
    helpline_entries,
    load_helplines,
)

_DEFAULT: CrisisDetector | None = None


def assess(text: str) -> Assessment:
    """Assess one message with the bundled detector (loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CrisisDetector()
    return _DEFAULT.assess(text)


__all__ = [
    "PLACEHOLDER",
    "SAFETY_NOTE",
    "Assessment",
    "CrisisDetector",
    "Detector",
    "SafetyLayer",
    "allowed_numbers",
    "assess",
    "chosen_regions",
    "clean",
    "concern_check_in",
    "crisis_follow_up",
    "crisis_reply",
    "detect_script",
    "filter_unlisted_numbers",
    "fold",
    "helpline_entries",
    "load_helplines",
    "unsafe_reason",
]
