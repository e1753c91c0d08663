"""Write stored stories back as story files that :mod:`bot.sources.stories` reads to the same queue.

A round trip changes nothing: loading an export into the queue it came from finds every story
unchanged, and loading it into a new queue gives the same stories and posts. That lets edits made in
the dashboard be kept in the story files (and in version control).

Each story is written with only the fields it sets (defaults left out), in the order of
:data:`posts.story.FILE_FIELDS`:

- ``date``: date-only stays ``YYYY-MM-DD``; a date-time keeps its offset, or stays naive with its
  ``timezone``, exactly as it was loaded;
- ``followup_after``: a duration such as ``1h30m`` (:func:`posts.durations.format_duration`);
- ``platforms`` and ``tags``: lists (in CSV a cell ``x,bluesky``);
- ``images`` and ``followup_images``: lists of ``{path: …, alt: …}`` or ``{url: …, alt: …}`` (in CSV
  that list as JSON); a story card (``ONEYEARAGO_STORY_CARD``) is drawn again at load time, so it is
  not written.

Picture paths. A local path (``image``, ``images``, ``followup_images``) is relative to the folder of
the story file it was read from (the story's origin, ``FILE:LINE``), and the loader takes only a path
inside the folder of the file it reads. So an export rewrites each local path for the folder of the
output (the ``--out`` file's folder; the current folder for standard output):

- the same folder as the story's file: the path is written as the file gave it (a round trip);
- a picture inside the output's folder: the path relative to it;
- a picture outside it: its **absolute** path, with a warning, because ``load`` refuses it there
  (copy the picture beside the output, or set ``ONEYEARAGO_MEDIA_DIR``);
- a picture found nowhere on disk (uploaded in the dashboard's editor, or with a story file on its upload
  page): the bytes stored with the queue are written beside the output, under the picture's name (another
  name when a different file already has it), and that path is given; to standard output, as given, with
  a warning. The bytes written are the largest version prepared (X's): loading the export prepares them
  again to the same pictures for a PNG or GIF, while a JPEG is encoded again (its posts not sent yet are
  rendered again with the new bytes);
- with ``ONEYEARAGO_MEDIA_DIR`` set (paths are relative to that folder whatever the story file), or a
  URL: as given.

A draft (a story waiting for ``approve``) is written with ``draft: true`` (in CSV a ``draft`` cell
``true``), so that loading the export into a new queue keeps it a draft: a captured feed entry is never
posted without being approved. An approved story is written without the field.

Stories are read from the queue in chunks (:func:`stored_stories`) and written as they come, so an
export of a million stories never holds them all in memory. The checks that could refuse an export
(unknown ids, a tag a CSV cell cannot hold, names in a folder) are all made before anything is written.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

import yaml
from sqlalchemy import and_, func, or_, select

from bot.models import StoryChangeRow, StoryRow
from bot.sources.images import is_url
from bot.sources.stories import CARD_REF, EXTENSIONS
from bot.store import Store
from posts import limits
from posts.durations import format_duration
from posts.errors import BotError
from posts.story import FILE_FIELDS, Story, StoryImage

FORMATS: tuple[str, ...] = ("yaml", "json", "jsonl", "csv", "md")
"""The formats ``export`` writes; each is one that ``load`` reads."""

SUFFIXES: dict[str, str] = {"yaml": ".yaml", "json": ".json", "jsonl": ".jsonl", "csv": ".csv", "md": ".md"}
"""The file ending each format is written with."""

CHUNK = 500
"""How many stories are read from the queue at a time."""

MAX_WARNINGS = 100
"""How many warnings an export keeps to show; the rest are only counted."""


class ExportError(BotError):
    """An export that cannot be done as asked; nothing was written."""

    def __init__(self, message: str, hint: str = ""):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


def format_of(path: Path) -> str | None:
    """The export format a file ending means (``.yml`` is yaml, ``.markdown`` md), or None."""
    kind = EXTENSIONS.get(path.suffix.lower())
    return "md" if kind == "markdown" else kind


# ---------------------------------------------------------------------------- one story as fields


def origin_file(origin: str) -> str | None:
    """The file of an origin ``FILE:LINE``, or None when the origin names no file."""
    file, sep, line = origin.rpartition(":")
    return file if sep and file and line.isdigit() else None


@dataclasses.dataclass
class PicturePaths:
    """Rewrites the local picture paths of stories for an output in ``folder`` (see the module docs).

    ``media_dir``: the ``ONEYEARAGO_MEDIA_DIR`` setting; when set, paths are left as they are.
    """

    folder: Path
    media_dir: Path | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    warned: int = 0
    store: Store | None = None
    """Where the bytes of a picture found nowhere on disk are read from, to be written into ``folder``."""
    write: bool = True
    """Whether such bytes are written (not for an export to standard output: only a warning then)."""
    written: dict[str, str] = dataclasses.field(default_factory=dict)
    """sha256 -> the path (in ``folder``) its bytes were written to by this export."""

    def __post_init__(self) -> None:
        self.folder = Path(os.path.abspath(self.folder))
        self.resolved = _resolved(self.folder)
        """``folder`` with its symbolic links resolved, as picture paths are compared with it."""

    def warn(self, text: str) -> None:
        self.warned += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)

    def __call__(self, ref: str, origin: str, story_id: str, field: str, sha256: str = "") -> str:
        """``ref`` as the output file must give it (``sha256``: the picture's stored bytes, for one found
        nowhere on disk)."""
        if not ref or is_url(ref) or ref == CARD_REF or self.media_dir is not None:
            return ref
        file = origin_file(origin)
        if file is None:
            return self._stored(ref, story_id, field, sha256)
        source = _resolved(Path(os.path.abspath(file)).parent)
        picture = source / ref
        if not picture.exists():  # the story file is not where it was loaded from (uploaded, or moved)
            return self._stored(ref, story_id, field, sha256)
        if source == self.resolved:
            return ref
        picture = _resolved(picture)
        try:
            return picture.relative_to(self.resolved).as_posix()
        except ValueError:
            self.warn(f"{story_id}: {field} {ref!r} lies outside {self.folder}: written as {str(picture)!r}, "
                      "which `load` refuses (copy the picture into that folder and give its path there, or set "
                      "ONEYEARAGO_MEDIA_DIR)")
            return str(picture)


    def _stored(self, ref: str, story_id: str, field: str, sha256: str) -> str:
        """The path, in the output's folder, of a picture found nowhere on disk: its stored bytes written
        there under its own name (or, when a different file has that name, the name with its hash)."""
        from bot.images import stored_image

        if sha256 in self.written:
            return self.written[sha256]
        if self.store is None or not sha256:
            return ref
        if not self.write:
            self.warn(f"{story_id}: {field} {ref!r} is stored only with the queue: export with --out to have it "
                      "written beside the story file (`load` reads it there)")
            return ref
        with self.store.session() as session:
            image = stored_image(session, sha256)
        if image is None:
            self.warn(f"{story_id}: {field} {ref!r} is neither on disk nor stored with the queue: written as given")
            return ref
        name = PurePosixPath(ref.replace("\\", "/")).name or "picture"
        target = self.folder / name
        if target.exists() and target.read_bytes() != image.data:
            target = self.folder / f"{target.stem}-{sha256[:12]}{target.suffix}"
        if not target.exists() or target.read_bytes() != image.data:
            self.folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image.data)
        self.written[sha256] = target.name
        return target.name


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


Rebase = Callable[[str, str, str, str, str], str]
"""(ref, origin, story id, field, sha256 of its stored bytes) -> the ref to write."""


def _keep(ref: str, origin: str, story_id: str, field: str, sha256: str = "") -> str:
    return ref


def story_fields(story: Story, origin: str = "", rebase: Rebase = _keep) -> dict[str, Any]:
    """The fields a story file gives ``story`` with: only those set, in :data:`FILE_FIELDS` order
    (``draft`` last, and only for a draft).

    Lists stay lists and pictures are ``{path|url: …, alt: …}`` mappings; each format writes them
    its own way. ``origin`` (``FILE:LINE``) and ``rebase`` place local picture paths.
    """
    values: dict[str, Any] = {
        "id": story.id,
        "date": story.date.isoformat(),
        "timezone": story.timezone or "",
        "headline": story.headline,
        "summary": story.summary,
        "body": story.body,
        "category": story.category,
        "source": story.source,
        "url": story.url,
        "image": rebase(story.image, origin, story.id, "image", story.image_sha256) if story.image else "",
        "images": _pictures(story.images, origin, story.id, "images", rebase),
        "followup_images": _pictures(story.followup_images, origin, story.id, "followup_images", rebase),
        "one_year_later": story.one_year_later,
        "followup_after": format_duration(story.followup_after) if story.followup_after is not None else "",
        "platforms": list(story.platforms),
        "tags": list(story.tags),
        "lang": story.lang,
        "replies": story.replies,
        "draft": True if story.draft else None,
    }
    return {name: values[name] for name in FILE_FIELDS if values[name] not in ("", [], None)}


def _pictures(pictures: Sequence[StoryImage], origin: str, story_id: str, field: str,
              rebase: Rebase) -> list[dict[str, str]]:
    out = []
    for i, picture in enumerate(pictures, start=1):
        if picture.ref == CARD_REF:
            continue  # the story card is drawn at load time, never read from a file
        ref = rebase(picture.ref, origin, story_id, f"{field}[{i}]", _fullest(picture))
        out.append({"url" if is_url(ref) else "path": ref, "alt": picture.alt})
    return out


def _fullest(picture: StoryImage) -> str:
    """The sha256 of a picture's version prepared within the widest limits (X's, else another)."""
    versions = dict(picture.versions)
    return next((versions[p] for p in ("x", "mastodon", "reddit", "bluesky") if versions.get(p)),
                next(iter(versions.values()), ""))


# ---------------------------------------------------------------------------- formats


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """A safe dumper (libyaml's emitter when present) that writes dates plainly, as the loader reads
    them (it keeps dates as text), and multi-line text as a ``|`` block where YAML allows one."""


_Dumper.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}


def _represent_text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


class _Flow(list):  # type: ignore[type-arg]
    """A list written on one line: ``[x, bluesky]``."""


class _FlowMap(dict):  # type: ignore[type-arg]
    """A mapping written on one line: ``{path: map.png, alt: A map}``."""


_Dumper.add_representer(str, _represent_text)
_Dumper.add_representer(_Flow, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))
_Dumper.add_representer(_FlowMap, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=True))


def _yaml_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as YAML writes them: the story a block mapping, its lists and pictures on one line each."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("platforms", "tags"):
            value = _Flow(value)
        elif name in ("images", "followup_images"):
            value = [_FlowMap(picture) for picture in value]
        out[name] = value
    return out

_WIDE = 1 << 30
"""Lines are never folded: one field, one line (small diffs)."""


def _yaml(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False,
                          width=_WIDE)
    return text


def yaml_story(fields: dict[str, Any]) -> str:
    """One story as an item of a YAML list (``- id: …``)."""
    return _yaml([_yaml_fields(fields)])


def json_story(fields: dict[str, Any], *, indent: int | None = None) -> str:
    """One story as a JSON object (one line unless ``indent``)."""
    return json.dumps(fields, ensure_ascii=False, indent=indent)


CSV_COLUMNS: tuple[str, ...] = FILE_FIELDS
"""The header of an exported CSV file: every field, so that any story fits (an empty cell is unset)."""


def csv_row(fields: dict[str, Any]) -> list[str]:
    """One story as the cells of a CSV row under :data:`CSV_COLUMNS`.

    Raises:
        ExportError: when a tag holds a comma or semicolon (a CSV cell of tags is split at them).
    """
    cells = []
    for name in CSV_COLUMNS:
        value = fields.get(name, "")
        if name in ("platforms", "tags"):
            _check_cell(str(fields["id"]), value)
            value = ",".join(value)
        elif name in ("images", "followup_images"):
            value = json.dumps(value, ensure_ascii=False) if value else ""
        elif name == "draft":
            value = "true" if value else ""
        cells.append(value)
    return cells


def _check_cell(story_id: str, items: Iterable[str]) -> None:
    """Refuse a list a CSV cell cannot hold (an item with a comma or semicolon, which the cell is split at)."""
    bad = [item for item in items if "," in item or ";" in item]
    if bad:
        raise ExportError(f"story {story_id}: the tag {bad[0]!r} holds a comma or semicolon, which a CSV "
                          "cell of tags is split at", "export it as yaml, json, jsonl or md instead; nothing was "
                          "written")


def check_csv(stories: Iterable[tuple[Story, str]]) -> None:
    """Refuse, before anything is written, stories that a CSV file cannot hold (see :func:`csv_row`)."""
    for story, _origin in stories:
        _check_cell(story.id, story.platforms)
        _check_cell(story.id, story.tags)


def markdown_story(fields: dict[str, Any]) -> str:
    """One story as a Markdown story file: YAML front matter between ``---`` lines, then the body."""
    front = dict(fields)
    body = front.pop("body", "")
    return "---\n" + _yaml(_yaml_fields(front)) + "---\n" + ("\n" + body + "\n" if body else "")


# ---------------------------------------------------------------------------- reading the queue


def unknown_ids(store: Store, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` that name no stored story, in the order given."""
    found: set[str] = set()
    with store.session() as session:
        for chunk in _chunks(list(dict.fromkeys(ids)), CHUNK):
            found.update(session.scalars(select(StoryRow.id).where(StoryRow.id.in_(chunk))))
    return [sid for sid in dict.fromkeys(ids) if sid not in found]


def stored_stories(store: Store, ids: Sequence[str] | None = None, *,
                   chunk: int = CHUNK) -> Iterator[tuple[Story, str]]:
    """Each stored story (with its draft flag) and the origin (``FILE:LINE``) its pictures are relative
    to, read ``chunk`` at a time: every story in load order when ``ids`` is None, else those ``ids`` in
    the order given (unknown ones are skipped: see :func:`unknown_ids`).

    A story changed in the dashboard since its last load keeps the file it was last loaded from as the
    origin of its pictures.
    """
    columns = (StoryRow.id, StoryRow.seq, StoryRow.content, StoryRow.origin, StoryRow.draft)
    if ids is not None:
        for part in _chunks(list(dict.fromkeys(ids)), chunk):
            with store.session() as session:
                found = {row.id: row for row in session.execute(select(*columns).where(StoryRow.id.in_(part)))}
                origins = _file_origins(session, list(found.values()))
            yield from ((_story(found[sid]), origins[sid]) for sid in part if sid in found)
        return
    for rows, origins in _in_load_order(store, columns, chunk):
        yield from ((_story(row), origins[row.id]) for row in rows)


def with_own_versions(store: Store | None, ids: Sequence[str], own: Mapping[str, Story], *,
                      chunk: int = CHUNK) -> Iterator[tuple[Story, str]]:
    """The stories ``ids`` in the order given, each as the queue holds it (see :func:`stored_stories`),
    or, for one the queue lacks, as ``own`` holds it (a story file's own version, with its origin): what
    ``export --from FILE --out FILE`` writes, so that a story added to the file and not loaded yet stays."""
    for part in _chunks(list(dict.fromkeys(ids)), chunk):
        found = {story.id: (story, origin) for story, origin in
                 (stored_stories(store, part, chunk=chunk) if store is not None else ())}
        for sid in part:
            yield found[sid] if sid in found else (own[sid], own[sid].origin)


def _in_load_order(store: Store, columns: Sequence[Any], chunk: int) -> Iterator[tuple[list[Any], dict[str, str]]]:
    """Every stored story's ``columns`` (``id`` and ``seq`` among them) in load order, ``chunk`` rows at a
    time (keyset pages, each read in a session of its own), with each row's file origin
    (:func:`_file_origins`)."""
    last: tuple[int, str] | None = None
    while True:
        query = select(*columns).order_by(StoryRow.seq, StoryRow.id).limit(chunk)
        if last is not None:
            query = query.where(or_(StoryRow.seq > last[0], and_(StoryRow.seq == last[0], StoryRow.id > last[1])))
        with store.session() as session:
            rows = list(session.execute(query))
            origins = _file_origins(session, rows)
        if not rows:
            return
        yield rows, origins
        if len(rows) < chunk:
            return
        last = (rows[-1].seq, rows[-1].id)


def _story(row: Any) -> Story:
    """A stored story, with its draft flag (kept beside its content, not in it)."""
    story = Story.from_content(row.content)
    return dataclasses.replace(story, draft=True) if row.draft else story


def _count(store: Store | None, ids: Sequence[str] | None) -> int:
    """How many stories an export of ``ids`` (None: all) writes."""
    if ids is not None:
        return len(dict.fromkeys(ids))
    if store is None:
        return 0
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(StoryRow)) or 0)


