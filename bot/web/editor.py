"""The story editor of the dashboard: the form, its live preview, saving, the history, and the stories
that need a reveal.

Nothing here renders HTML or posts: an edit is validated by :func:`bot.sources.stories.validate_record`
(the loader's own checks and messages), rendered by :func:`posts.render.render` with the options
``preview`` uses, and saved by :meth:`bot.planner.Planner.load` with ``source="dashboard"``, which keeps
the history, marks the story as edited, and re-renders the posts not sent yet.

Pictures: the form lists those it keeps by signed tokens (:func:`picture_token`), so that it can name
only pictures this dashboard prepared; a file chosen for one is read and prepared by the loader's
:class:`~bot.sources.images.MediaLoader` and stored with the queue's images at once, so that a preview
without JavaScript keeps it until the story is saved (a picture previewed but never saved stays stored,
unused).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.images import media_policy, pictures_info, store_images
from bot.models import StoryChangeRow, StoryRow
from bot.ops import needs_reveal
from bot.planner import LoadReport, Planner, render_options, story_platforms, timed_due, window_day
from bot.sources.images import MediaLoader, MediaPolicy
from bot.sources.stories import CARD_REF, check_pictures, validate_record, with_card
from bot.store import Store
from posts import anniversary
from posts.clock import utcnow
from posts.durations import format_duration
from posts.errors import NotFound, Problem, StoryError, TemplateError
from posts.media import MAX_PICTURES, Image, ImageError, alt_length
from posts.render import Part, iso_utc, render
from posts.replies import REPLIES
from posts.story import FIELDS, PLATFORM_NAMES, Story, StoryImage

ORIGIN = "dashboard"
"""Where a story saved in the dashboard says it came from (its ``origin``, its history, its problems)."""
PROBLEM_LINE = 0
"""The line problems of a dashboard edit are located at (``dashboard:0``): the form has no lines."""
EDITABLE: tuple[str, ...] = tuple(f for f in FIELDS if f not in ("id", "image", "images", "followup_images"))
"""The fields the editor has a text input for; the id is fixed, pictures have inputs of their own."""
LONG_FIELDS = frozenset({"summary", "body", "one_year_later"})
"""Fields edited in a text area."""
CHOICES: dict[str, tuple[str, ...]] = {"replies": ("", *REPLIES)}
"""Fields edited with a select: their choices (the empty one: the setting decides)."""
PICTURE_FIELDS = ("images", "followup_images")
LISTED = "pictures"
"""A form that carries this field lists every picture it keeps (``FIELD.N.pic``); without it (a client that
edits only text) the stored pictures stay, their alt text taken from ``FIELD.N.alt`` when given."""
NEW = "new"
"""The slot of a picture being added: ``images.new.file`` and ``images.new.alt``."""
IMAGE_PIC, IMAGE_FILE = "image.pic", "image.file"
"""The form fields of the link card picture (``image``): the one kept, and a file to put in its place."""
HELP: dict[str, str] = {
    "date": "2025-03-01, or 2025-03-01T09:30 for a time",
    "timezone": "IANA name, e.g. Europe/Berlin (for a date with a time)",
    "followup_after": "a delay such as 6h or 1h30m (empty: the bot's default)",
    "platforms": "comma separated, e.g. x, bluesky (empty: every enabled platform)",
    "tags": "comma separated words",
    "lang": "BCP 47, e.g. en or pt-BR (empty: the bot's default)",
    "replies": "who may reply to its threads (empty: the setting, ONEYEARAGO_REPLIES)",
    "one_year_later": "the reveal, posted as the reply",
}
SHORT = 120
"""Longest value the history shows of one field before cutting it."""


# ---------------------------------------------------------------------------- the form


def form_values(story: Story) -> dict[str, str]:
    """The editable fields of ``story`` written as in a story file."""
    date = story.date
    if isinstance(date, dt.datetime):
        written = date.isoformat() if date.microsecond else date.isoformat(timespec="minutes" if not date.second
                                                                           else "seconds")
    else:
        written = date.isoformat()
    return {
        "date": written, "timezone": story.timezone or "", "headline": story.headline, "summary": story.summary,
        "body": story.body, "category": story.category, "source": story.source, "url": story.url,
        "one_year_later": story.one_year_later,
        "followup_after": format_duration(story.followup_after) if story.followup_after is not None else "",
        "platforms": ", ".join(story.platforms), "tags": ", ".join(story.tags), "lang": story.lang,
        "replies": story.replies,
    }


def alt_name(field: str, index: int | str) -> str:
    """The form field of the alt text of picture ``index`` (from 1, or :data:`NEW`) of ``field``."""
    return f"{field}.{index}.alt"


def pic_name(field: str, index: int) -> str:
    """The form field that names picture ``index`` (from 1) of ``field`` (a signed :func:`picture_token`)."""
    return f"{field}.{index}.pic"


def file_name(field: str, index: int | str) -> str:
    """The form field of a file put in the place of picture ``index`` of ``field`` (or added: :data:`NEW`)."""
    return f"{field}.{index}.file"


@dataclasses.dataclass
class PictureView:
    field: str
    index: int
    ref: str
    alt: str
    sha256: str
    card: bool
    token: str = ""
    count: int = 0
    """How many pictures ``field`` holds (the last one cannot move down)."""

    @property
    def name(self) -> str:
        return alt_name(self.field, self.index)

    @property
    def pic(self) -> str:
        return pic_name(self.field, self.index)

    @property
    def file(self) -> str:
        return file_name(self.field, self.index)

    @property
    def slot(self) -> str:
        """What the picture's Up, Down and Remove buttons name: ``images.2``."""
        return f"{self.field}.{self.index}"


