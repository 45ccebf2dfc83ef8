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

from bondhu.data.normalize import normalize_bengali

_BN = "\u0980-\u09ff"
# Python's \b treats Bengali vowel signs as non-word characters, so \b would split
# "খাবার" into "খাব|ার"; explicit look-arounds keep whole words whole.
_L, _R = rf"(?<![\w{_BN}'])", rf"(?![\w{_BN}])"


def _gap(n: int) -> str:
    return rf"(?:[^\s।.!?]+\s+){{0,{n}}}"  # up to n words, never across a sentence end


def _compile(group: dict[str, str]) -> dict[str, re.Pattern[str]]:
    return {name: re.compile(_L + "(?:" + p + ")" + _R) for name, p in group.items()}


# Bengali-script fragments
_ICCHA = r"ইচ্ছ[াে]"
_WANT = rf"(?:চাই|{_ICCHA}\s+(?:করে|করছে|করতেছে|হয়|হচ্ছে)|মন\s+চায়)"
_BN_MEANS = (r"(?:ঘুমের\s+(?:ওষুধ|ঔষধ|বড়ি|ট্যাবলেট)|(?:সব|সবগুলো|অনেক|অনেকগুলো|পুরো|এক\s+পাতা|[০-৯0-9]{2,}\s*টা|(?:দশ|বিশ|ত্রিশ|চল্লিশ|পঞ্চাশ|একশো?)টা)"
             r"\s+(?:\S+\s+)?(?:ওষুধ|ঔষধ|ট্যাবলেট|প্যারাসিটামল|নাপা|পিল)|বিষ(?:ের|টা)?|ইঁদুর\s+মারার\s+\S+|কীটনাশক"
             r"|দড়ি|ফাঁস|ফ্যানে|ঝুলে|ছাদ\s+থেকে\s+লাফ|ট্রেনের\s+নিচে|রেললাইনে|ঝাঁপ|ব্লেড)")
_BN_PLAN_VERB = (r"(?:খাব|খাবো|খেয়ে\s+(?:ফেলব|ফেলবো|নেব|নিব|নেবো|ফেলেছি|নিয়েছি)|খেয়েছি|জমিয়ে\s+রেখেছি|জমাচ্ছি"
                 r"|কিনে\s+(?:এনেছি|রেখেছি|ফেলেছি)|কিনেছি|রেখেছি|দেব|দেবো|দিব|দিবো|নেব|নিব|নেবো|নিবো|পড়ব|পড়বো|ভাবছি|ঠিক\s+করেছি)")
# Romanized-Bengali fragments: spellings vary (icche/ichcha/iccha, bachte/baachte/banchte)
_RICCHA = r"(?:i(?:c|ch)+h?[ae]|issh?[ae])"
_RWANT = rf"(?:chai|cai|{_RICCHA}\s+(?:kore|korche|korchhe|korse|hoy|hocche|hochhe)|mon\s+cha[iy])"
_RO_MEANS = (r"(?:ghumer\s+(?:oshudh?|osudh?|oushodh|bori|tablet|pill)|onek(?:\s*gulo)?\s+(?:oshudh?|tablet|pill)|bish|bis|poison"
             r"|dori|rope|fash|fan\s*e|jhule|chh?ad\s+theke\s+laf|train\s*er\s+niche|rail\s*line\s*e|jhap|blade)")
_RO_PLAN_VERB = (r"(?:khabo|kheye\s+(?:nibo|nebo|felbo|felechi|nisi|felsi)|kheyechi|khaisi|joma\s+(?:korechi|korchi|korsi|kore\s+rekhechi)"
                 r"|kine\s+(?:rekhechi|enechi|felechi|rakhsi|ansi)|kinechi|kinsi|rekhechi|rakhsi|dibo|debo|dimu|nibo|nebo|porbo|pormu"
                 r"|vabchi|bhabchi|vabtesi)")
_EN_MEANS = r"(?:(?:sleeping\s+)?pills|tablets|rope|noose|poison|pesticide|razor|blades?|gun)"
_EN_PLACE = r"(?:the\s+|a\s+|my\s+|this\s+)?(?:roof|rooftop|bridge|building|terrace|balcony|train|bus|truck)"
_EN_INTENT = r"(?:going\s+to|gonna|i'?ll|i\s+will|want\s+to|wanna|planning\s+to|about\s+to)"

