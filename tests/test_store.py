"""The store: aware UTC datetimes on every backend, and migrations that keep the queue."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from bot.models import Base, DeliveryRow, PlatformRow
from bot.planner import Planner
from bot.store import Store
from posts.errors import StoreError
from tests.conftest import story
from tests.db_support import migrate


def test_aware_datetimes_come_back_aware_and_equal(store):
    when = dt.datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=ZoneInfo("Europe/London"))
    with store.session() as session:
        session.add(PlatformRow(name="x", retry_at=when, updated_at=when))
    with store.session() as session:
        back = session.get(PlatformRow, "x").retry_at
    assert back == when and back.tzinfo is dt.UTC and back.hour == 13


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(PlatformRow(name="x", updated_at=dt.datetime(2026, 1, 1)))
        session.flush()


def test_the_migrations_build_exactly_the_models_schema(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_a_database_keeps_its_queue(settings):
    first = Store(settings.database_url)
    Planner(first, settings).load([story("a")], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    first.dispose()
    again = Store(settings.database_url)
    assert again.revision() == Store.head_revision()
    with again.session() as session:
        assert len(list(session.scalars(select(DeliveryRow)))) == 8


def test_an_old_schema_is_upgraded_in_place_and_keeps_its_queue(settings):


    bare = Store(settings.database_url, migrate=False)
    migrate(bare, "0001")
    with bare.engine.begin() as conn:
        conn.execute(text("INSERT INTO stories (id, seq, content, content_hash, origin, window_day, root_due, "
                          "rendered, created_at, updated_at) VALUES ('kept', 1, '{}', 'h', 'f:1', NULL, "
                          "'2026-01-01 00:00:00.000000', true, '2026-01-01 00:00:00.000000', "
                          "'2026-01-01 00:00:00.000000')"))
    bare.dispose()
    upgraded = Store(settings.database_url)
    assert upgraded.revision() == Store.head_revision() != "0001"
    with upgraded.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM stories")).scalars().all() == ["kept"]
        assert conn.execute(text("SELECT count(*) FROM workers")).scalar() == 0


def test_0005_gives_the_time_to_look_again_its_own_column_and_leaves_leases_alone(settings):


    bare = Store(settings.database_url, migrate=False)
    migrate(bare, "0004")
    stamp = "'2026-01-01 00:00:00.000000'"
    with bare.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO stories (id, seq, content, content_hash, origin, window_day, root_due, "
                          f"rendered, created_at, updated_at) VALUES ('s', 1, '{{}}', 'h', 'f:1', NULL, {stamp}, "
                          f"true, {stamp}, {stamp})"))
        for delivery_id, kind, claimed_by, until in ((1, "root", None, "2026-01-01 12:02:00.000000"),
                                                     (2, "followup", "w", "2026-01-01 12:05:00.000000")):
            conn.execute(text(
                "INSERT INTO deliveries (id, story_id, platform, kind, part, parts, due_at, status, payload, text, "
                "length, length_limit, unit, attempts, claimed_by, claimed_until, created_at, updated_at) VALUES "
                f"({delivery_id}, 's', 'x', '{kind}', 1, 1, {stamp}, 'sending', '{{}}', 't', 1, 280, 'w', 1, "
                f":by, '{until}', {stamp}, {stamp})"), {"by": claimed_by})
    migrate(bare, "0005")
    with bare.engine.connect() as conn:
        moved = conn.execute(text("SELECT id, claimed_by, claimed_until, look_again_at FROM deliveries "
                                  "ORDER BY id")).all()
    assert [(r[0], r[1], r[2] is None, r[3] is None) for r in moved] == [(1, None, True, False), (2, "w", False, True)]
    assert str(moved[0][3]).startswith("2026-01-01 12:02:00") and str(moved[1][2]).startswith("2026-01-01 12:05:00")
    migrate(bare, "0004", down=True)
    with bare.engine.connect() as conn:
        back = conn.execute(text("SELECT claimed_until FROM deliveries ORDER BY id")).scalars().all()
    assert [str(v)[:19] for v in back] == ["2026-01-01 12:02:00", "2026-01-01 12:05:00"]
    bare.dispose()


def test_0006_gives_queued_roots_the_image_of_their_story(settings):


    bare = Store(settings.database_url, migrate=False)
    migrate(bare, "0005")
    stamp = "'2026-01-01 00:00:00.000000'"
    with bare.engine.begin() as conn:
        for sid, content in (("pic", '{"image_sha256": "' + "ab" * 32 + '"}'), ("plain", "{}")):
            conn.execute(text(f"INSERT INTO stories (id, seq, content, content_hash, origin, window_day, root_due, "
                              f"rendered, created_at, updated_at) VALUES ('{sid}', 1, '{content}', 'h', 'f:1', NULL, "
                              f"{stamp}, true, {stamp}, {stamp})"))
            for kind in ("root", "followup"):
                conn.execute(text(
                    "INSERT INTO deliveries (story_id, platform, kind, part, parts, due_at, status, payload, text, "
                    "length, length_limit, unit, attempts, created_at, updated_at) VALUES "
                    f"('{sid}', 'bluesky', '{kind}', 1, 1, {stamp}, 'pending', '{{}}', 't', 1, 300, 'g', 0, "
                    f"{stamp}, {stamp})"))
    migrate(bare, "0006")
    bare.dispose()
    store = Store(settings.database_url)
    with store.session() as session:
        got = {(r.story_id, r.kind): r.attachments for r in session.scalars(select(DeliveryRow))}
    store.dispose()
    assert got == {("pic", "root"): {"thumb": "ab" * 32}, ("pic", "followup"): None,
                   ("plain", "root"): None, ("plain", "followup"): None}


def test_0014_fills_each_conversations_newest_reply_time_from_its_kept_replies(settings):

    from bot.models import ConversationRow

    bare = Store(settings.database_url, migrate=False)
    migrate(bare, "0013")
    stamp = "'2026-01-01 00:00:00.000000'"
    replies = ('[{"id": "r2", "author": "@b", "text": "t", "at": "2026-01-02T10:00:00+00:00", "url": "u"}, '
               '{"id": "r1", "author": "@a", "text": "t", "at": "2026-01-01T09:00:00+00:00", "url": "u"}]')
    with bare.engine.begin() as conn:
        for sid in ("talked", "quiet"):
            conn.execute(text(f"INSERT INTO stories (id, seq, content, content_hash, origin, window_day, root_due, "
                              f"rendered, draft, created_at, updated_at) VALUES ('{sid}', 1, '{{}}', 'h', 'f:1', "
                              f"NULL, {stamp}, true, false, {stamp}, {stamp})"))
            conn.execute(text("INSERT INTO conversations (story_id, platform, root_id, total, replies, requests, "
                              f"seen_total) VALUES ('{sid}', 'bluesky', 'r', 2, "
                              f"'{replies if sid == 'talked' else '[]'}', 1, 0)"))
    migrate(bare, "0014")
    bare.dispose()
    store = Store(settings.database_url)
    with store.session() as session:
        got = {row.story_id: row.last_reply_at for row in session.scalars(select(ConversationRow))}
    store.dispose()
    assert got == {"talked": dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC), "quiet": None}


def test_a_schema_without_its_revision_record_is_a_clear_error(settings):
    store = Store(settings.database_url)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    store.dispose()
    with pytest.raises(StoreError):  # tables exist but no revision: the upgrade cannot recreate them
        Store(settings.database_url)


def test_an_unusable_database_url_is_a_clear_error():
    with pytest.raises(StoreError, match="cannot use database"):
        Store("nosuchdialect://x")


def test_stores_opened_at_once_on_several_threads_each_get_their_own_schema(tmp_path):
    # Alembic's migration context is process-wide: concurrent upgrades must not cross databases.
    import threading

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_one(i: int) -> None:
        barrier.wait()
        try:
            stores.append(Store(f"sqlite:///{tmp_path / f'db{i}.sqlite'}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for opened in stores:
        assert opened.revision() == Store.head_revision()
        opened.dispose()