def _file_origins(session: Any, rows: Sequence[Any]) -> dict[str, str]:
    """Each row's origin, or, when that names no file (a dashboard save), the file it was last loaded from."""
    origins = {row.id: row.origin or "" for row in rows}
    lost = [sid for sid, origin in origins.items() if origin_file(origin) is None]
    if lost:
        for sid, origin in session.execute(
                select(StoryChangeRow.story_id, StoryChangeRow.origin)
                .where(StoryChangeRow.story_id.in_(lost), StoryChangeRow.source == "file")
                .order_by(StoryChangeRow.id)):
            if origin_file(origin) is not None:
                origins[sid] = origin
    return origins


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------------------- writing


class TextSink(Protocol):
    """Where story text is written: a text file, standard output, a buffer."""

    def write(self, text: str, /) -> int: ...


def write_stories(stories: Iterable[tuple[Story, str]], fmt: str, stream: TextSink,
                  rebase: Rebase = _keep) -> int:
    """Write ``stories`` (with their origins) to ``stream`` as one story file in ``fmt``; returns how many.

    ``md`` holds one story: a second one raises :class:`ExportError` (see :func:`export`).
    """
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for story, origin in stories:
            writer.writerow(csv_row(story_fields(story, origin, rebase)))
            count += 1
        return count
    if fmt == "json":
        stream.write("[")
    for count, (story, origin) in enumerate(stories, start=1):
        fields = story_fields(story, origin, rebase)
        if fmt == "yaml":
            stream.write(yaml_story(fields))
        elif fmt == "json":
            text = json_story(fields, indent=2).replace("\n", "\n  ")
            stream.write(("\n  " if count == 1 else ",\n  ") + text)
        elif fmt == "jsonl":
            stream.write(json_story(fields) + "\n")
        elif fmt == "md":
            if count > 1:
                raise ExportError("a Markdown story file holds one story", "give --out FOLDER to write one .md "
                                  "file per story, or export as yaml, json, jsonl or csv")
            stream.write(markdown_story(fields))
        else:
            raise ValueError(f"unknown format {fmt!r}")
    if fmt == "json":
        stream.write("\n]\n" if count else "]\n")
    elif fmt == "yaml" and not count:
        stream.write("[]\n")
    return count


