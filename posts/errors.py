"""Every error the project raises, in one shallow tree.

::

    BotError
    ├── ConfigError            a setting is missing or wrong
    ├── StoryError             story files that cannot be loaded (carries every problem)
    ├── TemplateError          an operator template that does not parse or render
    ├── StoreError             the database cannot be used as asked
    ├── NotFound               no story or delivery by the id given
    └── AdapterError           a platform call went wrong (the engine acts on the subclass)
        ├── RateLimited        wait until ``retry_at``; nothing may be sent before then
        ├── AuthFailed         credentials refused: pause the platform
        ├── Rejected           refused for good, with the platform's reason
        │   └── Duplicate      refused as a duplicate: it may already be posted
        ├── Transient          5xx, connection refused: safe to try again later
        │   └── MediaGone      the platform dropped media uploaded for the post: upload again
        └── OutcomeUnknown     the request may have reached the platform
"""

from __future__ import annotations

import dataclasses
import datetime as dt


class BotError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or has a value the bot cannot use."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem found in a story file, located as ``FILE:LINE``."""

    file: str
    line: int
    story_id: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.story_id or '-'}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class StoryError(BotError):
    """Story files that cannot be loaded; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the story files")


class TemplateError(BotError):
    """An operator template that does not parse or fails to render."""


class StoreError(BotError):
    """The database cannot be used as asked."""


class NotFound(BotError):
    """No story or delivery by the id the operator gave (the dashboard answers 404)."""


class AdapterError(BotError):
    """A platform call failed; the subclass says what the engine should do."""

    requests: int = 1
    """The requests a read sent before it failed (several when a later page failed): what the conversation
    sweep counts against its budget. Reads that send more than one set it."""

    def __init__(self, platform: str, message: str):
        self.platform = platform
        self.reason = message
        super().__init__(f"{platform}: {message}")


class RateLimited(AdapterError):
    """The platform asked us to wait; nothing may be sent to it before ``retry_at`` (UTC)."""

    def __init__(self, platform: str, message: str, retry_at: dt.datetime):
        super().__init__(platform, message)
        self.retry_at = retry_at


class AuthFailed(AdapterError):
    """The platform refused our credentials."""


class Rejected(AdapterError):
    """The platform refused this post for good."""


class Duplicate(Rejected):
    """The platform refused the post as a duplicate: an earlier attempt may have landed."""


class Transient(AdapterError):
    """A passing failure (5xx, connection refused) where the post certainly did not land."""


class MediaGone(Transient):
    """The platform no longer has media uploaded earlier for this post (expired or removed).

    Nothing was posted: the engine forgets the delivery's recorded uploads and uploads its images
    again before the next attempt.
    """


class OutcomeUnknown(AdapterError):
    """The request may have reached the platform (a timeout after sending)."""
