"""Read story files (YAML, JSON, JSON Lines, CSV, Markdown with front matter) into Stories.

Loading is all-or-nothing: every problem in every file is collected and raised together as a
:class:`bot.errors.StoryError`, each located as ``FILE:LINE: id: message`` with a hint.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import difflib
import gc
import io
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from bot.errors import Problem, StoryError
from posts.anniversary import parse_duration
from posts.media import Image, ImageError, MediaLoader, MediaPolicy, is_url, shown
from posts.story import FIELDS, PLATFORMS, Story, derive_id

EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".csv": "csv", ".md": "markdown", ".markdown": "markdown"}
"""File endings the loader reads, and the format each one means."""

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SPACE_RE = re.compile(r"\s")
_LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_DATE_HINT = "write YYYY-MM-DD, or an ISO 8601 date-time such as 2025-01-12T14:30:00 or 2025-01-12T14:30:00+01:00"

Record = tuple[str, int, Any]
"""(file, line, raw value) for one story as read from a file, before validation."""


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that keeps dates as text (the loader parses them) and records line numbers."""


_LineLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _is_empty_document(node: yaml.Node) -> bool:
    """An empty YAML document (a stray or trailing ``---``, only comments, or ``~``)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _compose_records(text: str, file: str, problems: list[Problem], *, first_line: int = 1) -> list[Record]:
    """The stories in YAML ``text``; ``first_line`` is the file line the text starts on."""
    records: list[Record] = []
    loader = _LineLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty_document(node):
                continue
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for item in items:
                records.append((file, item.start_mark.line + first_line,
                                loader.construct_object(item, deep=True)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = (mark.line if mark is not None else 0) + first_line
        message = f"YAML syntax error: {getattr(exc, 'problem', None) or exc}"
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line + first_line != line:
            # e.g. an unclosed quote is only noticed at the end of the file: say where it began
            message += f" ({context} on line {context_mark.line + first_line})"
        problems.append(Problem(file, line, "", message,
                                "fix the YAML syntax at that line (indentation, quotes, colons)"))
    finally:
        loader.dispose()
    return records


def _read_yaml(text: str, file: str, problems: list[Problem]) -> list[Record]:
    return _compose_records(text, file, problems)


def _read_json(text: str, file: str, problems: list[Problem]) -> list[Record]:
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        problems.append(Problem(file, _line_at(text, pos), "", "a JSON story file must hold an array of stories",
                                "wrap the stories in [ ... ], or use .jsonl for one story per line"))
        return []
    records: list[Record] = []
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return records
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problems.append(Problem(file, exc.lineno, "", f"JSON syntax error: {exc.msg}",
                                    "fix the JSON at that line (commas, quotes, brackets)"))
            return records
        records.append((file, _line_at(text, pos), value))
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            rest = _skip_ws(text, pos + 1)
            if rest < len(text):
                problems.append(Problem(file, _line_at(text, rest), "", "JSON syntax error: text after the "
                                        "closing ]", "a JSON story file holds one array; remove what follows it"))
            return records
        problems.append(Problem(file, _line_at(text, pos), "", "JSON syntax error: expected ',' or ']'",
                                "separate stories with commas and close the array"))
        return records


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n\ufeff":
        pos += 1
    return pos


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _read_jsonl(text: str, file: str, problems: list[Problem]) -> list[Record]:
    records: list[Record] = []
    # Lines end at \n only: str.splitlines() would also split at U+2028, U+0085, \x0c ...,
    # which JSON allows unescaped inside strings.
    for number, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((file, number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(file, number, "", f"JSON syntax error: {exc.msg}",
                                    "each line must be one complete JSON object"))
    return records


def _read_csv(text: str, file: str, problems: list[Problem]) -> list[Record]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    records: list[Record] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            # ``start`` is the line the row began on; blank lines are skipped but still counted.
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # a blank line, or a row of empty cells (",,,," from a spreadsheet)
            if header is None:
                header = [name.strip() for name in row]
                continue
            cleaned = {k: v for k, v in zip(header, row, strict=False) if v != ""}
            if len(row) > len(header):
                cleaned["__extra_cells__"] = row[len(header):]
            records.append((file, line, cleaned))
    except csv.Error as exc:
        problems.append(Problem(file, reader.line_num, "", f"CSV error: {exc}", "check the quoting on that row"))
    return records


def _read_markdown(text: str, file: str, problems: list[Problem]) -> list[Record]:
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        problems.append(Problem(file, 1, "", "a Markdown story must start with YAML front matter between --- lines",
                                "put ---, the fields (date, headline, ...), then --- before the body"))
        return []
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() in ("---", "...")), None)
    if end is None:
        problems.append(Problem(file, 1, "", "the front matter is not closed by a --- line",
                                "add a line with --- after the last field"))
        return []
    front = "".join(lines[1:end])
    before = len(problems)
    records = _compose_records(front, file, problems, first_line=2)
    if len(problems) > before:
        return []
    if not records:
        records = [(file, 1, {})]  # empty front matter: validation reports the missing fields
    if len(records) != 1 or not isinstance(records[0][2], dict):
        problems.append(Problem(file, 2, "", "the front matter must be one mapping of fields",
                                "write one field per line: name: value"))
        return []
    data = dict(records[0][2])
    body = "".join(lines[end + 1:]).strip("\n")
    if body.strip():
        if "body" in data:
            problems.append(Problem(file, 1, str(data.get("id", "")), "body is given twice: in the front matter "
                                    "and after it", "keep the body in one place: the Markdown after the front matter"))
        data["body"] = body
    return [(file, 1, data)]


READERS: dict[str, Callable[[str, str, list[Problem]], list[Record]]] = {
    "yaml": _read_yaml, "json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv, "markdown": _read_markdown,
}


def story_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand files and directories into the story files to read, in a stable order."""
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()

    def add(found: Path) -> None:
        key = found.resolve()
        if key not in seen:  # a file named twice, or also inside a folder given, is read once
            seen.add(key)
            files.append(found)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                problems.append(Problem(str(path), 0, "", "the folder holds no story files",
                                        f"story files end in {', '.join(sorted(EXTENSIONS))}"))
            for found_path in found:
                add(found_path)
        elif path.is_file():
            if path.suffix.lower() not in EXTENSIONS:
                problems.append(Problem(str(path), 0, "", f"unknown story file type {path.suffix or '(none)'!r}",
                                        f"rename it to end in one of {', '.join(sorted(EXTENSIONS))}"))
            else:
                add(path)
        else:
            problems.append(Problem(str(path), 0, "", "no such file or folder", "check the path"))
    return files, problems