STRONG: dict[str, dict[str, str]] = {
    "suicidal_ideation": {
        # Bengali script
        "bn.no_will_to_live": rf"বাঁ?চতে\s+(?:আর\s+)?(?:চাই\s*না|{_ICCHA}\s+(?:করে|করছে|হয়)\s*না)"
                              rf"|বাঁ?চার\s+(?:আর\s+)?(?:কোনো\s+)?(?:{_ICCHA}|মানে|শখ)\s+(?:নেই|নাই)|বেঁ?চে\s+থাকতে\s+(?:আর\s+)?(?:চাই\s*না|ভালো?\s+লাগে\s*না)",
        "bn.no_reason_to_live": rf"বেঁ?চে\s+থাকা(?:র)?\s+(?:আর\s+)?(?:কোনো?\s+)?(?:{_ICCHA}|মানে|অর্থ|কারণ|দরকার|অধিকার|যোগ্যতা)\s+(?:নেই|নাই)"
                                r"|বেঁ?চে\s+থেকে\s+(?:আর\s+)?(?:কোনো|কী|কি)\s+(?:লাভ|হবে)",
        "bn.wish_to_die": rf"(?:মরতে|মরে\s+যেতে)\s+(?:খুব\s+|শুধু\s+|খালি\s+)?{_WANT}(?!\s*না)",
        "bn.death_wish": rf"(?:মরে\s+যাওয়া(?:ই|টাই)?|মরণ|মৃত্যু)\s+{_gap(1)}(?:চাই|কামনা\s+করি|উচিত|{_ICCHA}\s+(?:করে|করছে|হয়))(?!\s*না)"
                         r"|মরা\s+(?:উচিত|চাই)(?!\s*না)",
        "bn.better_dead": rf"মরে\s+(?:গেলেই|গেলে|যাওয়াই)\s+{_gap(4)}(?:ভালো|ভাল|শান্তি)|মরণই\s+ভালো"
                          rf"|মরে\s+গেলে(?:ই)?\s+{_gap(3)}(?:যন্ত্রণা|কষ্ট|ব্যথা)\s+(?:আর\s+)?(?:থাকবে\s+না|শেষ)|(?:থেকে\s+পড়ে|হারিয়ে)\s+গেলে(?:ই)?\s+{_gap(2)}(?:ভালো|ভাল)|কেন\s+(?:যে\s+)?বেঁ?চে\s+আছি"
                          r"|জীবনের\s+(?:আর\s+)?(?:কোনো\s+)?(?:মানে|মূল্য|অর্থ)\s+(?:নেই|নাই)",
        "bn.no_way_out": r"(?:আত্মহত্যা|মরা|মৃত্যু|মরে\s+যাওয়া)\s+(?:করা\s+)?ছাড়া\s+(?:আর\s+)?(?:কোনো\s+)?(?:পথ|উপায়|রাস্তা)\s+(?:দেখছি\s*না|নেই|নাই|খুঁজে\s+পাচ্ছি\s*না)"
                         r"|(?:সবকিছু|সব|পৃথিবী|দুনিয়া)\s+ছেড়ে\s+(?:চিরতরে\s+)?চলে\s+যাব|চলে\s+যাব\s+(?:\S+\s+){0,2}(?:সবকিছু|সব)\s+ছেড়ে",
        "bn.nobody_cares": rf"মরে\s+গেলে\s+{_gap(3)}(?:কেউ|কারো|কারও)\s+{_gap(2)}(?:কাঁদবে\s+না|যায়\s+আসে\s+না|আসে\s+যায়\s+না|টেরও\s+পাবে\s+না)",
        "bn.end_myself": rf"(?:নিজেকে|নিজের\s+জীবন|জীবনটা?)\s+{_gap(4)}(?:শেষ|খতম)\s+করে\s+(?:দেব|দেবো|দিব|দিবো|ফেলব|ফেলবো|(?:দিতে|ফেলতে)\s+{_WANT})"
                         rf"|সব\s+(?:শেষ|খতম)\s+করে\s+(?:দেব|দেবো|দিব|দিবো|ফেলব)|(?:(?<=^)|(?<=,)|(?<=, )|(?<=।)|(?<=। ))শেষ\s+করে\s+(?:দিতে|ফেলতে)\s+{_WANT}",
        "bn.kill_myself": rf"নিজেকে\s+(?:মেরে\s+(?:ফেলব|ফেলবো|ফেলি|দেব|ফেলতে\s+{_WANT})|খুন\s+(?:করব|করবো|করতে\s+{_WANT}))"
                          r"|নিজের\s+(?:প্রাণ|জীবন)\s+নিয়ে\s+(?:নেব|নিব|ফেলব)",
        "bn.suicide_intent": rf"(?:আত্মহত্যা|আত্নহত্যা|সুইসাইড)(?:র)?\s+(?:করব|করবো|করতে\s+{_WANT}"
                             rf"|(?:করার\s+)?(?:কথা|চিন্তা|প্ল্যান)\s+{_gap(2)}(?:ভাবছি|ভাবি|করছি|ঘুরছে|মাথায়\s+আস\S*))",
        "bn.leave_world": rf"(?:পৃথিবী|দুনিয়া)\s+(?:ছেড়ে|থেকে)\s+(?:চলে\s+)?(?:যেতে\s+{_WANT}|যাব|যাবো)"
                          rf"|চলে\s+যেতে\s+{_WANT}\s+(?:এই\s+)?(?:পৃথিবী|দুনিয়া)|থাকতে\s+চাই\s*না\s+{_gap(1)}(?:দুনিয়ায়|পৃথিবীতে)"
                          r"|(?:দুনিয়ায়|পৃথিবীতে)\s+(?:আর\s+)?থাকতে\s+চাই\s*না",
        "bn.without_me": rf"আমি\s+না\s+থাকলে\s+{_gap(4)}(?:ভালো|ভাল|খুশি|যায়\s+আসে\s+না)",
        "bn.forever": r"(?:চিরদিনের|চিরকালের)\s+জন্য\s+(?:মুক্তি|ঘুমাতে|ঘুমিয়ে|চলে\s+যেতে|হারিয়ে)|(?:মুক্তি|ঘুমাতে|চলে\s+যেতে)\s+(?:চাই\s+)?(?:চিরদিনের|চিরকালের)\s+জন্য"
                      r"|চিরতরে\s+(?:ঘুমিয়ে|চলে\s+যেতে|হারিয়ে|মুক্তি)|(?:সকাল|কাল)\S*\s+(?:যেন\s+)?(?:আর\s+)?না\s+দেখি|আর\s+(?:কোনো\s+)?সকাল\s+দেখতে\s+চাই\s*না",
        "bn.never_wake": rf"(?:ঘুমিয়ে|ঘুমাই|ঘুমালে)\s+{_gap(4)}(?:কখনো\s+|কোনোদিন\s+)?(?:না\s+উঠি|উঠতে\s+চাই\s*না|না\s+ভাঙে)"
                         r"|ঘুম\s+যেন\s+(?:আর\s+)?(?:কখনো\s+)?না\s+ভাঙে",
        # romanized Bengali
        "ro.no_will_to_live": rf"ba+n?c+h*te\s+(?:(?:ar|r)\s+)?(?:c?hai\s*na+|{_RICCHA}\s+(?:kore|korche|hoy)\s*na)"
                              rf"|ba+n?c+h*ar\s+(?:(?:ar|r)\s+)?(?:kono\s+)?(?:{_RICCHA}|mane|s?hokh)\s+(?:nai|nei)"
                              r"|be+n?c+h*e\s+thakte\s+(?:(?:ar|r)\s+)?(?:chai\s*na|b?h?val[oa]\s+lag(?:e|che)\s*na)",
        "ro.no_reason_to_live": rf"be+n?c+h*e\s+thaka?r\s+(?:(?:ar|r)\s+)?(?:kono\s+)?(?:{_RICCHA}|mane|mani|orth[oa]|karon|karan|odhikar|jogyota)\s+(?:nai|nei|nay)"
                                r"|be+n?c+h*e\s+theke\s+(?:(?:ar|r)\s+)?(?:ki|kono)\s+(?:labh|lav|lab|hobe)",
        "ro.wish_to_die": rf"(?:morte|(?:mor[eia]|moira)\s+(?:jete|ja(?:i)?te))\s+(?:khub\s+|shudhu\s+|sudhu\s+)?{_RWANT}(?!\s*na)",
        "ro.death_wish": rf"(?:mora|moron|mrit+[iu]|mirt+[iu]|more\s+jawa(?:i|ta)?)\s+{_gap(1)}(?:chai|uchit|ucit|{_RICCHA}\s+(?:kore|korche|hoy))(?!\s*na)",
        "ro.better_dead": rf"mor[ei]\s+(?:gele|gelei|jawai|jaoai|jaowai)\s+{_gap(4)}(?:valo|bhalo|shanti|santi)"
                          rf"|keno\s+(?:je\s+)?be+n?c+h*e\s+achi|mor[ei]\s+gele(?:i)?\s+{_gap(3)}(?:kosto|koshto|jontrona|betha)\s+(?:(?:ar|r)\s+)?(?:thakbe\s+na|sesh|shesh)",
        "ro.no_way_out": r"(?:suicide|at+m?[oa]h[oa]t+y?a|mora|more\s+jawa)\s+(?:kora\s+)?chh?ara\s+(?:(?:ar|r)\s+)?(?:kono\s+)?(?:path|poth|upay|rasta)"
                         r"\s+(?:dekhi\s*na|dekhchi\s*na|nai|nei)|sob\s+chh?e?re\s+chole\s+jabo",
        "ro.nobody_cares": rf"mor[ei]\s+gele\s+{_gap(3)}(?:keu|karo|kar[oa])\s+{_gap(2)}(?:kandbe\s+na|jay\s+ase\s+na|ase\s+jay\s+na|bujhbe\s+na)",
        "ro.end_myself": rf"(?:nijeke|jibon(?:ta)?|life(?:ta)?|sob)\s+(?:sesh|shesh|ses|khotom)\s+(?:kore|kre)\s+(?:dibo|debo|dimu|felbo|(?:dite|felte)\s+{_RWANT})",
        "ro.kill_myself": rf"nijeke\s+(?:mere\s+(?:felbo|felmu|feli|dibo|felte\s+{_RWANT})|khun\s+(?:korbo|korte\s+{_RWANT}))",
        "ro.suicide_intent": rf"(?:suicide|sucide|suiside|at+m?[oa]h[oa]t+y?a)\s+(?:korbo|krbo|kormu|korte\s+{_RWANT}"
                             rf"|(?:korar\s+|er\s+)?(?:kotha|chinta|plan)\s+{_gap(2)}(?:bhabchi|vabchi|bhabi|vabi|korchi|mathay\s+ash\S*))",
        "ro.leave_world": rf"(?:prithibi|duniya|dunia)\s+(?:chh?e?re|theke)\s+(?:chole\s+)?jete\s+{_RWANT}|thakte\s+chai\s*na\s+(?:ei\s+)?(?:duniya|dunia|prithibi)",
        "ro.without_me": rf"ami\s+na\s+thakle\s+{_gap(4)}(?:valo|bhalo|khushi|khusi|jay\s+ase\s+na)",
        "ro.forever": r"(?:chirodiner|chirokaler)\s+jonno\s+(?:mukti|ghumate|chole\s+jete|hariye)|chirotore\s+(?:ghumiye|chole|hariye|mukti)",
        "ro.never_wake": rf"ghum(?:iye|aile|ale)\s+{_gap(4)}(?:kokhono\s+)?(?:na\s+uthi|uthte\s+chai\s*na|na\s+b?h?vange)",
        # English
        "en.kill_myself": r"kill(?:ing)?\s+myself|kms",
        "en.not_live": r"(?:don'?t|do\s+not|no\s+longer)\s+(?:want|wanna)\s+(?:to\s+)?(?:live|be\s+alive|exist|wake\s+up|be\s+(?:here|around)\s+any\s*more)"
                       r"(?!\s+(?:in|at|with|near|there|abroad|here|like\s+that)\b)",
        "en.want_die": r"(?:want|wanna|wish\s+(?:i\s+)?(?:could|would))\s+(?:to\s+)?(?:just\s+)?die|i'?d\s+rather\s+be\s+dead|i\s+should\s+just\s+die"
                       r"|wish\s+i\s+(?:was|were)\s+dead|wish\s+i\s+(?:wasn'?t|was\s+never|had\s+never\s+been)\s+born",
        "en.never_wake": r"(?:wish|hope)\s+i\s+(?:don'?t|never)\s+wake\s+up|(?:go\s+to\s+sleep|sleep|fall\s+asleep)\s+and\s+never\s+wake\s+up",
        "en.end_life": r"(?:end|take|ending|taking)\s+my\s+(?:own\s+)?life|end(?:ing)?\s+it\s+all",
        "en.death_wish": r"i\s+(?:\w+\s+){0,2}(?:should|deserve\s+to|ought\s+to)\s+(?:just\s+)?die|(?:don'?t|do\s+not)\s+deserve\s+to\s+(?:live|be\s+alive|exist)"
                         r"|(?:want|wish)\s+to\s+(?:sleep|rest|disappear|go\s+away)\s+(?:forever|for\s+good|permanently)",
        "en.better_off": r"(?:better\s+off|happier)\s+without\s+me|why\s+am\s+i\s+(?:even\s+|still\s+)*alive"
                         r"|(?:if\s+i\s+(?:die|died|was\s+dead)|once\s+i'?m\s+(?:dead|gone)),?\s+(?:\w+\s+){0,3}(?:pain|suffering)\s+(?:will|would)\s+(?:stop|end)"
                         r"|(?:life|it)\s*(?:is\s*n'?t|is\s+not|'s\s+not|ain'?t)\s+worth\s+living|not\s+worth\s+living",
        "en.no_way_out": r"(?:see\s+)?no\s+(?:other\s+)?way\s+out|only\s+way\s+out"
                         r"|(?:feel\s+like|want\s+to|wanna|going\s+to|gonna|thinking\s+(?:of|about))\s+end(?:ing)?\s+(?:everything|it)(?!\s+with)"
                         r"|(?:want|need)\s+(?:it\s+all|everything|the\s+pain|it)\s+to\s+(?:stop|end)\s+(?:forever|for\s+good|permanently)",
        "en.nobody_cares": r"(?:nobody|no\s+one|no-one)\s+(?:would|will)\s+(?:even\s+)?(?:care|notice|miss\s+me)\s+if\s+i\s+"
                           r"(?:died|was\s+gone|were\s+gone|disappeared|killed\s+myself|was\s+dead)",
        "en.give_up_life": r"(?:tired\s+of|done\s+with|hate)\s+(?:living|being\s+alive)|done\s+with\s+life|can'?t\s+go\s+on\s+(?:any\s*more|any\s+longer)"
                           r"|(?:want|wanna)\s+to\s+disappear\s+(?:forever|for\s+good|permanently)",
        "en.suicidal": r"(?:i'?m|i\s+am|i\s+feel|feeling)\s+(?:so\s+|really\s+|very\s+|kinda\s+)?suicidal"
                       r"|(?:thinking|thought|think)\s+(?:about|of)\s+(?:suicide|killing\s+myself|ending\s+it)"
                       r"|(?:i\s+have|i'?ve\s+(?:been\s+)?(?:had|having)|i'?m\s+having)\s+suicidal\s+thoughts|(?:going|want|plan(?:ning)?)\s+to\s+commit\s+suicide",
        "en.no_reason": r"(?:no|(?:don'?t|can'?t)\s+see\s+(?:the|any)|what'?s\s+the)\s+(?:reason|point)\s+(?:for\s+me\s+)?(?:to|in|of)\s+(?:keep\s+|keeping\s+)?(?:living|live|being\s+alive|going\s+on)",
    },
    "suicide_plan": {
        "bn.note": r"(?:সুইসাইড|আত্মহত্যার)\s+নোট\s+(?:লিখেছি|লিখে\s+রেখেছি|লিখছি)",
        "ro.note": r"suicide\s+note\s+(?:likhechi|likhsi|likhe\s+rekhechi|likhchi)",
        "bn.hang": r"গলায়\s+(?:দড়ি|ফাঁস)\s+(?:দেব|দিব|দেবো|দিবো|দিতে\s+চাই)|ফাঁসি?\s+(?:নেব|নিব|দেব|দিব)|নিজেকে\s+ফাঁসি\s+দেব",
        "ro.hang": r"gol[ae]y?\s+(?:dori|fash|fashi)\s+(?:dibo|debo|dimu|dite\s+chai)|fashi?\s+(?:nibo|nebo|dibo|dimu)",
        "en.hang": r"hang(?:ing)?\s+myself",
        "en.note": r"(?:wrote|written|writing|write)\s+(?:my\s+|a\s+)?(?:suicide|goodbye)\s+(?:note|letter)",
        "en.overdose": rf"{_EN_INTENT}\s+(?:take\s+an\s+)?overdose|i\s+(?:just\s+)?overdosed|i'?ve\s+(?:taken|had)\s+an\s+overdose",
    },
    "self_harm": {
        "bn.cutting": rf"(?:হাত|কব্জি|শরীর|পা)\s*(?:টা\s+)?(?:কাটি|কাটছি|কেটেছি|কাটব|কাটবো|কেটে\s+ফেলেছি|কাটতে\s+{_WANT})"
                      rf"|(?:ব্লেড|ছুরি|কাচ)\s+(?:দিয়ে\s+)?(?:চালিয়েছি|চালাই|চালাচ্ছি|চালাব|টেনেছি)|ব্লেড\s+দিয়ে\s+{_gap(2)}(?:কাটি|কাটছি|কেটেছি|দাগ)",
        "bn.katakuti": r"(?:কাটাকুটি|কাটাছেঁড়া)\s+(?:করি|করছি|করেছি|করব)",
        "bn.burning": rf"(?:গায়ে|হাতে|শরীরে)\s+{_gap(2)}(?:ছ্যাঁকা|ছেঁকা|ছ্যাকা)\s+(?:দিই|দেই|দিয়েছি|দিচ্ছি)",
        "bn.hurt_self": rf"নিজেকে\s+(?:আঘাত|কষ্ট|ব্যথা)\s+(?:করি|করছি|করেছি|করব|দিই|দেই|দিচ্ছি|দিয়েছি|করতে\s+{_WANT}|দিতে\s+{_WANT})"
                        r"|নিজেকে\s+(?:আঘাত|কষ্ট|ব্যথা)\s+না\s+(?:দিলে|করলে)|পর্যন্ত\s+(?:আঁচড়াই|খামচাই|কাটি|মারি)"
                        rf"|নিজের\s+ক্ষতি\s+(?:করি|করছি|করেছি|করব|করতে\s+{_WANT})|(?:দেয়ালে|দেওয়ালে)\s+মাথা\s+(?:ঠুকি|ঠুকছি|ঠুকেছি|ঠোকাই)",
        "ro.cutting": rf"(?:hat|haat|hath|kobji)\s+(?:kati|katchi|katsi|ketechi|kete\s+felechi|katbo|katte\s+{_RWANT})"
                      rf"|(?:blade|churi|kach)\s+(?:diye\s+)?(?:chaliyechi|chalaisi|chalai|chalabo)|blade\s+diye\s+{_gap(2)}(?:kati|katchi|ketechi|katsi|katbo|dag)",
        "ro.katakuti": r"katakuti\s+(?:kori|korchi|korsi|korechi|korbo)",
        "ro.burning": rf"(?:gaye|hate|shorire)\s+{_gap(2)}(?:chh?ee?ka|chh?aka)\s+(?:dei|dii|disi|diyechi|dicchi)",
        "ro.hurt_self": r"nijeke\s+(?:aghaa?t|kosto|koshto|kashto|byatha|betha|hurt)\s+(?:kori|korchi|korsi|korechi|korbo|dei|dii|di|dicchi|disi|diyechi)"
                        r"|nijeke\s+(?:aghaa?t|kosto|koshto|byatha)\s+na\s+(?:dile|korle)|nijer\s+(?:khoti|ksoti)\s+(?:kori|korchi|korsi|korechi)"
                        r"|(?:matha\s+(?:deyale|dewale|deoale)|(?:deyale|dewale|deoale)\s+matha)\s+thuk(?:i|chi|si|echi)",
        "en.self_harm": r"(?:cutting|burning|harming|hurting|punching|hitting|scratching|starving)\s+myself"
                        r"|(?:cut|burn|hurt|harm|hit)\s+myself\s+(?:on\s+purpose|again|deliberately|when|whenever|to\s+feel|every)"
                        r"|(?:want|urge|need|wanna)\s+to\s+(?:cut|hurt|harm|burn)\s+(?:myself|my\s+(?:arms?|wrists?|skin|thighs?))"
                        r"|(?:slit|slash|slice|cut)\s+(?:open\s+)?my\s+(?:wrists?|veins?)|(?:unless|until)\s+i\s+(?:hurt|cut|harm)\s+myself"
                        r"|(?:scratch|cut|hit|punch|bang)\w*\s+(?:\w+\s+){0,3}(?:until|till)\s+(?:they|it|i)\s+bleeds?"
                        r"|(?:burn|burning|burned|burnt)\s+(?:my\s+)?(?:\w+\s+){0,2}(?:with\s+(?:a\s+)?(?:lighter|cigarettes?|match(?:es)?)|on\s+purpose)|(?:i|i've|been|started|relapsed(?:\s+into|\s+on)?)\s+self[-\s]?harm(?:ing|ed)?",
    },
}

