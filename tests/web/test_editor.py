"""The story editor of the dashboard: the form, its live preview, saving (and refusing), the history,
the Approve button, the Needs a reveal page, and drafts and missing reveals on the calendar."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import random
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.images import media_policy
from bot.models import DeliveryRow, StoryChangeRow, StoryRow
from bot.models import DeliveryStatus as S
from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.store import Store
from bot.web.editor import SHORT, form_values, shown_value
from posts.story import Story
from tests.web.helpers import NOW, csrf_of, delivery, set_status
from tests.web.test_pages import days
from tests.web.test_upload_images import png

TOKEN = "Zq8-vL3nWp0xKc7RtY2mHs5bJf9dGa4e"


def fields(client: TestClient, story_id: str) -> dict[str, str]:
    """The editor's form of a story as the browser would send it: every input and text area, unescaped."""
    page = client.get(f"/story/{story_id}").text
    form = page[page.index(f'<form method="post" action="/story/{story_id}/edit"'):]
    form = form[:form.index("</form>")]
    found = {}
    for tag in re.findall(r"<input [^>]*>", form):
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        found[attributes["name"]] = html.unescape(attributes.get("value", ""))
    found.update({m.group(1): html.unescape(m.group(2)) for m in re.finditer(
        r'<textarea id="[^"]*" name="([^"]+)" rows="\d+">(.*?)</textarea>', form, re.S)})
    for name, options in re.findall(r'<select id="[^"]*" name="([^"]+)">(.*?)</select>', form, re.S):
        chosen = re.findall(r'<option value="([^"]*)" selected>', options)
        found[name] = html.unescape(chosen[0]) if chosen else ""
    return found


def edit(client: TestClient, story_id: str, do: str = "save", **changes: str) -> Any:
    data = {**fields(client, story_id), **changes, "do": do}
    return client.post(f"/story/{story_id}/edit", data=data)


def preview(client: TestClient, story_id: str, **changes: str) -> dict[str, Any]:
    data = {**fields(client, story_id), **changes}
    response = client.post(f"/story/{story_id}/preview", data=data)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def part(answer: dict[str, Any], platform: str, kind: str) -> dict[str, Any]:
    return next(p for pf in answer["platforms"] if pf["platform"] == platform for p in pf["parts"] if p["kind"] == kind)


def content(store: Store, story_id: str) -> dict[str, Any]:
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        assert row is not None
        return dict(row.content)


def changes(store: Store, story_id: str) -> list[tuple[str, str, Any]]:
    with store.session() as session:
        return [(c.source, c.origin, c.changes) for c in session.scalars(
            select(StoryChangeRow).where(StoryChangeRow.story_id == story_id).order_by(StoryChangeRow.id))]


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# ---------------------------------------------------------------------------- the form


def test_the_story_page_has_an_input_for_every_field_written_as_in_a_story_file(client: TestClient):
    form = fields(client, "second-story")
    assert form["date"] == "2025-03-04T18:30" and form["timezone"] == "Europe/Berlin"
    assert form["headline"] == "Second story, timed in Berlin"
    assert form["one_year_later"] == "It went differently."
    assert set(form) >= {"summary", "body", "category", "source", "url", "followup_after", "platforms", "tags",
                         "lang", "csrf_token", "version"}
    assert "id" not in form  # the id is fixed, and the page says so
    page = client.get("/story/second-story").text
    assert "The id <code>second-story</code> is fixed" in page
    first = fields(client, "first-story")
    assert first["tags"] == "ai, research"
    assert first["headline"] == "Example Lab shows a <b>model</b> that plans & reasons"
    assert 'value="Example Lab shows a &lt;b&gt;model&lt;/b&gt; that plans &amp; reasons"' in \
        client.get("/story/first-story").text  # escaped in the page


def test_who_may_reply_is_a_select_of_the_choices_and_a_save_stores_the_one_chosen(client: TestClient,
                                                                                      loaded: Store):
    page = client.get("/story/first-story").text
    select = page[page.index('<select id="f-replies" name="replies">'):]
    select = select[:select.index("</select>")]
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "everyone", "followers", "mentioned", "nobody"]
    assert fields(client, "first-story")["replies"] == ""  # unset: the setting decides
    assert "Saved." in edit(client, "first-story", replies="nobody").text
    assert content(loaded, "first-story")["replies"] == "nobody"
    assert fields(client, "first-story")["replies"] == "nobody"
    assert delivery(loaded, "first-story", "bluesky", "root").payload["threadgate"]["allow"] == []
    assert "is not a choice" in edit(client, "first-story", replies="friends").text


