"""`bondhu data audit`: the statistics that say what a conversation set will teach a model.

Per split and overall: how often replies end with a question, reply lengths, the commonest
openers, romanized and code-mixed user turns, practical requests, register (আপনি/তুমি/তুই)
mirroring, calques and therapy-speak from an extendable list, repeated sentences, and, across
splits, shared scenarios, near-copies and n-gram overlap. A risk function (the crisis detector,
passed in by the CLI) counts the conversations that disclose risk and whether their replies name
a helpline. Where a figure rests on a word list rather than a label, the report says so.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from bondhu.data.loaders import Conversation, detect_format, read_records, to_conversation
from bondhu.errors import DataError

_BN = re.compile(r"[\u0980-\u09FF]")
_LATIN = re.compile(r"[A-Za-z]")
_SENTENCES = re.compile(r"(?<=[।?!])\s+")
_QUESTION_END = re.compile(r"\?[\s\"'”’)\]🙂😊😀😅🙏❤️💛✨.!]*$")
# Heuristics, named as such in the report: a user asking what to do or how.
_PRACTICAL = re.compile(
    r"কী(ভাবে| করব| করবো| করা উচিত)|কিভাবে|কীভাবে|কি করব|পরামর্শ|উপায়|\bhow (do|can|should|to)\b|"
    r"\bwhat should i\b|\bkivabe\b|\bki korbo\b|\bki kora uchit\b|\bupay\b|\bkibhabe\b",
    re.I,
)
_REGISTER = {
    "apni": re.compile(r"আপনি|আপনার|আপনাকে|আপনারে|\bapni\b|\bapnar\b|\bapnake\b", re.I),
    "tumi": re.compile(r"তুমি|তোমার|তোমাকে|তোমারে|\btumi\b|\btomar\b|\btomake\b", re.I),
    "tui": re.compile(r"তুই|তোর|তোকে|তোরে|\btui\b|\btor\b|\btoke\b", re.I),
}
_HELPLINE = re.compile(r"কান পেতে রই|kaan pete roi|টেলি-মানস|tele-manas|৯৯৯|\b999\b|১৪৪১৬|\b14416\b|\b112\b|১১২", re.I)
_RED_FLAG = re.compile(
    r"বুকে (ব্যথা|চাপ)|chest pain|সাপে কাট|snake|খিঁচুনি|fits|গিলে ফেল|swallow|গ্যাসের গন্ধ|gas smell|"
    r"রক্তপাত|bleeding|স্ট্রোক|stroke|মুখ বেঁকে|অজ্ঞান|unconscious|শ্বাস নিতে পারছ",
    re.I,
)
_URGENT = re.compile(r"এখনই|এক্ষুনি|হাসপাতাল|hospital|অ্যাম্বুলেন্স|ambulance|জরুরি|emergency|৯৯৯|\b999\b|\b112\b", re.I)


def load_split(path: str | Path) -> list[Conversation]:
    """Every conversation of one file, validated; a bad record is an error naming its file, line and field."""
    records = read_records(str(path))
    good = [r for r in records if r.error is None]
    if not good:
        raise records[0].error if records else DataError(str(path), None, "file", "no records")
    fmt = detect_format(good[0].data)
    out = []
    for i, rec in enumerate(records, 1):
        if rec.error:
            raise rec.error
        out.append(to_conversation(rec, fmt, i))  # which validates the messages
    return out


def bundled_calques() -> list[str]:
    text = resources.files("bondhu.data").joinpath("calques.txt").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def script_of(text: str) -> str:
    """bengali, romanized or mixed, from the letters of one turn."""
    bn, la = len(_BN.findall(text)), len(_LATIN.findall(text))
    if la and bn and min(bn, la) / (bn + la) >= 0.1:
        return "mixed"
    return "romanized" if la > bn else "bengali"


def _turns(convs: list[Conversation], role: str) -> list[str]:
    return [m["content"] for c in convs for m in c.messages if m["role"] == role]


def _pct(values: list[int], q: float) -> int:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0


def _register_mismatch(conv: Conversation) -> bool:
    """The user says আপনি and the assistant তুমি/তুই, or the other way round (a heuristic on pronouns)."""

    def forms(role):
        text = " ".join(m["content"] for m in conv.messages if m["role"] == role)
        return {k for k, rx in _REGISTER.items() if rx.search(text)}

    user, bot = forms("user"), forms("assistant")
    return bool(user) and bool(bot) and not (user & bot)


def split_stats(convs: list[Conversation], calques: list[str], risk: Callable[[list[str]], str] | None) -> dict:
    replies = _turns(convs, "assistant")
    users = _turns(convs, "user")
    lengths = [len(r) for r in replies]
    openers = Counter(" ".join(r.split()[:3]) for r in replies)
    scripts = Counter(script_of(u) for u in users)
    sentences = Counter(s.strip() for r in replies for s in _SENTENCES.split(r) if len(s.strip()) > 15)
    latin_convs = sum(
        any(script_of(m["content"]) != "bengali" for m in c.messages if m["role"] == "user") for c in convs
    )
    n, nr = max(len(convs), 1), max(len(replies), 1)
    out = {
        "conversations": len(convs),
        "user_turns": dict(sorted(Counter(sum(m["role"] == "user" for m in c.messages) for c in convs).items())),
        "emotions": dict(sorted(Counter(c.emotion or "" for c in convs).items())),
        "assistant_turns": len(replies),
        "question_ending": sum(bool(_QUESTION_END.search(r.strip())) for r in replies) / nr,
        "no_question": sum("?" not in r for r in replies) / nr,
        "em_dash": sum("—" in r for r in replies) / nr,
        "reply_chars": {
            "p10": _pct(lengths, 0.1),
            "p50": _pct(lengths, 0.5),
            "p90": _pct(lengths, 0.9),
            "max": max(lengths, default=0),
            "mean": round(statistics.mean(lengths), 1) if lengths else 0,
        },
        "top_openers": [[o, k, round(k / nr, 4)] for o, k in openers.most_common(10)],
        "user_turn_scripts": {k: round(v / max(len(users), 1), 4) for k, v in scripts.items()},
        "conversations_with_romanized_or_mixed_users": latin_convs / n,
        "practical_requests_heuristic": sum(
            any(_PRACTICAL.search(m["content"]) for m in c.messages if m["role"] == "user") for c in convs
        )
        / n,
        "register_mismatch_heuristic": sum(_register_mismatch(c) for c in convs),
        "calques": {p: k for p in calques if (k := sum(r.count(p) for r in replies))},
        "repeated_sentences": [[s, k] for s, k in sentences.most_common(10) if k >= 3],
        "red_flags_heuristic": _red_flags(convs),
    }
    if risk is not None:
        out["risk"] = _risk(convs, risk)
    return out


def _red_flags(convs: list[Conversation]) -> dict:
    flagged = [c for c in convs if any(_RED_FLAG.search(m["content"]) for m in c.messages if m["role"] == "user")]
    urged = sum(any(_URGENT.search(m["content"]) for m in c.messages if m["role"] == "assistant") for c in flagged)
    return {"conversations": len(flagged), "replies_urge_care": urged}


def _risk(convs: list[Conversation], risk: Callable[[list[str]], str]) -> dict:
    """Conversations whose user turns the detector calls concern or crisis, and how many of those
    name a helpline in a reply."""
    levels = Counter()
    helpline = Counter()
    for c in convs:
        level = risk([m["content"] for m in c.messages if m["role"] == "user"])
        levels[level] += 1
        if level != "none" and any(_HELPLINE.search(m["content"]) for m in c.messages if m["role"] == "assistant"):
            helpline[level] += 1
    return {"levels": dict(levels), "with_helpline": dict(helpline)}


def _once(risk: Callable[[list[str]], str]) -> Callable[[list[str]], str]:
    seen: dict[tuple[str, ...], str] = {}

    def level(turns: list[str]) -> str:
        key = tuple(turns)
        if key not in seen:
            seen[key] = risk(turns)
        return seen[key]

    return level


def _shingles(conv: Conversation, k: int = 3) -> set[str]:
    words = " ".join(m["content"] for m in conv.messages if m["role"] == "user").split()
    return {" ".join(words[i : i + k]) for i in range(max(len(words) - k + 1, 1))}


def _ngrams(convs: list[Conversation], k: int = 8) -> set[str]:
    out = set()
    for c in convs:
        for m in c.messages:
            w = m["content"].split()
            out.update(" ".join(w[i : i + k]) for i in range(len(w) - k + 1))
    return out


def cross_split(splits: dict[str, list[Conversation]], near: float = 0.5) -> dict:
    """Scenarios in two splits, near-copies of a training conversation's user turns in another split
    (Jaccard of word 3-grams ≥ ``near``), and the share of each split's 8-grams also in train."""
    train = splits.get("train", [])
    train_shingles = [(c.id, _shingles(c)) for c in train]
    train_grams = _ngrams(train)
    out = {"shared_scenarios": [], "near_copies": [], "ngram_overlap_with_train": {}}
    seen: dict[str, str] = {}
    for name, convs in splits.items():
        for c in convs:
            key = c.scenario or c.id
            if key in seen and seen[key] != name:
                out["shared_scenarios"].append([key, seen[key], name])
            seen.setdefault(key, name)
        if name == "train":
            continue
        for c in convs:
            mine = _shingles(c)
            for tid, theirs in train_shingles:
                j = len(mine & theirs) / max(len(mine | theirs), 1)
                if j >= near:
                    out["near_copies"].append([c.id, tid, round(j, 3)])
        grams = _ngrams(convs)
        out["ngram_overlap_with_train"][name] = round(len(grams & train_grams) / max(len(grams), 1), 4)
    return out


