"""Reddit's Markdown as Reddit shows it, live: every part we render, rendered by snudown itself.

snudown is Reddit's Markdown renderer; ``snudown-js`` 4.1.0 (npm) is snudown compiled to JavaScript and
runs in the reference process (``tests/reference/server.js``, method ``snudown.markdown``). For every
generated story, every Reddit part is rendered by it and the HTML is read as a reader sees it: the
story's text shows as written, nothing of the reveal shows outside a spoiler, every link goes to the
story's URL (or to a URL written in the story's own text). ``tests/test_reddit_markdown.py`` keeps the
recorded vectors as the fast check that needs no Node. The tests skip when Node.js or the reference
install is missing (``make reference``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from urllib.parse import unquote, urlsplit

import idna
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from posts.fit import ELLIPSIS
from posts.limits import CONTROL_RE
from posts.render import SPOILER_LINE, RenderOptions, date_stamp, render_reddit
from posts.story import Story
from tests.snudown_support import Shown, words
from tests.test_render_properties import HARD_PIECES, URLS, WORDS, stories

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OPTIONS = RenderOptions()

COUNTS = {"stories": 0, "parts": 0, "links": 0, "reference calls": 0}
"""What the last run compared (printed at the end of the run, copied into docs/fidelity.md)."""


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """One line at the end of the run: how much was compared."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        request.config.add_cleanup(lambda: COUNTS["stories"] and reporter.write_line(
            "Reddit against snudown: " + ", ".join(f"{v:,} {k}" for k, v in COUNTS.items())))


def snudown(reference, texts: list[str]) -> list[str]:
    """The HTML snudown renders for each Markdown text, in one request."""
    COUNTS["reference calls"] += len(texts)
    return reference.call("batch", calls=[{"method": "snudown.markdown", "params": {"text": t}} for t in texts])


# ------------------------------------------------------------------------------ reading the HTML

def squeeze(text: str) -> str:
    return "".join(text.split())


