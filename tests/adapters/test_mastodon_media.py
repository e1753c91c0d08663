"""MastodonAdapter's pictures: uploads with alt text, the wait for processing, attaching them by id, and
MediaGone — against Mastodon.py's recorded exchanges with a real Mastodon 4.6.4 (replayed over HTTP on
127.0.0.1) and against the stateful stand-in ``mastodon-mock``.

The stand-in differs from real Mastodon here (``../shared/reference/mastodon.md``, "Local stand-in"): it
never answers 202/206, ignores unknown ``media_ids`` and announces no ``description_limit``. Those
behaviours are tested on the recordings; where a test builds an answer no recording holds, it says so.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from adapters.base import Outgoing, PostRef, Uploaded, UploadsMedia
from adapters.mastodon import MEDIA_CHECK_WAIT, MEDIA_CHECKS, UPLOAD_KEPT, MastodonAdapter, MastodonConfig
from bot.wiring import mastodon_config
from posts.errors import MediaGone, OutcomeUnknown, Rejected, Transient
from posts.mastodon_text import MastodonLimits
from posts.media import Image, Picture, prepare
from tests.adapters.mastodon_fixtures import (  # noqa: F401
    MastodonTarget,
    mastodon_mock,
    mastodon_server,
    mastodon_settings,
    mastodon_target,
)
from tests.standins.mastodon import DATA, AnswerLossProxy, CassetteServer, MastodonMock, _multipart, cassette

UTC = dt.UTC
NOW = dt.datetime(2026, 8, 1, 13, 51, 35, tzinfo=UTC)
REPLAY_TOKEN = "replay-token-media-42"
NOT_FOUND = "Validation failed: Media {ids} not found or already attached to another post"
"""Real Mastodon's English ``media_attachments.validations.not_found`` (no recording holds one)."""
standin = pytest.mark.mastodon


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def recorded() -> Iterator[CassetteServer]:
    server = CassetteServer().serve()
    try:
        yield server
    finally:
        server.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def replaying(server: CassetteServer, sleeps: Sleeps | None = None) -> MastodonAdapter:
    config = MastodonConfig(api_base_url=server.url, access_token=REPLAY_TOKEN, timeout=dt.timedelta(seconds=5))
    return MastodonAdapter(config, clock=lambda: NOW, sleep=sleeps if sleeps is not None else Sleeps())


def recorded_upload(index: int) -> tuple[dict[str, Any], list[tuple[str, str]], dict[str, tuple[str, str, bytes]]]:
    """The ``index``-th recorded ``POST /api/v2/media`` of ``test_media_post_multiple``: interaction, fields, files."""
    uploads = [i for i in cassette("test_media_post_multiple") if i["request"]["uri"].endswith("/api/v2/media")]
    interaction = uploads[index]
    request = interaction["request"]
    fields, files = _multipart(request["headers"]["Content-Type"][0], request["body"])
    return interaction, fields, files


def recorded_picture(index: int) -> Picture:
    """The JPEG Mastodon.py uploaded in the recording, with the alt text it sent."""
    interaction, fields, files = recorded_upload(index)
    answer = json.loads(interaction["response"]["body"]["string"])
    original = answer["meta"]["original"]
    _name, mime, data = files["file"]
    return Picture(Image.of(data, mime, original["width"], original["height"]), dict(fields)["description"])


def excerpt() -> list[dict[str, Any]]:
    """``media-v2-202-excerpt.json`` as cassette interactions (its JSON bodies serialised again)."""
    data = json.loads((DATA / "media-v2-202-excerpt.json").read_text(encoding="utf-8"))
    return [{"request": i["request"],
             "response": {"status": {"code": i["response"]["status"]}, "headers": i["response"]["headers"],
                          "body": {"string": json.dumps(i["response"]["body"])}}}
            for i in data["interactions"]]


def post(text: str, pictures: tuple[Picture, ...], media: tuple[Uploaded, ...], *, key: str = "key-pics",
         parent: PostRef | None = None) -> Outgoing:
    return Outgoing("mastodon", "s1", "followup" if parent else "root", 1, {"status": text, "language": "en"}, key,
                    parent, parent, pictures=pictures, media=media)


def uploaded(picture: Picture, media_id: str) -> Uploaded:
    return Uploaded(picture.image.sha256, {"id": media_id}, NOW + dt.timedelta(hours=1))


def small_png(colour: tuple[int, int, int]) -> Image:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (40, 30), colour).save(out, "PNG")
    return prepare(out.getvalue())