def test_form_values_write_durations_lists_and_times_as_a_file_does():
    item = Story(id="a", date=dt.datetime(2025, 3, 1, 9, 30, 15), headline="H", followup_after=dt.timedelta(hours=1,
                 minutes=30), platforms=("x", "bluesky"), tags=("ai",))
    values = form_values(item)
    assert values["date"] == "2025-03-01T09:30:15"
    assert values["followup_after"] == "1h30m" and values["platforms"] == "x, bluesky" and values["tags"] == "ai"
    assert form_values(dataclasses.replace(item, date=dt.date(2025, 3, 1)))["date"] == "2025-03-01"


def test_the_history_shows_values_as_a_file_writes_them_and_shortens_long_ones():
    assert shown_value("followup_after", 21600) == "6h"
    assert shown_value("tags", ["ai", "research"]) == "ai, research"
    assert shown_value("one_year_later", "") == "(empty)" and shown_value("timezone", None) == "(empty)"
    assert shown_value("images", [{"ref": "map.png", "alt": "A map", "versions": {"x": "ab12cd34ef"}}]) == \
        "map.png #ab12cd34 (alt: A map)"  # the picture by the start of its sha256
    long = shown_value("body", "word " * 100)
    assert len(long) == SHORT and long.endswith("…") and long.startswith("word word")


# ---------------------------------------------------------------------------- live preview


def test_preview_renders_each_platforms_parts_with_counts_from_the_same_code(client: TestClient, loaded: Store):
    before = preview(client, "first-story")
    assert before["ok"] and before["problems"] == []
    reply = part(before, "x", "followup")
    assert reply["text"].endswith("It was cited everywhere; nobody shipped it.")
    assert reply["limit"] == 280 and reply["unit"] == "weighted characters"
    queued = delivery(loaded, "first-story", "x", "followup")
    assert (reply["text"], reply["length"]) == (queued.text, queued.length)  # what load rendered, to the letter
    longer = preview(client, "first-story", one_year_later="It was cited everywhere. " * 4)
    assert part(longer, "x", "followup")["length"] == reply["length"] - len("It was cited everywhere; nobody "
                                                                            "shipped it.") + 99
    assert '<span class="num">' in longer["html"] and "It was cited everywhere. It was" in longer["html"]
    assert content(loaded, "first-story")["one_year_later"] == "It was cited everywhere; nobody shipped it."


def test_preview_shows_the_cut_to_fit_warning(client: TestClient):
    answer = preview(client, "first-story", headline="A very long headline " * 20)
    root = part(answer, "x", "root")
    assert root["cut"] and root["length"] <= root["limit"]
    assert root["warning"] == "cut to fit X: the end of the story is left out of this post"
    assert part(answer, "x", "followup")["warning"] == ""
    assert "Cut to fit X" in answer["html"]


def test_preview_of_an_invalid_edit_lists_the_loaders_problems(client: TestClient):
    answer = preview(client, "first-story", date="2025-13-45", followup_after="soon", platforms="x, twiter")
    assert not answer["ok"] and answer["platforms"] == []
    messages = [p["message"] for p in answer["problems"]]
    assert "date '2025-13-45' is not a valid date" in messages
    assert "followup_after 'soon' is not a delay" in messages
    assert "unknown platform 'twiter'" in messages
    assert answer["problems"][0]["text"].startswith("dashboard:0: first-story: ")
    assert "unknown platform 'twiter' (known: x, reddit, bluesky, mastodon)" in text_of(answer["html"])


def test_preview_never_sends_a_secret(make_client, web_settings, loaded: Store):
    secret = "s3cr3t-app-password-xyz"
    client = make_client(settings_=web_settings(bluesky_app_password=secret))
    response = client.post("/story/first-story/preview",
                           data={**fields(client, "first-story"), "summary": f"leaked {secret} here"})
    assert response.status_code == 200
    assert secret not in response.text


# ---------------------------------------------------------------------------- saving


def test_save_goes_through_load_records_history_and_rerenders_unsent_posts(client: TestClient, loaded: Store):
    response = edit(client, "first-story", one_year_later="It shipped in the end, quietly.", tags="ai")
    assert response.status_code == 200
    assert "Saved." in response.text
    stored = content(loaded, "first-story")
    assert stored["one_year_later"] == "It shipped in the end, quietly." and stored["tags"] == ["ai"]
    assert delivery(loaded, "first-story", "x", "followup").text.endswith("It shipped in the end, quietly.")
    with loaded.session() as session:
        row = session.get(StoryRow, "first-story")
        assert row is not None and row.edited_at is not None and row.origin == "dashboard"
    source, origin, changed = changes(loaded, "first-story")[-1]
    assert (source, origin) == ("dashboard", "dashboard")
    assert changed["one_year_later"] == ["It was cited everywhere; nobody shipped it.", "It shipped in the end, quietly."]
    assert changed["tags"] == [["ai", "research"], ["ai"]]
    # the history, newest first, on the story page
    history = client.get("/story/first-story").text
    history = history[history.index('class="history"'):]
    shown = text_of(history)
    assert shown.index("dashboard") < shown.index("stories.yaml:1")
    assert "one_year_later: It was cited everywhere; nobody shipped it. → It shipped in the end, quietly." in \
        re.sub(r"\s+", " ", shown)
    assert "2026-03-02 08:00" in shown  # in the bot's zone