def normal_url(url: str) -> str:
    """A URL read back to its Unicode form: an ASCII (punycode) host decoded, percent-encoding undone
    (snudown percent-encodes ``| ^ ` { } [ ]`` and non-ASCII in an ``href``; we encode an IDN host and
    non-ASCII characters elsewhere)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.hostname and "xn--" in parts.hostname:
        netloc = netloc.replace(parts.hostname, idna.decode(parts.hostname))
    return unquote(url.replace(parts.netloc, netloc, 1))


# ------------------------------------------------------------------------------ generated stories

MARKDOWN = ["&amp;", "&#x3C;", "&#62;", "&lt;", "AT&T", ">!", "!<", "**", "\\", "[", "](", ")", "(", "<", ">", "*",
            "_", "~~", "^", "`", "#", "|", "=", "-", "+", "1.", "---", "===", "***", "> ", "- ", "1. ", "    ",
            "\t", "r/news", "/u/someone", "a@b.com", "<b>", "<!--", "-->", "&nbsp;", ":-)", "¯\\_(ツ)_/¯"]
FIELD_PIECES = st.one_of(WORDS, WORDS, st.sampled_from(MARKDOWN), st.sampled_from(HARD_PIECES), URLS,
                         st.sampled_from(["www.example.com/a", "ftp://example.com/f", "example.com/x", "0https://a.com/b",
                                          "https://例え.jp/記事", "(see https://example.com/launch).", "3 < 5"]),
                         st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=4))
FIELD_SEPARATORS = st.sampled_from([" ", " ", " ", "", "\n", "\n\n", ". ", ", "])
FIELDS = st.lists(st.tuples(FIELD_PIECES, FIELD_SEPARATORS), max_size=16).map(
    lambda pieces: "".join(p + s for p, s in pieces))

# The body is the story's own Markdown. Its words (ASCII letters and digits) must show; its decorations
# may turn into markup. It holds no link syntax ("](" or "<http"), so its links are the bare URLs it
# writes, which Reddit autolinks, and which the link check allows as written in the story; and no table
# syntax ("|"), with which Reddit may drop a line that does not make a table row.
BODY_MARKUP = ["**", "*", "_", "~~", "^", "`", "# ", "> ", "- ", "1. ", "    ", "---", "\n\n", "\n", " ", " ", ">!", "!<",
               "&amp;", "&lt;", "\\", "🇺🇸", "新闻", "مرحبا", "e\u0301"]
BODY = st.lists(st.one_of(WORDS.map(lambda w: ("word", w)), st.sampled_from(BODY_MARKUP).map(lambda m: ("markup", m)),
                          URLS.map(lambda u: ("url", u))), max_size=40)


def _loadable(text: str) -> str:
    """Text as the loader accepts it: no control characters (it refuses them), stripped."""
    return CONTROL_RE.sub("", text).strip()


@st.composite
def reddit_stories(draw) -> tuple[Story, list[str]]:
    story = draw(stories())
    body = draw(BODY)
    words_in_body = [w for kind, w in body if kind == "word"]
    body_text = "".join(f" {w} " if kind != "markup" else w for kind, w in body)
    url = draw(st.one_of(st.just(story.url), st.sampled_from([
        "https://example.com/story.", "https://example.com/a)b", "https://example.com/p;q:r*s'!?", "https://例え.jp/記事",
        "https://пример.рф/статья?q=1", "https://example.com/a_(b)", "https://example.com/%28x%29#!y",
        "https://example.com/[x]|^{y}`", "http://www.example.com/?a=1&b=2",
    ])))
    fields = {name: _loadable(getattr(story, name) + " " + draw(FIELDS)) for name in ("summary", "category", "source")}
    headline = _loadable(story.headline + " " + draw(FIELDS)) or "Headline"
    reveal = _loadable(story.one_year_later + " " + draw(FIELDS))
    return (dataclasses.replace(story, headline=headline, url=url, body=_loadable(body_text), one_year_later=reveal,
                                **fields), words_in_body)


# ------------------------------------------------------------------------------ the checks

def _expected_root_text(story: Story, summary: str) -> str:
    meta = " · ".join(p for p in (story.category, story.source) if p)
    return words(" ".join(p for p in (date_stamp(story) + (f" · {meta}" if meta else ""), summary,
                                      f"Source: {story.source or story.url}" if story.url else "") if p))


def _urls_written_in(text: str) -> set[str]:
    """Every run of non-space characters in the story's text that starts a URL: a link the story writes
    is allowed if its address is such a run, or a prefix of one (Reddit ends it before trailing punctuation)."""
    return {m.group() for pattern in (r"(?:https?|ftp)://\S+", r"www\.\S+") for m in re.finditer(pattern, text)}


def _written(href: str, runs: set[str]) -> bool:
    target = normal_url(href)
    return any(normal_url(run).startswith(target) or normal_url("http://" + run).startswith(target) for run in runs)


_REDDIT_REFERENCE = re.compile(r"/?([ru])/[A-Za-z0-9_+-]+(/\S*)?|\S+@\S+")  # snudown takes a path after it too


def _reddit_reference(href: str, text: str, story_text: str) -> bool:
    """A documented deviation: subreddit and user references (``r/news``, ``/u/name``) and e-mail
    addresses in story text stay as Reddit links them (to ``/r/news``, ``mailto:``)."""
    return (_REDDIT_REFERENCE.fullmatch(text) is not None and text in story_text
            and href in ("/" + text.lstrip("/"), "mailto:" + text))


def check_story(reference, story: Story, body_words: list[str]) -> None:
    parts = render_reddit(story, OPTIONS)
    root, followups = parts[0], parts[1:]
    # The same self post without the story's own Markdown (and without the reveal, which is not in it):
    # every part of it is ours, so it must show exactly as written.
    plain = dataclasses.replace(story, body="", one_year_later="")
    plain_root = render_reddit(plain, OPTIONS)[0]
    markup = [root.payload["selftext"], plain_root.payload["selftext"], *(p.text for p in followups)]
    html_root, html_plain, *html_followups = snudown(reference, markup)

    # The title is plain text on Reddit: the headline as written (white space collapsed), or a cut of it.
    title = root.payload["title"]
    kept = title.removesuffix(ELLIPSIS).rstrip() if root.cut else title
    assert words(story.headline).startswith(kept) and (title == words(story.headline) or root.cut), title
    assert "\\" not in title or "\\" in story.headline

    # The self text: every field of ours shows exactly as written, with no stray backslash or markup.
    shown_plain = Shown(html_plain)
    assert shown_plain.block_spoilers == 0 and shown_plain.spoilers == []
    if not plain_root.cut:
        assert shown_plain.outside_text == _expected_root_text(story, words(story.summary)), plain_root.payload["selftext"]
    else:
        assert shown_plain.outside_text.startswith(words(date_stamp(story)))

    # With the body: the same, and every word of the body shows.
    shown = Shown(html_root)
    outside = squeeze(shown.outside_text + "".join(shown.spoilers))
    for word in body_words:
        assert word in outside, (word, root.payload["selftext"])
    if not root.cut:
        for field in (story.summary, story.category, story.source):
            assert squeeze(field) in outside, field

    # Every link goes to the story's URL, or to a URL written in the story's own text.
    story_text = " ".join((story.summary, story.category, story.source, story.body))
    written = _urls_written_in(story_text)
    story_links = 0
    for href, text in shown.links:
        COUNTS["links"] += 1
        if story.url and normal_url(href) == normal_url(story.url):
            story_links += 1
            continue
        assert _written(href, written) or _reddit_reference(href, text, story_text), (href, text, story.url)
    if story.url:
        assert story_links >= 1, ("the story URL is not linked", story.url, shown.links)

    # The reveal: shown in full inside inline spoilers, nothing of it outside them.
    revealed = []
    reveal_urls = _urls_written_in(story.one_year_later)
    for part, markup_html in zip(followups, html_followups, strict=True):
        shown = Shown(markup_html)
        assert shown.block_spoilers == 0, part.text[:200]
        assert re.fullmatch(rf"({re.escape(SPOILER_LINE)})? ?(\d+/\d+)?", shown.outside_text), shown.outside_text
        assert squeeze("".join(shown.spoilers)), "every part shows some of the reveal"
        revealed += shown.spoilers
        for href, text in shown.links:
            COUNTS["links"] += 1
            assert _written(href, reveal_urls) or _reddit_reference(href, text, story.one_year_later), (href, text)
    assert squeeze("".join(revealed)) == squeeze(story.one_year_later)
    if followups:
        assert Shown(html_followups[0]).outside_text.startswith(SPOILER_LINE)
    COUNTS["stories"] += 1
    COUNTS["parts"] += len(parts)


# ------------------------------------------------------------------------------ the tests

def _story(**fields) -> Story:
    return Story(id="s", date=dt.date(2025, 1, 12), **{"headline": "Headline", "url": "https://example.com/story",
                                                       **fields})


REGRESSIONS = [
    _story(summary="Read [the memo](https://evil.example.com) **now**", category="C++ *and* AI", source="R&D _Weekly_"),
    _story(one_year_later="It shipped (see https://example.com/launch). Prices fell: 3 < 5. AT&amp;T &#x3E;!x!&#x3C;"),
    _story(url="https://例え.jp/記事", source=""),
    _story(url="https://example.com/p;q:r*s'!?", summary="now**"),
    _story(headline="Title " + "x" * 400, one_year_later="x" * 12_000),
]


@pytest.mark.reference
@pytest.mark.parametrize("story", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_reported_stories_show_on_reddit_as_written(reference, story):
    check_story(reference, story, [])


@pytest.mark.reference
@settings(SETTINGS, max_examples=40)
@given(case=reddit_stories())
@example(case=(_story(summary="One.\n\nTwo."), []))
def test_every_reddit_part_shows_the_story_as_written_and_links_only_its_urls(reference, case):
    check_story(reference, *case)


@pytest.mark.reference
def test_the_reference_renders_reddit_markdown(reference):
    assert reference.call("versions")["snudown-js"] == "4.1.0"
    shown = Shown(reference.call("snudown.markdown", text=">!hidden!< [x](https://example.com/a\\(b\\))"))
    assert shown.spoilers == ["hidden"] and shown.links == [("https://example.com/a(b)", "x")]
