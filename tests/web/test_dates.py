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
