"""X's counts against twitter-text itself (npm ``twitter-text`` 3.1.0, run by the reference process).

Every X part we render must have the weighted length twitter-text's ``parseTweet`` gives it and be
valid by it. The reference tests skip when Node.js or the reference install is missing (``make
reference``); the load-time and determinism tests below them need no reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.cli import main
from posts import twitter_text
from posts.render import RenderOptions, render
from posts.story import Story
from tests.cli_support import isolate
from tests.test_render_properties import HARD_PIECES, URLS, WORDS, stories
from tests.twitter_text_support import parse_tweet

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OPTIONS = RenderOptions(created_at="2025-01-12T09:30:00.000Z")

# What the issue found, and what twitter-text's emoji list holds or lacks.
X_PIECES = [
    "🇦", "🇦🇦", "🇨🇶", "🇺🇸", "🐦\u200d🔥", "🧑\u200d🚀", "🧑\u200d🧑\u200d🧒", "👩🏽\u200d💻", "🫠", "🫶🏾",
    "👨\u200d👩\u200d👧\u200d👦", "❤️\u200d🔥", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "\ufeff", "\ufffe", "\uffff", "\ufe0f", "\u200d", "\U0001f3fd", "#\ufe0f\u20e3", "©", "©\ufe0f",
    "漢字かな", "한국어", "𠀀𠀁", "مرحبا", "שלום", "\u05d0\u05b7", "e\u0301", "a\u0308\u0323",
    "a.", "a.a.a.a.a.", "a-a-a.com", "a_b.com", "example.com", "t.co/abc", "@user", "#tag", "$CASH",
    "https://example.com/a?", "https://example.com/a.", "https://example.com/#!x", "https://example.com/(x)",
    "https://example.com/a)!'*;:", "https://user:pw@example.com/a", "http://127.0.0.1/a", "https://example.zzz/a",
    "https://例え.jp/記事", "https://пример.рф/путь", "xn--p1ai.com", "HTTPS://EXAMPLE.COM/STORY",
]
X_TEXT_PIECES = st.one_of(WORDS, st.sampled_from(X_PIECES), st.sampled_from(HARD_PIECES), URLS,
                          st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=6))
X_TEXTS = st.lists(st.tuples(X_TEXT_PIECES, st.sampled_from([" ", "", "\n", ". ", ","])), max_size=40).map(
    lambda pieces: "".join(p + s for p, s in pieces))


@st.composite
def x_stories(draw) -> Story:
    story = draw(stories())
    # Mix the issue's cases into the text fields too.
    extra = draw(st.lists(st.sampled_from(X_PIECES), max_size=30))
    repeat = draw(st.sampled_from([1, 1, 1, 1, 10, 40]))
    filler = " ".join(extra) * repeat
    return Story(**{**story.__dict__, "headline": (story.headline + " " + filler[:2000]).strip(),
                    "one_year_later": (story.one_year_later + " " + filler).strip()})


def _ours(text: str) -> dict:
    parsed = parse_tweet(text)
    return {"weightedLength": parsed.weighted_length, "valid": parsed.valid,
            "validRangeEnd": parsed.valid_range_end, "displayRangeEnd": parsed.display_range_end}


def _theirs(result: dict) -> dict:
    return {key: result[key] for key in ("weightedLength", "valid", "validRangeEnd", "displayRangeEnd")}


# ------------------------------------------------------------------------------ against twitter-text

REGRESSIONS = [
    ("🇦" * 200, 400), ("🐦\u200d🔥" * 100, 500), ("🧑\u200d🚀", 5), ("🧑\u200d🧑\u200d🧒", 8), ("🇨🇶", 4),
    ("a\ufeffb", 4), ("a\ufffeb", 4), ("a\uffffb", 4), ("a." * 140, 280), ("a." * 3000, 6000),
    ("Flags 🇨🇶 🇺🇸 " * 20, None), ("x " + "🧑\u200d🚀" * 56, None), ("http://" + "a." * 3000 + "com@", None),
]


@pytest.mark.reference
@pytest.mark.parametrize(("text", "expected"), REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_weighted_length_regressions_equal_twitter_text(reference, text, expected):
    theirs = reference.call("twitter.parseTweet", text=text)
    assert _ours(text) == _theirs(theirs)
    assert twitter_text.weighted_length(text) == theirs["weightedLength"]
    if expected is not None:
        assert theirs["weightedLength"] == expected


@pytest.mark.reference
def test_invalid_characters_make_twitter_text_refuse_the_post(reference):
    for char in "\ufeff\ufffe\uffff":
        assert reference.call("twitter.parseTweet", text=f"fine{char}text")["valid"] is False
        assert parse_tweet(f"fine{char}text").valid is False


@pytest.mark.reference
@SETTINGS
@given(text=X_TEXTS)
@example(text="🇦" * 200)
@example(text="Done " + "🐦\u200d🔥" * 100)
@example(text="https://example.com/[x](y) ")  # upstream's path grammar: only "/[x" is linked
def test_parse_tweet_equals_twitter_text_on_any_text(reference, text):
    assert _ours(text) == _theirs(reference.call("twitter.parseTweet", text=text))
    assert twitter_text.weighted_length(text) == _ours(text)["weightedLength"]


@pytest.mark.reference
@settings(SETTINGS, max_examples=150)
@given(story=x_stories())
def test_every_rendered_x_part_counts_as_twitter_text_counts_it(reference, story):
    parts = render(story, "x", OPTIONS)
    results = reference.call_many("twitter.parseTweet", [{"text": part.text} for part in parts])
    for part, theirs in zip(parts, results, strict=True):
        ours = part.checks[0].length
        assert ours == theirs["weightedLength"], (part.kind, part.index, part.text)
        assert theirs["valid"], (part.kind, part.index, ours, part.text)
        assert ours <= 280


@pytest.mark.reference
def test_the_reference_process_is_one_for_the_session(reference):
    assert reference.call("versions")["twitter-text"] == "3.1.0"
    assert reference.call("versions")["twemoji-parser"] == "11.0.2"


# ------------------------------------------------------------------------------ pure and linear


def test_the_count_does_not_depend_on_time():
    # A long dotted token once got 50 ms of scanning, then counted as if every dot began a URL.
    assert twitter_text.weighted_length("a." * 3000) == 6000
    assert twitter_text.weighted_length("http://" + "a." * 3000 + "com@") == 6011
    assert twitter_text.weighted_length("a-" * 3000 + ".com") == 6004  # a label may not end in "-"
    assert twitter_text.weighted_length("a-" * 30 + "a.com") == 23
    assert twitter_text.weighted_length("a_" * 3000 + "b.com") == 6005  # the label is over 63 characters
    assert twitter_text.weighted_length(("a." * 140).strip()) == 280  # "a.a" is no URL: "a" is no TLD


def test_a_long_dotted_story_splits_the_same_every_time():
    story = Story(id="s", date=__import__("datetime").date(2025, 1, 1), headline="Dots " + "a." * 300,
                  one_year_later="a." * 3000)
    runs = [[part.text for part in render(story, "x", OPTIONS)] for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert all(twitter_text.weighted_length(text) <= 280 for text in runs[0])
    assert len(runs[0]) == 1 + 23  # 6,000 characters in numbered parts of at most 280


def test_the_x_renderer_never_emits_what_x_refuses():
    story = Story(id="s", date=__import__("datetime").date(2025, 1, 1), headline="Head\ufeffline\ufffe",
                  summary="x\uffffy", one_year_later="later\ufeff on", tags=("a\ufeff",))
    for part in render(story, "x", OPTIONS):
        assert not set(part.text) & {"\ufeff", "\ufffe", "\uffff"}
        assert parse_tweet(part.text).valid


# ------------------------------------------------------------------------------ refused at load

@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    return tmp_path


def _load(capsys, text: str, suffix: str = "yaml") -> tuple[int, str]:
    Path(f"stories.{suffix}").write_text(text, encoding="utf-8")
    try:
        main(["--db", "sqlite:///queue.db", "load", f"stories.{suffix}"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


STORY = """\
- id: fine
  date: 2025-03-01
  headline: A fine story
  url: https://example.com/fine