# ---------------------------------------------------------------------------- recorded exchanges


def test_an_upload_sends_the_alt_text_as_the_description_and_the_picture_as_mastodon_py_recorded(recorded):
    recorded.replay("test_media_post_multiple", only=("GET /api/v2/instance/",))
    interaction, fields, files = recorded_upload(0)
    recorded.answer(interaction)
    picture = recorded_picture(0)
    adapter = replaying(recorded)
    assert isinstance(adapter, UploadsMedia)

    result = adapter.upload(picture)

    answer = json.loads(interaction["response"]["body"]["string"])
    assert result == Uploaded(picture.image.sha256, {"id": answer["id"]}, NOW + UPLOAD_KEPT)
    assert UPLOAD_KEPT < dt.timedelta(days=1)  # the server's cleanup removes unattached media after a day
    (_instance, sent) = recorded.received
    assert (sent.method, sent.path) == ("POST", "/api/v2/media")
    assert sent.form == {"description": picture.alt} == {"description": dict(fields)["description"]}
    assert answer["description"] == picture.alt  # what the server kept: the alt text as sent
    name, mime, data = sent.files["file"]
    assert (mime, data) == (files["file"][1], files["file"][2]) == ("image/jpeg", picture.image.data)
    assert name.endswith(".jpg") and picture.image.sha256[:16] in name
    assert sent.headers["Authorization"] == f"Bearer {REPLAY_TOKEN}"


def test_two_uploads_then_the_status_carries_their_ids_in_order(recorded):
    create = recorded.replay("test_media_post_multiple", only=(
        "POST /api/v2/media", "GET /api/v2/instance/", "POST /api/v1/statuses"))[-2]
    adapter = replaying(recorded)
    pictures = (recorded_picture(0), recorded_picture(1))
    media = tuple(adapter.upload(p) for p in pictures)

    ref = adapter.publish(post("LOL check this out", pictures, media, key="idem-pics-1"))

    answer = json.loads(create["response"]["body"]["string"])
    assert ref.id == answer["id"]
    assert [a["description"] for a in answer["media_attachments"]] == [p.alt for p in pictures]
    sent = recorded.received[-1]
    assert (sent.method, sent.path) == ("POST", "/api/v1/statuses")
    recorded_ids = [v for k, v in parse_qsl(create["request"]["body"]) if k == "media_ids[]"]
    assert [v for k, v in sent.pairs if k == "media_ids[]"] == [u.ref["id"] for u in media] == recorded_ids
    assert [a["id"] for a in answer["media_attachments"]] == recorded_ids
    assert sent.headers["Idempotency-Key"] == "idem-pics-1"
    assert recorded.pending() == 0


def test_a_reply_carries_its_pictures_too(recorded):
    create = cassette("test_media_post_multiple")[-2]
    recorded.answer(create)
    pictures = (recorded_picture(1), recorded_picture(0))
    parent = PostRef("mastodon", "117020576600000000", "")
    replaying(recorded).reply(post("the reveal", pictures, (uploaded(pictures[0], "22"), uploaded(pictures[1], "11")),
                                   parent=parent))
    (sent,) = recorded.received
    assert [v for k, v in sent.pairs if k == "media_ids[]"] == ["22", "11"]
    assert sent.form["in_reply_to_id"] == parent.id


def test_a_202_upload_is_polled_until_its_url_is_set(recorded):
    accepted, done = excerpt()
    media_id = json.loads(accepted["response"]["body"]["string"])["id"]
    recorded.answer(cassette("test_instance")[0])
    recorded.answer(accepted)
    # No recording holds a 206 (GET while still processing): the recorded 202's body, answered with 206.
    recorded.answer(accepted, status=206, to=f"GET /api/v1/media/{media_id}")
    recorded.answer(done)
    sleeps = Sleeps()
    picture = Picture(small_png((200, 10, 10)), "me when a cat")

    result = replaying(recorded, sleeps).upload(picture)

    assert result.ref == {"id": media_id}
    assert sleeps == [MEDIA_CHECK_WAIT.total_seconds()] * 2
    assert [(r.method, r.path) for r in recorded.received][1:] == [
        ("POST", "/api/v2/media"), ("GET", f"/api/v1/media/{media_id}"), ("GET", f"/api/v1/media/{media_id}")]
    assert recorded.pending() == 0