def test_an_unchanged_save_says_so_and_records_nothing(client: TestClient, loaded: Store):
    before = changes(loaded, "second-story")
    response = edit(client, "second-story")
    assert "Nothing changed" in response.text
    assert changes(loaded, "second-story") == before


def test_a_refused_save_shows_the_loaders_messages_and_keeps_the_form(client: TestClient, loaded: Store):
    before = content(loaded, "first-story")
    response = edit(client, "first-story", date="2025-02-30", one_year_later="My new reveal",
                    url="ftp://example.com/x")
    assert response.status_code == 422
    shown = text_of(response.text)
    assert "Not saved" in shown
    assert "date '2025-02-30' is not a valid date" in shown
    assert "url 'ftp://example.com/x' must start with http:// or https://" in shown
    assert 'value="2025-02-30"' in response.text and ">My new reveal</textarea>" in response.text
    assert content(loaded, "first-story") == before
    assert [c[0] for c in changes(loaded, "first-story")] == ["file"]


def test_a_save_after_a_change_made_meanwhile_is_refused(client: TestClient, loaded: Store):
    stale = fields(client, "first-story")
    assert edit(client, "first-story", category="other").status_code == 200
    response = client.post("/story/first-story/edit", data={**stale, "summary": "Mine", "do": "save"})
    assert response.status_code == 422
    assert "the story was changed since this form was opened" in text_of(response.text)
    assert content(loaded, "first-story")["category"] == "other"
    assert content(loaded, "first-story")["summary"] == "A short summary of what happened."


def test_posts_already_sent_do_not_change_and_the_page_says_so(client: TestClient, loaded: Store):
    sent = delivery(loaded, "first-story", "x", "followup")
    set_status(loaded, sent.id, S.POSTED.value, remote_url="https://x.com/oneyearago/status/1", posted_at=NOW)
    response = edit(client, "first-story", one_year_later="A later reveal")
    assert "Too late: first-story: x followup is already posted; the new text will not be posted" in \
        text_of(response.text)
    assert delivery(loaded, "first-story", "x", "followup").text == sent.text
    assert delivery(loaded, "first-story", "bluesky", "followup").text.endswith("A later reveal")


def test_a_file_load_then_refuses_to_overwrite_the_dashboard_edit(client: TestClient, loaded: Store,
                                                                  settings, story_file: Path):
    edit(client, "first-story", summary="Edited in the dashboard")
    with pytest.raises(Exception, match="problem"):
        Planner(loaded, settings).load(load_stories([story_file]), now=NOW)
    assert content(loaded, "first-story")["summary"] == "Edited in the dashboard"


def test_without_javascript_the_preview_button_renders_the_edit_and_saves_nothing(client: TestClient,
                                                                                  loaded: Store):
    response = edit(client, "first-story", do="preview", one_year_later="Typed, not saved")
    assert response.status_code == 200
    preview_box = response.text[response.text.index('<div class="preview"'):]
    assert "Typed, not saved</pre>" in preview_box
    assert ">Typed, not saved</textarea>" in response.text
    assert content(loaded, "first-story")["one_year_later"] == "It was cited everywhere; nobody shipped it."
    assert [c[0] for c in changes(loaded, "first-story")] == ["file"]


def test_alt_text_of_a_stored_picture_is_edited_and_checked(make_client, store: Store, settings,
                                                           tmp_path: Path):
    (tmp_path / "map.png").write_bytes(png())
    path = tmp_path / "pictured.yaml"
    path.write_text("- id: pictured\n  date: 2025-03-05\n  headline: A story with a picture\n"
                    "  images: [{path: map.png, alt: A map of the old coast}]\n", encoding="utf-8")
    Planner(store, settings).load(load_stories([path]), now=NOW)
    client = make_client()
    form = fields(client, "pictured")
    assert form["images.1.alt"] == "A map of the old coast"
    refused = edit(client, "pictured", **{"images.1.alt": ""})
    assert refused.status_code == 422 and "images[1] ('map.png') has no alt text" in text_of(refused.text)
    too_long = edit(client, "pictured", **{"images.1.alt": "x" * 1600})
    assert too_long.status_code == 422 and "alt text is 1,600 characters" in text_of(too_long.text)
    sha = content(store, "pictured")["images"][0]["versions"]
    assert edit(client, "pictured", **{"images.1.alt": "A map of the new coast"}).status_code == 200
    stored = content(store, "pictured")["images"][0]
    assert stored["alt"] == "A map of the new coast" and stored["versions"] == sha and stored["ref"] == "map.png"
    assert any(p.get("alt") == "A map of the new coast"
               for p in delivery(store, "pictured", "bluesky").pictures or [])


