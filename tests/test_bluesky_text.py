"""Tests for posts.bluesky_text against the atproto and cookbook vectors, plus property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posts.bluesky_text import (
    LINK_TYPE,
    MAX_BYTES,
    MAX_GRAPHEMES,
    MENTION_TYPE,
    TAG_TYPE,
    detect_facets,
    fits_post,
    grapheme_len,
    graphemes,
    linkify,
    shorten_url,
    utf8_len,
    utf16_index_to_utf8_index,
)
from tests.bluesky_support import RichText, validate_facets

DATA = Path(__file__).parent / "data" / "bluesky"
LENGTHS = json.loads((DATA / "atproto" / "length-vectors.json").read_text(encoding="utf-8"))
DETECTION = json.loads((DATA / "atproto" / "richtext-detection-vectors.json").read_text(encoding="utf-8"))
COOKBOOK = json.loads((DATA / "cookbook" / "facet-byte-offset-vectors.json").read_text(encoding="utf-8"))


def _slice(text: str, facet: dict) -> str:
    index = facet["index"]
    return text.encode("utf-8")[index["byteStart"] : index["byteEnd"]].decode("utf-8")


def _kind(facet: dict) -> str:
    return facet["features"][0]["$type"]


# Lengths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", LENGTHS["utf8_and_grapheme_length"], ids=lambda v: v["text"])
def test_length_vectors(vector):
    assert grapheme_len(vector["text"]) == vector["graphemes"]
    assert len(graphemes(vector["text"])) == vector["graphemes"]
    assert "".join(graphemes(vector["text"])) == vector["text"]
    if "utf8Bytes" in vector:
        assert utf8_len(vector["text"]) == vector["utf8Bytes"]


def test_hindi_namaste_is_three_graphemes():
    assert grapheme_len("नमस्ते") == 3


def test_utf16_entities_convert_to_utf8_facets():
    case = LENGTHS["utf16_entity_to_utf8_facet"]
    for entity, facet in zip(case["entities_utf16"], case["facets_utf8"], strict=True):
        assert utf16_index_to_utf8_index(case["text"], entity["start"]) == facet["byteStart"]
        assert utf16_index_to_utf8_index(case["text"], entity["end"]) == facet["byteEnd"]


def test_utf16_index_inside_surrogate_pair_is_rejected():
    with pytest.raises(ValueError, match="surrogate"):
        utf16_index_to_utf8_index("😀", 1)
    with pytest.raises(ValueError, match="past the end"):
        utf16_index_to_utf8_index("a", 2)


def test_segment_utf8_indices():
    case = LENGTHS["segments_utf8_indices"]
    words = case["text"].split(" ")
    assert [_slice(case["text"], {"index": f}) for f in case["facets"]] == words


@pytest.mark.parametrize("vector", LENGTHS["grapheme_limit_checks"], ids=lambda v: v["text"])
def test_grapheme_limit_checks(vector):
    assert (grapheme_len(vector["text"]) <= vector["maxGraphemes"]) is vector["valid"]


def test_post_limits():
    assert (MAX_GRAPHEMES, MAX_BYTES) == (300, 3000)
    assert fits_post("a" * 300)
    assert not fits_post("a" * 301)
    assert fits_post("👨‍👩‍👧‍👧" * 120)  # 120 graphemes, 3000 bytes
    assert not fits_post("👨‍👩‍👧‍👧" * 121)  # 121 graphemes, 3025 bytes


# Detection -------------------------------------------------------------------------------


def _expected_detect(vector: dict) -> list[tuple]:
    expected = []
    for facet in vector["derivedFacets"]:
        value = facet["value"]
        if facet["kind"] == "mention":
            # The upstream test resolves handles to did:fake:<handle>; unresolved, the handle is kept.
            value = value.removeprefix("did:fake:")
        expected.append((facet["byteStart"], facet["byteEnd"], facet["kind"], value))
    return expected


def _actual(facets: list[dict]) -> list[tuple]:
    kinds = {LINK_TYPE: "link", MENTION_TYPE: "mention", TAG_TYPE: "tag"}
    out = []
    for facet in facets:
        feature = facet["features"][0]
        value = feature.get("uri") or feature.get("did") or feature.get("tag")
        out.append((facet["index"]["byteStart"], facet["index"]["byteEnd"], kinds[feature["$type"]], value))
    return out


@pytest.mark.parametrize("vector", DETECTION["detectFacets"], ids=lambda v: v["text"])
def test_detect_facets_vectors(vector):
    facets = detect_facets(vector["text"], mentions=True)
    assert _actual(facets) == _expected_detect(vector)
    for facet, expected in zip(facets, vector["derivedFacets"], strict=True):
        assert facet["$type"] == "app.bsky.richtext.facet"
        assert _slice(vector["text"], facet) == expected["text"]
    validate_facets(vector["text"], facets)


@pytest.mark.parametrize("vector", DETECTION["detectFacets"], ids=lambda v: v["text"])
def test_detect_facets_drops_mentions_by_default(vector):
    expected = [f for f in _expected_detect(vector) if f[2] != "mention"]
    assert _actual(detect_facets(vector["text"])) == expected


@pytest.mark.parametrize(
    "vector",
    DETECTION["tags"] + DETECTION["cashtags"],
    ids=lambda v: v["text"].encode("unicode_escape").decode(),
)
def test_tag_and_cashtag_vectors(vector):
    facets = detect_facets(vector["text"])
    expected = [
        (index["byteStart"], index["byteEnd"], "tag", tag)
        for tag, index in zip(vector["tags"], vector["indices"], strict=True)
    ]
    assert _actual(facets) == expected
    validate_facets(vector["text"], facets)


def test_link_facet_shape():
    assert detect_facets("see example.com/a, then") == [
        {
            "$type": "app.bsky.richtext.facet",
            "index": {"byteStart": 4, "byteEnd": 17},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}],
        }
    ]


@pytest.mark.parametrize(
    ("text", "uri"),
    [
        ("see httpbin.org/get", "https://httpbin.org/get"),  # upstream: "httpbin.org/get", no URI
        ("http.0 and https.zz", None),  # not TLDs
        ("HTTPS://EXAMPLE.COM", None),  # upstream does not link upper-case schemes
        ("Example.COM", None),  # TLDs are compared case-sensitively upstream
    ],
)
def test_link_scheme_edge_cases(text, uri):
    links = [f["features"][0]["uri"] for f in detect_facets(text)]
    assert links == ([uri] if uri else [])


def test_overlapping_facets_are_resolved():
    # Upstream would emit a tag over the whole run and a link inside it.
    text = "#x(https://example.com"
    facets = detect_facets(text)
    assert _actual(facets) == [(0, 22, "tag", "x(https://example.com")]
    validate_facets(text, facets)


# Cookbook: a different, simpler parser. Where upstream detection differs, the upstream result is
# asserted instead, with the reason.
COOKBOOK_DIVERGENCES = {
    "example.com": ([{"start": 0, "end": 11, "url": "example.com"}], "upstream links bare domains"),
    "ref [https://bsky.app]": ([], "upstream needs start, whitespace or '(' before a link"),
    "cc:@example.com": ([], "upstream needs start, whitespace or '(' before a mention"),
}


@pytest.mark.parametrize("vector", COOKBOOK["urls"], ids=lambda v: v["text"])
def test_cookbook_url_vectors(vector):
    text = vector["text"]
    facets = [f for f in detect_facets(text) if _kind(f) == LINK_TYPE]
    got = [
        {"start": f["index"]["byteStart"], "end": f["index"]["byteEnd"], "url": _slice(text, f)}
        for f in facets
    ]
    expected = COOKBOOK_DIVERGENCES[text][0] if text in COOKBOOK_DIVERGENCES else vector["expected"]
    assert got == expected
    for facet in facets:
        uri = facet["features"][0]["uri"]
        assert uri in (_slice(text, facet), "https://" + _slice(text, facet))


@pytest.mark.parametrize("vector", COOKBOOK["mentions"], ids=lambda v: v["text"])
def test_cookbook_mention_vectors(vector):
    text = vector["text"]
    got = [
        {"start": f["index"]["byteStart"], "end": f["index"]["byteEnd"], "handle": f["features"][0]["did"]}
        for f in detect_facets(text, mentions=True)
        if _kind(f) == MENTION_TYPE
    ]
    expected = COOKBOOK_DIVERGENCES[text][0] if text in COOKBOOK_DIVERGENCES else vector["expected"]
    assert got == expected


def test_cookbook_divergences_are_real():
    texts = {v["text"]: v["expected"] for v in COOKBOOK["urls"] + COOKBOOK["mentions"]}
    for text, (ours, _reason) in COOKBOOK_DIVERGENCES.items():
        assert texts[text] != ours


# RichText builder ------------------------------------------------------------------------


def test_richtext_builder_offsets():
    text, facets = (
        RichText()
        .text("👨‍👩‍👧‍👧 Read ")
        .link("example.com/a...", "https://example.com/a/long/path")
        .text(" — ")
        .tag("#新聞", "新聞")
        .text(" ")
        .mention("@alice.test", "did:plc:abc123")
        .build()
    )
    assert text == "👨‍👩‍👧‍👧 Read example.com/a... — #新聞 @alice.test"
    assert [_slice(text, f) for f in facets] == ["example.com/a...", "#新聞", "@alice.test"]
    assert facets[0]["index"] == {"byteStart": 31, "byteEnd": 47}
    assert facets[0]["features"] == [{"$type": LINK_TYPE, "uri": "https://example.com/a/long/path"}]
    assert facets[1]["features"] == [{"$type": TAG_TYPE, "tag": "新聞"}]
    assert facets[2]["features"] == [{"$type": MENTION_TYPE, "did": "did:plc:abc123"}]
    validate_facets(text, facets)


def test_richtext_build_returns_copies():
    builder = RichText().link("x", "https://x.example")
    _, facets = builder.build()
    facets[0]["index"]["byteStart"] = 99
    assert builder.build()[1][0]["index"]["byteStart"] == 0
    assert builder.byte_length == 1 and builder.grapheme_length == 1


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("link", ("", "https://x.example")),
        ("tag", ("#a b", "a b")),
        ("tag", ("#" + "a" * 65, "a" * 65)),
        ("mention", ("@alice.test", "alice.test")),
    ],
)
def test_richtext_rejects_bad_facets(method, args):
    with pytest.raises(ValueError):
        getattr(RichText(), method)(*args)


# Shortening and linkify ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "short"),
    [
        ("https://example.com", "example.com"),
        ("https://example.com/", "example.com"),
        ("http://www.Example.com/abc", "www.example.com/abc"),
        ("https://example.com/12345678901234", "example.com/12345678901234"),  # path of 15: kept
        ("https://example.com/123456789012345", "example.com/123456789012..."),  # 16: cut to 13
        ("https://www.example.com/news/2025/06/01/long-slug?utm=1", "www.example.com/news/2025/06..."),
        ("https://user:pw@example.com:443/a?b=c#d", "example.com/a?b=c#d"),
        ("https://example.com:8443/a", "example.com:8443/a"),
        ("example.com/a/very/long/path/indeed", "example.com/a/very/long/path/indeed"),
        ("ftp://example.com/some/long/path/here", "ftp://example.com/some/long/path/here"),
        # Where the browser's URL parser throws, the app keeps the text as it is.
        ("https://example.com@", "https://example.com@"),
        ("https://example.com:port/a", "https://example.com:port/a"),
        ("https://:80/a", "https://:80/a"),
    ],
)
def test_shorten_url(url, short):
    assert shorten_url(url) == short


def test_shorten_url_max_len_and_graphemes():
    assert shorten_url("https://www.example.com/news/2025/06/01", max_len=20) == "www.example.com/n..."
    assert shorten_url("https://example.com/👨‍👩‍👧‍👧👨‍👩‍👧‍👧" + "x" * 20) == (
        "example.com/👨‍👩‍👧‍👧👨‍👩‍👧‍👧" + "x" * 10 + "..."  # "/", 2 families, 10 x: 13 graphemes
    )


def test_linkify_keeps_full_uri_and_points_at_display_text():
    full = "https://www.example.com/news/2025/06/01/some-long-article-slug?utm=1"
    text, facets = linkify(f"👨‍👩‍👧‍👧 Read {full} today. #news also bsky.app!")
    assert text == "👨‍👩‍👧‍👧 Read www.example.com/news/2025/06... today. #news also bsky.app!"
    assert _actual(facets) == [
        (31, 62, "link", full),
        (70, 75, "tag", "news"),
        (81, 89, "link", "https://bsky.app"),
    ]
    assert [_slice(text, f) for f in facets] == ["www.example.com/news/2025/06...", "#news", "bsky.app"]
    validate_facets(text, facets)


def test_linkify_without_shortening_is_detection():
    text = "see https://example.com/a/b/c/d/e/f/g/h and #tag"
    assert linkify(text, shorten=False) == (text, detect_facets(text))


# validate_facets -------------------------------------------------------------------------


def _f(start, end):
    return {"index": {"byteStart": start, "byteEnd": end}, "features": []}


@pytest.mark.parametrize(
    ("facets", "message"),
    [
        ([_f(0, 20)], "outside"),
        ([_f(-1, 2)], "outside"),
        ([_f(3, 3)], "empty"),
        ([_f(1, 4)], "inside a UTF-8 character"),
        ([_f(0, 2)], "inside a UTF-8 character"),
        ([_f(4, 6), _f(0, 4)], "before the previous"),
        ([_f(0, 5), _f(4, 6)], "before the previous"),
        ([_f(0, True)], "integer"),
        ([{"features": []}], "no index"),
    ],
)
def test_validate_facets_rejects(facets, message):
    with pytest.raises(ValueError, match=message):
        validate_facets("😀ab cd", facets)


def test_validate_facets_accepts():
    validate_facets("😀ab cd", [_f(0, 4), _f(4, 6), _f(7, 8)])
    validate_facets("", [])


# Properties ------------------------------------------------------------------------------

TRICKY = [
    "👨‍👩‍👧‍👧",
    "🏳️‍🌈",
    "🇩🇪",
    "🇯🇵",
    "👍🏽",
    "👋🏿",
    "#️⃣",
    "新聞",
    "日本語のテキスト",
    "שלום",
    "مرحبا",
    "\u200f",
    "\u202e",
    "e\u0301",
    "n\u0303",
    "a\u20e2",
    "\u200b",
    "\u00ad",
    "नमस्ते",
    "ｆｕｌｌ",
    "＃",
    "(",
    ")",
    ".",
    ",",
    "!",
    "?",
    ":",
    "@",
    "$",
    "#",
    "\n",
    "\u3000",
    "\u00a0",
]
TLDS = ["com", "org", "net", "app", "social", "co.uk", "de", "jp"]

hosts = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True), min_size=1, max_size=3),
    st.sampled_from(TLDS),
)
paths = st.from_regex(r"(/[A-Za-z0-9_~%=&-]{1,12}){0,4}(\?[a-z]{1,5}=[a-z0-9]{1,8})?", fullmatch=True)
urls = st.builds(
    lambda scheme, host, path: scheme + host + path,
    st.sampled_from(["https://", "http://", ""]),
    hosts,
    paths,
)
tag_bodies = st.text(alphabet=st.characters(categories=("Lu", "Ll", "Lo")), min_size=1, max_size=40).filter(
    lambda s: grapheme_len(s) <= 64
)
hashtags = st.builds(lambda sign, body: sign + body, st.sampled_from(["#", "＃"]), tag_bodies)
noise = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
)
chunks = st.one_of(noise, urls, hashtags)
separators = st.sampled_from(["", " ", "  ", "\n", "\u3000", "(", ". "])


@st.composite
def mixed_texts(draw):
    parts = draw(st.lists(st.tuples(chunks, separators), max_size=12))
    return "".join(chunk + sep for chunk, sep in parts)


def _check_facet_text(text: str, facet: dict) -> None:
    shown = _slice(text, facet)  # raises if not on UTF-8 character boundaries
    feature = facet["features"][0]
    if feature["$type"] == LINK_TYPE:
        assert feature["uri"] in (shown, "https://" + shown)
        assert feature["uri"].startswith(("http://", "https://"))
    elif feature["$type"] == TAG_TYPE:
        if feature["tag"].startswith("$") and shown.startswith("$"):
            assert shown.upper() == feature["tag"]
        else:
            assert shown[0] in "#＃"
            assert shown[1:] == feature["tag"]
            assert grapheme_len(feature["tag"]) <= 64
    else:
        assert shown == "@" + feature["did"]


@pytest.mark.slow
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_texts())
def test_detected_facets_slice_exactly_their_text(text):
    facets = detect_facets(text, mentions=True)
    validate_facets(text, facets)
    for facet in facets:
        _check_facet_text(text, facet)


@pytest.mark.slow
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_texts(), st.sampled_from(["https://", "http://"]), hosts, paths, mixed_texts())
def test_url_between_spaces_is_found_exactly(before, scheme, host, path, after):
    url = scheme + host + path
    text = f"{before} {url} {after}"
    start = utf8_len(f"{before} ")
    facets = detect_facets(text)
    assert {"byteStart": start, "byteEnd": start + utf8_len(url)} in [
        f["index"] for f in facets if f["features"] == [{"$type": LINK_TYPE, "uri": url}]
    ]


@pytest.mark.slow
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_texts(), tag_bodies, mixed_texts())
def test_hashtag_between_spaces_is_found_exactly(before, body, after):
    text = f"{before} #{body} {after}"
    start = utf8_len(f"{before} ")
    facets = detect_facets(text)
    assert {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": start + utf8_len(body) + 1},
        "features": [{"$type": TAG_TYPE, "tag": body}],
    } in facets


@pytest.mark.slow
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_texts())
def test_linkify_facets_point_at_displayed_text(text):
    detected = detect_facets(text)
    new_text, facets = linkify(text)
    validate_facets(new_text, facets)
    assert [f["features"] for f in facets] == [f["features"] for f in detected]
    for old, new in zip(detected, facets, strict=True):
        shown = _slice(new_text, new)
        if _kind(new) == LINK_TYPE:
            assert shown == shorten_url(_slice(text, old))
        else:
            assert shown == _slice(text, old)
    assert utf8_len(new_text) <= utf8_len(text)
