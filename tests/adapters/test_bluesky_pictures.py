"""Pictures on the real local Bluesky server: blobs uploaded, ``app.bsky.embed.images`` with alt text and
aspect ratio, the story's link kept as a facet, one post after a lost answer, a dropped blob uploaded again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage

from adapters.base import Outgoing, Uploaded
from adapters.bluesky import BlueskyAdapter
from adapters.tid import next_tid
from bot.wiring import bluesky_config
from posts.errors import MediaGone
from posts.media import Image, Picture
from posts.render import bluesky_record
from tests.adapters.bluesky_fixtures import (  # noqa: F401 - fixtures
    BlueskyTarget,
    bluesky_account,
    bluesky_pds,
    bluesky_settings,
    bluesky_target,
    server_records,
)
from tests.adapters.test_bluesky import CREATE, UPLOAD, behind_proxy, proxy  # noqa: F401 - fixtures
from tests.pds_harness import Account, LocalPDS
from tests.standins.bluesky_proxy import FaultProxy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALTS = ["The bridge in scaffolding, cranes on both banks", "A map of the river crossing"]


def _pictures(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (640, 480), (200, 40, 40)).save(folder / "then.jpg", quality=90)
    PILImage.new("RGB", (300, 120), (20, 90, 200)).save(folder / "map.png")
    PILImage.new("RGB", (400, 400), (30, 160, 60)).save(folder / "now.png")
    story = {"id": "s1", "date": "2025-03-01T12:00:00+00:00", "headline": "The first photo of the new bridge",
             "url": "https://example.com/bridge", "one_year_later": "It opened in June, two months late.",
             "images": [{"path": "then.jpg", "alt": ALTS[0]}, {"path": "map.png", "alt": ALTS[1]}],
             "followup_images": [{"path": "now.png", "alt": "The finished bridge with traffic"}]}
    path = folder / "s.jsonl"
    path.write_text(json.dumps(story) + "\n")
    return path


def _run(settings: Any, path: Path, moments: list[dt.datetime]) -> Any:
    from bot.engine import Engine
    from bot.planner import Planner
    from bot.sources.stories import load_stories
    from bot.store import Store

    store = Store(settings.database_url)
    clock = {"t": NOW - dt.timedelta(days=1)}
    try:
        (loaded,) = load_stories([path])
        Planner(store, settings).load([loaded], now=clock["t"])
        engine = Engine(store, {"bluesky": BlueskyAdapter(bluesky_config(settings))}, settings,
                        clock=lambda: clock["t"], worker="test")
        for moment in moments:
            clock["t"] = moment
            engine.run_once(moment)
    finally:
        store.dispose()
    return loaded


@pytest.mark.pds
def test_a_story_with_pictures_goes_out_with_its_blobs_alt_text_and_aspect_ratio(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account)
    follow = NOW + settings.followup_delay
    loaded = _run(settings, _pictures(tmp_path / "stories"), [NOW, follow, follow + dt.timedelta(minutes=1)])
    records = server_records(bluesky_pds.url, bluesky_account.did)
    (root,) = [r for r in records if "reply" not in r["value"]]
    (reply,) = [r for r in records if "reply" in r["value"]]
    embed = root["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == ALTS
    by_sha = {i.sha256: i for i in loaded.prepared_pictures}
    for item, story_image in zip(embed["images"], loaded.images, strict=True):
        prepared = by_sha[story_image.versions["bluesky"]]
        assert item["aspectRatio"] == {"width": prepared.width, "height": prepared.height}
        assert item["image"]["size"] == prepared.size and item["image"]["mimeType"] == prepared.mime
        blob = httpx.get(f"{bluesky_pds.url}/xrpc/com.atproto.sync.getBlob",
                         params={"did": bluesky_account.did, "cid": item["image"]["ref"]["$link"]})
        assert blob.content == prepared.data  # the bytes prepared at load, byte for byte
    # one embed per post: no link card, and the story's link is a facet in the text
    assert any(f["features"][0].get("uri") == "https://example.com/bridge" for f in root["value"]["facets"])
    assert [i["alt"] for i in reply["value"]["embed"]["images"]] == ["The finished bridge with traffic"]
    assert reply["value"]["reply"]["root"]["uri"] == root["uri"]


@pytest.mark.pds
def test_a_post_with_pictures_whose_answer_was_lost_is_posted_once(
        behind_proxy: BlueskyTarget, proxy: FaultProxy, tmp_path: Path) -> None:  # noqa: F811
    path = _pictures(tmp_path / "stories")
    proxy.drop_next(CREATE)
    _run(behind_proxy.settings, path, [NOW + dt.timedelta(minutes=m) for m in (0, 1, 5, 30)])
    assert ("POST", CREATE, "dropped") in proxy.log
    roots = [r for r in behind_proxy.records() if "reply" not in r["value"]]
    assert len(roots) == 1 and [i["alt"] for i in roots[0]["value"]["embed"]["images"]] == ALTS
    assert proxy.counts[CREATE] == 1 and proxy.counts[UPLOAD] == 2


@pytest.mark.pds
def test_a_blob_the_server_does_not_have_is_media_gone_and_nothing_is_posted(
        bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    adapter = bluesky_target.adapter
    image = Image.of(b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png", 1, 1)
    uploaded = adapter.upload(Picture(_png(), "A dot"))
    assert uploaded.ref["blob"]["$type"] == "blob" and uploaded.expires_at is not None
    gone = {"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
            "mimeType": "image/png", "size": image.size}
    payload = bluesky_record("Pictures from the archive", lang="en", created_at="2026-03-01T12:00:00.000Z")
    post = Outgoing("bluesky", "s1", "root", 1, payload, next_tid(), pictures=(Picture(image, "gone"),),
                    media=(Uploaded(image.sha256, {"blob": gone}),))
    with pytest.raises(MediaGone):
        adapter.publish(post)
    assert bluesky_target.records() == []


def _png() -> Image:
    import io

    out = io.BytesIO()
    PILImage.new("RGB", (8, 6), (1, 2, 3)).save(out, "PNG")
    return Image.of(out.getvalue(), "image/png", 8, 6)