# ---------------------------------------------------------------------------- drafts and approval


@pytest.fixture
def drafted(loaded: Store, settings, tmp_path: Path) -> Store:
    path = tmp_path / "draft.yaml"
    path.write_text("- id: a-draft\n  date: 2025-03-03\n  headline: A draft story\n  url: https://example.com/d\n",
                    encoding="utf-8")
    Planner(loaded, settings).load(load_stories([path]), now=NOW, draft=True)
    return loaded


def test_a_draft_is_labelled_and_approved_with_the_button(client: TestClient, drafted: Store):
    page = client.get("/story/a-draft").text
    assert '<span class="badge st-warn draftbadge">draft</span>' in page
    assert "never posted until approved" in page
    assert 'action="/story/a-draft/approve"' in page
    assert client.post("/story/a-draft/approve").status_code == 403  # no CSRF token
    response = client.post("/story/a-draft/approve", data={"csrf_token": csrf_of(client, "/story/a-draft")})
    assert response.status_code == 200 and "Approved." in response.text
    assert "draftbadge" not in response.text
    with drafted.session() as session:
        assert session.get(StoryRow, "a-draft").draft is False  # type: ignore[union-attr]
        kinds = set(session.scalars(select(DeliveryRow.kind).where(DeliveryRow.story_id == "a-draft")))
    assert kinds == {"root"}  # no reveal: no follow-up
    assert [c[0] for c in changes(drafted, "a-draft")] == ["file", "approve"]
    assert changes(drafted, "a-draft")[-1][1:] == ("dashboard", {"draft": [True, False]})
    again = client.post("/story/a-draft/approve", data={"csrf_token": csrf_of(client, "/story/a-draft")})
    assert "already part of the queue" in again.text
    assert 'action="/story/first-story/approve"' not in client.get("/story/first-story").text
    assert client.post("/story/nope/approve", data={"csrf_token": csrf_of(client)}).status_code == 404


def test_saving_a_draft_keeps_it_a_draft_without_posts(client: TestClient, drafted: Store):
    response = edit(client, "a-draft", one_year_later="Then it happened.")
    assert "still a draft" in response.text
    with drafted.session() as session:
        assert session.get(StoryRow, "a-draft").draft is True  # type: ignore[union-attr]
        assert not list(session.scalars(select(DeliveryRow.id).where(DeliveryRow.story_id == "a-draft")))


# ---------------------------------------------------------------------------- needs a reveal


def test_the_reveals_page_lists_stories_due_within_the_lead_without_a_reveal(client: TestClient, drafted: Store):
    page = client.get("/reveals")
    assert page.status_code == 200
    assert '<a href="/reveals" aria-current="page">Needs a reveal</a>' in page.text
    shown = text_of(page.text)
    assert "A draft story" in shown and "A story of next week" in shown
    assert shown.index("A draft story") < shown.index("A story of next week")  # soonest first
    assert "Second story" not in shown and "Example Lab" not in shown  # they have their reveal
    assert 'href="/story/next-week#edit"' in page.text
    draft = page.text[page.text.index("A draft story"):]
    assert '<span class="badge st-warn">draft</span>' in draft[:200]
    # written: off the list
    edit(client, "next-week", one_year_later="It did happen.")
    assert "A story of next week" not in text_of(client.get("/reveals").text)


def test_the_reveal_lead_setting_bounds_the_list(make_client, web_settings, drafted: Store):
    client = make_client(settings_=web_settings(reveal_lead="3d"))
    shown = text_of(client.get("/reveals").text)
    assert "A draft story" in shown and "A story of next week" not in shown
    assert "Every story due in that time" in text_of(make_client(settings_=web_settings(reveal_lead="1h"))
                                                     .get("/reveals").text)


def test_the_story_page_says_when_a_reveal_is_needed(client: TestClient):
    assert "Needs a reveal:" in client.get("/story/next-week").text
    assert "Needs a reveal:" not in client.get("/story/first-story").text


# ---------------------------------------------------------------------------- calendar


def test_the_calendar_shows_drafts_apart_and_marks_stories_needing_a_reveal(client: TestClient, drafted: Store):
    cal = days(client.get("/").text)
    tuesday = cal["2026-03-03"]
    assert "Nothing scheduled." not in tuesday
    drafts = tuesday[tuesday.index('class="daydrafts"'):]
    assert "A draft story" in drafts and '<span class="badge st-warn">draft</span>' in drafts
    assert "1 draft" in tuesday
    assert '<span class="count">' not in tuesday  # a draft is not counted as a post
    assert 'class="platforms"' not in tuesday  # nor shown as one on any platform
    assert "needs a reveal" in drafts
    week2 = cal["2026-03-10"]
    assert week2.count('<span class="badge st-reveal">needs a reveal</span>') == 4  # its root on each platform
    assert "1 needs a reveal" in week2
    assert "needs a reveal</span>" not in cal["2026-03-02"]  # first-story has its reveal
    with drafted.session() as session:
        assert not list(session.scalars(select(DeliveryRow.id).where(DeliveryRow.story_id == "a-draft")))


