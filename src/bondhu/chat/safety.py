"""Crisis-safety layer: spot messages that signal suicide risk or self-harm, answer them
with a fixed Bengali message and helplines, and strip unlisted phone numbers from output.

How `assess` decides, in order of precedence:

1. Normalise: `normalize_bengali`, lower-case, curly apostrophes to "'".
2. Mask EXCEPTIONS (idioms and negations: "গরমে মরে যাচ্ছি", "hese hese more gelam",
   "this exam is killing me", "আমি মরতে চাই না"). Masked spans are blanked so nothing in
   them can match later; blanking spans rather than vetoing the whole message keeps
   "হাসতে হাসতে মরে গেলাম, কিন্তু আর বাঁচতে চাই না" a crisis.
3. STRONG rules (first-person wish, intent or act: "বাঁচতে চাই না", "nijeke sesh kore dibo",
   "I want to kill myself", self-harm) flag the message whatever else it says: someone may
   mention the news and their own wish in one breath. COPYCAT rules ("আমিও ওভাবেই চলে
   যাই", "I should do the same") are strong but count only when the message names suicide.
   Reports of someone else's suicide ("এক ছাত্র আত্মহত্যা করেছে") are masked in step 2.
4. CONTEXTUAL rules (means + first-person verb, goodbye messages) are dropped when their
   clause also has a CONTEXT_CUE (news, awareness event, fiction, someone else's words).
5. FALLBACK, only if nothing fired: an explicit suicide/self-harm word plus a first-person
   cue in one clause, unless the clause is about information or about another person.
6. Category: suicide_plan > suicidal_ideation > self_harm. Ideation in a message that also
   names a time or a plan ("আজ রাতে", "tonight", "planning") is reported as a plan.

Third-person reports mostly need no rule: Bengali verbs carry person ("চাই" I want, "চায়"
she wants; "করব" I will, "করেছে" she did) and the English rules require "I"/"myself".
Errors are meant to fall on the side of a false alarm: that costs one kind message with
helplines, a miss costs far more. This is not a clinical tool; see docs/safety.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bondhu.config import ChatConfig
from bondhu.data.normalize import normalize_bengali

from bondhu.chat.safety_rules import (
    CONTEXT_CUES,
    FALLBACK_CUES,
    FALLBACK_FIRST_PERSON,
    FALLBACK_TOPIC,
    SUICIDE_TOPIC,
    _CLAUSE_BREAK,
    _CONTEXTUAL,
    _COPYCAT,
    _EN_WORDS,
    _EXCEPTIONS,
    _PLAN_CUE,
    _RO_WORDS,
    _SEVERITY,
    _STRONG,
)


@dataclass(frozen=True)
class SafetyAssessment:
    """Result of `assess`: whether to switch to the crisis reply, and the rule names that fired."""

    is_crisis: bool
    category: str | None  # "suicidal_ideation" | "suicide_plan" | "self_harm" | None
    matched: tuple[str, ...]
    script: str  # "bengali" | "romanized" | "english" | "mixed"


def detect_script(text: str) -> str:
    """Guess "bengali", "romanized", "english" or "mixed" from letters and common words."""
    bn, la = sum("\u0980" <= c <= "\u09ff" for c in text), sum(c.isascii() and c.isalpha() for c in text)
    if bn and la and min(bn, la) / (bn + la) >= 0.25:
        return "mixed"
    if bn >= la and bn:
        return "bengali"
    words = re.findall(r"[a-z']+", text.lower())
    return "romanized" if sum(w in _RO_WORDS for w in words) > sum(w in _EN_WORDS for w in words) else "english"


def _clause_at(text: str, pos: int) -> str:
    starts = [m.end() for m in _CLAUSE_BREAK.finditer(text, 0, pos)]
    end = _CLAUSE_BREAK.search(text, pos)
    return text[starts[-1] if starts else 0: end.start() if end else len(text)]


def _fallback(clause: str) -> bool:
    return bool(FALLBACK_TOPIC.search(clause) and FALLBACK_FIRST_PERSON.search(clause)
                and not CONTEXT_CUES.search(clause) and not FALLBACK_CUES.search(clause))


def assess(text: str) -> SafetyAssessment:
    """Rule-based crisis check for Bengali script, romanized Bengali and English text."""
    norm = normalize_bengali(text).lower().replace("\u2019", "'").replace("\u2018", "'")
    for pat in _EXCEPTIONS.values():  # blank with spaces so offsets, and so clauses, still line up
        norm = pat.sub(lambda m: " " * len(m.group()), norm)
    hits = {cat: [n for n, p in group.items() if p.search(norm)] for cat, group in _STRONG.items()}
    if SUICIDE_TOPIC.search(norm):
        hits["suicidal_ideation"] += [n for n, p in _COPYCAT.items() if p.search(norm)]
    for cat, group in _CONTEXTUAL.items():
        hits[cat] += [n for n, p in group.items()
                      if any(not CONTEXT_CUES.search(_clause_at(norm, m.start())) for m in p.finditer(norm))]
    if not any(hits.values()) and any(_fallback(c) for c in _CLAUSE_BREAK.split(norm) if c):
        hits["suicidal_ideation"].append("fallback.topic_first_person")
    matched = tuple(n for cat in _SEVERITY for n in hits[cat])
    category = next((c for c in _SEVERITY if hits[c]), None)
    if category == "suicidal_ideation" and _PLAN_CUE.search(norm):
        category = "suicide_plan"  # intent plus a time or a plan is handled as a plan
    return SafetyAssessment(bool(matched), category, matched, detect_script(text))


_LINE_FIELDS = {"name": dict, "number": str, "tel": str, "hours": str, "languages": list, "description": str, "source": str}


def _need(obj, key: str, typ: type, where: str, src: str):
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{src}: missing required field '{where}{key}'")
    if not isinstance(obj[key], typ) or isinstance(obj[key], bool) or (typ is not int and not obj[key]):
        raise ValueError(f"{src}: field '{where}{key}' must be a non-empty {typ.__name__}")
    return obj[key]


def load_helplines(path: str | Path | None = None) -> dict:
    """Load and validate the helpline file (the bundled chat/helplines.json by default)."""
    if path is None:
        src = "bondhu/chat/helplines.json"
        raw = resources.files("bondhu").joinpath("chat/helplines.json").read_text(encoding="utf-8")
    else:
        src, raw = str(path), Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{src}: not valid JSON ({e})") from e
    for key, typ in (("version", int), ("last_verified", str)):
        _need(data, key, typ, "", src)
    for code, region in _need(data, "regions", dict, "", src).items():
        _need(region, "name", str, f"regions.{code}.", src)
        for i, line in enumerate(_need(region, "lines", list, f"regions.{code}.", src)):
            at = f"regions.{code}.lines[{i}]."
            for key, typ in _LINE_FIELDS.items():
                _need(line, key, typ, at, src)
            for lang in ("bn", "en"):
                _need(line["name"], lang, str, at + "name.", src)
            if not re.fullmatch(r"\+?\d{3,15}", line["tel"]):
                raise ValueError(f"{src}: field '{at}tel' must be digits with an optional leading +")
    return data


def chosen_regions(helplines: dict, regions: list[str] | None) -> list[str]:
    """The configured region codes that the helpline file has, or else every region's code."""
    # An unknown region code must never leave a crisis reply without helplines.
    known = helplines["regions"]
    return [r for r in regions or [] if r in known] or list(known)