# ---------------------------------------------------------------------------- pictures kept by the form


def picture_token(secret: bytes, ref: str, versions: Mapping[str, str]) -> str:
    """A picture the form keeps (its reference and stored versions), signed so that a form can name only
    pictures this dashboard prepared (a picture uploaded at a preview waits in the queue under them)."""
    data = json.dumps({"ref": ref, "versions": dict(versions)}, sort_keys=True, ensure_ascii=False).encode()
    body = base64.urlsafe_b64encode(data).decode().rstrip("=")
    return f"{body}.{_mac(secret, body)}"


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret or b"unsigned", body.encode(), hashlib.sha256).hexdigest()[:32]


def read_token(secret: bytes, token: str, known: list[StoryImage]) -> StoryImage | None:
    """The picture ``token`` names: signed by ``secret``, or one of the story's ``known`` pictures (a form
    opened before the dashboard restarted with a new key); ``None`` for anything else."""
    body, _, mac = token.partition(".")
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        image = StoryImage(str(data["ref"]), "", {str(k): str(v) for k, v in dict(data["versions"]).items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if secret and hmac.compare_digest(mac, _mac(secret, body)):
        return image
    same = [k for k in known if k.ref == image.ref and dict(k.versions) == dict(image.versions)]
    return image if same else None


@dataclasses.dataclass
class PlatformPreview:
    platform: str
    name: str
    parts: list[Part]
    alt_limit: int | None = None
    """The most characters of alt text a picture there takes (``None``: no limit)."""


@dataclasses.dataclass
class Checked:
    """An edit validated and rendered: the story (``None`` when refused), its problems, its parts, and the
    pictures the form keeps after it (those kept, moved, replaced or added; a refused upload left out)."""

    story: Story | None
    problems: list[Problem]
    platforms: list[PlatformPreview]
    values: dict[str, str]
    alts: dict[str, str]
    pictures: dict[str, list[StoryImage]] = dataclasses.field(default_factory=dict)
    image: StoryImage | None = None
    """The link card picture kept (its sha256 as the version ``image``), if any."""
    card: StoryImage | None = None
    """The story card drawn for a story without pictures (``ONEYEARAGO_STORY_CARD``)."""
    info: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)
    """What is stored of each picture the preview shows, by sha256 (size, type, dimensions)."""

    @property
    def ok(self) -> bool:
        return self.story is not None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "problems": [{"text": str(p), "message": p.message, "hint": p.hint} for p in self.problems],
                "platforms": [{"platform": p.platform, "name": p.name, "parts": [
                    {"kind": part.kind, "part": part.part, "parts": part.parts, "text": part.text,
                     "length": part.length, "limit": part.limit, "unit": part.unit, "cut": part.cut,
                     "warning": f"cut to fit {p.name}: the end of the story is left out of this post" if part.cut
                     else "",
                     "checks": [{**dataclasses.asdict(c), "ok": c.ok} for c in part.checks],
                     "pictures": [{"sha256": pic.sha256, "alt": pic.alt, "alt_length": alt_length(pic.alt),
                                   "alt_limit": p.alt_limit, **self.info.get(pic.sha256, {})}
                                  for pic in part.pictures]}
                    for part in p.parts]} for p in self.platforms]}


