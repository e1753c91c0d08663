"""Read story files (YAML, JSON, JSON Lines, CSV, Markdown with front matter) into Stories.

Loading is all-or-nothing: every problem in every file is collected and raised together as a
:class:`posts.errors.StoryError`, each located as ``FILE:LINE: id: message`` with a hint.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import functools
import io
import ipaddress
import json
import logging
import os
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from bot.sources.images import MediaLoader, MediaPolicy, is_url
from posts import limits, replies
from posts.bluesky_text import LINK_TYPE, MAX_URI_CHARS, detect_facets
from posts.durations import parse_duration
from posts.errors import Problem, StoryError
from posts.gcpause import gc_paused
from posts.limits import CONTROL_RE, MAX_FIELD_CHARS, describe_char, has_control
from posts.media import (
    MAX_PICTURES,
    Image,
    ImageError,
    alt_length,
    prepare_versions,
    shown,
)
from posts.story import FILE_FIELDS, PLATFORM_NAMES, PLATFORMS, Story, StoryImage, derive_id
from posts.twitter_text import is_known_tld, url_spans

log = logging.getLogger(__name__)

EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".csv": "csv", ".md": "markdown", ".markdown": "markdown"}
"""File endings the loader reads, and the format each one means."""

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SPACE_RE = re.compile(r"\s")
_LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_DATE_HINT = "write YYYY-MM-DD, or an ISO 8601 date-time such as 2025-01-12T14:30:00 or 2025-01-12T14:30:00+01:00"

Record = tuple[str, int, Any]
"""(file, line, raw value) for one story as read from a file, before validation."""

_CONTROL_HINT = ("story text may hold tabs and line breaks but no other control characters and no "
                 "bidirectional override or isolate characters (U+202A-U+202E, U+2066-U+2069), nor U+FEFF, "
                 "U+FFFE or U+FFFF (X refuses posts holding them), nor lone surrogates (U+D800-U+DFFF, as a "
                 "JSON \\ud800 escape writes); remove it")

_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"
"""Bytes that are never (part of) a control character; whatever else a file holds is searched."""

_QUOTE = reprlib.Repr()
_QUOTE.maxstring = _QUOTE.maxother = 60
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxdict = 2, 4, 4


def _q(value: Any) -> str:
    """``value`` quoted for a message, never longer than about 60 characters whatever it holds."""
    return _QUOTE.repr(value)


def _clip(text: str, width: int = 200) -> str:
    """A message from elsewhere (a parser, the OS) cut to ``width`` characters."""
    return text if len(text) <= width else text[: width - 1] + "…"


class _Duplicates:
    """The key under which a record lists the fields it gives twice, as ``[(name, line or None)]``."""

    def __repr__(self) -> str:
        return "<duplicate fields>"


DUPLICATES = _Duplicates()


_ALIAS_HINT = "write the values out instead of repeating *aliases"


class _Refused(yaml.YAMLError):
    """A YAML file the loader will not read further, with where and why."""

    def __init__(self, mark: yaml.Mark | None, message: str, hint: str):
        super().__init__(message)
        self.problem_mark = mark
        self.message = message
        self.hint = hint


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None

_Parser: type = _CParser or type("_PurePythonParser", (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser),
                                 {})
"""libyaml's scanner and parser when PyYAML has them (many times faster than PyYAML's own)."""


class _LineLoader(yaml.composer.Composer, _Parser, yaml.constructor.SafeConstructor,  # type: ignore[misc]
                  yaml.resolver.Resolver):
    """A safe loader that keeps dates as text (the loader parses them), records line numbers, and
    bounds what a hostile file can cost: nesting depth, alias count, and duplicate keys.

    The events come from libyaml when it is installed; the nodes are composed here, in Python,
    so that the bounds hold whichever parser runs.
    """

    def __init__(self, stream: str):
        if _Parser is _CParser:
            _Parser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._alias_values = 0
        self._sizes: dict[int, int] = {}
        self.first_line = 1

    def compose_document(self) -> yaml.Node:
        self._sizes = {}  # keyed by node identity: only within one document, whose nodes stay alive
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _Refused(event.start_mark, f"the YAML alias *{_clip(str(event.anchor), 40)} is used inside "
                               "the value it names", "an alias may only repeat a value that is complete")
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._alias_values += self.expanded_size(target)
                if self._alias_values > limits.MAX_YAML_ALIAS_VALUES:
                    raise _Refused(event.start_mark, f"the YAML aliases of this file stand for more than "
                                   f"{limits.MAX_YAML_ALIAS_VALUES:,} values", _ALIAS_HINT)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            if self._depth > limits.MAX_NESTING:
                raise _Refused(event.start_mark, f"nested deeper than {limits.MAX_NESTING} levels",
                               "a story is a mapping of plain fields; remove the nested lists or mappings")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor)  # type: ignore[arg-type]

    def expanded_size(self, root: yaml.Node) -> int:
        """How many values ``root`` stands for once every alias in it is expanded.

        Aliases share nodes, so a few hundred bytes can stand for billions of values (an "alias
        bomb"); each shared node is counted once per document, so this costs time linear in the file.
        """
        sizes = self._sizes
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if key in sizes:
                continue
            if isinstance(node, yaml.ScalarNode):
                sizes[key] = 1
                continue
            children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                        else node.value)
            if done:
                sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            else:
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in sizes)
        return sizes[id(root)]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: set[tuple[str, str]] = set()
        twice: list[tuple[str, int | None]] = []
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    twice.append((key_node.value, key_node.start_mark.line + self.first_line))
                seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        if twice:
            mapping[DUPLICATES] = twice
        return mapping


_LineLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}


def _is_empty_document(node: yaml.Node) -> bool:
    """An empty YAML document (a stray or trailing ``---``, only comments, or ``~``)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _compose_records(text: str, file: str, problems: list[Problem], *, first_line: int = 1) -> list[Record]:
    """The stories in YAML ``text``; ``first_line`` is the file line the text starts on."""
    records: list[Record] = []
    loader = None
    try:
        loader = _LineLoader(text)
        loader.first_line = first_line
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty_document(node):
                continue
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for item in items:
                line = item.start_mark.line + first_line
                if loader.expanded_size(item) > limits.MAX_YAML_NODES_PER_STORY:
                    problems.append(Problem(file, line, "", f"this story holds more than "
                                            f"{limits.MAX_YAML_NODES_PER_STORY:,} values once its YAML aliases are "
                                            "expanded", _ALIAS_HINT))
                    continue
                records.append((file, line, loader.construct_object(item, deep=True)))
    except _Refused as exc:
        mark = exc.problem_mark
        problems.append(Problem(file, (mark.line if mark is not None else 0) + first_line, "", exc.message,
                                exc.hint))
    except yaml.reader.ReaderError as exc:
        problems.append(Problem(file, _line_at(text, exc.position) + first_line - 1, "",
                                f"the character {describe_char(chr(exc.character)) if isinstance(exc.character, int) else '?'} "
                                "is not allowed in YAML", "remove it, or use JSON Lines or CSV for such text"))
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        problems.append(Problem(file, first_line, "", f"a value cannot be read: {_clip(str(exc))}",
                                "quote long numbers to make them text"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = (mark.line if mark is not None else 0) + first_line
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own bound, 1,000 levels
            problems.append(Problem(file, line, "", f"nested deeper than {limits.MAX_NESTING} levels", _FLAT_HINT))
            return records
        message = f"YAML syntax error: {_clip(str(getattr(exc, 'problem', None) or exc))}"
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line + first_line != line:
            # e.g. an unclosed quote is only noticed at the end of the file: say where it began
            message += f" ({_clip(str(context))} on line {context_mark.line + first_line})"
        problems.append(Problem(file, line, "", message,
                                "fix the YAML syntax at that line (indentation, quotes, colons)"))
    finally:
        if loader is not None:
            loader.dispose()
    return records


def _read_yaml(text: str, file: str, problems: list[Problem]) -> list[Record]:
    return _compose_records(text, file, problems)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    """A JSON object as a dict that remembers the keys it was given twice (the last one wins)."""
    mapping: dict[Any, Any] = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        twice = [(key, None) for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]
        mapping[DUPLICATES] = twice
    return mapping


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)
_TOO_DEEP = f"nested too deeply (a story file may nest lists and mappings {limits.MAX_NESTING} levels deep)"
_FLAT_HINT = "a story is a mapping of plain fields; remove the nested lists or mappings"


def _read_json(text: str, file: str, problems: list[Problem]) -> list[Record]:
    decoder = _DECODER
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
        except RecursionError:
            problems.append(Problem(file, _line_at(text, pos), "", _TOO_DEEP, _FLAT_HINT))
            return records
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            problems.append(Problem(file, _line_at(text, pos), "", f"a value cannot be read: {_clip(str(exc))}",
                                    "quote long numbers to make them text"))
            return records
        if _brackets(text, pos, end) > limits.MAX_NESTING and _too_deep(value, 2):
            problems.append(Problem(file, _line_at(text, pos), "", f"nested deeper than {limits.MAX_NESTING} levels",
                                    _FLAT_HINT))
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
            value = _DECODER.decode(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(file, number, "", f"JSON syntax error: {exc.msg}",
                                    "each line must be one complete JSON object"))
            continue
        except RecursionError:
            problems.append(Problem(file, number, "", _TOO_DEEP, _FLAT_HINT))
            continue
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            problems.append(Problem(file, number, "", f"a value cannot be read: {_clip(str(exc))}",
                                    "quote long numbers to make them text"))
            continue
        if _brackets(line, 0, len(line)) > limits.MAX_NESTING and _too_deep(value):
            problems.append(Problem(file, number, "", f"nested deeper than {limits.MAX_NESTING} levels", _FLAT_HINT))
            continue
        records.append((file, number, value))
    return records


def _brackets(text: str, start: int, end: int) -> int:
    """How many lists and objects could open in ``text[start:end]`` (a cheap bound on its depth)."""
    return text.count("[", start, end) + text.count("{", start, end)


def _too_deep(value: Any, depth: int = 1) -> bool:
    """Whether a decoded JSON value nests lists and objects deeper than the limit (the file's array
    is level 1; a story is level 1 in JSON Lines)."""
    if depth > limits.MAX_NESTING:
        return True
    if type(value) is dict:
        return any(type(v) in (dict, list) and _too_deep(v, depth + 1) for v in value.values())
    if type(value) is list:
        return any(type(v) in (dict, list) and _too_deep(v, depth + 1) for v in value)
    return False


def _read_csv(text: str, file: str, problems: list[Problem]) -> list[Record]:
    # strict: a quote left open is an error, not a cell that swallows every later row
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
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
                twice = sorted({name for name in header if name and header.count(name) > 1})
                if twice:
                    problems.append(Problem(file, line, "", f"the column {_q(twice[0])} is given twice in the header",
                                            "keep one column per field"))
                    return []
                continue
            cleaned: dict[str, Any] = {k: v for k, v in zip(header, row, strict=False) if v != ""}
            if len(row) > len(header):
                cleaned["__extra_cells__"] = row[len(header):]
            records.append((file, line, cleaned))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            problems.append(Problem(file, start, "", "CSV error: a quoted cell is not closed before the end of "
                                    "the file", "close the quote (\") of the cell that starts on this row"))
        else:
            problems.append(Problem(file, reader.line_num, "", f"CSV error: {_clip(str(exc))}",
                                    "check the quoting on that row"))
    return records


def _read_markdown(text: str, file: str, problems: list[Problem]) -> list[Record]:
    # Lines end at \n only (U+2028 and the like are text), and keep their ends.
    lines = text.lstrip("\ufeff").split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    if not lines or lines[0].strip() != "---":
        problems.append(Problem(file, 1, "", "a Markdown story must start with YAML front matter between --- lines",
                                "put ---, the fields (date, headline, ...), then --- before the body"))
        return []
    # Only a line that starts with the marker closes it: an indented --- belongs to a block (|) value.
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.rstrip() in ("---", "...")), None)
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
        kind = EXTENSIONS[path.suffix.lower()]
        limit = limits.MAX_FILE_BYTES[kind]
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                data = handle.read(limit + 1) if size <= limit else b""  # read no more than the limit
            if max(size, len(data)) > limit:
                problems.append(Problem(str(path), 0, "", f"the file is {max(size, len(data)):,} bytes; a {kind} "
                                        f"story file may hold at most {limit:,}", "split it into several files"))
                continue
            text = data.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 0, "", f"cannot read the file: {_clip(str(exc))}",
                                    "story files must be readable UTF-8 text"))
            continue
        if "\r" in text:  # read as text files are: \r\n and a lone \r end a line
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        # Plain ASCII text is checked at C speed; other text by the pattern.
        control = CONTROL_RE.search(text) if data.translate(None, _PRINTABLE_ASCII) else None
        if control is not None:
            problems.append(Problem(str(path), _line_at(text, control.start()), "",
                                    f"the control character {describe_char(control.group())} is not allowed "
                                    "in a story file", _CONTROL_HINT))
            continue
        yield from READERS[kind](text, str(path), problems)


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
    bases: dict[str, tuple[Path, str]] = {}
    for count, (file, line, raw) in enumerate(read_records(files, problems), start=1):
        known = bases.get(file)
        if known is None:
            known = bases[file] = (Path(file).parent, os.path.abspath(file))
        base, absolute = known
        story = validate_record(raw, file, line, problems, base=base, media=media, origin_file=absolute)
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


