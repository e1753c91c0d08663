"""Tests for posts.twitter_text against twitter-text's conformance suite, plus URL and property tests."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from posts.twitter_text import (
    _ASCII_DOMAIN,
    CONFIG_V3,
    TwitterTextConfig,
    _ascii_domains,
    _find_urls,
    url_spans,
    weighted_length,
)
from tests.twitter_text_support import CONFIG_V1, CONFIG_V2, EXTRACT_URL, ParseResult, parse_tweet

DATA = Path(__file__).parent / "data" / "twitter-text"

# Config per conformance group, as in upstream's rb/test/conformance_test.rb.
GROUP_CONFIGS = {
    "WeightedTweetsCounterTest": CONFIG_V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": CONFIG_V3,
    "UnicodeDirectionalMarkerCounterTest": CONFIG_V3,
}
GROUP_SIZES = {
    "WeightedTweetsCounterTest": 20,
    "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
    "UnicodeDirectionalMarkerCounterTest": 2,
}


def _load_groups() -> dict[str, list[dict]]:
    with (DATA / "validate-weighted.yml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["tests"]


def _conformance_cases() -> list:
    groups = _load_groups()
    return [
        pytest.param(case["text"], config, case["expected"], id=f"{group}: {case['description']}")
        for group, config in GROUP_CONFIGS.items()
        for case in groups[group]
    ]


def _as_upstream(result: ParseResult) -> dict[str, object]:
    return {
        "weightedLength": result.weighted_length,
        "valid": result.valid,
        "permillage": result.permillage,
        "displayRangeStart": result.display_range_start,
        "displayRangeEnd": result.display_range_end,
        "validRangeStart": result.valid_range_start,
        "validRangeEnd": result.valid_range_end,
    }


# --- Conformance ------------------------------------------------------------------------------


def test_conformance_groups_are_complete() -> None:
    groups = _load_groups()
    assert {group: len(groups[group]) for group in GROUP_SIZES} == GROUP_SIZES


@pytest.mark.parametrize(("text", "config", "expected"), _conformance_cases())
def test_conformance(text: str, config: TwitterTextConfig, expected: dict[str, object]) -> None:
    assert _as_upstream(parse_tweet(text, config)) == expected


@pytest.mark.parametrize(
    ("name", "config"), [("v1.json", CONFIG_V1), ("v2.json", CONFIG_V2), ("v3.json", CONFIG_V3)]
)
def test_builtin_configs_match_upstream_json(name: str, config: TwitterTextConfig) -> None:
    data = json.loads((DATA / "config" / name).read_text(encoding="utf-8"))
    assert TwitterTextConfig.from_dict(data) == config


def test_config_rejects_weights_that_are_not_multiples_of_scale() -> None:
    with pytest.raises(ValueError, match="multiples of scale"):
        TwitterTextConfig(
            version=9, max_weighted_tweet_length=280, scale=100, default_weight=150, transformed_url_length=23
        )


# --- Length rules -----------------------------------------------------------------------------


def test_280_ascii_characters_fit_and_281_do_not() -> None:
    fits = parse_tweet("a" * 280)
    assert (fits.weighted_length, fits.valid, fits.permillage, fits.valid_range_end) == (280, True, 1000, 279)
    over = parse_tweet("a" * 281)
    assert (over.weighted_length, over.valid, over.valid_range_end) == (281, False, 279)


def test_cjk_counts_double() -> None:
    assert parse_tweet("漢" * 140) == ParseResult(280, True, 1000, 0, 139, 0, 139)
    over = parse_tweet("漢" * 141)
    assert (over.weighted_length, over.valid, over.valid_range_end) == (282, False, 139)


def test_url_counts_23_whatever_its_length() -> None:
    short = "Read https://t.co/abc"
    long = "Read https://www.example.com/" + "x" * 500 + "?utm_source=bot"
    assert weighted_length(short) == weighted_length(long) == 5 + 23
    assert weighted_length("see example.com") == 4 + 23


@pytest.mark.parametrize(
    ("text", "v3", "v2"),
    [
        # Emoji newer than twitter-text's list (twemoji-parser 11.0.2) count code point by code point
        # there, so they do here (values from twitter-text 3.1.0 itself).
        ("🧑\u200d🧑\u200d🧒", 8, 8),  # family: adult, adult, child (Emoji 15.1)
        ("🐦\u200d🔥", 5, 5),  # phoenix (Emoji 15.1)
        ("🧑\u200d🚀", 5, 5),  # astronaut (Emoji 12.1): only the rocket is in the list
        ("🇨🇶", 4, 4),  # flag of Sark: not in the list
        ("🇦" * 3, 6, 6),  # unpaired regional indicators: 2 each
        ("👩🏽\u200d💻", 2, 7),  # ZWJ sequence with a skin tone
        ("🇺🇦", 2, 4),  # flag
        ("#\ufe0f\u20e3", 2, 5),  # keycap
        ("❤\ufe0f", 2, 4),  # emoji presentation selector
        ("☺\ufe0e", 4, 4),  # text presentation: not an emoji sequence
        ("©", 1, 1),  # only an emoji with U+FE0F, as in twemoji
    ],
)
def test_emoji_sequences(text: str, v3: int, v2: int) -> None:
    assert weighted_length(text) == v3
    assert weighted_length(text, CONFIG_V2) == v2


def test_legacy_config_counts_code_points() -> None:
    assert weighted_length("漢字 😷 http://example.com/long/path", CONFIG_V1) == 5 + 23
    assert parse_tweet("x" * 141, CONFIG_V1).valid is False


def test_empty_and_invalid_text() -> None:
    assert parse_tweet("") == ParseResult(0, False, 0, 0, 0, 0, 0)
    assert parse_tweet("ok\ufeff").valid is False


def test_text_is_nfc_normalised() -> None:
    assert weighted_length("e\u0301" * 10) == 10


# --- URL extraction ---------------------------------------------------------------------------


def _urls(text: str) -> list[str]:
    return [text[start:end] for start, end in url_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # trailing punctuation is not part of the URL
        ("Read https://example.com/a/b.", ["https://example.com/a/b"]),
        ("Wow, https://example.com/story?id=42&x=1!", ["https://example.com/story?id=42&x=1"]),
        ("See https://example.com/page#part-2, then", ["https://example.com/page#part-2"]),
        ("Port: https://example.com:8080/a;", ["https://example.com:8080/a"]),
        ('"https://example.com/quoted"', ["https://example.com/quoted"]),
        ("it's at https://example.com/x?'", ["https://example.com/x"]),
        # balanced parentheses stay, the closing bracket around the URL does not
        (
            "(see https://en.wikipedia.org/wiki/Primer_(film))",
            ["https://en.wikipedia.org/wiki/Primer_(film)"],
        ),
        ("[https://example.com/a]", ["https://example.com/a"]),
        # scheme-less domains with a known TLD
        ("visit example.com today", ["example.com"]),
        ("bbc.co.uk/news and foo.jp", ["bbc.co.uk/news", "foo.jp"]),
        ("MLB.tv vine.co t.co", ["MLB.tv", "vine.co", "t.co"]),
        ("e.g. foo.baz or version 1.2.3", []),
        ("mail user@example.com", []),
        # several URLs
        (
            "a https://x.com/1 b example.org c http://y.net/2?q=3#frag",
            ["https://x.com/1", "example.org", "http://y.net/2?q=3#frag"],
        ),
        # next to CJK text
        ("詳しくはexample.com/path/index.html中国語", ["example.com/path/index.html"]),
        ("これはhttps://example.com/日本", ["https://example.com/"]),
        # case-insensitive scheme and TLD; t.co keeps only slug and query
        ("HTTPS://EXAMPLE.COM/X", ["HTTPS://EXAMPLE.COM/X"]),
        ("https://t.co/abc123/extra", ["https://t.co/abc123"]),
    ],
)
def test_url_spans(text: str, expected: list[str]) -> None:
    assert _urls(text) == expected


def test_url_spans_indices() -> None:
    text = "Neu: 日本 https://example.com/x."
    assert url_spans(text) == [(8, 29)]


# --- Properties -------------------------------------------------------------------------------

_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=63)
_PATH = st.text(alphabet=string.ascii_letters + string.digits + "-_/", max_size=1500)
_QUERY = st.text(alphabet=string.ascii_letters + string.digits + "=&", max_size=200)


@st.composite
def _urls_strategy(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http://", "https://"]))
    host = ".".join(draw(st.lists(_LABEL, min_size=1, max_size=4)))
    tld = draw(st.sampled_from(["com", "org", "net", "io", "de", "news", "co.uk"]))
    url = f"{scheme}{host}.{tld}"
    if draw(st.booleans()):
        url += "/" + draw(_PATH)
    query = draw(_QUERY)
    return f"{url}?{query}" if query else url


@settings(deadline=None)
@given(st.text())
def test_any_text_has_sane_length_and_spans(text: str) -> None:
    assert weighted_length(text) >= 0
    spans = url_spans(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        previous_end = end


@settings(deadline=None)
@given(st.text(), _urls_strategy(), st.text())
def test_a_url_between_spaces_adds_exactly_23(before: str, url: str, after: str) -> None:
    # The extra space separating the URL counts 1.
    assert weighted_length(f"{before} {url} {after}") == weighted_length(f"{before} {after}") + 1 + 23


# The linear URL scan against the extractor's own pattern, run by the regex engine on short texts
# (where its backtracking costs nothing): the same matches, with the same groups.
_URL_ALPHABET = ["a", "b", ".", "-", "_", "/", ":", "?", "#", "(", ")", "!", "@", "c", "o", "m", " ", "com", "co.uk",
                 "http://", "https://", "xn--p1ai", ".jp", "é", "ж", "例", "\u202a", "＠", "..", "t.co/", "org", "1",
                 "\ufeff", "[", "]"]


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_URL_ALPHABET), max_size=14).map("".join))
def test_the_linear_url_scan_finds_what_the_pattern_finds(text: str) -> None:
    expected = [(m.group("before"), m.start("url"), m.end("url"), m.group("protocol") or "", m.group("domain"),
                 m.group("path")) for m in EXTRACT_URL.finditer(text)]
    assert list(_find_urls(text)) == expected
    assert list(_ascii_domains(text)) == [m.span() for m in _ASCII_DOMAIN.finditer(text)]
