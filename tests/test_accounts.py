"""What a platform said about the bot's account is remembered, and new limits re-render what is not out yet."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text, update

from bot.accounts import remember_account, remembered_account, remembered_limits
from bot.models import DeliveryRow, DeliveryStatus, StoryRow
from bot.planner import Planner
from bot.store import Store
from tests.adapters.mastodon_fixtures import mastodon_mock, mastodon_server  # noqa: F401
from tests.conftest import story
from tests.db_support import migrate

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def _rendered(store: Store) -> dict[str, bool]:
    with store.session() as session:
        return dict(session.execute(select(StoryRow.id, StoryRow.rendered)).all())


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


    bare = Store(settings.database_url, migrate=False)
    migrate(bare, "0006")
    with bare.engine.begin() as conn:
        conn.execute(text("INSERT INTO platforms (name, paused_reason, updated_at) VALUES "
                          "('x', 'paused by hand', '2026-01-01 00:00:00.000000')"))
    migrate(bare, "0007")
    bare.dispose()
    store = Store(settings.database_url)
    assert remembered_account(store, "x") == (None, None, None)
    remember_account(store, "x", account="@bot", limits={"max_characters": 280}, at=NOW)
    assert remembered_account(store, "x") == ("@bot", {"max_characters": 280}, NOW)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT paused_reason FROM platforms WHERE name = 'x'")).scalar() == "paused by hand"
    store.dispose()


REVEAL = " ".join(f"Sentence number {i} tells part of how things turned out one year later." for i in range(12))


def _mastodon_parts(store: Store, story_id: str) -> list[DeliveryRow]:
    with store.session() as session:
        return list(session.scalars(select(DeliveryRow).where(
            DeliveryRow.story_id == story_id, DeliveryRow.platform == "mastodon").order_by(
            DeliveryRow.kind.desc(), DeliveryRow.part)))


def test_rendering_counts_against_the_instance_limits_remembered_with_the_account(store, make_settings):
    from mastodon import Mastodon

    settings = make_settings(platforms="mastodon")
    planner = Planner(store, settings)
    planner.load([story("s1", one_year_later=REVEAL)], now=NOW, render=True)
    stock = _mastodon_parts(store, "s1")
    assert {row.limit for row in stock} == {500}

    # the instance says 200 characters and 30 per URL: the queued story is rendered again to fit
    assert remember_account(store, "mastodon", account="@bot@small.example",
                            limits={"max_characters": 200, "characters_reserved_per_url": 30}, at=NOW)
    assert Planner(store, settings).render_due(NOW + dt.timedelta(days=800), now=NOW) == 1
    small = _mastodon_parts(store, "s1")
    followups = [row for row in small if row.kind == "followup"]
    assert len(followups) > len([row for row in stock if row.kind == "followup"])
    for row in small:
        assert row.limit == 200
        # counted by Mastodon.py (URLs as 23: the text's URL is the story's one, weighed 30 by us)
        length = Mastodon.get_status_length(row.payload["status"], row.payload.get("spoiler_text") or "")
        assert length + (30 - 23) * row.payload["status"].count("https://") <= 200


def test_refresh_asks_the_instance_and_remembers_the_account_and_limits(store, mastodon_mock, tmp_path):  # noqa: F811
    from adapters.mastodon import MastodonAdapter
    from bot.accounts import refresh_accounts
    from bot.wiring import mastodon_config
    from tests.adapters.mastodon_fixtures import mastodon_settings

    adapter = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, mastodon_mock.url)))
    lines = refresh_accounts(store, {"mastodon": adapter, "x": object()}, at=NOW)
    account, limits, when = remembered_account(store, "mastodon")
    assert account == adapter.whoami() and account.startswith("@") and when == NOW
    assert limits is not None and limits["max_characters"] == 500 and limits["characters_reserved_per_url"] == 23
    assert len(lines) == 1 and lines[0].startswith(f"mastodon: {account}; max characters 500")


def test_an_instance_that_cannot_answer_keeps_what_was_remembered(store, mastodon_mock, tmp_path):  # noqa: F811
    from adapters.mastodon import MastodonAdapter
    from bot.accounts import refresh_accounts
    from bot.wiring import mastodon_config
    from tests.adapters.mastodon_fixtures import mastodon_settings

    remember_account(store, "mastodon", account="@bot", limits={"max_characters": 1000}, at=NOW)
    mastodon_mock.fault("/api/v1/accounts/verify_credentials", {"type": "status", "status": 503}, methods=("GET",))
    adapter = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, mastodon_mock.url)))
    lines = refresh_accounts(store, {"mastodon": adapter}, at=NOW + dt.timedelta(days=1))
    assert "could not read" in lines[0] and "the ones remembered" in lines[0]
    assert remembered_account(store, "mastodon") == ("@bot", {"max_characters": 1000}, NOW)


def test_doctor_shows_the_mastodon_account_and_the_instance_limits(tmp_path, monkeypatch, capsys, mastodon_mock):  # noqa: F811
    from tests.cli_support import isolate, run_cli
    from tests.standins.mastodon import TOKEN

    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ONEYEARAGO_MASTODON_API_BASE_URL", mastodon_mock.url)
    monkeypatch.setenv("ONEYEARAGO_MASTODON_ACCESS_TOKEN", TOKEN)
    code, out, _ = run_cli(capsys, "--mode", "live", "--platforms", "mastodon", "doctor")
    assert code == 0, out
    assert "Mastodon (live): posts as @" in out
    assert "Mastodon limits: max characters 500, characters reserved per url 23" in out
    assert TOKEN not in out
