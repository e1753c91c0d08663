"""Log lines: human (the default) or JSON, one object per line (``ONEYEARAGO_LOG_FORMAT=json``).

A JSON line carries ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, and the
``event``, ``delivery``, ``platform`` and ``story`` of a record that has them (the engine logs each
event it emits with them, through ``extra=``), and ``exception`` with a traceback. The whole line is
masked after it is serialised, so a secret is caught in any field, JSON-escaped forms included.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from posts import limits

HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"

FIELDS = ("event", "delivery", "platform", "story")
"""Attributes a log record may carry (``extra={...}``) that a JSON line includes."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; ``mask`` hides the secrets in the finished line."""

    def __init__(self, mask: Callable[[str], str] = lambda text: text):
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                data[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        text = json.dumps(data, ensure_ascii=False, default=str)
        # json.dumps escapes C0 controls; DEL, C1 and bidi controls get \uXXXX too (a log goes to terminals)
        return self.mask(limits.CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def formatter(log_format: str, mask: Callable[[str], str]) -> logging.Formatter:
    """The formatter of ``ONEYEARAGO_LOG_FORMAT``: ``human`` or ``json``."""
    return JsonFormatter(mask) if log_format == "json" else logging.Formatter(HUMAN)
