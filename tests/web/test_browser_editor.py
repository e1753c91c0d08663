"""The story editor in a real browser (Debian's Chromium, headless, driven by Playwright).

Find a story on the Needs a reveal page, type its reveal and watch X's count change as the server
renders each edit, save, see the history entry; approve a draft with its button; add a picture to the
reveal and remove it again; and, without JavaScript, preview on submit (a picture chosen too). The editor's picture is saved beside the others (``make screenshots``
renews docs/screenshots/editor.png for the README).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from PIL import Image as PILImage
from playwright.sync_api import Browser, expect

from bot.config import Settings
from bot.models import StoryRow
from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.store import Store
from bot.web import create_app
from tests.web.test_browser import BROWSER_MARKS, SCREENSHOTS, ZONE, sample_file, serve
from tests.web.test_browser import browser as browser  # the fixtures of the dashboard's browser tests, shared
from tests.web.test_browser import bstore as bstore
from tests.web.test_browser import web_settings_ as web_settings_

pytestmark = BROWSER_MARKS


def stories_without_a_reveal(folder: Path, today: dt.date, settings: Settings, store: Store) -> dict[str, str]:
    """The sample stories of the coming days loaded, the second one without its reveal; and a draft.
    Returns the headlines of the one that needs a reveal and of the draft, by role."""
    path, stories = sample_file(folder, today)
    stories[1].pop("one_year_later")
    path.write_text(yaml.safe_dump(stories, allow_unicode=True, sort_keys=False, width=100), encoding="utf-8")
    now = dt.datetime.now(dt.UTC)
    Planner(store, settings).load(load_stories([path]), now=now)
    draft = folder / "draft.yaml"
    day = today + dt.timedelta(days=4)
    draft.write_text(yaml.safe_dump([{"id": "browser-draft", "date": day.replace(year=day.year - 1).isoformat(),
                                      "headline": "A captured story waiting for approval",
                                      "url": "https://example.com/draft"}]), encoding="utf-8")
    Planner(store, settings).load(load_stories([draft]), now=now, draft=True)
    return {"id": stories[1]["id"], "reveal": stories[1]["headline"], "draft": "A captured story waiting for approval"}


def test_type_a_reveal_watch_the_x_count_save_and_see_the_history(browser: Browser, tmp_path: Path,
                                                                  web_settings_: Settings,
                                                                  bstore: Store):
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    names = stories_without_a_reveal(tmp_path, today, web_settings_, bstore)
    with serve(create_app(web_settings_, bstore)) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        console_errors: list[str] = []  # a Content-Security-Policy violation would show here
        page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

        # the story shows on the Needs a reveal page; its link opens the editor
        page.goto(url + "/")
        page.get_by_role("link", name="Needs a reveal", exact=True).click()
        row = page.locator(".reveal", has_text=names["reveal"][:30])
        expect(row).to_be_visible()
        expect(page.locator(".reveal.draft")).to_contain_text(names["draft"])
        row.get_by_role("link", name="write the reveal…").click()
        expect(page.locator("h1")).to_contain_text(names["reveal"][:30])
        expect(page.locator(".revealnote")).to_be_visible()

        # no reveal, no X reply; typing one makes it, and the count follows each keystroke's edit
        x_reply = page.locator("#preview .pv.pf-x .pvpart[data-kind=followup]")
        expect(x_reply).to_have_count(0)
        reveal = page.locator("#f-one_year_later")
        reveal.press_sequentially("It was built.")
        expect(x_reply).to_have_count(1)
        expect(x_reply.locator(".pvtext")).to_contain_text("It was built.")
        count = x_reply.locator(".num").first
        expect(count).to_have_text(re.compile(r"^\d+/280 weighted characters$"))
        first = int(count.inner_text().split("/")[0])
        reveal.press_sequentially(" Slowly.")
        expect(count).to_have_text(f"{first + 8}/280 weighted characters")
        expect(page.locator(".pvstate")).to_have_text("preview up to date")
        page.set_viewport_size({"width": 1280, "height": 1500})  # the whole editor at once: the preview at its top
        page.evaluate("document.querySelector('header.top').style.position = 'static'")  # not over the picture
        page.locator("#edit").screenshot(path=str(_shot_path("editor.png")))
        page.set_viewport_size({"width": 1280, "height": 900})

        # an invalid date is refused live with the loader's message, and nothing is saved
        date = page.locator("#f-date")
        good = date.input_value()
        date.fill("2025-02-30")
        expect(page.locator("#preview .notice.bad")).to_contain_text("date '2025-02-30' is not a valid date")
        expect(page.locator(".pvstate")).to_have_text("this edit would be refused")
        date.fill(good)
        expect(page.locator("#preview .notice.bad")).to_have_count(0)

        # save: the page says so, the history shows the change from the dashboard
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice.ok")).to_contain_text("Saved.")
        latest = page.locator(".history .change").first
        expect(latest).to_contain_text("dashboard")
        expect(latest).to_contain_text("one_year_later: (empty) → It was built. Slowly.")
        expect(page.locator(".thread.pf-x .xpost.reply")).to_contain_text("It was built. Slowly.")
        with bstore.session() as session:
            saved = session.get(StoryRow, names["id"])
            assert saved is not None and saved.content["one_year_later"] == "It was built. Slowly."
        page.get_by_role("link", name="Needs a reveal", exact=True).click()
        expect(page.locator(".reveal", has_text=names["reveal"][:30])).to_have_count(0)

        # the draft: labelled, approved with its button
        page.locator(".reveal.draft a", has_text=names["draft"]).click()
        expect(page.locator(".draftbadge")).to_have_text("draft")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator(".notice.ok")).to_contain_text("Approved.")
        expect(page.locator(".draftbadge")).to_have_count(0)
        with bstore.session() as session:
            assert session.get(StoryRow, "browser-draft").draft is False  # type: ignore[union-attr]
        assert console_errors == []
        context.close()


def test_without_javascript_the_editor_previews_on_submit(browser: Browser, tmp_path: Path,
                                                          web_settings_: Settings, bstore: Store):
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    names = stories_without_a_reveal(tmp_path, today, web_settings_, bstore)
    with serve(create_app(web_settings_, bstore)) as url:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(url + f"/story/{names['id']}")
        page.locator("#f-one_year_later").fill("Typed without JavaScript.")
        expect(page.locator("#preview .pv.pf-x .pvpart[data-kind=followup]")).to_have_count(0)  # nothing live
        picture = tmp_path / "plain.png"
        PILImage.new("RGB", (60, 40), (200, 60, 60)).save(picture)
        page.locator("#f-followup_images-new-file").set_input_files(str(picture))
        page.locator("#f-followup_images-new-alt").fill("A plain red picture")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview .pv.pf-x .pvpart[data-kind=followup] .pvpic")).to_contain_text(
            "alt text 19/1000 characters")
        expect(page.locator("#preview .pv.pf-x .pvpart[data-kind=followup] .pvtext")).to_contain_text(
            "Typed without JavaScript.")
        expect(page.locator("#f-one_year_later")).to_have_value("Typed without JavaScript.")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice.ok")).to_contain_text("Saved.")
        expect(page.locator(".history .change").first).to_contain_text("Typed without JavaScript.")
        assert _pictures(bstore, names["id"], "followup_images") == [("plain.png", "A plain red picture")]
        context.close()


def test_add_a_picture_with_its_alt_text_then_remove_it(browser: Browser, tmp_path: Path, web_settings_: Settings,
                                                       bstore: Store):
    """Choosing a file sends it at once (the server prepares it as `load` does): the page comes back with
    the picture in the form and in every platform's preview; saved, it goes with the posts; its Remove
    button takes it out again."""
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    names = stories_without_a_reveal(tmp_path, today, web_settings_, bstore)
    picture = tmp_path / "harbour.png"
    PILImage.new("RGB", (120, 80), (30, 120, 160)).save(picture)
    with serve(create_app(web_settings_, bstore)) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
        page.goto(url + f"/story/{names['id']}")
        before = len(_pictures(bstore, names["id"]))
        page.locator("#f-one_year_later").fill("The harbour was rebuilt.")  # a reveal, which the picture goes with
        page.locator("#f-followup_images-new-alt").fill("The harbour a year later")
        page.locator("#f-followup_images-new-file").set_input_files(str(picture))  # sent as it is chosen
        kept = page.locator("#pictures-followup_images .picture[data-slot='followup_images.1']")
        expect(kept).to_contain_text("harbour.png")
        expect(kept.locator("textarea")).to_have_value("The harbour a year later")
        reply = page.locator("#preview .pv.pf-bluesky .pvpart[data-kind=followup][data-part='1'] .pvpic")
        expect(reply).to_have_count(1)
        expect(reply).to_contain_text("alt text 24/2000 characters")
        expect(reply.locator("img")).to_have_attribute("alt", "The harbour a year later")
        shown = reply.locator("img")
        shown.scroll_into_view_if_needed()  # loaded lazily
        page.wait_for_function("img => img.complete && img.naturalWidth === 120", arg=shown.element_handle())
        page.evaluate("document.querySelector('header.top').style.position = 'static'")  # not over the picture
        page.locator("#edit").screenshot(path=str(_shot_path("editor-pictures.png")))
        kept.locator("textarea").fill("The harbour, rebuilt")
        expect(reply).to_contain_text("alt text 20/2000 characters")  # the live preview counts the edit
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice.ok")).to_contain_text("Saved.")
        assert _pictures(bstore, names["id"], "followup_images") == [("harbour.png", "The harbour, rebuilt")]
        expect(page.locator(".history .change").first).to_contain_text("followup_images: (empty) → harbour.png")

        page.get_by_role("button", name="Remove followup_images 1").click()
        expect(page.locator("#pictures-followup_images .picture[data-slot]")).to_have_count(0)
        assert _pictures(bstore, names["id"], "followup_images") == [("harbour.png", "The harbour, rebuilt")]
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice.ok")).to_contain_text("Saved.")
        assert _pictures(bstore, names["id"], "followup_images") == []
        assert len(_pictures(bstore, names["id"])) == before  # the post's own pictures were left alone
        assert console_errors == []
        context.close()


def _pictures(store: Store, story_id: str, field: str = "images") -> list[tuple[str, str]]:
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        assert row is not None
        return [(p["ref"], p["alt"]) for p in row.content.get(field) or []]


def _shot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