def _stored(store: Store, story_id: str) -> tuple[Story, StoryRow]:
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        if row is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        session.expunge(row)
    return Story.from_content(row.content), row


def pictures_of(story: Story) -> list[PictureView]:
    """The stored pictures of ``story`` as the editor lists them (a story card's alt text is its headline)."""
    return [PictureView(field, i, image.ref, image.alt, next(iter(image.versions.values()), ""), image.ref == CARD_REF)
            for field in PICTURE_FIELDS for i, image in enumerate(getattr(story, field), start=1)]


@dataclasses.dataclass
class _Slot:
    """A picture of the form while an edit is applied: the one kept, its alt text, a file put in its place."""

    index: str
    image: StoryImage | None
    alt: str
    upload: Path | None


def check(store: Store, settings: Settings, story_id: str, form: Mapping[str, Any], *,
          templates: Any = None, uploads: Mapping[str, Path] | None = None, secret: bytes = b"") -> Checked:
    """Validate the edited fields in ``form`` as ``load`` validates a story file, then render every
    platform's parts as ``preview`` renders them; problems are located at ``dashboard:0``.

    The pictures are those the form lists (``FIELD.N.pic``, signed with ``secret``), changed by its ``do``
    (``remove:images.2``, ``up:…``, ``down:…``, ``remove:image``), with the files in ``uploads`` (form
    field -> a copy of the uploaded file, named as the operator named it) put in their places or added:
    each read and prepared by the loader's own code (:class:`bot.sources.images.MediaLoader`), refused
    with its messages, and kept in the queue's images so that the form can name it until it is saved.
    """
    stored, row = _stored(store, story_id)
    uploads = uploads or {}
    values = {name: _field(form, name) for name in EDITABLE}
    raw: dict[str, Any] = {"id": story_id, **values}
    problems: list[Problem] = []
    policy = media_policy(settings, store=store)
    # no story card here: drawn once per headline (and date, category, source) by _card, not per keystroke
    story = validate_record(raw, ORIGIN, PROBLEM_LINE, problems, base=None,
                            media=MediaLoader(dataclasses.replace(policy, story_card=False)))
    targets = (story.platforms if story is not None else ()) or policy.platforms

    def bad(message: str, hint: str) -> None:
        problems.append(Problem(ORIGIN, PROBLEM_LINE, story_id, message, hint))

    known = [*stored.images, *stored.followup_images]
    listed = LISTED in form
    action, _, target = str(form.get("do") or "").partition(":")
    prepared: list[Image] = []
    pictures: dict[str, list[StoryImage]] = {}
    for field in PICTURE_FIELDS:
        slots = _slots(form, field, stored, listed, secret, known, uploads, bad)
        _apply(slots, action, target, field)
        # the count and the alt text, checked by the loader's code (and refused with its messages)
        check_pictures([{"path": s.upload.name if s.upload else s.image.ref if s.image else "", "alt": s.alt}
                        for s in slots], field, targets, policy, problems, ORIGIN, PROBLEM_LINE, story_id)
        if len(slots) <= MAX_PICTURES:
            kept = []
            for position, slot in enumerate(slots, start=1):
                image = _prepared(slot, field, position, targets, policy, prepared, bad, alone=len(slots) == 1)
                if image is not None:
                    kept.append(image)
            pictures[field] = kept
        else:  # more than a post shows: the pictures stay as they were, the new file is not taken
            pictures[field] = [s.image for s in slots if s.image is not None and s.upload is None][:MAX_PICTURES]
    image, prepared_image = _link_picture(form, stored, listed, secret, action, target, uploads, policy, bad)
    if prepared or prepared_image is not None:
        with store.session() as session:  # kept by the form (signed) until saved: its preview shows it
            store_images(session, [*prepared, *([prepared_image] if prepared_image else [])], utcnow())
    card = None
    if story is not None:
        story = dataclasses.replace(
            story, origin=ORIGIN, image=image.ref if image else "",
            image_sha256=image.versions.get("image", "") if image else "", prepared_image=prepared_image,
            images=tuple(pictures["images"]), followup_images=tuple(pictures["followup_images"]),
            prepared_pictures=tuple({i.sha256: i for i in prepared}.values()))
        if policy.story_card and not story.images:
            drawn = _card(story.headline, story.calendar_date, story.category, story.source, targets, policy)
            if drawn is not None:
                card = drawn[0]
                story = dataclasses.replace(story, images=(card,), prepared_pictures=(*story.prepared_pictures,
                                                                                      *drawn[1]))
    platforms: list[PlatformPreview] = []
    info: dict[str, dict[str, object]] = {}
    if story is not None and not problems:
        try:
            platforms = [dataclasses.replace(p, alt_limit=policy.alt_limit(p.platform))
                         for p in _render(store, settings, story, row, templates)]
        except (ValueError, TemplateError) as exc:
            problems.append(Problem(ORIGIN, PROBLEM_LINE, story_id, f"cannot be rendered: {exc}",
                                    "shorten the headline, or fix the template it names"))
        info = pictures_info(store, {pic.sha256 for p in platforms for part in p.parts for pic in part.pictures})
    alts = {alt_name(field, i): image.alt for field, kept in pictures.items()
            for i, image in enumerate(kept, start=1)}
    return Checked(story if not problems else None, problems, platforms, values, alts, pictures, image, card, info)


