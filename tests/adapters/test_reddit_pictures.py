"""Pictures on Reddit: real praw against the recorded inline-media and gallery exchanges, and the stand-in."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from PIL import Image as PILImage
from praw.exceptions import ClientException, MediaPostFailed, TooLargeMediaException, WebSocketException

from adapters.base import Outgoing, PostRef
from adapters.reddit import (
    RedditAdapter,
    RedditConfig,
    caption,
    inline_caption,
    inline_selftext,
    media_name,
    surviving_words,
)
from bot.config import load_settings
from bot.wiring import reddit_config
from posts.errors import ConfigError, OutcomeUnknown, RateLimited, Rejected, Transient
from posts.media import REDDIT_CAPTION, Image, Picture
from tests.adapters.reddit_fixtures import reddit_settings
from tests.adapters.test_reddit import (
    NOW,
    PLACEHOLDERS,
    SUBREDDIT,
    _ReplayAccount,
    add_recorded,
    add_token,
    cassette,
    replay_with,
)
from tests.standins.reddit import RedditStandin

INLINE = "praw/TestSubreddit.test_submit__selftext_inline_media.json"
GALLERY = "praw/TestSubreddit.test_submit_gallery__selftext.json"
GALLERY_2020 = "praw/TestSubreddit.test_submit_gallery.json"
BODY = "What happened a year ago.\n\nMore of it, with {braces} kept.\n\n[Source](https://example.com/a)"
ALTS = ("A red square on a white wall", 'The mayor, "smiling", at the opening')


# ---------------------------------------------------------------------------- helpers


def image(color: str = "red", fmt: str = "PNG") -> Image:
    out = io.BytesIO()
    PILImage.new("RGB", (8, 6), color).save(out, fmt)
    return Image.of(out.getvalue(), f"image/{fmt.lower()}", 8, 6)


def pictures(*alts: str) -> tuple[Picture, ...]:
    formats = ("PNG", "JPEG")
    return tuple(Picture(image(("red", "blue", "green", "white")[i % 4], formats[i % 2]), alt)
                 for i, alt in enumerate(alts))


def root(pics: tuple[Picture, ...], title: str = "Test Title", selftext: str = BODY) -> Outgoing:
    return Outgoing("reddit", "s1", "root", 1, {"title": title, "selftext": selftext}, None, pictures=pics)


def body_of(request: Any) -> str:
    body = request.body or ""
    return body if isinstance(body, str) else body.decode("utf-8", "replace")


def recorded_body(interaction: dict[str, Any]) -> str:
    body = interaction["request"]["body"]
    return body["string"] if isinstance(body, dict) else body


def multipart_names(text: str) -> list[str]:
    return [line.split('name="', 1)[1].split('"', 1)[0] for line in text.splitlines()
            if line.lower().startswith("content-disposition: form-data;")]


def shape(calls: list[Any]) -> list[tuple[str, str]]:
    """(method, host kind + path) of each request: ``reddit`` for Reddit's hosts, ``s3`` for the upload."""
    out = []
    for call in calls:
        parts = urlsplit(call.request.url if hasattr(call, "request") else call["request"]["uri"])
        method = call.request.method if hasattr(call, "request") else call["request"]["method"]
        where = "reddit" if parts.hostname and parts.hostname.endswith("reddit.com") else "s3"
        out.append((method, where + "  " + (parts.path.rstrip("/") if where == "reddit" else "")))
    return out


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def standin() -> RedditStandin:
    return RedditStandin()


def on_standin(standin: RedditStandin, mock: responses.RequestsMock, **options: Any) -> RedditAdapter:
    """An adapter talking to the stand-in through ``responses`` (Reddit's hosts and the uploads on 127.0.0.1)."""
    standin.install(mock)
    return RedditAdapter(reddit_config(reddit_settings(standin, **options)), clock=lambda: NOW)