def crisis_reply(helplines: dict | None = None, regions: list[str] | None = None) -> str:
    """The fixed, warm Bengali crisis message (tumi form) with helplines; it never closes the conversation."""
    helplines = helplines or load_helplines()
    chosen = [helplines["regions"][code] for code in chosen_regions(helplines, regions)]
    urgent = [f"{ln['number']} ({reg['name']})" for reg in chosen for ln in reg["lines"] if ln.get("emergency")]
    listing = []
    for reg in chosen:
        listing.append(f"{reg['name']}:")
        listing += [f"• {ln['name']['bn']} ({ln['name']['en']}): {' বা '.join([ln['number'], *ln.get('alt_numbers', [])])}"
                    f" ({ln['hours']}) — {ln['description']}" for ln in reg["lines"]]
    return "\n\n".join([
        "আমি এখানে আছি, তোমার কথা শুনছি। এত কষ্টের কথা আমাকে বলেছ, এটা সহজ ছিল না। "
        "তুমি যা অনুভব করছ তা গুরুত্বপূর্ণ, আর তুমিও খুব গুরুত্বপূর্ণ।",
        "আমি একটা এআই, তাই এই মুহূর্তে তোমার পাশে একজন মানুষ থাকা খুব দরকার। এখনই তোমার বিশ্বাসের কাউকে জানাও: "
        "পরিবারের কেউ, বন্ধু বা শিক্ষক। অথবা নিচের কোনো হেল্পলাইনে ফোন করো। যা দিয়ে নিজের ক্ষতি হতে পারে, "
        "সম্ভব হলে তা নিজের কাছ থেকে দূরে সরিয়ে রাখো। তুমি যদি এখনই বিপদে থাকো বা নিজেকে আঘাত করার খুব কাছাকাছি থাকো, "
        "দেরি না করে জরুরি " + (f"নম্বরে ফোন করো: {', '.join(urgent)}।" if urgent else "সেবায় ফোন করো।"),
        "\n".join(listing),
        "আমি কোথাও যাচ্ছি না। তুমি চাইলে আমার সাথে কথা চালিয়ে যেতে পারো। এখন তোমার মনে কী চলছে, আমাকে একটু বলবে?",
    ])


