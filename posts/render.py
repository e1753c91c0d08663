"""Render a story for each platform: pure functions, no I/O.

Every part that comes out fits its platform's limits as that platform counts them:
X's weighted length (twitter-text v3), Bluesky's graphemes and UTF-8 bytes, Reddit's
characters (as UTF-16 code units, the stricter count), Mastodon's characters (graphemes, URLs at the
instance's weight, the content warning included). ``preview``, the sandbox and the live
adapters all send what this module makes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import idna

from posts import bluesky_text, mastodon_text, replies, twitter_text
from posts.fit import balanced_spans, shorten, split_thread, url_spans
from posts.mastodon_text import MastodonLimits
from posts.story import Story, StoryImage

X_LIMIT = 280
BLUESKY_GRAPHEMES = bluesky_text.MAX_GRAPHEMES
BLUESKY_BYTES = bluesky_text.MAX_BYTES
REDDIT_TITLE = 300
REDDIT_SELFTEXT = 40_000
REDDIT_COMMENT = 10_000
REDDIT_FLAIR = 64
REDDIT_UNIT = "characters (UTF-16)"
MASTODON_UNIT = "characters"
STOCK_MASTODON = MastodonLimits()
"""A stock Mastodon server's limits (500 characters, 23 per URL): what rendering assumes unless told."""
META_GRAPHEMES = 30
"""How long the category and the source may each stay when they would crowd out the headline."""
SPOILER_CHUNK = 2_000
"""Longest escaped text one ``>!…!<`` span holds; longer paragraphs get several spans, so a comment
thread can break between them."""

SPOILER_LINE = "One year later — spoiler"
"""The warning line that opens every follow-up."""
REPLAY_LINE = "replayed one year on"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclasses.dataclass(frozen=True)
class Check:
    """One limit a part must respect."""

    what: str
    length: int
    limit: int
    unit: str

    @property
    def ok(self) -> bool:
        return 0 <= self.length <= self.limit


@dataclasses.dataclass(frozen=True)
class Shown:
    """A picture a part shows: the sha256 of the version prepared for the platform, and its alt text."""

    sha256: str
    alt: str

    def to_dict(self) -> dict[str, str]:
        return {"sha256": self.sha256, "alt": self.alt}