def read_records(files: Iterable[Path], problems: list[Problem]) -> Iterator[Record]:
    """Yield the raw story records of each file, adding syntax problems to ``problems``."""
    for path in files:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 0, "", f"cannot read the file: {exc}",
                                    "story files must be readable UTF-8 text"))
            continue
        yield from READERS[EXTENSIONS[path.suffix.lower()]](text, str(path), problems)


@contextlib.contextmanager
def gc_paused() -> Generator[None, None, None]:
    """Hold the cyclic garbage collector off for a bulk load.

    A load builds hundreds of thousands of small objects that all live until it ends and hold no
    cycles, so every collection pass the allocations trigger walks them for nothing (about a sixth of
    a 100,000-story load). Reference counting still frees everything; the collector resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_stories(
    paths: Iterable[str | Path], *, progress: Callable[[int], None] | None = None,
    media: MediaPolicy | None = None,
) -> list[Story]:
    """Load and validate every story in ``paths`` (files or folders).

    ``media`` says where images may come from (default: each story file's folder, public URLs).

    Raises:
        StoryError: with every problem found, when any story is invalid.
    """
    with gc_paused():
        return _load_stories(paths, progress, MediaLoader(media))


def _load_stories(paths: Iterable[str | Path], progress: Callable[[int], None] | None,
                  media: MediaLoader) -> list[Story]:
    files, problems = story_files(paths)
    stories: list[Story] = []
    first_seen: dict[str, str] = {}
    bases: dict[str, Path] = {}
    for count, (file, line, raw) in enumerate(read_records(files, problems), start=1):
        base = bases.get(file)
        if base is None:
            base = bases[file] = Path(file).parent
        story = validate_record(raw, file, line, problems, base=base, media=media)
        if story is not None:
            if story.id in first_seen:
                problems.append(Problem(file, line, story.id, f"the id {story.id!r} is already used at "
                                        f"{first_seen[story.id]}", "give each story its own id"))
            else:
                first_seen[story.id] = f"{file}:{line}"
                stories.append(story)
        if progress is not None and count % 1000 == 0:
            progress(count)
    if problems:
        raise StoryError(problems)
    return stories


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, list | dict):
        return None
    return str(value).strip() if not isinstance(value, str) else value.strip()


def _list(value: Any) -> list[str] | None:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    return None


def _parse_date(value: Any) -> dt.date | dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", text):
            return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return None


def _check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:  # e.g. "http://[::1" (Invalid IPv6 URL)
        return f"cannot be parsed ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if "." not in host:
        return "has no valid host name"
    if _SPACE_RE.search(value):
        return "contains white space (percent-encode it as %20)"
    return None


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


_ZONES: list[str] | None = None


def validate_record(
    raw: Any, file: str, line: int, problems: list[Problem], *, base: Path | None = None,
    media: MediaLoader | None = None,
) -> Story | None:
    """Validate one raw record into a Story, adding every problem found to ``problems``.

    An ``image`` is read and prepared through ``media`` (see :mod:`posts.media`).
    """
    global _ZONES
    if not isinstance(raw, dict):
        problems.append(Problem(file, line, "", f"a story must be a mapping of fields, not {type(raw).__name__}",
                                "write each story as name: value fields"))
        return None
    before = len(problems)
    id_text = _text(raw.get("id"))
    sid = id_text or ""

    def bad(message: str, hint: str = "") -> None:
        problems.append(Problem(file, line, sid, message, hint))

    if id_text is None:
        bad(f"id must be text, not {type(raw.get('id')).__name__}", "write id as a plain string, or leave it out")

    if "__extra_cells__" in raw:
        bad("this row has more cells than the header has columns", "quote cells that contain commas")
    for key in raw:
        if key == "__extra_cells__":
            continue
        if key not in FIELDS:
            suggestion = _suggest(str(key), FIELDS)
            bad(f"unknown field {key!r}", suggestion or f"known fields: {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    not_text: set[str] = set()
    for name in ("headline", "summary", "body", "category", "source", "url", "image", "one_year_later",
                 "timezone", "lang"):
        text = _text(raw.get(name))
        if text is None:
            bad(f"{name} must be text, not {type(raw.get(name)).__name__}", f"write {name} as a plain string")
            not_text.add(name)
            text = ""
        values[name] = text
    if sid and not _ID_RE.fullmatch(sid):
        bad(f"id {sid!r} is not valid", "use letters, digits, '.', '_' or '-' (at most 100, no spaces)")
    if not values["headline"] and "headline" not in not_text:  # a non-text headline is reported once
        bad("headline is required", "add a headline: the one-line title of the story")
    date = None
    if "date" not in raw or raw.get("date") in (None, ""):
        bad("date is required", _DATE_HINT)
    else:
        date = _parse_date(raw["date"])
        if date is None:
            bad(f"date {raw['date']!r} is not a valid date", _DATE_HINT)
    if values["timezone"]:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            if _ZONES is None:
                _ZONES = sorted(available_timezones())
            bad(f"unknown time zone {values['timezone']!r}",
                _suggest(values["timezone"], _ZONES) or "use an IANA name such as Europe/London or America/New_York")
    if values["url"]:
        problem = _check_url(values["url"])
        if problem:
            bad(f"url {values['url']!r} {problem}", "give the full address, e.g. https://example.com/story")
    if values["lang"] and not _LANG_RE.fullmatch(values["lang"]):
        bad(f"lang {values['lang']!r} is not a language tag", "use a BCP 47 tag such as en, de or pt-BR")
    delay = None
    if raw.get("followup_after") not in (None, ""):
        try:
            delay = parse_duration(str(raw["followup_after"]))
            if delay <= dt.timedelta(0):
                raise ValueError
        except ValueError:
            bad(f"followup_after {raw['followup_after']!r} is not a delay", "write it like 90m, 6h, 1h30m or 1d")
            delay = None
    platforms = _list(raw.get("platforms"))
    if platforms is None:
        bad("platforms must be a list", "write platforms: [x, bluesky] or platforms: x,bluesky")
        platforms = []
    platforms = [p.lower() for p in platforms]
    for name in platforms:
        if name not in PLATFORMS:
            bad(f"unknown platform {name!r}", _suggest(name, PLATFORMS) or f"known: {', '.join(PLATFORMS)}")
    tags = _list(raw.get("tags"))
    if tags is None:
        bad("tags must be a list of words", "write tags: [ai, research]")
        tags = []
    tags = [t.lstrip("#＃").strip() for t in tags]
    for tag in tags:
        if not tag or any(ch.isspace() for ch in tag):
            bad(f"tag {tag!r} is not one word", "tags are single words without spaces")
    image: Image | None = None
    if values["image"]:
        problem = _check_url(values["image"]) if is_url(values["image"]) else None
        if problem:
            bad(f"image {shown(values['image'])} {problem}", "give an image URL or a path to a local file")
        elif not is_url(values["image"]) or len(problems) == before:  # fetch only for an otherwise valid story
            try:
                image = (media or MediaLoader()).load(values["image"], base)
            except ImageError as exc:
                bad(exc.message, exc.hint)
    if len(problems) > before or date is None:
        return None
    return Story(
        id=sid or derive_id(date, values["headline"]),
        date=date,
        headline=values["headline"],
        timezone=values["timezone"] or None,
        summary=values["summary"],
        body=values["body"],
        category=values["category"],
        source=values["source"],
        url=values["url"],
        image=values["image"],
        one_year_later=values["one_year_later"],
        followup_after=delay,
        platforms=tuple(dict.fromkeys(platforms)),
        tags=tuple(dict.fromkeys(tags)),
        lang=values["lang"],
        origin=f"{file}:{line}",
        image_sha256=image.sha256 if image is not None else "",
        prepared_image=image,
    )


__all__ = ["EXTENSIONS", "PLATFORMS", "gc_paused", "load_stories", "read_records", "story_files", "validate_record"]