@dataclass(frozen=True)
class Targets:
    """What the bundled dataset must show (issue: dataset v2); a user's data is only reported on."""

    conversations: int = 1500
    per_emotion: int = 30
    train: int = 1200
    validation: int = 150
    test: int = 150
    max_question_ending: float = 0.60
    min_no_question: float = 0.25
    min_romanized_or_mixed: float = 0.25
    min_practical: float = 0.15
    min_risk_disclosures: int = 40
    min_red_flags: int = 25


def check(report: dict, t: Targets = Targets()) -> list[str]:
    """The targets a report misses, one line each (empty: all met)."""
    o, x = report["overall"], report["cross_split"]
    miss = []
    sizes = {k: v["conversations"] for k, v in report["splits"].items()}

    def need(ok, what):
        if not ok:
            miss.append(what)

    need(o["conversations"] >= t.conversations, f"conversations {o['conversations']} < {t.conversations}")
    low = {e: k for e, k in o["emotions"].items() if k < t.per_emotion}
    need(not low, f"emotions under {t.per_emotion}: {low}")
    for split, floor in (("train", t.train), ("validation", t.validation), ("test", t.test)):
        need(sizes.get(split, 0) >= floor, f"{split} has {sizes.get(split, 0)} < {floor}")
    need(o["question_ending"] <= t.max_question_ending, f"question-ending replies {o['question_ending']:.1%}")
    need(o["no_question"] >= t.min_no_question, f"replies without a question {o['no_question']:.1%}")
    need(
        o["conversations_with_romanized_or_mixed_users"] >= t.min_romanized_or_mixed,
        f"romanized/mixed conversations {o['conversations_with_romanized_or_mixed_users']:.1%}",
    )
    need(
        o["practical_requests_heuristic"] >= t.min_practical,
        f"practical requests {o['practical_requests_heuristic']:.1%}",
    )
    need(not o["calques"], f"calques: {o['calques']}")
    need(not x["shared_scenarios"] and not x["near_copies"], "scenarios or near-copies cross splits")
    if "risk" in o:
        told = sum(v for k, v in o["risk"]["levels"].items() if k != "none")
        need(told >= t.min_risk_disclosures, f"risk disclosures {told} < {t.min_risk_disclosures}")
    need(
        o["red_flags_heuristic"]["conversations"] >= t.min_red_flags,
        f"red flags {o['red_flags_heuristic']['conversations']} < {t.min_red_flags}",
    )
    return miss