# ---------------------------------------------------------------------------- the guard


@pytest.fixture
def guarded(make_client, loaded: Store) -> TestClient:
    return make_client(token=TOKEN)


def test_every_new_route_needs_the_token(guarded: TestClient, loaded: Store):
    for path in ("/reveals", "/story/first-story"):
        assert guarded.get(path, headers={"Accept": "text/html"}).status_code == 303
        assert guarded.get(path, headers={"Accept": "*/*"}).status_code == 401
    csrf = csrf_of(guarded, "/login")
    for path in ("/story/first-story/edit", "/story/first-story/preview", "/story/first-story/approve"):
        refused = guarded.post(path, data={"csrf_token": csrf, "do": "save", "headline": "Hijacked",
                                           "date": "2025-03-02"})
        assert refused.status_code == 401, path
        assert TOKEN not in refused.text
    assert content(loaded, "first-story")["headline"] != "Hijacked"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.post("/story/first-story/preview", headers=auth, data={"date": "2025-03-02"}).status_code == 403
    ok = guarded.post("/story/first-story/preview", headers=auth, data={"csrf_token": csrf, "date": "2025-03-02",
                                                                        "headline": "H"})
    assert ok.status_code == 200 and ok.json()["ok"]


# ---------------------------------------------------------------------------- pictures


def form_of(page: str, story_id: str) -> dict[str, str]:
    """The editor's form in ``page`` (a story page, or the page a preview or a picture's button answers)."""
    form = page[page.index(f'<form method="post" action="/story/{story_id}/edit"'):]
    form = form[:form.index("</form>")]
    found = {}
    for tag in re.findall(r"<input [^>]*>", form):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        if attributes.get("type") != "file":
            found[attributes["name"]] = html.unescape(attributes.get("value", ""))
    found.update({m.group(1): html.unescape(m.group(2)) for m in re.finditer(
        r'<textarea id="[^"]*" name="([^"]+)" rows="\d+">(.*?)</textarea>', form, re.S)})
    return found


def send(client: TestClient, story_id: str, do: str, form: dict[str, str] | None = None,
         files: dict[str, tuple[str, bytes]] | None = None, **changes: str) -> Any:
    """The editor's form sent as the browser sends it (multipart), with ``files`` chosen in its file inputs."""
    data = {**(form if form is not None else form_of(client.get(f"/story/{story_id}").text, story_id)), **changes,
            "do": do}
    return client.post(f"/story/{story_id}/edit", data=data,
                       files=[(name, (filename, body, "application/octet-stream"))
                              for name, (filename, body) in (files or {}).items()] or None)


def pictured(store: Store, settings, tmp_path: Path, *colors: str, image: str = "", extra: str = "") -> None:
    """Queue the story ``pictured`` with a picture of each of ``colors`` (``c1.png`` …), as a file loads it."""
    items = ", ".join(f"{{path: c{i}.png, alt: Picture {i}}}" for i in range(1, len(colors) + 1))
    for i, color in enumerate(colors, start=1):
        (tmp_path / f"c{i}.png").write_bytes(png(color))
    if image:
        (tmp_path / image).write_bytes(png("olive"))
    path = tmp_path / "pictured.yaml"
    path.write_text("- id: pictured\n  date: 2025-03-05\n  headline: A story with pictures\n"
                    "  url: https://example.com/pictured\n  one_year_later: The coast moved.\n"
                    + (f"  images: [{items}]\n" if colors else "") + (f"  image: {image}\n" if image else "") + extra,
                    encoding="utf-8")
    Planner(store, settings).load(load_stories([path], media=media_policy(settings)), now=NOW)


def refs(store: Store, field: str = "images") -> list[tuple[str, str]]:
    return [(p["ref"], p["alt"]) for p in content(store, "pictured")[field]]


def test_a_picture_uploaded_in_the_editor_is_prepared_stored_and_posted(make_client, store: Store, settings,
                                                                       tmp_path: Path):
    from bot.images import stored_image
    from posts.media import prepare_versions

    pictured(store, settings, tmp_path)
    client = make_client()
    response = send(client, "pictured", "save", files={"images.new.file": ("../../etc/Harbour map.png", png("teal"))},
                    **{"images.new.alt": "The harbour in 2025"})
    assert response.status_code == 200 and "Saved." in response.text, text_of(response.text)[:2000]
    [picture] = content(store, "pictured")["images"]
    assert (picture["ref"], picture["alt"]) == ("Harbour map.png", "The harbour in 2025")  # no folder of the name
    expected = prepare_versions(png("teal"), "Harbour map.png", tuple(settings.platforms))
    assert picture["versions"] == {p: image.sha256 for p, image in expected.items()}  # as `load` prepares it
    with store.session() as session:
        assert stored_image(session, picture["versions"]["bluesky"]) == expected["bluesky"]  # the bytes, stored
    for platform in settings.platforms:
        assert delivery(store, "pictured", platform).pictures == [
            {"sha256": picture["versions"][platform], "alt": "The harbour in 2025"}]
    source, origin, changed = changes(store, "pictured")[-1]
    assert (source, origin) == ("dashboard", "dashboard") and not changed["images"][0]
    shown = re.sub(r"\s+", " ", text_of(response.text))
    assert f"images: (empty) → Harbour map.png #{picture['versions']['x'][:8]} (alt: The harbour in 2025)" in shown


