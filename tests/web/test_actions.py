"""Retry, skip and upload through the dashboard: they change the store only with a valid CSRF token."""

from __future__ import annotations

import dataclasses
import html
import re
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.routing import Route
from starlette.testclient import TestClient

from bot import ops
from bot.models import DeliveryRow, StoryRow
from bot.models import DeliveryStatus as S
from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.store import Store
from posts.errors import BotError, NotFound, StoryError
from tests.web.helpers import NOW, STORIES, csrf_of, delivery, set_status


def count(store: Store, model: type) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# ---------------------------------------------------------------------------- retry / skip


def test_retry_puts_a_failed_delivery_back_in_the_queue(client: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="x: rejected: duplicate content")
    token = csrf_of(client, f"/retry/%23{row.id}")
    done = client.post(f"/retry/%23{row.id}", data={"csrf_token": token, "next": "/status"})
    assert done.status_code == 200
    assert "Queued again" in done.text and 'href="/status"' in done.text
    after = delivery(loaded, "first-story", "x")
    assert after.status == S.PENDING.value
    assert after.last_error.startswith("retry asked by the operator")
    assert delivery(loaded, "first-story", "reddit").status == S.PENDING.value  # untouched


def test_retry_a_story_on_one_platform(client: TestClient, loaded: Store):
    for platform in ("x", "bluesky"):
        set_status(loaded, delivery(loaded, "second-story", platform).id, S.MISSED.value, error="late")
    page = client.get("/retry/second-story")
    assert '<option value="bluesky">Bluesky</option>' in page.text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    client.post("/retry/second-story", data={"csrf_token": token, "platform": "bluesky"})
    assert delivery(loaded, "second-story", "bluesky").status == S.PENDING.value
    assert delivery(loaded, "second-story", "x").status == S.MISSED.value


def test_retry_of_nothing_retryable_is_a_clear_error(client: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    response = client.post(f"/retry/%23{row.id}", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 400
    assert "nothing to retry" in response.text


def test_an_unknown_story_or_delivery_is_a_404_chosen_by_the_error_type(client: TestClient, loaded: Store):
    with pytest.raises(NotFound):
        ops.story(loaded, "no-such-story")
    with loaded.session() as session, pytest.raises(NotFound):
        ops.deliveries_for(session, "#9999")
    with loaded.session() as session, pytest.raises(BotError) as malformed:
        ops.deliveries_for(session, "#abc")
    assert not isinstance(malformed.value, NotFound)
    token = csrf_of(client)
    unknown_delivery = client.post("/retry/%239999", data={"csrf_token": token})
    assert unknown_delivery.status_code == 404 and "no delivery #9999" in unknown_delivery.text
    unknown_story = client.post("/skip/no-such-story", data={"csrf_token": token})
    assert unknown_story.status_code == 404 and "no story" in unknown_story.text
    malformed_page = client.get("/retry/%23abc")
    assert malformed_page.status_code == 400 and "is not a delivery id" in html.unescape(malformed_page.text)
    assert client.get("/retry/%239999").status_code == 404
    nothing = client.post("/skip/%23{}".format(delivery(loaded, "first-story", "x").id), data={"csrf_token": token})
    assert nothing.status_code == 400 and "skip takes a story id" in html.unescape(nothing.text)


def test_skip_marks_the_storys_unsent_deliveries_skipped(client: TestClient, loaded: Store):
    posted = delivery(loaded, "first-story", "x")
    set_status(loaded, posted.id, S.POSTED.value, remote_url="https://x.com/a/status/1")
    done = client.post("/skip/first-story", data={"csrf_token": csrf_of(client, "/skip/first-story")})
    assert done.status_code == 200 and "Skipped" in done.text
    with loaded.session() as session:
        statuses = dict(session.execute(select(DeliveryRow.id, DeliveryRow.status)
                                        .where(DeliveryRow.story_id == "first-story")).all())
    assert statuses.pop(posted.id) == S.POSTED.value
    assert set(statuses.values()) == {S.SKIPPED.value}
    assert delivery(loaded, "second-story", "x").status == S.PENDING.value


def test_a_story_not_rendered_yet_can_be_skipped(make_client, store: Store, settings, story_file):
    """Big loads defer rendering: such a story has no deliveries yet, and its skip page still works."""
    Planner(store, settings).load(load_stories([story_file]), now=NOW, render=False)
    client = make_client()
    with store.session() as session:
        assert not session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == "first-story")).all()
    confirm = client.get("/skip/first-story")
    assert confirm.status_code == 200 and "None of the story" in confirm.text
    with store.session() as session:  # asking changes nothing
        assert not session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == "first-story")).all()
    done = client.post("/skip/first-story", data={"csrf_token": csrf_of(client, "/skip/first-story")})
    assert done.status_code == 200 and "Skipped" in done.text
    with store.session() as session:
        statuses = set(session.scalars(select(DeliveryRow.status).where(DeliveryRow.story_id == "first-story")))
    assert statuses == {S.SKIPPED.value}


