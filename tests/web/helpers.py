"""Helpers of the dashboard tests: the clock, the story file, and ways to put deliveries in a state."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from starlette.testclient import TestClient

from bot.models import DeliveryRow
from bot.store import Store

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
"""The tests' clock: Monday 2 March 2026, 08:00 UTC."""
BASE = "http://127.0.0.1:8080"

STORIES = """\
- id: first-story
  date: 2025-03-02
  category: research
  source: Example Lab
  headline: "Example Lab shows a <b>model</b> that plans & reasons"
  summary: A short summary of what happened.
  url: https://example.com/first
  one_year_later: It was cited everywhere; nobody shipped it.
  tags: [ai, research]

- id: second-story
  date: 2025-03-04T18:30:00
  timezone: Europe/Berlin
  headline: Second story, timed in Berlin
  summary: Another summary.
  url: https://example.org/second
  one_year_later: It went differently.

- id: next-week
  date: 2025-03-10
  headline: A story of next week
  url: https://example.net/next
"""


def delivery(store: Store, story_id: str, platform: str, kind: str = "root", part: int = 1) -> DeliveryRow:
    with store.session() as session:
        return session.scalars(select(DeliveryRow).where(
            DeliveryRow.story_id == story_id, DeliveryRow.platform == platform, DeliveryRow.kind == kind,
            DeliveryRow.part == part)).one()


def set_status(store: Store, delivery_id: int, status: str, *, error: str | None = None,
               remote_url: str | None = None, posted_at: dt.datetime | None = None) -> None:
    """Put a delivery in a state, as the engine would have left it."""
    with store.session() as session:
        row = session.get(DeliveryRow, delivery_id)
        assert row is not None
        row.status, row.last_error, row.updated_at = status, error, NOW
        if remote_url:
            row.remote_url, row.remote_id = remote_url, remote_url.rsplit("/", 1)[-1]
        if posted_at:
            row.posted_at = posted_at


def csrf_of(client: TestClient, path: str = "/upload") -> str:
    """The CSRF token of the forms on ``path`` (the page sets the client's csrf cookie)."""
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)
