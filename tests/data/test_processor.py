"""DatasetProcessor: presets, cleaning, templating, labels and overflow."""

import csv
import json

import pytest

from bondhu.config import DataConfig
from bondhu.data.processor import IGNORE, DatasetProcessor
from bondhu.data.template import render_llama31
from bondhu.errors import DataError
from helpers import MINI, mojibake

U1, A1, U2, A2 = "আমার মন ভালো নেই।", "কী হয়েছে, একটু বলবে?", "চাকরিটা চলে গেল।", "এটা সত্যিই কঠিন সময়। এখন কেমন লাগছে?"


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def conv(i=0, **extra):
    return {
        "id": f"c{i}",
        "emotion": "sad",
        "situation": "চাকরি হারিয়েছে।",
        "messages": [
            {"role": "user", "content": f"{U1} {i}"},
            {"role": "assistant", "content": A1},
            {"role": "user", "content": U2},
            {"role": "assistant", "content": A2},
        ],
        **extra,
    }


def test_labels_cover_exactly_the_assistant_turns_and_their_eot(tokenizer):
    proc = DatasetProcessor(tokenizer)
    row = proc.encode(conv()["messages"])
    trained = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != IGNORE]
    assert tokenizer.decode(trained) == f"{A1}<|eot_id|>{A2}<|eot_id|>"
    # and the labels equal the inputs where they are set
    assert all(lab in (IGNORE, t) for t, lab in zip(row["input_ids"], row["labels"]))
    # the full sequence is kept: decoding all tokens gives back the rendered conversation
    rendered = render_llama31(proc.with_system(conv()["messages"]))
    assert tokenizer.decode(row["input_ids"]) == rendered


def test_pad_token_differs_from_eos(tokenizer):
    DatasetProcessor(tokenizer)
    assert tokenizer.pad_token == "<|finetune_right_pad_id|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_official_llama31_format_and_special_token_ids(tokenizer):
    messages = [
        {"role": "system", "content": " তুমি বন্ধু। "},
        {"role": "user", "content": U1},
        {"role": "assistant", "content": A1},
    ]
    # Written out from the published Llama 3.1 prompt format (system header with the
    # knowledge-cutoff and date lines; every turn closed by <|eot_id|>; content trimmed).
    expected = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "তুমি বন্ধু।<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{U1}<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{A1}<|eot_id|>"
    )
    assert render_llama31(messages) == expected
    assert tokenizer.apply_chat_template(messages, tokenize=False) == expected
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == render_llama31(messages[:2], add_generation_prompt=True)
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = tokenizer(expected, add_special_tokens=False)["input_ids"]
    specials = [tokenizer.convert_ids_to_tokens(i) for i in ids if tokenizer.convert_ids_to_tokens(i).startswith("<|")]
    assert specials[:4] == ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    assert specials.count("<|eot_id|>") == 3


def test_fallback_format_is_used_without_a_template(tokenizer):
    from transformers import AutoTokenizer

    bare = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    bare.chat_template = None
    with_tpl = DatasetProcessor(tokenizer).encode(conv()["messages"])
    without = DatasetProcessor(bare).encode(conv()["messages"])
    assert with_tpl == without


def test_system_prompt_is_added_and_configurable(tokenizer):
    proc = DatasetProcessor(tokenizer, DataConfig(system_prompt="তুমি একজন বন্ধু।"))
    text = tokenizer.decode(proc.encode(conv()["messages"])["input_ids"])
    assert "তুমি একজন বন্ধু।<|eot_id|>" in text


@pytest.mark.parametrize("policy", ["error", "drop", "truncate_history"])
def test_overflow_policies(tokenizer, tmp_path, policy):
    path = write_jsonl(tmp_path / "d.jsonl", [conv(0), conv(1, messages=conv(1)["messages"] * 3)])
    full = DatasetProcessor(tokenizer).prepare(str(path))
    short, long = sorted(r["length"] for r in full.rows)
    proc = DatasetProcessor(tokenizer, DataConfig(max_length=short + 5, overflow=policy))
    if policy == "error":
        with pytest.raises(DataError, match="over data.max_length"):
            proc.prepare(str(path))
        return
    out = proc.prepare(str(path))
    if policy == "drop":
        assert len(out.rows) == 1 and out.report.skipped["too_long"] == 1
    else:
        assert len(out.rows) == 2 and out.report.changed["history_truncated"] == 1
        kept = out.conversations[1].messages
        assert [m["content"] for m in kept[-2:]] == [U2, A2] and len(kept) < 12
        text = tokenizer.decode(out.rows[1]["input_ids"])
        assert DataConfig().system_prompt in text and text.endswith(f"{A2}<|eot_id|>")
        assert max(r["length"] for r in out.rows) <= short + 5
    assert all(r["length"] <= short + 5 for r in out.rows)