def routes(standin: RedditStandin) -> list[str]:
    return [r.route for r in standin.requests if r.route != "access_token"]


# ---------------------------------------------------------------------------- the recorded exchanges


def test_an_inline_post_sends_what_the_recording_shows_praw_sending(mock):
    interactions = cassette(INLINE)
    add_token(mock)  # the recording logged in with a refresh token; the bot logs in with a password
    for lease, upload in ((interactions[1], interactions[2]), (interactions[3], interactions[4])):
        add_recorded(mock, lease)
        add_recorded(mock, upload, url="https://reddit-uploaded-media.s3-accelerate.amazonaws.com")
    add_recorded(mock, interactions[7])
    add_recorded(mock, interactions[8])
    adapter = replay_with(reddit_flair_id="")

    ref = adapter.publish(root(pictures(*ALTS)))

    assert ref.id == "j4p2rk"
    recorded = [interactions[i] for i in (0, 1, 2, 3, 4, 7, 8)]
    assert shape(list(mock.calls)) == shape(recorded)
    leases = [c for c in mock.calls if c.request.url.startswith("https://oauth.reddit.com/api/media/asset.json")]
    for call, interaction in zip(leases, (interactions[1], interactions[3]), strict=True):
        assert dict(parse_qsl(body_of(call.request))).keys() == dict(parse_qsl(recorded_body(interaction))).keys()
    assert [dict(parse_qsl(body_of(c.request))) for c in leases] == [
        {"api_type": "json", "filepath": "img1.png", "mimetype": "image/png"},
        {"api_type": "json", "filepath": "img2.jpg", "mimetype": "image/jpeg"}]
    uploads = [c for c in mock.calls if "amazonaws" in c.request.url]
    for call, interaction in zip(uploads, (interactions[2], interactions[4]), strict=True):
        assert multipart_names(body_of(call.request)) == multipart_names(recorded_body(interaction))
    convert = next(c for c in mock.calls if "/api/convert_rte_body_format" in c.request.url)
    sent = dict(parse_qsl(body_of(convert.request)))
    assert sent.keys() == dict(parse_qsl(recorded_body(interactions[7]))).keys()
    assert sent["output_mode"] == "rtjson"
    # the recording's asset ids, in order, each with its caption, after the first paragraph block
    assert sent["markdown_text"] == (
        "What happened a year ago.\n\n"
        '\n\n![img](3vwgfvq3tyq51 "A red square on a white wall")\n\n'
        '\n\n![img](9147est3tyq51 "The mayor, \\"smiling\\", at the opening")\n\n'
        "\n\nMore of it, with {braces} kept.\n\n[Source](https://example.com/a)")
    submit = next(c for c in mock.calls if "/api/submit/" in c.request.url)
    form = dict(parse_qsl(body_of(submit.request)))
    recorded_form = {k: PLACEHOLDERS.get(v, v) for k, v in parse_qsl(recorded_body(interactions[8]))}
    assert form.keys() == recorded_form.keys()
    assert {k: form[k] for k in ("api_type", "kind", "sr")} == {"api_type": "json", "kind": "self", "sr": SUBREDDIT}
    assert json.loads(form["richtext_json"]) == json.loads(interactions[7]["response"]["body"]["string"])["output"]


