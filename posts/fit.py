"""Pure text fitting: cut at sentence or word boundaries, split into numbered threads.

Nothing here knows a platform: each function takes a ``measure`` (text -> length in the
platform's unit) and a limit, and ``protect`` (text -> spans that must never be cut, such as
URLs and Markdown links). Cuts fall only on grapheme-cluster boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import regex

ELLIPSIS = "…"
Measure = Callable[[str], int]
Spans = Callable[[str], Sequence[tuple[int, int]]]

_GRAPHEME = regex.compile(r"\X")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)|[。！？][」』”’）]*")
"""A sentence end: Latin punctuation before white space, or a CJK full stop (no space follows those)."""
_LAST_WORD = re.compile(r"\S*\Z")
URL_RE = re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\"'.,;:!?)\]}»”’]")


def url_spans(text: str) -> list[tuple[int, int]]:
    """Spans of http(s) URLs in ``text`` (a conservative default for ``protect``).

    A closing parenthesis that balances one inside the URL belongs to it, as in
    ``https://en.wikipedia.org/wiki/Mercury_(planet)``.
    """
    return balanced_spans(URL_RE, text)


def balanced_spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """Spans of ``pattern``'s matches in ``text``, each taking the closing parentheses that balance
    opening ones inside it."""
    spans = []
    for match in pattern.finditer(text):
        start, end = match.span()
        while end < len(text) and text[end] == ")" and text.count("(", start, end) > text.count(")", start, end):
            end += 1
        spans.append((start, end))
    return spans


def grapheme_boundaries(text: str) -> list[int]:
    """Every index in ``text`` where a grapheme cluster starts, plus ``len(text)``."""
    if text.isascii() and "\r\n" not in text:
        return list(range(len(text) + 1))
    return [m.start() for m in _GRAPHEME.finditer(text)] + [len(text)]


def lstrip_clusters(text: str) -> str:
    """``text.lstrip()``, but only whole white-space grapheme clusters go (never the space of a space plus combining mark)."""
    stripped = text.lstrip()
    if len(stripped) == len(text) or text.isascii():
        return stripped
    keep = 0
    for match in _GRAPHEME.finditer(text):
        if not match.group().isspace():
            break
        keep = match.end()
    return text[keep:]


def rstrip_clusters(text: str) -> str:
    """``text.rstrip()``, but only whole white-space grapheme clusters go (never the space of a prepended mark plus space)."""
    stripped = text.rstrip()
    if len(stripped) == len(text) or text.isascii():
        return stripped
    bounds = grapheme_boundaries(text)
    keep = len(text)
    for start, end in zip(reversed(bounds[:-1]), reversed(bounds[1:]), strict=True):
        if not text[start:end].isspace():
            break
        keep = start
    return text[:keep]


def strip_clusters(text: str) -> str:
    """Both :func:`lstrip_clusters` and :func:`rstrip_clusters`."""
    return rstrip_clusters(lstrip_clusters(text))


def cut_points(text: str, protect: Spans = url_spans) -> tuple[list[int], list[int], list[int]]:
    """(sentence ends, word ends, grapheme boundaries) of ``text`` that are safe to cut at."""
    spans = protect(text)
    boundaries = set(grapheme_boundaries(text))
    if spans:
        inside = {p for start, end in spans for p in range(start + 1, end)}
        boundaries -= inside
    sentences = sorted({m.end() for m in _SENTENCE_END.finditer(text)} & boundaries)
    words = sorted({m.start() for m in re.finditer(r"\s+", text)} & boundaries)
    return sentences, words, sorted(boundaries)


def shorten(
    text: str,
    fits: Callable[[str], bool],
    *,
    protect: Spans = url_spans,
) -> tuple[str, bool]:
    """The longest cut of ``text`` for which ``fits`` holds, and whether it was cut.

    Prefers a sentence boundary (no ellipsis needed) when that keeps at least two thirds of
    what a word-boundary cut would keep; else a word boundary plus an ellipsis. When the last
    word boundary that fits keeps less than half of what a grapheme-boundary cut would (no
    space, or one long unbroken run), the cut falls inside the word at a grapheme boundary;
    never inside a protected span. Returns
    ``("", True)`` when not even an ellipsis fits.
    """
    text = strip_clusters(text)
    if fits(text):
        return text, False
    spans = protect(text)
    sentences, words, graphemes = cut_points(text, lambda _: spans)

    def cut_at(point: int, suffix: str) -> str:
        kept = rstrip_clusters(text[:point])
        if suffix and spans:
            word_start = len(kept) - len(_LAST_WORD.search(kept).group())  # type: ignore[union-attr]  # matches any text
            if any(start < len(kept) and end > word_start for start, end in spans):
                return f"{kept} {suffix}"  # "…" glued to a URL (even after a comma) would join the link
        return kept + suffix

    def best(points: Sequence[int], suffix: str) -> int | None:
        candidates = [p for p in points if 0 < p < len(text)]
        lo, hi, found = 0, len(candidates) - 1, None
        while lo <= hi:  # lengths grow with the prefix, so the fitting prefixes come first
            mid = (lo + hi) // 2
            if fits(cut_at(candidates[mid], suffix)):
                found, lo = candidates[mid], mid + 1
            else:
                hi = mid - 1
        return found

    word = best(words, ELLIPSIS)
    sentence = best(sentences, "")
    if sentence is not None and (word is None or sentence >= word * 2 / 3):
        return cut_at(sentence, ""), True
    grapheme = best(graphemes, ELLIPSIS)
    if grapheme is not None and (word is None or word < grapheme / 2):
        word = grapheme  # a run too long to drop whole (``Title xxxx…``) is cut inside, not lost
    if word is not None:
        return cut_at(word, ELLIPSIS), True
    return "", True


def split_thread(
    text: str,
    fits: Callable[[str], bool],
    *,
    protect: Spans = url_spans,
    numbered: Callable[[str, int, int], str] = lambda body, i, n: f"{body} {i}/{n}",
) -> list[str]:
    """Split ``text`` into posts that each fit, numbered ``1/3``, ``2/3``... when more than one.

    Breaks fall at paragraph, sentence or word boundaries (a grapheme boundary inside a run
    too long to move whole, so no part is left nearly empty), never inside a protected span.
    """
    text = strip_clusters(text)
    if fits(text):
        return [text]
    count = 2
    for _ in range(6):  # the count's width changes what fits; settle it
        parts = _greedy(text, lambda body, n=count: fits(numbered(body, n, n)), protect)  # type: ignore[misc]
        if len(parts) <= count:
            total = len(parts)
            result = [numbered(body, i, total) for i, body in enumerate(parts, start=1)]
            if all(fits(p) for p in result):
                return result
        count = max(len(parts), count + 1)
    raise ValueError("text cannot be split into posts that fit")


def _greedy(text: str, fits: Callable[[str], bool], protect: Spans) -> list[str]:
    parts: list[str] = []
    rest = text
    while rest:
        window = _window(rest, fits)
        if window is rest and fits(rest):
            parts.append(rest)
            break
        sentences, words, graphemes = cut_points(window, protect)
        paragraphs = [m.start() for m in re.finditer(r"\n\s*\n", window)]
        word = _largest(words, rest, fits)
        grapheme = _largest(graphemes, rest, fits)
        if grapheme is not None and (word is None or word < grapheme / 2):
            word = grapheme  # a run too long to move whole (a reveal without spaces) is cut inside it
        chosen = None
        for points in (paragraphs, sentences):  # a coarser break, if it fills 40% of what words would
            found = _largest(points, rest, fits)
            if found is not None and (word is None or found >= word * 0.4):
                chosen = found
                break
        if chosen is None:
            chosen = word
        if chosen is None:
            raise ValueError("a piece of the text cannot fit in one post")
        parts.append(rstrip_clusters(rest[:chosen]))
        rest = strip_clusters(rest[chosen:])
    return parts


def _window(text: str, fits: Callable[[str], bool]) -> str:
    """A prefix of ``text`` that holds every cut point worth trying: one that does not fit (or all).

    Searching only there keeps splitting a long text linear rather than quadratic. A prefix may
    end inside a cluster or a URL; its last position is never a candidate, and a part that a
    partial URL misjudges is caught by :func:`split_thread`'s final check.
    """
    size = 1024
    while size < len(text):
        if not fits(text[:size]):
            return text[:size]
        size *= 4
    return text


def _largest(points: Sequence[int], text: str, fits: Callable[[str], bool]) -> int | None:
    candidates = [p for p in points if 0 < p < len(text)]
    lo, hi, found = 0, len(candidates) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(rstrip_clusters(text[: candidates[mid]])):
            found, lo = candidates[mid], mid + 1
        else:
            hi = mid - 1
    return found
