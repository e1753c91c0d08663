"""Turn loaded stories into queued deliveries, and keep them in step when stories are edited.

A delivery is one post: story x platform x kind (root or follow-up) x part. Loading computes
every story's due times (:mod:`posts.anniversary`) and renders every part (:mod:`posts.render`)
so that problems show at load time, never at posting time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shlex
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.accounts import remembered_limits
from bot.config import Settings
from bot.images import store_images
from bot.models import SENT, DeliveryRow, DiscardedStoryRow, StoryChangeRow, StoryRow
from bot.models import DeliveryStatus as S
from bot.quotas import DAY, day_counts
from bot.store import EncodedJSON, Store
from posts import anniversary
from posts.errors import Problem, StoryError, TemplateError
from posts.gcpause import gc_paused
from posts.mastodon_text import MastodonLimits
from posts.render import Part, RenderOptions, render, x_link_note
from posts.story import Story

log = logging.getLogger(__name__)

@dataclasses.dataclass
class LoadReport:
    """What a load did (or, with ``dry_run``, would do)."""

    stories: int = 0
    added: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: int = 0
    deliveries_added: int = 0
    deliveries_updated: int = 0
    deliveries_removed: int = 0
    moved: list[str] = dataclasses.field(default_factory=list)
    """Date-only stories whose time moved to make room for new ones on the same day."""
    too_late: list[str] = dataclasses.field(default_factory=list)
    """Changes that cannot reach posts already sent."""
    cuts: list[str] = dataclasses.field(default_factory=list)
    """Stories that had to be cut to fit a platform."""
    past_due: list[str] = dataclasses.field(default_factory=list)
    """Stories whose anniversary post is already past the grace period."""
    deferred: int = 0
    """New stories queued unrendered: each is rendered a day before it is due."""
    over_quota: list[str] = dataclasses.field(default_factory=list)
    """Days on which a platform would post more than its quota allows."""
    links: list[str] = dataclasses.field(default_factory=list)
    """Story URLs a platform would link only in part (X ends a link before some trailing characters)."""
    drafts: list[str] = dataclasses.field(default_factory=list)
    """New stories queued as drafts: never posted until approved."""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SOURCES = ("file", "capture", "dashboard", "approve")
"""Where a change of a story comes from (``story_changes.source``)."""

BULK_ROWS = 200
"""Loads and renderings of at least this many stories refresh the database's planner statistics."""


def render_options(settings: Settings, templates: Any = None, store: Store | None = None) -> RenderOptions:
    """How stories are rendered; with ``store``, against the limits each platform last announced
    (Mastodon: the instance's, remembered by :mod:`bot.accounts`), else the platforms' defaults."""
    options = RenderOptions(reddit_flair=settings.reddit_flair, templates=templates, lang=settings.lang,
                            replies={platform: settings.replies_for(platform) for platform in settings.platforms})
    if store is not None and "mastodon" in settings.platforms:
        limits = remembered_limits(store, "mastodon")
        if limits is not None:
            options = dataclasses.replace(options, mastodon_limits=MastodonLimits.from_dict(limits))
    return options


def operator_templates(settings: Settings) -> Any:
    """The operator's post templates (``ONEYEARAGO_TEMPLATES``), compiled and checked, or ``None`` for
    the built-in look: what ``load``, ``preview``, ``run`` and the dashboard all render with."""
    if settings.templates is None:
        return None
    from bot.sources.templates import load_templates

    return load_templates(settings.templates)


def plan_fingerprint(settings: Settings, templates: Any = None) -> str:
    """What, besides a story's content, decides its deliveries."""
    parts = [settings.timezone, str(settings.years), settings.leap_day,
             f"{settings.posting_window[0]}-{settings.posting_window[1]}",
             str(settings.followup_delay.total_seconds()), ",".join(settings.platforms),
             str(settings.reddit_flair), settings.lang,
             templates.fingerprint() if templates is not None else "builtin"]
    gates = {platform: settings.replies_for(platform) for platform in settings.platforms}
    if any(choice != "everyone" for choice in gates.values()):  # unset, the fingerprint stays as it was
        parts.append("replies=" + ",".join(f"{p}:{c}" for p, c in gates.items()))
    return "|".join(parts)


def encode_content(content: dict[str, Any]) -> str:
    """A story's content as canonical JSON: what its hash is taken of, and what the store keeps."""
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def content_hash(content: dict[str, Any] | str, fingerprint: str) -> str:
    """The hash that says whether a story (``content``, or its :func:`encode_content` text) changed."""
    text = content if isinstance(content, str) else encode_content(content)
    return hashlib.sha256((text + "\x00" + fingerprint).encode()).hexdigest()


