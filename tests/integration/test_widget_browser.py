"""The widget in a real browser: headless Chromium (Debian's package, driven by Playwright)
against the real server on 127.0.0.1 over the sample store, with an OpenAI-compatible test
endpoint as the model so replies are deterministic and stream token by token. The shoppers ask
in Spanish and Arabic about the store's English policies, so the model translates the facts
(facts in the shopper's own language are quoted without a model).

`make browser` (part of `make test`) installs chromium when it is missing; the tests skip only
where it cannot be installed. Screenshots go to var/test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from rag.container import Container
from rag.lang.frames import frame
from server.app import create_app
from tests.conftest import ROOT, make_settings
from tests.doubles.openai_server import OpenAICompatibleServer
from tests.doubles.translator import faithful
from tests.doubles.translator import shown as as_shown

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

KEY = "kefu-test-admin-key-4f9c2a7e81d35b60"
AUTH = {"Authorization": f"Bearer {KEY}"}
ARTIFACTS = ROOT / "var" / "test-artifacts"


def chromium_executable() -> str | None:
    for name in (os.environ.get("KEFU_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAICompatibleServer]:
    """The model behind real HTTP: a faithful translator, streaming word by word."""
    with OpenAICompatibleServer(faithful, token_delay_s=0.03) as server:
        yield server


def translation(llm: OpenAICompatibleServer) -> str:
    """What the model wrote for the last request."""
    return faithful(llm.requests[-1]["messages"])


@pytest.fixture(scope="module")
def live_server(sample_container: Container, llm: OpenAICompatibleServer) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, the model behind real HTTP."""
    settings = make_settings(
        sample_container.settings.data_dir,
        llm={"provider": "openai", "base_url": llm.base_url, "api_key": "test-key"},
        server={"admin_api_key": KEY},
    )
    container = Container(settings, embedder=sample_container.embedder)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server thread died"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_executable()
    if executable is None:
        pytest.skip(
            "chromium is not installed and could not be installed (`make browser` needs root "
            "or sudo and apt-get); set KEFU_TEST_CHROMIUM to a Chromium binary to run it"
        )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield b
        b.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"), full_page=True)


def open_with_keyboard(page: Any) -> None:
    """Tab to the chat bubble and open it with Enter, as a keyboard user would."""
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('kefu-bubble')"):
            break
    else:
        pytest.fail("the chat bubble is not reachable with Tab")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(".kefu-panel")).to_be_visible()
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"


def ask(page: Any, text: str) -> Any:
    """Type a message, send it with Enter and wait for the whole reply; returns its node."""
    before = page.locator(".kefu-bot").count()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    reply = page.locator(".kefu-bot").nth(before)
    sync_api.expect(reply).not_to_have_attribute("aria-busy", "true", timeout=60_000)
    return reply


