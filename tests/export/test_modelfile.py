"""The Ollama Modelfile: its Go template renders what Bondhu's chat template renders."""

from __future__ import annotations

import re

import pytest

from bondhu.config import BondhuConfig
from bondhu.data.template import render, with_system
from bondhu.errors import BondhuError
from bondhu.export.modelfile import TEMPLATE, modelfile

TWO_TURNS = [
    {"role": "user", "content": "আজ মনটা খুব খারাপ।"},
    {"role": "assistant", "content": "শুনে খারাপ লাগছে। কী হয়েছে?"},
    {"role": "user", "content": "অফিসে সারাদিন বকা খেয়েছি।"},
]

# ---------------------------------------------------------------- a small Go text/template
# Enough of Go's text/template for Ollama's chat templates: text with {{- -}} trimming, fields
# (.Role, $.Messages), variables, range with an index, if / else if / else, and the eq, not, len
# and slice functions, evaluated the way Go evaluates them.
ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def parse(template: str) -> list:
    pieces, pos, trim_next = [], 0, False
    for m in ACTION.finditer(template):
        text = template[pos : m.start()]
        text = text.lstrip() if trim_next else text
        pieces.append(("text", text.rstrip() if m[1] else text))
        pieces.append(("action", m[2].strip()))
        pos, trim_next = m.end(), bool(m[3])
    tail = template[pos:]
    pieces.append(("text", tail.lstrip() if trim_next else tail))
    tree, rest = block(pieces)
    assert not rest, f"unexpected {rest[0]}"
    return tree


def block(pieces: list) -> tuple[list, list]:
    """Nodes up to an unmatched end/else; returns them and what follows."""
    nodes = []
    while pieces:
        kind, body = pieces[0]
        if kind == "text":
            nodes.append(("text", body))
            pieces = pieces[1:]
        elif body == "end" or body.startswith("else"):
            return nodes, pieces
        elif body.startswith(("if ", "range ")):
            node, pieces = control(body, pieces[1:])
            nodes.append(node)
        else:
            nodes.append(("expr", body))
            pieces = pieces[1:]
    return nodes, pieces


def control(head: str, pieces: list) -> tuple[tuple, list]:
    if head.startswith("range "):
        index, elem, source = re.fullmatch(r"range (\$\w+), (\$\w+) := (.+)", head).groups()
        body, pieces = block(pieces)
        assert pieces[0][1] == "end"
        return ("range", index, elem, source, body), pieces[1:]
    branches, otherwise = [], []
    condition = head[3:]
    while True:
        body, pieces = block(pieces)
        branches.append((condition, body))
        action, pieces = pieces[0][1], pieces[1:]
        if action.startswith("else if "):
            condition = action[8:]
        elif action == "else":
            otherwise, pieces = block(pieces)
            assert pieces[0][1] == "end"
            return ("if", branches, otherwise), pieces[1:]
        else:
            return ("if", branches, otherwise), pieces


FUNCS = {
    "eq": lambda a, b: a == b,
    "not": lambda a: not a,
    "len": len,
    "slice": lambda x, i: x[i:],
}


def expression(text: str, dot, scope: dict):
    tokens = re.findall(r'\(|\)|"[^"]*"|[^\s()]+', text)
    value, rest = command(tokens, dot, scope)
    assert not rest, text
    return value


def command(tokens: list, dot, scope: dict):
    values = []
    while tokens and tokens[0] != ")":
        value, tokens = operand(tokens, dot, scope)
        values.append(value)
    if callable(values[0]):
        return values[0](*values[1:]), tokens
    assert len(values) == 1
    return values[0], tokens


def operand(tokens: list, dot, scope: dict):
    head, tokens = tokens[0], tokens[1:]
    if head == "(":
        value, tokens = command(tokens, dot, scope)
        return value, tokens[1:]
    if head.startswith('"'):
        return head[1:-1], tokens
    if head.isdigit():
        return int(head), tokens
    if head in FUNCS:
        return FUNCS[head], tokens
    if head.startswith("$."):
        return scope["$"][head[2:]], tokens
    if head.startswith("$"):
        return scope[head], tokens
    return dot[head[1:]], tokens


