"""A light streaming client for the gateway benchmarks: HTTP/1.1 over a plain socket on one
asyncio loop, parsing only what it must. On the 2-core machine the client's CPU time is taken
from the servers it measures, so it is kept small (see ``stream``)."""

from __future__ import annotations

import asyncio
import json
import re
import time

_CONTENT = re.compile(rb'"content": ?"[^"]')  # a delta with text in it

BUSY = {"server_busy", "queue_timeout", "upstream_busy"}  # 503s: refused, not broken


async def pieces(reader: asyncio.StreamReader, chunked: bool):
    """A response body as it arrives, its chunked framing taken off."""
    while True:
        if not chunked:
            piece = await reader.read(65536)
        elif size := int((await reader.readline()).split(b";")[0], 16):
            piece = (await reader.readexactly(size + 2))[:-2]
        else:
            return
        if not piece:
            return
        yield piece


async def stream(url: str, body: dict, count_deltas: bool = False) -> dict:
    """One streamed request: its outcome, seconds to the first content and to the end, and tokens.
    HTTP/1.1 over a plain socket, and only the first content and the usage event are parsed: on two
    cores the client's CPU is taken from the servers it measures (threads with httpx cost 0.8 ms of
    CPU a token here, asyncio with httpx 0.14 ms, this 0.04 ms). ``count_deltas``: for an engine
    that reports no usage, its content events are counted instead (a byte test, no parsing)."""
    address, path = url.removeprefix("http://").split("/", 1)
    host, port = address.rsplit(":", 1)
    data = json.dumps(body).encode()
    head = f"POST /{path}/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
    started, first, usage, events, deltas = time.perf_counter(), None, None, 0, 0
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError as err:
        return {"outcome": "failed", "error": f"{type(err).__name__}: {err}"}
    try:
        writer.write(f"{head}Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        status, headers = int((await reader.readline()).split()[1]), {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if status != 200:
            return {"outcome": "refused" if status == 503 else "failed", "error": status}
        rest = b""
        async for piece in pieces(reader, headers.get("transfer-encoding") == "chunked"):
            *lines, rest = (rest + piece).split(b"\n")
            for line in (x for x in lines if x.startswith(b"data: {")):
                events += 1
                deltas += count_deltas and _CONTENT.search(line) is not None
                if first is None or b'"prompt_tokens"' in line or b'"error"' in line:
                    chunk = json.loads(line[6:])
                    if "error" in chunk:  # after the 200: the error comes as an event
                        code = chunk["error"].get("code")
                        return {"outcome": "refused" if code in BUSY else "failed", "error": code}
                    usage = chunk.get("usage") or usage
                    if first is None and any((c.get("delta") or {}).get("content") for c in chunk["choices"]):
                        first = time.perf_counter()
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as err:
        return {"outcome": "failed", "error": f"{type(err).__name__}: {err}"}
    finally:
        writer.close()
    end = time.perf_counter()
    if usage is None and not count_deltas:  # llama-server and the gateway report usage
        return {"outcome": "failed", "error": f"no usage in {events} events"}
    times = {"seconds": end - started, "first_s": (first or end) - started}
    if usage is None:  # llama-cpp-python's server sends no usage: one content delta is one token
        return {"outcome": "ok", **times, "tokens": deltas, "prompt": None}
    return {"outcome": "ok", **times, "tokens": usage["completion_tokens"], "prompt": usage["prompt_tokens"]}