def test_no_truncation_without_a_limit(tokenizer, tmp_path):
    long = conv(0, messages=conv(0)["messages"] * 20)
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [long])))
    trained = [t for t, lab in zip(out.rows[0]["input_ids"], out.rows[0]["labels"]) if lab != IGNORE]
    assert tokenizer.decode(trained).count("<|eot_id|>") == 40


def test_a_train_subset_is_evenly_spaced_the_same_every_time_and_counted(tokenizer, tmp_path):
    path = str(write_jsonl(tmp_path / "d.jsonl", [conv(i) for i in range(10)]))
    first = DatasetProcessor(tokenizer).prepare(path, subset=4)
    again = DatasetProcessor(tokenizer).prepare(path, subset=4)
    assert len(first.rows) == 4 and first.report.skipped == {"outside_train_subset": 6}
    assert [r["input_ids"] for r in first.rows] == [r["input_ids"] for r in again.rows]
    assert [e.split()[0].rsplit(":", 1)[1] for e in first.report.examples["outside_train_subset"]][:2] == ["2", "4"]
    assert len(DatasetProcessor(tokenizer).prepare(path, subset=50).rows) == 10


def test_duplicates_dropped_and_counted(tokenizer, tmp_path):
    spaced = conv(0)
    spaced["messages"] = [
        {**m, "content": "  " + m["content"].replace(" ", "  ") + "\u200b"} for m in spaced["messages"]
    ]
    path = write_jsonl(tmp_path / "d.jsonl", [conv(0), conv(0), spaced, conv(1)])
    out = DatasetProcessor(tokenizer).prepare(str(path))
    assert len(out.rows) == 2
    assert out.report.skipped == {"duplicate_exact": 1, "duplicate_normalized": 1}


def test_foreign_crisis_numbers_removed_or_flagged(tokenizer, tmp_path):
    bad = conv(0)
    bad["messages"][1]["content"] = "আমি তোমার পাশে আছি। দয়া করে 1-800-273-8255 নম্বরে ফোন করো। কী হয়েছে বলবে?"
    path = write_jsonl(tmp_path / "d.jsonl", [bad, conv(1)])
    out = DatasetProcessor(tokenizer).prepare(str(path))
    assert out.report.changed["foreign_crisis_number_removed"] == 1
    assert out.conversations[0].messages[1]["content"] == "আমি তোমার পাশে আছি। কী হয়েছে বলবে?"
    flagged = DatasetProcessor(tokenizer, DataConfig(crisis_numbers="flag")).prepare(str(path))
    assert flagged.report.flagged["foreign_crisis_number"] == 1
    assert "8255" in flagged.conversations[0].messages[1]["content"]


KEPT_NUMBERS = [
    "আমার জন্ম ১৯৮৮ সালের ১লা জানুয়ারি।",  # a birth year: once read as "+1 988"
    "সে 1988 সালে ঢাকায় এসেছিল।",
    "ওষুধের দাম ৯৮৮ টাকা পড়েছে।",
    "বাজারে ৳৯১১ খরচ হলো।",
    "১৩-১১-১৪ তারিখে চিঠিটা এসেছিল।",
    "৯/১১ নিয়ে একটা বই পড়ছি।",
    "অর্ডার নম্বর ৪৫৯৮৮১২, কাল আসবে।",
    "৯.১১ কেজি চাল কিনেছি।",
]


@pytest.mark.parametrize("sentence", KEPT_NUMBERS)
def test_years_dates_amounts_and_longer_numbers_are_not_crisis_lines(tokenizer, tmp_path, sentence):
    rec = conv(0)
    rec["messages"][0]["content"] = f"{sentence} আজ মনটা ভালো নেই।"
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [rec])))
    assert out.conversations[0].messages[0]["content"] == rec["messages"][0]["content"]
    assert "foreign_crisis_number_removed" not in out.report.changed


@pytest.mark.parametrize(
    "number", ["988", "+1 988", "৯১১", "1-800-273-8255", "(800) 273-TALK", "741741", "116 123", "13 11 14", "৯৮৮-তে"]
)
def test_foreign_crisis_lines_in_any_form_are_removed(tokenizer, tmp_path, number):
    rec = conv(0)
    rec["messages"][1]["content"] = f"আমি তোমার পাশে আছি। দয়া করে {number} নম্বরে ফোন করো। কী হয়েছে বলবে?"
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [rec])))
    assert out.conversations[0].messages[1]["content"] == "আমি তোমার পাশে আছি। কী হয়েছে বলবে?"


def test_non_bengali_flagged_or_dropped(tokenizer, tmp_path):
    english = {
        "messages": [
            {"role": "user", "content": "I feel sad today"},
            {"role": "assistant", "content": "I am sorry to hear that. What happened?"},
        ]
    }
    path = write_jsonl(tmp_path / "d.jsonl", [english, conv(1)])
    flagged = DatasetProcessor(tokenizer).prepare(str(path))
    assert len(flagged.rows) == 2 and flagged.report.flagged["not_bengali"] == 1
    dropped = DatasetProcessor(tokenizer, DataConfig(non_bengali="drop")).prepare(str(path))
    assert len(dropped.rows) == 1 and dropped.report.skipped["not_bengali"] == 1