def file_story_ids(path: str | Path, *, media: MediaPolicy | None = None,
                   validate: Callable[[list[str]], Iterable[str]] = lambda ids: ids) -> tuple[list[str], list[Story]]:
    """The story ids the story file ``path`` holds, in its order, and, validated as :func:`load_stories`
    validates them (pictures read), the stories of those ids ``validate`` picks from them: the others are
    read for their id only, so a picture gone since they were loaded does not matter here.

    Raises:
        StoryError: the file cannot be read, a record has no usable id, an id is used twice, or a picked
            story is invalid.
    """
    files, problems = story_files([path])
    records: list[tuple[str, int, Any, str]] = []
    first_seen: dict[str, str] = {}
    for file, line, raw in read_records(files, problems):
        sid = (_text(raw.get("id")) or "") if isinstance(raw, dict) else ""
        if sid in first_seen:
            problems.append(Problem(file, line, sid, f"the id {sid!r} is already used at {first_seen[sid]}",
                                    "give each story its own id"))
            continue
        if sid:
            first_seen[sid] = f"{file}:{line}"
        records.append((file, line, raw, sid))
    picked = set(validate([sid for *_, sid in records if sid]))
    loader = MediaLoader(media)
    stories: list[Story] = []
    for file, line, raw, sid in records:
        if sid and sid not in picked:
            continue
        story = validate_record(raw, file, line, problems, base=Path(file).parent, media=loader,
                                origin_file=os.path.abspath(file))
        if story is not None:
            stories.append(story)
    if problems:
        raise StoryError(problems)
    return [sid for *_, sid in records], stories