def test_a_gallery_post_sends_what_the_recording_shows_praw_sending(mock):
    interactions = cassette(GALLERY)
    add_token(mock, GALLERY)
    for lease, upload in ((interactions[1], interactions[2]), (interactions[3], interactions[4])):
        add_recorded(mock, lease)
        add_recorded(mock, upload, url="https://reddit-uploaded-media.s3-accelerate.amazonaws.com")
    add_recorded(mock, interactions[9])
    adapter = replay_with(reddit_images="gallery")

    ref = adapter.publish(root(pictures(*ALTS)))

    assert ref == PostRef("reddit", "1khu9tf", "https://www.reddit.com/comments/1khu9tf/",
                          {"name": "t3_1khu9tf", "submission": "1khu9tf"})
    assert shape(list(mock.calls)) == shape([interactions[i] for i in (0, 1, 2, 3, 4, 9)])
    uploads = [c for c in mock.calls if "amazonaws" in c.request.url]
    for call, interaction in zip(uploads, (interactions[2], interactions[4]), strict=True):
        assert multipart_names(body_of(call.request)) == multipart_names(recorded_body(interaction))
    submit = next(c for c in mock.calls if "/api/submit_gallery_post.json" in c.request.url)
    assert submit.request.headers["Content-Type"] == "application/json"
    sent, recorded = json.loads(body_of(submit.request)), json.loads(recorded_body(interactions[9]))
    assert sent.keys() == recorded.keys()
    assert [item.keys() for item in sent["items"]] == [item.keys() for item in recorded["items"][:2]]
    assert sent["items"] == [
        {"caption": ALTS[0], "outbound_url": "", "media_id": "p8lddeag3lze1"},
        {"caption": ALTS[1], "outbound_url": "", "media_id": "fsaeojbg3lze1"}]
    assert sent["text"] == BODY and sent["title"] == "Test Title" and sent["sr"] == SUBREDDIT


def test_the_stand_in_answers_the_picture_requests_in_the_recorded_shapes(standin, mock):
    inline, gallery = cassette(INLINE), cassette(GALLERY)
    on_standin(standin, mock).publish(root(pictures(ALTS[0])))
    on_standin(standin, mock, reddit_images="gallery").publish(root(pictures(ALTS[0]), title="Other"))
    answers: dict[str, list[Any]] = {}
    for call in mock.calls:
        path = urlsplit(call.request.url).path
        answers.setdefault(path, []).append(call.response)

    lease = json.loads(answers["/api/media/asset.json"][0].text)
    recorded_lease = json.loads(gallery[1]["response"]["body"]["string"])
    assert lease.keys() == recorded_lease.keys()
    assert lease["args"].keys() == recorded_lease["args"].keys()
    assert lease["asset"].keys() == recorded_lease["asset"].keys()
    assert {f["name"] for f in lease["args"]["fields"]} == {f["name"] for f in recorded_lease["args"]["fields"]}
    assert lease["args"]["action"].startswith("//127.0.0.1/")
    (upload,) = [r for p, rs in answers.items() if p.startswith("/s3/") for r in rs][:1]
    assert upload.status_code == 201 == gallery[2]["response"]["status"]["code"]
    assert upload.headers["Content-Type"] == "application/xml"
    assert "<PostResponse><Location>" in upload.text and "<Key>" in upload.text
    convert = json.loads(answers["/api/convert_rte_body_format"][0].text)
    recorded_convert = json.loads(inline[7]["response"]["body"]["string"])
    assert convert.keys() == recorded_convert.keys() and convert["output"].keys() == recorded_convert["output"].keys()
    assert {"c", "e", "id"} == set(convert["output"]["document"][1])
    submit = json.loads(answers["/api/submit/"][0].text)
    assert submit["json"]["data"].keys() >= {"url", "id", "name"}
    made = json.loads(answers["/api/submit_gallery_post.json"][0].text)
    recorded_made = json.loads(gallery[9]["response"]["body"]["string"])
    assert made["json"].keys() == recorded_made["json"].keys()
    assert made["json"]["data"].keys() == recorded_made["json"]["data"].keys()
    assert made["json"]["data"]["id"].startswith("t3_")


# ---------------------------------------------------------------------------- inline (the default)


