"""Mastodon's status length, as the server counts it (posts/mastodon_text.py).

Checked against independent data: the server's own validator spec (its 10 text cases, DERIVED into
tests/data/mastodon/status-length/), Mastodon.py's 31 ground-truth cases, and Mastodon.py's
``get_status_length`` on ordinary text. Where Mastodon.py and the server differ (a URL longer than the
extractor's maximum, a mention whose domain is too long), the server is followed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mastodon import Mastodon

from posts.mastodon_text import (
    MastodonLimits,
    countable_text,
    fits,
    grapheme_count,
    mention_spans,
    status_length,
    url_spans,
)

DATA = Path(__file__).parent / "data" / "mastodon" / "status-length"
SPEC = json.loads((DATA / "status-length-spec-cases.json").read_text("utf-8"))
MASTODON_PY = json.loads((DATA / "mastodon-py-status-length-cases.json").read_text("utf-8"))


def _id(case: dict[str, Any]) -> str:
    return str(case.get("spec_example") or case["text"])[:60]


def test_the_case_files_are_complete() -> None:
    assert len(SPEC["cases"]) == 10 and SPEC["limit_in_spec"] == 500
    assert len(MASTODON_PY["cases"]) == 31


@pytest.mark.parametrize("case", SPEC["cases"], ids=_id)
def test_server_spec_cases(case: dict[str, Any]) -> None:
    """The server's validator spec: valid or not at its limit, and the length its rules give."""
    limits = MastodonLimits(max_characters=case["limit"])
    assert status_length(case["text"], case["spoiler_text"], limits) == case["expected_length"]
    assert fits(case["text"], case["spoiler_text"], limits) is case["expected_valid"]


@pytest.mark.parametrize("case", MASTODON_PY["cases"], ids=_id)
def test_mastodon_py_ground_truth(case: dict[str, Any]) -> None:
    """Mastodon.py's ground-truth cases; as its test does, a content warning adds its own graphemes."""
    assert status_length(case["text"]) == case["expected_length"]
    assert status_length(case["text"], "what") == case["expected_length"] + 4


DIFFERENCES = [c for c in SPEC["cases"]
               if Mastodon.get_status_length(c["text"], c["spoiler_text"]) != c["expected_length"]]


def test_where_mastodon_py_differs_from_the_server_the_server_is_followed() -> None:
    """Mastodon.py undercounts two of the server's cases (docs/fidelity.md): an over-long URL and a
    mention with an over-long domain, which the server counts in full and rejects."""
    assert sorted(c["spec_example"] for c in DIFFERENCES) == [
        "does count both parts of remote usernames for overly long domains",
        "does not reduce calculated length of count overly long URLs",
    ]
    for case in DIFFERENCES:
        assert Mastodon.get_status_length(case["text"]) <= 500 < status_length(case["text"])
        assert not fits(case["text"])


def test_instance_limits_change_the_url_weight_and_the_limit() -> None:
    text = "see https://example.com/a/very/long/path/to/a/story?id=12345 now"
    assert status_length(text) == 4 + 23 + 4
    small = MastodonLimits(max_characters=30, characters_reserved_per_url=10)
    assert status_length(text, limits=small) == 4 + 10 + 4
    assert countable_text(text, small) == "see " + "x" * 10 + " now"
    assert fits(text, limits=small) and not fits(text, "a content warning", small)


def test_spans() -> None:
    text = "@ann@example.social read https://example.com/x, not example.org or ftp://example.net"
    assert [text[s:e] for s, e in url_spans(text)] == ["https://example.com/x"]
    assert [(text[s:e], text[s:local]) for s, e, local in mention_spans(text)] == [("@ann@example.social", "@ann")]
    # a mention inside a URL is the URL's
    assert countable_text("https://example.social/@two") == "x" * 23


def test_graphemes_and_the_content_warning_join() -> None:
    assert grapheme_count("a\r\nb") == 3
    assert grapheme_count("🏳️‍⚧️e\u0301") == 2
    # the server joins the warning and the text before counting clusters
    assert status_length("\u0301", "e") == 1


# Ordinary text: words, punctuation, emoji, plain http(s) URLs with ASCII paths, mentions between
# spaces. Here Mastodon.py's counter and the server's rules agree (reference/mastodon.md, 1.1).
_WORD = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789éüßñ"), min_size=1, max_size=12)
_PUNCT = st.sampled_from([",", ".", "!", "?", ":", ";", "(", ")", "—", "'", '"', "…"])
_EMOJI = st.sampled_from(["✨", "🇪🇪", "👩🏽‍💻", "👨‍👩‍👧‍👦", "✊🏿", "🏳️‍⚧️", "😀"])
_URL = st.builds(lambda host, tld, path, query: f"http{'s' if len(host) % 2 else ''}://{host}.{tld}{path}{query}",
                 st.from_regex(r"[a-z][a-z0-9-]{0,15}[a-z0-9]", fullmatch=True),
                 st.sampled_from(["com", "org", "net", "social", "co.uk", "de"]),
                 st.from_regex(r"(/[a-zA-Z0-9_-]{1,12}){0,4}/?", fullmatch=True),
                 st.from_regex(r"(\?[a-z]{1,5}=[a-z0-9]{1,8})?", fullmatch=True))
_MENTION = st.builds(lambda user, domain: f"@{user}" + (f"@{domain}.example" if domain else ""),
                     st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                     st.one_of(st.just(""), st.from_regex(r"[a-z]{1,10}", fullmatch=True)))
_TOKEN = st.one_of(_WORD, _WORD, _WORD, _PUNCT, _EMOJI, _URL, _MENTION)
_SEP = st.sampled_from([" ", " ", " ", "\n", "\n\n"])


@st.composite
def _ordinary(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_TOKEN, max_size=40))
    out = []
    for token in tokens:
        out += [token, draw(_SEP)]
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(text=_ordinary(), spoiler=st.one_of(st.just(""), st.just("One year later — spoiler"), _WORD))
def test_agrees_with_mastodon_py_on_ordinary_text(text: str, spoiler: str) -> None:
    assert status_length(text, spoiler) == Mastodon.get_status_length(text, spoiler)
