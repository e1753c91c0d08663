"""The engine with the real MastodonAdapter (Mastodon.py) against the stateful stand-in ``mastodon-mock``.

Until the rendering half of issue 16 is merged, ``posts.render`` has no Mastodon renderer and
``ONEYEARAGO_PLATFORMS`` cannot name ``mastodon``: the ``rendering`` fixture below then adds a small local
renderer (replaced by render_mastodon at merge: the fixture steps aside as soon as ``RENDERERS`` has
``mastodon``), and the settings name the platform directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.mastodon import MastodonAdapter, html_text
from bot.config import Settings
from bot.engine import Engine
from bot.models import DeliveryRow, PlatformRow
from bot.planner import Planner
from bot.store import Store
from bot.wiring import mastodon_config
from tests.adapters.mastodon_fixtures import mastodon_mock, mastodon_server, mastodon_settings  # noqa: F401
from tests.conftest import story
from tests.standins.mastodon import AnswerLossProxy, MastodonMock

pytestmark = pytest.mark.mastodon

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CW = "One year later — spoiler"
REVEAL = " ".join(f"Sentence number {i} tells part of how things turned out." for i in range(14))


@dataclasses.dataclass
class EngineRun:
    """An engine on a simulated clock, with the Mastodon adapter as its one platform and story s1 queued."""

    engine: Engine
    store: Store
    clock: dict[str, dt.datetime]
    settings: Settings

    def at(self, moment: dt.datetime) -> list[str]:
        """Run a sweep at ``moment``; the actions of its events."""
        self.clock["t"] = moment
        return [e.action for e in self.engine.run_once(moment).events]

    def rows(self) -> list[DeliveryRow]:
        with self.store.session() as session:
            return list(session.scalars(select(DeliveryRow).where(DeliveryRow.platform == "mastodon")
                                        .order_by(DeliveryRow.kind.desc(), DeliveryRow.part)))

    def root(self) -> DeliveryRow:
        return next(r for r in self.rows() if r.kind == "root")

    def followups(self) -> list[DeliveryRow]:
        return [r for r in self.rows() if r.kind == "followup"]

    def platform(self) -> PlatformRow | None:
        with self.store.session() as session:
            return session.get(PlatformRow, "mastodon")

    def followup_moments(self) -> list[dt.datetime]:
        start = NOW + self.settings.followup_delay
        return [start + dt.timedelta(seconds=15 * i) for i in range(8)]


@contextlib.contextmanager
def engine_run(tmp_path: Path, url: str, **options: Any) -> Iterator[EngineRun]:
    """An :class:`EngineRun` whose story s1 is due at ``NOW`` (the follow-up after the configured delay)."""
    settings = dataclasses.replace(mastodon_settings(tmp_path, url, **options), platforms=("mastodon",))
    store = Store(settings.database_url)
    clock = {"t": NOW - dt.timedelta(days=1)}
    try:
        adapter = MastodonAdapter(mastodon_config(settings), clock=lambda: clock["t"])
        engine = Engine(store, {"mastodon": adapter}, settings, clock=lambda: clock["t"], worker="test")
        Planner(store, settings).load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
                                             one_year_later=REVEAL)], now=clock["t"])
        yield EngineRun(engine, store, clock, settings)
    finally:
        store.dispose()


def test_the_engine_posts_the_story_and_its_followup_as_one_thread_behind_the_warning(
        mastodon_mock: MastodonMock, tmp_path: Path) -> None:  # noqa: F811
    with engine_run(tmp_path, mastodon_mock.url) as run:
        assert "posted" in run.at(NOW)
        for moment in run.followup_moments():
            run.at(moment)
        root, followups = run.root(), run.followups()
    assert len(followups) >= 2 and all(r.status == "posted" for r in [root, *followups])
    statuses = mastodon_mock.statuses()
    assert len(statuses) == 1 + len(followups)  # nothing twice
    top = statuses[0]
    assert top["id"] == root.remote_id and top["in_reply_to_id"] is None and top["spoiler_text"] == ""
    assert top["visibility"] == "unlisted" and top["language"] == "en"
    descendants = mastodon_mock.context(top["id"])["descendants"]
    parent = top["id"]
    for row, status in zip(followups, descendants, strict=True):  # each part answers the one before
        assert (status["id"], status["in_reply_to_id"], status["spoiler_text"]) == (row.remote_id, parent, CW)
        assert html_text(status["content"]) == row.payload["status"]
        parent = status["id"]


def test_a_create_whose_answer_was_lost_is_found_and_recorded_posted_without_a_second_status(
        mastodon_mock: MastodonMock, tmp_path: Path) -> None:  # noqa: F811
    with AnswerLossProxy(mastodon_mock.url) as proxy, engine_run(tmp_path, proxy.url) as run:
        proxy.lose_next_create()
        actions = run.at(NOW)
        root = run.root()
        run.at(NOW + dt.timedelta(minutes=10))  # a later sweep must not send it again
        creates = [outcome for method, path, outcome in proxy.log if method == "POST"]
    assert creates == ["dropped"]  # settled by find (its GETs), never sent again
    (made,) = mastodon_mock.statuses()
    assert "posted" in actions and root.status == "posted" and root.remote_id == made["id"]
    assert root.key and len(root.key) == 32


def test_a_rate_limit_pauses_the_platform_until_the_reset_then_posts(
        mastodon_mock: MastodonMock, tmp_path: Path) -> None:  # noqa: F811
    mastodon_mock.fault("/api/v1/statuses", {"type": "ratelimit"})
    with engine_run(tmp_path, mastodon_mock.url) as run:
        assert "rate-limited" in run.at(NOW)
        platform = run.platform()
        assert platform is not None and platform.retry_at is not None
        # The stand-in's reset is 300 s after its own clock; moved onto ours by its Date header.
        retry_at = platform.retry_at.replace(tzinfo=UTC) if platform.retry_at.tzinfo is None else platform.retry_at
        assert NOW + dt.timedelta(seconds=280) <= retry_at <= NOW + dt.timedelta(seconds=320)
        run.at(NOW + dt.timedelta(minutes=2))
        assert mastodon_mock.statuses() == [] and run.root().status != "posted"
        run.at(NOW + dt.timedelta(minutes=6))
        assert run.root().status == "posted"
    assert len(mastodon_mock.statuses()) == 1


def test_a_deleted_root_skips_the_followup_with_the_reason(
        mastodon_mock: MastodonMock, tmp_path: Path) -> None:  # noqa: F811
    with engine_run(tmp_path, mastodon_mock.url) as run:
        run.at(NOW)
        mastodon_mock.delete(run.root().remote_id or "")
        actions = []
        for moment in run.followup_moments()[:2]:
            actions += run.at(moment)
        followups = run.followups()
    assert "skipped" in actions
    assert all(r.status == "skipped" for r in followups)
    assert "the root post was deleted or removed" in (followups[0].last_error or "")
    assert mastodon_mock.statuses() == []
