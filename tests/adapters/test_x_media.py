"""XAdapter's pictures: the real tweepy (v1.1 ``API.media_upload`` and ``create_media_metadata``, v2
``create_tweet(media_ids=...)``) against the recorded upload and the stand-in served on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import yaml
from PIL import Image as PILImage

from adapters.base import Outgoing, PostRef, Uploaded, UploadsMedia
from adapters.x import MEDIA_MARGIN, TWEEPY_UPLOAD_HOST, XAdapter
from bot.wiring import x_config
from posts.errors import AdapterError, AuthFailed, MediaGone, OutcomeUnknown, RateLimited, Rejected, Transient
from posts.media import Image, Picture
from tests.adapters.x_fixtures import CREDENTIALS, x_settings
from tests.replies import replying
from tests.standins.x import FIRST_MEDIA_ID, MEDIA_INVALID, XStandin, multipart

DATA = Path(__file__).resolve().parents[1] / "data" / "x"
UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UPLOAD = "POST /1.1/media/upload.json"
ALT = "POST /1.1/media/metadata/create.json"
SECRETS = CREDENTIALS


def recorded_upload() -> dict[str, Any]:
    return yaml.safe_load((DATA / "testmediauploadpng.yaml").read_text(encoding="utf-8"))["interactions"][0]


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 30, 30)) -> Image:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(out, "PNG")
    return Image.of(out.getvalue(), "image/png", width, height)


def jpeg(width: int = 32, height: int = 32) -> Image:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (10, 120, 200)).save(out, "JPEG")
    return Image.of(out.getvalue(), "image/jpeg", width, height)


def post(text: str, pictures: tuple[Picture, ...] = (), media: tuple[Uploaded, ...] = (), *, kind: str = "root",
         part: int = 1, parent: PostRef | None = None, root: PostRef | None = None) -> Outgoing:
    return Outgoing("x", "s1", kind, part, {"text": text}, f"key-{kind}-{part}", parent, root, pictures=pictures,
                    media=media)


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "reason", "")):
        for secret in SECRETS:
            assert secret not in text


@pytest.fixture
def server() -> Iterator[XStandin]:
    standin = XStandin(credentials=CREDENTIALS)
    standin.serve()
    yield standin
    standin.stop()


@pytest.fixture
def adapter(server: XStandin, tmp_path: Path) -> XAdapter:
    assert server.base_url is not None and server.base_url.startswith("http://127.0.0.1:")
    return XAdapter(x_config(x_settings(tmp_path, x_api_url=server.base_url, http_timeout="1s")))


def upload_all(adapter: XAdapter, pictures: tuple[Picture, ...]) -> tuple[Uploaded, ...]:
    return tuple(adapter.upload(p) for p in pictures)


# ---------------------------------------------------------------------------- the recorded upload


def _boundary(content_type: str) -> str:
    match = re.search(r"boundary=(\S+)", content_type)
    assert match is not None
    return match.group(1)


def test_the_request_tweepy_sends_matches_the_recorded_upload_and_its_answer_parses(tmp_path):
    recorded = recorded_upload()
    boundary = _boundary(recorded["request"]["headers"]["Content-Type"][0])
    [part] = multipart(f"multipart/form-data; boundary={boundary}", recorded["request"]["body"])
    assert (part.name, part.filename) == ("media", "banner.png")
    banner = Image.of(part.data, "image/png", 1252, 626)  # the recorded picture itself
    answer = recorded["response"]
    headers = {name: ", ".join(values) for name, values in answer["headers"].items()}
    adapter = XAdapter(x_config(x_settings(tmp_path)), clock=lambda: NOW)  # X's real hosts, replayed
    with responses.RequestsMock() as mock:
        mock.add("POST", recorded["request"]["uri"], status=answer["status"]["code"], body=answer["body"]["string"],
                 content_type=headers.pop("content-type"), headers=headers)

        uploaded = adapter.upload(Picture(banner, ""))  # no alt text: no metadata call (none is recorded)

        [call] = mock.calls
    sent = call.request
    assert isinstance(sent.body, bytes)
    assert sent.url == recorded["request"]["uri"] == f"{TWEEPY_UPLOAD_HOST}/1.1/media/upload.json"
    sent_boundary = _boundary(sent.headers["Content-Type"])
    [sent_part] = multipart(sent.headers["Content-Type"], sent.body)
    assert sent_part.name == "media"
    assert sent_part.filename == f"{banner.sha256[:16]}.png"
    assert sent_part.data == part.data
    # Byte for byte the recorded body, but for the boundary and the file name.
    normalised = sent.body.replace(sent_boundary.encode(), boundary.encode()).replace(
        sent_part.filename.encode(), b"banner.png")
    assert normalised == recorded["request"]["body"]
    assert sent.headers["Authorization"].startswith("OAuth ")
    assert uploaded == Uploaded(banner.sha256, {"media_id": "1349010955083132928"},
                                NOW + dt.timedelta(seconds=86400) - MEDIA_MARGIN)
    assert json.loads(json.dumps(dict(uploaded.ref))) == {"media_id": "1349010955083132928"}  # JSON-able


def test_the_stand_in_answers_an_upload_key_for_key_as_recorded(adapter, server):
    recorded = json.loads(recorded_upload()["response"]["body"]["string"])
    picture = png(1252, 626)

    adapter.upload(Picture(picture, ""))

    answer = server.media[str(FIRST_MEDIA_ID)].answer()
    assert answer.keys() == recorded.keys() and answer["image"].keys() == recorded["image"].keys()
    assert answer["media_id"] == recorded["media_id"] and answer["media_id_string"] == recorded["media_id_string"]
    assert answer["image"] == {"image_type": "image/png", "w": 1252, "h": 626}
    assert answer["size"] == picture.size and answer["expires_after_secs"] == recorded["expires_after_secs"]


# ---------------------------------------------------------------------------- uploading with alt text


def test_an_upload_sets_the_exact_alt_text(adapter, server):
    alt = 'A red square — "quoted", with an emoji 🟥 and a line\nbreak'
    picture = png()

    uploaded = adapter.upload(Picture(picture, alt))

    media_id = uploaded.ref["media_id"]
    assert server.media[media_id].alt == alt
    assert server.media[media_id].data == picture.data
    [meta] = [r for r in server.requests if r.route == ALT]
    assert meta.json == {"media_id": media_id, "alt_text": {"text": alt}}
    assert [r.route for r in server.requests] == [UPLOAD, ALT]
    assert uploaded.sha256 == picture.sha256
    assert uploaded.expires_at is not None and uploaded.expires_at.tzinfo is not None


def test_an_upload_without_alt_text_makes_no_metadata_call(adapter, server):
    uploaded = adapter.upload(Picture(png(), ""))

    assert [r.route for r in server.requests] == [UPLOAD]
    assert server.media[uploaded.ref["media_id"]].alt is None


@pytest.mark.parametrize(("image", "filename"), [(png(), ".png"), (jpeg(), ".jpg")], ids=["png", "jpeg"])
def test_the_file_name_carries_the_extension_of_the_pictures_type(adapter, server, image, filename):
    uploaded = adapter.upload(Picture(image, "alt"))

    media = server.media[uploaded.ref["media_id"]]
    assert media.filename == f"{image.sha256[:16]}{filename}"
    assert media.mime == image.mime


def test_the_expiry_comes_from_the_answer_less_the_margin(server, tmp_path):
    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=server.base_url)), clock=lambda: NOW)

    uploaded = adapter.upload(Picture(png(), ""))

    assert uploaded.expires_at == NOW + dt.timedelta(seconds=86400) - MEDIA_MARGIN


def test_alt_text_over_1000_characters_is_refused_before_anything_is_sent(adapter, server):
    with pytest.raises(Rejected) as caught:
        adapter.upload(Picture(png(), "a" * 1001))

    assert "1000" in caught.value.reason
    assert server.requests == []
    adapter.upload(Picture(png(), "a" * 1000))  # exactly the limit is fine
    assert len(server.requests) == 2


def test_the_adapter_is_an_uploads_media_adapter(adapter):
    assert isinstance(adapter, UploadsMedia)


# ---------------------------------------------------------------------------- posting with media ids


def test_a_post_carries_its_media_ids_in_order(adapter, server):
    pictures = (Picture(png(colour=(1, 2, 3)), "first"), Picture(jpeg(), "second"),
                Picture(png(colour=(9, 9, 9)), "third"))
    media = upload_all(adapter, pictures)

    ref = adapter.publish(post("Three pictures", pictures, media))

    ids = [m.ref["media_id"] for m in media]
    assert server.tweets[ref.id].media_ids == ids
    [create] = [r for r in server.requests if r.route == "POST /2/tweets"]
    assert create.json == {"text": "Three pictures", "media": {"media_ids": ids}}
    assert [server.media[i].alt for i in ids] == ["first", "second", "third"]


def test_a_reply_carries_its_media_ids(adapter, server):
    root = adapter.publish(post("A root without pictures"))
    pictures = (Picture(png(), "in the reply"),)
    media = upload_all(adapter, pictures)

    ref = adapter.reply(replying(post("A reply with a picture", pictures, media, kind="followup", parent=root,
                                      root=root), root, root))

    assert server.tweets[ref.id].media_ids == [media[0].ref["media_id"]]
    assert server.tweets[ref.id].reply_to == root.id
    assert [r.json for r in server.requests if r.route == "POST /2/tweets"][0] == {"text": "A root without pictures"}


def test_an_expired_media_id_is_media_gone_and_nothing_is_posted(adapter, server):
    pictures = (Picture(png(), "one"), Picture(jpeg(), "two"))
    media = upload_all(adapter, pictures)
    server.expire_media(media[1].ref["media_id"])

    with pytest.raises(MediaGone) as caught:
        adapter.publish(post("With an expired picture", pictures, media))

    assert isinstance(caught.value, Transient)
    assert MEDIA_INVALID in caught.value.reason
    assert server.live() == []
    # Uploaded again, the post goes through.
    assert adapter.publish(post("With an expired picture", pictures, upload_all(adapter, pictures)))


def test_an_unknown_media_id_is_media_gone(adapter, server):
    pictures = (Picture(png(), "one"),)
    unknown = (Uploaded(pictures[0].image.sha256, {"media_id": "1"}, NOW),)

    with pytest.raises(MediaGone):
        adapter.publish(post("Unknown media", pictures, unknown))

    assert server.live() == []


def test_another_400_on_a_post_with_pictures_stays_rejected(adapter, server):
    pictures = (Picture(png(), "one"),)
    media = upload_all(adapter, pictures)

    with pytest.raises(Rejected) as caught:
        adapter.publish(post("x" * 300, pictures, media))

    assert not isinstance(caught.value, MediaGone)


def test_pictures_without_uploads_are_a_programming_error(adapter, server):
    with pytest.raises(ValueError, match="uploads"):
        adapter.publish(post("Not uploaded", (Picture(png(), "alt"),)))

    assert server.requests == []


def test_a_post_with_pictures_of_unknown_outcome_is_found_by_its_text(adapter, server):
    pictures = (Picture(png(), "alt"),)
    media = upload_all(adapter, pictures)
    server.drop_next("POST /2/tweets")  # accepted, then the answer is lost
    with pytest.raises(OutcomeUnknown):
        adapter.publish(post("Lost with a picture https://example.com/a", pictures, media))

    tweet = server.live()[0]
    assert tweet.shown.endswith(tweet.urls[-1]["url"])  # X's link to the pictures is appended
    found = adapter.find(post("Lost with a picture https://example.com/a", pictures, media),
                         since=dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    assert found is not None and found.id == tweet.id


# ---------------------------------------------------------------------------- errors of the upload


def test_a_429_on_the_upload_is_rate_limited_until_its_reset(adapter, server):
    reset = int(dt.datetime.now(UTC).timestamp()) + 600
    server.rate_limit_next(UPLOAD, reset=reset)

    with pytest.raises(RateLimited) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert caught.value.retry_at == dt.datetime.fromtimestamp(reset, UTC)
    assert server.media == {}
    assert_no_secret(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_on_the_upload_is_transient(adapter, server, status):
    server.fail_next(UPLOAD, status)

    with pytest.raises(Transient) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert type(caught.value) is Transient
    assert str(status) in caught.value.reason
    assert_no_secret(caught.value)


def test_a_5xx_on_the_alt_text_is_transient(adapter, server):
    server.fail_next(ALT, 503)

    with pytest.raises(Transient) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert type(caught.value) is Transient and "alt text" in caught.value.reason


@pytest.mark.parametrize(("status", "error"), [(401, AuthFailed), (403, AuthFailed), (400, Rejected)])
def test_client_errors_on_the_upload(adapter, server, status, error):
    server.fail_next(UPLOAD, status, body={"errors": [{"code": 0, "message": f"refused with {status}"}]})

    with pytest.raises(AdapterError) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert type(caught.value) is error
    assert f"refused with {status}" in caught.value.reason
    assert_no_secret(caught.value)


def test_an_upload_whose_answer_comes_too_late_is_outcome_unknown(adapter, server):
    server.delay_next(UPLOAD, 1.3)  # longer than the 1 s timeout

    with pytest.raises(OutcomeUnknown) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert caught.value.__cause__ is not None
    assert isinstance(caught.value.__cause__.__context__, requests.ReadTimeout)
    assert "may have been uploaded" in caught.value.reason
    assert_no_secret(caught.value)


def test_an_upload_dropped_after_sending_is_outcome_unknown(adapter, server):
    server.drop_next(UPLOAD)

    with pytest.raises(OutcomeUnknown):
        adapter.upload(Picture(png(), "alt"))

    assert len(server.media) == 1  # it did arrive


def test_an_upload_to_a_server_that_is_not_there_is_transient(server, tmp_path):
    base = server.base_url
    server.stop()
    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=base, http_timeout="1s")))

    with pytest.raises(Transient) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert type(caught.value) is Transient
    assert_no_secret(caught.value)


def test_an_upload_error_that_echoes_a_secret_is_masked(adapter, server):
    server.fail_next(UPLOAD, 400, body={"errors": [{"code": 32, "message": f"bad key {CREDENTIALS[0]} or "
                                                                           f"secret {CREDENTIALS[1]}"}]})

    with pytest.raises(Rejected) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert "bad key" in caught.value.reason
    assert_no_secret(caught.value)


def test_wrong_secrets_on_the_upload_are_refused_and_never_shown(server, tmp_path):
    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=server.base_url,
                                           x_consumer_secret="wrong-consumer-secret-9")))

    with pytest.raises(AuthFailed) as caught:
        adapter.upload(Picture(png(), "alt"))

    assert "wrong-consumer-secret-9" not in str(caught.value)
    assert server.media == {}


# ---------------------------------------------------------------------------- the upload host


def test_uploads_go_to_x_upload_host_by_default_and_to_a_configured_url_otherwise(tmp_path, server):
    default = XAdapter(x_config(x_settings(tmp_path)))
    assert f"{TWEEPY_UPLOAD_HOST}/" not in default.upload_session.adapters
    assert default.api.upload_host == "upload.twitter.com"

    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=server.base_url)))
    adapter.upload(Picture(png(), "alt"))

    assert all(r.headers.get("Host", "").startswith("127.0.0.1:") for r in server.requests)
    assert [r.path for r in server.requests] == ["/1.1/media/upload.json", "/1.1/media/metadata/create.json"]


def test_no_secret_reaches_the_logs_of_an_upload(adapter, server, caplog):
    caplog.set_level(logging.DEBUG)
    media = upload_all(adapter, (Picture(png(), "logged alt"),))
    adapter.publish(post("Logged with a picture", (Picture(png(), "logged alt"),), media))
    server.fail_next(UPLOAD, 400, body={"errors": [{"code": 32, "message": f"echo {CREDENTIALS[1]}"}]})
    with pytest.raises(Rejected):
        adapter.upload(Picture(png(), "alt"))

    assert any(r.name == "adapters.x" and "uploaded picture" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        message = record.getMessage()
        assert CREDENTIALS[1] not in message and CREDENTIALS[3] not in message  # the two secrets
        if record.name.startswith("adapters."):
            assert not any(secret in message for secret in SECRETS)


def test_an_upload_of_a_type_x_does_not_take_is_refused_before_anything_is_sent(adapter, server):
    odd = Image.of(b"BM" + bytes(60), "image/bmp", 4, 4)

    with pytest.raises(Rejected, match="image/bmp"):
        adapter.upload(Picture(odd, "alt"))

    assert server.requests == []


def test_the_stand_in_refuses_what_is_not_an_image(server, tmp_path):
    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=server.base_url)))
    fake_png = Image.of(b"not a picture at all", "image/png", 1, 1)

    with pytest.raises(Rejected) as caught:
        adapter.upload(Picture(fake_png, "alt"))

    assert "media type unrecognized" in caught.value.reason
    assert server.media == {}


def test_a_400_naming_the_media_ids_parameter_is_media_gone_whatever_its_wording(adapter, server):
    pictures = (Picture(png(), "one"),)
    media = upload_all(adapter, pictures)
    server.fail_next("POST /2/tweets", 400, body={
        "errors": [{"parameters": {"media.media_ids": [media[0].ref["media_id"]]}, "message": "Some new wording."}],
        "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request"})

    with pytest.raises(MediaGone):
        adapter.publish(post("Reworded", pictures, media))

    assert server.live() == []
