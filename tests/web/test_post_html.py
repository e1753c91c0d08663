"""Post text shown as each platform shows it, and always as safe HTML."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.web.post_html import _Closers, bluesky_html, domain, reddit_html, x_display_url, x_html
from posts.render import reddit_autolinks, render
from posts.story import Story

STORY = Story(id="s", date=dt.date(2025, 1, 12), headline="A <script>alert(1)</script> headline",
              summary="Summary with **stars** & <b>tags</b>.", url="https://example.com/a/very/long/path/to/the/story",
              one_year_later="It *did* happen. See https://example.org/later!\n\nSecond paragraph.",
              tags=("ai",), category="research", source="Lab")


def test_x_text_is_escaped_and_links_show_as_on_x():
    html = str(x_html(render(STORY, "x")[0].text))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://example.com/a/very/long/path/to/the/story"' in html
    assert ">example.com/a/very/long/p…</a>" in html
    assert "<br>" in html
    assert x_display_url("https://www.example.com/") == "example.com/"
    assert 'href="https://x.com/hashtag/ai"' in str(x_html("tagged #ai"))
    assert "x.com/hashtag" not in str(x_html("issue &#35;1 and a#b"))


def test_bluesky_text_links_its_facets_to_their_full_uri():
    record = render(STORY, "bluesky")[0].payload
    html = str(bluesky_html(record))
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'href="https://example.com/a/very/long/path/to/the/story"' in html
    assert 'target="_blank">example.com/a/very/long/...</a>' in html  # the text Bluesky shows
    assert 'class="tag" href="https://bsky.app/hashtag/ai"' in html


def test_bluesky_facets_out_of_range_are_ignored():
    record = {"text": "hello", "facets": [{"index": {"byteStart": 2, "byteEnd": 99},
                                          "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "x"}]}]}
    assert str(bluesky_html(record)) == "hello"


def test_reddit_markdown_shows_formatting_and_hides_spoilers():
    parts = render(STORY, "reddit")
    body = str(reddit_html(parts[0].payload["selftext"]))
    assert "<em>" in body  # the date stamp line
    assert "<strong>" in body
    assert '<a href="https://example.com/a/very/long/path/to/the/story"' in body
    comment = str(reddit_html(parts[1].payload["text"]))
    assert comment.count('<details class="spoiler">') == 2  # one span per paragraph
    assert "It *did* happen." in comment  # escaped Markdown shows as written
    assert 'href="https://example.org/later' in comment
    assert comment.index("<strong>One year later — spoiler</strong>") < comment.index("<details")


def test_reddit_markdown_never_makes_script_links_or_tags():
    html = str(reddit_html("[click](javascript:alert(1)) <img src=x onerror=alert(1)> **<b>x</b>**"))
    assert "javascript:" not in html
    assert "<img" not in html and "&lt;img" in html
    assert "<b>" not in html


def test_domain():
    assert domain("https://www.example.com/x") == "example.com"
    assert domain("not a url") == ""


PATHOLOGICAL = {
    "brackets": "[" * 30_000,
    "closed brackets": "[" * 15_000 + "]" * 15_000,
    "links never closed": "[a](" * 8_000,
    "labels never followed": "[a]" * 10_000,
    "stars": "*" * 30_000,
    "bold never closed": "**a" * 10_000,
    "spoilers never closed": ">!" * 15_000,
    "spoilers in links": "[>!**" * 6_000,
    "backslashes": "\\" * 30_000,
    "urls": "http://" * 5_000,
    "url dots": "http://" + "." * 30_000,
    "blank lines": "\n \n" * 10_000,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_reddit_preview_is_linear_on_pathological_bodies(name):
    """30,000 ``[`` took 148 s; each of these renders well inside the timeout (bench: reddit-preview)."""
    text = PATHOLOGICAL[name]
    html = str(reddit_html(text))
    assert "<script" not in html
    double = str(reddit_html(text + text))
    assert len(double) >= len(html)


def test_reddit_preview_reads_its_closers_once():
    """The closers of a paragraph are found in one pass: an unclosed construct costs a lookup."""
    calls = []
    original = _Closers.__init__

    def counting(self, text):
        calls.append(len(text))
        original(self, text)

    _Closers.__init__ = counting
    try:
        reddit_html("[" * 30_000)
        reddit_html(">!**[a](" * 3_000)
    finally:
        _Closers.__init__ = original
    assert sum(calls) <= 4 * (30_000 + 24_000)


def test_reddit_markdown_unchanged_for_ordinary_text():
    text = ("**Bold** and *it* with [a link](https://example.com/x) and >!a **hidden** [link](https://e.x)!< "
            "and https://example.org/y. Escaped \\*stars\\* stay.")
    html = str(reddit_html(text))
    assert "<strong>Bold</strong>" in html and "<em>it</em>" in html
    assert '<a href="https://example.com/x" rel="noopener noreferrer nofollow" target="_blank">a link</a>' in html
    assert '<span class="spoiler-text">a <strong>hidden</strong> <a href="https://e.x"' in html
    assert ">https://example.org/y</a>." in html and "*stars*" in html


def test_reddit_preview_links_what_reddit_links():
    text = "See www.example.com/x, https://en.wikipedia.org/wiki/Mercury_(planet) and 0https://example.org/y."
    html = str(reddit_html(text))
    starts = [start for start, _ in reddit_autolinks(text)]
    assert html.count("<a ") == len(starts) == 3  # the same spans as the rendering escapes around
    assert '<a href="http://www.example.com/x" rel="noopener noreferrer nofollow" target="_blank">www.example.com/x</a>,' \
        in html
    assert 'href="https://en.wikipedia.org/wiki/Mercury_(planet)"' in html
    assert '0<a href="https://example.org/y"' in html


def test_reddit_preview_shows_escaped_story_text_as_written():
    from posts.render import render_reddit
    from posts.story import Story
    story = Story(id="e", date=STORY.date, headline="h", url="https://example.com/a)b",
                  summary="AT&amp;T 3 < 5", one_year_later="It shipped (see https://example.com/launch). 3 < 5 & 6 > 2")
    root, comment = render_reddit(story)
    body = str(reddit_html(root.payload["selftext"]))
    assert "AT&amp;amp;T 3 &lt; 5" in body  # the browser shows "AT&amp;T 3 < 5"
    assert 'href="https://example.com/a)b"' in body
    shown = str(reddit_html(comment.payload["text"]))
    assert 'href="https://example.com/launch"' in shown and "3 &lt; 5 &amp; 6 &gt; 2" in shown