- id: odd
  date: 2025-03-01
  headline: An odd story
  url: "{url}"
"""


@pytest.mark.parametrize(("url", "message"), [
    ("https://bob:hunter2@example.com/story", "has a user name or password in it"),
    ("https://bob@example.com/story", "has a user name or password in it"),
    ("http://127.0.0.1/story", "has an IP address as its host"),
    ("https://[2001:db8::1]/story", "has no valid host name"),
    ("http://10.0.0.1:8080/story", "has an IP address as its host"),
    ("https://example.zzz/story", "ends in the top-level domain '.zzz', which X does not know"),
    ("https://example.com./story", "has a host X does not link as written"),
])
def test_load_refuses_a_url_x_would_not_link(env, capsys, url, message):
    code, out = _load(capsys, STORY.format(url=url))
    assert code != 0
    assert "stories.yaml:5" in out and message in out
    assert "hunter2" not in out  # the password is never repeated
    code, out = _load(capsys, STORY.format(url="https://example.com/story"))
    assert code == 0, out


@pytest.mark.parametrize("char", ["\ufeff", "\ufffe", "\uffff"])
def test_load_refuses_characters_x_refuses(env, capsys, char):
    code, out = _load(capsys, STORY.format(url="https://example.com/x").replace("An odd story", f"An{char}odd"))
    assert code != 0
    assert "stories.yaml:7" in out and f"U+{ord(char):04X}" in out
    # JSON takes any of them as text; the loader still refuses the story, naming file and line.
    rows = [{"date": "2025-03-01", "headline": "Fine"}, {"date": "2025-03-01", "headline": f"Not{char}fine"}]
    code, out = _load(capsys, "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]", "json")
    assert code != 0
    assert "stories.json:3" in out and f"U+{ord(char):04X}" in out


def test_a_byte_order_mark_opening_a_file_is_fine(env, capsys):
    code, out = _load(capsys, "\ufeff" + json.dumps([{"date": "2025-03-01", "headline": "Fine"}]), "json")
    assert code == 0, out
