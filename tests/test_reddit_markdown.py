"""Reddit Markdown as Reddit shows it: our output against what snudown (Reddit's renderer) renders.

``tests/data/reddit/snudown/vectors.json`` holds, for each case of ``cases.json``, the Markdown we
emit and the HTML snudown-js rendered from it (see that folder's README to regenerate). Each test
here (a) checks that we still emit exactly the recorded Markdown, so any change to the escaping is
noticed and must be re-recorded, and (b) reads the recorded HTML: the story's text is shown, every
link points at the story's URL (or a URL written in the story's text), nothing of the reveal shows
outside a spoiler.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import idna
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.cli import main
from posts.fit import ELLIPSIS, shorten, url_spans
from posts.render import (
    REDDIT_COMMENT,
    SPOILER_LINE,
    escape_markdown,
    render_bluesky,
    render_reddit,
    render_x,
    spoiler_markdown,
)
from posts.story import Story
from tests.cli_support import isolate
from tests.snudown_support import Shown

VECTORS_DIR = Path(__file__).parent / "data" / "reddit" / "snudown"
VECTORS = json.loads((VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in VECTORS["cases"]}


def story(**fields) -> Story:
    """The same story ``record.py`` builds from a case."""
    return Story(id=fields.pop("id", "case"), date=dt.date(2025, 1, 12),
                 **{"headline": "Headline", "url": "https://example.com/story", **fields})


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# ------------------------------------------------------------------------------ reading snudown's HTML


def squeeze(text: str) -> str:
    return "".join(text.split())


def same_resource(href: str, url: str) -> bool:
    """Whether ``href`` names ``url``: equal, or equal once an ASCII (punycode) host and the
    percent-encoding of non-ASCII characters are read back."""
    if href == url:
        return True
    if url.isascii():
        return False
    parts = urlsplit(href)
    host = idna.decode(parts.hostname or "") if parts.hostname else ""
    rest = href[href.index(parts.netloc) + len(parts.netloc):]
    return f"{parts.scheme}://{host}{unquote(rest)}" == url


@pytest.mark.parametrize("name", sorted(CASES))
def test_we_still_emit_the_recorded_markdown(name):
    case = CASES[name]
    parts = render_reddit(story(**case["story"]))
    assert [(p.kind, p.part) for p in parts] == [(p["kind"], p["part"]) for p in case["parts"]]
    for part, recorded in zip(parts, case["parts"], strict=True):
        assert part.payload.get("selftext", part.text) == recorded["markdown"], (
            "the Markdown changed: check it with snudown and re-record (tests/data/reddit/snudown/README.md)")


@pytest.mark.parametrize("name", sorted(CASES))
def test_snudown_shows_the_story_links_only_its_urls_and_hides_the_reveal(name):
    case = CASES[name]
    fields = case["story"]
    s = story(**fields)
    text_urls = {s.summary[a:b] for a, b in url_spans(s.summary)} | {
        s.one_year_later[a:b] for a, b in url_spans(s.one_year_later)}
    root, followups = case["parts"][0], case["parts"][1:]

    shown = Shown(root["html"])
    assert shown.block_spoilers == 0 and shown.spoilers == []
    outside = shown.outside_text
    for field in (s.summary, s.category, s.source or s.url):
        assert " ".join(field.split()) in outside, (field, outside)
    assert any(same_resource(href, s.url) and text == " ".join((s.source or s.url).split()) for href, text in shown.links)
    for href, text in shown.links:
        assert same_resource(href, s.url) or href in text_urls, href
        if text.startswith("http"):
            assert text == href or same_resource(href, text)

    revealed = []
    for part in followups:
        shown = Shown(part["html"])
        assert shown.block_spoilers == 0, part["markdown"][:200]
        outside = shown.outside_text
        assert re.fullmatch(rf"({re.escape(SPOILER_LINE)})? ?(\d+/\d+)?", outside), outside
        revealed += shown.spoilers
        for href, text in shown.links:
            assert text in text_urls and same_resource(href, text), (href, text)
        assert squeeze("".join(shown.spoilers)), "every part shows some of the reveal"
    assert squeeze("".join(revealed)) == squeeze(s.one_year_later)
    if followups:
        assert Shown(followups[0]["html"]).outside_text.startswith(SPOILER_LINE)
    if s.one_year_later:
        linked = {text for part in followups for _, text in Shown(part["html"]).links}
        assert linked == {u for u in text_urls if u in s.one_year_later}


def test_the_vectors_cover_every_reported_case():
    assert VECTORS["snudown_js"]
    reveals = " ".join(c["story"].get("one_year_later", "") for c in VECTORS["cases"])
    for follower in ("https://example.com/launch)", "https://example.com/launch!", "https://example.com/launch]",
                     "https://example.com/launch<", "3 < 5", "AT&amp;T", "&#x3E;!"):
        assert follower in reveals
    urls = {c["story"].get("url") for c in VECTORS["cases"]}
    assert {"https://例え.jp/記事", "https://пример.рф/статья?q=1", "https://مثال.إختبار/مقال"} <= urls


# ------------------------------------------------------------------------------ each reported problem


@pytest.mark.parametrize("follower", [")", "!", "]", "<", ">", ".", "'"])
def test_no_backslash_or_entity_directly_after_a_bare_url(follower):
    text = escape_markdown(f"It shipped (see https://example.com/launch{follower} now")
    assert "https://example.com/launch\\" not in text and "https://example.com/launch&" not in text
    assert "[https://example.com/launch](https://example.com/launch)" in text


def test_a_url_before_a_closing_parenthesis_is_an_explicit_link():
    assert escape_markdown("It shipped (see https://example.com/launch).") == (
        "It shipped \\(see [https://example.com/launch](https://example.com/launch)\\).")


def test_less_than_in_a_spoiler_is_an_entity_so_the_spoiler_stays_inline():
    assert spoiler_markdown("Prices fell: 3 < 5.") == ">!Prices fell: 3 &lt; 5.!<"
    assert spoiler_markdown("early !< exit >! x") == ">!early \\!&lt; exit &gt;\\! x!<"


def test_ampersands_are_escaped_so_entities_show_literally():
    assert escape_markdown("AT&amp;T") == "AT&amp;amp;T"
    assert escape_markdown("&#x3E;!x!&#x3C;") == "&amp;\\#x3E;\\!x\\!&amp;\\#x3C;"


def test_a_final_star_cannot_close_the_bold_around_the_summary_early():
    assert escape_markdown("now**") == "now\\*&#42;"


def test_summary_category_and_source_are_text_in_the_self_post():
    s = story(summary="Read [the memo](https://evil.example.com) **now**", category="C++ *and* AI",
              source="R&D _Weekly_")
    selftext = render_reddit(s)[0].payload["selftext"]
    assert "· C++ \\*and\\* AI · R&amp;D \\_Weekly\\_\n" in selftext
    assert ("**Read \\[the memo\\]\\([https://evil.example.com](https://evil.example.com)\\) \\*\\*now\\*&#42;**"
            in selftext)
    assert selftext.endswith("Source: [R&amp;D \\_Weekly\\_](https://example.com/story)")


def test_each_summary_paragraph_is_bold_on_its_own_and_meta_stays_on_one_line():
    # "**One.\n\nTwo.**" showed both pairs of stars; a line of "---" made the line before it a heading;
    # "1. item" starting a paragraph of the category became a list.
    s = story(summary="One.\n\nTwo\n---\nthree.", category="Tech\n\n1. item", source="Wire\n=\nDesk")
    selftext = render_reddit(s)[0].payload["selftext"]
    assert "\n\n**One.**\n\n**Two --- three.**\n\n" in selftext
    assert "* · Tech 1. item · Wire = Desk\n" in selftext
    assert selftext.endswith("Source: [Wire = Desk](https://example.com/story)")


def test_a_link_text_ending_in_a_backslash_still_closes():
    # "[C:\\\\](...)": Reddit read the escaped backslash and "]" as an escaped "]", and the link never closed.
    selftext = render_reddit(story(source="C:\\", url="https://example.com/("))[0].payload["selftext"]
    assert selftext.endswith("Source: [C:&#92;](https://example.com/\\()")
    assert escape_markdown("https://a.com/\\") == "[https://a.com/&#92;](https://a.com/\\\\)"


def test_a_url_reddit_does_not_autolink_is_an_explicit_link():
    # Reddit links no bare URL with a non-ASCII host, so its "_" were read as emphasis and vanished.
    assert escape_markdown("see https://例え.jp/a_b_c now") == (
        "see [https://例え.jp/a\\_b\\_c](https://xn--r8jz45g.jp/a_b_c) now")
    assert escape_markdown("see https://example.com/a_b now") == "see https://example.com/a_b now"


@pytest.mark.parametrize("url, destination", [
    ("https://例え.jp/記事", "https://xn--r8jz45g.jp/%E8%A8%98%E4%BA%8B"),
    ("https://пример.рф/статья?q=1", "https://xn--e1afmkfd.xn--p1ai/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F?q=1"),
    ("https://user@例え.jp:8443/a%20b?x=(1)#!y", "https://user@xn--r8jz45g.jp:8443/a%20b?x=\\(1\\)#!y"),
    ("https://example.com/p;q:r*s'!?", "https://example.com/p;q:r*s'!?"),
])
def test_source_link_is_linkable_and_reserved_characters_are_never_rewritten(url, destination):
    selftext = render_reddit(story(url=url, source=""))[0].payload["selftext"]
    assert selftext.endswith(f"]({destination})")


def test_a_title_of_one_long_run_is_cut_inside_the_run():
    title = render_reddit(story(headline="Title " + "x" * 400))[0].payload["title"]
    assert title == "Title " + "x" * 293 + ELLIPSIS and len(title) == 300


def test_shorten_cuts_inside_a_run_that_a_word_cut_would_drop():
    assert shorten("Title " + "x" * 400, lambda t: len(t) <= 50) == ("Title " + "x" * 43 + ELLIPSIS, True)
    assert shorten("Some words here and more", lambda t: len(t) <= 12) == ("Some words…", True)


def test_comment_length_is_counted_in_utf16_code_units():
    parts = render_reddit(story(one_year_later="🙂" * 7_749))[1:]
    assert len(parts) > 1
    for part in parts:
        assert part.length == utf16(part.text) <= REDDIT_COMMENT
        assert part.checks[0].unit == "characters (UTF-16)"
    root = render_reddit(story(headline="🙂" * 200))[0]
    assert utf16(root.payload["title"]) <= 300 and root.checks[1].length == utf16(root.payload["title"])


@pytest.mark.parametrize("render", [render_x, render_bluesky, render_reddit])
@pytest.mark.parametrize("reveal", ["x" * 12_000, "这是一个没有空格的很长的故事" * 900])
def test_the_first_part_of_a_thread_carries_reveal_text(render, reveal):
    followups = render(story(one_year_later=reveal))[1:]
    assert len(followups) > 1
    first = followups[0].text
    body = first.split(SPOILER_LINE, 1)[1]
    assert len(squeeze(re.sub(r"[>!<⚠️*\d/]", "", body))) > 50, first[:120]


def test_preview_json_shows_reddit_fields_as_text_and_links_the_idn_source(tmp_path, monkeypatch, capsys):
    isolate(tmp_path, monkeypatch)
    (tmp_path / "s.yaml").write_text(
        "- id: memo\n  date: 2025-03-01\n  headline: Memo\n"
        "  summary: 'Read [the memo](https://evil.example.com) **now**'\n"
        "  category: 'C++ *and* AI'\n  url: 'https://例え.jp/記事'\n"
        "  one_year_later: 'It shipped (see https://example.com/launch). Prices fell: 3 < 5. AT&amp;T'\n",
        encoding="utf-8")
    for args in (["load", "s.yaml"], ["preview", "memo", "--platform", "reddit", "--json"]):
        try:
            main(["--db", "sqlite:///queue.db", *args])
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()
        out = capsys.readouterr().out
    root, comment = json.loads(out)
    selftext = root["payload"]["selftext"]
    assert "· C++ \\*and\\* AI\n" in selftext
    assert "**Read \\[the memo\\]\\([https://evil.example.com](https://evil.example.com)\\) \\*\\*now\\*&#42;**" in selftext
    assert selftext.endswith("Source: [https://例え.jp/記事](https://xn--r8jz45g.jp/%E8%A8%98%E4%BA%8B)")
    assert comment["text"].endswith(
        ">!It shipped \\(see [https://example.com/launch](https://example.com/launch)\\). "
        "Prices fell: 3 &lt; 5. AT&amp;amp;T!<")


# ------------------------------------------------------------------------------ properties

_BARE = r"(?<![A-Za-z])(?:https?|ftp)://\S*|(?:(?<=[\s!-/:-@\[-`{-~])|^)www\.\S*"
"""What Reddit autolinks in text, up to the next white space (and shows literally)."""
_ESCAPES = r"\\(.)|&(amp|lt|gt|#42|#92);|\[((?:\\.|[^\]\\])*)\]\((?:\\.|[^)\\])*\)"
_TOKEN = re.compile(_ESCAPES + "|(" + _BARE + ")", re.S)
_IN_LINK = re.compile(_ESCAPES + "|(?!)()", re.S)
_ENTITY = {"amp": "&", "lt": "<", "gt": ">", "#42": "*", "#92": "\\"}


def shown_text(markdown: str, in_link: bool = False) -> str:
    """What our escaping shows, read back: escapes undone, explicit links show their text, bare
    URLs show as they are (nothing is autolinked inside a link's text)."""
    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        if match.group(2) is not None:
            return _ENTITY[match.group(2)]
        if match.group(4) is not None:
            return match.group(4)
        return shown_text(match.group(3), True)
    return (_IN_LINK if in_link else _TOKEN).sub(one, markdown)


_URL = st.builds(lambda host, path: f"https://{host}.com/{path}",
                 st.text("abcxyz", min_size=1, max_size=6),
                 st.text("abc_*()!#?=/-~.", max_size=12)).flatmap(
    lambda url: st.sampled_from([url, url.replace("https://", "ftp://"), url.replace("https://", "www.")]))
_PIECE = st.one_of(st.text(max_size=6), _URL, st.sampled_from(
    ["&amp;", "&#x3C;", "&#62;", "&lt;", ">!", "!<", "**", "\\", "[", "](", ")", "<", ">", "*", "_", "~~",
     "^", "`", "#", "|", " ", ".", "!", "(", "🇺🇦", "e\u0301", "日本", "مرحبا"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, max_size=12).map("".join))
@example("It shipped (see https://example.com/launch).")
@example("https://example.com/a!<x> https://example.com/b* **")
@example("0https://a.com/_ (www.example.com/launch). éhttps://a.com/x)")
@example("[https://a.com/")
@example("https://a.com/\\\r")
def test_escaping_shows_the_text_as_written_and_no_bare_url_swallows_what_follows(text):
    markdown = escape_markdown(text)
    assert shown_text(markdown) == text
    for match in _TOKEN.finditer(markdown):  # Reddit autolinks up to white space: the URL and nothing more
        token = match.group(4)
        assert token is None or token in text, (text, markdown)  # no escape of ours is swallowed
    assert not re.search("[<>]", _TOKEN.sub("", markdown))  # no raw angle bracket outside a URL


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=12).map("".join).filter(str.strip))
def test_a_spoiler_holds_no_raw_angle_bracket_and_closes_once(text):
    for paragraph in spoiler_markdown(text).split("\n\n"):
        inner = paragraph.removeprefix(">!").removesuffix("!<")
        assert paragraph.startswith(">!") and paragraph.endswith("!<")
        assert "<" not in inner.replace("!< >!", "") and ">" not in inner.replace("!< >!", "")


def test_a_huge_source_is_cut_so_the_escaped_self_text_still_fits():
    source = " ".join(["see https://example.com/a-b?c=1."] * 2_000)
    root = render_reddit(story(source=source, summary="Short."))[0]
    assert root.cut and root.checks[0].ok and root.payload["selftext"].endswith("](https://example.com/story)")
