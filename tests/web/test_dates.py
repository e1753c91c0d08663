"""The calendar's ``?start`` outside the supported range of dates: a 400 page that says so, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("start", ["0001-01-01", "1899-12-31", "9999-12-31", "3200-01-01"])
def test_a_start_outside_the_supported_range_is_a_clear_400(client, start):
    page = client.get(f"/?start={start}&weeks=8")
    assert page.status_code == 400
    assert "outside the supported range of dates, 1900-01-01 to 3199-12-31" in page.text


@pytest.mark.parametrize("start", ["1900-01-01", "3199-12-31"])
def test_the_edges_of_the_range_show_a_calendar(client, start):
    assert client.get(f"/?start={start}&weeks=8").status_code == 200


@pytest.mark.timeout(60)
def test_an_uploaded_alias_bomb_is_refused_at_once(make_client, store):
    """Through the dashboard's upload the same loader refuses it: a 422 page naming FILE:LINE."""
    import tracemalloc

    from sqlalchemy import func, select

    from bot.models import StoryRow
    from tests.test_hostile_files import ALIAS_BOMB
    from tests.web.test_actions import upload

    tracemalloc.start()
    try:
        response = upload(make_client(), ("bomb.yaml", ALIAS_BOMB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422
    assert "<code>bomb.yaml:9</code>" in response.text and "stand for more than 1,000,000 values" in response.text
    assert peak < 100 * 1024 * 1024
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(StoryRow)) == 0
