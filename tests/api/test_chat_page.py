"""The web pages (chat page, API docs) in headless Debian chromium (never a downloaded browser), via Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT
from live_app import LiveServer, sample_qa, serve

from index.embedding import Embedder

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".citeqa" / "screenshots"


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: object, live: LiveServer) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live.url) else external.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + "/")
    yield page
    context.close()
    assert not external, f"the page fetched external assets: {external}"
    assert not errors, f"JavaScript errors: {errors}"


def ask(page: object, question: str) -> object:
    """Type a question, send it, and return the assistant bubble once its answer is rendered."""
    count = page.locator("li.msg.assistant").count()  # type: ignore[attr-defined]
    page.fill("#question", question)  # type: ignore[attr-defined]
    page.press("#question", "Enter")  # type: ignore[attr-defined]
    bubble = page.locator("li.msg.assistant").nth(count)  # type: ignore[attr-defined]
    bubble.locator(".refs-title").first.wait_for(timeout=30_000)
    return bubble


def test_ask_see_the_streamed_answer_click_a_citation_see_the_span(page: object, live: LiveServer) -> None:
    from playwright.sync_api import expect

    assert page.locator("#model option").first.text_content() == "extractive"  # type: ignore[attr-defined]
    bubble = ask(page, "Who was killed by a mortar shell?")
    expect(bubble).not_to_have_class("streaming")  # type: ignore[arg-type]
    expect(bubble.locator(".answer-text")).to_contain_text("Samadi")  # type: ignore[attr-defined]
    expect(bubble.locator(".answer-text")).not_to_contain_text("References:")  # type: ignore[attr-defined]
    expect(bubble.locator(".refs.cited li")).not_to_have_count(0)  # type: ignore[attr-defined]

    bubble.locator(".answer-text .cite").first.click()  # type: ignore[attr-defined]
    viewer = page.locator("#viewer")  # type: ignore[attr-defined]
    expect(viewer).to_be_visible()
    mark = viewer.locator("mark#cited-span")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("Samadi was killed by a mortar shell")
    expect(viewer.locator("#doc-check")).to_contain_text("matches the document text exactly")
    expect(viewer.locator("#doc-title")).to_have_text("Syria: ISIS defeated in last major stronghold")
    document = live.qa.index.get_document(DOC_DEFEAT)[1]
    assert mark.text_content() in document
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "answer-and-citation.png"))  # type: ignore[attr-defined]


def test_refusals_and_conflicts_look_different_and_the_conversation_is_kept(page: object) -> None:
    from playwright.sync_api import expect

    refusal = ask(page, "What is the capital of France?")
    expect(refusal).to_have_class("msg assistant refused")  # type: ignore[arg-type]
    expect(refusal.locator(".badge")).to_have_text("Not answered by the documents")  # type: ignore[attr-defined]
    expect(refusal.locator(".refs.see-also")).to_have_count(1)  # type: ignore[attr-defined]

    conflict = ask(page, "Did ISIS hold Boukamal?")
    expect(conflict).to_have_class("msg assistant conflict")  # type: ignore[arg-type]
    expect(conflict.locator(".badge")).to_have_text("Sources disagree")  # type: ignore[attr-defined]
    sides = conflict.locator(".side")  # type: ignore[attr-defined]
    expect(sides).to_have_count(2)
    expect(sides.nth(1).locator(".side-head")).to_contain_text("Global News · 2017-11-19")
    conflict.locator(".side .cite").last.click()  # type: ignore[attr-defined]
    expect(page.locator("mark#cited-span")).to_be_visible()  # type: ignore[attr-defined]

    # a follow-up leans on the earlier turns the page sends along
    follow = ask(page, "Who reported the mortar attack?")
    expect(follow.locator(".answer-text")).to_contain_text("Samadi")  # type: ignore[attr-defined]
    expect(page.locator("li.msg.user")).to_have_count(3)  # type: ignore[attr-defined]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    refusal.screenshot(path=str(SCREENSHOTS / "refusal.png"))  # type: ignore[attr-defined]
    conflict.screenshot(path=str(SCREENSHOTS / "conflict.png"))  # type: ignore[attr-defined]

    page.reload()  # type: ignore[attr-defined]
    expect(page.locator("li.msg.assistant")).to_have_count(3)  # type: ignore[attr-defined]
    expect(page.locator("li.msg.assistant.conflict .side")).to_have_count(2)  # type: ignore[attr-defined]
    page.click("#new-chat")  # type: ignore[attr-defined]
    expect(page.locator("li.msg")).to_have_count(0)  # type: ignore[attr-defined]
    expect(page.locator("#hint")).to_be_visible()  # type: ignore[attr-defined]


def test_an_error_is_shown_in_the_conversation(page: object) -> None:
    from playwright.sync_api import expect

    page.fill("#question", "why " * 600)  # type: ignore[attr-defined]
    page.press("#question", "Enter")  # type: ignore[attr-defined]
    error = page.locator("li.msg.assistant.error")  # type: ignore[attr-defined]
    expect(error).to_contain_text("limit is 2000")


def test_the_api_docs_render_without_the_internet(browser: object, live: LiveServer) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live.url) else external.append(r.url))
    page.goto(live.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # the operations are rendered
    assert "/v1/chat/completions" in page.content()
    context.close()
    assert not external, f"/docs fetched external assets: {external}"
