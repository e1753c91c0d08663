"""Show post text the way each platform displays it, as safe HTML.

X links URLs (shown without the scheme, long ones elided) and hashtags; Bluesky shows the text of
the record with its facets (links and tags) as links; Reddit renders Markdown, with ``>!spoiler!<``
spans hidden until clicked (a ``<details>`` element, so no JavaScript is needed).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

from posts import mastodon_text
from posts.render import reddit_autolinks
from posts.twitter_text import url_spans

_HASHTAG = re.compile(r"(?<![\w&/#])#(\w+)")
_SAFE_SCHEMES = ("http://", "https://")
LINK_TYPE = "app.bsky.richtext.facet#link"
TAG_TYPE = "app.bsky.richtext.facet#tag"


def web_url(url: str | None) -> str:
    """``url`` if it is a web address, else a harmless placeholder (never ``javascript:``)."""
    return url if url and url.lower().startswith(_SAFE_SCHEMES) else "#"


def _link(url: str, shown: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (f'<a{cls} href="{escape(web_url(url))}" rel="noopener noreferrer nofollow" target="_blank">'
            f"{escape(shown)}</a>")


def _with_breaks(html: str) -> str:
    return html.replace("\n", "<br>\n")


def x_display_url(url: str) -> str:
    """How X shows a link: without the scheme and ``www.``, elided after 26 characters."""
    shown = re.sub(r"^https?://(www\.)?", "", url, flags=re.I)
    return shown if len(shown) <= 26 else shown[:25] + "…"


def _x_tag(tag: str) -> str:
    return (f'<a class="tag" href="https://x.com/hashtag/{quote(tag)}" '
            f'rel="noopener noreferrer nofollow" target="_blank">#{escape(tag)}</a>')


def _mastodon_tag(tag: str) -> str:
    return f'<a class="tag" href="#" rel="nofollow">#{escape(tag)}</a>'


def _hashtags(text: str, tag: Callable[[str], str] = _x_tag) -> str:
    """``text`` escaped, each hashtag shown by ``tag`` (a link, as each platform makes it)."""
    out, pos = [], 0
    for match in _HASHTAG.finditer(text):
        out.append(str(escape(text[pos:match.start()])))
        out.append(tag(match.group(1)))
        pos = match.end()
    out.append(str(escape(text[pos:])))
    return "".join(out)


def x_html(text: str) -> Markup:
    """An X post's text: links shortened as X shows them, hashtags linked, line breaks kept."""
    out, pos = [], 0
    for start, end in url_spans(text):
        out.append(_hashtags(text[pos:start]))
        url = text[start:end]
        full = url if url.lower().startswith(_SAFE_SCHEMES) else "https://" + url
        out.append(_link(full, x_display_url(url)))
        pos = end
    out.append(_hashtags(text[pos:]))
    return Markup(_with_breaks("".join(out)))


def mastodon_display_url(url: str) -> str:
    """How Mastodon shows a link: without the scheme and ``www.``, the first 30 characters then "…"."""
    shown = re.sub(r"^https?://(www\.)?", "", url, flags=re.I)
    return shown if len(shown) <= 30 else shown[:30] + "…"


def mastodon_html(text: str) -> Markup:
    """A Mastodon status's text as the web app shows it: paragraphs at blank lines, line breaks
    kept, the URLs the server links shown short, hashtags as tags."""
    out, pos = [], 0
    for start, end in mastodon_text.url_spans(text):
        out.append(_hashtags(text[pos:start], _mastodon_tag))
        out.append(_link(text[start:end], mastodon_display_url(text[start:end])))
        pos = end
    out.append(_hashtags(text[pos:], _mastodon_tag))
    paragraphs = re.split(r"\n[ \t]*\n", "".join(out))
    return Markup("".join(f"<p>{_with_breaks(p.strip())}</p>" for p in paragraphs if p.strip()))


def bluesky_html(record: Mapping[str, Any]) -> Markup:
    """A Bluesky post's text with its facets: link facets link to their full URI, tags to a search."""
    data = str(record.get("text", "")).encode("utf-8")
    facets = sorted(record.get("facets") or [], key=lambda f: f["index"]["byteStart"])
    out, cursor = [], 0
    for facet in facets:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        if start < cursor or end > len(data) or start >= end:
            continue
        out.append(str(escape(data[cursor:start].decode("utf-8", "replace"))))
        shown = data[start:end].decode("utf-8", "replace")
        feature = (facet.get("features") or [{}])[0]
        if feature.get("$type") == LINK_TYPE:
            out.append(_link(str(feature.get("uri", "")), shown))
        elif feature.get("$type") == TAG_TYPE:
            out.append(_link(f"https://bsky.app/hashtag/{quote(str(feature.get('tag', '')))}", shown, "tag"))
        else:
            out.append(str(escape(shown)))
        cursor = end
    out.append(str(escape(data[cursor:].decode("utf-8", "replace"))))
    return Markup(_with_breaks("".join(out)))