@dataclasses.dataclass
class ExportReport:
    """What an export wrote."""

    stories: int = 0
    files: list[str] = dataclasses.field(default_factory=list)
    """The files written (none for standard output); a folder export lists at most a hundred."""
    file_count: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Picture paths ``load`` will refuse where they were written (at most a hundred shown)."""
    warned: int = 0
    own: list[str] = dataclasses.field(default_factory=list)
    """Stories the queue lacks, written as the story file given with ``own`` holds them."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_format(fmt: str | None, out: Path | None) -> tuple[str, bool]:
    """The format to write, and whether ``out`` is a folder of Markdown files (one per story).

    The format is ``fmt``, else the one ``out``'s ending names, else yaml.

    Raises:
        ExportError: when the two disagree, or ``out``'s ending names no format.
    """
    if out is None:
        return fmt or "yaml", False
    if out.is_dir() or (fmt == "md" and not out.suffix):
        if fmt != "md":
            raise ExportError(f"{out} is a folder", "give a file such as stories.yaml, or --format md to write "
                              "one Markdown file per story into the folder")
        return "md", True
    named = format_of(out)
    if named is None:
        raise ExportError(f"cannot tell the format from the name {out.name!r}",
                          f"end it in {', '.join(SUFFIXES.values())}, or give --format")
    if fmt is not None and fmt != named:
        raise ExportError(f"--format {fmt} does not match the file ending {out.suffix!r}, which `load` reads as "
                          f"{named}", f"name the file *{SUFFIXES[fmt]}, or leave --format out")
    return named, False


