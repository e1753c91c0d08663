"""What a sweep would send at a given time, changing nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.engine import queries
from bot.engine.events import RunReport
from bot.models import DeliveryRow, StoryRow
from bot.models import Status as S
from posts.render import render
from posts.story import Story

if TYPE_CHECKING:
    from bot.engine.engine import Engine


def dry_run(engine: Engine, now: dt.datetime, report: RunReport) -> None:
    """What ``run_once`` would send at ``now``, changing nothing."""
    cutoff = now - engine.settings.grace
    with engine.store.session() as session:
        blocks = queries.platform_blocks(session, now)
        rows = list(session.scalars(
            select(DeliveryRow).where(DeliveryRow.status == S.PENDING.value, DeliveryRow.due_at <= now,
                                      DeliveryRow.platform.in_(list(engine.adapters)))
            .order_by(DeliveryRow.due_at, DeliveryRow.kind.desc(), DeliveryRow.part)
        ))
        posted = {(r.story_id, r.platform, r.kind, r.part) for r in session.scalars(
            select(DeliveryRow).where(DeliveryRow.status == S.POSTED.value,
                                      DeliveryRow.story_id.in_({r.story_id for r in rows})))}
        session.expunge_all()
        session.rollback()
    for row in rows:
        if row.platform in blocks:
            engine.emit(report, engine.event("blocked", row, blocks[row.platform]))
            continue
        if row.kind == "root" and row.due_at < cutoff:
            engine.emit(report, engine.event("missed", row, "past the grace period: would be marked missed"))
            continue
        if row.not_before is not None and row.not_before > now:
            continue
        slot = queries.parent_slot(row)
        if slot is not None and (row.story_id, row.platform, *slot) not in posted:
            continue
        posted.add((row.story_id, row.platform, row.kind, row.part))
        engine.emit(report, engine.event("would-post", row, at=now))
    _unrendered(engine, now, cutoff, blocks, report)


def _unrendered(engine: Engine, now: dt.datetime, cutoff: dt.datetime, blocks: Mapping[str, str],
                report: RunReport) -> None:
    """Stories not rendered yet whose posts would be due: rendered in memory, nothing stored."""
    with engine.store.session() as session:
        stories = list(session.scalars(select(StoryRow).where(StoryRow.rendered.is_(False),
                                                              StoryRow.root_due <= now)
                                       .order_by(StoryRow.root_due, StoryRow.seq)))
        session.expunge_all()
    for story_row in stories:
        story = Story.from_content(story_row.content)
        delay = story.followup_after or engine.settings.followup_delay
        for platform in engine.adapters:
            if story.platforms and platform not in story.platforms:
                continue
            for part in render(story, platform, engine.planner.options):
                due = story_row.root_due if part.kind == "root" else story_row.root_due + delay
                row = DeliveryRow(id=0, story_id=story.id, platform=platform, kind=part.kind, part=part.part,
                                  parts=part.parts, due_at=due, text=part.text)
                if platform in blocks:
                    engine.emit(report, engine.event("blocked", row, blocks[platform]))
                    break
                if part.kind == "root" and due < cutoff:
                    engine.emit(report, engine.event("missed", row, "past the grace period: would be marked "
                                                     "missed"))
                    break
                if due <= now:
                    engine.emit(report, engine.event("would-post", row, at=now))
