"""What each platform said about the account the bot posts as: who it is and the limits it announced.

A live run (and ``doctor``) asks each adapter that can tell (``limits()``: Mastodon's instance limits)
and remembers the answer in the platform's row; rendering then counts against the remembered limits,
without asking the platform at every render. When the limits change, the stories whose posts on that
platform are still to be sent are rendered again before they go out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from adapters.base import AnnouncesLimits, MarksAutomation
from bot.models import SENT, DeliveryRow, DeliveryStatus, PlatformRow, StoryRow
from bot.store import Store
from posts.errors import AdapterError

logger = logging.getLogger(__name__)


def remembered_limits(store: Store, platform: str) -> dict[str, Any] | None:
    """The limits last remembered for ``platform``, or ``None`` when they were never read."""
    return remembered_account(store, platform)[1]


def remembered_account(store: Store, platform: str) -> tuple[str | None, dict[str, Any] | None, dt.datetime | None]:
    """``(account, limits, when read)`` as last remembered for ``platform`` (all ``None`` if never)."""
    with store.session() as session:
        row = session.get(PlatformRow, platform)
        if row is None:
            return None, None, None
        return row.account, (dict(row.limits) if isinstance(row.limits, dict) else None), row.limits_at


def remember_account(store: Store, platform: str, *, account: str | None, limits: dict[str, Any] | None,
                     at: dt.datetime) -> bool:
    """Remember who ``platform`` says the bot is and the limits it announced; whether the limits changed.

    When they did (and were known before, or differ from what rendering assumed without them), the
    stories with posts still to be sent there are marked to be rendered again: the engine renders
    them before their posts are claimed. A thread already partly sent there is left as it is (its
    remaining parts were cut for the parts already out). Returns ``True`` when stories were marked
    or the limits are new.
    """
    with store.session() as session:
        row = session.get(PlatformRow, platform)
        if row is None:
            row = PlatformRow(name=platform, updated_at=at)
            session.add(row)
        before = dict(row.limits) if isinstance(row.limits, dict) else None
        if account is not None:
            row.account = account
        changed = limits is not None and limits != before
        if limits is not None:
            row.limits, row.limits_at = dict(limits), at
        marked = 0
        if changed:
            marked = _mark_for_render(session, platform)
        session.commit()
    if changed:
        logger.info("%s announced new limits %s (were %s): %d stories to render again", platform, limits,
                    before or "the defaults", marked)
    return changed


def _mark_for_render(session: Any, platform: str) -> int:
    """Mark the stories with posts pending on ``platform`` (and no follow-up part sent there) for rendering."""
    sent = aliased(DeliveryRow)
    unsent = (select(DeliveryRow.story_id).where(DeliveryRow.platform == platform, DeliveryRow.status == DeliveryStatus.PENDING)
              .where(~exists().where(sent.story_id == DeliveryRow.story_id, sent.platform == platform,
                                     sent.kind == "followup", sent.status.in_(SENT))))
    result = session.execute(update(StoryRow).where(StoryRow.id.in_(unsent), StoryRow.rendered.is_(True))
                             .values(rendered=False).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def refresh_accounts(store: Store, adapters: Mapping[str, Any], *, at: dt.datetime) -> list[str]:
    """Ask each adapter that announces limits who the bot is and what it may post; remember both.

    Returns one line per such platform for the operator. A platform that cannot answer now keeps
    what was remembered (or the defaults) and says so: posting is not held up by it.
    """
    lines = []
    for name, adapter in adapters.items():
        if not isinstance(adapter, AnnouncesLimits):
            continue
        try:
            account = adapter.whoami()
            limits = adapter.limits().to_dict()
        except AdapterError as exc:
            kept = remembered_limits(store, name)
            lines.append(f"{name}: could not read the account's limits ({exc}); rendering keeps "
                         f"{'the ones remembered' if kept else 'the defaults'}")
            logger.warning(lines[-1])
            continue
        changed = remember_account(store, name, account=account, limits=limits, at=at)
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in limits.items() if v is not None)
        lines.append(f"{name}: {account}; {shown}{' (new: queued posts are rendered again)' if changed else ''}")
    return lines


# ---------------------------------------------------------------------------- the automation mark

MARK_NAMES: dict[str, str] = {"mastodon": "the bot flag (shown as Automated)", "bluesky": "the 'bot' self-label"}
"""What the mark is called on each platform that has one the API can read and set."""
NO_MARK: dict[str, str] = {
    "x": "cannot tell by API: X's 'Automated' label is set in the X settings (Account information > "
         "Automation, naming the managing account), not through the API",
    "reddit": "Reddit has no mark for automated accounts",
}
"""Why a platform's mark cannot be read or set here."""


@dataclasses.dataclass(frozen=True)
class Mark:
    """Whether one platform's account is marked as automated, as far as the platform tells."""

    platform: str
    marked: bool | None
    """``None``: the platform cannot tell (no such mark, or none the API reaches)."""
    note: str
    changed: bool = False
    """Set just now (``--mark-bot``)."""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def line(self) -> str:
        if self.error:
            return f"{self.platform}: {self.error}"
        if self.marked is None:
            return f"{self.platform}: {self.note}"
        state = "now marked" if self.changed else "marked" if self.marked else "NOT marked"
        return f"{self.platform}: {state} as automated ({self.note})" + (
            "" if self.marked else "; `oneyearago accounts --mark-bot` sets it")


def automation_marks(adapters: Mapping[str, Any], *, mark: bool = False) -> list[Mark]:
    """Whether each platform's account is marked as automated; with ``mark``, set the mark where the API can.

    A platform whose API cannot say gets a line that says so (:data:`NO_MARK`); a failure is reported for
    its platform alone.
    """
    marks = []
    for name, adapter in adapters.items():
        if not isinstance(adapter, MarksAutomation):
            marks.append(Mark(name, None, NO_MARK.get(name, "this platform has no mark for automated accounts")))
            continue
        note = MARK_NAMES.get(name, "its automated-account mark")
        try:
            marked = adapter.automation_mark()
            changed = False
            if mark and marked is False:
                adapter.mark_automated()
                marked = adapter.automation_mark()
                changed = bool(marked)
        except AdapterError as exc:
            marks.append(Mark(name, None, note, error=f"could not {'set' if mark else 'read'} {note}: {exc}"))
            continue
        marks.append(Mark(name, marked, note, changed))
    return marks