COPYCAT = {  # counted only when SUICIDE_TOPIC also matches: "me too" means nothing on its own
    "bn.copycat": rf"আমিও\s+{_gap(2)}(?:তাই|ওভাবে|ওভাবেই|এভাবে|একই\s+কাজ|ওর\s+মতো)\s+{_gap(2)}(?:করি|করব|করবো|করতে\s+চাই|চলে\s+যাই|চলে\s+যাব|মরি|মরব)",
    "ro.copycat": rf"amio\s+{_gap(2)}(?:tai|oivabe|oibhabe|ovabe|obhabe|same|eki\s+kaj)\s+{_gap(2)}(?:kori|korbo|korte\s+chai|chole\s+jai|chole\s+jabo|mori|morbo)",
    "en.copycat": r"(?:i'?ll|i\s+will|i\s+should|i\s+want\s+to|i\s+might|i'?m\s+going\s+to)\s+(?:just\s+)?do\s+(?:the\s+same|it\s+too|that\s+too)",
}
SUICIDE_TOPIC = re.compile(r"আত্মহত্যা|আত্নহত্যা|সুইসাইড|suicide|atmohot|attohot|killed\s+(?:him|her|them)sel")

CONTEXTUAL: dict[str, dict[str, str]] = {
    "suicide_plan": {
        "bn.means": rf"{_BN_MEANS}\s+{_gap(4)}{_BN_PLAN_VERB}|{_BN_PLAN_VERB}\s+{_gap(3)}{_BN_MEANS}",
        "ro.means": rf"{_RO_MEANS}\s+{_gap(4)}{_RO_PLAN_VERB}|{_RO_PLAN_VERB}\s+{_gap(3)}{_RO_MEANS}",
        "en.means": rf"{_EN_MEANS}\s+{_gap(4)}to\s+(?:end\s+it|end\s+my\s+life|kill\s+myself|die|overdose)"
                    rf"|(?:have|got|bought|'ve)\s+(?:a\s+|the\s+|some\s+|my\s+)?{_EN_MEANS}\s+(?:ready|tied|hidden|saved)"
                    rf"|(?:saving|stockpiling|hoarding|collecting)\s+(?:up\s+)?(?:my\s+)?{_EN_MEANS}",
        "en.overdose_taken": r"(?:took|swallowed|taken)\s+(?:a\s+|the\s+)?(?:whole|entire|all|lot\s+of|bunch\s+of|handful\s+of|\d+)\s+"
                             r"(?:\w+\s+){0,3}?(?:pills|tablets)",
        "en.jump": rf"{_EN_INTENT}\s+(?:just\s+)?jump\s+(?:off|from|in\s+front\s+of)\s+{_EN_PLACE}"
                   rf"|throw(?:ing)?\s+myself\s+(?:off|from|in\s+front\s+of|under)\s+{_EN_PLACE}",
        "bn.at_edge": r"(?:ছাদের|ব্রিজের|সেতুর)\s+(?:কিনারে|কিনারায়|রেলিংয়ে|উপর)\s+(?:দাঁড়িয়ে|বসে)\s+আছি|রেললাইনে\s+(?:দাঁড়িয়ে|বসে|শুয়ে)\s+আছি",
        "ro.at_edge": r"(?:chh?ader|brij?er|bridge\s*er)\s+(?:kinare|upor|upore)\s+(?:dariye|bose)\s+(?:achi|asi)|rail\s*line\s*e\s+(?:dariye|bose)\s+(?:achi|asi)",
        "en.at_edge": r"i'?m\s+(?:standing|sitting)\s+(?:on|at)\s+(?:the\s+|a\s+)?(?:edge|ledge|bridge|roof|rooftop|railway\s+tracks?|train\s+tracks?)",
    },
    "suicidal_ideation": {
        "bn.vanish": r"আমাকে\s+(?:আর\s+)?(?:কেউ|কোথাও)\s+(?:খুঁজে\s+পাবে\s+না|দেখতে\s+পাবে\s+না)",
        "ro.vanish": r"amake\s+(?:(?:ar|r)\s+)?keu\s+(?:khuje|khuija)\s+pabe\s+na",
        "en.vanish": r"(?:no\s+one|nobody|you)\s+(?:will|won'?t|is\s+going\s+to)\s+(?:ever\s+)?(?:find|see)\s+me\s+(?:again|alive)",
        "bn.goodbye": rf"(?<!সাথে\s)(?:আর\s+)?(?:কোনো\s*দিন|কখনো)\s+(?:কথা|দেখা)\s+হবে\s+না|সবাইকে\s+(?:বিদায়|গুডবাই)|বিদায়\s+{_gap(3)}দেখা\s+হবে\s+না|এটাই\s+(?:হয়তো\s+)?(?:আমার\s+)?শেষ\s+(?:মেসেজ|বার্তা|চিঠি)",
        "ro.goodbye": rf"(?<!sathe\s)(?:(?:ar|r)\s+)?(?:kono\s*din|kokhono)\s+(?:kotha|dekha)\s+hobe\s+na|sobai(?:ke)?\s+(?:biday|bidai|bye|goodbye)|(?:biday|bidai)\s+{_gap(3)}dekha\s+hobe\s+na"
                      r"|etai\s+(?:hoyto\s+)?(?:amar\s+)?(?:sesh|shesh|last)\s+(?:message|msg|sms)",
        "en.goodbye": r"(?:we'?ll|we\s+will)\s+never\s+(?:talk|speak|see\s+each\s+other)\s+again|this\s+is\s+(?:my\s+)?goodbye|goodbye\s+(?:everyone|forever|world)|won'?t\s+(?:hear\s+from|see)\s+me\s+again"
                      r"|this\s+is\s+my\s+(?:last|final)\s+(?:message|text|note)|by\s+the\s+time\s+you\s+read\s+this",
    },
}