def _size(value: Any) -> int:
    """How many characters a raw value holds (a list or mapping: all its items together)."""
    if type(value) is str:
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2  # never str() a huge integer just to measure it
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value) + len(value)
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items()) + len(value)
    return len(str(value))


def _control_in(value: Any) -> str | None:
    """The first control character in a raw value (its text, list items, mapping keys), or None."""
    if type(value) is str:
        found = CONTROL_RE.search(value)
        return found.group() if found else None
    if isinstance(value, list | tuple):
        return next((c for c in map(_control_in, value) if c is not None), None)
    if isinstance(value, dict):
        return next((c for k, v in value.items() for c in (_control_in(k), _control_in(v)) if c is not None), None)
    return None


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


_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})


def _flag(value: Any) -> bool | None:
    """A yes/no field: a YAML or JSON boolean, or its text (a CSV cell, quoted YAML); None when it is neither."""
    if value is None or type(value) is bool:
        return bool(value)
    if type(value) is str and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
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


def link_problems(url: str, *, length: bool = False) -> list[tuple[str, str]]:
    """What ``load`` says is wrong with ``url`` as a story's ``url`` field: ``(message, hint)`` pairs.

    With ``length``, its length is checked too (``load`` checks every field's length on its own): for
    a link that comes from elsewhere than a story file, such as the archived copy of a broken one.
    """
    limit = MAX_FIELD_CHARS["url"]
    if length and len(url) > limit:
        return [(f"url is {len(url):,} characters long; the most it may be is {limit:,}",
                 "shorten it (docs/reliability.md lists the limits of story files)")]
    if length and (control := CONTROL_RE.search(url)) is not None:
        return [(f"url holds the control character {describe_char(control.group())}", _CONTROL_HINT)]
    leak = _credentials_problem(url)
    if leak:
        return [(f"url {leak}: X would not link it, and the post would publish it",
                 "remove the user:password@ part; a story URL must work without logging in")]
    problem = _check_url(url)
    if problem:
        return [(f"url {_q(url)} {problem}", "give the full address, e.g. https://example.com/story")]
    x_problem = _x_link_problem(url)
    return [(f"url {_q(url)} {x_problem[0]}", x_problem[1])] if x_problem is not None else []


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