def story_platforms(story: Story, settings: Settings) -> tuple[str, ...]:
    """The platforms a story goes to: its own list (if any) within the enabled ones."""
    if story.platforms:
        return tuple(p for p in settings.platforms if p in story.platforms)
    return settings.platforms


def window_day(story: Story, settings: Settings) -> dt.date | None:
    if story.has_time:
        return None
    return anniversary.anniversary_day(story.calendar_date, years=settings.years, leap_day=settings.leap_day)


def timed_due(story: Story, settings: Settings) -> dt.datetime:
    assert isinstance(story.date, dt.datetime)
    return anniversary.timed_root_due(story.date, story_tz=story.timezone, bot_tz=settings.timezone,
                                      years=settings.years, leap_day=settings.leap_day)


def desired_deliveries(story: Story, root_due: dt.datetime, settings: Settings,
                       options: RenderOptions) -> list[tuple[Part, dt.datetime]]:
    """Every part of ``story`` with its due time."""
    delay = story.followup_after or settings.followup_delay
    out = []
    if story.image and not story.image_sha256:
        log.warning("story %s was loaded before images were stored with the queue; its post goes without the "
                    "image (load the story again to store it)", story.id)
    for platform in story_platforms(story, settings):
        for part in render(story, platform, options):
            due = root_due if part.kind == "root" else anniversary.followup_due(root_due, delay)
            out.append((part, due))
    return out


EAGER_RENDER_LIMIT = 2000
"""Loads of up to this many new stories are rendered (and checked for cuts) at once; bigger ones
queue the stories alone and render each a day before it is due (or all at once with ``load --render``)."""

RENDER_AHEAD = dt.timedelta(days=1)
"""How far ahead of its root's due time the engine renders a story that is not rendered yet."""