def export(store: Store | None, ids: Sequence[str] | None, *, fmt: str | None = None, out: Path | None = None,
           stdout: IO[str] | None = None, media_dir: Path | None = None, chunk: int = CHUNK,
           own: Mapping[str, Story] | None = None) -> ExportReport:
    """Export the stories ``ids`` (every story, in load order, when None) as a story file.

    ``own`` holds a story file's own versions of its stories (by id): one of ``ids`` the queue lacks is
    written as the file holds it rather than refused (``export --from FILE``).

    To ``out`` when given, written atomically (a temporary file renamed over it), else to ``stdout``.
    ``--format md`` with a folder ``out`` writes each story to its own file there: the Markdown file it
    was loaded from when that lies in the folder, else ``ID.md``; an existing file that is not the
    story's own is never overwritten. ``store`` None is an empty queue.

    Raises:
        ExportError: unknown ids (listed), a format that cannot be told or does not fit, a Markdown
            export of several stories to one file or to standard output, a folder export that would
            overwrite another file, a story that cannot be written in the format. Nothing is written then.
    """
    fmt, to_folder = plan_format(fmt, out)
    own = own or {}
    if ids is not None:
        missing = unknown_ids(store, ids) if store is not None else list(dict.fromkeys(ids))
        report_own = [sid for sid in missing if sid in own]
        missing = [sid for sid in missing if sid not in own]
        if missing:
            raise ExportError(f"no such stor{'y' if len(missing) == 1 else 'ies'}: {', '.join(missing[:50])}"
                              + (f" and {len(missing) - 50} more" if len(missing) > 50 else ""),
                              "`oneyearago status` and the dashboard list the stories; nothing was written")
    if fmt == "md" and not to_folder and _count(store, ids) > 1:
        raise ExportError("a Markdown story file holds one story", "give --out FOLDER to write one .md file per "
                          "story, or export as yaml, json, jsonl or csv; nothing was written")
    folder = out if to_folder and out is not None else (out.parent if out is not None else Path.cwd())
    paths = PicturePaths(folder, media_dir, store=store, write=out is not None)
    report = ExportReport()

    report.own = report_own if ids is not None else []

    def stories() -> Iterator[tuple[Story, str]]:
        if ids is not None and report.own:
            return with_own_versions(store, ids, own, chunk=chunk)
        return stored_stories(store, ids, chunk=chunk) if store is not None else iter(())

    if fmt == "csv":  # a pass of its own, so that a refusal comes before the first byte (or picture) is written
        check_csv(stories())

    try:
        if to_folder:
            assert out is not None
            _export_folder(stories, out, paths, report)
        elif out is None:
            assert stdout is not None
            counted = _Counted(stdout)
            report.stories = write_stories(stories(), fmt, counted, paths)
        else:
            with atomic_write(out) as stream:
                counted = _Counted(stream)
                report.stories = write_stories(stories(), fmt, counted, paths)
            report.files, report.file_count = [str(out)], 1
        if not to_folder:
            _check_size(counted.bytes, fmt, "standard output" if out is None else str(out), paths)
    except BrokenPipeError:
        raise  # standard output closed early (``export | head``): not an error of the export
    except OSError as exc:
        where = "standard output" if out is None else str(out)
        hint = ("check where standard output goes, and that its disk has room" if out is None else
                "check that the folder exists and can be written, and that the disk has room; "
                f"{out} was left as it was")
        raise ExportError(f"cannot write {where}: {exc.strerror or exc}", hint) from exc
    report.warnings, report.warned = paths.warnings, paths.warned
    return report


