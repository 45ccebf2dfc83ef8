"""The Ollama Modelfile and the README that sit beside the GGUF files.

Ollama does not read the GGUF's Jinja template; it renders its own Go template, so TEMPLATE
below spells out the Llama 3.1 format that Bondhu trains with (bondhu.data.template): the system
header with the knowledge-cutoff and date lines, then one header and ``<|eot_id|>`` per turn.
Ollama adds ``<|begin_of_text|>`` itself (the GGUF asks for a BOS token).
"""

from __future__ import annotations

from bondhu.config import GenerationSettings
from bondhu.data.template import DEFAULT_DATE, STOP_TOKENS
from bondhu.errors import BondhuError

# Ollama passes the Modelfile's SYSTEM as .System when a request brings no system message, and a
# request's own system message otherwise. Messages of role system are in .Messages too; the range
# skips them, as the Jinja template takes only the first message as the system prompt.
TEMPLATE = (
    "<|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\n"
    f"Today Date: {DEFAULT_DATE}\n\n"
    "{{ .System }}<|eot_id|>\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    '{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>\n\n'
    "{{ .Content }}<|eot_id|>\n"
    "{{- if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{{ end }}\n"
    '{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>\n\n'
    "{{ .Content }}\n"
    "{{- if not $last }}<|eot_id|>{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}"
)
# Bondhu's stop tokens, and the two header tokens Ollama's own Llama 3 Modelfiles stop at, so a
# reply that skipped <|eot_id|> still ends before it writes the next turn's header.
STOPS = (*STOP_TOKENS, "<|start_header_id|>", "<|end_header_id|>")


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise BondhuError(f'Modelfile: the {what} contains """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def modelfile(gguf_name: str, system_prompt: str, generation: GenerationSettings, context_tokens: int) -> str:
    """The Modelfile text: FROM the GGUF next to it, the template, the stops, Bondhu's system
    prompt, and the run's generation settings as Ollama parameters."""
    temperature = generation.temperature if generation.samples else 0.0
    lines = [
        "# Bondhu for Ollama: ollama create bondhu -f Modelfile && ollama run bondhu",
        f"FROM ./{gguf_name}",
        "",
        f"TEMPLATE {_quoted(TEMPLATE, 'template')}",
        "",
        f"SYSTEM {_quoted(system_prompt, 'system prompt')}",
        "",
        *(f'PARAMETER stop "{stop}"' for stop in STOPS),
        f"PARAMETER temperature {temperature:g}",
        f"PARAMETER top_p {generation.top_p:g}",
        f"PARAMETER top_k {generation.top_k}",
        f"PARAMETER repeat_penalty {generation.repetition_penalty:g}",
        f"PARAMETER num_ctx {context_tokens}",
        f"PARAMETER num_predict {generation.max_new_tokens}",
    ]
    return "\n".join(lines) + "\n"


def readme(run_name: str, files: list[str], ollama_file: str, report: dict | None) -> str:
    """The output folder's README.md: the files, how to run them with Ollama and llama-server, and
    the perplexity report when one was made."""
    listed = "\n".join(f"- `{name}`" for name in files)
    text = f"""# {run_name}: GGUF export

Written by `bondhu export --gguf`: the run's LoRA adapter merged into its base model, as GGUF
files for llama.cpp and Ollama.

{listed}
- `Modelfile`: Ollama's recipe, using `{ollama_file}`

## Ollama

```bash
ollama create bondhu -f Modelfile
ollama run bondhu
```

## llama.cpp

```bash
llama-server -m {ollama_file} --jinja
```

`--jinja` makes llama-server render the chat template stored in the file, which is the one
Bondhu trains with and opens a conversation with Bondhu's system prompt when a client sends
none. Without it, llama-server uses a built-in Llama 3 format that leaves out the template's
date lines, so prompts would differ from training.

## No Bondhu safety layer

Ollama and llama-server answer whatever they are sent: they do not run Bondhu's crisis check,
do not show helplines, and do not filter phone numbers from replies. Do not put them in front of
people who may be in distress without Bondhu's safety module around them (docs/serving.md).
"""
    if report:
        text += "\n## Perplexity\n\n" + report_table(report)
    return text


def report_table(report: dict) -> str:
    """The report's figures as a Markdown table."""
    rows = [
        "| file | perplexity | scored tokens |",
        "|---|---|---|",
    ]
    for kind, r in report["files"].items():
        rows.append(f"| {kind} | {r['perplexity']:.3f} | {r['tokens']} |")
    note = (
        f"\nOn {report['samples']} conversations of the `{report['split']}` split, over the assistant's "
        "tokens, as `bondhu evaluate` scores them.\n"
    )
    return "\n".join(rows) + "\n" + note
