"""SafetyLayer: the one object chat, the server and the web page call for safety."""

from __future__ import annotations

from bondhu.config import ChatConfig, SafetyConfig
from bondhu.safety import classifier as clf
from bondhu.safety.detector import Assessment, CrisisDetector, Detector
from bondhu.safety.numbers import NumberStream, allowed_numbers, replace_unlisted
from bondhu.safety.output import REPLACEMENT, ReplyCheck, unsafe_reason
from bondhu.safety.replies import (
    concern_check_in,
    crisis_follow_up,
    crisis_reply,
    helpline_entries,
    load_helplines,
)

# Added to the system prompt after a concern or a recent crisis: the model keeps safety in view.
SAFETY_NOTE = (
    "এই মানুষটি সম্প্রতি নিজের ক্ষতি বা মৃত্যুর কথা বলেছেন। উষ্ণ ও মনোযোগী থাকো, তাঁর নিরাপত্তার কথা মাথায় "
    "রাখো, দরকার হলে সরাসরি জিজ্ঞেস করো তিনি নিরাপদ কি না, আর কখনো কোনো পদ্ধতি বা উপায়ের বিবরণ দিয়ো না।"
)


class SafetyLayer:
    """Assess user turns, pick the fixed replies, and check and clean model output."""

    def __init__(
        self,
        helplines: dict | None = None,
        regions: list[str] | None = None,
        detector: Detector | None = None,
        check_output: bool = True,
    ):
        self.helplines, self.regions = helplines or load_helplines(), regions
        self.detector = detector or CrisisDetector()
        self.check_output = check_output
        # Built once: clean_output runs on every streamed piece, and the fixed replies never change.
        self._allowed = allowed_numbers(self.helplines)
        self._crisis_reply = crisis_reply(self.helplines, self.regions)
        self._check_in = concern_check_in(self.helplines, self.regions)
        self._follow_up = crisis_follow_up(self.helplines, self.regions)
        self.helpline_list = helpline_entries(self.helplines, self.regions)

    @classmethod
    def from_config(cls, chat: ChatConfig, safety: SafetyConfig | None = None) -> "SafetyLayer":
        """The layer a run's ``chat`` and ``safety`` sections describe."""
        safety = safety or SafetyConfig()
        model = clf.load(safety.classifier) if safety.classifier else None
        detector = CrisisDetector(model, window=safety.window, elevated_turns=safety.elevated_turns)
        return cls(load_helplines(chat.helplines_file), chat.helpline_regions, detector, safety.check_output)

    def check(self, user_text: str) -> Assessment:
        """Assess one user message on its own."""
        return self.detector.assess(user_text)

    def check_conversation(self, messages: list[dict]) -> Assessment:
        """Assess the newest user message with the recent user turns before it."""
        return self.detector.assess_conversation([m["content"] for m in messages if m["role"] == "user"])

    def reply_for(self, assessment: Assessment) -> str | None:
        """The fixed crisis reply for a crisis said now, else None (the model answers). A crisis
        that stands from earlier turns gets the model's reply and ``check_in_for``'s follow-up: the
        person has had the crisis reply, and sending it again would not answer what they ask."""
        return self._crisis_reply if assessment.is_crisis and not assessment.standing else None

    def check_in_for(self, assessment: Assessment) -> str | None:
        """What follows the model's reply: the check-in on a concern, the crisis follow-up on a
        standing crisis, else None."""
        if assessment.is_crisis and assessment.standing:
            return self._follow_up
        return self._check_in if assessment.level == "concern" else None

    def system_note(self, assessment: Assessment) -> str | None:
        """What the model is told to keep in view after a concern or a recent crisis."""
        return SAFETY_NOTE if assessment.level == "concern" or assessment.elevated else None

    def clean_output(self, text: str) -> str:
        """Model output with unlisted phone numbers removed."""
        return replace_unlisted(text, self._allowed)

    def number_stream(self) -> NumberStream:
        """``clean_output`` for one reply as it streams: each piece handed out once it is final."""
        return NumberStream(self._allowed)

    def unsafe(self, text: str) -> str | None:
        """Why a model reply must be replaced (method details, encouragement), or None."""
        return unsafe_reason(text) if self.check_output else None

    def reply_check(self) -> ReplyCheck | None:
        """``unsafe`` for one reply as it streams, piece by piece (None when output is not checked)."""
        return ReplyCheck() if self.check_output else None

    replacement = REPLACEMENT
