"""`bondhu data prepare/inspect` as a user runs them, on good and bad files."""

import json

import pytest

from helpers import MINI

GOOD = '{"messages": [{"role": "user", "content": "আমার মন খারাপ।"}, {"role": "assistant", "content": "কী হয়েছে, বলবে?"}]}'
GOOD2 = GOOD.replace("মন খারাপ", "ভয় লাগছে")

BAD_CASES = {
    # name: (file content as bytes, expected line, field, reason fragment, skip reason)
    "invalid_json": (f'{GOOD}\n{{"messages": [\n'.encode(), 2, "json", "invalid JSON", "json: invalid JSON"),
    "invalid_utf8": (
        GOOD.encode() + b"\n" + GOOD2.encode()[:40] + b"\xff\xfe" + GOOD2.encode()[40:] + b"\n",
        2,
        "encoding",
        "invalid UTF-8",
        "encoding: invalid UTF-8",
    ),
    "missing_content": (
        f'{GOOD}\n{{"messages": [{{"role": "user"}}, {{"role": "assistant", "content": "হ্যাঁ"}}]}}\n'.encode(),
        2,
        "messages[0].content",
        "missing",
        "messages.content: missing",
    ),
    "empty_content": (
        f'{GOOD}\n{{"messages": [{{"role": "user", "content": "  "}}, {{"role": "assistant", "content": "হ্যাঁ"}}]}}\n'.encode(),  # noqa: E501
        2,
        "messages[0].content",
        "empty",
        "messages.content: empty",
    ),
    "wrong_role_order": (
        f'{GOOD}\n{{"messages": [{{"role": "assistant", "content": "হ্যালো"}}, {{"role": "user", "content": "হ্যাঁ"}}]}}\n'.encode(),  # noqa: E501
        2,
        "messages[0].role",
        "expected 'user'",
        "messages.role: expected 'user'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_record_is_skipped_and_counted(case, tmp_path, run_cli, tiny_overrides):
    content, _, _, _, reason = BAD_CASES[case]
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    result = run_cli("data", "prepare", src, "-o", tmp_path / "out", *tiny_overrides)
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "out" / "report.json").read_text("utf-8"))
    assert report["kept"] == 1 and report["skipped_total"] == 1
    assert list(report["skipped"]) == [reason]
    assert reason in result.out and "Traceback" not in result.out + result.err


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_strict_stops_with_one_located_line(case, tmp_path, run_cli, tiny_overrides):
    content, line, field, fragment, _ = BAD_CASES[case]
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    result = run_cli("data", "prepare", src, "--strict", "-o", tmp_path / "out", *tiny_overrides)
    assert result.code == 2
    lines = [ln for ln in result.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert f"{src}:{line}: {field}: " in lines[0] and fragment in lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "name,content,fragment",
    [
        ("empty.jsonl", b"", "the file is empty"),
        ("blank.jsonl", b"\n\n  \n", "the file is empty"),
        ("array.jsonl", f"[{GOOD}, {GOOD2}]".encode(), "one JSON array"),
    ],
)
def test_unusable_file_gets_one_line_error(name, content, fragment, tmp_path, run_cli, tiny_overrides):
    src = tmp_path / name
    src.write_bytes(content)
    result = run_cli("data", "prepare", src, "-o", tmp_path / "out", *tiny_overrides)
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and str(src) in result.err and fragment in result.err


def test_missing_file(tmp_path, run_cli, tiny_overrides):
    result = run_cli("data", "prepare", tmp_path / "nope.jsonl", *tiny_overrides)
    assert result.code == 2 and "file not found" in result.err and "Traceback" not in result.err


def test_bom_and_crlf_load_fine(tmp_path, run_cli, tiny_overrides):
    src = tmp_path / "win.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\r\n" + GOOD2.encode() + b"\r\n")
    result = run_cli("data", "prepare", src, "--strict", "-o", tmp_path / "out", *tiny_overrides)
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "out" / "report.json").read_text("utf-8"))
    assert report["kept"] == 2 and report["skipped_total"] == 0
    first = json.loads((tmp_path / "out" / "conversations.jsonl").read_text("utf-8").splitlines()[0])
    assert first["messages"][0]["content"] == "আমার মন খারাপ।"


def test_prepare_writes_a_loadable_dataset(tmp_path, run_cli, tiny_overrides):
    import datasets

    result = run_cli("data", "prepare", MINI, "-o", tmp_path / "out", *tiny_overrides)
    assert result.code == 0, result.err
    ds = datasets.load_from_disk(str(tmp_path / "out" / "dataset"))
    assert len(ds) == 6 and set(ds.column_names) >= {"input_ids", "labels"}
    assert all(len(r["input_ids"]) == len(r["labels"]) == r["length"] for r in ds)


def test_inspect_prints_stats_and_writes_histogram(tmp_path, run_cli, tiny_overrides):
    result = run_cli("data", "inspect", MINI, "-o", tmp_path / "insp", *tiny_overrides)
    assert result.code == 0, result.err
    stats = json.loads((tmp_path / "insp" / "stats.json").read_text("utf-8"))
    assert stats["conversations"] == 6 and stats["user_turns"] == 10
    assert set(stats["token_length"]) == {"p50", "p90", "p99", "max"}
    assert stats["tokens_per_word"] > 0 and stats["emotions"]["sad"] == 1
    assert (tmp_path / "insp" / "lengths.png").stat().st_size > 1000
    assert "tokens per word" in result.out and "p90" in result.out
    emotions = result.out[result.out.index("emotions") :]
    assert "emotion" in emotions.splitlines()[2] and "reason" not in emotions  # the table's header


def test_bad_override_is_one_line(tmp_path, run_cli, tiny_overrides):
    result = run_cli("data", "prepare", MINI, *tiny_overrides, "data.overflow=sometimes")
    assert result.code == 2 and "data.overflow" in result.err and result.err.strip().count("\n") == 0