def domain(url: str) -> str:
    """The host of ``url`` without ``www.``, for link cards."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


# ---------------------------------------------------------------------------- Reddit Markdown

_ESCAPABLE = set("\\`*_{}[]()#+-.!|~^<>")
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")


class _Closers:
    """Where each closing token of ``text`` occurs, not backslash-escaped: found in one pass, then
    looked up by bisection, so a construct that never closes costs a lookup, not a scan to the end
    (which made 30,000 ``[`` quadratic)."""

    TOKENS = ("!<", "**", "*", "]", ")")

    def __init__(self, text: str):
        found: dict[str, list[int]] = {token: [] for token in self.TOKENS}
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "*":
                found["*"].append(i)
                if text.startswith("**", i):
                    found["**"].append(i)
            elif c in "])":
                found[c].append(i)
            elif c == "!" and text.startswith("!<", i):
                found["!<"].append(i)
            i += 1
        self.found = found

    def find(self, token: str, start: int) -> int:
        """Index of the first ``token`` at or after ``start``, or -1."""
        places = self.found[token]
        k = bisect.bisect_left(places, start)
        return places[k] if k < len(places) else -1


def _spoiler(inner: str) -> str:
    return ('<details class="spoiler"><summary><span class="spoiler-label">spoiler</span></summary>'
            f'<span class="spoiler-text">{inner}</span></details>')


def _inline(text: str, *, autolink: bool = True) -> str:
    """One paragraph's inline Markdown, in time linear in its length: each construct closes at the
    first closer after it, so constructs of one kind never nest and the recursion is at most four
    deep (spoiler, bold, italics, link label), each level a single pass. Inside a link's label
    (``autolink=False``) a bare URL is text, as snudown shows it: no link inside a link."""
    out: list[str] = []
    closers = _Closers(text)
    # what Reddit links in plain text, by its own rules
    autolinks = dict(reddit_autolinks(text)) if autolink else {}
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            out.append(str(escape(text[i + 1])))
            i += 2
            continue
        if text.startswith(">!", i):
            end = closers.find("!<", i + 2)
            if end != -1:
                out.append(_spoiler(_inline(text[i + 2:end], autolink=autolink)))
                i = end + 2
                continue
        if text.startswith("**", i):
            end = closers.find("**", i + 2)
            if end > i + 2:
                out.append(f"<strong>{_inline(text[i + 2:end], autolink=autolink)}</strong>")
                i = end + 2
                continue
        if c == "*" and not text.startswith("**", i):
            end = closers.find("*", i + 1)
            if end > i + 1:
                out.append(f"<em>{_inline(text[i + 1:end], autolink=autolink)}</em>")
                i = end + 1
                continue
        if c == "[":
            close = closers.find("]", i + 1)
            if close != -1 and text.startswith("(", close + 1):
                end = closers.find(")", close + 2)
                if end != -1:
                    label = _inline(text[i + 1:close], autolink=False)
                    url = re.sub(r"\\(.)", r"\1", text[close + 2:end].strip())  # "\)" is ")"
                    out.append(f'<a href="{escape(web_url(url))}" rel="noopener noreferrer nofollow" '
                               f'target="_blank">{label}</a>')
                    i = end + 1
                    continue
        if c == "&":
            match = _ENTITY.match(text, i)
            if match:  # shown as the character it names, as Reddit does
                out.append(match.group(0))
                i = match.end()
                continue
        if i in autolinks:
            url = text[i:autolinks[i]]
            out.append(_link(url if "://" in url else f"http://{url}", url))
            i = autolinks[i]
            continue
        out.append(str(escape(c)))
        i += 1
    return "".join(out)


def reddit_html(markdown: str) -> Markup:
    """Reddit Markdown as Reddit shows it: paragraphs, bold, italics, links, and hidden spoilers."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", markdown.strip()) if p.strip()]
    html = "\n".join(f'<div class="md-p">{_inline(" ".join(p.split(chr(10))))}</div>' for p in paragraphs)
    return Markup(html)