def execute(nodes: list, dot, scope: dict) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr" and ":=" in node[1]:
            name, value = node[1].split(":=", 1)
            scope[name.strip()] = expression(value, dot, scope)
        elif node[0] == "expr":
            out.append(str(expression(node[1], dot, scope)))
        elif node[0] == "range":
            _, index, elem, source, body = node
            for i, item in enumerate(expression(source, dot, scope)):
                out.append(execute(body, item, {**scope, index: i, elem: item}))
        else:
            _, branches, otherwise = node
            chosen = next((body for cond, body in branches if expression(cond, dot, scope)), otherwise)
            out.append(execute(chosen, dot, scope))
    return "".join(out)


def render_go(template: str, system: str, messages: list[dict]) -> str:
    """``template`` as Ollama runs it: .System and .Messages (role system messages included)."""
    values = {"System": system, "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    return execute(parse(template), values, {"$": values})


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize("turns", [TWO_TURNS[:1], TWO_TURNS])
def test_modelfile_template_renders_the_chat_template_exactly(tokenizer, turns):
    system = BondhuConfig().data.system_prompt
    expected = render(tokenizer, with_system(turns, system), add_generation_prompt=True)
    # Ollama puts the GGUF's BOS token before the rendered prompt (tokenizer.ggml.add_bos_token).
    assert tokenizer.bos_token + render_go(TEMPLATE, system, turns) == expected


def test_a_client_system_message_replaces_the_modelfile_one(tokenizer):
    own = [{"role": "system", "content": "তুমি একজন সাহায্যকারী।"}, *TWO_TURNS]
    # Ollama sets .System from the request's system message and keeps that message in .Messages.
    got = tokenizer.bos_token + render_go(TEMPLATE, own[0]["content"], own)
    assert got == render(tokenizer, own, add_generation_prompt=True)


def test_a_trailing_assistant_message_is_continued_not_closed(tokenizer):
    # Ollama's own Llama 3 templates leave a final assistant message open, so the model goes on
    # from it; the chat template closes every message with <|eot_id|>.
    closed = render(tokenizer, with_system(TWO_TURNS[:2], "x"))
    assert tokenizer.bos_token + render_go(TEMPLATE, "x", TWO_TURNS[:2]) + "<|eot_id|>" == closed


def test_modelfile_has_the_stops_system_prompt_and_the_runs_settings():
    cfg = BondhuConfig()
    text = modelfile("bondhu-q4_k_m.gguf", cfg.data.system_prompt, cfg.generation, cfg.chat.context_tokens)
    assert text.splitlines()[1] == "FROM ./bondhu-q4_k_m.gguf"
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.S | re.M)[1]
    assert template == TEMPLATE
    assert re.search(r'^SYSTEM """(.*?)"""$', text, re.S | re.M)[1] == cfg.data.system_prompt
    params = re.findall(r"^PARAMETER (\S+) (.+)$", text, re.M)
    stops = [v for k, v in params if k == "stop"]
    assert stops[:3] == ['"<|eot_id|>"', '"<|eom_id|>"', '"<|end_of_text|>"']
    settings = dict(p for p in params if p[0] != "stop")
    assert settings == {
        "temperature": "0.7",
        "top_p": "0.9",
        "top_k": "50",
        "repeat_penalty": "1.1",
        "num_ctx": "4096",
        "num_predict": "256",
    }
    greedy = cfg.generation.model_copy(update={"do_sample": False})
    assert "PARAMETER temperature 0\n" in modelfile("x.gguf", "s", greedy, 4096)


def test_a_system_prompt_a_modelfile_cannot_quote_is_refused():
    cfg = BondhuConfig()
    with pytest.raises(BondhuError, match='contains """'):
        modelfile("x.gguf", 'say """hi"""', cfg.generation, 4096)