PLACEHOLDER = "[নম্বর সরানো হয়েছে]"
_TO_ASCII = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Digit groups joined by single spaces, dashes or parentheses. Dots never join (decimals), and
# Bengali suffixes may follow directly ("৯১১তে"), so only a digit may not follow the run.
_PHONE_RUN = re.compile(r"(?<![0-9০-৯.+a-zA-Z])\+?\(?[0-9০-৯]+\)?(?:[ \-]?\(?[0-9০-৯]+\)?)*(?![0-9০-৯])")
_CALL_WORDS = re.compile(r"কল|ফোন|ডায়াল|হেল্পলাইন|হটলাইন|নম্বর|নাম্বার|যোগাযোগ|call|dial|phone|helpline|hotline|number|ring"
                         r"|text|sms|whatsapp|contact|tel|kol|fon|nombor|nambar", re.IGNORECASE)
# Dates, years and year ranges ("২০২৩-২০২৪ সেশন") are not phone numbers.
_NOT_PHONE = re.compile(r"\d{1,2}[-/]\d{1,2}[-/]\d{2,4}|\d{4}-\d{2}-\d{2}|(?:19|20)\d\d(?:\s?-\s?(?:19|20)?\d\d)?")
_UNIT_AFTER = re.compile(r"\s*(?:টাকা|taka|tk|৳|rupees?|rs\b|%|জন|people|km|kg)", re.IGNORECASE)
_COUNTRY_CODES = ("880", "91")  # the shipped regions; other codes can never equal a listed number anyway


def _canonical(raw: str) -> str:
    text = raw.translate(_TO_ASCII).strip()
    digits, intl = re.sub(r"\D", "", text), text.startswith(("+", "00"))
    digits = digits[2:] if text.startswith("00") else digits
    for cc in _COUNTRY_CODES:
        # Without "+" a leading 91/880 is a country code only if a full national number follows.
        if digits.startswith(cc) and len(digits) - len(cc) >= (3 if intl else 9):
            digits = digits[len(cc):]
            break
    return digits[1:] if digits.startswith("0") and len(digits) > 3 else digits  # drop the trunk 0


def allowed_numbers(helplines: dict) -> set[str]:
    """Canonical digits (no country code, no trunk 0) of every number and tel in the helpline file."""
    return {_canonical(n) for reg in helplines["regions"].values() for ln in reg["lines"]
            for n in [ln["number"], ln["tel"], *ln.get("alt_numbers", [])]}