def _slots(form: Mapping[str, Any], field: str, stored: Story, listed: bool, secret: bytes,
           known: list[StoryImage], uploads: Mapping[str, Path], bad: Any) -> list[_Slot]:
    """The pictures of ``field`` the form names, in its order, with a file added (``FIELD.new.file``)."""
    slots = []
    if not listed:  # a form of text fields only: the stored pictures, their alt text as edited
        for i, image in enumerate(getattr(stored, field), start=1):
            if image.ref != CARD_REF:
                name = alt_name(field, i)
                slots.append(_Slot(str(i), image, _field(form, name) if name in form else image.alt,
                                   uploads.get(file_name(field, i))))
    else:
        for i in range(1, MAX_PICTURES + 2):
            token = form.get(pic_name(field, i))
            if not isinstance(token, str) or not token:
                continue
            image = read_token(secret, token, known)
            if image is None:
                bad(f"{field}[{i}] is not a picture this dashboard prepared (it restarted since the page was opened)",
                    "open the story again, and choose that picture's file again")
                continue
            slots.append(_Slot(str(i), image, _field(form, alt_name(field, i)), uploads.get(file_name(field, i))))
    if file_name(field, NEW) in uploads:
        slots.append(_Slot(NEW, None, _field(form, alt_name(field, NEW)), uploads[file_name(field, NEW)]))
    return slots


def _apply(slots: list[_Slot], action: str, target: str, field: str) -> None:
    """Remove, or move up or down, the picture ``target`` (``images.2``) names, as the button pressed says."""
    where, _, index = target.rpartition(".")
    position = next((n for n, slot in enumerate(slots) if where == field and slot.index == index), None)
    if position is None:
        return
    if action == "remove":
        del slots[position]
    elif action in ("up", "down"):
        other = position - 1 if action == "up" else position + 1
        if 0 <= other < len(slots):
            slots[position], slots[other] = slots[other], slots[position]