@dataclasses.dataclass(frozen=True)
class Part:
    """One post as it will be sent: its text, its length against its limit, and the payload."""

    platform: str
    kind: str
    part: int
    parts: int
    text: str
    payload: Mapping[str, Any]
    checks: tuple[Check, ...]
    cut: bool = False
    """Whether some of the story had to be cut to fit."""
    attachments: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The images that go with the post, by name, as the sha256 of the bytes stored when the story was
    loaded (``thumb``: the root's image); the engine hands those bytes to the adapter."""
    pictures: tuple[Shown, ...] = ()
    """The pictures the post shows, in order, with their alt text (the root: the story's ``images``; the
    reveal's first part: its ``followup_images``)."""
    replies: str = ""
    """On a root: who may reply to its thread (:data:`posts.replies.REPLIES`), as the story and settings chose;
    what the platform is told of it is in the payload (X ``reply_settings``, Bluesky ``threadgate``)."""

    @property
    def length(self) -> int:
        return self.checks[0].length

    @property
    def limit(self) -> int:
        return self.checks[0].limit

    @property
    def unit(self) -> str:
        return self.checks[0].unit

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform, "kind": self.kind, "part": self.part, "parts": self.parts,
            "text": self.text, "length": self.length, "limit": self.limit, "unit": self.unit,
            "checks": [dataclasses.asdict(c) for c in self.checks], "cut": self.cut,
            "payload": dict(self.payload), "pictures": [p.to_dict() for p in self.pictures],
            **({"replies": {"choice": self.replies, "applied": replies.applied(self.platform, self.replies)}}
               if self.replies else {}),
        }


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """What rendering needs beyond the story."""

    reddit_flair: bool = False
    """Send the category as flair text (for subreddits that use flair)."""
    created_at: str | None = None
    """Bluesky ``createdAt``; left out, a placeholder that :func:`stamp` replaces when the post is sent."""
    templates: Any = None
    """A :class:`posts.templates.Templates` overriding the built-in look, or ``None``."""
    lang: str = "en"
    """Language of stories that do not name theirs."""
    mastodon_limits: MastodonLimits = STOCK_MASTODON
    """The Mastodon instance's status limits (its ``/api/v2/instance``); a stock server's by default."""
    replies: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Who may reply, per platform, by the settings (a story's own ``replies`` wins); missing: everyone."""


# ---------------------------------------------------------------------------- the story card


def root_images(story: Story) -> dict[str, str]:
    """The images a story's root carries: its prepared image as the ``thumb`` (Bluesky's link card
    shows it; the sandbox records it), by the sha256 under which the queue stores its bytes."""
    return {"thumb": story.image_sha256} if story.image_sha256 else {}


def shown(images: tuple[StoryImage, ...], platform: str) -> tuple[Shown, ...]:
    """The pictures of ``images`` as ``platform`` shows them: the version prepared for it, with the alt text."""
    return tuple(Shown(image.versions[platform], image.alt) for image in images if platform in image.versions)


def with_pictures(parts: list[Part], story: Story) -> list[Part]:
    """``parts`` with the story's pictures on the root and its reveal's pictures on the reveal's first part."""
    out = []
    for part in parts:
        images = story.images if part.kind == "root" else story.followup_images if part.part == 1 else ()
        pictures = shown(images, part.platform)
        out.append(dataclasses.replace(part, pictures=pictures) if pictures else part)
    return out


def date_stamp(story: Story) -> str:
    """``12 JAN 2024 · replayed one year on``: the story card's stamp."""
    day = story.calendar_date
    return f"{day.day:02d} {_MONTHS[day.month - 1]} {day.year} · {REPLAY_LINE}"


def context(story: Story, summary: str | None = None, headline: str | None = None,
            with_tags: bool = True, *, category: str | None = None, source: str | None = None,
            url: str | None = None) -> dict[str, Any]:
    """The values a template sees (summary, headline, category and source possibly cut to fit)."""
    category = story.category if category is None else category
    source = story.source if source is None else source
    return {
        "stamp": date_stamp(story),
        "date": story.calendar_date.isoformat(),
        "meta": " · ".join(p for p in (category, source) if p),
        "category": category,
        "source": source,
        "headline": story.headline if headline is None else headline,
        "summary": story.summary if summary is None else summary,
        "body": story.body,
        "url": story.url if url is None else url,
        "hashtags": " ".join(f"#{t}" for t in story.tags) if with_tags else "",
        "tags": list(story.tags) if with_tags else [],
        "reveal": story.one_year_later,
        "spoiler_line": SPOILER_LINE,
        "story_id": story.id,
    }


def _join(*blocks: str) -> str:
    return "\n\n".join(b.strip() for b in blocks if b and b.strip())


def default_root(ctx: Mapping[str, Any]) -> str:
    """The built-in root post for X and Bluesky."""
    head = "\n".join(p for p in (ctx["stamp"], ctx["meta"]) if p)
    tail = "\n".join(p for p in (ctx["url"], ctx["hashtags"]) if p)
    return _join(head, ctx["headline"], ctx["summary"], tail)


def default_followup(ctx: Mapping[str, Any]) -> str:
    """The built-in follow-up for X and Bluesky: the warning line, then the reveal."""
    return _join(f"{ctx['spoiler_line']} ⚠️", ctx["reveal"])


def default_reddit_root(ctx: Mapping[str, Any]) -> str:
    """The built-in Reddit self text (Markdown). The body is the story's Markdown; every other
    story field is text, escaped so it shows as written."""
    meta = " · ".join(escape_markdown(" ".join(p.split())) for p in (ctx["category"], ctx["source"]) if p)
    stamp = f"*{escape_markdown(ctx['stamp'])}*" + (f" · {meta}" if meta else "")
    summary = bold_markdown(ctx["summary"])
    link = f"Source: {markdown_link(ctx['source'] or ctx['url'], ctx['url'])}" if ctx["url"] else ""
    return _join(stamp, summary, ctx["body"], link)


def bold_markdown(text: str) -> str:
    """``text`` in bold, each paragraph on its own line (Reddit's ``**…**`` does not span paragraphs:
    one pair around two paragraphs shows both stars literally; and a line of ``---`` inside one would
    make the line before it a heading)."""
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(f"**{escape_markdown(p)}**" for p in paragraphs if p)


def default_reddit_followup(ctx: Mapping[str, Any]) -> str:
    """The built-in Reddit comment: the warning line, then the reveal behind spoiler markup."""
    return _join(f"**{ctx['spoiler_line']}**", spoiler_markdown(ctx["reveal"]))


def _md_link_url(url: str) -> str:
    """A Markdown link destination Reddit links as the same resource.

    Parentheses and backslashes are backslash-escaped (Reddit's renderer takes them back out), so
    no reserved character is rewritten. An internationalised host is given in its ASCII (punycode)
    form and non-ASCII characters elsewhere are percent-encoded as UTF-8, because Reddit does not
    link a destination with a non-ASCII host; spaces are encoded too. Nothing else is touched.
    """
    head = _URL_HEAD.match(url)
    if head is not None and not url.isascii():
        scheme, _, authority = head.group().partition("://")
        userinfo, at, hostport = authority.rpartition("@")
        host, colon, port = hostport.partition(":") if not hostport.startswith("[") else (hostport, "", "")
        if not host.isascii():
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError:
                pass
        url = f"{scheme}://{userinfo}{at}{host}{colon}{port}{url[head.end():]}"
    url = "".join(c if c.isascii() and not c.isspace() else _percent(c) for c in url)
    return re.sub(r"([\\()])", r"\\\1", url)


def markdown_link(text: str, url: str) -> str:
    """``[text](url)``: ``text`` shown as written, linking to ``url`` (see :func:`_md_link_url`). The
    text's white space is collapsed: a blank line in it would end the paragraph and break the link. A
    backslash in it is the entity ``&#92;``: Reddit reads ``\\]`` as an escaped ``]``, so a text ending in
    an escaped backslash would never close."""
    shown = re.sub(r"\\(.)", lambda m: "&#92;" if m.group(1) == "\\" else m.group(),
                   _escape_text(" ".join(text.split())))
    return f"[{shown}]({_md_link_url(url)})"


_MD_SPECIAL = re.compile(r"([\\`*_~^\[\]()!#|])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escape_text(text: str) -> str:
    """Plain text as Reddit Markdown that shows it as written.

    ``&``, ``<`` and ``>`` become HTML entities (a backslash does not stop ``&amp;`` from showing
    as ``&``, and ``\\<`` ends a spoiler early on Reddit); the other metacharacters get a backslash,
    except a final ``*``, which becomes ``&#42;``.
    """
    text = _MD_SPECIAL.sub(r"\\\1", re.sub(r"[&<>]", lambda m: _MD_ENTITIES[m.group()], text))
    if text.endswith("*"):  # "\*" then a closing "**" of ours would close early on Reddit
        text = text[:-2] + "&#42;"
    return text


_AUTOLINK = re.compile(r"(?:(?<![A-Za-z])(?:https?|ftp)://|(?:(?<=[\s!-/:-@\[-`{-~])|^)www\.)"
                       r"[^\s<>\"]+[^\s<>\"'.,;:!?)\]}»”’]")


_URL_HOST = re.compile(r"(?:[A-Za-z]+://)?([^/?#]*)")


def reddit_autolinks(text: str) -> list[tuple[int, int]]:
    """Spans of what Reddit links in plain text: ``http``, ``https`` and ``ftp`` URLs (after any
    character but an ASCII letter, so also ``0https://…``) and ``www.`` names (after a space or
    punctuation). A closing parenthesis that balances one inside belongs to the URL."""
    return balanced_spans(_AUTOLINK, text)


def escape_markdown(text: str) -> str:
    """Escape Reddit Markdown so the text shows as written; URLs stay clickable, unchanged.

    A URL with an ASCII host followed by white space stays bare: Reddit links it as it is. Any other
    URL becomes an explicit ``[url](url)`` link, because Reddit's autolink runs on to the next white
    space and would swallow what follows (a backslash, an entity, the ``**`` or ``!<`` a template puts
    after the text) into the address, and does not link a non-ASCII host at all (its ``_`` and ``*``
    would then be read as emphasis).
    """
    out, pos = [], 0
    for start, end in reddit_autolinks(text):
        out.append(_escape_text(text[pos:start]))
        url = text[start:end]
        if end < len(text) and text[end].isspace() and (host := _URL_HOST.match(url)) is not None \
                and host.group(1).isascii():
            out.append(url)
        else:
            out.append(markdown_link(url, url if "://" in url else f"http://{url}"))
        pos = end
    out.append(_escape_text(text[pos:]))
    return "".join(out)


def spoiler_markdown(text: str) -> str:
    """Wrap each paragraph in ``>!…!<`` (Reddit's markup does not span paragraphs).

    A paragraph whose escaped text is longer than :data:`SPOILER_CHUNK` becomes several spans on
    the same line (``>!…!< >!…!<``), so a comment that must be split can break between them.
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    out = []
    for paragraph in paragraphs:
        if not paragraph:
            continue
        chunks = [paragraph]
        if len(escape_markdown(paragraph)) > SPOILER_CHUNK:
            try:
                chunks = split_thread(paragraph, lambda t: len(escape_markdown(t)) <= SPOILER_CHUNK,
                                      numbered=lambda body, i, n: body)
            except ValueError:  # a URL longer than a chunk: keep one span (it may still fit a comment)
                chunks = [paragraph]
        out.append(" ".join(f">!{escape_markdown(chunk)}!<" for chunk in chunks))
    return "\n\n".join(out)


# ---------------------------------------------------------------------------- measures


def x_checks(text: str) -> tuple[Check, ...]:
    return (Check("text", twitter_text.weighted_length(text), X_LIMIT, "weighted characters"),)


def bluesky_checks(text: str) -> tuple[Check, ...]:
    return (Check("text", bluesky_text.grapheme_len(text), BLUESKY_GRAPHEMES, "graphemes"),
            Check("text bytes", bluesky_text.utf8_len(text), BLUESKY_BYTES, "UTF-8 bytes"))


def _fits(checks: Callable[[str], tuple[Check, ...]]) -> Callable[[str], bool]:
    return lambda text: all(c.ok for c in checks(text))


# Fitting measures many near-identical texts. Both platforms' counts add up line by line (no URL,
# hashtag, emoji sequence or grapheme cluster spans a line feed), so each distinct line is measured
# once; the final parts are still checked with the exact whole-text counts.
@functools.lru_cache(maxsize=16384)
def _x_line(line: str) -> int:
    return twitter_text.weighted_length(line)


def x_fits(text: str) -> bool:
    """Whether ``text`` fits one post on X (weighted length at most 280)."""
    lines = text.split("\n")
    return sum(map(_x_line, lines)) + len(lines) - 1 <= X_LIMIT


def with_schemes(text: str) -> str:
    """``text`` with ``https://`` before each scheme-less link that is long enough to be shown short.

    The Bluesky app shows ``example.com/a/very/long/path`` whole (its shortener needs a scheme), so
    a long bare link could not fit a post; with the scheme it is shown as ``example.com/a/very/l...``
    and its facet keeps the full URI, which is the same ``https://`` URI either way.
    """
    if "." not in text:
        return text
    data = text.encode("utf-8")
    pieces, cursor = [], 0
    for facet in bluesky_text.detect_facets(text):
        if facet["features"][0]["$type"] != bluesky_text.LINK_TYPE:
            continue
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        shown = data[start:end].decode("utf-8")
        if shown.startswith(("http://", "https://")):
            continue
        short = bluesky_text.shorten_url(facet["features"][0]["uri"])
        if short.endswith("...") and bluesky_text.grapheme_len(short) < bluesky_text.grapheme_len(shown):
            pieces += [data[cursor:start], b"https://"]
            cursor = start
    if not pieces:
        return text
    return b"".join([*pieces, data[cursor:]]).decode("utf-8")


@functools.lru_cache(maxsize=16384)
def _bluesky_line(line: str, urls: tuple[str, ...]) -> tuple[int, int]:
    shown = bluesky_text.linkify(with_schemes(line), urls=urls)[0]
    return bluesky_text.grapheme_len(shown), bluesky_text.utf8_len(shown)


def bluesky_fits(raw: str, urls: tuple[str, ...] = ()) -> bool:
    """Whether ``raw`` fits one Bluesky post once its URLs are shown shortened (``urls`` are linked
    whole, see :func:`posts.bluesky_text.link_facets`)."""
    lines = raw.split("\n")
    # Only the URLs a line holds change its size: keyed on those alone, the cache serves the lines
    # that every story shares (the stamp, the warning line) whatever the story's own URL.
    present = [url for url in urls if url in raw] if urls else None
    if not present:
        sizes = [_bluesky_line(line, ()) for line in lines]
    elif len(present) == 1:
        url = present[0]
        sizes = [_bluesky_line(line, (url,) if url in line else ()) for line in lines]
    else:
        sizes = [_bluesky_line(line, tuple(u for u in present if u in line)) for line in lines]
    return (sum(g for g, _ in sizes) + len(lines) - 1 <= BLUESKY_GRAPHEMES
            and sum(b for _, b in sizes) + len(lines) - 1 <= BLUESKY_BYTES)


def _template(options: RenderOptions, platform: str, kind: str) -> Callable[[Mapping[str, Any]], str] | None:
    if options.templates is None:
        return None
    return options.templates.get(platform, kind)


def _cap(text: str, protect: Callable[[str], list[tuple[int, int]]]) -> str:
    return shorten(text, lambda t: bluesky_text.grapheme_len(t) <= META_GRAPHEMES, protect=protect)[0]


def _fit_root(story: Story, build: Callable[[Mapping[str, Any]], str], fits: Callable[[str], bool],
              protect: Callable[[str], list[tuple[int, int]]], url: str | None = None,
              ) -> tuple[str, dict[str, Any], bool]:
    """Fit a root post: drop the hashtags, then cut the summary, then the headline; never the link.

    When the category and source are so long that the headline would have to be cut, they are
    cut first (to :data:`META_GRAPHEMES` each), and dropped if even that leaves no headline.
    """
    def attempt(**changes: Any) -> tuple[str, dict[str, Any]]:
        ctx = context(story, url=url, **changes)
        return build(ctx), ctx

    text, ctx = attempt()
    if fits(text):
        return text, ctx, False
    text, ctx = attempt(with_tags=False)
    if fits(text):
        return text, ctx, True
    summary, _ = shorten(story.summary, lambda s: fits(attempt(summary=s, with_tags=False)[0]), protect=protect)
    text, ctx = attempt(summary=summary, with_tags=False)
    if summary or fits(text):
        return text, ctx, True
    full = {"category": story.category, "source": story.source}
    capped = {"category": _cap(story.category, protect), "source": _cap(story.source, protect)}
    # (meta line, whether a cut headline is acceptable with it)
    choices: list[tuple[dict[str, str], bool]] = [({}, capped == full)]
    if capped != full:
        choices.append((capped, True))
    if story.category or story.source:
        choices.append(({"category": "", "source": ""}, True))
    found = None
    for meta, accept_cut in choices:
        headline, headline_cut = shorten(
            story.headline, lambda h, m=meta: fits(attempt(summary="", headline=h, with_tags=False,  # type: ignore[misc]
                                                           **m)[0]),
            protect=protect)
        text, ctx = attempt(summary="", headline=headline, with_tags=False, **meta)
        if not fits(text):
            continue
        if headline and (accept_cut or not headline_cut):
            return text, ctx, True
        found = found or (text, ctx)
    if found is None:
        raise ValueError(f"story {story.id}: the link and date stamp alone do not fit one post")
    return found[0], found[1], True


def _numbered(body: str, i: int, n: int) -> str:
    return f"{body}\n\n{i}/{n}"


# ---------------------------------------------------------------------------- per platform


_URL_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def x_link_end(url: str) -> int | None:
    """Where the link twitter-text finds at the start of ``url`` ends, or ``None`` if it finds none."""
    spans = twitter_text.url_spans(url)
    return spans[0][1] if spans and spans[0][0] == 0 else None


def x_url(url: str) -> str:
    """The story URL as X should get it: each non-ASCII character where twitter-text's link would
    stop is percent-encoded as UTF-8 (the same resource: RFC 3987's mapping of an IRI to a URI), so
    X links the whole address. ASCII characters are never rewritten: a reserved character such as a
    trailing ``?`` or ``.`` names another resource when encoded; where X stops at one, the loader
    says so (:func:`x_link_note`). The host is left as it is.
    """
    if not url or url.isascii():
        return url
    head = _URL_HEAD.match(url)
    if head is None:
        return url
    for _ in range(len(url)):
        end = x_link_end(url)
        if end is None or end >= len(url) or end < head.end() or url[end].isascii():
            break
        url = url[:end] + _percent(url[end]) + url[end + 1:]
    return url


def x_link_note(url: str) -> str | None:
    """What X would link of ``url`` when it is less than the whole address, said for the loader; None
    when X links all of it. (A host X does not link at all is refused by the loader before this.)"""
    posted = x_url(url)
    end = x_link_end(posted)
    if end is None or end >= len(posted):
        return None
    return (f"X links only {posted[:end]!r} of {url!r}: twitter-text ends the link before "
            f"{posted[end:]!r}, so the post's link would lead there")


_X_INVALID = re.compile("[\ufeff\ufffe\uffff]")
_X_TEXT_FIELDS = ("headline", "summary", "body", "category", "source", "url", "one_year_later")


def _without_x_invalid(story: Story) -> Story:
    """``story`` without U+FEFF, U+FFFE, U+FFFF, which make X refuse a post (the loader refuses them
    already; a story built another way loses them here)."""
    changes: dict[str, Any] = {name: _X_INVALID.sub("", getattr(story, name)) for name in _X_TEXT_FIELDS
                               if _X_INVALID.search(getattr(story, name))}
    if any(_X_INVALID.search(tag) for tag in story.tags):
        changes["tags"] = tuple(t for t in (_X_INVALID.sub("", tag) for tag in story.tags) if t)
    return dataclasses.replace(story, **changes) if changes else story


def render_x(story: Story, options: RenderOptions = RenderOptions()) -> list[Part]:
    """The root tweet and the follow-up thread, as create-tweet bodies."""
    story = _without_x_invalid(story)
    build_root = _template(options, "x", "root") or default_root
    text, _, cut = _fit_root(story, build_root, x_fits, twitter_text.url_spans, url=x_url(story.url))
    parts = [Part("x", "root", 1, 1, text, {"text": text}, x_checks(text), cut, root_images(story))]
    if story.one_year_later:
        build = _template(options, "x", "followup") or default_followup
        texts = split_thread(build(context(story)), x_fits, protect=twitter_text.url_spans,
                             numbered=_numbered)
        parts += [Part("x", "followup", i, len(texts), t, {"text": t}, x_checks(t))
                  for i, t in enumerate(texts, start=1)]
    return parts


def bluesky_record(text: str, *, lang: str, created_at: str, embed: Mapping[str, Any] | None = None,
                   urls: tuple[str, ...] = ()) -> dict[str, Any]:
    """An ``app.bsky.feed.post`` record for ``text``: links shown short with link facets, tag facets.

    Each of ``urls`` (the story's own URL) is linked to exactly as written, wherever it appears,
    even where Bluesky's detection would end the link earlier (see :func:`posts.bluesky_text.link_facets`).
    """
    plain, facets = bluesky_text.linkify(with_schemes(text), urls=urls)
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": plain, "createdAt": created_at,
                              "langs": [lang]}
    if facets:
        record["facets"] = facets
    if embed:
        record["embed"] = dict(embed)
    return record


BLUESKY_KEEP_WHOLE = 200
"""The longest plain-text URL or ``#`` word (in graphemes) a Bluesky cut keeps whole."""

_HASH_WORD = re.compile(r"(?:^|(?<=\s))[#\uff03]\S+")


def bluesky_spans(text: str, urls: tuple[str, ...] = ()) -> list[tuple[int, int]]:
    """What a cut must keep whole in Bluesky text: every link and tag Bluesky itself detects
    (bare domains such as ``example.com/path`` included), each of ``urls``, every other ``http(s)``
    URL, and every ``#`` word too long to be a tag (cut short, it would become one). The last two are
    kept whole only while they could fit a post (:data:`BLUESKY_KEEP_WHOLE` graphemes): Bluesky
    links neither (a URL that does not follow white space is plain text), so a longer one is cut like
    any long word rather than making the text impossible to fit."""
    found = url_spans(text)
    if "#" in text or "\uff03" in text:
        found += [m.span() for m in _HASH_WORD.finditer(text)]
    spans = [(s, e) for s, e in found
             if e - s <= BLUESKY_KEEP_WHOLE or bluesky_text.grapheme_len(text[s:e]) <= BLUESKY_KEEP_WHOLE]
    facets = bluesky_text.link_facets(text, urls)
    if facets:
        data = text.encode("utf-8")
        for facet in facets:
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            char_start = len(data[:start].decode("utf-8"))
            spans.append((char_start, char_start + len(data[start:end].decode("utf-8"))))
    return sorted(spans)


UNSTAMPED = "1970-01-01T00:00:00.000Z"
"""The ``createdAt`` of a Bluesky record rendered ahead of time: :func:`stamp` sets the real one."""


def stamp_bluesky(payload: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The record as sent at ``at``: a placeholder ``createdAt`` becomes ``at`` (a set one is kept)."""
    record = dict(payload)
    if str(record.get("createdAt", UNSTAMPED)).startswith("1970-"):
        record["createdAt"] = iso_utc(at)
    gate = record.get("threadgate")
    if isinstance(gate, Mapping) and str(gate.get("createdAt", UNSTAMPED)).startswith("1970-"):
        record["threadgate"] = {**gate, "createdAt": record["createdAt"]}
    return record


def render_bluesky(story: Story, options: RenderOptions = RenderOptions()) -> list[Part]:
    """The root post with its link card, and the follow-up thread, as post records."""
    created_at = options.created_at or UNSTAMPED
    urls = (story.url,) if story.url else ()
    fits = functools.partial(bluesky_fits, urls=urls)
    spans = functools.partial(bluesky_spans, urls=urls)
    build_root = _template(options, "bluesky", "root") or default_root
    raw, _, cut = _fit_root(story, build_root, fits, spans)
    embed = None
    if story.url and not story.images:  # a post holds one embed: with pictures, the link is a facet in the text
        embed = {"$type": "app.bsky.embed.external",
                 "external": {"uri": story.url, "title": story.headline, "description": story.summary}}
    record = bluesky_record(raw, lang=story.lang or options.lang, created_at=created_at, embed=embed, urls=urls)
    parts = [Part("bluesky", "root", 1, 1, record["text"], record, bluesky_checks(record["text"]), cut,
                  root_images(story) if embed else {})]
    if story.one_year_later:
        build = _template(options, "bluesky", "followup") or default_followup
        texts = split_thread(build(context(story)), fits, protect=spans, numbered=_numbered)
        for i, raw_part in enumerate(texts, start=1):
            rec = bluesky_record(raw_part, lang=story.lang or options.lang, created_at=created_at, urls=urls)
            parts.append(Part("bluesky", "followup", i, len(texts), rec["text"], rec, bluesky_checks(rec["text"])))
    return parts


def _markdown_spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in re.finditer(r"\[[^\]]*\]\([^)]*\)", text)]
    spans += [m.span() for m in re.finditer(r">!.*?!<", text, flags=re.S)]
    return spans + url_spans(text)


def reddit_len(text: str) -> int:
    """Length as Reddit's limits are checked here: the stricter of code points and UTF-16 code
    units (which one Reddit enforces is not documented), so an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def render_reddit(story: Story, options: RenderOptions = RenderOptions()) -> list[Part]:
    """The self post (title, Markdown self text, flair) and the spoiler comment(s)."""
    title_fits = lambda t: 0 < reddit_len(t) <= REDDIT_TITLE  # noqa: E731
    headline = " ".join(story.headline.split())
    title, title_cut = shorten(headline, title_fits, protect=url_spans)
    if not title:  # a title is plain text (Reddit links nothing in it): cut a URL rather than post none
        title, title_cut = shorten(headline, title_fits, protect=lambda _: [])
    build_root = _template(options, "reddit", "root") or default_reddit_root
    ctx = context(story, with_tags=False)
    body = build_root(ctx)
    cut = title_cut
    if reddit_len(body) > REDDIT_SELFTEXT:  # cut the body, the summary, the meta; the source link stays
        cut = True
        limit_body = lambda b: reddit_len(build_root({**ctx, "body": b})) <= REDDIT_SELFTEXT  # noqa: E731
        short_body, _ = shorten(story.body, limit_body, protect=_markdown_spans)
        ctx = {**ctx, "body": short_body}
        body = build_root(ctx)
        if reddit_len(body) > REDDIT_SELFTEXT:
            limit_summary = lambda s: reddit_len(build_root({**ctx, "summary": s})) <= REDDIT_SELFTEXT  # noqa: E731
            short_summary, _ = shorten(story.summary, limit_summary, protect=_markdown_spans)
            ctx = {**ctx, "summary": short_summary}
            body = build_root(ctx)
        if reddit_len(body) > REDDIT_SELFTEXT:  # escaped, a huge category or source can fill it alone
            body = build_root({**ctx, "category": _cap(story.category, url_spans),
                               "source": _cap(story.source, url_spans)})
        if reddit_len(body) > REDDIT_SELFTEXT:
            raise ValueError(f"story {story.id}: the Reddit self text cannot be made to fit")
    payload: dict[str, Any] = {"title": title, "selftext": body}
    if options.reddit_flair and story.category:
        payload["flair_text"] = shorten(" ".join(story.category.split()),
                                        lambda t: reddit_len(t) <= REDDIT_FLAIR, protect=lambda _: [])[0]
    checks = (Check("selftext", reddit_len(body), REDDIT_SELFTEXT, REDDIT_UNIT),
              Check("title", reddit_len(title), REDDIT_TITLE, REDDIT_UNIT))
    parts = [Part("reddit", "root", 1, 1, f"{title}\n\n{body}", payload, checks, cut, root_images(story))]
    if story.one_year_later:
        build = _template(options, "reddit", "followup") or default_reddit_followup
        comment_fits = lambda t: reddit_len(t) <= REDDIT_COMMENT  # noqa: E731
        texts = split_thread(build(context(story)), comment_fits, protect=_markdown_spans, numbered=_numbered)
        parts += [Part("reddit", "followup", i, len(texts), t, {"text": t},
                       (Check("comment", reddit_len(t), REDDIT_COMMENT, REDDIT_UNIT),))
                  for i, t in enumerate(texts, start=1)]
    return parts


def mastodon_checks(text: str, spoiler_text: str, limits: MastodonLimits) -> tuple[Check, ...]:
    return (Check("status", mastodon_text.status_length(text, spoiler_text, limits), limits.max_characters,
                  MASTODON_UNIT),)


def default_mastodon_followup(ctx: Mapping[str, Any]) -> str:
    """The built-in Mastodon follow-up body: the reveal alone (the warning line is its content warning)."""
    return str(ctx["reveal"]).strip()


def render_mastodon(story: Story, options: RenderOptions = RenderOptions()) -> list[Part]:
    """The root status and the follow-up thread, as ``status_post`` fields.

    The root reads as on X and Bluesky. Each follow-up part carries the warning line as its content
    warning (``spoiler_text``), so the reveal stays folded until a reader opens it; every part fits the
    instance's limit with its warning counted, as the server counts (:mod:`posts.mastodon_text`).
    """
    limits = options.mastodon_limits
    lang = story.lang or options.lang
    build_root = _template(options, "mastodon", "root") or default_root
    root_fits = functools.partial(mastodon_text.fits, spoiler_text="", limits=limits)
    spans = functools.partial(mastodon_spans, limits=limits)
    text, _, cut = _fit_root(story, build_root, root_fits, spans)
    parts = [Part("mastodon", "root", 1, 1, text, {"status": text, "language": lang},
                  mastodon_checks(text, "", limits), cut, root_images(story))]
    if story.one_year_later:
        build = _template(options, "mastodon", "followup") or default_mastodon_followup
        part_fits = functools.partial(mastodon_text.fits, spoiler_text=SPOILER_LINE, limits=limits)
        texts = split_thread(build(context(story)), part_fits, protect=spans, numbered=_numbered)
        parts += [Part("mastodon", "followup", i, len(texts), t,
                       {"status": t, "language": lang, "spoiler_text": SPOILER_LINE},
                       mastodon_checks(t, SPOILER_LINE, limits))
                  for i, t in enumerate(texts, start=1)]
    return parts


def mastodon_spans(text: str, limits: MastodonLimits = STOCK_MASTODON) -> list[tuple[int, int]]:
    """What a cut must keep whole in a status: the URLs Mastodon weighs, and, while they could fit a
    status (half the limit), every other ``http(s)`` URL (the server links more of a path than its
    length rule weighs, e.g. non-Latin characters) and every mention (cut short, ``@user@domain`` would
    name someone else). Longer ones are cut like long words rather than making the text unfittable."""
    room = limits.max_characters // 2
    spans = mastodon_text.url_spans(text)
    spans += [(s, e) for s, e in url_spans(text) if e - s <= room or mastodon_text.grapheme_count(text[s:e]) <= room]
    spans += [(s, e) for s, e, _ in mastodon_text.mention_spans(text) if mastodon_text.grapheme_count(text[s:e]) <= room]
    return sorted(spans)


RENDERERS: dict[str, Callable[[Story, RenderOptions], list[Part]]] = {
    "x": render_x, "bluesky": render_bluesky, "reddit": render_reddit, "mastodon": render_mastodon,
}


def render(story: Story, platform: str, options: RenderOptions = RenderOptions()) -> list[Part]:
    """Every part of ``story`` on ``platform``: the root first, then the follow-up parts."""
    parts = RENDERERS[platform](story, options)
    parts = with_pictures(parts, story) if story.images or story.followup_images else parts
    return with_gate(parts, story.replies or options.replies.get(platform) or replies.DEFAULT)


def with_gate(parts: list[Part], choice: str) -> list[Part]:
    """``parts`` with who may reply set on the root, and told to the platform where it can be: X's
    ``reply_settings`` in the create-tweet body; on Bluesky the threadgate record under ``threadgate`` (the
    adapter creates it with the post, under the same record key). Follow-up parts never carry a gate."""
    out = []
    for part in parts:
        if part.kind != "root":
            out.append(part)
            continue
        payload = dict(part.payload)
        if part.platform == "x" and (setting := replies.x_reply_settings(choice)) is not None:
            payload["reply_settings"] = setting
        elif part.platform == "bluesky" and (gate := replies.bluesky_threadgate(
                choice, str(payload.get("createdAt") or UNSTAMPED))) is not None:
            payload["threadgate"] = gate
        out.append(dataclasses.replace(part, payload=payload, replies=choice))
    return out


STAMPS: dict[str, Callable[[Mapping[str, Any], dt.datetime], dict[str, Any]]] = {"bluesky": stamp_bluesky}


def stamp(platform: str, payload: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The payload of a rendered post as sent at ``at`` (its intent is committed then).

    Only Bluesky's record carries the time it was made (``createdAt``); other payloads are returned as they are.
    """
    stamper = STAMPS.get(platform)
    return stamper(payload, at) if stamper is not None else dict(payload)


def iso_utc(when: dt.datetime) -> str:
    """A datetime as atproto likes it: UTC, milliseconds, ``Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