def _is_listed(run: str, allowed: set[str]) -> bool:
    # One run can hold listed numbers side by side ("999 09612119911") or end in prose ("৯৯৯ ১০ মিনিটে").
    parts = run.split()
    while len(parts) > 1 and len(parts[-1]) <= 2:
        parts.pop()
    ok = [True] + [False] * len(parts)
    for j in range(1, len(parts) + 1):
        # A phone number spans at most ~5 groups ("+44 20 7946 0958"); the cap keeps this linear.
        ok[j] = any(ok[i] and _canonical(" ".join(parts[i:j])) in allowed for i in range(max(0, j - 5), j))
    return ok[-1]


def _phone_like(text: str, m: re.Match[str]) -> bool:
    run = m.group().translate(_TO_ASCII)
    n = sum(c.isdigit() for c in run)
    if n < 3 or _NOT_PHONE.fullmatch(run.strip("+() ")) or _UNIT_AFTER.match(text, m.end()):
        return False
    # Short codes (911, 988, 16263) count only near a call word, so "৩০০ জন" or "page 112" stay.
    return n >= 7 or bool(_CALL_WORDS.search(text[max(0, m.start() - 30): m.start()] + " " + text[m.end(): m.end() + 25]))


def filter_unlisted_numbers(text: str, helplines: dict) -> str:
    """Replace phone-like numbers that are not in the helpline file with a placeholder."""
    return _replace_unlisted(text, allowed_numbers(helplines))


def _replace_unlisted(text: str, allowed: set[str]) -> str:
    return _PHONE_RUN.sub(lambda m: PLACEHOLDER if _phone_like(text, m) and not _is_listed(m.group(), allowed)
                          else m.group(), text)


class SafetyLayer:
    """What the chat engine calls: check the user's text, pick the crisis reply, clean model output."""

    def __init__(self, helplines: dict | None = None, regions: list[str] | None = None):
        self.helplines, self.regions = helplines or load_helplines(), regions
        # Built once: clean_output runs on every streamed piece of every reply, and the crisis
        # reply is the same text every time.
        self._allowed = allowed_numbers(self.helplines)
        self._crisis_reply = crisis_reply(self.helplines, self.regions)

    @classmethod
    def from_config(cls, chat: ChatConfig) -> "SafetyLayer":
        """The layer a run's ``chat`` section describes: its helpline file and regions."""
        return cls(load_helplines(chat.helplines_file), chat.helpline_regions)

    def check(self, user_text: str) -> SafetyAssessment:
        """Assess one user message."""
        return assess(user_text)

    def reply_for(self, assessment: SafetyAssessment) -> str | None:
        """The crisis reply for a crisis, else None (the model answers as usual)."""
        return self._crisis_reply if assessment.is_crisis else None

    def clean_output(self, text: str) -> str:
        """Model output with unlisted phone numbers removed."""
        return _replace_unlisted(text, self._allowed)


def evaluate(path: str | Path) -> dict[str, dict[str, float]]:
    """Precision, recall and false-alarm rate, overall ("all") and per script, on a phrases JSONL file."""
    rows = [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    preds = [assess(r["text"]).is_crisis for r in rows]
    out = {}
    for script in ["all", *sorted({r["script"] for r in rows})]:
        sel = [(p, r["crisis"]) for p, r in zip(preds, rows) if script in ("all", r["script"])]
        tp, fp = sum(p and t for p, t in sel), sum(p and not t for p, t in sel)
        pos, neg = sum(t for _, t in sel), sum(not t for _, t in sel)
        out[script] = {"n": len(sel), "precision": tp / (tp + fp) if tp + fp else 1.0,
                       "recall": tp / pos if pos else 1.0, "false_alarm_rate": fp / neg if neg else 0.0}
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Score the crisis rules on a phrases JSONL file.")
    parser.add_argument("--eval", required=True, metavar="JSONL")
    print(f"{'script':<10} {'n':>4} {'precision':>10} {'recall':>8} {'false_alarm':>12}")
    for name, s in evaluate(parser.parse_args().eval).items():
        print(f"{name:<10} {s['n']:>4} {s['precision']:>10.3f} {s['recall']:>8.3f} {s['false_alarm_rate']:>12.3f}")
