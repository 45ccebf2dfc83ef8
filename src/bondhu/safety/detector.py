"""The crisis detector: the concept lexicon and the trained classifier, message by message and
over the recent turns of a conversation.

Either part can raise the alarm, and the higher level wins. The lexicon is explicit and
explains itself; the classifier generalizes to phrasings no rule lists. Conversation-level
risk reads the last ``window`` user turns together ("I've tried everything" then "so I've
decided to go"), and a session stays elevated for ``elevated_turns`` turns after a crisis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bondhu.safety import classifier as clf
from bondhu.safety.lexicon import judge, mentions, pool

RANK = {"none": 0, "concern": 1, "crisis": 2}
_RO_WORDS = set(
    "ami amar amake tumi tomar apni apnar ki keno kemon ache achhe nai nei na kichu kisu kicu r ar "
    "valo bhalo lage lagche lagse korbo korchi korsi krbo jabo jamu hobe hoye hoy eta oita sob shob "
    "ekta onek khub mone mon chai cai icche iccha kore diye dibo debo theke jonno jibon life ta "
    "tai kintu tobe bolo bol bolte parchi parina pari jani bujhi".split()
)
_EN_WORDS = set(
    "i i'm im me my the a an is are was am to of and in it that this you your what do don't dont "
    "not can can't cant will want with for on at be have just so but feel like".split()
)


def detect_script(text: str) -> str:
    """ "bengali", "romanized", "english" or "mixed", from letters and common words."""
    bn = sum("\u0980" <= c <= "\u09ff" for c in text)
    la = sum(c.isascii() and c.isalpha() for c in text)
    if bn and la and min(bn, la) / (bn + la) >= 0.15:
        return "mixed"
    if bn >= la and bn:
        return "bengali"
    tokens = re.findall(r"[a-z']+", text.lower())
    ro, en = sum(w in _RO_WORDS for w in tokens), sum(w in _EN_WORDS for w in tokens)
    if ro and en and min(ro, en) / (ro + en) >= 0.3:
        return "mixed"
    return "romanized" if ro > en else "english"


@dataclass(frozen=True)
class Assessment:
    """The detector's view of one message or conversation.

    ``level`` is "crisis", "concern" or "none"; ``reasons`` name the rules and scores that
    decided it and never quote the person's words, so they can be logged. ``elevated`` is set
    when a recent earlier turn was a crisis: helplines stay visible and the model is told to
    keep safety in view.
    """

    level: str
    category: str | None = None
    reasons: tuple[str, ...] = ()
    script: str = "bengali"
    score: float = 0.0
    elevated: bool = False
    from_context: bool = False  # the level comes from the recent turns together, not the newest alone
    # A crisis said in the turns before, which the newest turn does not take back: the person is
    # still at risk, but they have had the crisis reply, so the model answers them, safety in view,
    # and a follow-up with the helplines comes after (``SafetyLayer.reply_for``).
    standing: bool = False
    lexicon_crisis: bool = False  # a crisis that the lexicon's rules found too, not the classifier alone
    means: bool = False  # the lexicon's method concept heard (a rope, pills, the railway line), safe senses removed

    @property
    def is_crisis(self) -> bool:
        return self.level == "crisis"

    @property
    def needs_helplines(self) -> bool:
        return self.level != "none" or self.elevated


class Detector(Protocol):
    """What chat, the server and evaluation call."""

    def assess(self, text: str) -> Assessment: ...

    def assess_conversation(self, user_turns: list[str]) -> Assessment: ...


_CLASSIFIER_CATEGORY = "classifier"


def combine(
    lexicon: str,
    model: str,
    risk: float,
    concern_at: float,
    means: bool = False,
    lexicon_at: float = 0.0,
    escalate_at: float = 0.0,
    with_intent: bool = False,
) -> str:
    """The detector's level from its two parts.

    - The lexicon's alarm counts where the classifier's risk is at least ``lexicon_at`` (chosen
      on the development set, below ``concern_at``): there the lexicon raises what the
      classifier alone would let pass. Below it, on the development set, the rules fired on
      denials, news and stories far more often than on anything the classifier missed.
    - A lexicon crisis is a crisis when the classifier's risk reaches ``escalate_at``, and a
      concern otherwise, so a rule that fires on a denial, a report or a story asks the person
      plainly instead of replacing the conversation with the crisis message.
    - Except a means with intent (``with_intent``: the lexicon's method rule, a means together with
      a decision, a time or the wish to die, safe senses removed), which is a crisis wherever the
      lexicon is heard: on the development set this rule fired on 98 crisis messages and on 5 of
      574 hard negatives above ``lexicon_at``.
    - So is a named means (``means``: the lexicon's method concept, safe senses removed) in a
      message the classifier calls a concern: a method with intent is the clearest warning sign,
      and the intent is often said in ways no rule lists.
    ``escalate_at`` (at least ``concern_at``) is chosen on the development set to hold crisis
    false alarms down, since ropes, pesticide and trains are everyday words too.

    ``bondhu.safety.build.combine_arrays`` is the same rule over arrays, for choosing thresholds."""
    if risk < lexicon_at:
        lexicon = "none"
    if lexicon == "crisis" and risk < max(concern_at, escalate_at) and not with_intent:
        lexicon = "concern"
    if means and model != "none" and risk >= escalate_at:
        model = "crisis"
    return max(lexicon, model, key=RANK.__getitem__)


def _from_context(
    together: Assessment, reason: str, script: str, level: str | None = None, standing: bool = False
) -> Assessment:
    """The turns together's assessment, with ``reason`` first, at ``level`` (default: theirs)."""
    return Assessment(
        level or together.level,
        together.category,
        (reason,) + together.reasons,
        script,
        together.score,
        from_context=True,
        standing=standing,
    )


@dataclass
class CrisisDetector:
    """Lexicon plus classifier. ``classifier=None`` loads the bundled model file."""

    classifier: clf.Classifier | None = None
    window: int = 3
    elevated_turns: int = 3
    use_lexicon: bool = True
    use_classifier: bool = True

    def __post_init__(self) -> None:
        if self.classifier is None and self.use_classifier:
            self.classifier = clf.load()

    def _score(self, texts: list[str]) -> list[Assessment]:
        model = self.classifier.levels(texts) if self.use_classifier else [("none", 0.0)] * len(texts)
        c = self.classifier
        concern_at, lexicon_at, escalate_at = (
            (c.concern_at, c.lexicon_at, c.escalate_at) if self.use_classifier else (0.0, 0.0, 0.0)
        )
        out = []
        for text, (m_level, score) in zip(texts, model):
            lex = judge(text) if self.use_lexicon else None
            lex_level = lex.level if lex else "none"
            means = self.use_lexicon and bool(pool(text).get("method"))
            level = combine(
                lex_level,
                m_level,
                score,
                concern_at,
                means,
                lexicon_at,
                escalate_at,
                with_intent=bool(lex) and lex.means_with_intent,
            )
            category = (lex.category if lex_level != "none" else None) or _CLASSIFIER_CATEGORY
            reasons = list(lex.reasons) if lex_level != "none" else []
            if m_level != "none":
                reasons.append(f"classifier: {m_level} (risk {score:.2f})")
            out.append(
                Assessment(
                    level,
                    category if level != "none" else None,
                    tuple(reasons),
                    detect_script(text),
                    score,
                    lexicon_crisis=lex_level == "crisis" and level == "crisis",
                    means=means,
                )
            )
        return out

    def _clear(self, a: Assessment) -> bool:
        """A crisis that can stand over a harmless-looking turn: one that both parts call a crisis
        (the lexicon's rules found it too), one where a means was named (the classifier's crisis
        and the lexicon's method concept: "the 11:40 train on the line, that will do"), or the
        classifier's alone at ``escalate_at`` or more. A crisis from the classifier alone, with no
        means and nearer its threshold, is carried as a concern: there a harmless next turn is as
        likely to mean it was a false alarm."""
        escalate_at = self.classifier.escalate_at if self.use_classifier else 0.0
        return a.is_crisis and (a.lexicon_crisis or a.means or a.score >= escalate_at)

    def _taken_back(self, later: list[str]) -> bool:
        """Whether any of the ``later`` turns takes the risk back or laughs it off ("the rope is
        ready" / "lmao that sounded wrong" / "it's for the tug of war"), not only the newest."""
        return self.use_lexicon and any(mentions(t, "take_back") for t in later)

    def assess(self, text: str) -> Assessment:
        """Assess one message."""
        return self._score([text])[0]

    def assess_many(self, texts: list[str]) -> list[Assessment]:
        """Assess messages in one classifier batch (evaluation)."""
        return self._score(texts)

    def assess_conversation(self, user_turns: list[str]) -> Assessment:
        """Assess the newest user turn in the light of the ones before it."""
        turns = [t for t in user_turns if t and t.strip()]
        if not turns:
            return Assessment("none")
        recent = turns[-self.window :]
        earlier = turns[-(self.elevated_turns + 1) : -1]
        texts = [recent[-1]]
        if len(recent) > 1:
            texts += ["\n".join(recent), "\n".join(recent[:-1])]
        texts += earlier
        scored = self._score(texts)
        newest = scored[0]
        result = newest
        if len(recent) > 1:
            together, before = scored[1], scored[2]
            # The turns together count where the newest turn raised them, or where the risk of
            # the turns before still stands; an earlier crisis also elevates.
            if RANK[together.level] > max(RANK[newest.level], RANK[before.level]):
                result = _from_context(together, "conversation: recent turns together", newest.script)
            elif (
                self._clear(before)
                and not newest.is_crisis
                and together.level != "none"
                and not self._taken_back(recent[1:])
            ):
                # A crisis said just before ("the pesticide is in my room", "tonight, decided")
                # is not taken back by "anyway, how was your day?": still a crisis, standing, so
                # the model answers the person and the crisis follow-up comes after it, rather
                # than the same crisis reply a second time. A clarification ("it was for the
                # field, I'm fine") ends it where it brings the turns together back to none.
                reason = "conversation: the crisis of the turns before still stands"
                result = _from_context(before, reason, newest.script, standing=True)
            elif newest.level == "none" and together.level != "none" and before.level != "none":
                # A harmless-looking newest turn ("thanks for listening") does not take back the
                # risk of the turns before: a concern (the model replies, then the check-in).
                reason = "conversation: the risk of the turns before still stands"
                result = _from_context(together, reason, newest.script, level="concern")
        prior = scored[3 if len(recent) > 1 else 1 :]
        elevated = any(a.is_crisis for a in prior) or (len(recent) > 1 and scored[2].is_crisis)
        return Assessment(
            result.level,
            result.category,
            result.reasons,
            newest.script,
            result.score,
            elevated=elevated,
            from_context=result.from_context,
            standing=result.standing,
        )

    def highest_level(self, user_turns: list[str]) -> str:
        """The highest level at any turn of a finished conversation, each turn read with the ones
        before it as chat would have read it (``bondhu data audit`` counts disclosures with it)."""
        levels = (self.assess_conversation(user_turns[: i + 1]).level for i in range(len(user_turns)))
        return max(levels, key=RANK.__getitem__, default="none")