EXCEPTIONS = {
    "bn.idiom_die": rf"(?:গরমে|শীতে|ঠান্ডায়|ক্ষুধায়|ক্ষিধায়|খিদেয়|খিদায়|হাসতে\s+হাসতে|হেসে|লজ্জায়|ভয়ে|চাপে|টেনশনে|চিন্তায়)\s+{_gap(2)}মর\S*",
    "bn.idiom_other": r"(?:মরার|মড়ার)\s+মতো|মরতে\s+চাই\s*না|(?:মধ্যে|আগে|ভেতরে)\s+সব\s+শেষ\s+করে",  # last: a deadline, "finish it all"
    "ro.idiom_die": rf"(?:gorome?|shite?y?|site?y?|thandai?|khide?y?|khidai|khudhai?|hese\s+hese|hashte\s+hashte|haste\s+haste"
                    rf"|lojjai?|bhoye|voye|chape|tension\s*e)\s+{_gap(2)}mor\S*",
    "ro.idiom_other": r"morar\s+moto|mara\s+kh[ae]\S*|morte\s+chai\s*na|(?:moddhe|age)\s+sob\s+s?hesh",
    "bn.reported": r"(?:আত্মহত্যা|সুইসাইড)(?:র\s+চেষ্টা)?\s+(?:করেছে|করেছেন|করেছিল|করেছিলেন|করল|করলো|করে(?!\s+(?:ফেল|দে|দি)))",
    "ro.reported": r"suicide\s+(?:er\s+chesta\s+)?(?:koreche|korechilo|korlo|korse|kore\s+nai|kore(?!\s+(?:fel|dib|deb)))",
    "en.reported": r"(?<!i )(?<!i've )(?:attempted|committed|died\s+by|completed)\s+suicide",
    "en.idiom": r"killing\s+(?:me|time)|kill\s+for|(?:going\s+to|gonna)\s+kill\s+me|killed\s+it|dying\s+(?:to|for|of)"
                r"|died\s+(?:laughing|of\s+\w+)|die\s+of\s+(?:embarrassment|shame|boredom|laughter|cringe)"
                r"|(?:bored|scared|tired|worried|sick)\s+to\s+death|(?:don'?t|do\s+not|never)\s+(?:want|wanna)\s+to\s+die",
}