def test_an_upload_still_processing_after_the_checks_is_transient(recorded):
    accepted, _done = excerpt()
    media_id = json.loads(accepted["response"]["body"]["string"])["id"]
    recorded.answer(cassette("test_instance")[0])
    recorded.answer(accepted)
    for _ in range(MEDIA_CHECKS):
        recorded.answer(accepted, status=206, to=f"GET /api/v1/media/{media_id}")
    sleeps = Sleeps()
    with pytest.raises(Transient, match="still processing") as caught:
        replaying(recorded, sleeps).upload(Picture(small_png((10, 200, 10)), "a cat"))
    assert caught.type is Transient
    assert len(sleeps) == MEDIA_CHECKS and recorded.pending() == 0


def test_an_upload_whose_answer_is_a_500_is_outcome_unknown(recorded):
    recorded.answer(cassette("test_instance")[0])
    interaction, _fields, _files = recorded_upload(0)
    recorded.answer(interaction, status=500, body='{"error":"Error processing thumbnail for uploaded media"}')
    with pytest.raises(OutcomeUnknown, match="the upload may have been made"):
        replaying(recorded).upload(recorded_picture(0))


def test_alt_text_longer_than_the_instances_description_limit_is_rejected_before_any_upload(recorded):
    recorded.replay("test_instance")  # description_limit 10000
    adapter = replaying(recorded)
    image = small_png((1, 2, 3))
    with pytest.raises(Rejected, match="10001 characters, more than the instance's 10000"):
        adapter.upload(Picture(image, "a" * 10001))
    assert [r.path.rstrip("/") for r in recorded.received] == ["/api/v2/instance"]  # nothing uploaded
    interaction, _fields, _files = recorded_upload(0)
    recorded.answer(interaction)
    adapter.upload(Picture(image, "a" * 10000))  # at the limit: sent
    assert recorded.received[-1].form["description"] == "a" * 10000


def test_a_media_id_the_instance_no_longer_has_is_media_gone(recorded):
    refusal = cassette("test_status_empty")[0]  # the recorded 422 envelope
    first, _fields, _files = recorded_upload(0)
    first_id = json.loads(first["response"]["body"]["string"])["id"]
    pictures = (recorded_picture(0), recorded_picture(1))
    media = (uploaded(pictures[0], first_id), uploaded(pictures[1], "117020576661238952"))
    recorded.answer(refusal, body=json.dumps({"error": NOT_FOUND.format(ids="117020576661238952")}))
    recorded.answer(first, to=f"GET /api/v1/media/{first_id}")  # still there, unattached
    recorded.answer(cassette("test_status_missing")[0], to="GET /api/v1/media/117020576661238952")  # gone

    with pytest.raises(MediaGone) as caught:
        replaying(recorded).publish(post("LOL check this out", pictures, media))

    assert "117020576661238952" in caught.value.reason and "HTTP 422" in caught.value.reason
    assert isinstance(caught.value, Transient)
    assert [(r.method, r.path) for r in recorded.received] == [
        ("POST", "/api/v1/statuses"), ("GET", f"/api/v1/media/{first_id}"),
        ("GET", "/api/v1/media/117020576661238952")]


def test_a_404_to_a_reply_with_a_removed_picture_is_media_gone_not_a_gone_parent(recorded):
    missing = cassette("test_status_missing")[0]
    recorded.answer(missing, to="POST /api/v1/statuses")
    recorded.answer(missing, to="GET /api/v1/media/5")
    picture = recorded_picture(0)
    with pytest.raises(MediaGone):
        replaying(recorded).reply(post("the reveal", (picture,), (uploaded(picture, "5"),),
                                       parent=PostRef("mastodon", "1", "")))


def test_a_refusal_while_every_picture_is_there_stays_rejected_with_the_servers_reason(recorded):
    refusal = cassette("test_status_empty")[0]
    first, _fields, _files = recorded_upload(0)
    picture = recorded_picture(0)
    recorded.answer(refusal)
    recorded.answer(first, to="GET /api/v1/media/7")
    with pytest.raises(Rejected) as caught:
        replaying(recorded).publish(post("Toot!", (picture,), (uploaded(picture, "7"),)))
    assert caught.type is Rejected and "バリデーションに失敗しました" in caught.value.reason


def test_a_refusal_naming_a_picture_still_processing_is_transient(recorded):
    accepted, _done = excerpt()
    recorded.answer(cassette("test_status_empty")[0], body='{"error":"Cannot attach files that have not finished '
                                                          'processing. Try again in a moment!"}')
    recorded.answer(accepted, status=206, to="GET /api/v1/media/8")
    picture = recorded_picture(0)
    with pytest.raises(Transient, match="still being processed") as caught:
        replaying(recorded).publish(post("Toot!", (picture,), (uploaded(picture, "8"),)))
    assert caught.type is Transient


