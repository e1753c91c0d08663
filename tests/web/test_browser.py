"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

The server is uvicorn on a free loopback port, in a thread. The tests upload a story file, find it
on the calendar, open its story page, reveal the spoiler, retry a failed delivery, and are refused
an action without the token when the app is set up as on a non-loopback address. They save the
screenshots in .cache/artifacts/screenshots/ (ignored by git), or where ``ONEYEARAGO_SCREENSHOTS_DIR``
says: ``make screenshots`` points it at docs/screenshots/ to renew the README's pictures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.config import Settings, load_settings
from bot.models import DeliveryStatus as S
from bot.store import Store
from bot.web import create_app
from tests.web.helpers import delivery, set_status

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("ONEYEARAGO_SCREENSHOTS_DIR") or ROOT / ".cache" / "artifacts" / "screenshots")
SAMPLES = ROOT / "bot" / "sources" / "samples" / "2025.yaml"
TOKEN = "Zq8-vL3nWp0xKc7RtY2mHs5bJf9dGa4e"
ZONE = "Europe/Berlin"

NO_CHROMIUM = "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium chromium-driver)"
BROWSER_MARKS = [
    pytest.mark.browser,
    # skipped on a machine without it; in CI (where .ci/run installs it) a missing browser fails instead
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason=NO_CHROMIUM),
    pytest.mark.timeout(240),
]
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{NO_CHROMIUM}; CI needs it for the real-browser tests")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def web_settings_(tmp_path: Path) -> Settings:
    return load_settings({"database_url": f"sqlite:///{tmp_path / 'queue.db'}",
                          "transcript": str(tmp_path / "transcript.jsonl"), "timezone": ZONE,
                          "quota_x_24h": "5", "reddit_subreddit": "OneYearAgo", "reddit_username": "oneyearago_bot",
                          "bluesky_handle": "oneyearago.bsky.social"}, environ={}, env_file=None)


@pytest.fixture
def bstore(web_settings_: Settings) -> Iterator[Store]:
    db = Store(web_settings_.database_url)
    yield db
    db.dispose()


OFFSETS = (0, 1, 2, 2, 2, 3, 5)
"""Days from today of the anniversaries of the sample stories the tests upload."""