# Matched as substrings so Bengali inflections ("খবরে", "খবরের") need no listing.
CONTEXT_CUES = re.compile(
    r"খবর|সংবাদ|পত্রিকা|নিউজ|দিবস|সেমিনার|সচেতনতা|প্রতিরোধ|উপন্যাস|গল্পে|গল্পের|সিনেমা|নাটক|চরিত্র|কবিতা"
    r"|(?:ও|সে|তিনি)\s+(?:বলল|বলেছে|বলেছিল|লিখেছে)|khobor|potrika|news|dibos|seminar|awareness|prevention"
    r"|novel|story|movie|theory|তত্ত্ব|film|series|character|poem|lyrics|golpo|uponnash|cinema|natok"
    r"|(?:she|he|they)\s+(?:said|says|wrote|posted)|(?:o|se)\s+(?:bollo|boleche|bolechilo|likheche)")
# Fallback tier: an explicit suicide/self-harm word plus a first-person cue in one clause.
FALLBACK_TOPIC = re.compile(r"আত্মহত্যা|আত্নহত্যা|সুইসাইড|ওভারডোজ|suicid|atmohot|attohot|self[-\s]?harm|overdos")
FALLBACK_FIRST_PERSON = re.compile(
    rf"{_L}(?:আমি|আমার|আমাকে|আমায়|আমিও|\S+(?:ছি|লাম|বো)|\S+(?<!স)ব|চাই|ami|amar|amake|amio|[a-z]*(?:chi|si|lam|bo|mu)|i|i'm|i've|i'll|i'd|me|my|myself){_R}")