class _Counted:
    """A text stream that counts the UTF-8 bytes written through it."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8", "surrogatepass"))
        return self.stream.write(text)


def _check_size(size: int, fmt: str, where: str, paths: PicturePaths) -> None:
    """A warning when ``load`` would refuse a file of ``size`` bytes in ``fmt`` as too large."""
    limit = limits.MAX_FILE_BYTES["markdown" if fmt == "md" else fmt]
    if size > limit:
        paths.warn(f"{where} is {size:,} bytes; `load` reads a {fmt} story file of at most {limit:,} bytes "
                   "(export as jsonl, or fewer stories to each file)")


def _export_folder(stories: Callable[[], Iterator[tuple[Story, str]]], folder: Path, paths: PicturePaths,
                   report: ExportReport) -> None:
    """One Markdown file per story in ``folder``; every name is checked before anything is written."""
    def target(story: Story, origin: str) -> Path:
        file = origin_file(origin)
        if file is not None and format_of(Path(file)) == "md" and _resolved(Path(file).parent) == paths.resolved:
            return folder / Path(file).name
        return folder / f"{story.id}.md"

    taken: dict[str, str] = {}
    refused: list[str] = []
    for story, origin in stories():
        path = target(story, origin)
        key = path.name.lower()  # two names that differ only in case are one file on some systems
        if key in taken:
            raise ExportError(f"stories {taken[key]} and {story.id} would both be written to {path}",
                              "export one of them on its own, to another folder")
        taken[key] = story.id
        own = origin_file(origin)
        if (path.exists() or path.is_symlink()) and (own is None or _resolved(path) != _resolved(Path(own))):
            refused.append(str(path))
    if refused:
        raise ExportError(f"{len(refused)} file{'s' if len(refused) != 1 else ''} in {folder} would be "
                          f"overwritten although {'they are' if len(refused) != 1 else 'it is'} not the story's own "
                          f"file: {', '.join(refused[:10])}" + (" …" if len(refused) > 10 else ""),
                          "export into an empty folder, or move those files away; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    for story, origin in stories():
        path = target(story, origin)
        with atomic_write(path) as stream:
            stream.write(markdown_story(story_fields(story, origin, paths)))
        report.stories += 1
        report.file_count += 1
        if len(report.files) < MAX_WARNINGS:
            report.files.append(str(path))


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[str]]:
    """A text stream (UTF-8, ``\\n`` line ends) to a temporary file beside ``path``, renamed over ``path``
    when the block ends without an error, removed when it raises: ``path`` is never left half written.
    An existing file keeps its permissions; a new one gets the usual ones (0666 less the umask). A
    symbolic link is written through (the file it names is replaced, the link stays), as an editor does."""
    path = Path(os.path.realpath(path))
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temp, mode)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def text_of(stories: Iterable[tuple[Story, str]], fmt: str, rebase: Rebase = _keep) -> str:
    """``stories`` as the text of one story file in ``fmt`` (for tests and small exports)."""
    buffer = io.StringIO()
    write_stories(stories, fmt, buffer, rebase)
    return buffer.getvalue()


__all__ = ["CHUNK", "FORMATS", "ExportError", "ExportReport", "PicturePaths", "atomic_write", "check_csv", "csv_row",
           "export", "format_of", "json_story", "markdown_story", "plan_format", "stored_stories", "story_fields", "text_of",
           "unknown_ids", "write_stories", "yaml_story"]
