"""Mastodon's status rules: the limits an instance announces, and (below) how it counts a status.

Pure: no network and no files. The adapter reads ``/api/v2/instance`` and hands the answer to
:meth:`MastodonLimits.from_instance`; rendering counts against the result.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import grapheme

from posts import twitter_text

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_WEIGHT = 23
DEFAULT_MAX_MEDIA = 4
DEFAULT_DESCRIPTION_LIMIT = 1500
"""Alt text characters on a server that does not say (``MediaAttachment::MAX_DESCRIPTION_LENGTH`` of Mastodon
4.0-4.3; 4.6.4 announces 10000)."""
DEFAULT_IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
"""Bytes per image on a stock server (16 MiB; the recorded 4.6.4 announces 16777216)."""
DEFAULT_IMAGE_MATRIX_LIMIT = 4096 * 4096
"""Pixels per image on a server that does not say: the older stock 16,777,216 (4096 x 4096), the smaller
of the stock values (the recorded 4.6.4 announces 33177600)."""


def _positive(value: Any, default: int) -> int:
    """``value`` when it is a positive whole number (an int, or digits as text), else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value if value > 0 else default
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) or default
    return default


@dataclasses.dataclass(frozen=True)
class MastodonLimits:
    """What one instance allows a status: read once from ``/api/v2/instance`` and cached with the account.

    The defaults are a stock server's (Mastodon 4.x): 500 characters, 23 per URL, 4 attachments, alt
    text of 1500 characters, images of 16 MiB and 4096 x 4096 pixels.
    """

    max_characters: int = DEFAULT_MAX_CHARACTERS
    characters_reserved_per_url: int = DEFAULT_URL_WEIGHT
    max_media_attachments: int = DEFAULT_MAX_MEDIA
    description_limit: int = DEFAULT_DESCRIPTION_LIMIT
    """Alt text limit in characters (``configuration.media_attachments.description_limit``; servers before
    Mastodon 4.4 do not say, and took 1500)."""
    image_size_limit: int = DEFAULT_IMAGE_SIZE_LIMIT
    """Bytes per image (``configuration.media_attachments.image_size_limit``)."""
    image_matrix_limit: int = DEFAULT_IMAGE_MATRIX_LIMIT
    """Pixels (width x height) per image (``configuration.media_attachments.image_matrix_limit``)."""

    @classmethod
    def from_instance(cls, instance: Mapping[str, Any] | None) -> MastodonLimits:
        """The limits in an ``/api/v2/instance`` answer; a missing or malformed value keeps its default."""
        configuration = (instance or {}).get("configuration") or {}
        if not isinstance(configuration, Mapping):
            configuration = {}
        statuses = configuration.get("statuses") or {}
        media = configuration.get("media_attachments") or {}
        statuses = statuses if isinstance(statuses, Mapping) else {}
        media = media if isinstance(media, Mapping) else {}
        return cls(
            max_characters=_positive(statuses.get("max_characters"), DEFAULT_MAX_CHARACTERS),
            characters_reserved_per_url=_positive(statuses.get("characters_reserved_per_url"),
                                                  DEFAULT_URL_WEIGHT),
            max_media_attachments=_positive(statuses.get("max_media_attachments"), DEFAULT_MAX_MEDIA),
            description_limit=_positive(media.get("description_limit"), DEFAULT_DESCRIPTION_LIMIT),
            image_size_limit=_positive(media.get("image_size_limit"), DEFAULT_IMAGE_SIZE_LIMIT),
            image_matrix_limit=_positive(media.get("image_matrix_limit"), DEFAULT_IMAGE_MATRIX_LIMIT),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MastodonLimits:
        """The limits :meth:`to_dict` stored; unknown or malformed fields fall back to the defaults."""
        data = data or {}
        return cls(
            max_characters=_positive(data.get("max_characters"), DEFAULT_MAX_CHARACTERS),
            characters_reserved_per_url=_positive(data.get("characters_reserved_per_url"), DEFAULT_URL_WEIGHT),
            max_media_attachments=_positive(data.get("max_media_attachments"), DEFAULT_MAX_MEDIA),
            description_limit=_positive(data.get("description_limit"), DEFAULT_DESCRIPTION_LIMIT),
            image_size_limit=_positive(data.get("image_size_limit"), DEFAULT_IMAGE_SIZE_LIMIT),
            image_matrix_limit=_positive(data.get("image_matrix_limit"), DEFAULT_IMAGE_MATRIX_LIMIT),
        )


# ---------------------------------------------------------------------------- counting
#
# How a Mastodon server counts a status (app/validators/status_length_validator.rb, pinned by its
# spec; see docs/fidelity.md): the content warning and the "countable" text are joined and their
# extended grapheme clusters counted. Countable text is the text with every URL the extractor finds
# (http and https only, standing as its own token) replaced by ``characters_reserved_per_url``
# characters, and every mention ``@user@domain`` replaced by ``@user``.

MAX_MENTION_DOMAIN = 253
"""A mention whose domain is longer than this is not a mention (Mastodon's ``Extractor::MAX_DOMAIN_LENGTH``):
it is counted in full."""

_MENTION = re.compile(r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@(\w+(?:[.-]+\w+)*))?", re.IGNORECASE)
"""Mastodon's ``Account::MENTION_RE``: ``@user`` or ``@user@domain``, not after ``=``, ``/`` or a word character."""
_MENTION_END = re.compile("[@\uff20\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257"
                          "\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://")
"""What may not follow a mention (twitter-text's ``end_mention_match``: another at sign, a Latin accent, ``://``)."""



def grapheme_count(text: str) -> int:
    """Extended grapheme clusters in ``text`` (Ruby's ``each_grapheme_cluster.size``)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return grapheme.length(text)


def url_spans(text: str) -> list[tuple[int, int]]:
    """Where the URLs Mastodon weighs are in ``text``: ``http(s)://`` URLs its extractor finds.

    ``example.com`` without a scheme, ``ftp:``, ``mailto:``, ``user:pass@`` URLs, IP-address hosts,
    a URL glued to the word before it and a URL longer than the extractor's maximum are text.
    """
    return twitter_text.scheme_url_spans(text)


def mention_spans(text: str) -> list[tuple[int, int, int]]:
    """``(start, end, end of the local part)`` of every mention Mastodon's extractor finds."""
    if "@" not in text:
        return []
    found = []
    for match in _MENTION.finditer(text):
        if _MENTION_END.match(text, match.end()):
            continue
        domain = match.group(2)
        if domain is not None and len(domain) > MAX_MENTION_DOMAIN:
            continue
        found.append((match.start(), match.end(), match.end(1)))
    return found


def countable_text(text: str, limits: MastodonLimits = MastodonLimits()) -> str:
    """``text`` as the server counts it: each URL as ``characters_reserved_per_url`` ``x``, each
    ``@user@domain`` as ``@user``. A mention overlapping a URL (``https://host/@name``) is the URL's."""
    entities = [(start, end, "x" * limits.characters_reserved_per_url) for start, end in url_spans(text)]
    entities += [(start, end, text[start:local_end]) for start, end, local_end in mention_spans(text)]
    if not entities:
        return text
    out, position = [], 0
    for start, end, replacement in sorted(entities):
        if start < position:  # overlaps an earlier entity: Extractor.remove_overlapping_entities drops it
            continue
        out += [text[position:start], replacement]
        position = end
    out.append(text[position:])
    return "".join(out)


def status_length(text: str, spoiler_text: str = "", limits: MastodonLimits = MastodonLimits()) -> int:
    """The length a Mastodon server gives a status: graphemes of the content warning joined to the
    countable text (:func:`countable_text`)."""
    return grapheme_count(spoiler_text + countable_text(text, limits))


def fits(text: str, spoiler_text: str = "", limits: MastodonLimits = MastodonLimits()) -> bool:
    """Whether a status with ``text`` and content warning ``spoiler_text`` is within ``limits.max_characters``."""
    return status_length(text, spoiler_text, limits) <= limits.max_characters