def test_pictures_without_their_uploads_are_a_programming_error(recorded):
    picture = recorded_picture(0)
    adapter = replaying(recorded)
    with pytest.raises(ValueError, match="the engine uploads them"):
        adapter.publish(post("Toot!", (picture,), ()))
    with pytest.raises(ValueError, match="not its pictures"):
        adapter.publish(post("Toot!", (picture,), (Uploaded("0" * 64, {"id": "1"}),)))
    assert recorded.received == []


def test_the_instance_media_limits_are_read_and_round_trip():
    instance = json.loads(cassette("test_media_post_multiple")[2]["response"]["body"]["string"])
    limits = MastodonLimits.from_instance(instance)
    assert limits == MastodonLimits(max_characters=500, characters_reserved_per_url=23, max_media_attachments=4,
                                    description_limit=10000, image_size_limit=16777216,
                                    image_matrix_limit=33177600)
    assert MastodonLimits.from_dict(limits.to_dict()) == limits
    assert json.loads(json.dumps(limits.to_dict())) == limits.to_dict()  # what bot/accounts.py stores
    odd = MastodonLimits(max_characters=1000, description_limit=420, image_size_limit=8 * 1024 * 1024,
                         image_matrix_limit=1000 * 1000, max_media_attachments=6)
    assert MastodonLimits.from_dict(odd.to_dict()) == odd
    # A server that does not say (before 4.4; mastodon-mock), and limits remembered before these fields:
    stock = MastodonLimits(description_limit=1500, image_size_limit=16 * 1024 * 1024, image_matrix_limit=4096 * 4096)
    assert MastodonLimits.from_instance({"configuration": {"media_attachments": {}}}) == stock == MastodonLimits()
    assert MastodonLimits.from_dict({"max_characters": 500, "description_limit": None}) == stock


# ---------------------------------------------------------------------------- the stateful stand-in


def live(server: MastodonMock | AnswerLossProxy, tmp_path: Path) -> MastodonAdapter:
    return MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, server.url)), sleep=Sleeps())


@standin
def test_on_the_stand_in_pictures_go_out_with_their_alt_text_in_order_once(mastodon_target: MastodonTarget):  # noqa: F811
    adapter, server = mastodon_target.adapter, mastodon_target.server
    pictures = (Picture(small_png((250, 0, 0)), "A red square"), Picture(small_png((0, 0, 250)), "A blue square"))
    media = tuple(adapter.upload(p) for p in pictures)
    assert [server.media(str(u.ref["id"]))["description"] for u in media] == ["A red square", "A blue square"]

    outgoing = post("Two squares", pictures, media)
    ref = adapter.publish(outgoing)
    assert adapter.publish(outgoing) == ref  # the same Idempotency-Key: the same status

    (status,) = server.statuses()
    assert status["id"] == ref.id
    assert [(a["id"], a["description"]) for a in status["media_attachments"]] == [
        (u.ref["id"], p.alt) for u, p in zip(media, pictures, strict=True)]
    assert adapter.find(outgoing, since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)) == ref


@pytest.fixture
def proxy(mastodon_mock: MastodonMock) -> Iterator[AnswerLossProxy]:  # noqa: F811
    running = AnswerLossProxy(mastodon_mock.url)
    with running:
        yield running


@standin
def test_on_the_stand_in_a_removed_upload_is_media_gone_and_nothing_is_posted(mastodon_mock, proxy, tmp_path):  # noqa: F811
    adapter = live(proxy, tmp_path)
    picture = Picture(small_png((0, 250, 0)), "A green square")
    upload = adapter.upload(picture)
    mastodon_mock.delete_media(str(upload.ref["id"]))  # as the instance's cleanup does a day later
    # The stand-in would post without the missing picture; real Mastodon refuses with 422, played by the proxy.
    proxy.fail_next_create(422, {"error": NOT_FOUND.format(ids=upload.ref["id"])})
    with pytest.raises(MediaGone, match="upload it again"):
        adapter.publish(post("Green", (picture,), (upload,)))
    assert mastodon_mock.statuses() == []
    again = adapter.upload(picture)  # what the engine does next
    ref = adapter.publish(post("Green", (picture,), (again,), key="key-pics-2"))
    assert [a["description"] for a in mastodon_mock.status(ref.id)["media_attachments"]] == ["A green square"]