class Planner:
    """Loads stories into a store: all or nothing, idempotent, edit-aware."""

    def __init__(self, store: Store, settings: Settings, *, templates: Any = None):
        self.store = store
        self.settings = settings
        self.templates = templates
        self.options = render_options(settings, templates, store)
        """Read again before each render (:meth:`refresh_options`): the remembered limits may change."""
        self.fingerprint = plan_fingerprint(settings, templates)

    def refresh_options(self) -> None:
        """Render against the limits the platforms last announced (a live run may have read new ones).

        They are not part of :func:`plan_fingerprint`: when they change, :func:`bot.accounts.remember_account`
        marks the stories still to be sent for rendering again, and a later load need not touch the rest.
        """
        self.options = render_options(self.settings, self.templates, self.store)

    def load(self, stories: Sequence[Story], *, now: dt.datetime, dry_run: bool = False,
             render: bool | None = None, progress: Callable[[int], None] | None = None,
             source: str = "file", force: bool = False, draft: bool | None = None,
             expected: Mapping[str, str] | None = None) -> LoadReport:
        """Queue ``stories``; with ``dry_run`` compute the report and roll everything back.

        ``render`` forces (True) or defers (False) rendering of new stories; by default loads of up
        to :data:`EAGER_RENDER_LIMIT` new stories are rendered at once.

        ``source`` says where the stories come from (:data:`SOURCES`), as each change's history records.
        New stories start as drafts when ``draft`` is true, or (``draft`` unset) when the settings require
        approval, or when the story itself says so (``draft: true`` in its file, as an export writes a
        draft). A draft stays one until approved; a load never withdraws an approval given in this queue. A load from a file refuses to overwrite a story changed in the dashboard since it was
        last loaded (a :class:`StoryError` naming the file and line), unless ``force``; a dashboard save
        marks the story as edited there, and a file load that finds the story as the dashboard left it
        (the file caught up, say by an export into it) clears that mark.

        ``expected``: story id -> the content hash the change was made from (a dashboard form's version).
        Each update is a compare-and-set on the hash read (or expected), so a change committed by
        someone else meanwhile is never silently overwritten: a :class:`StoryError` says so instead.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        report = LoadReport(stories=len(stories), dry_run=dry_run)
        self.refresh_options()
        if draft is None:
            draft = self.settings.require_approval or source == "capture"
        with gc_paused(), self.store.sessions() as session:
            try:
                self._load(session, stories, now, report, render, progress, source=source, force=force,
                           draft=draft, expected=expected or {})
            except BaseException:
                session.rollback()
                raise
            if dry_run:
                session.rollback()
            else:
                session.commit()
        if not dry_run and len(stories) >= BULK_ROWS:
            self.store.refresh_statistics()
        return report

    def render_stories(self, story_ids: Iterable[str], *, now: dt.datetime,
                       report: LoadReport | None = None) -> int:
        """Create the deliveries of the not-yet-rendered ``story_ids``; returns how many were rendered."""
        with self.store.session() as session:
            count = self._render(session, story_ids, now, report)
        if count >= BULK_ROWS:
            self.store.refresh_statistics()
        return count

    def _render(self, session: Session, story_ids: Iterable[str], now: dt.datetime,
                report: LoadReport | None) -> int:
        self.refresh_options()
        count = 0
        for chunk in _chunks(list(dict.fromkeys(story_ids)), 200):
            for row in session.scalars(select(StoryRow).where(StoryRow.id.in_(chunk), StoryRow.rendered.is_(False),
                                                              StoryRow.draft.is_(False))):
                item = Story.from_content(row.content)
                try:
                    wanted = desired_deliveries(item, row.root_due, self.settings, self.options)
                except (ValueError, TemplateError) as exc:
                    self._unrenderable(session, item, row.root_due, str(exc), now)
                else:
                    self._sync(session, item, wanted, now, report or LoadReport())
                row.rendered = True
                count += 1
        return count

    def render_due(self, until: dt.datetime, *, now: dt.datetime, limit: int = 500,
                   session: Session | None = None) -> int:
        """Render the stories due by ``until`` that are not rendered yet (the engine calls this each sweep).

        With ``session``, in that session's transaction, which the caller commits or rolls back (a dry run).
        """
        due = (select(StoryRow.id).where(StoryRow.rendered.is_(False), StoryRow.draft.is_(False),
                                         StoryRow.root_due <= until)
               .order_by(StoryRow.root_due).limit(limit))
        if session is not None:
            return self._render(session, list(session.scalars(due)), now, None)
        with self.store.session() as own:
            ids = list(own.scalars(due))
        return self.render_stories(ids, now=now) if ids else 0

    def rendered_in_memory(self, start: dt.datetime, end: dt.datetime, *, now: dt.datetime) -> list[DeliveryRow]:
        """The posts that the stories not rendered yet will have in ``[start, end)``, rendered in memory.

        Nothing is stored: the rows are detached and have no id (a follow-up is looked for up to a
        week after its root). A story that cannot be rendered shows as failed roots that say why, as
        rendering it for real would leave it. Storing them is the engine's job (a day ahead) or the
        loader's.
        """
        self.refresh_options()
        with self.store.session() as session:
            stories = list(session.execute(select(StoryRow.content, StoryRow.root_due).where(
                StoryRow.rendered.is_(False), StoryRow.draft.is_(False), StoryRow.root_due >= start - dt.timedelta(days=7),
                StoryRow.root_due < end)))
        shown: list[DeliveryRow] = []
        for content, root_due in stories:
            item = Story.from_content(content)
            try:
                values = [self._row(item.id, part, due, now)
                          for part, due in desired_deliveries(item, root_due, self.settings, self.options)]
            except (ValueError, TemplateError) as exc:
                values = self._unrenderable_rows(item, root_due, str(exc), now)
            shown.extend(DeliveryRow(**{("limit" if k == "length_limit" else k): v for k, v in row.items()})
                         for row in values if start <= row["due_at"] < end)
        return shown

    def next_render(self) -> dt.datetime | None:
        """When the next unrendered story has to be rendered."""
        with self.store.session() as session:
            due = session.scalar(select(func.min(StoryRow.root_due)).where(StoryRow.rendered.is_(False),
                                                                           StoryRow.draft.is_(False)))
        if due is None:
            return None
        due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
        return due - RENDER_AHEAD

    # ------------------------------------------------------------------ internals

    def _load(self, session: Session, stories: Sequence[Story], now: dt.datetime, report: LoadReport,
              render: bool | None, progress: Callable[[int], None] | None, *, source: str = "file",
              force: bool = False, draft: bool = False, expected: Mapping[str, str] | None = None) -> None:
        expected = expected or {}
        existing: dict[str, tuple[str, int, dt.datetime, str | None]] = {}
        drafts: set[str] = set()
        edited: dict[str, dt.datetime] = {}
        origins: dict[str, str] = {}
        ids = [s.id for s in stories]
        for chunk in _chunks(ids, 500):
            for sid, chash, seq, due, day, is_draft, edited_at, origin in session.execute(
                select(StoryRow.id, StoryRow.content_hash, StoryRow.seq, StoryRow.root_due, StoryRow.window_day,
                       StoryRow.draft, StoryRow.edited_at, StoryRow.origin)
                .where(StoryRow.id.in_(chunk))
            ):
                existing[sid] = (chash, seq, due, day)
                origins[sid] = origin or ""
                if is_draft:
                    drafts.add(sid)
                if edited_at is not None:
                    edited[sid] = edited_at
        next_seq = (session.scalar(select(func.max(StoryRow.seq))) or 0) + 1
        edited_contents = self._old_contents(session, list(edited)) if source != "dashboard" and not force else {}
        changed: list[tuple[Story, str, bool]] = []  # (story, hash, is_new)
        conflicts: list[Problem] = []
        contents: dict[str, dict[str, Any]] = {}
        touched_days: set[str] = set()
        days: dict[str, dt.date | None] = {}
        caught_up: list[tuple[str, str]] = []  # (id, hash) of edited stories a file now holds as they are
        moved: list[dict[str, str]] = []  # unchanged stories that a file holds at another place now
        for story in stories:
            content = story.content()
            text = encode_content(content)
            contents[story.id] = EncodedJSON(content, text)  # serialised once: hashed, then stored as is
            chash = content_hash(text, self.fingerprint)
            old = existing.get(story.id)
            if story.id in expected and (old is None or old[0] != expected[story.id]):
                conflicts.append(_problem(story, "was changed meanwhile (by a load, a capture or another tab) "
                                                 "since this edit began", _CHANGED_HINT))
                continue
            if old is not None and old[0] == chash:
                report.unchanged += 1
                if source == "file" and story.id in edited:
                    caught_up.append((story.id, chash))
                if source == "file" and os.path.isabs(_file_of(story.origin)) \
                        and _file_of(origins[story.id]) != _file_of(story.origin):  # (an upload names no path)
                    moved.append({"b_id": story.id, "b_hash": chash, "b_origin": story.origin})
                continue
            if old is not None and source != "dashboard" and story.id in edited and not force \
                    and encode_content(edited_contents.get(story.id) or {}) != text:
                # (the same content under other settings or templates is the file caught up, not a conflict)
                conflicts.append(_problem(story, f"was edited in the dashboard on {edited[story.id]:%Y-%m-%d %H:%M} "
                                                 "UTC since it was last loaded; this file's version differs",
                                          f"keep the edit with `{_keep_edit_command(story.origin)}`, or load "
                                          "with --force to overwrite it"))
                continue
            changed.append((story, chash, old is None))
            if story.url and "x" in story_platforms(story, self.settings) \
                    and (note := x_link_note(story.url)) is not None:
                report.links.append(f"{story.id}: {note}")
            day = days[story.id] = window_day(story, self.settings)  # type: ignore[assignment]
            if day is not None:
                touched_days.add(day.isoformat())  # type: ignore[attr-defined]
            if old is not None and old[3]:
                touched_days.add(old[3])
        if conflicts:
            raise StoryError(conflicts)
        for sid, chash in caught_up:  # the file caught up with the dashboard: later file changes load again
            session.execute(update(StoryRow).where(StoryRow.id == sid, StoryRow.content_hash == chash)
                            .values(edited_at=None).execution_options(synchronize_session=False))
        # the file a story now stands in, for `export --from FILE` and for where its pictures are relative to
        table = StoryRow.__table__
        for part in _chunks(moved, 2000):
            session.execute(table.update().where(table.c.id == bindparam("b_id"),  # type: ignore[attr-defined]
                                                 table.c.content_hash == bindparam("b_hash"))  # type: ignore[attr-defined]
                            .values(origin=bindparam("b_origin")), part)
        new_count = sum(1 for _, _, is_new in changed if is_new)
        eager = render if render is not None else new_count <= EAGER_RENDER_LIMIT
        report.deferred = 0 if eager else new_count
        # Due times: timed stories directly; date-only stories share their day's posting window in
        # load order, so the slots of each touched day are computed over old and new stories alike.
        seqs: dict[str, int] = {}
        for story, _chash, is_new in changed:
            if is_new:
                seqs[story.id] = next_seq
                next_seq += 1
        root_due: dict[str, dt.datetime] = {s.id: timed_due(s, self.settings) for s, _, _ in changed if s.has_time}
        slot_due = self._spread_days(session, touched_days, {
            sid: (day.isoformat(), seqs[sid] if sid in seqs else existing[sid][1])
            for sid, day in days.items() if day is not None})
        changed_ids = {s.id for s, _, _ in changed}
        old_contents = self._old_contents(session, [s.id for s, _, is_new in changed if not is_new])
        new_rows = []
        history: list[dict[str, Any]] = []
        edited_at = now if source == "dashboard" else None
        for story, chash, is_new in changed:
            day = days[story.id]  # type: ignore[assignment]
            due = root_due[story.id] if day is None else slot_due[story.id]
            root_due[story.id] = due
            values = {"content": contents[story.id], "content_hash": chash, "origin": story.origin,
                      "window_day": day.isoformat() if day else None,  # type: ignore[attr-defined]
                      "root_due": due, "updated_at": now, "edited_at": edited_at}
            if is_new:
                new_draft = draft or story.draft
                new_rows.append({"id": story.id, "seq": seqs[story.id], "created_at": now,
                                 "rendered": eager and not new_draft, "draft": new_draft, **values})
                if new_draft:
                    report.drafts.append(story.id)
                history.append({"story_id": story.id, "at": now, "source": source, "origin": story.origin,
                                "changes": None})
            else:
                is_draft = story.id in drafts
                # Compare-and-set on what was read: a change committed meanwhile (a dashboard save, another
                # load) makes this update find no row instead of silently reverting that change.
                was_edited = edited.get(story.id)
                guard = [StoryRow.id == story.id, StoryRow.content_hash == existing[story.id][0],
                         StoryRow.edited_at.is_(None) if was_edited is None else StoryRow.edited_at == was_edited]
                written = session.execute(update(StoryRow).where(*guard).values(rendered=not is_draft, **values)
                                          .execution_options(synchronize_session=False))
                if written.rowcount != 1:  # type: ignore[attr-defined]
                    raise StoryError([_problem(
                        story, "was changed meanwhile (in the dashboard, or by another load) while this change "
                               "was being made; nothing was written",
                        _CHANGED_HINT if source == "dashboard" else
                        "load again: the file is then compared with the story as it is now")])
                history.append({"story_id": story.id, "at": now, "source": source, "origin": story.origin,
                                "changes": content_changes(old_contents.get(story.id) or {}, contents[story.id])})
        for chunk in _chunks(new_rows, 2000):
            session.execute(StoryRow.__table__.insert(), chunk)  # type: ignore[attr-defined]
        for chunk in _chunks(history, 2000):
            session.execute(StoryChangeRow.__table__.insert(), chunk)  # type: ignore[attr-defined]
        # the images of the stories written, by hash, in the same transaction as the stories
        store_images(session, [image for s, _, _ in changed
                               for image in (s.prepared_image, *s.prepared_pictures) if image is not None], now)
        inserts: list[dict[str, Any]] = []
        problems: list[Problem] = []
        for done, (story, _chash, is_new) in enumerate(changed, start=1):
            due = root_due[story.id]
            if due < now - self.settings.grace:
                report.past_due.append(f"{story.id}: anniversary was {due:%Y-%m-%d %H:%M} UTC")
            is_draft = (is_new and (draft or story.draft)) or story.id in drafts
            if not eager and (is_new or is_draft):
                (report.added if is_new else report.updated).append(story.id)
            else:
                try:
                    wanted = desired_deliveries(story, due, self.settings, self.options)
                except (ValueError, TemplateError) as exc:
                    problems.append(_problem(story, f"cannot be rendered: {exc}",
                                             "shorten the headline, or fix the template it names"))
                    continue
                report.cuts += [f"{story.id}: cut to fit {part.platform} ({part.kind})" for part, _ in wanted
                                if part.cut]
                if is_draft:  # checked as any story is; its posts are made when it is approved
                    (report.added if is_new else report.updated).append(story.id)
                elif is_new:
                    report.added.append(story.id)
                    inserts += [self._row(story.id, part, when, now) for part, when in wanted]
                    report.deliveries_added += len(wanted)
                else:
                    report.updated.append(story.id)
                    self._sync(session, story, wanted, now, report)
            if len(inserts) >= 5000:
                session.execute(DeliveryRow.__table__.insert(), inserts)  # type: ignore[attr-defined]
                inserts = []
            if progress is not None and done % 1000 == 0:
                progress(done)
        if problems:
            raise StoryError(problems)
        if inserts:
            session.execute(DeliveryRow.__table__.insert(), inserts)  # type: ignore[attr-defined]
        # Stories of earlier loads that moved only because their day got busier.
        for sid, due in slot_due.items():
            if sid not in changed_ids and self._move_unsent(session, sid, due, now):
                report.moved.append(f"{sid}: now due {due:%Y-%m-%d %H:%M} UTC")
        report.over_quota = self._over_quota(session, sorted(root_due.values()))

    @staticmethod
    def _old_contents(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids, 500):
            found.update((sid, content) for sid, content in
                         session.execute(select(StoryRow.id, StoryRow.content).where(StoryRow.id.in_(chunk))))
        return found

    def approve(self, story_ids: Sequence[str], *, now: dt.datetime, origin: str = "cli") -> ApproveReport:
        """Make drafts part of the queue: rendered now (their posts checked as a load checks them)."""
        report = ApproveReport()
        with self.store.session() as session:
            rows = {row.id: row for chunk in _chunks(list(dict.fromkeys(story_ids)), 500)
                    for row in session.scalars(select(StoryRow).where(StoryRow.id.in_(chunk)))}
            for sid in dict.fromkeys(story_ids):
                row = rows.get(sid)
                if row is None:
                    report.unknown.append(sid)
                elif not row.draft:
                    report.not_drafts.append(sid)
                else:  # compare-and-set: a discard or another approve committed since the read wins
                    done = session.execute(update(StoryRow).where(StoryRow.id == sid, StoryRow.draft.is_(True))
                                           .values(draft=False, rendered=False, updated_at=now)
                                           .execution_options(synchronize_session=False))
                    if done.rowcount != 1:  # type: ignore[attr-defined]
                        still = session.scalar(select(StoryRow.id).where(StoryRow.id == sid))
                        (report.not_drafts if still is not None else report.unknown).append(sid)
                        continue
                    session.add(StoryChangeRow(story_id=sid, at=now, source="approve", origin=origin,
                                               changes={"draft": [True, False]}))
                    report.approved.append(sid)
        if report.approved:
            self.render_stories(report.approved, now=now)
        return report

    def discard(self, story_ids: Sequence[str], *, now: dt.datetime, origin: str = "cli") -> DiscardReport:
        """Delete unwanted drafts, remembering each (its id and url, with its content) in
        ``discarded_stories`` so that ``capture`` never captures its feed entry again.

        Only drafts: a story in the queue is never deleted here (``skip`` stops its posts). The delete is
        conditional on the story still being a draft, so an ``approve`` committed meanwhile wins.
        """
        report = DiscardReport()
        wanted = list(dict.fromkeys(story_ids))
        with self.store.session() as session:
            found = {sid: (is_draft, content) for chunk in _chunks(wanted, 500)
                     for sid, is_draft, content in session.execute(
                         select(StoryRow.id, StoryRow.draft, StoryRow.content).where(StoryRow.id.in_(chunk)))}
            for sid in wanted:
                if sid not in found:
                    report.unknown.append(sid)
                    continue
                is_draft, content = found[sid]
                deleted = is_draft and session.execute(
                    delete(StoryRow).where(StoryRow.id == sid, StoryRow.draft.is_(True))
                    .execution_options(synchronize_session=False)).rowcount == 1  # type: ignore[attr-defined]
                if not deleted:
                    report.not_drafts.append(sid)
                    continue
                session.merge(DiscardedStoryRow(story_id=sid, url=str(content.get("url") or ""), discarded_at=now,
                                                origin=origin, content=content))
                report.discarded.append(sid)
        return report

    def _over_quota(self, session: Session, dues: list[dt.datetime]) -> list[str]:
        """Days touched by this load on which a platform would go over a quota (as the engine counts:
        rolling windows, the day before each day included)."""
        if not dues:
            return []
        zone = ZoneInfo(self.settings.timezone)
        days = sorted({d.astimezone(zone).date() for d in dues})
        lines = []
        for chunk in _chunks(days, 60):
            start = dt.datetime.combine(chunk[0], dt.time(), zone).astimezone(dt.UTC) - DAY
            end = dt.datetime.combine(chunk[-1] + dt.timedelta(days=2), dt.time(), zone).astimezone(dt.UTC)
            rows = list(session.scalars(select(DeliveryRow).where(DeliveryRow.due_at >= start,
                                                                  DeliveryRow.due_at < end)))
            wanted = {d.isoformat() for d in chunk}
            lines += [f"{c.day} {c.platform}: {'; '.join(c.over)}"
                      for c in day_counts(rows, self.settings, days=wanted) if c.over]
        return lines

    def _unrenderable(self, session: Session, story: Story, root_due: dt.datetime, reason: str,
                      now: dt.datetime) -> None:
        """A story that cannot be rendered any more gets failed roots that say why (``retry`` re-renders)."""
        log.error("story %s cannot be rendered: %s", story.id, reason)
        rows = self._unrenderable_rows(story, root_due, reason, now)
        if rows:
            session.execute(DeliveryRow.__table__.insert(), rows)  # type: ignore[attr-defined]

    def _unrenderable_rows(self, story: Story, root_due: dt.datetime, reason: str,
                           now: dt.datetime) -> list[dict[str, Any]]:
        return [{**self._base(story.id, platform, "root", 1, 1, root_due, now), "status": S.FAILED,
                 "payload": {}, "text": "", "length": 0, "length_limit": 0, "unit": "",
                 "last_error": f"cannot be rendered: {reason}"} for platform in story_platforms(story, self.settings)]

    @staticmethod
    def _base(story_id: str, platform: str, kind: str, part: int, parts: int, due: dt.datetime,
              now: dt.datetime) -> dict[str, Any]:
        return {"story_id": story_id, "platform": platform, "kind": kind, "part": part, "parts": parts,
                "due_at": due, "status": S.PENDING, "key": None, "attempts": 0, "created_at": now,
                "updated_at": now}

    def _row(self, story_id: str, part: Part, due: dt.datetime, now: dt.datetime) -> dict[str, Any]:
        return {**self._base(story_id, part.platform, part.kind, part.part, part.parts, due, now),
                "payload": dict(part.payload), "attachments": dict(part.attachments) or None,
                "pictures": _pictures(part), "text": part.text,
                "length": part.length, "length_limit": part.limit, "unit": part.unit}

    def _spread_days(self, session: Session, days: set[str], loading: dict[str, tuple[str, int]]
                     ) -> dict[str, dt.datetime]:
        """The due time of every date-only story on ``days``, spread over the window in load order.

        ``loading`` gives the (day, load-order number) of the stories of this load, which may not be
        in the database yet, or may be moving to another day.
        """
        result: dict[str, dt.datetime] = {}
        members: dict[str, dict[str, int]] = defaultdict(dict)
        for chunk in _chunks(sorted(days), 500):
            for sid, day, seq in session.execute(
                select(StoryRow.id, StoryRow.window_day, StoryRow.seq).where(StoryRow.window_day.in_(chunk))
            ):
                if sid not in loading:
                    members[day][sid] = seq  # type: ignore[index]
        for sid, (day, seq) in loading.items():
            members[day][sid] = seq
        by_day = {day: sorted(ids, key=ids.__getitem__) for day, ids in members.items() if day in days}
        for day, sids in by_day.items():
            slots = anniversary.window_slots(dt.date.fromisoformat(day), len(sids),
                                             window=self.settings.posting_window, bot_tz=self.settings.timezone)
            result.update(zip(sids, slots, strict=True))
        return result

    def _move_unsent(self, session: Session, story_id: str, root_due: dt.datetime, now: dt.datetime) -> bool:
        old = session.scalar(select(StoryRow.root_due).where(StoryRow.id == story_id))
        if old == root_due:
            return False
        shift = root_due - old if old is not None else None
        session.execute(update(StoryRow).where(StoryRow.id == story_id).values(root_due=root_due))
        for row in session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == story_id)):
            if row.status in SENT:
                continue
            _update_unsent(session, row, due_at=root_due if row.kind == "root" or shift is None
                           else row.due_at + shift, updated_at=now)
        return True

    def _sync(self, session: Session, story: Story, wanted: list[tuple[Part, dt.datetime]],
              now: dt.datetime, report: LoadReport) -> None:
        """Make a story's deliveries match ``wanted``, never touching what may already be posted."""
        rows = {(r.platform, r.kind, r.part): r
                for r in session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == story.id))}
        seen = set()
        for part, due in wanted:
            slot = (part.platform, part.kind, part.part)
            seen.add(slot)
            row = rows.get(slot)
            if row is None:
                session.execute(DeliveryRow.__table__.insert(), [self._row(story.id, part, due, now)])  # type: ignore[attr-defined]
                report.deliveries_added += 1
                continue
            same_text = (row.text == part.text and row.due_at == due and row.parts == part.parts
                         and row.payload == dict(part.payload))
            same_post = same_text and row.limit == part.limit  # the limit: an instance may announce new ones
            attachments = dict(part.attachments) or None
            pictures = _pictures(part)
            if same_post and (row.attachments or None) == attachments and (row.pictures or None) == pictures:
                continue
            # Only a row not yet claimed is changed, checked by the update itself: a worker may claim it
            # between this load's read and its write, and what it sends must stay what is recorded.
            if row.status not in SENT and _update_unsent(session, row, text=part.text,
                                                                  payload=dict(part.payload), due_at=due,
                                                                  parts=part.parts, length=part.length,
                                                                  limit=part.limit, unit=part.unit,
                                                                  attachments=attachments, pictures=pictures,
                                                                  media=None, updated_at=now):
                report.deliveries_updated += 1
                continue
            if same_text:
                continue  # only the pictures or the limit changed, and the post has gone out already
            what = "text" if row.text != part.text else "time"
            report.too_late.append(f"{story.id}: {part.platform} {part.kind}"
                                   f"{f' part {part.part}' if part.parts > 1 else ''} is already "
                                   f"{row.status}; the new {what} will not be posted")
        for slot, row in rows.items():
            if slot in seen:
                continue
            if row.status not in SENT and _delete_unsent(session, row):
                report.deliveries_removed += 1
                continue
            report.too_late.append(f"{story.id}: {row.platform} {row.kind} part {row.part} is already "
                                   f"{row.status} and stays, though the edited story no longer has it")


