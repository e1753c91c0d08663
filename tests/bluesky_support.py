"""Checks and builders for Bluesky test records: a facet-range check for our rendered output and a facet
builder for hand-written records (the bot's records come from posts.render)."""

from __future__ import annotations

import regex

from posts.bluesky_text import (
    _WS,
    FACET_TYPE,
    LINK_TYPE,
    MAX_TAG_BYTES,
    MAX_TAG_GRAPHEMES,
    MENTION_TYPE,
    TAG_TYPE,
    _facet,
    grapheme_len,
    utf8_len,
)

_WS_RE = regex.compile(rf"[{_WS}]")


def validate_facets(text: str, facets: list[dict]) -> None:
    """Check facet byte ranges against the text.

    Every ``index`` must hold integer ``byteStart < byteEnd`` within the UTF-8 bytes of the text,
    both on character boundaries, and the facets must be sorted by ``byteStart`` without overlap.
    (The lexicon tolerates empty ranges; this check, meant for our own output, does not.)

    Args:
        text: The post text.
        facets: ``app.bsky.richtext.facet`` dicts.

    Raises:
        ValueError: Naming the first offending facet.
    """
    data = text.encode("utf-8")
    previous_end = 0
    for number, facet in enumerate(facets):
        index = facet.get("index") if isinstance(facet, dict) else None
        if not isinstance(index, dict):
            raise ValueError(f"facet {number} has no index")
        start, end = index.get("byteStart"), index.get("byteEnd")
        for name, value in (("byteStart", start), ("byteEnd", end)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"facet {number} {name} must be an integer, got {value!r}")
        if not 0 <= start < end <= len(data):
            raise ValueError(
                f"facet {number} range {start}..{end} is empty or outside the text's {len(data)} bytes"
            )
        for name, value in (("byteStart", start), ("byteEnd", end)):
            if value < len(data) and 0x80 <= data[value] <= 0xBF:
                raise ValueError(f"facet {number} {name} {value} is inside a UTF-8 character")
        if start < previous_end:
            raise ValueError(
                f"facet {number} starts at {start}, before the previous facet ends at {previous_end}"
            )
        previous_end = end


class RichText:
    """Build post text piece by piece while tracking UTF-8 byte offsets for facets.

    Example::

        text, facets = (
            RichText().text("Read ").link("example.com/a...", "https://example.com/a/long/path")
            .text(" ").tag("#news", "news").build()
        )
    """

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._facets: list[dict] = []
        self._bytes = 0

    def _append(self, text: str) -> tuple[int, int]:
        start = self._bytes
        self._pieces.append(text)
        self._bytes += utf8_len(text)
        return start, self._bytes

    def text(self, text: str) -> RichText:
        """Append plain text."""
        self._append(text)
        return self

    def link(self, display: str, uri: str) -> RichText:
        """Append ``display`` as a link to ``uri`` (the facet keeps the full URI)."""
        if not display:
            raise ValueError("link display text must not be empty")
        if not uri:
            raise ValueError("link uri must not be empty")
        start, end = self._append(display)
        self._facets.append(_facet(start, end, {"$type": LINK_TYPE, "uri": uri}))
        return self

    def tag(self, display: str, tag: str) -> RichText:
        """Append ``display`` (usually ``#tag``) as a hashtag facet for ``tag`` (without ``#``)."""
        if not display:
            raise ValueError("tag display text must not be empty")
        if not tag or _WS_RE.search(tag):
            raise ValueError(f"tag must be non-empty and without whitespace: {tag!r}")
        if grapheme_len(tag) > MAX_TAG_GRAPHEMES or utf8_len(tag) > MAX_TAG_BYTES:
            raise ValueError(f"tag longer than {MAX_TAG_GRAPHEMES} graphemes or {MAX_TAG_BYTES} bytes")
        start, end = self._append(display)
        self._facets.append(_facet(start, end, {"$type": TAG_TYPE, "tag": tag}))
        return self

    def mention(self, display: str, did: str) -> RichText:
        """Append ``display`` (usually ``@handle``) as a mention of the account ``did``."""
        if not display:
            raise ValueError("mention display text must not be empty")
        if not did.startswith("did:"):
            raise ValueError(f"mention needs a DID, got {did!r}")
        start, end = self._append(display)
        self._facets.append(_facet(start, end, {"$type": MENTION_TYPE, "did": did}))
        return self

    @property
    def byte_length(self) -> int:
        """UTF-8 length of the text so far."""
        return self._bytes

    @property
    def grapheme_length(self) -> int:
        """Grapheme count of the text so far."""
        return grapheme_len("".join(self._pieces))

    def build(self) -> tuple[str, list[dict]]:
        """Return the text and a copy of its facets, in order."""
        facets = [
            {
                "$type": FACET_TYPE,
                "index": dict(facet["index"]),
                "features": [dict(feature) for feature in facet["features"]],
            }
            for facet in self._facets
        ]
        return "".join(self._pieces), facets