def test_mojibake_records_are_repaired(tokenizer, tmp_path):
    broken = conv(0)
    text = broken["messages"][0]["content"]
    broken["messages"][0]["content"] = mojibake(text)
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [broken])))
    assert out.report.changed["mojibake_repaired"] == 1
    assert out.conversations[0].messages[0]["content"] == text


def test_a_stray_no_break_space_lead_byte_is_repaired(tokenizer, tmp_path):
    # Latin-1 round trips leave "Â" where a no-break space was (as in the Kaggle corpus's answers).
    rec = conv(0)
    rec["messages"][1]["content"] = "রাগ নিয়ন্ত্রণÂ করতে একটু থামো।Â কী হয়েছিল?"
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [rec])))
    assert out.conversations[0].messages[1]["content"] == "রাগ নিয়ন্ত্রণ করতে একটু থামো। কী হয়েছিল?"
    assert out.report.changed["mojibake_repaired"] == 1


def test_mojibake_that_cannot_be_undone_is_flagged_not_passed(tokenizer, tmp_path):
    rec = conv(0)
    rec["messages"][1]["content"] = A1 + " ÂÂrandom"
    out = DatasetProcessor(tokenizer).prepare(str(write_jsonl(tmp_path / "d.jsonl", [rec])))
    assert out.report.flagged["mojibake_left"] == 1 and "mojibake_left" in out.conversations[0].flags


# ------------------------------------------------------------------ presets


def test_preset_native_and_messages(tokenizer, tmp_path):
    native = DatasetProcessor(tokenizer).load(str(MINI))[0]
    assert native[0].emotion == "sad" and native[0].situation
    plain = write_jsonl(tmp_path / "m.jsonl", [{"messages": conv(0)["messages"]}])
    convs, _ = DatasetProcessor(tokenizer).load(str(plain))
    assert convs[0].messages[1]["content"] == A1 and convs[0].emotion is None


def test_preset_sharegpt(tokenizer, tmp_path):
    rec = {"conversations": [{"from": "human", "value": U1}, {"from": "gpt", "value": A1}]}
    convs, _ = DatasetProcessor(tokenizer).load(str(write_jsonl(tmp_path / "s.jsonl", [rec])))
    assert [m["role"] for m in convs[0].messages] == ["user", "assistant"]


def test_preset_becc_csv(tokenizer, tmp_path):
    path = tmp_path / "becc.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Topics", "Question-Title", "Questions", "Answers"])
        w.writerow(["sad", "পরীক্ষার ফল", "আমার খুব মন খারাপ, কী করব?", "তোমার মন খারাপের কথা শুনে কষ্ট পেলাম। কী হয়েছে?"])
        w.writerow(["lonely", "একাকীত্ব", "নতুন শহরে একা লাগে।\nকেউ নেই।", "একা লাগাটা ভারী। কার কথা বেশি মনে পড়ে?"])
    convs, report = DatasetProcessor(tokenizer).load(str(path))
    assert report.read == 2 and len(convs) == 2
    assert convs[0].emotion == "sad"
    # The title is the situation, not words the user wrote, unless data.becc_title asks for it.
    assert convs[0].messages[0] == {"role": "user", "content": "আমার খুব মন খারাপ, কী করব?"}
    assert convs[0].situation == "পরীক্ষার ফল"
    assert convs[1].line == 3  # the CSV line where the record starts
    titled, _ = DatasetProcessor(tokenizer, DataConfig(becc_title=True)).load(str(path))
    assert titled[0].messages[0] == {"role": "user", "content": "পরীক্ষার ফল\nআমার খুব মন খারাপ, কী করব?"}


def test_json_parquet_and_saved_dataset_sources(tokenizer, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [conv(i) for i in range(3)]
    (tmp_path / "a.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), "utf-8")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "a.parquet")
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "saved"))
    for source in ("a.json", "a.parquet", "saved"):
        convs, _ = DatasetProcessor(tokenizer).load(str(tmp_path / source))
        assert len(convs) == 3, source
        assert convs[2].messages[3]["content"] == A2


def test_json_array_reports_element_lines(tokenizer, tmp_path):
    records = [conv(0), {"messages": [{"role": "user", "content": ""}]}]
    (tmp_path / "a.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), "utf-8")
    with pytest.raises(DataError) as info:
        DatasetProcessor(tokenizer).load(str(tmp_path / "a.json"), strict=True)
    text = (tmp_path / "a.json").read_text("utf-8")
    assert info.value.line == text[: text.index('{\n  "messages"')].count("\n") + 1


def test_hub_id_offline_gives_clear_error(tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="Hugging Face Hub"):
        DatasetProcessor(tokenizer).load("someone/not-a-local-dataset")
