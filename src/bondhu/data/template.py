"""The Llama 3.1 chat format, for tokenizers that ship without a chat template.

The official template (meta-llama/Llama-3.1-8B-Instruct, tokenizer_config.json) always
opens with a system header that carries a knowledge-cutoff line and a date, trims every
message, and closes each turn with ``<|eot_id|>``. ``render_llama31`` reproduces its
tool-free path exactly; tests compare both on a tokenizer with the Llama 3.1 specials.
"""

from __future__ import annotations

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
HEADER = "<|start_header_id|>{role}<|end_header_id|>\n\n"
DEFAULT_DATE = "26 Jul 2024"
# Llama 3.1 Instruct ends a reply with any of these (its generation_config lists all three).
STOP_TOKENS = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")


def with_system(messages: list[dict], system_prompt: str) -> list[dict]:
    """``messages`` opened by ``system_prompt``, unless they bring their own system message or the
    prompt is empty. Training, evaluation and chat all go through here, so the model is asked the
    way it was taught."""
    if messages and messages[0]["role"] == "system" or not system_prompt:
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


# A Jinja version of the same format, installed on tokenizers that Bondhu builds itself
# (the tiny CPU model), so that every tokenizer the pipeline touches has a template.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    '{%- if not date_string is defined %}{%- set date_string = "' + DEFAULT_DATE + '" %}{%- endif %}'
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}"
    '{%- else %}{%- set system_message = "" %}{%- endif %}'
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}'
    '{{- "Cutting Knowledge Date: December 2023\\n" }}'
    '{{- "Today Date: " + date_string + "\\n\\n" }}'
    '{{- system_message }}{{- "<|eot_id|>" }}'
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"  # noqa: E501
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def render_llama31(messages: list[dict], add_generation_prompt: bool = False, date_string: str = DEFAULT_DATE) -> str:
    """Render ``messages`` exactly as the official Llama 3.1 template does (no tools)."""
    system = ""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"].strip(), messages[1:]
    parts = [BOS, HEADER.format(role="system"), "Cutting Knowledge Date: December 2023\n"]
    parts += [f"Today Date: {date_string}\n\n", system, EOT]
    for m in messages:
        parts += [HEADER.format(role=m["role"]), m["content"].strip(), EOT]
    if add_generation_prompt:
        parts.append(HEADER.format(role="assistant"))
    return "".join(parts)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """Render with the tokenizer's own chat template when it has one, else the built-in format."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return render_llama31(messages, add_generation_prompt=add_generation_prompt)