def _credentials_problem(value: str) -> str | None:
    """A message (quoting ``value`` without its password) when the URL carries a user name or password."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return None
    redacted = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    return f"{_q(redacted)} has a user name or password in it (shown here as ***)"


@functools.lru_cache(maxsize=4096)
def _links_whole(origin: str) -> bool:
    """Whether twitter-text links all of ``origin`` (a site's root: a queue's stories share a few sites)."""
    return url_spans(origin) == [(0, len(origin))]


def _x_link_problem(value: str) -> tuple[str, str] | None:
    """Why X would not link this URL's host (as twitter-text decides), with a hint; None if it would."""
    parts = urlsplit(value)
    host = (parts.hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "has an IP address as its host, which X shows as plain text, not a link", \
            "use the site's domain name, e.g. https://example.com/story"
    origin = f"{parts.scheme}://{parts.netloc}/"
    if not _links_whole(origin):
        tld = host.rpartition(".")[2]
        if not is_known_tld(tld):
            return f"ends in the top-level domain {_q('.' + tld)}, which X does not know, so the post would " \
                "show it as plain text, not a link", \
                "use the address under a top-level domain X links (.com, .org, a country's ...)"
        return "has a host X does not link as written, so the post would show it as plain text", \
            "write the host plainly, e.g. https://example.com/story (no trailing dot, labels of at most 63 letters)"
    return None


_LINKED_FIELDS = tuple(name for name, size in MAX_FIELD_CHARS.items()
                       if size > MAX_URI_CHARS and name not in ("tags", "images", "followup_images"))
"""The text fields long enough to hold a link longer than Bluesky takes."""


def _longest_link(text: str) -> int:
    """The length of the longest link Bluesky finds in ``text`` (0 if none)."""
    return max((len(f["features"][0]["uri"]) for f in detect_facets(text) if f["features"][0]["$type"] == LINK_TYPE),
               default=0)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _refuse_fields(raw: dict[Any, Any], bad: Callable[..., None]) -> bool:
    """Report each field over its size limit or holding a control character, and each field given
    twice; True when a field was refused. Runs before any other check of the story."""
    refused = False
    limit_of = MAX_FIELD_CHARS.get
    for key, value in raw.items():
        if type(value) is str and len(value) <= limit_of(key, -1):
            continue  # the common case, a known text field of a fitting size: searched below, all at once
        if key is DUPLICATES:
            for name, key_line in value:
                bad(f"the field {_q(name)} is given twice", "keep one of them", at=key_line)
            continue
        control = _control_in(key)
        if control is not None:
            bad(f"a field name holds the control character {describe_char(control)}", _CONTROL_HINT)
            refused = True
            continue
        size, limit = _size(value), limit_of(key)
        if limit is not None and size > limit:
            bad(f"{key} is {size:,} characters long; the most it may be is {limit:,}",
                "shorten it (docs/reliability.md lists the limits of story files)")
            refused = True
            continue
        control = _control_in(value)
        if control is not None:
            bad(f"{key if isinstance(key, str) else 'a field'} holds the control character {describe_char(control)}",
                _CONTROL_HINT)
            refused = True
    if not refused and has_control("\n".join([v for v in raw.values() if type(v) is str])):
        for key, value in raw.items():
            found = CONTROL_RE.search(value) if type(value) is str else None
            if found is not None:
                bad(f"{key} holds the control character {describe_char(found.group())}", _CONTROL_HINT)
                refused = True
    return refused


_ZONES: list[str] | None = None


def validate_record(
    raw: Any, file: str, line: int, problems: list[Problem], *, base: Path | None = None,
    media: MediaLoader | None = None, origin_file: str | None = None,
) -> Story | None:
    """Validate one raw record into a Story, adding every problem found to ``problems``.

    An ``image`` is read and prepared through ``media`` (see :mod:`bot.sources.images`). Problems name
    ``file`` as given; the story's ``origin`` names ``origin_file`` (default ``file``): for a story file,
    its absolute path, so that ``export`` finds the file and its pictures from any working directory.
    """
    global _ZONES
    if not isinstance(raw, dict):
        problems.append(Problem(file, line, "", f"a story must be a mapping of fields, not {type(raw).__name__}",
                                "write each story as name: value fields"))
        return None
    before = len(problems)
    id_text = _text(raw.get("id"))
    sid = id_text or ""
    if len(sid) > MAX_FIELD_CHARS["id"] or CONTROL_RE.search(sid):
        sid = ""  # reported below; never quoted whole at the start of every message

    def bad(message: str, hint: str = "", at: int | None = None) -> None:
        problems.append(Problem(file, line if at is None else at, sid, message, hint))

    # Size and control characters first: nothing below (nor rendering) sees a value that fails them.
    if _refuse_fields(raw, bad):
        return None  # the other checks would only quote or parse what was just refused

    if id_text is None:
        bad(f"id must be text, not {type(raw.get('id')).__name__}", "write id as a plain string, or leave it out")

    if "__extra_cells__" in raw:
        bad("this row has more cells than the header has columns", "quote cells that contain commas")
    for key in raw:
        if key == "__extra_cells__" or key is DUPLICATES:
            continue
        if key not in FILE_FIELDS:
            suggestion = _suggest(str(key), FILE_FIELDS) if len(str(key)) <= 100 else ""
            bad(f"unknown field {_q(key)}", suggestion or f"known fields: {', '.join(FILE_FIELDS)}")
    values: dict[str, Any] = {}
    not_text: set[str] = set()
    for name in ("headline", "summary", "body", "category", "source", "url", "image", "one_year_later",
                 "timezone", "lang", "replies"):
        text = _text(raw.get(name))
        if text is None:
            bad(f"{name} must be text, not {type(raw.get(name)).__name__}", f"write {name} as a plain string")
            not_text.add(name)
            text = ""
        values[name] = text
    if sid and not _ID_RE.fullmatch(sid):
        bad(f"id {_q(sid)} is not valid", "use letters, digits, '.', '_' or '-' (at most 100, no spaces)")
    if not values["headline"] and "headline" not in not_text:  # a non-text headline is reported once
        bad("headline is required", "add a headline: the one-line title of the story")
    date = None
    if "date" not in raw or raw.get("date") in (None, ""):
        bad("date is required", _DATE_HINT)
    else:
        date = _parse_date(raw["date"])
        if date is None:
            bad(f"date {_q(raw['date'])} is not a valid date", _DATE_HINT)
        elif not (limits.STORY_DATE_MIN <= (date.date() if isinstance(date, dt.datetime) else date)
                  <= limits.STORY_DATE_MAX):
            bad(f"date {_q(raw['date'])} is outside the supported range {limits.story_date_range_text()}",
                "check the year; docs/reliability.md explains the range")
            date = None
    if values["timezone"]:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            if _ZONES is None:
                _ZONES = sorted(available_timezones())
            bad(f"unknown time zone {_q(values['timezone'])}",
                _suggest(values["timezone"], _ZONES) or "use an IANA name such as Europe/London or America/New_York")
    if values["url"]:
        for message, hint in link_problems(values["url"]):
            bad(message, hint)
    for name in _LINKED_FIELDS:
        if len(values[name] or "") > MAX_URI_CHARS and (longest := _longest_link(values[name])) > MAX_URI_CHARS:
            bad(f"{name} holds a link of {longest:,} characters; Bluesky links at most {MAX_URI_CHARS:,}, so its "
                "post would be refused", "shorten that link (the page's short address, or leave it out)")
    if values["lang"] and not _LANG_RE.fullmatch(values["lang"]):
        bad(f"lang {_q(values['lang'])} is not a language tag", "use a BCP 47 tag such as en, de or pt-BR")
    if values["replies"]:
        try:
            values["replies"] = replies.parse(values["replies"], "replies")
        except ValueError:
            bad(f"replies {_q(values['replies'])} is not a choice",
                f"write one of {', '.join(replies.REPLIES)}, or leave it out for the setting (ONEYEARAGO_REPLIES)")
    draft = _flag(raw.get("draft"))
    if draft is None:
        bad(f"draft {_q(raw.get('draft'))} is not true or false",
            "write draft: true for a story that waits for `oneyearago approve`, or leave it out")
        draft = False
    delay = None
    if raw.get("followup_after") not in (None, ""):
        try:
            delay = parse_duration(str(raw["followup_after"]))
            if delay <= dt.timedelta(0):
                raise ValueError
        except ValueError:
            bad(f"followup_after {_q(raw['followup_after'])} is not a delay", "write it like 90m, 6h, 1h30m or 1d")
            delay = None
        if delay is not None and delay > limits.MAX_FOLLOWUP_AFTER:
            bad(f"followup_after {_q(raw['followup_after'])} is longer than {limits.MAX_FOLLOWUP_AFTER.days} days",
                f"the follow-up replies within {limits.MAX_FOLLOWUP_AFTER.days} days of its post; write it like "
                "6h or 2d")
            delay = None
    platforms = _list(raw.get("platforms"))
    if platforms is None:
        bad("platforms must be a list", "write platforms: [x, bluesky] or platforms: x,bluesky")
        platforms = []
    platforms = [p.lower() for p in platforms]
    for name in platforms:
        if name not in PLATFORMS:
            bad(f"unknown platform {_q(name)}", _suggest(name, PLATFORMS) or f"known: {', '.join(PLATFORMS)}")
    tags = _list(raw.get("tags"))
    if tags is None:
        bad("tags must be a list of words", "write tags: [ai, research]")
        tags = []
    tags = [t.lstrip("#＃").strip() for t in tags]
    for tag in tags:
        if not tag or any(ch.isspace() for ch in tag):
            bad(f"tag {_q(tag)} is not one word", "tags are single words without spaces")
    image: Image | None = None
    if values["image"]:
        problem = _check_url(values["image"]) if is_url(values["image"]) else None
        leak = _credentials_problem(values["image"]) if is_url(values["image"]) else None
        if leak:
            bad(f"image {leak}", "remove the user:password@ part; the image must load without logging in")
        elif problem:
            bad(f"image {shown(values['image'])} {problem}", "give an image URL or a path to a local file")
        elif not is_url(values["image"]) or len(problems) == before:  # fetch only for an otherwise valid story
            try:
                image = (media or MediaLoader()).load(values["image"], base)
            except ImageError as exc:
                bad(exc.message, exc.hint)
    loader = media or MediaLoader()
    targets = tuple(dict.fromkeys(p for p in platforms if p in PLATFORMS)) or loader.policy.platforms
    pictures: dict[str, tuple[StoryImage, ...]] = {}
    prepared: list[Image] = []
    for field in ("images", "followup_images"):
        specs = _pictures(raw.get(field), field, targets, loader.policy, bad)
        if specs and len(problems) == before:  # read and prepare only for an otherwise valid story
            made = []
            for i, (ref, alt) in enumerate(specs, start=1):
                try:
                    versions = loader.load_versions(ref, base, targets, alone=len(specs) == 1)
                except ImageError as exc:
                    bad(f"{field}[{i}]: {exc.message}", exc.hint)
                    continue
                prepared.extend(versions.values())
                made.append(StoryImage(ref, alt, {p: image.sha256 for p, image in versions.items()}))
            pictures[field] = tuple(made)
    if len(problems) > before or date is None:
        return None
    story = Story(
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
        replies=values["replies"],
        origin=f"{origin_file or file}:{line}",
        image_sha256=image.sha256 if image is not None else "",
        prepared_image=image,
        images=pictures.get("images", ()),
        followup_images=pictures.get("followup_images", ()),
        prepared_pictures=tuple({i.sha256: i for i in prepared}.values()),
        draft=draft,
    )
    if loader.policy.story_card and not story.images:
        story = with_card(story, targets, loader.policy)
    return story


CARD_REF = "(story card)"
"""The ``ref`` of a story card: it is drawn, not read from a file."""


def with_card(story: Story, targets: tuple[str, ...], policy: MediaPolicy) -> Story:
    """``story`` with its story card as its one picture, the headline its alt text (cut to the strictest
    alt-text limit of ``targets``). A headline the bundled font cannot draw gets no card (it would show
    empty boxes where its letters should be)."""
    from bot.sources.card import font, story_card
    from posts.card import missing

    lacking = missing(story.headline, font())
    if lacking:
        log.warning("story %s gets no story card: the bundled font has no letters for %r", story.id, lacking[:10])
        return story
    limits = [policy.alt_limit(p) for p in targets]
    room = min((limit for limit in limits if limit is not None), default=None)
    alt = " ".join(story.headline.split())
    if room is not None and alt_length(alt) > room:
        alt = alt[:room - 1].rstrip() + "…"
    versions = prepare_versions(story_card(story), CARD_REF, targets)
    card = StoryImage(CARD_REF, alt, {p: image.sha256 for p, image in versions.items()})
    return dataclasses.replace(story, images=(card,), prepared_pictures=(
        *story.prepared_pictures, *{i.sha256: i for i in versions.values()}.values()))


_PICTURE_HINT = "write it as a list of pictures, each like {path: pictures/map.png, alt: What the picture shows}"
_ALT_HINT = ("add alt: a description of what the picture shows, for readers who cannot see it "
             "(Reddit shows it as the caption)")


def _pictures(value: Any, field: str, targets: tuple[str, ...], policy: MediaPolicy,
              bad: Callable[..., None]) -> list[tuple[str, str]]:
    """The ``(path or url, alt)`` of each picture in ``value``, checked; problems go to ``bad``."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):  # a CSV cell: the list as JSON
        try:
            value = json.loads(value)
        except ValueError:
            bad(f"{field} is not a list of pictures", _PICTURE_HINT + " (in CSV: that list as JSON)")
            return []
    if not isinstance(value, list):
        bad(f"{field} must be a list of pictures, not {type(value).__name__}", _PICTURE_HINT)
        return []
    if len(value) > MAX_PICTURES:
        bad(f"{field} has {len(value)} pictures; a post shows at most {MAX_PICTURES}",
            f"keep the {MAX_PICTURES} that matter most")
        return []
    found: list[tuple[str, str]] = []
    for i, item in enumerate(value, start=1):
        name = f"{field}[{i}]"
        if not isinstance(item, dict):
            bad(f"{name} must be a mapping with path (or url) and alt, not {type(item).__name__}", _PICTURE_HINT)
            continue
        unknown = [k for k in item if k not in ("path", "url", "alt")]
        if unknown:
            bad(f"{name} has the unknown field {_q(unknown[0])}", "a picture has path (or url) and alt")
            continue
        ref_value = item.get("path") if item.get("path") not in (None, "") else item.get("url")
        ref = _text(ref_value)
        alt = _text(item.get("alt"))
        if "path" in item and "url" in item:
            bad(f"{name} gives both path and url", "give one of them")
            continue
        if not ref:
            bad(f"{name} names no picture", "give path: (a file beside the story file) or url: (an http(s) address)")
            continue
        if alt is None:
            bad(f"{name} alt must be text, not {type(item.get('alt')).__name__}", _ALT_HINT)
            continue
        if not alt:
            bad(f"{name} ({shown(ref)}) has no alt text", _ALT_HINT)
            continue
        if is_url(ref):
            problem = _check_url(ref)
            leak = _credentials_problem(ref)
            if leak:
                bad(f"{name} {leak}", "remove the user:password@ part; the picture must load without logging in")
                continue
            if problem:
                bad(f"{name} {shown(ref)} {problem}", "give an http(s) address of the picture")
                continue
        elif "url" in item and "path" not in item:
            bad(f"{name} url {shown(ref)} is not an http(s) address", "give url: https://… or path: a local file")
            continue
        too_long = False
        for platform in targets:
            limit = policy.alt_limit(platform)
            if limit is not None and alt_length(alt) > limit:
                where = ("a Reddit gallery caption" if platform == "reddit"
                         else f"{PLATFORM_NAMES[platform]}'s alt text")
                bad(f"{name} alt text is {alt_length(alt):,} characters; {where} holds at most {limit:,}",
                    "shorten it (say what matters in the picture), or leave that platform out of the story's "
                    "platforms" + (" or set ONEYEARAGO_REDDIT_IMAGES=inline" if platform == "reddit" else ""))
                too_long = True
                break
        if not too_long:
            found.append((ref, alt))
    return found


def check_pictures(value: Any, field: str, targets: tuple[str, ...], policy: MediaPolicy, problems: list[Problem],
                   file: str, line: int, story_id: str) -> list[tuple[str, str]]:
    """The ``(path or url, alt)`` of each picture ``value`` lists, checked as a load checks them (alt text
    present and within each of ``targets``' limits, addresses well formed) without reading any picture;
    every problem goes to ``problems``, located at ``file``:``line`` (the dashboard's editor uses this
    for alt-text edits of pictures already stored)."""

    def bad(message: str, hint: str = "", at: int | None = None) -> None:
        problems.append(Problem(file, line if at is None else at, story_id, message, hint))

    return _pictures(value, field, targets, policy, bad)


__all__ = ["EXTENSIONS", "PLATFORMS", "check_pictures", "load_stories", "read_records", "story_files",
           "validate_record", "with_card"]