def _prepared(slot: _Slot, field: str, position: int, targets: tuple[str, ...], policy: MediaPolicy,
              prepared: list[Image], bad: Any, *, alone: bool) -> StoryImage | None:
    """The picture a slot keeps: its uploaded file read and prepared as ``load`` prepares a picture (a
    refused file leaves the picture it was to replace), else the one kept, with the alt text as edited."""
    if slot.upload is not None:
        loader = MediaLoader(dataclasses.replace(policy, media_dir=slot.upload.parent, uploaded=True))
        try:
            versions = loader.load_versions(slot.upload.name, None, targets, alone=alone)
        except ImageError as exc:
            bad(f"{field}[{position}]: {exc.message}", exc.hint)
        else:
            prepared.extend(versions.values())
            return StoryImage(slot.upload.name, slot.alt, {p: image.sha256 for p, image in versions.items()})
    if slot.image is None:
        return None
    missing = [PLATFORM_NAMES.get(p, p) for p in targets if p not in slot.image.versions]
    if missing:
        bad(f"{field}[{position}] ({slot.image.ref!r}) was prepared without {', '.join(missing)}",
            "choose its file again (Replace) so that it is prepared for every platform of the story")
    return dataclasses.replace(slot.image, alt=slot.alt)


def _link_picture(form: Mapping[str, Any], stored: Story, listed: bool, secret: bytes, action: str, target: str,
                  uploads: Mapping[str, Path], policy: MediaPolicy, bad: Any) -> tuple[StoryImage | None, Image | None]:
    """The ``image`` (link card picture) the edit keeps, as a picture whose version ``image`` is its sha256,
    and the image prepared from an uploaded file (as ``load`` prepares an ``image``)."""
    current = StoryImage(stored.image, "", {"image": stored.image_sha256}) if stored.image else None
    if listed:
        token = form.get(IMAGE_PIC)
        kept = read_token(secret, token, [current] if current else []) if isinstance(token, str) and token else None
        if kept is None and isinstance(token, str) and token:
            bad("image is not a picture this dashboard prepared (it restarted since the page was opened)",
                "open the story again, and choose the image's file again")
        current = kept
    if action == "remove" and target == "image":
        current = None
    upload = uploads.get(IMAGE_FILE)
    if upload is None:
        return current, None
    try:
        image = MediaLoader(dataclasses.replace(policy, media_dir=upload.parent, uploaded=True)).load(upload.name, None)
    except ImageError as exc:
        bad(exc.message, exc.hint)
        return current, None
    return StoryImage(upload.name, "", {"image": image.sha256}), image


@functools.lru_cache(maxsize=32)
def _card(headline: str, day: dt.date, category: str, source: str, targets: tuple[str, ...],
          policy: MediaPolicy) -> tuple[StoryImage, tuple[Image, ...]] | None:
    """The story card of a story with these fields (all it shows), drawn once: a preview per keystroke
    would otherwise draw it again each time (a few tenths of a second)."""
    drawn = with_card(Story(id="card", date=day, headline=headline, category=category, source=source), targets,
                      policy)
    return (drawn.images[0], drawn.prepared_pictures) if drawn.images else None


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    return text.replace("\r\n", "\n").replace("\r", "\n")  # a browser sends a text area's lines with \r\n


def _render(store: Store, settings: Settings, story: Story, row: StoryRow, templates: Any) -> list[PlatformPreview]:
    """Every platform's parts, as :func:`bot.ops.preview` renders a queued story."""
    due = _due(story, row, settings)
    options = dataclasses.replace(render_options(settings, templates, store), created_at=iso_utc(due))
    return [PlatformPreview(platform, PLATFORM_NAMES.get(platform, platform), render(story, platform, options))
            for platform in story_platforms(story, settings)]


