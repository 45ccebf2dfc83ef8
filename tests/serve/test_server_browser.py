"""The web chat page end to end in headless Chromium (Debian's `chromium` package, driven by playwright)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bondhu.safety import load_helplines
from bondhu.serve.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STORE = "bondhu.conversation.v1"


@pytest.fixture(scope="module")
def page(loaded, serving):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: apt-get install -y chromium (the browser test needs it)")
    from playwright.sync_api import sync_playwright

    app = create_app(loaded)
    with serving(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15000)
            page.problems, page.foreign = [], []
            page.on("pageerror", lambda err: page.problems.append(str(err)))
            page.on("console", lambda msg: msg.type == "error" and page.problems.append(msg.text))
            page.on(
                "request",
                lambda req: req.url.startswith(base) or req.url.startswith("data:") or page.foreign.append(req.url),
            )
            page.goto(base + "/")
            yield page
        finally:
            browser.close()


def _send(page, text: str, with_enter: bool = False):
    from playwright.sync_api import expect

    page.fill("#message", text)
    with page.expect_response("**/v1/chat/completions") as answer:
        page.press("#message", "Enter") if with_enter else page.click("#send")
    response = answer.value
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert json.loads(response.request.post_data)["stream"] is True
    expect(page.locator("body")).to_have_attribute("data-busy", "false")
    expect(page.locator("#send")).to_be_enabled()


def test_chat_streams_keeps_the_conversation_shows_crisis_help_and_resets(page):
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_have_text("বন্ধু")
    expect(page.locator("#notice")).to_contain_text("এআই")
    expect(page.locator("#notice")).to_contain_text("কাউন্সেলর")
    expect(page.get_by_label("তোমার কথা লেখো")).to_be_visible()
    expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")

    # A reply streams into an assistant bubble.
    _send(page, "আজ মনটা খুব খারাপ।")
    expect(page.locator(".bubble.user")).to_have_text("তুমি: আজ মনটা খুব খারাপ।")
    reply = page.locator(".bubble.assistant .text")
    expect(reply).to_have_count(1)
    first_reply = reply.inner_text()
    assert first_reply.strip() and first_reply != "…"
    assert page.locator(".bubble.error").count() == 0

    # The conversation survives a reload (localStorage), and only there.
    page.reload()
    expect(page.locator(".bubble")).to_have_count(2)
    expect(page.locator(".bubble.assistant .text")).to_have_text(first_reply)
    saved = json.loads(page.evaluate(f"localStorage.getItem('{STORE}')"))
    assert [m["role"] for m in saved] == ["user", "assistant"]

    # A crisis message gets the fixed message in a distinct box with tap-to-call helplines.
    _send(page, "ajke rate ghumer oshudh gula sob kheye felbo", with_enter=True)
    crisis = page.locator(".bubble.assistant .crisis")
    expect(crisis).to_have_count(1)
    expect(crisis).to_be_visible()
    expect(crisis).to_contain_text("আমি এখানে আছি")
    calls = crisis.locator('a[href^="tel:"]')
    regions = load_helplines()["regions"]
    tels = [ln["tel"] for code in ("BD", "IN") for ln in regions[code]["lines"]]
    expect(calls).to_have_count(len(tels))
    assert [calls.nth(i).get_attribute("href") for i in range(len(tels))] == [f"tel:{t}" for t in tels]
    assert page.locator(".crisis").evaluate("el => getComputedStyle(el).borderTopWidth") != "0px"
    page.reload()
    expect(page.locator(".crisis a[href^='tel:']")).to_have_count(len(tels))  # still there after a reload

    # A new conversation clears the page and the browser's copy.
    page.click("#reset")
    expect(page.locator(".bubble")).to_have_count(0)
    assert page.evaluate(f"localStorage.getItem('{STORE}')") is None
    page.reload()
    expect(page.locator(".bubble")).to_have_count(0)
    assert not page.problems and not page.foreign


def test_a_concern_shows_the_reply_with_helplines_below_it(page):
    from playwright.sync_api import expect

    page.click("#reset")
    _send(page, "ami sobar jonno ekta bojha")
    reply = page.locator(".bubble.assistant").last
    expect(reply.locator(".crisis")).to_have_count(0)  # not the crisis box: the model answered
    expect(reply.locator(".support a[href^='tel:']")).to_have_count(len(_tels()))
    expect(reply.locator(".text")).to_contain_text("নিজেকে আঘাত")
    page.reload()
    expect(page.locator(".bubble.assistant .support a[href^='tel:']")).to_have_count(len(_tels()))
    page.click("#reset")
    assert not page.problems and not page.foreign


def _tels() -> list[str]:
    helplines = load_helplines()
    return [ln["tel"] for r in helplines["regions"].values() for ln in r["lines"]]
