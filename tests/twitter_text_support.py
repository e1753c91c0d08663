"""twitter-text's ``parseTweet``, its older configurations and its URL pattern, for the tests only.

The bot needs only :func:`posts.twitter_text.weighted_length` and :func:`posts.twitter_text.url_spans`.
What the tests hold them against lives here: the full ``parseTweet`` result (ranges and validity, as in
twitter-text's conformance suite), the v1 and v2 configurations of that suite, and the extractor's
regular expression that the linear URL scan must match exactly.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import regex

from posts.twitter_text import (
    _DIRECTIONAL_MARKS,
    _DOMAIN_CHAR,
    _INVALID_CHARS,
    _LATIN_AND_BASIC_PUNCTUATION_RANGES,
    _PATH_SEGMENT,
    _PUNYCODE_TLD,
    _QUERY_CHAR,
    _QUERY_END,
    _TLD,
    CONFIG_V3,
    TwitterTextConfig,
    _emoji_spans,
    _extract_urls,
    _join_surrogate_pairs,
    _utf16_length,
)

#: Legacy 140-character config (``config/v1.json``): every code point counts 1.
CONFIG_V1 = TwitterTextConfig(
    version=1,
    max_weighted_tweet_length=140,
    scale=1,
    default_weight=1,
    transformed_url_length=23,
)

#: 280-character weighted config without emoji discounting (``config/v2.json``).
CONFIG_V2 = TwitterTextConfig(
    version=2,
    max_weighted_tweet_length=280,
    scale=100,
    default_weight=200,
    transformed_url_length=23,
    ranges=_LATIN_AND_BASIC_PUNCTUATION_RANGES,
)

# The domain as twitter-text's pattern spells it; posts.twitter_text._Domains scans the same grammar.
_SUBDOMAIN = rf"(?:(?:{_DOMAIN_CHAR}(?:[_\-]|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\.)"
_DOMAIN_NAME = rf"(?:(?:{_DOMAIN_CHAR}(?:-|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\.)"
_DOMAIN = rf"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}(?:{_TLD}|{_PUNYCODE_TLD}))"

# twitter-text's URL extractor pattern. It backtracks (quadratic on ``a.a.a.a...``), which is why the
# bot finds URLs with a linear scan (``posts.twitter_text._find_urls``) that must find exactly its matches.
EXTRACT_URL = regex.compile(
    rf"(?P<before>[^A-Za-z0-9@\uff20$#\uff03{_INVALID_CHARS}]|[{_DIRECTIONAL_MARKS}]|^)"
    r"(?P<url>"
    r"(?P<protocol>(?i:https?://))?"
    rf"(?P<domain>{_DOMAIN})"
    r"(?::[0-9]+)?"
    rf"(?P<path>/{_PATH_SEGMENT}*)?"
    rf"(?:\?{_QUERY_CHAR}*{_QUERY_END})?"
    r")"
)


@dataclass(frozen=True)
class ParseResult:
    """Outcome of :func:`parse_tweet`, mirroring twitter-text's result object.

    The four range fields are inclusive indices in UTF-16 code units of the text as given (as in
    JavaScript). ``valid_range_end`` is the last index that still fits in the limit.
    """

    weighted_length: int
    valid: bool
    permillage: int
    valid_range_start: int
    valid_range_end: int
    display_range_start: int
    display_range_end: int


def parse_tweet(text: str, config: TwitterTextConfig = CONFIG_V3) -> ParseResult:
    """Measure a post the way X does (twitter-text ``parseTweet``).

    The text is NFC-normalised; each URL counts ``transformed_url_length``; with emoji parsing each
    emoji in twitter-text's list (twemoji-parser 11.0.2: ZWJ sequences, skin tones, flags, keycaps,
    tag sequences it knows) counts ``default_weight`` once; every other code point weighs by its
    range, so an emoji the list lacks counts code point by code point, as on X.
    """
    text = _join_surrogate_pairs(text)
    normalized = unicodedata.normalize("NFC", text)
    urls = {entity.start: entity for entity in _extract_urls(normalized)}
    emojis: dict[int, int] = {}
    if config.emoji_parsing_enabled:
        emojis = dict(_emoji_spans(normalized))

    max_units = config.max_weighted_tweet_length * config.scale
    total = 0
    chars_valid = True
    valid_end = 0  # last UTF-16 index (inclusive) of normalized text that still fits
    utf16_index = 0
    index = 0
    length = len(normalized)
    while index < length:
        if index in urls:
            total += config.transformed_url_length * config.scale
            stop = min(index + urls[index].length, length)
        elif index in emojis:
            total += config.default_weight
            stop = emojis[index]
        else:
            total += config.weight_of(ord(normalized[index]))
            stop = index + 1
        utf16_index += _utf16_length(normalized[index:stop])
        index = stop
        # Upstream only looks at the last code unit of each counted item.
        if chars_valid and normalized[stop - 1] in _INVALID_CHARS:
            chars_valid = False
        if chars_valid and total <= max_units:
            valid_end = utf16_index - 1

    text_units = _utf16_length(text)
    weighted = total // config.scale
    return ParseResult(
        weighted_length=weighted,
        valid=chars_valid and 0 < total <= max_units,
        permillage=math.floor(weighted / config.max_weighted_tweet_length * 1000),
        valid_range_start=0,
        # Upstream shifts by the length change caused by normalisation.
        valid_range_end=valid_end + text_units - _utf16_length(normalized),
        display_range_start=0,
        display_range_end=text_units - 1 if text_units else 0,
    )
