"""The GPU benchmark's report: the markdown tables of docs/benchmarks.md from a run's results,
with each target marked met or not. Used by benchmarks/gpu.py (also for ``--render``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = 8.03e9
# LoRA's frozen base needs no weight gradients: forward 2N + backward 2N per token, and 2N more
# when the forward pass is recomputed (checkpointing, plain or offloaded).
FLOPS_PER_TOKEN = {False: 4 * PARAMS, True: 6 * PARAMS}
TRAINING_ROWS = [
    (
        "a",
        "seed recipe: Unsloth + SFTTrainer + DataCollatorForSeq2Seq + train_on_responses_only, batch 2 × accum 4, "
        "max 2048, offloaded checkpointing",
        "seed_recipe",
        True,
    ),
    # Batching is the preset's: padded (length-grouped, no mask) since gpu-20261202-0404, padding-free
    # before; the padding-free column says which a row ran.
    ("b", "`bondhu train`, strategy `qlora` (the preset's batching, batch 8, `auto` plan)", "train_qlora", None),
    ("c", "`bondhu train`, strategy `unsloth` (the preset's batching, batch 8, `auto` plan)", "train_unsloth", None),
    ("c0", "c with `training.gradient_checkpointing=true` (the presets before the plan)", "train_unsloth_ckpt", True),
    ("d", "bare Unsloth loop, fixed 2048-token rows, batch 2, Unsloth's offloaded checkpointing", "bare_unsloth", True),
    ("e", "bare Unsloth loop, fixed 2048-token rows, batch 2, no recompute (the ceiling)", "bare_unsloth_none", False),
]
FAST_WEIGHTS = {"bf16": "bf16 weights", "int8": "int8 weights (torchao weight-only, one scale per channel)"}
BEGIN, END = "<!-- gpu:begin -->", "<!-- gpu:end -->"


def _fmt(value, spec="{:,.0f}") -> str:
    return "–" if value is None else spec.format(value)


def render(
    results: dict[str, dict],
    env: dict,
    command: str,
    wall: float | None = None,
    lanes: int = 1,
    main: str | None = None,
) -> str:
    """The markdown tables, with each target marked met or not. ``main``: the stem of the run that
    ``wall`` is about (when ``results`` merge several), the others are named where they are used."""
    r = results.get

    def elsewhere(res: dict) -> str:
        where = res.get("measured_in")
        return f" (in {where})" if where and where != main else ""

    lines = [
        BEGIN,
        f"### GPU run of {env.get('date')}",
        "",
        f"Machine: {env.get('gpu')} (lent), Python {env.get('python')}, torch {env.get('torch')}, "
        f"transformers {env.get('transformers')}, peft {env.get('peft')}, trl {env.get('trl')}, "
        f"bitsandbytes {env.get('bitsandbytes')}, unsloth {env.get('unsloth')}. Model: random weights with "
        "Llama-3.1-8B's shape; data: the bundled training split under the real Llama 3.1 tokenizer.",
        "",
        f"Command: `{command}`",
        "",
        *(
            [
                f"The run of the first command took {wall / 60:.1f} minutes "
                + (
                    f"in {lanes} parallel lanes (one GPU each)"
                    if lanes > 1
                    else "on one GPU, one section after another"
                )
                + "; each section's wall seconds: "
                + ", ".join(
                    f"{k} {v['wall_seconds']:.0f}"
                    for k, v in results.items()
                    if "wall_seconds" in v and not elsewhere(v)
                )
                + ".",
                "",
            ]
            if wall
            else []
        ),
    ]
    lines += training_rows(results, elsewhere)

    def target(name, ok, detail):
        return f"| {name} | {detail} | {'met' if ok else 'not met' if ok is False else 'not measured'} |"

    def ratio(x, y):
        return x / y if x and y else None

    hf, us, t4 = r("infer_hf") or {}, r("infer_unsloth") or {}, r("t4_longest") or {}
    fast = r("infer_fast") or {}
    int8 = r("infer_fast_int8") or fast.get("int8")  # its own section in runs before 2026-11-26
    if int8 and "measured_in" in fast:
        int8 = {"measured_in": fast["measured_in"], **int8}
    fast_paths = [("bf16", fast)] + ([("int8", int8)] if int8 else [])
    rate = lambda res: (res.get("batch1") or {}).get("tokens_per_second")  # noqa: E731
    lines += [
        "#### Inference, batch-1 decode (128-token prompt)",
        "",
        "| path | tokens/s | new tokens | time to first token, 1,024-token prompt (ms) | peak GPU memory (GiB) "
        "| measured in |",
        "|---|---|---|---|---|---|",
    ]
    paths = [
        ("HF generate, bitsandbytes 4-bit + unmerged LoRA (`--backend hf`)", hf),
        ("Unsloth `for_inference` (`--backend unsloth`)", us),
    ]
    paths += [
        (
            f"Bondhu fast path, {FAST_WEIGHTS[kind]}: merged, static cache, CUDA-graph step, own decode loop "
            f"(`--backend fast`, `chat.fast_quantization={'none' if kind == 'bf16' else kind}`)",
            res,
        )
        for kind, res in fast_paths
    ]
    for name, res in paths:
        err = f" (failed: {res['error'][:160]})" if "error" in res else ""
        lines.append(
            f"| {name}{err} | {_fmt(rate(res), '{:.1f}')} | {(res.get('batch1') or {}).get('new_tokens', '–')} | "
            f"{_fmt(res.get('ttft_1024_ms'), '{:.0f}')} | {_fmt(res.get('peak_gpu_gib'), '{:.1f}')} | "
            f"{res.get('measured_in', 'this run')} |"
        )
    lines += ["", "| target | measured | status |", "|---|---|---|"]
    for kind, fast in fast_paths:
        f_u = ratio(rate(fast), rate(us))
        lines += [
            target(
                f"fast path ({kind}) ≥ 100 tokens/s",
                None if rate(fast) is None else rate(fast) >= 100,
                _fmt(rate(fast), "{:.1f}"),
            ),
            target(
                f"fast path ({kind}) ≥ 6 × Unsloth for_inference",
                None if f_u is None else f_u >= 6,
                _fmt(f_u, "{:.1f}×"),
            ),
            target(
                f"fast-path ({kind}) logits vs reference: relative L2 < 2e-2",
                None if "logits_rel_l2" not in fast else fast["logits_rel_l2"] < 2e-2,
                _fmt(fast.get("logits_rel_l2"), "{:.2e}")
                + (
                    f" (against an fp32 reference: bf16 reference {fast['reference_bf16_vs_fp32']:.2e}, "
                    f"fast path {fast['fast_vs_fp32']:.2e})"
                    if "fast_vs_fp32" in fast
                    else ""
                )
                + (
                    f"; merging{' and rounding to int8' if kind == 'int8' else ''} alone (eager merged vs reference) "
                    f"{fast['merged_eager_vs_reference']:.2e}, "
                    f"the compiled static-cache step alone (fast vs eager merged) {fast['fast_vs_merged_eager']:.2e}"
                    if "fast_vs_merged_eager" in fast
                    else ""
                ),
            ),
        ]
    lines += [
        target(
            "evaluation: batch 16 ≥ 8 × batch 1 generated tokens/s (`--backend hf`)",
            None if "speedup_16_vs_1" not in hf else hf["speedup_16_vs_1"] >= 8,
            _fmt(hf.get("speedup_16_vs_1"), "{:.1f}×") + elsewhere(hf),
        ),
        "",
    ]
    if hf.get("batch16"):
        lines.append(
            f"Generation throughput (evaluation path, `--backend hf`): batch 1 {rate(hf)} tokens/s, "
            f"batch 16 {hf['batch16']['tokens_per_second']} tokens/s."
        )
    if t4.get("tried"):
        lines.append(
            "T4 emulation steps: "
            + ", ".join(
                f"{x['tokens']:,} {'ok (' + str(x.get('peak_gib')) + ' GiB)' if x['ok'] else 'out of memory'}"
                for x in t4["tried"]
            )
        )
    lines += scaling_rows(results)
    lines += ["", END]
    return "\n".join(lines)


def _recomputes(res: dict, fixed: bool | None) -> bool | None:
    if fixed is not None:
        return fixed
    plan = res.get("plan")
    return None if not plan else plan["recompute"] != "none"


def training_rows(results: dict[str, dict], elsewhere) -> list[str]:
    """The training table and its targets (the memory-aware plan's among them)."""
    r = results.get
    peak = (r("matmul_peak") or {}).get("tflops")
    lines = [
        "#### Training (LoRA r=16 on all linear layers, 8 conversations per optimizer step)",
        "",
        "| run | what | plan | useful tokens/s | peak GPU memory (GiB) | MFU | padding-free | measured in |",
        "|---|---|---|---|---|---|---|---|",
    ]
    tps = {}
    for key, what, section, fixed in TRAINING_ROWS:
        res = r(section) or {}
        tps[key] = res.get("tokens_per_second")
        recompute = _recomputes(res, fixed)
        mfu = (
            f"{100 * tps[key] * FLOPS_PER_TOKEN[recompute] / (peak * 1e12):.1f}%"
            if tps[key] and peak and recompute is not None
            else "–"
        )
        err = f" (failed: {res['error'][:160]})" if "error" in res else ""
        plan = (res.get("plan") or {}).get("description", "").removeprefix("plan: ") or (
            "–" if fixed is None else "checkpointing" if fixed else "no recompute"
        )
        lines.append(
            f"| {key} | {what}{err} | {plan} | {_fmt(tps[key])} | {_fmt(res.get('peak_gpu_gib'), '{:.1f}')} | "
            f"{mfu} | {res.get('padding_free_on', 'no' if key in ('a', 'd', 'e') else '–')} | "
            f"{res.get('measured_in', 'this run')} |"
        )
    where = (r("matmul_peak") or {}).get("measured_in", "the same run")
    lines += [
        "",
        f"bf16 matmul peak: {_fmt(peak, '{:.0f}')} TFLOP/s, measured in {where}; "
        "MFU = tokens/s × F / peak, with F = 4 × 8.03e9 FLOPs per token without recompute and 6 × 8.03e9 with it.",
        "",
    ]
    return lines + training_targets(results, tps, elsewhere)


def _within(estimate, measured, bound=0.15):
    if not estimate or not measured:
        return None, "–"
    err = estimate / measured - 1
    return abs(err) <= bound, f"est. {estimate:.1f} GiB vs {measured:.1f} GiB measured ({err:+.0%})"


def training_targets(results: dict[str, dict], tps: dict, elsewhere) -> list[str]:
    r = results.get

    def target(name, ok, detail):
        return f"| {name} | {detail} | {'met' if ok else 'not met' if ok is False else 'not measured'} |"

    def at_least(x, y, k):
        q = x / y if x and y else None
        return (None if q is None else q >= k), _fmt(q, "{:.2f}×")

    c, c0, t4, fb = (r(k) or {} for k in ("train_unsloth", "train_unsloth_ckpt", "t4_longest", "fallback_unsloth"))
    c_est = _within(c.get("estimate_at_largest_step_gib"), c.get("peak_gpu_gib"))
    c_est = (c_est[0], c_est[1] + elsewhere(c))
    t4_ok = [x for x in t4.get("tried", []) if x.get("ok")]
    t4_est = _within(
        (t4.get("estimates_gib") or {}).get(str(t4_ok[-1]["tokens"])) if t4_ok else None,
        t4_ok[-1]["peak_gib"] if t4_ok else None,
    )
    t4_plan = t4.get("plan") or {}
    longest = t4.get("longest_tokens")
    same = None
    if fb.get("losses") and c0.get("losses"):
        diffs = [abs(x - y) / abs(y) for x, y in zip(fb["losses"], c0["losses"])]
        same = f"; its losses against c0's, step by step: largest relative difference {max(diffs):.1e}"
    fell = [
        f"{f['from'].removeprefix('plan: ')} → {f['to'].removeprefix('plan: ')}" for f in fb.get("plan_fallbacks", [])
    ]
    return [
        "| target | measured | status |",
        "|---|---|---|",
        target("c ≥ 2.2 × a", *at_least(tps["c"], tps["a"], 2.2)),
        target("c ≥ 1.2 × d", *at_least(tps["c"], tps["d"], 1.2)),
        target("c ≥ 0.9 × e (bare loop without recompute)", *at_least(tps["c"], tps["e"], 0.9)),
        target("c ≥ 4 × b", *at_least(tps["c"], tps["b"], 4)),
        target("plan's estimate within 15% of the measured peak (c, at its largest step)", *c_est),
        target("plan's estimate within 15% of the measured peak (T4 emulation, longest that ran)", *t4_est),
        *[
            target(
                f"plan's estimate within 15% of the measured peak ({what})",
                *_within((r(key) or {}).get("estimate_at_largest_step_gib"), (r(key) or {}).get("peak_gpu_gib")),
            )
            for key, what in (
                ("train_unsloth_double", "c at 16 conversations per step"),
                ("train_qlora_half", "b at 4 conversations × 2 accumulation steps"),
                ("train_qlora", "b at its largest step"),
            )
            if key in results
        ],
        target(
            "T4 emulation (15 GiB, fp16): longest conversation ≥ 36,864 tokens, `auto` choosing checkpointing",
            None if longest is None else longest >= 36864 and t4_plan.get("recompute") not in (None, "none"),
            _fmt(longest, "{:,} tokens") + (f"; {t4_plan['description']}" if t4_plan else "") + elsewhere(t4),
        ),
        target(
            "a real out-of-memory on the first step falls back and finishes (card capped at 24 GiB)",
            None if not fb or "error" in fb else bool(fell) and fb.get("steps", 0) > 0,
            ("; ".join(fell) or fb.get("error", "–")[:160])
            + (f"; {fb['steps']} steps" if "steps" in fb else "")
            + (same or ""),
        ),
        "",
    ]


def scaling_rows(results: dict[str, dict]) -> list[str]:
    """Multi-GPU table: `bondhu train --num-processes N` against one process, same per-GPU config."""
    done = [results[k] for k in ("ddp_qlora", "ddp_unsloth") if k in results]
    if not done:
        return []
    lines = [
        "",
        "#### Multi-GPU data parallel (`bondhu train --num-processes N`, 8 conversations per GPU per step)",
        "",
        "| strategy | processes | useful tokens/s (after warm-up) | peak GPU memory, rank 0 (GiB) | scaling efficiency | target ≥ 90% |",  # noqa: E501
        "|---|---|---|---|---|---|",
    ]
    for res in done:
        if "error" in res:
            lines.append(
                f"| {res['section'].removeprefix('ddp_')} | – | failed: {res['error'][:160]} | – | – | not measured |"
            )
            continue
        eff = res.get("efficiency")
        for run in res["runs"]:
            many = run["processes"] > 1
            lines.append(
                f"| {run.get('strategy', res['section'].removeprefix('ddp_'))} | {run['processes']} | "
                f"{_fmt(run.get('tokens_per_second')) if 'error' not in run else 'failed: ' + run['error'][:120]} | "
                f"{_fmt(run.get('peak_gpu_gib_rank0'), '{:.1f}')} | {_fmt(eff, '{:.0%}') if many else '–'} | "
                f"{('met' if eff >= 0.9 else 'not met') if many and eff is not None else '–'} |"
            )
    return lines


def write_docs(block: str) -> Path:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text("utf-8") if doc.exists() else "# Benchmarks\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## GPU: training and inference on the 8B shape\n\n" + block + "\n"
    doc.write_text(text, "utf-8")
    return doc
