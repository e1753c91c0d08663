"""The story editor of the dashboard: the form, its live preview, saving, the history, and the stories
that need a reveal.

Nothing here renders HTML or posts: an edit is validated by :func:`bot.sources.stories.validate_record`
(the loader's own checks and messages), rendered by :func:`posts.render.render` with the options
``preview`` uses, and saved by :meth:`bot.planner.Planner.load` with ``source="dashboard"``, which keeps
the history, marks the story as edited, and re-renders the posts not sent yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select

from bot.config import Settings
from bot.images import media_policy
from bot.models import StoryChangeRow, StoryRow
from bot.planner import LoadReport, Planner, render_options, story_platforms, timed_due, window_day
from bot.sources.images import MediaLoader
from bot.sources.stories import CARD_REF, check_pictures, validate_record
from bot.store import Store
from posts import anniversary
from posts.durations import format_duration
from posts.errors import NotFound, Problem, StoryError, TemplateError
from posts.render import Part, iso_utc, render
from posts.replies import REPLIES
from posts.story import FIELDS, PLATFORM_NAMES, Story, StoryImage

ORIGIN = "dashboard"
"""Where a story saved in the dashboard says it came from (its ``origin``, its history, its problems)."""
PROBLEM_LINE = 0
"""The line problems of a dashboard edit are located at (``dashboard:0``): the form has no lines."""
EDITABLE: tuple[str, ...] = tuple(f for f in FIELDS if f not in ("id", "image", "images", "followup_images"))
"""The fields the editor has an input for; the id is fixed, pictures are stored (only their alt text is edited)."""
LONG_FIELDS = frozenset({"summary", "body", "one_year_later"})
"""Fields edited in a text area."""
CHOICES: dict[str, tuple[str, ...]] = {"replies": ("", *REPLIES)}
"""Fields edited with a select: their choices (the empty one: the setting decides)."""
PICTURE_FIELDS = ("images", "followup_images")
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


def alt_name(field: str, index: int) -> str:
    """The form field of the alt text of picture ``index`` (from 1) of ``field``."""
    return f"{field}.{index}.alt"


@dataclasses.dataclass
class PictureView:
    field: str
    index: int
    ref: str
    alt: str
    sha256: str
    card: bool

    @property
    def name(self) -> str:
        return alt_name(self.field, self.index)


@dataclasses.dataclass
class PlatformPreview:
    platform: str
    name: str
    parts: list[Part]


@dataclasses.dataclass
class Checked:
    """An edit validated and rendered: the story (``None`` when refused), its problems, its parts."""

    story: Story | None
    problems: list[Problem]
    platforms: list[PlatformPreview]
    values: dict[str, str]
    alts: dict[str, str]

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
                     "checks": [{**dataclasses.asdict(c), "ok": c.ok} for c in part.checks]}
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


def check(store: Store, settings: Settings, story_id: str, form: Mapping[str, Any], *,
          templates: Any = None) -> Checked:
    """Validate the edited fields in ``form`` as ``load`` validates a story file, then render every
    platform's parts as ``preview`` renders them. The story keeps its id and its stored pictures (their
    alt text as edited); problems are located at ``dashboard:0``."""
    stored, row = _stored(store, story_id)
    values = {name: _field(form, name) for name in EDITABLE}
    raw: dict[str, Any] = {"id": story_id, **values}
    problems: list[Problem] = []
    policy = media_policy(settings, store=store)
    story = validate_record(raw, ORIGIN, PROBLEM_LINE, problems, base=None, media=MediaLoader(policy))
    alts = {p.name: (_field(form, p.name) if p.name in form else p.alt) for p in pictures_of(stored)
            if not p.card}
    if story is not None:
        targets = tuple(p for p in story.platforms) or policy.platforms
        kept: dict[str, tuple[StoryImage, ...]] = {}
        for field in PICTURE_FIELDS:
            images: tuple[StoryImage, ...] = getattr(stored, field)
            if not images or images[0].ref == CARD_REF:
                continue  # none, or the card: drawn again from the edited headline by validate_record
            edited = [dataclasses.replace(image, alt=alts.get(alt_name(field, i), image.alt))
                      for i, image in enumerate(images, start=1)]
            before = len(problems)
            check_pictures([{"path": image.ref, "alt": image.alt} for image in edited], field, targets, policy,
                           problems, ORIGIN, PROBLEM_LINE, story_id)
            if len(problems) == before:
                kept[field] = tuple(edited)
        replaced: dict[str, Any] = {"image": stored.image, "image_sha256": stored.image_sha256, "prepared_image": None}
        if kept.get("images"):
            replaced.update(images=kept["images"], prepared_pictures=())  # no card: the pictures stay
        if kept.get("followup_images"):
            replaced["followup_images"] = kept["followup_images"]
        story = dataclasses.replace(story, origin=ORIGIN, **replaced)
    platforms: list[PlatformPreview] = []
    if story is not None and not problems:
        try:
            platforms = _render(store, settings, story, row, templates)
        except (ValueError, TemplateError) as exc:
            problems.append(Problem(ORIGIN, PROBLEM_LINE, story_id, f"cannot be rendered: {exc}",
                                    "shorten the headline, or fix the template it names"))
    return Checked(story if not problems else None, problems, platforms, values, alts)


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
         templates: Any = None) -> Saved:
    """Save an edit: refused with the loader's problems, or loaded as ``load`` loads a story (from the
    dashboard: recorded in the history, marked as edited there, its unsent posts rendered again).

    ``form["version"]``, when given, is the stored content hash the form was made from: a story changed
    meanwhile (another tab, a load, a capture) is not overwritten.
    """
    checked = check(store, settings, story_id, form, templates=templates)
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
        report = Planner(store, settings, templates=templates).load([checked.story], now=now, source=ORIGIN)
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
        text = "; ".join(f"{item.get('ref', '')} (alt: {item.get('alt', '')})" if isinstance(item, dict) else str(item)
                         for item in value)
    elif isinstance(value, list):
        text = ", ".join(map(str, value))
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHORT else text[:SHORT - 1] + "…"


# ---------------------------------------------------------------------------- reveals


@dataclasses.dataclass
class RevealView:
    story_id: str
    headline: str
    root_due: dt.datetime
    draft: bool


def needing_reveal(store: Store, settings: Settings, *, now: dt.datetime, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> list[RevealView]:
    """The stories due within ``settings.reveal_lead`` from ``now`` (and within ``[start, end)`` when
    given) whose ``one_year_later`` is empty, soonest first (drafts too)."""
    content = StoryRow.content
    reveal = content["one_year_later"].as_string()
    low = max(now, start) if start is not None else now
    high = min(now + settings.reveal_lead, end) if end is not None else now + settings.reveal_lead
    with store.session() as session:
        found = session.execute(
            select(StoryRow.id, content["headline"].as_string(), StoryRow.root_due, StoryRow.draft)
            .where(StoryRow.root_due >= low, StoryRow.root_due < high,
                   or_(reveal.is_(None), reveal == ""))
            .order_by(StoryRow.root_due, StoryRow.id)).all()
    return [RevealView(sid, headline or "", due if due.tzinfo else due.replace(tzinfo=dt.UTC), bool(draft))
            for sid, headline, due, draft in found]


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
    image: str
    version: str
    draft: bool
    edited_at: dt.datetime | None
    checked: Checked
    history: list[ChangeView]
    needs_reveal: bool

    @property
    def problems(self) -> list[Problem]:
        return self.checked.problems


def editor_view(store: Store, settings: Settings, story_id: str, *, now: dt.datetime, templates: Any = None,
                form: Mapping[str, Any] | None = None, checked: Checked | None = None,
                version: str = "") -> EditorView:
    """The editor of a story: filled from ``form`` when given (a preview, a refused save), else from the
    stored story; with the preview of what it holds, and the story's history. ``version`` (else the
    form's) is the stored version the edit was made from, kept so that a save never overwrites a change
    made meanwhile."""
    stored, row = _stored(store, story_id)
    if not version and form is not None and isinstance(form.get("version"), str):
        version = str(form.get("version"))
    if checked is None:
        if form is None:
            values = form_values(stored)
            form = {**values, **{p.name: p.alt for p in pictures_of(stored)}}
        checked = check(store, settings, story_id, form, templates=templates)
    values = checked.values
    pictures = [dataclasses.replace(p, alt=checked.alts.get(p.name, p.alt)) for p in pictures_of(stored)]
    due = row.root_due if row.root_due.tzinfo else row.root_due.replace(tzinfo=dt.UTC)
    edited = row.edited_at.replace(tzinfo=dt.UTC) if row.edited_at and not row.edited_at.tzinfo else row.edited_at
    return EditorView(story_id, [FieldView(name, values.get(name, ""), name in LONG_FIELDS, HELP.get(name, ""),
                                           CHOICES.get(name, ()))
                                 for name in EDITABLE],
                      pictures, stored.image, version or row.content_hash, bool(row.draft), edited, checked,
                      history(store, settings, story_id),
                      not stored.one_year_later and now <= due < now + settings.reveal_lead)