def audit(
    files: list[str | Path], calques: list[str] | None = None, risk: Callable[[list[str]], str] | None = None
) -> dict:
    """The whole report: each file is a split named by its stem (train.jsonl → train)."""
    calques = bundled_calques() if calques is None else calques
    splits = {Path(f).stem: load_split(f) for f in files}
    if risk is not None:  # each conversation is in one split and in the whole: read it once
        risk = _once(risk)
    everything = [c for convs in splits.values() for c in convs]
    report = {
        "files": [str(f) for f in files],
        "splits": {name: split_stats(convs, calques, risk) for name, convs in splits.items()},
        "overall": split_stats(everything, calques, risk),
        "cross_split": cross_split(splits),
    }
    report["targets_missed"] = check(report)
    return report


def plot(report: dict, path: str | Path) -> None:
    """Reply lengths and question rates per split, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["splits"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in names:
        r = report["splits"][name]["reply_chars"]
        left.plot(["p10", "p50", "p90", "max"], [r["p10"], r["p50"], r["p90"], r["max"]], "o-", label=name)
    left.set_title("assistant reply length (characters)")
    left.legend()
    q = [report["splits"][n]["question_ending"] for n in names]
    nq = [report["splits"][n]["no_question"] for n in names]
    xs = range(len(names))
    right.bar([x - 0.2 for x in xs], q, 0.4, label="ends with a question")
    right.bar([x + 0.2 for x in xs], nq, 0.4, label="no question")
    right.set_xticks(list(xs), names)
    right.set_ylim(0, 1)
    right.set_title("assistant replies")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
