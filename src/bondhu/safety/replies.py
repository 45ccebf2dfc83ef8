"""Helplines and the fixed replies: the crisis message, and the check-in that follows a concern.

The helpline file (``helplines.json`` beside this module by default) is versioned data with its
last-verified date and sources; every number a reply shows comes from it.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

_LINE_FIELDS = {
    "name": dict,
    "number": str,
    "tel": str,
    "hours": str,
    "languages": list,
    "description": str,
    "source": str,
}


def _need(obj, key: str, typ: type, where: str, src: str):
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{src}: missing required field '{where}{key}'")
    if not isinstance(obj[key], typ) or isinstance(obj[key], bool) or (typ is not int and not obj[key]):
        raise ValueError(f"{src}: field '{where}{key}' must be a non-empty {typ.__name__}")
    return obj[key]


def load_helplines(path: str | Path | None = None) -> dict:
    """Load and validate the helpline file (the bundled safety/helplines.json by default)."""
    if path is None:
        src = "bondhu/safety/helplines.json"
        raw = resources.files("bondhu").joinpath("safety/helplines.json").read_text(encoding="utf-8")
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
        listing += [
            f"• {ln['name']['bn']} ({ln['name']['en']}): {' বা '.join([ln['number'], *ln.get('alt_numbers', [])])}"
            f" ({ln['hours']}) — {ln['description']}"
            for ln in reg["lines"]
        ]
    return "\n\n".join(
        [
            "আমি এখানে আছি, তোমার কথা শুনছি। এত কষ্টের কথা আমাকে বলেছ, এটা সহজ ছিল না। "
            "তুমি যা অনুভব করছ তা গুরুত্বপূর্ণ, আর তুমিও খুব গুরুত্বপূর্ণ।",
            "আমি একটা এআই, তাই এই মুহূর্তে তোমার পাশে একজন মানুষ থাকা খুব দরকার। এখনই তোমার বিশ্বাসের কাউকে জানাও: "
            "পরিবারের কেউ, বন্ধু বা শিক্ষক। অথবা নিচের কোনো হেল্পলাইনে ফোন করো। যা দিয়ে নিজের ক্ষতি হতে পারে, "
            "সম্ভব হলে তা নিজের কাছ থেকে দূরে সরিয়ে রাখো। তুমি যদি এখনই বিপদে থাকো বা নিজেকে আঘাত করার খুব কাছাকাছি থাকো, "
            "দেরি না করে জরুরি " + (f"নম্বরে ফোন করো: {', '.join(urgent)}।" if urgent else "সেবায় ফোন করো।"),
            "\n".join(listing),
            "আমি কোথাও যাচ্ছি না। তুমি চাইলে আমার সাথে কথা চালিয়ে যেতে পারো। এখন তোমার মনে কী চলছে, আমাকে একটু বলবে?",
        ]
    )


def helpline_entries(helplines: dict, regions: list[str] | None) -> list[dict]:
    """The chosen regions' lines as flat records, for the API and the web page."""
    all_regions = helplines["regions"]
    return [
        {
            "region": c,
            "region_name": all_regions[c]["name"],
            "name": ln["name"]["bn"],
            "name_en": ln["name"]["en"],
            "number": ln["number"],
            "tel": ln["tel"],
            "hours": ln["hours"],
            "description": ln["description"],
            "emergency": bool(ln.get("emergency")),
        }
        for c in chosen_regions(helplines, regions)
        for ln in all_regions[c]["lines"]
    ]


def concern_check_in(helplines: dict | None = None, regions: list[str] | None = None) -> str:
    """The short, direct check-in sent after the model's reply when risk is possible but not clear."""
    helplines = helplines or load_helplines()
    lines = [f"{e['name']}: {e['number']}" for e in helpline_entries(helplines, regions)]
    return (
        "একটা কথা সরাসরি জিজ্ঞেস করি, কারণ তোমার কথা আমার কাছে গুরুত্বপূর্ণ: তুমি কি নিজেকে আঘাত করার বা "
        "জীবন শেষ করার কথা ভাবছ? যা-ই হোক, আমাকে বলতে পারো। কারও সাথে এখনই কথা বলতে চাইলে: " + "; ".join(lines) + "।"
    )


def crisis_follow_up(helplines: dict | None = None, regions: list[str] | None = None) -> str:
    """What follows the model's reply while a crisis said in an earlier turn still stands: the
    person has had the crisis message, so this is short, says the bot has not forgotten, asks
    whether they are safe now and gives the helplines again."""
    helplines = helplines or load_helplines()
    entries = helpline_entries(helplines, regions)
    lines = [f"{e['name']}: {e['number']}" for e in entries]
    urgent = [e["number"] for e in entries if e["emergency"]]
    return (
        "একটু আগে তুমি যা বলেছ, আমি তা ভুলে যাইনি, আর তোমার জন্য আমার চিন্তা হচ্ছে। তুমি কি এখন নিরাপদে আছ? "
        "যা দিয়ে নিজের ক্ষতি হতে পারে, সম্ভব হলে সেটা নিজের কাছ থেকে দূরে সরিয়ে রাখো, আর এখনই কারও সাথে কথা বলো: "
        + "; ".join(lines)
        + "।"
        + (f" বিপদ খুব কাছে মনে হলে দেরি না করে {', '.join(urgent)} নম্বরে ফোন করো।" if urgent else "")
    )
