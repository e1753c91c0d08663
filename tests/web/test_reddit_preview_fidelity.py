"""The dashboard's Reddit preview against snudown (Reddit's renderer), and against markdown-it-py.

Both renderers are read the same way: what a reader sees, as one line per paragraph with the
markup that matters marked in it (links with their target, spoilers, superscript, emphasis,
strike-through, code). ``reddit_html`` shows every recorded part of
``tests/data/reddit/snudown/vectors.json`` (the HTML snudown renders from our Markdown) as snudown
does. markdown-it-py (CommonMark, with the GFM autolinks and superscript of mdit-py-plugins, no raw
HTML, links only to http(s)) would replace it where it does as well; it does not: it has no Reddit
spoiler (``>!…!<`` opens a block quote) and ends a bare URL before ``.*``, which snudown links.
When it catches up, the test of its differences fails and the preview should use it
(docs/fidelity.md, "Maintained libraries considered").
"""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
from mdit_py_plugins.superscript import superscript_plugin

from bot.web.post_html import reddit_html

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "reddit" / "snudown" / "vectors.json").read_text("utf-8"))
PARTS = {f"{case['name']}/{part['kind']}{part['part']}": part for case in VECTORS["cases"] for part in case["parts"]}


class View(html.parser.HTMLParser):
    """What a reader sees: paragraphs as lines; ⟦text→href⟧ a link, ⟪…⟫ a spoiler, ⁽…⁾ superscript,
    ‹…› emphasis, «…» strong, ⸢…⸣ struck, ⌜…⌝ code (markers no test text holds); white space as a
    browser shows it."""

    MARKS = {"a": ("⟦", "⟧"), "sup": ("⁽", "⁾"), "em": ("‹", "›"), "strong": ("«", "»"), "del": ("⸢", "⸣"),
             "s": ("⸢", "⸣"), "code": ("⌜", "⌝")}

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.closers: list[str] = []
        self.hidden = 0
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        css = attrs.get("class") or ""
        if tag == "br":
            self.out.append(" ")
            return
        closer = ""
        if "spoiler-label" in css:  # the preview's "spoiler" button
            self.hidden += 1
            closer = "hidden"
        elif "spoiler-text" in css:  # snudown's md-spoiler-text, the preview's spoiler-text
            self.out.append("⟪")
            closer = "⟫"
        elif tag == "p" or "md-p" in css:
            self.out.append("¶")
        elif tag == "a":
            self.out.append("⟦")
            closer = f"→{attrs.get('href')}⟧"
        elif tag in self.MARKS:
            self.out.append(self.MARKS[tag][0])
            closer = self.MARKS[tag][1]
        self.closers.append(closer)

    def handle_endtag(self, tag):
        if tag == "br" or not self.closers:
            return
        closer = self.closers.pop()
        if closer == "hidden":
            self.hidden -= 1
        else:
            self.out.append(closer)

    def handle_data(self, data):
        if not self.hidden:
            self.out.append(data)

    @classmethod
    def of(cls, markup: str) -> str:
        lines = "".join(cls(markup).out).split("¶")
        return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def markdown_it_py() -> MarkdownIt:
    """markdown-it-py as the preview would use it: no raw HTML, links only to http(s)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
    md.use(gfm_autolink_plugin).use(superscript_plugin)
    md.validateLink = lambda url: url.lower().startswith(("http://", "https://"))
    return md


MDIT = markdown_it_py()


def test_the_preview_shows_every_recorded_part_as_snudown_does(request):
    ours = [name for name, part in PARTS.items() if View.of(str(reddit_html(part["markdown"]))) != View.of(part["html"])]
    theirs = [name for name, part in PARTS.items() if View.of(MDIT.render(part["markdown"])) != View.of(part["html"])]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        request.config.add_cleanup(lambda: reporter.write_line(
            f"Reddit preview against snudown on {len(PARTS)} recorded parts: reddit_html differs on {len(ours)}, "
            f"markdown-it-py on {len(theirs)}"))
    assert ours == []
    assert theirs  # the figures docs/fidelity.md quotes; the differences are shown below


def test_a_bare_url_in_a_link_label_is_not_linked_again():
    # The preview linked a bare URL inside a link's label, a link in a link that snudown never makes.
    html = str(reddit_html("Source: [https://example.com/story](https://example.com/story)"))
    assert html.count("<a ") == 1 and ">https://example.com/story</a>" in html
    assert str(reddit_html("[**https://example.com/x** and >!https://example.com/y!<](https://e.x)")).count("<a ") == 1
    assert str(reddit_html("**https://example.com/x**")).count("<a ") == 1  # outside a label, as before


MDIT_DIFFERS = {
    "less-than-in-spoiler/followup1": "a spoiler: markdown-it-py has none, '>!' opens a block quote",
    "url-with-balanced-parentheses/followup1": "a spoiler around a bare URL",
    "url-before-star/followup1": "a bare URL followed by '.*', which snudown links whole",
}


@pytest.mark.parametrize("name", sorted(MDIT_DIFFERS))
def test_markdown_it_py_differs_from_snudown_where_the_preview_agrees(name):
    part = PARTS[name]
    snudown = View.of(part["html"])
    assert View.of(str(reddit_html(part["markdown"]))) == snudown
    assert View.of(MDIT.render(part["markdown"])) != snudown, (
        f"markdown-it-py now shows {MDIT_DIFFERS[name]} as snudown does: use it (docs/fidelity.md)")


def test_markdown_it_py_as_configured_keeps_the_preview_safe():
    # The configuration compared above keeps what the preview guarantees, so the comparison is fair.
    html = MDIT.render("<b>x</b> [j](javascript:alert(1)) [f](ftp://example.com) [ok](https://example.com)")
    assert "<b>" not in html and "javascript:" not in html.replace("[j](javascript:alert(1))", "")
    assert 'href="ftp:' not in html and 'href="https://example.com"' in html


# Markdown our rendering never writes unescaped, rendered live by snudown: where each of the two
# agrees with Reddit (True) and where not (False). The figures docs/fidelity.md quotes.
PROBES = {
    "Shown >!hidden text!< shown": (True, False),
    "See https://example.com/x and www.example.com/y.": (True, True),
    "Wiki https://en.wikipedia.org/wiki/Mercury_(planet) now": (True, True),
    "(see https://example.com/launch).": (True, True),
    "\\*not em\\* and \\>!not spoiler!\\< \\[a\\]\\(b\\)": (True, True),
    "AT&amp;T &lt;b&gt; & <b>raw</b>": (True, True),
    "x^2 and ^(two words) up": (False, False),  # Reddit's superscript: neither
    "*it* **bold** ***both***": (False, False),
    "~~gone~~": (False, True),
    "`code` here": (False, True),
    "a@b.com and /r/python": (False, False),  # Reddit's own links; markdown-it-py drops the "a"
    "line one\nline two": (True, True),
}


@pytest.mark.reference
def test_the_preview_and_markdown_it_py_against_live_snudown(reference):
    answers = reference.call_many("snudown.markdown", [{"text": text} for text in PROBES])
    found = {text: (View.of(str(reddit_html(text))) == View.of(html), View.of(MDIT.render(text)) == View.of(html))
             for text, html in zip(PROBES, answers, strict=True)}
    assert found == PROBES