def test_a_picture_chosen_at_a_preview_is_kept_by_the_form_until_saved(make_client, store: Store, settings,
                                                                       tmp_path: Path):
    """Without JavaScript: Preview sends the file; the page comes back with it in the form and the preview."""
    pictured(store, settings, tmp_path)
    client = make_client()
    page = send(client, "pictured", "preview", files={"followup_images.new.file": ("now.png", png("maroon"))},
                **{"followup_images.new.alt": "The coast now"})
    assert page.status_code == 200
    form = form_of(page.text, "pictured")
    assert form["followup_images.1.alt"] == "The coast now" and form["followup_images.1.pic"]
    assert not content(store, "pictured").get("followup_images")  # not saved yet
    shown = re.sub(r"\s+", " ", text_of(page.text[page.text.index('id="preview"'):]))
    assert "alt text 13/1000 characters · 24×16 PNG" in shown  # X's limit, the length counted, the version
    assert "alt text 13/2000 characters" in shown  # Bluesky's
    saved = send(client, "pictured", "save", form)
    assert "Saved." in saved.text
    assert refs(store, "followup_images") == [("now.png", "The coast now")]
    reply = delivery(store, "pictured", "mastodon", "followup")
    assert reply.pictures and reply.pictures[0]["alt"] == "The coast now"


def test_pictures_are_removed_and_moved_with_their_buttons(make_client, store: Store, settings, tmp_path: Path):
    pictured(store, settings, tmp_path, "red", "green", "blue")
    client = make_client()
    versions = [p["versions"] for p in content(store, "pictured")["images"]]
    moved = send(client, "pictured", "down:images.1")
    form = form_of(moved.text, "pictured")
    assert [form[f"images.{i}.alt"] for i in (1, 2, 3)] == ["Picture 2", "Picture 1", "Picture 3"]
    moved = send(client, "pictured", "up:images.3", form)
    form = form_of(moved.text, "pictured")
    assert [form[f"images.{i}.alt"] for i in (1, 2, 3)] == ["Picture 2", "Picture 3", "Picture 1"]
    removed = send(client, "pictured", "remove:images.2", form)
    form = form_of(removed.text, "pictured")
    assert "images.3.pic" not in form and [form["images.1.alt"], form["images.2.alt"]] == ["Picture 2", "Picture 1"]
    assert refs(store) == [("c1.png", "Picture 1"), ("c2.png", "Picture 2"), ("c3.png", "Picture 3")]  # not saved
    assert "Saved." in send(client, "pictured", "save", form).text
    assert refs(store) == [("c2.png", "Picture 2"), ("c1.png", "Picture 1")]
    assert [p["versions"] for p in content(store, "pictured")["images"]] == [versions[1], versions[0]]
    assert [p["sha256"] for p in delivery(store, "pictured", "x").pictures or []] == \
        [versions[1]["x"], versions[0]["x"]]
    _, _, changed = changes(store, "pictured")[-1]
    assert [p["ref"] for p in changed["images"][0]] == ["c1.png", "c2.png", "c3.png"]
    assert [p["ref"] for p in changed["images"][1]] == ["c2.png", "c1.png"]


def test_a_picture_is_replaced_and_its_alt_text_kept_as_edited(make_client, store: Store, settings,
                                                               tmp_path: Path):
    pictured(store, settings, tmp_path, "red", "green")
    client = make_client()
    old = content(store, "pictured")["images"][1]["versions"]
    response = send(client, "pictured", "save", files={"images.2.file": ("yellow.png", png("yellow"))},
                    **{"images.2.alt": "A yellow field"})
    assert "Saved." in response.text
    assert refs(store) == [("c1.png", "Picture 1"), ("yellow.png", "A yellow field")]
    assert content(store, "pictured")["images"][1]["versions"] != old


