"""The story page shows each post's pictures with their alt text and the size each platform is sent,
and serves exactly the bytes stored with the queue (nothing else)."""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from PIL import Image as PILImage

from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.store import Store
from tests.web.helpers import NOW


def _load(tmp_path: Path, store: Store, settings) -> object:
    folder = tmp_path / "pics"
    folder.mkdir()
    PILImage.new("RGB", (2600, 1300), (200, 40, 40)).save(folder / "wide.jpg", quality=95)
    PILImage.new("RGB", (300, 200), (20, 90, 200)).save(folder / "map.png")
    (folder / "s.json").write_text(json.dumps([{
        "id": "pics", "date": "2025-12-20T12:00:00+00:00", "headline": "Bridge photos", "url": "https://example.com/b",
        "one_year_later": "It opened.",
        "images": [{"path": "wide.jpg", "alt": "The bridge <in> scaffolding & cranes"},
                   {"path": "map.png", "alt": "A map of the crossing"}]}]))
    (story,) = load_stories([folder / "s.json"])
    Planner(store, settings).load([story], now=NOW)
    return story


def test_the_story_page_shows_every_picture_with_its_alt_text_and_size_per_platform(tmp_path, store, settings,
                                                                                    make_client):
    story = _load(tmp_path, store, settings)
    page = make_client().get("/story/pics")
    assert page.status_code == 200
    text = page.text
    alt = html.escape("The bridge <in> scaffolding & cranes")
    posts, editor = text[:text.index('id="edit"')], text[text.index('id="edit"'):]
    assert posts.count(f'alt="{alt}"') == 4  # the root of each of the four platforms
    assert editor.count(f'alt="{alt}"') == 4  # and again in the editor's preview of them
    for platform in ("x", "bluesky"):
        sha = story.images[0].versions[platform]
        assert f'src="/media/{sha}"' in text
    assert "2000×1000 JPEG" in text and "2600×1300 JPEG" in text  # Bluesky's smaller version, X's full one
    assert "<in>" not in text


def test_a_picture_is_served_as_stored_and_nothing_else_is(tmp_path, store, settings, make_client):
    story = _load(tmp_path, store, settings)
    client = make_client()
    by_sha = {i.sha256: i for i in story.prepared_pictures}
    sha = story.images[1].versions["reddit"]
    answer = client.get(f"/media/{sha}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content == by_sha[sha].data and hashlib.sha256(answer.content).hexdigest() == sha
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/media/{'0' * 64}").status_code == 404
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/media/" + sha.upper()).status_code == 404