# ...unless the clause is about information or about someone else.
FALLBACK_CUES = re.compile(r"লক্ষণ|তত্ত্ব|হার|গবেষণা|ক্লাস|বন্ধু|বান্ধবী|ভাই|বোন|\b(?:signs?|warning|theory|rates?|research|class|statistics|friends?"
                           r"|brother|sister|mother|father|mom|dad|cousin|son|daughter|wife|husband|partner|bondhu)\b")
_CLAUSE_BREAK = re.compile(r"[।!?\n;,]|\.(?:\s|$)|\s(?:কিন্তু|তবে|but|kintu|tobe)\s")
_PLAN_CUE = re.compile(r"আজ(?:কে)?\s+রাতে|আজই|প্ল্যান|পরিকল্পনা|aj(?:ke)?\s+rate?|tonight|planning|plan\b")

_STRONG = {cat: _compile(g) for cat, g in STRONG.items()}
_CONTEXTUAL = {cat: _compile(g) for cat, g in CONTEXTUAL.items()}
_COPYCAT = _compile(COPYCAT)
_EXCEPTIONS = _compile(EXCEPTIONS)
_SEVERITY = ("suicide_plan", "suicidal_ideation", "self_harm")
_RO_WORDS = set("ami amar amake amio ar r na nai nei chai kore korchi korbo korte dibo hoy hobe ache achi ase kichu valo bhalo keno ki "
                "tumi eta ota theke diye gelam bhai khub mone kotha oke kivabe amader te er e o sob nijeke sesh mon kal ek tai".split())