@dataclasses.dataclass
class ApproveReport:
    """What ``approve`` did."""

    approved: list[str] = dataclasses.field(default_factory=list)
    not_drafts: list[str] = dataclasses.field(default_factory=list)
    """Stories already part of the queue (left as they were)."""
    unknown: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DiscardReport:
    """What ``discard`` did."""

    discarded: list[str] = dataclasses.field(default_factory=list)
    not_drafts: list[str] = dataclasses.field(default_factory=list)
    """Stories in the queue (approved): left as they were (``skip`` stops their posts)."""
    unknown: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def content_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed between two story contents: field -> ``[old, new]`` (the prepared images' hashes
    are part of the ``images`` fields)."""
    return {key: [old.get(key), new.get(key)] for key in dict.fromkeys([*old, *new])
            if old.get(key) != new.get(key)}


def _update_unsent(session: Session, row: DeliveryRow, **values: Any) -> bool:
    """Change a delivery only if it is still not claimed; whether it was (``row`` follows either way).

    The condition is part of the UPDATE, so it holds against a worker claiming the row meanwhile
    (on PostgreSQL the update waits for that claim's transaction, then sees the row as it left it).
    """
    changed = session.execute(update(DeliveryRow).where(DeliveryRow.id == row.id,  # type: ignore[attr-defined]
                                                        DeliveryRow.status.not_in(SENT))
                              .values(**values).execution_options(synchronize_session=False)).rowcount == 1
    if changed:
        for key, value in values.items():
            set_committed_value(row, key, value)
    else:
        session.refresh(row)
    return changed


def _delete_unsent(session: Session, row: DeliveryRow) -> bool:
    """Delete a delivery only if it is still not claimed; whether it was."""
    deleted = session.execute(delete(DeliveryRow).where(DeliveryRow.id == row.id,  # type: ignore[attr-defined]
                                                        DeliveryRow.status.not_in(SENT))
                              .execution_options(synchronize_session=False)).rowcount == 1
    if deleted:
        session.expunge(row)
    else:
        session.refresh(row)
    return deleted


_CHANGED_HINT = "reload the page to see that change, then make your edit on it"


def _file_of(origin: str) -> str:
    """The file of an origin ``FILE:LINE`` (a story whose lines merely moved in its file is not rewritten)."""
    return origin.rpartition(":")[0] or origin


def _shown_file(file: str) -> str:
    """A story file as messages name it: relative to the current folder when it lies in it, as the path
    typed on the command line mostly is (origins hold absolute paths), else absolute."""
    if not os.path.isabs(file):
        return file
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive
        return file
    return relative if relative != ".." and not relative.startswith(".." + os.sep) else file


def _keep_edit_command(origin: str) -> str:
    """The export that writes the stories of the story file of ``origin`` back into it, dashboard edits
    included (a Markdown file holds one story: its folder is written)."""
    file = _file_of(origin)
    path = _shown_file(file)
    shown = shlex.quote(path)
    if file.endswith(".md"):
        return f"oneyearago export --from {shown} --format md --out {shlex.quote(os.path.dirname(path) or '.')}"
    return f"oneyearago export --from {shown} --out {shown}"


def _problem(story: Story, message: str, hint: str) -> Problem:
    file, _, line = story.origin.rpartition(":")
    return Problem(_shown_file(file or story.origin), int(line) if line.isdigit() else 0, story.id, message, hint)


def _chunks(items: Sequence[Any] | Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _pictures(part: Part) -> list[dict[str, str]] | None:
    """A part's pictures as the delivery keeps them (``None``: none)."""
    return [picture.to_dict() for picture in part.pictures] or None
