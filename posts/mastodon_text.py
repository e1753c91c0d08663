"""Mastodon's status rules: the limits an instance announces, and (below) how it counts a status.

Pure: no network and no files. The adapter reads ``/api/v2/instance`` and hands the answer to
:meth:`MastodonLimits.from_instance`; rendering counts against the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_WEIGHT = 23
DEFAULT_MAX_MEDIA = 4


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

    The defaults are a stock server's (Mastodon 4.x): 500 characters, 23 per URL, 4 attachments.
    """

    max_characters: int = DEFAULT_MAX_CHARACTERS
    characters_reserved_per_url: int = DEFAULT_URL_WEIGHT
    max_media_attachments: int = DEFAULT_MAX_MEDIA
    description_limit: int | None = None
    """Alt text limit in characters; ``None`` when the server does not say (before Mastodon 4.4)."""

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
        description = media.get("description_limit")
        return cls(
            max_characters=_positive(statuses.get("max_characters"), DEFAULT_MAX_CHARACTERS),
            characters_reserved_per_url=_positive(statuses.get("characters_reserved_per_url"),
                                                  DEFAULT_URL_WEIGHT),
            max_media_attachments=_positive(statuses.get("max_media_attachments"), DEFAULT_MAX_MEDIA),
            description_limit=_positive(description, 0) or None,
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
            description_limit=_positive(data.get("description_limit"), 0) or None,
        )