def test_the_link_card_picture_is_set_replaced_and_removed(make_client, store: Store, settings, tmp_path: Path):
    pictured(store, settings, tmp_path, image="card.png")
    client = make_client()
    assert content(store, "pictured")["image"] == "card.png"
    assert "Saved." in send(client, "pictured", "save", files={"image.file": ("new card.png", png("purple"))}).text
    stored = content(store, "pictured")
    assert stored["image"] == "new card.png" and stored["image_sha256"]
    assert delivery(store, "pictured", "bluesky").attachments == {"thumb": stored["image_sha256"]}
    removed = send(client, "pictured", "remove:image")
    form = form_of(removed.text, "pictured")
    assert "image.pic" not in form
    assert "Saved." in send(client, "pictured", "save", form).text
    stored = content(store, "pictured")
    assert not stored.get("image") and not stored.get("image_sha256")
    assert not delivery(store, "pictured", "bluesky").attachments


def test_bad_pictures_are_refused_with_the_loaders_messages_and_the_form_kept(make_client, store: Store,
                                                                              web_settings, tmp_path: Path):
    settings = web_settings(media_max_bytes=2000)
    pictured(store, settings, tmp_path, "red", "green", "blue", "white")
    client = make_client(settings_=settings)
    before = content(store, "pictured")
    bad = send(client, "pictured", "save", files={"images.2.file": ("notes.png", b"just some text")},
               headline="A new headline")
    assert bad.status_code == 422, re.sub(r"\s+", " ", text_of(bad.text))[:3000]
    assert "images[2]: image 'notes.png' is not a PNG, JPEG, GIF or WebP image" in text_of(bad.text)
    form = form_of(bad.text, "pictured")
    assert form["headline"] == "A new headline" and form["images.2.alt"] == "Picture 2"  # the form as it was
    noise = io.BytesIO()
    PILImage.frombytes("RGB", (64, 64), random.Random(7).randbytes(64 * 64 * 3)).save(noise, "PNG")
    big = send(client, "pictured", "save", files={"images.1.file": ("noise.png", noise.getvalue())})
    assert big.status_code == 422 and "images[1]: image 'noise.png' is larger than 2,000 bytes" in text_of(big.text)
    fifth = send(client, "pictured", "save", files={"images.new.file": ("fifth.png", png("black"))},
                 **{"images.new.alt": "One too many"})
    assert fifth.status_code == 422 and "images has 5 pictures; a post shows at most 4" in text_of(fifth.text)
    assert [k for k in form_of(fifth.text, "pictured") if k.endswith(".pic")] == [f"images.{i}.pic" for i in range(1, 5)]
    frames = [PILImage.new("RGB", (8, 8), c) for c in ("red", "blue")]
    moving = io.BytesIO()
    frames[0].save(moving, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    animated = send(client, "pictured", "save", files={"images.1.file": ("moving.gif", moving.getvalue())})
    assert "images[1]: image 'moving.gif' is animated and not the post's only picture" in text_of(animated.text)
    assert content(store, "pictured") == before  # nothing saved


def test_an_upload_past_the_file_limit_is_refused_as_it_streams_in(make_client, store: Store, settings,
                                                                   tmp_path: Path, monkeypatch):
    from bot.web import app as web_app

    pictured(store, settings, tmp_path, "red")
    monkeypatch.setattr(web_app, "MAX_UPLOAD_FILE_BYTES", 50_000)
    client = make_client()
    response = send(client, "pictured", "save", files={"images.new.file": ("huge.png", b"\0" * 60_000)})
    assert response.status_code == 413 and "'huge.png' is larger than" in text_of(response.text)
    assert refs(store) == [("c1.png", "Picture 1")]


def test_every_file_input_of_a_full_form_may_be_sent_empty(make_client, store: Store, settings, tmp_path: Path):
    """A browser sends each file input, chosen or not: with 4 pictures in both fields that is 9 of them."""
    pictured(store, settings, tmp_path, "red", "green", "blue", "white")
    client = make_client()
    page = client.get("/story/pictured").text
    form = form_of(page, "pictured")
    inputs = re.findall(r'type="file" name="([^"]+)"', page[page.index('id="edit"'):])
    assert len(inputs) == 1 + 4 + 1  # the link card picture, each picture's Replace, the reveal's Add
    empty = [*inputs, *(f"followup_images.{i}.file" for i in range(1, 5)), "images.new.file"]
    boundary = "----formboundary7MA4YWxk"
    parts = [f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'
             for name, value in {**form, "do": "save"}.items()]
    parts += [f'Content-Disposition: form-data; name="{name}"; filename=""\r\n'  # as a browser sends it
              "Content-Type: application/octet-stream\r\n\r\n" for name in empty]
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    response = client.post("/story/pictured/edit", content=body.encode(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200 and "Nothing changed" in response.text, text_of(response.text)[:500]


def test_a_picture_the_dashboard_did_not_prepare_is_refused(make_client, store: Store, settings, tmp_path: Path):
    from bot.web.editor import picture_token

    pictured(store, settings, tmp_path, "red")
    client = make_client()
    form = form_of(client.get("/story/pictured").text, "pictured")
    forged = picture_token(b"another key", "other.png", {"x": "0" * 64})
    refused = send(client, "pictured", "save", form, **{"images.1.pic": forged})
    assert refused.status_code == 422
    assert "images[1] is not a picture this dashboard prepared" in text_of(refused.text)
    refused = send(client, "pictured", "save", form, **{"image.pic": forged})
    assert refused.status_code == 422 and "image is not a picture this dashboard prepared" in text_of(refused.text)
    # a page opened before the dashboard restarted (another key) still names the story's own pictures
    restarted = make_client()
    form["csrf_token"] = csrf_of(restarted, "/story/pictured")
    assert "Saved." in send(restarted, "pictured", "save", form, **{"images.1.alt": "Red"}).text
    assert refs(store) == [("c1.png", "Red")]


def test_a_kept_picture_must_have_a_version_for_every_platform_of_the_story(make_client, store: Store, settings,
                                                                            tmp_path: Path):
    pictured(store, settings, tmp_path, "red", extra="  platforms: [x]\n")
    client = make_client()
    refs_before = content(store, "pictured")["images"]
    form = form_of(client.get("/story/pictured").text, "pictured")
    refused = send(client, "pictured", "save", form, platforms="x, bluesky")  # the picture was kept for X only
    assert refused.status_code == 422
    assert "images[1] ('c1.png') was prepared without Bluesky" in text_of(refused.text)
    replaced = send(client, "pictured", "save", form_of(refused.text, "pictured"),
                    files={"images.1.file": ("c1.png", png("red"))})
    assert "Saved." in replaced.text  # chosen again: prepared for both
    assert set(content(store, "pictured")["images"][0]["versions"]) == {"x", "bluesky"} != \
        set(refs_before[0]["versions"])


def test_a_picture_upload_needs_the_csrf_token(make_client, store: Store, settings, tmp_path: Path):
    pictured(store, settings, tmp_path)
    client = make_client()
    form = {k: v for k, v in form_of(client.get("/story/pictured").text, "pictured").items() if k != "csrf_token"}
    response = send(client, "pictured", "save", form, files={"images.new.file": ("a.png", png())},
                    **{"images.new.alt": "A"})
    assert response.status_code == 403 and not content(store, "pictured").get("images")


def test_the_preview_draws_the_story_card_once_per_headline(make_client, store: Store, web_settings,
                                                            tmp_path: Path, monkeypatch):
    from bot.sources import card
    from bot.web import editor

    settings = web_settings(story_card="true")
    pictured(store, settings, tmp_path)
    editor._card.cache_clear()
    drawn = []
    real = card.story_card
    monkeypatch.setattr(card, "story_card", lambda story: drawn.append(story.headline) or real(story))
    client = make_client(settings_=settings)
    first = preview(client, "pictured", headline="A card drawn once")
    again = preview(client, "pictured", headline="A card drawn once", summary="Only the summary changed")
    assert drawn == ["A story with pictures", "A card drawn once"]  # the page's form, then the edit: once each
    assert part(first, "x", "root")["pictures"] == part(again, "x", "root")["pictures"]
    assert part(first, "x", "root")["pictures"][0]["alt"] == "A card drawn once"
    preview(client, "pictured", headline="Another headline")
    assert drawn[2:] == ["Another headline"]  # what the card shows changed: drawn again
    same = send(client, "pictured", "save")
    assert "Nothing changed" in same.text, changes(store, "pictured")[-1]  # the card the preview drew is load's
    added = send(client, "pictured", "save", files={"images.new.file": ("own.png", png("teal"))},
                 **{"images.new.alt": "A picture of its own"})
    assert "Saved." in added.text and refs(store) == [("own.png", "A picture of its own")]  # in the card's place
    removed = send(client, "pictured", "save", form_of(send(client, "pictured", "remove:images.1").text, "pictured"))
    assert "Saved." in removed.text and refs(store) == [("(story card)", "A story with pictures")]  # the card again


def test_a_story_at_its_longest_in_any_script_is_previewed_and_saved(client: TestClient, loaded: Store):
    """Every field the loader takes at its longest must fit the form the editor posts, however it is encoded:
    a body of 100,000 Cyrillic characters is 1.2 MB URL-encoded (each UTF-8 byte written %XX)."""
    from posts.limits import MAX_FIELD_CHARS

    body = ("Ж" * 99 + "\n") * (MAX_FIELD_CHARS["body"] // 100)
    summary = "Щ" * MAX_FIELD_CHARS["summary"]
    answer = preview(client, "first-story", body=body, summary=summary)
    assert not answer.get("problems"), answer.get("problems")
    response = edit(client, "first-story", body=body, summary=summary)
    assert response.status_code == 200, response.text[:300]
    assert "Saved." in response.text
    assert content(loaded, "first-story")["summary"] == summary
    too_long = edit(client, "first-story", summary=summary + "Щ")
    assert too_long.status_code == 422 and "summary" in too_long.text  # the loader's limit, not the form's