def sample_file(folder: Path, today: dt.date) -> tuple[Path, list[dict[str, Any]]]:
    """The bundled sample stories, re-dated so their anniversaries fall in the coming days; the pictures
    they name are copied beside the file and named by their file names (as an upload names them)."""
    stories = yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))[: len(OFFSETS)]
    for item in stories:
        for field in ("images", "followup_images"):
            for picture in item.get(field) or []:
                name = Path(picture["path"]).name
                (folder / name).write_bytes((SAMPLES.parent / picture["path"]).read_bytes())
                picture["path"] = name
    for item, offset in zip(stories, OFFSETS, strict=True):
        day = today + dt.timedelta(days=offset)
        story_day = day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29) else \
            dt.date(day.year - 1, 2, 28)
        item.pop("timezone", None)
        item["date"] = story_day.isoformat()
        if offset == 3:
            item["date"], item["timezone"] = f"{story_day.isoformat()}T13:30:00", "America/New_York"
    path = folder / "coming-week.yaml"
    path.write_text(yaml.safe_dump(stories, allow_unicode=True, sort_keys=False, width=100), encoding="utf-8")
    return path, stories


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of the picture
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def test_upload_calendar_story_spoiler_status_and_retry(browser: Browser, tmp_path: Path,
                                                        web_settings_: Settings, bstore: Store):
    settings, store = web_settings_, bstore
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    path, stories = sample_file(tmp_path, today)
    first, busy = stories[0], stories[2]
    with serve(create_app(settings, store)) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        console_errors: list[str] = []  # a Content-Security-Policy violation would show here
        page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

        # upload the story file
        page.goto(url + "/upload")
        page.set_input_files("input[type=file]", [str(path), *(str(p) for p in sorted(tmp_path.glob("*.png")))])
        page.get_by_role("button", name="Check and load").click()
        expect(page.locator(".notice.ok")).to_contain_text(f"Loaded {len(stories)} stories")
        expect(page.locator(".notice.ok")).to_contain_text("coming-week.yaml")

        # it is on the calendar
        page.get_by_role("link", name="See the calendar").click()
        expect(page).to_have_url(url + "/")
        day = page.locator(f"#d{(today + dt.timedelta(days=2)).isoformat()}")
        expect(day.locator("a.story", has_text=busy["headline"][:30]).first).to_be_visible()
        expect(day.locator(".platform.pf-x h3")).to_contain_text("/5")

        # what the engine would have done by now: one post out, one failed, one missed, one unconfirmed
        root = delivery(store, first["id"], "x")
        set_status(store, root.id, S.POSTED.value, posted_at=dt.datetime.now(dt.UTC),
                   remote_url="https://x.com/oneyearago/status/1862000000000000001")
        set_status(store, delivery(store, first["id"], "reddit").id, S.POSTED.value,
                   posted_at=dt.datetime.now(dt.UTC), remote_url="https://www.reddit.com/r/OneYearAgo/comments/1h2abcd/")
        failed = delivery(store, stories[1]["id"], "x")
        set_status(store, failed.id, S.FAILED.value,
                   error="x: rejected: 403 Forbidden: You are not allowed to create a Tweet with duplicate content.")
        set_status(store, delivery(store, stories[1]["id"], "bluesky").id, S.UNCONFIRMED.value,
                   error="bluesky: outcome unknown: read timeout after 30s; not found on the account yet")
        set_status(store, delivery(store, stories[5]["id"], "reddit").id, S.MISSED.value,
                   error="more than 2h late (grace 2h) after downtime: not posted; retry posts it on purpose")

        page.reload()
        expect(page.locator(".day.trouble").first).to_be_visible()
        expect(page.locator(".day.overbooked").first).to_contain_text("overbooked")
        shot(page, "calendar.png")

        # the story page: X card, Bluesky pictures (no link card: a post holds one embed), Reddit post and
        # the spoiler comment
        page.locator("a.story", has_text=first["headline"][:30]).first.click()
        expect(page.locator("h1")).to_have_text(first["headline"])
        expect(page.locator(".xpost").first).to_contain_text("replayed one year on")
        assert first.get("images"), "the first sample story shows pictures"
        expect(page.locator(".linkcard")).to_have_count(0)
        picture = page.locator(f".bskypost img[alt={json.dumps(first['images'][0]['alt'])}]").first
        expect(picture).to_be_visible()
        assert picture.evaluate("img => img.complete && img.naturalWidth > 0")
        expect(page.locator(".bskypost .text").first).to_contain_text(
            re.sub(r"^www\.", "", first["url"].split("/")[2]))
        expect(page.locator("a.real", has_text="View on X")).to_have_attribute(
            "href", "https://x.com/oneyearago/status/1862000000000000001")
        hidden = page.locator(".comment details.spoiler .spoiler-text").first
        expect(hidden).to_be_hidden()
        page.locator(".comment details.spoiler summary").first.click()
        expect(hidden).to_be_visible()
        expect(hidden).to_contain_text(first["one_year_later"].split()[0])
        # Mastodon: the reply's reveal is folded behind its content warning until clicked
        warning = page.locator(".mastopost details.cw summary").first
        folded = page.locator(".mastopost details.cw .text").first
        expect(warning).to_contain_text("One year later — spoiler")
        expect(folded).to_be_hidden()
        warning.click()
        expect(folded).to_be_visible()
        expect(folded).to_contain_text(first["one_year_later"].split()[0])
        shot(page, "story.png")

        # the status page: reasons, then retry the failed delivery, with a confirmation
        page.get_by_role("link", name="Status", exact=True).click()
        problem = page.locator(f"#delivery-{failed.id}")
        expect(problem).to_contain_text("duplicate content")
        expect(page.locator(".problem.st-bad", has_text="outcome unknown")).to_be_visible()
        expect(page.locator(".problem.st-warn", has_text="more than 2h late")).to_be_visible()
        shot(page, "status.png")
        problem.get_by_role("link", name="Retry…").click()
        expect(page.locator("h1")).to_have_text(f"Retry delivery #{failed.id}?")
        assert delivery(store, stories[1]["id"], "x").status == S.FAILED.value  # asking changes nothing
        page.get_by_role("button", name="Yes, retry").click()
        expect(page.locator("h1")).to_have_text("Queued again")
        assert delivery(store, stories[1]["id"], "x").status == S.PENDING.value
        page.get_by_role("link", name="Back").click()
        expect(page.locator(f"#delivery-{failed.id} .badge")).to_have_text("pending")
        expect(page.locator(f"#delivery-{failed.id}")).to_contain_text("retry asked by the operator")
        assert console_errors == []
        context.close()

        # a phone-sized screen
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                    has_touch=True)
        page = phone.new_page()
        page.goto(url + "/?weeks=1")
        expect(page.locator(".day.today")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sideways
        shot(page, "calendar-phone.png", full_page=False)
        page.goto(url + f"/story/{first['id']}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "story-phone.png", full_page=False)
        phone.close()


def test_pages_read_and_spoilers_reveal_without_javascript(browser: Browser, tmp_path: Path,
                                                           web_settings_: Settings, bstore: Store):
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    path, stories = sample_file(tmp_path, today)
    from bot.planner import Planner
    from bot.sources.stories import load_stories

    Planner(bstore, web_settings_).load(load_stories([path]), now=dt.datetime.now(dt.UTC))
    with serve(create_app(web_settings_, bstore)) as url:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(url + "/")
        expect(page.locator("a.story", has_text=stories[1]["headline"][:30]).first).to_be_visible()
        page.locator(".weeknav a[rel=next]").click()
        expect(page.locator(".day").first).to_have_attribute(
            "id", re.compile(r"d\d{4}-\d\d-\d\d"))
        pictured = next(item for item in stories if item.get("images"))
        page.goto(url + f"/story/{pictured['id']}")
        alt = pictured["images"][0]["alt"]
        shown = page.locator(f".bskypost img[alt={json.dumps(alt)}]").first
        expect(shown).to_be_visible()
        assert shown.evaluate("img => img.complete && img.naturalWidth > 0")  # the stored bytes, served
        expect(page.locator(".bskypost .picture figcaption").first).to_contain_text(alt)
        page.goto(url + f"/story/{stories[1]['id']}")
        hidden = page.locator(".comment details.spoiler .spoiler-text").first
        expect(hidden).to_be_hidden()
        page.locator(".comment details.spoiler summary").first.click()
        expect(hidden).to_be_visible()
        folded = page.locator(".mastopost details.cw .text").first
        expect(folded).to_be_hidden()
        page.locator(".mastopost details.cw summary").first.click()
        expect(folded).to_be_visible()
        context.close()


def test_without_the_token_an_action_is_refused_when_not_on_loopback(browser: Browser, tmp_path: Path,
                                                                     web_settings_: Settings, bstore: Store):
    from bot.planner import Planner
    from bot.sources.stories import load_stories

    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    path, stories = sample_file(tmp_path, today)
    Planner(bstore, web_settings_).load(load_stories([path]), now=dt.datetime.now(dt.UTC))
    failed = delivery(bstore, stories[1]["id"], "x")
    other = delivery(bstore, stories[2]["id"], "x")
    for row in (failed, other):
        set_status(bstore, row.id, S.FAILED.value, error="x: rejected: duplicate content")
    # as `oneyearago web --host 0.0.0.0` with ONEYEARAGO_WEB_TOKEN would serve it
    with serve(create_app(web_settings_, bstore, token=TOKEN, public=True)) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/status")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fstatus$"))
        expect(page.locator("h1")).to_have_text("Log in")

        # a retry posted from the browser without the token (but with a valid CSRF token) is refused
        csrf = page.locator("input[name=csrf_token]").get_attribute("value")
        page.evaluate("""([action, csrf]) => {
            const form = document.createElement('form');
            form.method = 'post'; form.action = action;
            const field = document.createElement('input');
            field.type = 'hidden'; field.name = 'csrf_token'; field.value = csrf;
            form.appendChild(field); document.body.appendChild(form); form.submit();
        }""", [f"/retry/%23{failed.id}", csrf])
        expect(page.locator("body")).to_contain_text("The operator token is required")
        assert delivery(bstore, stories[1]["id"], "x").status == S.FAILED.value

        # with the token (login form), the same retry goes through
        page.goto(url + "/status")
        page.locator("input[name=token]").fill("not-the-token")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".notice.bad")).to_contain_text("not the operator token")
        page.locator("input[name=token]").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(url + "/status")
        page.locator(f"#delivery-{failed.id}").get_by_role("link", name="Retry…").click()
        page.get_by_role("button", name="Yes, retry").click()
        expect(page.locator("h1")).to_have_text("Queued again")
        assert delivery(bstore, stories[1]["id"], "x").status == S.PENDING.value

        # logged in, but a form without its CSRF token is refused too
        page.goto(url + f"/retry/%23{other.id}")
        page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
        page.get_by_role("button", name="Yes, retry").click()
        expect(page.locator("h1")).to_have_text("Refused")
        assert delivery(bstore, stories[2]["id"], "x").status == S.FAILED.value
        context.close()