def _due(story: Story, row: StoryRow, settings: Settings) -> dt.datetime:
    """When the edited story's root would be due (a date-only story keeps its slot on its day)."""
    if story.has_time:
        return timed_due(story, settings)
    day = window_day(story, settings)
    if day is None or row.window_day == day.isoformat():
        return row.root_due if row.root_due.tzinfo else row.root_due.replace(tzinfo=dt.UTC)
    return anniversary.window_slots(day, 1, window=settings.posting_window, bot_tz=settings.timezone)[0]


# ---------------------------------------------------------------------------- saving


@dataclasses.dataclass
class Saved:
    """The outcome of a save: refused (``problems``), or the load's report."""

    checked: Checked
    report: LoadReport | None = None
    problems: list[Problem] = dataclasses.field(default_factory=list)


def save(store: Store, settings: Settings, story_id: str, form: Mapping[str, Any], *, now: dt.datetime,
         templates: Any = None, uploads: Mapping[str, Path] | None = None, secret: bytes = b"") -> Saved:
    """Save an edit: refused with the loader's problems, or loaded as ``load`` loads a story (from the
    dashboard: recorded in the history, marked as edited there, its unsent posts rendered again).

    ``form["version"]``, when given, is the stored content hash the form was made from: a story changed
    meanwhile (another tab, a load, a capture) is not overwritten. ``uploads`` and ``secret``: see :func:`check`.
    """
    checked = check(store, settings, story_id, form, templates=templates, uploads=uploads, secret=secret)
    if not checked.ok or checked.story is None:
        return Saved(checked, problems=checked.problems)
    version = form.get("version")
    _, row = _stored(store, story_id)
    if isinstance(version, str) and version and version != row.content_hash:
        last = history(store, settings, story_id)[:1]
        when = f" ({last[0].source}, {settings.local_time(last[0].at)})" if last else ""
        return Saved(checked, problems=[Problem(ORIGIN, PROBLEM_LINE, story_id, f"the story was changed since this "
                                                f"form was opened{when}", "open the story again to see that change, "
                                                "then make your edit on it")])
    try:
        report = Planner(store, settings, templates=templates).load(
            [checked.story], now=now, source=ORIGIN,
            expected={story_id: version} if isinstance(version, str) and version else None)
    except StoryError as exc:
        return Saved(checked, problems=exc.problems)
    return Saved(checked, report)


# ---------------------------------------------------------------------------- history


@dataclasses.dataclass
class FieldChange:
    field: str
    old: str
    new: str


@dataclasses.dataclass
class ChangeView:
    at: dt.datetime
    source: str
    origin: str
    created: bool
    fields: list[FieldChange]


def history(store: Store, settings: Settings, story_id: str) -> list[ChangeView]:
    """Every recorded change of a story, newest first."""
    with store.session() as session:
        rows = list(session.scalars(select(StoryChangeRow).where(StoryChangeRow.story_id == story_id)
                                    .order_by(StoryChangeRow.at.desc(), StoryChangeRow.id.desc())))
    found = []
    for row in rows:
        changes = row.changes if isinstance(row.changes, dict) else None
        fields = [FieldChange(name, shown_value(name, pair[0]), shown_value(name, pair[1]))
                  for name, pair in (changes or {}).items() if isinstance(pair, list | tuple) and len(pair) == 2]
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
        found.append(ChangeView(at, row.source, row.origin, changes is None, fields))
    return found


def shown_value(field: str, value: Any) -> str:
    """A stored value of ``field`` as the history shows it: as a story file writes it, cut to :data:`SHORT`."""
    if value is None or value == "" or value == []:
        text = "(empty)"
    elif field == "followup_after" and isinstance(value, int | float):
        text = format_duration(dt.timedelta(seconds=value))
    elif field in PICTURE_FIELDS and isinstance(value, list):
        text = "; ".join(_shown_picture(item) if isinstance(item, dict) else str(item) for item in value)
    elif isinstance(value, list):
        text = ", ".join(map(str, value))
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    limit = SHORT * MAX_PICTURES if field in PICTURE_FIELDS else SHORT  # each picture's hash and alt text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shown_picture(item: dict[str, Any]) -> str:
    """``chart.png #1a2b3c4d (alt: …)``: a stored picture by its reference, the start of its sha256, its alt."""
    sha = _shown_version(StoryImage.from_dict(item))
    return f"{item.get('ref', '')}{f' #{sha[:8]}' if sha else ''} (alt: {item.get('alt', '')})"


