"""The limits of story files and of the dates the bot handles, in one place for every layer.

Each limit is far above any real story and far below what would hurt the machine; the loader
checks them before the expensive work (the file size before reading, a field's size before
rendering), and the CLI and the dashboard refuse times outside the supported range.
docs/reliability.md ("Limits of story files") lists them for operators.
"""

from __future__ import annotations

import datetime as dt
import re

MAX_FILE_BYTES: dict[str, int] = {
    "markdown": 1024 * 1024,
    "yaml": 20 * 1024 * 1024,
    "json": 100 * 1024 * 1024,
    "jsonl": 100 * 1024 * 1024,
    "csv": 100 * 1024 * 1024,
}
"""The largest story file of each format, in bytes (YAML is parsed in pure Python, so it gets less)."""

MAX_FIELD_CHARS: dict[str, int] = {
    "id": 100,
    "date": 64,
    "timezone": 64,
    "headline": 1_000,
    "summary": 20_000,
    "body": 100_000,
    "category": 200,
    "source": 1_000,
    "url": 2_000,
    "image": 2_000,
    "images": 20_000,
    "followup_images": 20_000,
    "one_year_later": 20_000,
    "followup_after": 64,
    "platforms": 200,
    "tags": 2_000,
    "lang": 64,
    "replies": 64,
}
"""The longest value of each field, in characters (a list field counts all its items together)."""

MAX_NESTING = 32
"""The deepest nesting of lists and mappings in a story file (a story itself needs three levels)."""

MAX_YAML_ALIAS_VALUES = 1_000_000
"""The most values all the YAML aliases (``*name``, ``<<: *defaults``) of one file may stand for,
each counted as often as it is used (defaults merged into 100,000 stories fit)."""

MAX_YAML_NODES_PER_STORY = 10_000
"""The most values one YAML story may hold once its aliases are expanded (a real story holds tens)."""

MAX_FOLLOWUP_AFTER = dt.timedelta(days=30)
"""The longest delay between a story's post and its follow-up (``followup_after``,
``ONEYEARAGO_FOLLOWUP_DELAY``): the one-year-later reply comes hours or days after the post, not months."""

STORY_DATE_MIN = dt.date(1900, 1, 1)
STORY_DATE_MAX = dt.date(2999, 12, 31)
"""The dates a story may have (its anniversaries, up to ONEYEARAGO_YEARS=100 later, stay in range)."""

TIME_MIN = dt.date(1900, 1, 1)
TIME_MAX = dt.date(3199, 12, 31)
"""The days the clock and the time options (``run --now``, ``agenda --from/--to``, the calendar's
``?start``) may name: every story date and every anniversary, with room to spare."""

# C0 controls other than tab and newline, DEL, C1 controls, the bidirectional embedding,
# override and isolate characters (which reorder what a reader sees), and lone surrogates.
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff\ufffe\uffff]")
"""Characters a story may not contain: C0/C1 controls other than tab and newline, bidi controls,
U+FEFF, U+FFFE, U+FFFF (X refuses a post that holds one; a byte order mark opening a file is fine),
and lone surrogates (U+D800 to U+DFFF: a JSON file may write ``\\ud800``, which is no character and
cannot be stored, sent or shown as UTF-8)."""


_CLEAN_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character of :data:`CONTROL_RE` (plain ASCII is checked at C speed)."""
    if text.isascii():
        return bool(text.encode("ascii").translate(None, _CLEAN_ASCII))
    return CONTROL_RE.search(text) is not None


def describe_char(char: str) -> str:
    """A control character as it is written in an error message: ``U+001B``; a lone surrogate says so."""
    code = ord(char)
    return f"U+{code:04X} (a lone surrogate)" if 0xD800 <= code <= 0xDFFF else f"U+{code:04X}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written out visibly (``\\x1b``, ``\\u202e``).

    Tab and newline are kept. What is shown on a terminal goes through this, so no story, id or
    file name can move the cursor, change colours or reorder the text around it.
    """
    if not CONTROL_RE.search(text):
        return text
    return CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)


def date_in_range(day: dt.date, low: dt.date = TIME_MIN, high: dt.date = TIME_MAX) -> bool:
    return low <= day <= high


def time_range_text() -> str:
    return f"{TIME_MIN.isoformat()} to {TIME_MAX.isoformat()}"


def story_date_range_text() -> str:
    return f"{STORY_DATE_MIN.isoformat()} to {STORY_DATE_MAX.isoformat()}"