def test_an_inline_post_carries_each_caption_in_order_after_the_first_paragraph(standin, mock):
    adapter = on_standin(standin, mock)
    alts = ("first picture", "second picture", "third, with a\nline break")

    ref = adapter.publish(root(pictures(*alts)))

    assert routes(standin) == ["media_asset", "s3_upload"] * 3 + ["convert_rte", "submit"]
    (convert,) = standin.requests_to("convert_rte")
    markdown = convert.form["markdown_text"]
    found = [markdown.index(f'"{caption(alt)}")') for alt in alts]
    assert found == sorted(found)
    assert markdown.index("What happened a year ago.") < found[0] < markdown.index("More of it")
    uploaded = [standin.assets[r.form["key"]]["data"] for r in standin.requests_to("s3_upload")]
    assert uploaded == [p.image.data for p in pictures(*alts)]
    post = standin.submissions[ref.id]
    assert post["selftext"].startswith("What happened a year ago.\n\n[first picture](https://preview.redd.it/")
    assert "[third, with a line break](https://preview.redd.it/" in post["selftext"]
    assert post["selftext"].endswith("More of it, with {braces} kept.\n\n[Source](https://example.com/a)")


def test_a_post_without_pictures_is_still_a_plain_self_post(standin, mock):
    adapter = on_standin(standin, mock)

    ref = adapter.publish(root(()))

    assert routes(standin) == ["submit"]
    assert standin.requests_to("submit")[0].form["text"] == BODY
    assert standin.submissions[ref.id]["selftext"] == BODY


def test_find_still_finds_an_inline_post_by_what_survives_of_its_text(standin, mock):
    adapter = on_standin(standin, mock)
    post = root(pictures(*ALTS))
    standin.drop_next("submit")  # posted, answer lost

    with pytest.raises(OutcomeUnknown):
        adapter.publish(post)

    (made,) = standin.posts_by()
    assert made["selftext"] != BODY  # Reddit gives back its own Markdown, pictures included
    assert adapter.find(post) is not None and adapter.find(post).id == made["id"]  # type: ignore[union-attr]
    assert adapter.find(root(pictures(*ALTS), selftext="Another story.\n\nEntirely.")) is None
    assert adapter.find(root(pictures(*ALTS), title="Another title")) is None


def test_what_survives_of_the_recorded_inline_post_is_its_text():
    fetched = json.loads(cassette(INLINE)[9]["response"]["body"]["string"])
    selftext = fetched[0]["data"]["children"][0]["data"]["selftext"]
    assert "[optional caption](https://preview.redd.it/" in selftext

    assert surviving_words(selftext) == surviving_words("Text with a gif\n\nan image\n\nand a video\n\ninline")
    assert surviving_words(selftext) != surviving_words("Text with a gif\n\nan image")
    assert surviving_words("*March 1* · snake\\_case **bold**") == surviving_words("_March 1_ · snake_case bold")


def test_inline_selftext_places_the_pictures_after_the_first_block_and_keeps_braces():
    assert inline_selftext("One.\n\nTwo {x}.", 2) == "One.\n\n{img1}{img2}\n\nTwo {{x}}."
    assert inline_selftext("Only {one} block.", 1) == "Only {{one}} block.\n\n{img1}"
    assert inline_selftext("A {b}", 0) == "A {b}"
    assert inline_selftext("```\ncode\n\nmore\n```\n\nText.", 1) == "```\ncode\n\nmore\n```\n\nText.\n\n{img1}"
    assert inline_selftext("One.\n\nTwo {x}.", 2).format(img1="<1>", img2="<2>") == "One.\n\n<1><2>\n\nTwo {x}."


def test_captions_are_one_line_and_escaped_for_an_inline_picture():
    assert caption("two\n lines\tand  spaces") == "two lines and spaces"
    assert inline_caption('a "quote" and a \\ backslash') == 'a \\"quote\\" and a \\\\ backslash'
    assert media_name(1, "image/jpeg") == "img1.jpg"
    assert media_name(2, "image/png") == "img2.png"
    assert media_name(3, "application/pdf") == "img3"


# ---------------------------------------------------------------------------- gallery


