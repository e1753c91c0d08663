"""What a platform said about the bot's account is remembered, and new limits re-render what is not out yet."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text, update

from bot.accounts import remember_account, remembered_account, remembered_limits
from bot.models import DeliveryRow, DeliveryStatus, StoryRow
from bot.planner import Planner
from bot.store import Store
from tests.conftest import story

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def _rendered(store: Store) -> dict[str, bool]:
    with store.session() as session:
        return dict(session.execute(select(StoryRow.id, StoryRow.rendered)).tuples().all())


def test_nothing_is_remembered_until_a_platform_answers(store):
    assert remembered_limits(store, "bluesky") is None
    assert remembered_account(store, "bluesky") == (None, None, None)


def test_the_account_and_limits_are_remembered_with_when_they_were_read(store):
    assert remember_account(store, "bluesky", account="@bot@example.social",
                            limits={"max_characters": 300}, at=NOW) is True
    assert remembered_limits(store, "bluesky") == {"max_characters": 300}
    assert remembered_account(store, "bluesky") == ("@bot@example.social", {"max_characters": 300}, NOW)
    # the same answer again changes nothing; an account alone keeps the limits
    assert remember_account(store, "bluesky", account="@bot@example.social",
                            limits={"max_characters": 300}, at=NOW + dt.timedelta(hours=1)) is False
    assert remember_account(store, "bluesky", account="@renamed@example.social", limits=None,
                            at=NOW + dt.timedelta(hours=2)) is False
    # when the limits were last read, not when they last changed
    assert remembered_account(store, "bluesky") == ("@renamed@example.social", {"max_characters": 300},
                                                    NOW + dt.timedelta(hours=1))


def test_new_limits_mark_the_stories_still_to_be_sent_there_for_rendering_again(store, settings):
    Planner(store, settings).load([story("waiting"), story("root-out"), story("done"),
                                   story("elsewhere", platforms=["x"])], now=NOW, render=True)
    with store.session() as session:
        # "root-out": its root is out on bluesky, the reveal not yet; "done": everything is out there
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "root-out",
                                                  DeliveryRow.platform == "bluesky", DeliveryRow.kind == "root")
                        .values(status=DeliveryStatus.POSTED))
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "done", DeliveryRow.platform == "bluesky")
                        .values(status=DeliveryStatus.POSTED))
        session.commit()
    assert set(_rendered(store).values()) == {True}

    assert remember_account(store, "bluesky", account=None, limits={"max_characters": 1000}, at=NOW)
    assert _rendered(store) == {"waiting": False, "root-out": False, "done": True, "elsewhere": True}


def test_a_thread_with_a_followup_part_out_is_left_as_it_was_cut(store, settings):
    long_reveal = " ".join(f"Sentence {i} of what happened next, in some detail." for i in range(40))
    Planner(store, settings).load([story("thread", one_year_later=long_reveal)], now=NOW, render=True)
    with store.session() as session:
        parts = session.scalars(select(DeliveryRow.part).where(
            DeliveryRow.story_id == "thread", DeliveryRow.platform == "bluesky",
            DeliveryRow.kind == "followup")).all()
        assert len(parts) > 1
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "thread", DeliveryRow.platform == "bluesky",
                                                  (DeliveryRow.kind == "root") | (DeliveryRow.part == 1))
                        .values(status=DeliveryStatus.POSTED))
        session.commit()
    remember_account(store, "bluesky", account=None, limits={"max_characters": 1000}, at=NOW)
    assert _rendered(store) == {"thread": True}


def test_the_0007_migration_adds_the_columns_and_keeps_the_platforms(settings):
    from alembic import command

    from bot.store import _alembic_config

    bare = Store(settings.database_url, migrate=False)
    config = _alembic_config(settings.database_url)
    with bare.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    with bare.engine.begin() as conn:
        conn.execute(text("INSERT INTO platforms (name, paused_reason, updated_at) VALUES "
                          "('x', 'paused by hand', '2026-01-01 00:00:00.000000')"))
    with bare.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
    bare.dispose()
    store = Store(settings.database_url)
    assert remembered_account(store, "x") == (None, None, None)
    remember_account(store, "x", account="@bot", limits={"max_characters": 280}, at=NOW)
    assert remembered_account(store, "x") == ("@bot", {"max_characters": 280}, NOW)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT paused_reason FROM platforms WHERE name = 'x'")).scalar() == "paused by hand"
    store.dispose()
