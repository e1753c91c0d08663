"""Prometheus metrics and health checks, read from the queue database when asked.

Nothing is counted in memory: every scrape asks the store (a :class:`StoreCollector` on a
``CollectorRegistry`` of our own, never the library's global one), so the numbers are the same
whichever process serves them (the dashboard, or ``run`` on ``ONEYEARAGO_METRICS_ADDR``), survive
restarts, and count the posts of every worker sharing the database.

* ``/healthz``: the process answers and ``SELECT 1`` works on the database.
* ``/readyz``: the database is at the schema revision this version expects, and no platform is paused.

:class:`MetricsServer` is the small threaded HTTP server ``run`` starts for them. Loopback clients read
it freely; any other client sends the operator token (``ONEYEARAGO_WEB_TOKEN``) as ``Authorization:
Bearer TOKEN``, and a non-loopback address is refused without a token, as the dashboard is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import http.server
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, split_host_port
from bot.models import AttemptRow, ConversationRow, DeliveryRow, DeliveryStatus, PlatformRow, WorkerRow
from bot.store import Store, explain_db_error
from bot.web.security import is_loopback
from posts.clock import utcnow
from posts.errors import BotError
from posts.masking import mask_url

log = logging.getLogger(__name__)

S = DeliveryStatus
LATENESS_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
"""Upper bounds (seconds) of the lateness histogram: from a tenth of a second to a day."""
LATENESS_DAYS = 7
"""The lateness histogram counts the posts of the last this many days (bounded work per scrape)."""
WINDOW_NAMES = {dt.timedelta(hours=24): "24h", dt.timedelta(minutes=15): "15m"}
HEALTH_PATHS = ("/metrics", "/healthz", "/readyz")
"""Paths a loopback client reads without the operator token (the dashboard and ``run``'s port)."""


class StoreCollector(Collector):
    """Every metric, read from the store at scrape time."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], dt.datetime] = utcnow):
        self.store = store
        self.settings = settings
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # collected lazily: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("oneyearago_database_up", "1 when the queue database answered this scrape, else 0")
        try:
            families = self._families(self.clock())
        except SQLAlchemyError as exc:
            log.warning("metrics: %s", explain_db_error(exc, self.store.url, "cannot read the queue database"))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, now: dt.datetime) -> list[Metric]:
        platforms = list(self.settings.platforms)
        with self.store.session() as session:
            by_status = session.execute(select(DeliveryRow.platform, DeliveryRow.status, func.count())
                                        .group_by(DeliveryRow.platform, DeliveryRow.status)).all()
            attempts = session.execute(
                select(DeliveryRow.platform, DeliveryRow.kind, AttemptRow.outcome, func.count())
                .join(DeliveryRow, AttemptRow.delivery_id == DeliveryRow.id)
                .where(AttemptRow.finished_at.is_not(None))
                .group_by(DeliveryRow.platform, DeliveryRow.kind, AttemptRow.outcome)).all()
            next_due = session.execute(select(DeliveryRow.platform, func.min(DeliveryRow.due_at))
                                       .where(DeliveryRow.status == S.PENDING)
                                       .group_by(DeliveryRow.platform)).all()
            overdue = dict(session.execute(select(DeliveryRow.platform, func.count())  # type: ignore[arg-type]
                                           .where(DeliveryRow.status == S.PENDING, DeliveryRow.due_at <= now)
                                           .group_by(DeliveryRow.platform)).all())
            last_post = session.execute(select(DeliveryRow.platform, func.max(DeliveryRow.posted_at))
                                        .where(DeliveryRow.posted_at.is_not(None))
                                        .group_by(DeliveryRow.platform)).all()
            since = now - dt.timedelta(days=LATENESS_DAYS)
            sends = session.execute(select(DeliveryRow.platform, DeliveryRow.due_at, DeliveryRow.posted_at)
                                    .where(DeliveryRow.status == S.POSTED, DeliveryRow.posted_at >= since)).all()
            states = list(session.scalars(select(PlatformRow)))
            heartbeat = session.scalar(select(func.max(WorkerRow.heartbeat_at)))
            conversations = session.execute(
                select(ConversationRow.platform, ConversationRow.total, ConversationRow.seen_total,
                       ConversationRow.swept_at)).all()
            quota = {p: quota_left(session, p, now, self.settings) for p in platforms}
        platforms += sorted({p for p, *_ in by_status} - set(platforms))
        families: list[Metric] = []

        deliveries = GaugeMetricFamily("oneyearago_deliveries", "Deliveries in the queue by platform and status",
                                       labels=["platform", "status"])
        counts = {(p, str(s)): n for p, s, n in by_status}
        for platform in platforms:
            for status in S:
                deliveries.add_metric([platform, status.value], counts.get((platform, status.value), 0))
        families.append(deliveries)
        for status, name, what in ((S.UNCONFIRMED, "unconfirmed", "may or may not be on the platform"),
                                   (S.MISSED, "missed", "roots that would have gone out too late")):
            gauge = GaugeMetricFamily(f"oneyearago_{name}_deliveries",
                                      f"Deliveries {name} ({what}); only the operator's retry moves them on",
                                      labels=["platform"])
            for platform in platforms:
                gauge.add_metric([platform], counts.get((platform, status.value), 0))
            families.append(gauge)

        posts = CounterMetricFamily("oneyearago_posts", "Finished send attempts by platform, kind and outcome "
                                    "(posted, rejected, rate-limited, unknown, ...), counted from the attempts table",
                                    labels=["platform", "kind", "outcome"])
        for platform, kind, outcome, n in attempts:
            posts.add_metric([platform, kind, outcome], n)
        families.append(posts)

        lateness = HistogramMetricFamily(
            "oneyearago_post_lateness_seconds",
            f"How late each post went out after its due time (posts of the last {LATENESS_DAYS} days)",
            labels=["platform"])
        late: dict[str, list[float]] = {p: [] for p in platforms}
        for platform, due_at, posted_at in sends:
            if posted_at is None:
                continue
            late.setdefault(platform, []).append(max(0.0, (posted_at - due_at).total_seconds()))
        for platform, values in late.items():
            buckets = [(str(bound), float(sum(1 for v in values if v <= bound))) for bound in LATENESS_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            lateness.add_metric([platform], buckets, sum_value=sum(values))
        families.append(lateness)

        until = GaugeMetricFamily("oneyearago_next_due_seconds", "Seconds until the platform's next pending "
                                  "post is due (negative: overdue); absent when nothing is pending",
                                  labels=["platform"])
        for platform, due_at in next_due:
            until.add_metric([platform], (due_at - now).total_seconds())
        families.append(until)

        due_unsent = GaugeMetricFamily("oneyearago_due_unsent", "Deliveries past their due time and not sent yet "
                                       "(waiting for a quota, a rate limit, a retry, or a stopped run loop)",
                                       labels=["platform"])
        for platform in platforms:
            due_unsent.add_metric([platform], overdue.get(platform, 0))
        families.append(due_unsent)

        last = GaugeMetricFamily("oneyearago_last_post_timestamp_seconds",
                                 "When the platform's last successful post went out (Unix time)", labels=["platform"])
        for platform, posted_at in last_post:
            if posted_at is None:
                continue
            last.add_metric([platform], posted_at.timestamp())
        families.append(last)

        left = GaugeMetricFamily("oneyearago_quota_remaining", "Posts the platform's quota still allows in the "
                                 "rolling window ending now (posts in flight count as posted)",
                                 labels=["platform", "window"])
        limit = GaugeMetricFamily("oneyearago_quota_limit", "The platform's quota: posts allowed per rolling "
                                  "window (ONEYEARAGO_QUOTA_*)", labels=["platform", "window"])
        for platform, windows in quota.items():
            for window, (allowed, remaining) in windows.items():
                left.add_metric([platform, window], remaining)
                limit.add_metric([platform, window], allowed)
        families += [left, limit]

        paused = GaugeMetricFamily("oneyearago_platform_paused", "1 when the platform is paused (its credentials "
                                   "were refused: only the operator's retry resumes it)", labels=["platform"])
        waiting = GaugeMetricFamily("oneyearago_rate_limit_wait_seconds", "Seconds the platform told the bot to "
                                    "wait (rate limited); 0 when it may be called", labels=["platform"])
        swept = GaugeMetricFamily("oneyearago_last_sweep_timestamp_seconds",
                                  "When a sweep of the platform last finished (Unix time)", labels=["platform"])
        for state in states:
            paused.add_metric([state.name], 1 if state.paused_reason else 0)
            wait = (state.retry_at - now).total_seconds() if state.retry_at is not None else 0.0
            waiting.add_metric([state.name], max(0.0, wait))
            if state.swept_at is not None:
                swept.add_metric([state.name], state.swept_at.timestamp())
        families += [paused, waiting, swept]

        new = GaugeMetricFamily("oneyearago_conversation_new_replies", "Replies under the bot's threads that the "
                                "operator has not marked seen (the Conversation page)", labels=["platform"])
        read = GaugeMetricFamily("oneyearago_conversation_read_timestamp_seconds", "When the conversation sweep "
                                 "last read a thread of the platform (Unix time)", labels=["platform"])
        unseen: dict[str, int] = {}
        latest: dict[str, dt.datetime] = {}
        for platform, total, seen_total, swept_at in conversations:
            unseen[platform] = unseen.get(platform, 0) + max(0, total - seen_total)
            if swept_at is not None and (platform not in latest or swept_at > latest[platform]):
                latest[platform] = swept_at
        for platform in sorted(unseen):
            new.add_metric([platform], unseen[platform])
        for platform in sorted(latest):
            read.add_metric([platform], latest[platform].timestamp())
        families += [new, read]

        beat = GaugeMetricFamily("oneyearago_worker_heartbeat_timestamp_seconds",
                                 "The latest heartbeat of a running `oneyearago run` (Unix time); absent when none runs")
        if heartbeat is not None:
            beat.add_metric([], heartbeat.timestamp())
        families.append(beat)
        return families


def quota_left(session: Any, platform: str, now: dt.datetime, settings: Settings) -> dict[str, tuple[int, int]]:
    """Each quota window of ``platform`` (``24h``, ``15m``): (posts allowed, posts still allowed now).

    Counted as the engine counts before a send (:func:`bot.engine.holds.hold_for`): the posts of the
    rolling window ending now, plus those in flight.
    """
    from bot.engine.holds import window_count

    result = {}
    for window, allowed in settings.quotas(platform):
        used = window_count(session, platform, now, window)
        result[WINDOW_NAMES.get(window, f"{int(window.total_seconds())}s")] = (allowed, max(0, allowed - used))
    return result


def registry(store: Store, settings: Settings, clock: Callable[[], dt.datetime] = utcnow) -> CollectorRegistry:
    """A registry of our own (never the global default) holding the store's collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(store, settings, clock))
    return reg


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type."""
    return generate_latest(reg), CONTENT_TYPE_LATEST


# ---------------------------------------------------------------------------- health


@dataclasses.dataclass
class Health:
    """What ``/healthz``, ``/readyz`` and ``oneyearago health`` say."""

    database: bool
    """``SELECT 1`` worked."""
    revision: str | None = None
    head: str | None = None
    paused: dict[str, str] = dataclasses.field(default_factory=dict)
    """Paused platforms, with the reason (masked)."""
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.database

    @property
    def ready(self) -> bool:
        return self.database and self.revision == self.head and not self.paused

    @property
    def reasons(self) -> list[str]:
        """Why it is not ready (empty when it is)."""
        if not self.database:
            return [f"database unreachable: {self.error}"]
        out = []
        if self.revision != self.head:
            out.append(f"database schema at revision {self.revision or 'none'}, this version needs {self.head} "
                       "(run any oneyearago command that writes, e.g. `oneyearago status`, to upgrade it)")
        out += [f"platform {name} is paused: {reason}" for name, reason in sorted(self.paused.items())]
        return out

    def healthz(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"status": "ok" if self.healthy else "unhealthy", "database": self.database}
        if not self.database:
            body["error"] = self.error
        return (200 if self.healthy else 503), body

    def readyz(self) -> tuple[int, dict[str, Any]]:
        body = {"status": "ready" if self.ready else "not ready", "database": self.database,
                "revision": self.revision, "head": self.head, "paused": sorted(self.paused),
                "reasons": self.reasons}
        return (200 if self.ready else 503), body


def check(store: Store, mask: Callable[[str], str] = str, *, ready: bool = True) -> Health:
    """Ask the database: ``SELECT 1``, then (with ``ready``) its revision and the paused platforms."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if not ready:
                return Health(True)
            revision = store.current_revision(conn)
        head = store.head_revision()
        paused: dict[str, str] = {}
        if revision is not None:
            with store.session() as session:
                paused = {name: mask(reason or "") for name, reason in
                          session.execute(select(PlatformRow.name, PlatformRow.paused_reason)
                                          .where(PlatformRow.paused_reason.is_not(None)))}
        return Health(True, revision, head, paused)
    except SQLAlchemyError as exc:
        return Health(False, error=mask(explain_db_error(exc, store.url, "database error")))


# ---------------------------------------------------------------------------- the metrics port of ``run``


def bearer_ok(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer TOKEN``."""
    scheme, _, given = header.partition(" ")
    return (bool(token) and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")))


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on a port of their own, in a daemon thread of ``run``."""

    def __init__(self, store: Store, settings: Settings, address: str, *,
                 clock: Callable[[], dt.datetime] = utcnow):
        host, port = split_host_port(address)
        token = str(getattr(settings, "web_token", "") or "")
        if not is_loopback(host) and not token:
            raise BotError(f"ONEYEARAGO_METRICS_ADDR={address} is not a loopback address: set ONEYEARAGO_WEB_TOKEN "
                           "(scrapers send it as Authorization: Bearer) or listen on 127.0.0.1")
        self.store, self.settings, self.token = store, settings, token
        self.registry = registry(store, settings, clock)
        self.mask = settings.masker()
        handler = self._handler()
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise BotError(f"ONEYEARAGO_METRICS_ADDR={address}: cannot listen there ({exc.strerror}); choose a "
                           "free port, or leave it empty to serve no metrics") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def respond(self, path: str, client: str, authorization: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        if path not in HEALTH_PATHS:
            return 404, "text/plain; charset=utf-8", b"Not found: this port serves /metrics, /healthz and /readyz.\n"
        if not is_loopback(client) and not bearer_ok(authorization, self.token):
            return 401, "text/plain; charset=utf-8", b"The operator token is required (Authorization: Bearer).\n"
        if path == "/metrics":
            body, kind = exposition(self.registry)
            return 200, kind, body
        health = check(self.store, self.mask, ready=path == "/readyz")
        status, data = health.readyz() if path == "/readyz" else health.healthz()
        return status, "application/json", json.dumps(data).encode() + b"\n"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "oneyearago"
            sys_version = ""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    status, kind, body = server.respond(path, self.client_address[0],
                                                        self.headers.get("Authorization", ""))
                except Exception as exc:  # never a traceback (or a secret) to a scraper
                    log.warning("metrics: %s", server.mask(f"{type(exc).__name__}: {exc}"))
                    status, kind, body = 500, "text/plain; charset=utf-8", b"internal error\n"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: %s", format % args)

        return Handler


def describe_address(server: MetricsServer) -> str:
    return f"metrics on {mask_url(server.url)}/metrics (and /healthz, /readyz)"
