"""Tests for posts.lexicon: interop syntax and record-data vectors, and app.bsky.feed.post records."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posts.bluesky_text import detect_facets, fits_post, linkify
from posts.lexicon import (
    BUNDLED_LEXICONS,
    FORMAT_CHECKS,
    LexiconDocumentError,
    LexiconRegistry,
    LexiconValidationError,
    bundled_registry,
    check_format,
)
from tests.bluesky_support import RichText

DATA = Path(__file__).parent / "data" / "bluesky"
SYNTAX = DATA / "interop" / "syntax"
INTEROP_LEXICON = DATA / "interop" / "lexicon"

POST = "app.bsky.feed.post"
CREATED_AT = "2025-06-01T12:00:00.000Z"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
ROOT_URI = "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3l25zusnsfck2"
PARENT_URI = "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3l25zusnsfck3"


# Interop syntax vectors ------------------------------------------------------------------

SYNTAX_FORMATS = {
    "atidentifier": "at-identifier",
    "aturi": "at-uri",
    "cid": "cid",
    "datetime": "datetime",
    "did": "did",
    "handle": "handle",
    "language": "language",
    "nsid": "nsid",
    "recordkey": "record-key",
    "tid": "tid",
    "uri": "uri",
}


def _examples(path: Path) -> list[str]:
    # One example per line; spaces are significant; blank lines and "#" lines are comments.
    return [
        line for line in path.read_text(encoding="utf-8").split("\n") if line and not line.startswith("#")
    ]


def _syntax_cases() -> list:
    cases = []
    for path in sorted(SYNTAX.glob("*.txt")):
        name, kind, validity = path.stem.split("_")
        fmt = SYNTAX_FORMATS[name]
        for example in _examples(path):
            cases.append(pytest.param(fmt, example, validity == "valid", id=f"{path.stem}:{example[:40]!r}"))
    return cases


def test_every_syntax_file_is_used():
    names = {path.stem.split("_")[0] for path in SYNTAX.glob("*.txt")}
    assert names == set(SYNTAX_FORMATS)
    assert set(SYNTAX_FORMATS.values()) == set(FORMAT_CHECKS)


@pytest.mark.parametrize(("fmt", "example", "valid"), _syntax_cases())
def test_syntax_vectors(fmt, example, valid):
    assert check_format(fmt, example) is valid


def test_unknown_format_passes():
    assert check_format("some-future-format", "anything")


# Interop lexicon vectors -----------------------------------------------------------------


@pytest.fixture(scope="module")
def interop_registry() -> LexiconRegistry:
    return LexiconRegistry.from_directory(INTEROP_LEXICON / "catalog")


RECORD_DATA_VALID = json.loads((INTEROP_LEXICON / "record-data-valid.json").read_text(encoding="utf-8"))
RECORD_DATA_INVALID = json.loads((INTEROP_LEXICON / "record-data-invalid.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", RECORD_DATA_VALID, ids=lambda c: c["name"])
def test_interop_record_data_valid(interop_registry, case):
    interop_registry.validate_record(case["data"]["$type"], case["data"], rkey=case["rkey"])


@pytest.mark.parametrize("case", RECORD_DATA_INVALID, ids=lambda c: c["name"])
def test_interop_record_data_invalid(interop_registry, case):
    with pytest.raises(LexiconValidationError) as excinfo:
        interop_registry.validate_record(case["data"]["$type"], case["data"], rkey=case["rkey"])
    assert excinfo.value.path.startswith("record")


@pytest.mark.parametrize(
    "case",
    [c for c in RECORD_DATA_INVALID if c["name"].startswith("unknown wrong type")],
    ids=lambda c: c["name"],
)
def test_interop_unknown_wrong_type_fails_on_unknown(interop_registry, case):
    # These vectors also lack the required "integer"; add it so the unknown field is what fails.
    data = {**case["data"], "integer": 1}
    with pytest.raises(LexiconValidationError) as excinfo:
        interop_registry.validate_record(data["$type"], data, rkey=case["rkey"])
    assert excinfo.value.path == "record/unknown"


def test_interop_record_key_literal(interop_registry):
    data = RECORD_DATA_VALID[0]["data"]
    with pytest.raises(LexiconValidationError) as excinfo:
        interop_registry.validate_record(data["$type"], data, rkey="other")
    assert excinfo.value.path == "rkey"


@pytest.mark.parametrize(
    "case",
    json.loads((INTEROP_LEXICON / "lexicon-valid.json").read_text(encoding="utf-8")),
    ids=lambda c: c["name"],
)
def test_interop_lexicon_documents_valid(case):
    LexiconRegistry([case["lexicon"]])


@pytest.mark.parametrize(
    "case",
    json.loads((INTEROP_LEXICON / "lexicon-invalid.json").read_text(encoding="utf-8")),
    ids=lambda c: c["name"],
)
def test_interop_lexicon_documents_invalid(case):
    with pytest.raises(LexiconDocumentError):
        LexiconRegistry([case["lexicon"]])


def test_duplicate_lexicon_is_rejected():
    document = json.loads(
        (BUNDLED_LEXICONS / "app" / "bsky" / "feed" / "post.json").read_text(encoding="utf-8")
    )
    registry = LexiconRegistry([document])
    with pytest.raises(LexiconDocumentError, match="already loaded"):
        registry.add(document)


# Bundled lexicons and post records -------------------------------------------------------


def test_bundled_registry_contents():
    registry = bundled_registry()
    assert registry is bundled_registry()
    assert {
        "app.bsky.feed.post",
        "app.bsky.richtext.facet",
        "app.bsky.embed.external",
        "com.atproto.repo.strongRef",
    } <= set(registry.nsids)
    assert registry.get_def("app.bsky.feed.post")["record"]["properties"]["text"]["maxGraphemes"] == 300
    assert (BUNDLED_LEXICONS / "README.md").is_file()
    assert (BUNDLED_LEXICONS / "LICENSE-MIT.txt").is_file()
    assert (BUNDLED_LEXICONS / "LICENSE-APACHE.txt").is_file()


def _post(**fields) -> dict:
    return {"$type": POST, "text": "Hello, world", "createdAt": CREATED_AT, **fields}


def _strong_ref(uri: str = ROOT_URI) -> dict:
    return {"uri": uri, "cid": CID}


def _blob(mime: str = "image/jpeg", size: int = 123_456) -> dict:
    return {"$type": "blob", "ref": {"$link": CID}, "mimeType": mime, "size": size}


def _external() -> dict:
    external = {
        "uri": "https://www.example.com/news/2025/06/01/story",
        "title": "A story",
        "description": "What happened",
        "thumb": _blob(),
    }
    return {"$type": "app.bsky.embed.external", "external": external}


def _rich_post() -> dict:
    text, facets = (
        RichText()
        .text("One year ago 👨‍👩‍👧‍👧: ")
        .link("example.com/news/2025/0...", "https://example.com/news/2025/06/01/story")
        .text(" ")
        .tag("#OneYearAgo", "OneYearAgo")
        .build()
    )
    return _post(text=text, facets=facets)


VALID_POSTS = {
    "plain": _post(),
    "empty text": _post(text=""),
    "sdk createdAt": _post(createdAt="2025-06-01T12:00:00.123456+00:00"),
    "no $type": {"text": "x", "createdAt": CREATED_AT},
    "link and tag facets": _rich_post(),
    "reply": _post(reply={"root": _strong_ref(ROOT_URI), "parent": _strong_ref(PARENT_URI)}),
    "external embed with thumb": _post(embed=_external(), langs=["en", "pt-BR", "ja"]),
    "external embed without thumb": _post(
        embed={
            "$type": "app.bsky.embed.external",
            "external": {"uri": "https://a.example", "title": "", "description": ""},
        }
    ),
    "images embed": _post(
        embed={
            "$type": "app.bsky.embed.images",
            "images": [
                {"image": _blob("image/png", 2_000_000), "alt": "", "aspectRatio": {"width": 4, "height": 3}}
            ],
        }
    ),
    "quote embed": _post(embed={"$type": "app.bsky.embed.record", "record": _strong_ref()}),
    "embed not bundled (open union)": _post(
        embed={"$type": "app.bsky.embed.video", "video": _blob("video/mp4")}
    ),
    "self labels (open union)": _post(
        labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "graphic-media"}]}
    ),
    "tags": _post(tags=["news", "1yearago"]),
    "unknown extra field": _post(lol="kek"),
    "max length text": _post(text="a" * 300),
    "max bytes text": _post(text="👨‍👩‍👧‍👧" * 120),
    "unknown facet feature (open union)": _post(
        text="abc",
        facets=[{"index": {"byteStart": 0, "byteEnd": 3}, "features": [{"$type": "com.example.facet#bold"}]}],
    ),
}


@pytest.mark.parametrize("record", VALID_POSTS.values(), ids=VALID_POSTS.keys())
def test_valid_posts(record):
    bundled_registry().validate_record(POST, record, rkey="3l25zusnsfck2")


def _with(record: dict, path: str, value) -> dict:
    record = copy.deepcopy(record)
    *parents, last = path.split("/")
    target = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return record


def _without(record: dict, key: str) -> dict:
    record = copy.deepcopy(record)
    del record[key]
    return record


REPLY = VALID_POSTS["reply"]
EXTERNAL = VALID_POSTS["external embed with thumb"]
RICH = VALID_POSTS["link and tag facets"]

INVALID_POSTS = {
    "301 graphemes": (_post(text="a" * 301), "record/text", "300 graphemes"),
    "3001 bytes": (_post(text="👨‍👩‍👧‍👧" * 120 + "a"), "record/text", "3000 UTF-8 bytes"),
    "missing createdAt": (_without(_post(), "createdAt"), "record", "createdAt"),
    "missing text": (_without(_post(), "text"), "record", "text"),
    "bad datetime": (_post(createdAt="2025-06-01 12:00:00"), "record/createdAt", "datetime"),
    "datetime without timezone": (_post(createdAt="2025-06-01T12:00:00"), "record/createdAt", "datetime"),
    "impossible date": (_post(createdAt="2025-02-30T12:00:00Z"), "record/createdAt", "datetime"),
    "byteStart negative": (
        _with(RICH, "facets/0/index/byteStart", -1),
        "record/facets/0/index/byteStart",
        "less than 0",
    ),
    "byteEnd not an integer": (
        _with(RICH, "facets/1/index/byteEnd", "7"),
        "record/facets/1/index/byteEnd",
        "integer",
    ),
    "byteEnd boolean": (
        _with(RICH, "facets/1/index/byteEnd", True),
        "record/facets/1/index/byteEnd",
        "integer",
    ),
    "facet without features": (
        _with(RICH, "facets/0", {"index": {"byteStart": 0, "byteEnd": 1}}),
        "record/facets/0",
        "features",
    ),
    "link uri not a uri": (
        _with(RICH, "facets/0/features/0/uri", "example.com"),
        "record/facets/0/features/0/uri",
        "uri",
    ),
    "tag too long": (
        _with(RICH, "facets/1/features/0/tag", "a" * 65),
        "record/facets/1/features/0/tag",
        "64 graphemes",
    ),
    "mention with a handle": (
        _with(RICH, "facets/1/features/0", {"$type": "app.bsky.richtext.facet#mention", "did": "alice.test"}),
        "record/facets/1/features/0/did",
        "did",
    ),
    "feature without $type": (
        _with(RICH, "facets/1/features/0", {"tag": "x"}),
        "record/facets/1/features/0",
        "$type",
    ),
    "4 langs": (_post(langs=["en", "de", "fr", "ja"]), "record/langs", "3 elements"),
    "bad lang": (_post(langs=["en", "EN"]), "record/langs/1", "language"),
    "9 tags": (_post(tags=[f"t{i}" for i in range(9)]), "record/tags", "8 elements"),
    "bad at-uri in strongRef": (
        _with(REPLY, "reply/root/uri", "https://bsky.app/profile/x/post/3l25zusnsfck2"),
        "record/reply/root/uri",
        "at-uri",
    ),
    "bad cid in strongRef": (_with(REPLY, "reply/parent/cid", "not a cid"), "record/reply/parent/cid", "cid"),
    "reply without parent": (
        _with(REPLY, "reply", {"root": _strong_ref()}),
        "record/reply",
        "parent",
    ),
    "thumb too big": (
        _with(EXTERNAL, "embed/external/thumb/size", 1_000_001),
        "record/embed/external/thumb/size",
        "maxSize 1000000",
    ),
    "thumb wrong mime": (
        _with(EXTERNAL, "embed/external/thumb/mimeType", "text/html"),
        "record/embed/external/thumb/mimeType",
        "image/*",
    ),
    "thumb legacy shape": (
        _with(EXTERNAL, "embed/external/thumb", {"cid": CID, "mimeType": "image/png"}),
        "record/embed/external/thumb",
        "blob",
    ),
    "thumb bad cid link": (
        _with(EXTERNAL, "embed/external/thumb/ref", {"$link": "Qm"}),
        "record/embed/external/thumb/ref",
        "CID",
    ),
    "external without title": (
        _with(EXTERNAL, "embed/external", {"uri": "https://a.example", "description": ""}),
        "record/embed/external",
        "title",
    ),
    "embed without $type": (_post(embed={"external": {}}), "record/embed", "$type"),
    "five images": (
        _post(embed={"$type": "app.bsky.embed.images", "images": [{"image": _blob(), "alt": ""}] * 5}),
        "record/embed/images",
        "4 elements",
    ),
    "image too big": (
        _post(
            embed={"$type": "app.bsky.embed.images", "images": [{"image": _blob(size=2_000_001), "alt": ""}]}
        ),
        "record/embed/images/0/image/size",
        "maxSize",
    ),
    "wrong $type": (_post(**{"$type": "app.bsky.feed.like"}), "record/$type", "app.bsky.feed.post"),
    "not an object": ("hello", "record", "object"),
}


@pytest.mark.parametrize(("record", "path", "message"), INVALID_POSTS.values(), ids=INVALID_POSTS.keys())
def test_invalid_posts(record, path, message):
    with pytest.raises(LexiconValidationError) as excinfo:
        bundled_registry().validate_record(POST, record)
    assert excinfo.value.path == path
    assert message in excinfo.value.message
    assert str(excinfo.value).startswith(f"{path}: ")


@pytest.mark.parametrize("rkey", ["self", "3L25ZUSNSFCK2", "zzzzzzzzzzzzz"])
def test_post_rkey_must_be_tid(rkey):
    with pytest.raises(LexiconValidationError) as excinfo:
        bundled_registry().validate_record(POST, _post(), rkey=rkey)
    assert excinfo.value.path == "rkey"


def test_unknown_collection():
    with pytest.raises(KeyError):
        bundled_registry().validate_record("app.bsky.feed.like", {})


def test_validate_single_definition():
    registry = bundled_registry()
    facet = _rich_post()["facets"][0]
    registry.validate("app.bsky.richtext.facet", facet)
    with pytest.raises(LexiconValidationError) as excinfo:
        registry.validate("app.bsky.richtext.facet", _with(facet, "index/byteEnd", -5), path="facet")
    assert excinfo.value.path == "facet/index/byteEnd"


def test_real_records_from_the_sdk_tests():
    registry = bundled_registry()
    plain = json.loads((DATA / "marshalx" / "post_record.json").read_text(encoding="utf-8"))
    registry.validate_record(POST, plain["value"], rkey=plain["uri"].rpartition("/")[2])
    # A 2023 record written without a timezone: stored by the network then, invalid by the spec.
    extended = json.loads((DATA / "marshalx" / "extended_post_record.json").read_text(encoding="utf-8"))
    with pytest.raises(LexiconValidationError) as excinfo:
        registry.validate_record(POST, extended["value"])
    assert excinfo.value.path == "record/createdAt"
    registry.validate_record(POST, {**extended["value"], "createdAt": "2023-07-21T01:33:51.481951Z"})


def test_linkify_output_is_a_valid_post():
    text, facets = linkify(
        "One year ago: https://www.example.com/news/2025/06/01/some-long-story-slug?ref=rss #OneYearAgo (bsky.app)"
    )
    bundled_registry().validate_record(POST, _post(text=text, facets=facets))


words = st.one_of(
    st.sampled_from(
        ["news", "👨‍👩‍👧‍👧", "🇩🇪", "שלום", "e\u0301", "新聞", "#tag", "＃タグ", "$AAPL", "(", ".", "\n"]
    ),
    st.builds(
        lambda host, path: f"https://{host}.com/{path}",
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z0-9/_-]{0,30}", fullmatch=True),
    ),
    st.builds(lambda host: f"{host}.org", st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
)


@pytest.mark.slow
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(words, st.sampled_from(["", " ", "  ", "\n"])), max_size=15))
def test_detected_and_linkified_facets_are_valid_lexicon_data(parts):
    text = "".join(word + sep for word, sep in parts)
    registry = bundled_registry()
    for candidate_text, facets in ((text, detect_facets(text)), linkify(text)):
        if fits_post(candidate_text):
            registry.validate_record(POST, _post(text=candidate_text, facets=facets))
