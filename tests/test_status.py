"""Delivery status: one enum, stored as its value, with what each status means said once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import StatementError

from bot.models import (
    NEEDS_ATTENTION,
    POSTING,
    RETRYABLE,
    SENT,
    SKIPPABLE,
    DeliveryRow,
    DeliveryStatus,
)
from bot.planner import Planner
from bot.store import Store
from tests.conftest import story

S = DeliveryStatus
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_each_status_says_once_what_it_means():
    assert {s for s in S if s.sent} == SENT == {S.SENDING, S.POSTED, S.UNCONFIRMED}
    assert {s for s in S if s.retryable} == RETRYABLE == {S.FAILED, S.MISSED, S.UNCONFIRMED, S.SKIPPED}
    assert {s for s in S if s.skippable} == SKIPPABLE == {S.PENDING, S.FAILED, S.MISSED}
    assert {s for s in S if s.needs_attention} == NEEDS_ATTENTION == {S.FAILED, S.MISSED, S.UNCONFIRMED}
    assert {s for s in S if not s.posts} == set(S) - POSTING == {S.SKIPPED, S.FAILED, S.MISSED}
    assert sorted(S, key=lambda s: s.rank) == [S.FAILED, S.UNCONFIRMED, S.MISSED, S.SENDING, S.PENDING,
                                               S.SKIPPED, S.POSTED]
    assert {s.value: s.tone for s in S} == {"posted": "ok", "pending": "pending", "sending": "sending",
                                            "failed": "bad", "unconfirmed": "bad", "missed": "warn",
                                            "skipped": "muted"}


def test_the_dashboard_and_the_cli_show_a_status_by_its_tone():
    from bot.cli import TONE_STYLE, _status_text
    from bot.web.app import STATUS_CLASS

    for status in S:
        assert STATUS_CLASS[status.value] == status.tone
        assert _status_text(status.value).style == TONE_STYLE[status.tone]
    assert STATUS_CLASS["late"] == "warn" and _status_text("queued").style == "white"


def test_a_status_is_stored_as_its_value_and_read_back_as_a_member(store: Store, settings):
    Planner(store, settings).load([story("a")], now=NOW)
    with store.session() as session:
        assert set(session.scalars(text("SELECT DISTINCT status FROM deliveries"))) == {"pending"}
        row = session.scalars(select(DeliveryRow)).first()
        assert row is not None and type(row.status) is S and row.status is S.PENDING
        session.execute(text("UPDATE deliveries SET status = 'unconfirmed'"))  # as an older version wrote it
    with store.session() as session:
        assert set(session.scalars(select(DeliveryRow.status))) == {S.UNCONFIRMED}


def test_a_status_outside_the_vocabulary_is_never_stored(store: Store, settings):
    Planner(store, settings).load([story("a")], now=NOW)
    with pytest.raises(StatementError, match="is not among the defined enum values"):
        with store.session() as session:
            session.execute(update(DeliveryRow).values(status="postd"))
    with store.session() as session:
        assert set(session.scalars(select(DeliveryRow.status))) == {S.PENDING}