# ---------------------------------------------------------------------------- the page


@dataclasses.dataclass
class FieldView:
    name: str
    value: str
    long: bool
    help: str
    choices: tuple[str, ...] = ()
    """The options of a select (``""``: the setting decides); empty for a text input."""


@dataclasses.dataclass
class EditorView:
    """What the story page's editor shows."""

    story_id: str
    fields: list[FieldView]
    pictures: list[PictureView]
    """The pictures the form keeps, each with its signed token (the story card is :attr:`card`)."""
    image: str
    version: str
    draft: bool
    edited_at: dt.datetime | None
    checked: Checked
    history: list[ChangeView]
    needs_reveal: bool
    image_sha256: str = ""
    image_token: str = ""
    card: PictureView | None = None
    max_pictures: int = MAX_PICTURES

    @property
    def problems(self) -> list[Problem]:
        return self.checked.problems

    def of(self, field: str) -> list[PictureView]:
        return [p for p in self.pictures if p.field == field]


def editor_view(store: Store, settings: Settings, story_id: str, *, now: dt.datetime, templates: Any = None,
                form: Mapping[str, Any] | None = None, checked: Checked | None = None,
                version: str = "", uploads: Mapping[str, Path] | None = None, secret: bytes = b"") -> EditorView:
    """The editor of a story: filled from ``form`` when given (a preview, a refused save), else from the
    stored story; with the preview of what it holds, and the story's history. ``version`` (else the
    form's) is the stored version the edit was made from, kept so that a save never overwrites a change
    made meanwhile. The pictures are those ``checked`` (or the form, or the story) keeps, each named by a
    token signed with ``secret``."""
    stored, row = _stored(store, story_id)
    if not version and form is not None and isinstance(form.get("version"), str):
        version = str(form.get("version"))
    if checked is None:
        if form is None:
            values = form_values(stored)
            form = {**values, **{p.name: p.alt for p in pictures_of(stored)}}
        checked = check(store, settings, story_id, form, templates=templates, uploads=uploads, secret=secret)
    values = checked.values
    pictures = [PictureView(field, i, image.ref, image.alt, _shown_version(image), False,
                            picture_token(secret, image.ref, image.versions), len(kept))
                for field, kept in checked.pictures.items() for i, image in enumerate(kept, start=1)]
    card = checked.card or next((i for i in stored.images if i.ref == CARD_REF), None)
    image = checked.image
    edited = row.edited_at.replace(tzinfo=dt.UTC) if row.edited_at and not row.edited_at.tzinfo else row.edited_at
    return EditorView(story_id, [FieldView(name, values.get(name, ""), name in LONG_FIELDS, HELP.get(name, ""),
                                           CHOICES.get(name, ()))
                                 for name in EDITABLE],
                      pictures, image.ref if image else "", version or row.content_hash, bool(row.draft), edited,
                      checked, history(store, settings, story_id),
                      bool(needs_reveal(store, now, settings.reveal_lead, story_id=story_id,
                                        followup_delay=settings.followup_delay)),
                      image.versions.get("image", "") if image else "",
                      picture_token(secret, image.ref, image.versions) if image else "",
                      PictureView("images", 1, CARD_REF, card.alt, _shown_version(card), True)
                      if card is not None and not checked.pictures.get("images") else None)


def _shown_version(image: StoryImage) -> str:
    """The version of a picture the editor shows: the largest platform's (X's), else any."""
    versions = dict(image.versions)
    return versions.get("x") or versions.get("mastodon") or next(iter(versions.values()), "")