def test_spanish_question_streams_with_sources_then_hands_off(
    browser: Any, live_server: str, llm: OpenAICompatibleServer
) -> None:
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the demo page's Content-Security-Policy lets the widget run, style itself and connect
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(f"{live_server}/demo")
    open_with_keyboard(page)
    # every text the bot message shows while the reply arrives
    page.evaluate(
        """() => {
        window.__seen = [];
        new MutationObserver(() => {
          const bots = document.querySelectorAll('.kefu-bot');
          if (bots.length) window.__seen.push(bots[bots.length - 1].textContent);
        }).observe(document.querySelector('.kefu-log'),
                   {childList: true, subtree: true, characterData: true});
      }"""
    )

    reply = ask(page, "¿Cuánto tarda el envío estándar a Canadá?")
    assert reply.locator(".kefu-sources").count() == 1
    spanish = translation(llm)
    shown = reply.evaluate("n => n.firstChild.textContent")
    assert "7–12" in shown  # zone 2's standard time
    assert as_shown(spanish, shown), shown
    partial = [t for t in page.evaluate("window.__seen") if t and spanish.startswith(t)]
    assert len(set(partial)) > 3, "the reply did not stream"
    # the reply names its source (Canada's page or the zones table), and the link opens it
    links = reply.locator(".kefu-sources a")
    titles = [links.nth(i).inner_text() for i in range(links.count())]
    assert any(frame("es", "source_line", title=t) in shown for t in titles), (shown, titles)
    source = page.request.get(links.first.get_attribute("href"))
    assert source.ok
    assert "7–12" in source.text()  # zone 2's standard time
    session = page.evaluate("localStorage.getItem('kefu-session-default')")
    assert session
    token = page.evaluate("localStorage.getItem('kefu-session-default-token')")
    assert token
    # the transcript is the token holder's only
    assert httpx.get(f"{live_server}/v1/sessions/{session}").status_code == 404
    mine = httpx.get(f"{live_server}/v1/sessions/{session}", headers={"X-Session-Token": token})
    assert mine.status_code == 200

    handoff = ask(page, "quiero hablar con una persona")
    banner = page.locator(".kefu-handoff")
    sync_api.expect(banner).to_be_visible()
    sync_api.expect(banner).to_have_attribute("role", "status")
    sync_api.expect(banner).to_contain_text("persona")  # in the shopper's language
    assert "persona" in handoff.inner_text()

    # an agent answers from the queue; the widget shows it without a reload
    with httpx.Client(base_url=live_server, headers=AUTH) as agent:
        [h] = [x for x in agent.get("/v1/handoffs").json() if x["session_id"] == session]
        agent.post(f"/v1/handoffs/{h['id']}/claim", json={"agent": "ana"}).raise_for_status()
        agent.post(
            f"/v1/handoffs/{h['id']}/reply", json={"message": "Hola, soy Ana.", "agent": "ana"}
        ).raise_for_status()
    sync_api.expect(page.locator(".kefu-agent")).to_have_text("Hola, soy Ana.", timeout=15_000)
    screenshot(page, "es-handoff")

    # the session survives a reload: transcript and handoff state come back
    page.reload()
    page.evaluate("window.kefu.open()")
    sync_api.expect(page.locator(".kefu-agent")).to_have_text("Hola, soy Ana.")
    sync_api.expect(page.locator(".kefu-user")).to_have_count(2)
    sync_api.expect(banner).to_be_visible()
    assert page.evaluate("window.kefu.session()") == session

    page.locator(".kefu-panel textarea").focus()
    page.keyboard.press("Escape")
    sync_api.expect(page.locator(".kefu-panel")).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('kefu-bubble')")
    assert errors == []
    context.close()


def test_arabic_lays_out_right_to_left(
    browser: Any, live_server: str, llm: OpenAICompatibleServer
) -> None:
    context = browser.new_context(locale="ar-EG")
    page = context.new_page()
    page.goto(f"{live_server}/demo")
    open_with_keyboard(page)
    panel = page.locator(".kefu-panel")
    assert panel.get_attribute("dir") == "rtl"
    assert panel.evaluate("n => getComputedStyle(n).direction") == "rtl"
    sync_api.expect(panel.locator(".kefu-head strong")).to_have_text("خدمة العملاء")

    reply = ask(page, "هل يمكنني إلغاء طلبي؟")
    text = reply.evaluate("n => n.firstChild.textContent")
    assert llm.requests[-1]["messages"][-1]["content"].startswith("Translate into Arabic")
    assert as_shown(translation(llm), text), text  # the policy, translated into Arabic
    assert reply.get_attribute("dir") == "rtl"
    assert reply.evaluate("n => getComputedStyle(n).direction") == "rtl"
    # the shopper's own messages sit at the end of the line, which is the left in Arabic
    user_box = page.locator(".kefu-user").bounding_box()
    bot_box = reply.bounding_box()
    assert user_box is not None
    assert bot_box is not None
    assert user_box["x"] < bot_box["x"]
    assert reply.locator(".kefu-sources a").count() >= 1
    screenshot(page, "ar-rtl")
    context.close()