_EN_WORDS = set("i the to and is a my me you it of in that this for was have i'm i've don't want be at on with so just what how "
                "can am are will it's about".split())


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


def crisis_reply(helplines: dict | None = None, regions: list[str] | None = None) -> str:
    """The fixed, warm Bengali crisis message (tumi form) with helplines; it never closes the conversation."""
    helplines = helplines or load_helplines()
    # An unknown region code must never break this reply: fall back to every region.
    chosen = [helplines["regions"][r] for r in regions or [] if r in helplines["regions"]] or list(helplines["regions"].values())
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
    allowed = allowed_numbers(helplines)
    return _PHONE_RUN.sub(lambda m: PLACEHOLDER if _phone_like(text, m) and not _is_listed(m.group(), allowed)
                          else m.group(), text)


class SafetyLayer:
    """What the chat engine calls: check the user's text, pick the crisis reply, clean model output."""

    def __init__(self, helplines: dict | None = None, regions: list[str] | None = None):
        self.helplines, self.regions = helplines or load_helplines(), regions

    def check(self, user_text: str) -> SafetyAssessment:
        """Assess one user message."""
        return assess(user_text)

    def reply_for(self, assessment: SafetyAssessment) -> str | None:
        """The crisis reply for a crisis, else None (the model answers as usual)."""
        return crisis_reply(self.helplines, self.regions) if assessment.is_crisis else None

    def clean_output(self, text: str) -> str:
        """Model output with unlisted phone numbers removed."""
        return filter_unlisted_numbers(text, self.helplines)


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