@pytest.mark.parametrize("data", [{}, {"csrf_token": ""}, {"csrf_token": "0" * 64}])
def test_retry_and_skip_without_a_valid_csrf_token_are_refused(client: TestClient, loaded: Store, data):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="boom")
    csrf_of(client)  # the browser has its csrf cookie, but the form does not carry the matching token
    assert client.post(f"/retry/%23{row.id}", data=data).status_code == 403
    refused = client.post("/skip/first-story", data=data)
    assert refused.status_code == 403 and "security token" in refused.text
    assert delivery(loaded, "first-story", "x").status == S.FAILED.value
    assert delivery(loaded, "first-story", "reddit").status == S.PENDING.value


def test_a_token_from_another_browser_is_refused(make_client, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="boom")
    attacker, victim = make_client(), make_client()
    stolen = csrf_of(attacker)
    csrf_of(victim)
    assert victim.post(f"/retry/%23{row.id}", data={"csrf_token": stolen}).status_code == 403
    assert delivery(loaded, "first-story", "x").status == S.FAILED.value


def test_the_csrf_token_may_come_in_a_header(client: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="boom")
    response = client.post(f"/retry/%23{row.id}", headers={"X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 200
    assert delivery(loaded, "first-story", "x").status == S.PENDING.value


def test_every_post_route_requires_the_csrf_token(client: TestClient, loaded: Store):
    csrf_of(client)
    posts = [r for r in client.app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert {r.path for r in posts} == {"/upload", "/retry/{target:str}", "/skip/{story_id:str}", "/login",
                                       "/logout", "/story/{story_id:str}/edit", "/story/{story_id:str}/preview",
                                       "/story/{story_id:str}/approve",
                                       "/use-archive/{story_id:str}", "/conversation/seen", "/hide"}
    for route in posts:
        path = route.path.replace("{target:str}", "first-story").replace("{story_id:str}", "first-story")
        assert client.post(path, data={"token": "x"}).status_code == 403, path
    assert count(loaded, StoryRow) == 3


def test_get_never_changes_anything(client: TestClient, loaded: Store):
    assert client.get("/skip/first-story").status_code == 200
    assert client.request("DELETE", "/skip/first-story").status_code == 405
    assert delivery(loaded, "first-story", "x").status == S.PENDING.value


# ---------------------------------------------------------------------------- upload


def upload(client: TestClient, *files: tuple[str, str], dry_run: bool = False, force: bool = False):
    data = {"csrf_token": csrf_of(client)}
    if dry_run:
        data["dry_run"] = "1"
    if force:
        data["force"] = "1"
    return client.post("/upload", data=data,
                       files=[("files", (name, text.encode(), "application/octet-stream")) for name, text in files])


BAD = """\
- id: good-one
  date: 2025-05-01
  headline: A valid story
- id: bad-date
  date: 2025-13-45
  headline: Bad date
- id: bad-field
  date: 2025-05-02
  headlin: Typo in a field
  url: not a url
"""


def test_upload_of_an_invalid_file_lists_every_problem_with_file_and_line_and_loads_nothing(
        make_client, store: Store, tmp_path: Path):
    client = make_client()
    response = upload(client, ("mine.yaml", BAD))
    assert response.status_code == 422
    html = response.text
    assert "nothing was loaded" in html
    assert "<code>mine.yaml:4</code>" in html and "<code>mine.yaml:7</code>" in html
    assert "is not a valid date" in html
    assert "unknown field &#39;headlin&#39;" in html and "did you mean &#39;headline&#39;?" in html
    assert "headline is required" in html
    assert "oneyearago-upload-" not in html  # the temporary copy is never shown
    assert count(store, StoryRow) == 0 and count(store, DeliveryRow) == 0
    # exactly the problems `load` reports for the same file
    (tmp_path / "mine.yaml").write_text(BAD)
    with pytest.raises(StoryError) as exc:
        load_stories([tmp_path / "mine.yaml"])
    for problem in exc.value.problems:
        assert f"<code>mine.yaml:{problem.line}</code>" in html
        assert problem.message.replace("'", "&#39;") in html


def test_upload_with_one_invalid_file_among_valid_ones_loads_nothing(make_client, store: Store):
    response = upload(make_client(), ("good.yaml", STORIES), ("bad.json", '[{"id": "x", "date": "2025-01-01"}]'))
    assert response.status_code == 422
    assert "<code>bad.json:1</code>" in response.text
    assert count(store, StoryRow) == 0


def test_upload_of_an_unknown_file_type_is_a_problem(make_client, store: Store):
    response = upload(make_client(), ("notes.txt", "hello"))
    assert response.status_code == 422
    assert "notes.txt:0" in response.text and "unknown story file type" in response.text


def test_upload_of_a_valid_file_loads_it_as_load_does(make_client, store: Store):
    client = make_client()
    response = upload(client, ("stories.yaml", STORIES))
    assert response.status_code == 200
    assert "Loaded 3 stories" in response.text and "3 new" in response.text
    assert 'href="/story/first-story"' in response.text
    assert count(store, StoryRow) == 3
    assert count(store, DeliveryRow) == 8 + 8 + 4  # two stories with 2 posts on 4 platforms, one without a follow-up
    with store.session() as session:
        assert session.get(StoryRow, "first-story").origin == "stories.yaml:1"
    again = upload(client, ("stories.yaml", STORIES))  # loading again changes nothing
    assert "0 new, 0 updated, 3 unchanged" in again.text
    assert "first-story" in client.get("/").text


def test_an_upload_over_a_dashboard_edit_says_what_to_do_here_and_can_replace_it(make_client, store: Store,
                                                                                 settings):
    """The refusal names what the dashboard offers (not a command with a file on this server), and
    "Replace dashboard edits" loads the uploaded version as `load --force` does."""
    from bot.planner import Planner
    from bot.web.app import UPLOAD_EDIT_HINT
    from posts.story import Story

    client = make_client()
    assert upload(client, ("stories.yaml", STORIES)).status_code == 200
    with store.session() as session:
        first = Story.from_content(session.get(StoryRow, "first-story").content)
    Planner(store, settings).load([dataclasses.replace(first, one_year_later="Written in the browser")],
                                  now=NOW, source="dashboard")
    changed = STORIES.replace("A short summary of what happened.", "A changed summary.", 1)
    assert changed != STORIES
    refused = upload(client, ("stories.yaml", changed))
    assert refused.status_code == 422 and "was edited in the dashboard" in refused.text
    assert "export --from" not in refused.text and "Replace dashboard edits" in refused.text
    assert "to keep it in your file too, copy it from the story" in refused.text
    assert "to keep it in your file too, copy it from the story" in UPLOAD_EDIT_HINT
    forced = upload(client, ("stories.yaml", changed), force=True)
    assert forced.status_code == 200 and "1 updated" in forced.text
    with store.session() as session:
        assert "Written in the browser" not in str(session.get(StoryRow, "first-story").content)


def test_an_unchanged_upload_leaves_the_story_files_path_as_its_origin(make_client, store: Store, settings,
                                                                          tmp_path: Path):
    """A load from a file on this machine records its path (``export`` finds the file and its pictures by
    it); uploading the same stories unchanged names no path here, so it leaves that origin alone."""
    (tmp_path / "stories.yaml").write_text(STORIES)
    Planner(store, settings).load(load_stories([tmp_path / "stories.yaml"]), now=NOW)
    response = upload(make_client(), ("stories.yaml", STORIES))
    assert "0 new, 0 updated, 3 unchanged" in response.text
    with store.session() as session:
        assert session.get(StoryRow, "first-story").origin == f"{tmp_path / 'stories.yaml'}:1"


def test_upload_dry_run_writes_nothing(make_client, store: Store):
    response = upload(make_client(), ("stories.yaml", STORIES), dry_run=True)
    assert "Would load 3 stories" in response.text and "Dry run: nothing was written." in response.text
    assert count(store, StoryRow) == 0


def test_upload_of_other_formats(make_client, store: Store):
    md = "---\nid: md-story\ndate: 2025-06-01\nheadline: From Markdown\n---\nThe body.\n"
    csv = "id,date,headline\ncsv-story,2025-06-02,From CSV\n"
    response = upload(make_client(), ("a.md", md), ("b.csv", csv))
    assert response.status_code == 200, response.text
    assert count(store, StoryRow) == 2


def test_upload_without_a_file_asks_for_one(make_client):
    client = make_client()
    response = client.post("/upload", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 400 and "Choose at least one story file" in response.text


def test_upload_file_names_cannot_escape_the_temporary_folder(make_client, store: Store):
    response = upload(make_client(), ("../../evil.yaml", STORIES))
    assert response.status_code == 200
    with store.session() as session:
        assert session.get(StoryRow, "first-story").origin == "evil.yaml:1"


def test_an_upload_too_large_is_refused(make_client, store: Store, monkeypatch):
    from bot.web import app as web_app

    monkeypatch.setattr(web_app, "MAX_UPLOAD_BYTES", 100)
    response = upload(make_client(), ("stories.yaml", STORIES))
    assert response.status_code == 413 and "larger than" in response.text
    assert count(store, StoryRow) == 0


def test_upload_of_a_file_name_over_255_bytes_is_a_clear_400(make_client, store: Store):
    for name in ("a" * 300 + ".yaml", "é" * 128 + ".yaml"):  # 305 and 261 bytes
        response = upload(make_client(), (name, STORIES))
        assert response.status_code == 400
        assert "is longer than 255 bytes; rename the file and upload it again" in html_text(response)
        assert "oneyearago-upload-" not in response.text and "/tmp" not in response.text
    assert upload(make_client(), ("a" * 250 + ".yaml", STORIES)).status_code == 200  # 255 bytes


def test_upload_of_the_same_file_twice_names_it_and_never_a_server_path(make_client, store: Store):
    response = upload(make_client(), ("stories.yaml", STORIES), ("stories.yaml", STORIES))
    assert response.status_code == 422
    text = html_text(response)
    assert "the id 'first-story' is already used at stories.yaml:1" in text
    assert "oneyearago-upload-" not in text and "/tmp" not in text and tempfile.gettempdir() not in text


def test_upload_keeps_file_names_as_sent(make_client, store: Store):
    response = upload(make_client(), (".yaml", STORIES))
    text = html_text(response)
    assert response.status_code == 422 and ".yaml:0" in text and " yaml:" not in text
    assert upload(make_client(), ("folder\\.hidden.yaml", STORIES)).status_code == 200


@pytest.mark.parametrize("name", ["..", "."])
def test_upload_of_a_name_that_is_a_folder_is_refused(make_client, store: Store, name: str):
    response = upload(make_client(), (name, STORIES))
    assert response.status_code == 400 and "is not a file name" in html_text(response)


def html_text(response) -> str:
    return html.unescape(response.text)
