"""Pictures with alt text: loaded and prepared per platform, carried by the deliveries, uploaded before
the post by the engine, and sent exactly once whatever fails (in-memory platforms on a simulated clock)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from bot.engine import Engine
from bot.models import DeliveryRow
from bot.sources.images import MediaPolicy
from bot.sources.stories import load_stories
from posts.errors import OutcomeUnknown, RateLimited, StoryError, Transient
from posts.media import PROFILES, prepare_versions
from posts.render import render

UTC = dt.UTC
ROOT_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FOLLOW_AT = ROOT_AT + dt.timedelta(hours=6)


def picture(path: Path, size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (200, 40, 40),
            exif: bytes | None = None) -> Path:
    image = PILImage.new("RGB", size, colour)
    for x in range(0, size[0], 7):  # some detail, so that JPEG sizes differ from picture to picture
        image.putpixel((x, (x * 13) % size[1]), (x % 255, 255 - x % 255, 90))
    kwargs = {"exif": exif} if exif else {}
    image.save(path, "JPEG" if path.suffix == ".jpg" else "PNG", **kwargs)
    return path


def story_file(tmp_path: Path, images: list[dict] | None = None, followup_images: list[dict] | None = None,
               **fields: object) -> Path:
    record: dict[str, object] = {"id": "pics", "date": "2025-03-01T12:00:00+00:00",
                                 "headline": "The first photo of the new bridge",
                                 "url": "https://example.com/bridge", "one_year_later": "It opened in June."}
    record.update(fields)
    if images is not None:
        record["images"] = images
    if followup_images is not None:
        record["followup_images"] = followup_images
    path = tmp_path / "stories.json"
    path.write_text(json.dumps([record]))
    return path


@pytest.fixture
def two_pictures(tmp_path: Path) -> Path:
    picture(tmp_path / "then.jpg")
    picture(tmp_path / "map.png", (300, 200), (20, 90, 200))
    picture(tmp_path / "now.jpg", (800, 600), (30, 160, 60))
    return story_file(tmp_path, [{"path": "then.jpg", "alt": "The bridge in scaffolding"},
                                 {"path": "map.png", "alt": "A map of the river crossing"}],
                      [{"path": "now.jpg", "alt": "The finished bridge with traffic"}])


def media_of(store, **where) -> list[DeliveryRow]:
    with store.session() as session:
        stmt = select(DeliveryRow).order_by(DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part)
        for key, value in where.items():
            stmt = stmt.where(getattr(DeliveryRow, key) == value)
        return list(session.scalars(stmt))


def at(engine: Engine, clock: dict, when: dt.datetime):
    clock["t"] = when
    return engine.run_once(when)


# -- loading ---------------------------------------------------------------------------------


def test_pictures_load_with_their_alt_text_and_a_version_for_each_platform(two_pictures):
    story = load_stories([two_pictures])[0]
    assert [(i.ref, i.alt) for i in story.images] == [("then.jpg", "The bridge in scaffolding"),
                                                      ("map.png", "A map of the river crossing")]
    assert [i.alt for i in story.followup_images] == ["The finished bridge with traffic"]
    assert all(set(i.versions) == set(PROFILES) for i in story.images + story.followup_images)
    by_sha = {i.sha256: i for i in story.prepared_pictures}
    for image in story.images + story.followup_images:
        for platform, sha in image.versions.items():
            assert by_sha[sha].size <= PROFILES[platform].max_bytes


@pytest.mark.parametrize(("images", "message"), [
    ([{"path": "then.jpg"}], "images[1] ('then.jpg') has no alt text"),
    ([{"path": "then.jpg", "alt": "  "}], "has no alt text"),
    ([{"path": "then.jpg", "alt": "x"}] * 5, "has 5 pictures; a post shows at most 4"),
    ([{"path": "then.jpg", "alt": "x" * 1001}], "X's alt text holds at most 1,000"),
    ([{"path": "then.jpg", "alt": "ok", "caption": "no"}], "unknown field 'caption'"),
    (["then.jpg"], "must be a mapping with path (or url) and alt"),
    ([{"path": "missing.jpg", "alt": "ok"}], "images[1]: image file 'missing.jpg' does not exist"),
    ([{"path": "../then.jpg", "alt": "ok"}], "leaves"),
    ([{"url": "http://127.0.0.1/x.png", "alt": "ok"}], "loopback"),
    ([{"url": "then.jpg", "alt": "ok"}], "is not an http(s) address"),
])
def test_a_bad_picture_is_a_load_error_naming_the_file_and_line(tmp_path, images, message):
    picture(tmp_path / "then.jpg")
    path = story_file(tmp_path, images)
    with pytest.raises(StoryError) as caught:
        load_stories([path])
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:1: pics: ")
    assert message in problems[0], problems[0]
    assert problems[0].endswith(")") and " (" in problems[0].split(message, 1)[1]  # a hint follows


def test_a_reddit_gallery_holds_captions_of_180_characters_and_inline_posts_longer(tmp_path):
    picture(tmp_path / "then.jpg")
    path = story_file(tmp_path, [{"path": "then.jpg", "alt": "a" * 181}])
    with pytest.raises(StoryError) as caught:
        load_stories([path], media=MediaPolicy(reddit_gallery=True))
    assert "a Reddit gallery caption holds at most 180" in str(caught.value.problems[0])
    assert load_stories([path])[0].images[0].alt == "a" * 181
    only_bluesky = story_file(tmp_path, [{"path": "then.jpg", "alt": "a" * 181}], platforms=["bluesky"])
    assert load_stories([only_bluesky], media=MediaPolicy(reddit_gallery=True))[0].images


def test_location_and_other_metadata_never_reach_a_platform(tmp_path):
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotated: the picture must come out upright
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS position
    exif[0x010F] = "SecretCam"
    source = picture(tmp_path / "gps.jpg", (400, 200), exif=exif.tobytes())
    assert b"SecretCam" in source.read_bytes()
    story = load_stories([story_file(tmp_path, [{"path": "gps.jpg", "alt": "A street"}])])[0]
    assert story.prepared_pictures
    for image in story.prepared_pictures:
        assert b"SecretCam" not in image.data and b"Exif" not in image.data
        with PILImage.open(io.BytesIO(image.data)) as opened:
            assert not opened.getexif() and (opened.width, opened.height) == (200, 400)  # turned upright


def test_a_large_photo_gets_a_smaller_version_where_the_platform_takes_less(tmp_path):
    noisy = PILImage.effect_noise((3000, 2200), 90).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=97)
    versions = prepare_versions(buffer.getvalue(), "photo.jpg")
    assert versions["bluesky"].size <= 1_000_000 and max(versions["bluesky"].width, versions["bluesky"].height) <= 2000
    assert versions["x"].size <= 5_000_000 and versions["x"].width == 3000
    assert versions["x"].sha256 != versions["bluesky"].sha256


def test_an_animated_picture_is_refused_where_a_platform_would_show_a_still(tmp_path):
    frames = [PILImage.new("RGB", (60, 40), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(StoryError) as caught:
        load_stories([story_file(tmp_path, [{"path": "anim.gif", "alt": "Flashing"}])])
    assert "is animated, and bluesky shows no animation" in str(caught.value.problems[0])
    x_only = load_stories([story_file(tmp_path, [{"path": "anim.gif", "alt": "Flashing"}], platforms=["x"])])[0]
    image = next(iter(x_only.prepared_pictures))
    assert image.mime == "image/gif"
    with PILImage.open(io.BytesIO(image.data)) as opened:
        assert opened.n_frames == 2
    picture(tmp_path / "still.png")
    with pytest.raises(StoryError) as caught:
        load_stories([story_file(tmp_path, [{"path": "anim.gif", "alt": "a"}, {"path": "still.png", "alt": "b"}],
                                 platforms=["x"])])
    assert "animated and not the post's only picture" in str(caught.value.problems[0])


# -- rendering -------------------------------------------------------------------------------


def test_each_platform_shows_its_own_version_with_the_alt_text_and_bluesky_keeps_the_link_in_the_text(two_pictures):
    story = load_stories([two_pictures])[0]
    for platform in PROFILES:
        parts = render(story, platform)
        assert [p.alt for p in parts[0].pictures] == ["The bridge in scaffolding", "A map of the river crossing"]
        assert [p.sha256 for p in parts[0].pictures] == [i.versions[platform] for i in story.images]
        followups = [p for p in parts if p.kind == "followup"]
        assert [p.alt for p in followups[0].pictures] == ["The finished bridge with traffic"]
        assert all(not p.pictures for p in followups[1:])
    root = render(story, "bluesky")[0]
    assert "embed" not in root.payload  # the pictures are the embed, made when they are uploaded
    assert "https://example.com/bridge" in root.payload["text"] or "example.com/bridge" in root.payload["text"]
    assert any(f["features"][0]["uri"] == "https://example.com/bridge" for f in root.payload["facets"])


# -- posting ---------------------------------------------------------------------------------


def test_pictures_are_uploaded_before_the_post_and_sent_with_it_in_order(two_pictures, planner, engine, fakes,
                                                                          clock, store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    at(engine, clock, ROOT_AT)
    for platform, fake in fakes.items():
        (root,) = fake.posts
        assert [p.alt for p in root.post.pictures] == ["The bridge in scaffolding", "A map of the river crossing"]
        assert [m.ref["media_id"] for m in root.post.media] == [f"{platform}-media-1", f"{platform}-media-2"]
        assert fake.calls[:3] == ["upload", "upload", "publish"]
    row = media_of(store, platform="x", kind="root")[0]
    assert [m["ref"]["media_id"] for m in row.media] == ["x-media-1", "x-media-2"]
    assert [p["alt"] for p in row.pictures] == ["The bridge in scaffolding", "A map of the river crossing"]
    at(engine, clock, FOLLOW_AT)
    for fake in fakes.values():
        reply = fake.posts[1]
        assert [p.alt for p in reply.post.pictures] == ["The finished bridge with traffic"]
        assert reply.parent == fake.posts[0].ref


def test_a_resend_attaches_the_uploads_recorded_and_never_uploads_twice(two_pictures, planner, engine, fakes, clock,
                                                                         store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    fakes["x"].fail_next(Transient("x", "503"))
    at(engine, clock, ROOT_AT)
    assert fakes["x"].posts == [] and fakes["x"].uploads == 2
    assert len(media_of(store, platform="x", kind="root")[0].media) == 2  # kept for the resend
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=5))
    (root,) = fakes["x"].posts
    assert fakes["x"].uploads == 2 and [m.ref["media_id"] for m in root.post.media] == ["x-media-1", "x-media-2"]


def test_uploads_the_platform_dropped_are_made_again_and_the_post_goes_out_once(two_pictures, planner, engine, fakes,
                                                                                 clock, store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    fakes["x"].fail_next(Transient("x", "503"))
    at(engine, clock, ROOT_AT)
    fakes["x"].drop_media()  # the platform forgot them
    report = at(engine, clock, ROOT_AT + dt.timedelta(minutes=5))
    assert fakes["x"].posts == [] and report.count("retry-later") == 1
    assert media_of(store, platform="x", kind="root")[0].media is None  # forgotten: upload again
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=30))
    (root,) = fakes["x"].posts
    assert fakes["x"].uploads == 4 and [m.ref["media_id"] for m in root.post.media] == ["x-media-3", "x-media-4"]


def test_an_upload_about_to_expire_is_made_again_before_the_resend(two_pictures, planner, engine, fakes, clock, store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    fakes["x"].MEDIA_LIFETIME = dt.timedelta(hours=1)
    fakes["x"].fail_next(RateLimited("x", "429", ROOT_AT + dt.timedelta(minutes=55)))
    at(engine, clock, ROOT_AT)
    assert fakes["x"].uploads == 2 and fakes["x"].posts == []
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=55))  # 5 minutes before the uploads expire
    (root,) = fakes["x"].posts
    assert fakes["x"].uploads == 4 and [m.ref["media_id"] for m in root.post.media] == ["x-media-3", "x-media-4"]


def test_a_lost_answer_after_the_post_with_pictures_landed_leaves_one_post(two_pictures, planner, engine, fakes, clock,
                                                                            store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    fakes["x"].land_then_fail(OutcomeUnknown("x", "timeout after sending"))
    for minutes in (0, 5, 30, 120):
        at(engine, clock, ROOT_AT + dt.timedelta(minutes=minutes))
    assert len(fakes["x"].posts) == 1 and fakes["x"].uploads == 2
    assert media_of(store, platform="x", kind="root")[0].status == "posted"


def test_an_upload_that_fails_sends_nothing_and_is_retried(two_pictures, planner, engine, fakes, clock, store):
    planner.load(load_stories([two_pictures]), now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    fakes["bluesky"].fail_next_upload(OutcomeUnknown("bluesky", "upload answer lost"))
    report = at(engine, clock, ROOT_AT)
    assert fakes["bluesky"].posts == [] and "publish" not in fakes["bluesky"].calls
    assert any(e.action == "retry-later" and "upload of picture 1" in e.detail for e in report.events)
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=30))
    assert len(fakes["bluesky"].posts) == 1


# -- the story card --------------------------------------------------------------------------


def test_the_story_card_is_the_picture_of_a_story_without_one_when_turned_on(tmp_path):
    path = story_file(tmp_path, category="Infrastructure", source="The Gazette")
    assert load_stories([path])[0].images == ()  # off by default
    first = load_stories([path], media=MediaPolicy(story_card=True))[0]
    again = load_stories([path], media=MediaPolicy(story_card=True))[0]
    (card,) = first.images
    assert card.alt == "The first photo of the new bridge" and card.ref == "(story card)"
    assert card.versions == again.images[0].versions  # the same story gives the same bytes
    by_sha = {i.sha256: i for i in first.prepared_pictures}
    with PILImage.open(io.BytesIO(by_sha[card.versions["x"]].data)) as opened:
        assert opened.size == (1200, 675)
    parts = render(first, "bluesky")
    assert [p.alt for p in parts[0].pictures] == ["The first photo of the new bridge"]


def test_a_story_with_pictures_keeps_them_and_a_long_headline_is_cut_to_fit_the_alt_limit(tmp_path):
    picture(tmp_path / "then.jpg")
    own = story_file(tmp_path, [{"path": "then.jpg", "alt": "Mine"}])
    assert [i.alt for i in load_stories([own], media=MediaPolicy(story_card=True))[0].images] == ["Mine"]
    long = story_file(tmp_path, headline="Bridge " * 40)
    (card,) = load_stories([long], media=MediaPolicy(story_card=True, reddit_gallery=True))[0].images
    assert len(card.alt) == 180 and card.alt.endswith("…")


def test_the_alt_text_limit_a_mastodon_instance_announced_replaces_the_stock_one(tmp_path, store, settings):
    from bot.accounts import remember_account
    from bot.images import media_policy
    from posts.mastodon_text import MastodonLimits

    picture(tmp_path / "then.jpg")
    path = story_file(tmp_path, [{"path": "then.jpg", "alt": "a" * 1200}], platforms=["mastodon"])
    assert load_stories([path], media=media_policy(settings, store=store))[0].images  # 1,200 <= stock 1,500
    long = story_file(tmp_path, [{"path": "then.jpg", "alt": "a" * 2000}], platforms=["mastodon"])
    with pytest.raises(StoryError) as caught:
        load_stories([long], media=media_policy(settings, store=store))
    assert "Mastodon's alt text holds at most 1,500" in str(caught.value.problems[0])
    remember_account(store, "mastodon", account="@bot@example",
                     limits=MastodonLimits(description_limit=10_000).to_dict(), at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert load_stories([long], media=media_policy(settings, store=store))[0].images[0].alt == "a" * 2000
    path = story_file(tmp_path, [{"path": "then.jpg", "alt": "a" * 1200}], platforms=["mastodon"])
    remember_account(store, "mastodon", account="@bot@example",
                     limits=MastodonLimits(description_limit=500).to_dict(), at=dt.datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(StoryError) as caught:
        load_stories([path], media=media_policy(settings, store=store))
    assert "Mastodon's alt text holds at most 500" in str(caught.value.problems[0])