def test_a_gallery_post_sends_its_items_with_the_captions_in_order(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")
    alts = ("one", "two", "three", "x" * REDDIT_CAPTION)

    ref = adapter.publish(root(pictures(*alts)))

    assert routes(standin) == ["media_asset", "s3_upload"] * 4 + ["submit_gallery"]
    (submit,) = standin.requests_to("submit_gallery")
    assert [item["caption"] for item in submit.json["items"]] == list(alts)
    assert [item["media_id"] for item in submit.json["items"]] == [
        r.form["key"] for r in standin.requests_to("s3_upload")]
    assert submit.json["text"] == BODY
    post = standin.submissions[ref.id]
    assert post["selftext"] == BODY and [g["caption"] for g in post["gallery"]] == list(alts)
    assert adapter.find(root(pictures(*alts))) == PostRef(
        "reddit", ref.id, f"https://www.reddit.com{post['permalink']}", {"name": f"t3_{ref.id}", "submission": ref.id})


def test_a_caption_too_long_for_a_gallery_is_rejected_before_anything_is_sent(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")

    with pytest.raises(Rejected, match=r"picture 2 has 181 characters: a Reddit gallery caption holds at most 180"):
        adapter.publish(root(pictures("short", "y" * (REDDIT_CAPTION + 1))))

    assert routes(standin) == []
    assert standin.posts_by() == []


def test_a_long_alt_text_is_fine_inline(standin, mock):
    adapter = on_standin(standin, mock)

    adapter.publish(root(pictures("y" * 1000)))

    assert "y" * 1000 in standin.requests_to("convert_rte")[0].form["markdown_text"]


def test_a_gallery_reddit_refuses_is_rejected_with_its_reason(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")
    recorded = json.loads(cassette(GALLERY_2020)[-2]["response"]["body"]["string"])  # the envelope, as recorded
    assert recorded["json"]["errors"] == []
    standin.fail_next("submit_gallery", status=200, body={"json": {"errors": [
        ["GALLERIES_DISABLED", "Gallery posts aren't allowed in this subreddit", "sr"]]}})

    with pytest.raises(Rejected, match="GALLERIES_DISABLED"):
        adapter.publish(root(pictures(*ALTS)))


def test_ratelimit_on_a_gallery_post_is_rate_limited(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")
    standin.rate_limit_next("submit_gallery", "Take a break for 3 minutes before trying again.")

    with pytest.raises(RateLimited) as info:
        adapter.publish(root(pictures(*ALTS)))

    assert info.value.retry_at is not None and (info.value.retry_at - NOW).total_seconds() == 240


def test_a_5xx_on_the_gallery_post_itself_is_an_unknown_outcome(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")
    standin.fail_next("submit_gallery", status=503, body={"message": "Service Unavailable"}, apply=True)

    with pytest.raises(OutcomeUnknown):
        adapter.publish(root(pictures(*ALTS)))

    assert len(standin.requests_to("submit_gallery")) == 1


# ---------------------------------------------------------------------------- failures before the post


@pytest.mark.parametrize("images", ["inline", "gallery"])
@pytest.mark.parametrize("fault", ["drop", "503", "timeout"])
def test_a_failed_upload_is_transient_and_nothing_is_submitted(standin, mock, images, fault):
    adapter = on_standin(standin, mock, reddit_images=images)
    if fault == "drop":
        standin.drop_next("s3_upload", apply=False)
    elif fault == "503":
        standin.fail_next("s3_upload", status=503, body=b"<Error><Code>SlowDown</Code></Error>")
    else:
        standin.delay_next("s3_upload", 60.0)

    with pytest.raises(Transient):
        adapter.publish(root(pictures(*ALTS)))

    assert [r for r in standin.requests if r.route in ("convert_rte", "submit", "submit_gallery")] == []
    assert standin.posts_by() == []


@pytest.mark.parametrize("route", ["media_asset", "convert_rte"])
def test_a_lease_or_conversion_lost_is_transient_because_the_post_was_not_sent(standin, mock, route):
    adapter = on_standin(standin, mock)
    standin.fail_next(route, status=503, body={"message": "Service Unavailable"})

    with pytest.raises(Transient):
        adapter.publish(root(pictures(*ALTS)))

    assert standin.requests_to("submit") == [] and standin.posts_by() == []


def test_a_picture_larger_than_s3_takes_is_rejected_and_nothing_is_submitted(standin, mock):
    adapter = on_standin(standin, mock, reddit_images="gallery")
    standin.s3_max_bytes = 50

    with pytest.raises(Rejected, match=r"too large for Reddit \(\d[\d,]* bytes; at most 50\)"):
        adapter.publish(root(pictures(*ALTS)))

    assert standin.requests_to("submit_gallery") == []


@pytest.mark.parametrize("images", ["inline", "gallery"])
def test_a_picture_of_a_type_praw_cannot_name_is_rejected_before_anything_is_sent(standin, mock, images):
    adapter = on_standin(standin, mock, reddit_images=images)
    odd = Picture(Image.of(b"not really", "image/x-unknown", 1, 1), "odd")

    with pytest.raises(Rejected, match="praw refused the post before sending it"):
        adapter.publish(root((odd,)))

    assert routes(standin) == []


# ---------------------------------------------------------------------------- follow-ups


def test_a_followup_comment_leaves_its_pictures_out_and_says_so(standin, mock, caplog):
    caplog.set_level(logging.INFO, logger="adapters.reddit")
    adapter = on_standin(standin, mock)
    parent = adapter.publish(root(()))
    reply = Outgoing("reddit", "s1", "followup", 1, {"text": "A year later."}, None, parent, parent,
                     pictures=pictures("later"))

    ref = adapter.reply(reply)

    assert standin.comments[ref.id]["body"] == "A year later."
    assert [r.route for r in standin.requests if r.route in ("media_asset", "s3_upload")] == []
    assert "1 picture(s) of followup 1 of s1 left out: a Reddit comment cannot carry an uploaded picture" \
        in caplog.text


# ---------------------------------------------------------------------------- the setting


def test_the_images_setting_defaults_to_inline_and_reaches_the_adapter(standin):
    assert load_settings({}, environ={}, env_file=None).reddit_images == "inline"
    settings = reddit_settings(standin, reddit_images="Gallery")
    assert settings.reddit_images == "gallery"
    assert reddit_config(settings).images == "gallery"
    assert RedditAdapter(reddit_config(settings)).images == "gallery"


@pytest.mark.parametrize("value", ["carousel", "inline,gallery", "none"])
def test_a_bad_images_setting_names_the_variable(value):
    with pytest.raises(ConfigError) as info:
        load_settings({}, environ={"ONEYEARAGO_REDDIT_IMAGES": value}, env_file=None)
    assert f"ONEYEARAGO_REDDIT_IMAGES={value}" in str(info.value)
    assert "is not one of inline, gallery" in str(info.value)


def test_a_config_with_an_unknown_images_mode_is_refused():
    account = _ReplayAccount()
    config = RedditConfig(client_id=account.client_id, client_secret=account.client_secret,
                          username=account.username, password=account.users[account.username],
                          subreddit=SUBREDDIT, version="0", images="carousel")
    with pytest.raises(ConfigError, match="images must be one of inline, gallery"):
        RedditAdapter(config)


# ---------------------------------------------------------------------------- over real HTTP


@pytest.fixture
def served() -> Iterator[tuple[RedditStandin, str]]:
    """The stand-in as a real TLS server on 127.0.0.1: praw uploads to ``https:`` + the lease's action."""
    standin = RedditStandin()
    url = standin.serve(tls=True)
    try:
        yield standin, url
    finally:
        standin.stop()


def over_https(standin: RedditStandin, url: str, **options: Any) -> RedditAdapter:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides ``verify``
    session.verify = standin.ca_file
    return RedditAdapter(reddit_config(reddit_settings(standin, url, **options)), clock=lambda: NOW,
                         requestor_kwargs={"session": session})


@pytest.mark.parametrize("images", ["inline", "gallery"])
def test_pictures_are_uploaded_over_real_https_to_the_stand_in(served, images):
    standin, url = served
    adapter = over_https(standin, url, reddit_images=images)
    pics = pictures(*ALTS)

    ref = adapter.publish(root(pics))

    uploads = standin.requests_to("s3_upload")
    assert [standin.assets[r.form["key"]]["data"] for r in uploads] == [p.image.data for p in pics]
    assert [r.files["file"][0] for r in uploads] == ["img1.png", "img2.jpg"]
    assert adapter.find(root(pics)) is not None and adapter.find(root(pics)).id == ref.id  # type: ignore[union-attr]


def test_an_upload_whose_connection_drops_is_transient_over_real_https(served):
    standin, url = served
    adapter = over_https(standin, url)
    standin.drop_next("s3_upload", apply=False)

    with pytest.raises(Transient):
        adapter.publish(root(pictures(*ALTS)))

    assert standin.requests_to("submit") == [] and standin.posts_by() == []


# ---------------------------------------------------------------------------- the one error boundary


@pytest.mark.parametrize(("raised", "expected", "reason"), [
    (TooLargeMediaException(actual=25_000_000, maximum_size=20_971_520), Rejected,
     "a picture is too large for Reddit (25,000,000 bytes; at most 20,971,520): nothing was posted"),
    (MediaPostFailed(), Rejected, "Reddit could not process a picture of the post (corrupt image?)"),
    (WebSocketException("Websocket error."), OutcomeUnknown, "it may have been posted"),
    (ClientException("Unable to determine the MIME type of 'img1'."), Rejected,
     "praw refused the post before sending it: Unable to determine the MIME type of 'img1'."),
])
def test_praws_media_errors_are_translated_at_the_one_boundary(raised, expected, reason):
    adapter = replay_with()

    with pytest.raises(expected) as info, adapter._mapped("submit"):
        raise raised

    assert type(info.value) is expected and reason in info.value.reason


# ---------------------------------------------------------------------------- a crash in the middle of a send


def test_a_picture_post_the_platform_took_before_a_crash_is_found_on_restart_not_posted_again(
        standin, mock, tmp_path, store, settings, clock):
    """The chaos run's double post: recovery looked the post up without its pictures, so the text it
    compared lacked the picture lines Reddit writes into an inline post, missed it, and sent it again."""
    from bot.engine import Engine
    from bot.planner import Planner
    from bot.sources.stories import load_stories
    from tests.test_pictures import picture, story_file

    picture(tmp_path / "then.jpg")
    picture(tmp_path / "map.png", (300, 200), (20, 90, 200))
    path = story_file(tmp_path, [{"path": "then.jpg", "alt": "The bridge in scaffolding"},
                                 {"path": "map.png", "alt": "A map of the river crossing"}], platforms=["reddit"])
    Planner(store, settings).load(load_stories([path]), now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    adapter = on_standin(standin, mock)
    due = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    clock["t"] = due
    crashed = Engine(store, {"reddit": adapter}, settings, clock=lambda: clock["t"], worker="w1")
    claim = crashed.claim("reddit", due)  # the intent is committed...
    assert claim is not None and len(claim.post.pictures) == 2
    adapter.publish(claim.post)  # ...Reddit took the post, and the process died before it heard back
    restarted = Engine(store, {"reddit": on_standin(standin, mock)}, settings, clock=lambda: clock["t"],
                       worker="w2")
    report = restarted.reconcile(due, all_sending=True)
    assert report.count("posted") == 1, report.events
    restarted.run_once(due + dt.timedelta(minutes=5))
    assert len(standin.posts_by()) == 1
