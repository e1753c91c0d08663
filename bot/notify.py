"""Tell the operator, through Apprise, what needs them: failures, pauses, missing reveals, crashes, a digest.

The notifier reads the queue, never the engine's memory, so what it tells is what the database says,
whichever process (or worker) caused it. Each notice has a key (``delivery:42:failed``,
``paused:x:<since>``, ``reveal:<story>`` (a story due within ``ONEYEARAGO_REVEAL_LEAD`` whose
``one_year_later`` is empty, drafts included), ``link:<story>:<url>``, ``digest:<day>``); the keys told are kept in the
``notices`` table, so a notice is told once, not once per sweep, and not again after a restart. The
notices found in one check go out as one message. A message is masked with the settings' secrets
before it leaves, and never names a notification URL.

``ONEYEARAGO_NOTIFY`` holds the Apprise URLs (email, Matrix, Slack, Discord, ntfy, Telegram, JSON
and form webhooks, ...). Nothing is sent when it is empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.config import Settings
from bot.engine import workers
from bot.links import broken_links
from bot.models import NEEDS_ATTENTION, DeliveryRow, NoticeRow, PlatformRow, WorkerRow
from bot.models import DeliveryStatus as S
from bot.ops import needs_reveal
from bot.store import Store
from posts.clock import utcnow
from posts.durations import human_duration
from posts.story import PLATFORM_NAMES

log = logging.getLogger(__name__)

TOLD = (S.FAILED, S.UNCONFIRMED, S.MISSED)
"""The delivery states the operator is told of."""
RECENT = dt.timedelta(days=7)
"""Deliveries that came to a told state longer ago than this are not told (when notifications are
first turned on, last year's failures are not news)."""
CHECK_EVERY = dt.timedelta(seconds=60)
"""How often ``run`` checks; notices arising within one interval come as one message."""
MAX_LINES = 40
"""At most this many notices are listed in one message (the rest are counted)."""

Sender = Callable[[list[str], str, str], list[bool]]
"""Sends ``(urls, title, body)``; says for each URL whether it took the message."""


@dataclasses.dataclass(frozen=True)
class Notice:
    """One thing to tell: its key (told once) and its line in the message."""

    key: str
    line: str


def apprise_send(urls: list[str], title: str, body: str) -> list[bool]:
    """Send ``title`` and ``body`` to each Apprise URL on its own; whether each took it.

    Apprise's own log lines can quote a URL (and so its token): they are kept out of the bot's log.
    """
    import apprise

    logging.getLogger("apprise").setLevel(logging.CRITICAL)
    results = []
    for url in urls:
        sender = apprise.Apprise()
        results.append(bool(sender.add(url)) and bool(sender.notify(title=title, body=body)))
    return results


def _link_key(story_id: str, url: str) -> str:
    """``link:<story>:<url>``; a URL too long for the key's 200 characters is named by its sha256."""
    key = f"link:{story_id}:{url}"
    return key if len(key) <= 200 else f"link:{story_id}:sha256:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


class Notifier:
    """Finds what the operator must be told, tells it once, and sends the daily digest."""

    def __init__(self, settings: Settings, store: Store, *, send: Sender = apprise_send,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.settings = settings
        self.store = store
        self.send = send
        self.clock = clock
        self.urls = str(settings.notify).split()
        self.mask = settings.masker()
        self._crash: list[Notice] = []

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    # ------------------------------------------------------------------ what to tell

    def starting(self, now: dt.datetime) -> None:
        """Note, before ``run`` registers itself, whether an earlier run of this host ended without
        stopping (killed, crashed, the machine lost power): its worker row is still there, its process gone
        or its heartbeat lapsed. Told with the next check."""
        lease = self.settings.lease
        with self.store.session() as session:
            rows = list(session.scalars(select(WorkerRow)))
        for row in rows:
            if workers.dead_here(row) or row.heartbeat_at < now - lease:
                self._crash.append(Notice(
                    f"crash:{row.id}:{row.heartbeat_at.isoformat()}",
                    f"The bot started again after a run that did not stop cleanly ({row.id}, last heard from "
                    f"{self.settings.local_time(row.heartbeat_at)}): posts in flight were checked on the platforms."))

    def notices(self, now: dt.datetime) -> list[Notice]:
        """Everything that needs telling now and was not told yet, oldest first."""
        found = list(self._crash)
        # A story due within ONEYEARAGO_REVEAL_LEAD whose reveal is empty, a draft too (it may be approved).
        reveals = [Notice(f"reveal:{item.id}",
                          f"{item.id}{' (a draft)' if item.draft else ''} goes out {self.settings.local_time(item.due)} "
                          "and has no reveal yet (one_year_later): without one it gets no follow-up.")
                   for item in needs_reveal(self.store, now, self.settings.reveal_lead,
                                             followup_delay=self.settings.followup_delay)]
        found += self._link_notices(now)
        with self.store.session() as session:
            for row in session.scalars(select(DeliveryRow).where(DeliveryRow.status.in_(TOLD),
                                                                 DeliveryRow.updated_at >= now - RECENT)
                                       .order_by(DeliveryRow.updated_at)):
                found.append(Notice(f"delivery:{row.id}:{row.status}", self._delivery_line(row)))
            for platform in session.scalars(select(PlatformRow).order_by(PlatformRow.name)):
                name = PLATFORM_NAMES.get(platform.name, platform.name)
                if platform.paused_reason:
                    found.append(Notice(f"paused:{platform.name}:{platform.updated_at.isoformat()}",
                                        f"{name} is paused: {platform.paused_reason}. Fix it, then `oneyearago "
                                        "retry` a delivery to resume."))
                elif platform.retry_at is not None and platform.retry_at - now > self.settings.notify_rate_limit:
                    found.append(Notice(f"ratelimit:{platform.name}:{platform.retry_at.isoformat()}",
                                        f"{name} is rate limited for {human_duration(platform.retry_at - now)}, "
                                        f"until {self.settings.local_time(platform.retry_at)}: its posts wait."))
            found += reveals
            told = set(session.scalars(select(NoticeRow.key).where(NoticeRow.key.in_([n.key for n in found]))))
        return [n for n in found if n.key not in told]

    def _link_notices(self, now: dt.datetime) -> list[Notice]:
        """A broken link of a story due within ``link_check_ahead`` (key ``link:<story>:<url>``)."""
        soon = now + self.settings.link_check_ahead
        return [Notice(_link_key(r.story_id, r.url),
                       f"{r.story_id} goes out {self.settings.local_time(r.root_due)} and its link is broken "
                       f"({r.detail}): {r.url}" + (f"; archived copy: {r.archive_url} (`oneyearago links "
                                                   f"--use-archive {r.story_id}`)" if r.archive_url else ""))
                for r in broken_links(self.store, now) if r.root_due is not None and r.root_due <= soon]

    def _delivery_line(self, row: DeliveryRow) -> str:
        where = f"{PLATFORM_NAMES.get(row.platform, row.platform)} {row.kind}"
        if row.parts > 1:
            where += f" {row.part}/{row.parts}"
        what = {S.FAILED: "failed", S.UNCONFIRMED: "is unconfirmed (it may or may not be on the platform)",
                S.MISSED: "was missed"}[S(row.status)]
        reason = f": {row.last_error}" if row.last_error else ""
        return f"{row.story_id} · {where} {what}{reason}"

    # ------------------------------------------------------------------ telling

    def check(self, now: dt.datetime | None = None) -> list[Notice]:
        """Tell what is new, as one message; the notices told (none when nothing took the message)."""
        if not self.enabled:
            return []
        now = now or self.clock()
        new = self.notices(now)
        if not new:
            return []
        title = f"oneyearago: {len(new)} thing{'s' if len(new) != 1 else ''} to look at"
        lines = [f"- {n.line}" for n in new[:MAX_LINES]]
        if len(new) > MAX_LINES:
            lines.append(f"- and {len(new) - MAX_LINES} more: `oneyearago status` lists them")
        if not self._deliver(title, "\n".join(lines)):
            return []  # told nobody: tried again at the next check
        self._remember([n.key for n in new], now)
        self._crash = [n for n in self._crash if n not in new]
        return new

    def digest(self, now: dt.datetime | None = None) -> bool:
        """Send the day's digest once it is time (``ONEYEARAGO_DIGEST_AT``, local); whether it was sent now."""
        if not self.enabled or self.settings.digest_at is None:
            return False
        now = now or self.clock()
        zone = ZoneInfo(self.settings.timezone)
        local = now.astimezone(zone)
        if local.time() < self.settings.digest_at:
            return False
        key = f"digest:{local.date().isoformat()}"
        with self.store.session() as session:
            if session.get(NoticeRow, key) is not None:
                return False
        title, body = self.digest_text(now)
        if not self._deliver(title, body):
            return False
        self._remember([key], now)
        return True

    def digest_text(self, now: dt.datetime) -> tuple[str, str]:
        """The digest: what went out yesterday (with links), what goes out today, what needs attention."""
        zone = ZoneInfo(self.settings.timezone)
        today = dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), zone)
        yesterday, tomorrow = today - dt.timedelta(days=1), today + dt.timedelta(days=1)
        with self.store.session() as session:
            posted = list(session.scalars(select(DeliveryRow).where(
                DeliveryRow.status == S.POSTED, DeliveryRow.posted_at >= yesterday.astimezone(dt.UTC),
                DeliveryRow.posted_at < today.astimezone(dt.UTC)).order_by(DeliveryRow.posted_at)))
            coming = list(session.scalars(select(DeliveryRow).where(
                DeliveryRow.status.in_([S.PENDING, S.SENDING]), DeliveryRow.due_at >= today.astimezone(dt.UTC),
                DeliveryRow.due_at < tomorrow.astimezone(dt.UTC)).order_by(DeliveryRow.due_at)))
            needing = DeliveryRow.status.in_(NEEDS_ATTENTION)  # these stay for good: count them, list a few
            attention_count = session.scalar(select(func.count()).select_from(DeliveryRow).where(needing)) or 0
            attention = list(session.scalars(select(DeliveryRow).where(needing)
                                             .order_by(DeliveryRow.updated_at.desc()).limit(MAX_LINES)))
            paused = [p.name for p in session.scalars(select(PlatformRow).where(PlatformRow.paused_reason.isnot(None)))]
        day = yesterday.date().isoformat()
        lines = [f"Went out on {day}: {len(posted)}"]
        lines += [f"- {r.story_id} · {PLATFORM_NAMES.get(r.platform, r.platform)} {r.kind}"
                  + (f": {r.remote_url}" if r.remote_url else "") for r in posted[:MAX_LINES]]
        lines += ["", f"Goes out today: {len(coming)}"]
        lines += [f"- {self.settings.local_time(r.due_at, '%H:%M')} {r.story_id} · "
                  f"{PLATFORM_NAMES.get(r.platform, r.platform)} {r.kind}" for r in coming[:MAX_LINES]]
        lines += ["", f"Needs attention: {attention_count}"
                  + (f"; paused: {', '.join(PLATFORM_NAMES.get(p, p) for p in paused)}" if paused else "")]
        lines += [f"- {self._delivery_line(r)}" for r in attention]
        return f"oneyearago digest for {today.date().isoformat()}", "\n".join(lines)

    def test(self) -> list[tuple[str, bool]]:
        """Send one test message to every URL; each URL's service (never the URL) and whether it worked."""
        results = []
        for url in self.urls:
            ok = self.send([url], "oneyearago: test", "This is a test message from oneyearago: notifications "
                                                      "reach you here.")
            results.append((url.split("://", 1)[0] + "://", bool(ok and ok[0])))
        return results

    def _deliver(self, title: str, body: str) -> bool:
        try:
            results = self.send(self.urls, self.mask(title), self.mask(body))
        except Exception as exc:
            log.error("could not send a notification: %s", self.mask(type(exc).__name__))
            return False
        if not any(results):
            log.error("no notification service took the message (%d configured)", len(self.urls))
            return False
        if not all(results):
            log.warning("%d of %d notification services did not take the message", results.count(False),
                        len(results))
        return True

    def _remember(self, keys: Iterable[str], now: dt.datetime) -> None:
        with self.store.session() as session:
            known = set(session.scalars(select(NoticeRow.key).where(NoticeRow.key.in_(list(keys)))))
            for key in dict.fromkeys(keys):
                if key not in known:
                    session.add(NoticeRow(key=key, told_at=now))

    # ------------------------------------------------------------------ in the run loop

    def tick(self, now: dt.datetime | None = None) -> None:
        """One check and, when it is time, the digest (what ``run`` does every :data:`CHECK_EVERY`, through
        :func:`bot.runner.side_job`, which logs an error and never raises it)."""
        self.check(now)
        self.digest(now)
