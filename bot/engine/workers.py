"""Workers sharing one database: announce, heartbeat (renewing leases), leave."""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from bot.models import PlatformRow, WorkerRow
from bot.store import Store
from posts.errors import StoreError

if TYPE_CHECKING:
    from bot.engine.engine import Engine


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def ensure_platform_rows(engine: Engine) -> None:
    """Create the per-platform state rows (their lock serialises quota checks across workers)."""
    at = engine.clock()
    with engine.store.session() as session:
        known = set(session.scalars(select(PlatformRow.name)))
        for name in sorted(engine.adapters):  # one order for every worker: two first starts cannot deadlock
            if name not in known:
                session.execute(_insert_ignore(PlatformRow.__table__, engine.store, {"name": name, "updated_at": at}))


def register(engine: Engine) -> None:
    """Announce this worker. On SQLite, refuse when another live worker already runs on the file."""
    at, lease = engine.clock(), engine.settings.lease
    with engine.store.session() as session:
        live = [w for w in session.scalars(select(WorkerRow)) if w.id != engine.worker
                and w.heartbeat_at > at - lease and not dead_here(w)]
        if live and engine.store.is_sqlite:
            other = live[0]
            raise StoreError(f"another worker ({other.id}, last seen {other.heartbeat_at:%H:%M:%S} UTC) "
                             "already runs on this SQLite database, and SQLite supports one worker; to run "
                             "several, use PostgreSQL (ONEYEARAGO_DATABASE_URL=postgresql+psycopg://...)")
        for stale in session.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at < at - 10 * lease)):
            session.delete(stale)
        host, _, pid = engine.worker.rpartition(":")
        session.merge(WorkerRow(id=engine.worker, host=host or socket.gethostname(),
                                pid=int(pid) if pid.isdigit() else os.getpid(),
                                platforms=",".join(engine.adapters), started_at=at, heartbeat_at=at))
    ensure_platform_rows(engine)


def heartbeat(engine: Engine) -> None:
    """Renew this worker's row and the leases of the posts it is sending; write the sweep times."""
    at = engine.clock()
    with engine.store.session() as session:
        session.execute(update(WorkerRow).where(WorkerRow.id == engine.worker).values(heartbeat_at=at))
        record_sweeps(engine, session)
    engine.transitions.renew(at)


def record_sweeps(engine: Engine, session: Any = None) -> None:
    """Write when each platform's sweep last finished (``platforms.swept_at``, for monitoring), if it changed.

    Sweeps only note the time in memory (:attr:`Engine.swept`); the heartbeat writes it, so the time
    monitoring reads is at most a third of the lease old and no sweep waits for this write.
    """
    with engine._lock:
        changed = {p: at for p, at in engine.swept.items() if engine._swept_written.get(p) != at}
    if not changed:
        return
    if session is None:
        with engine.store.session() as own:
            _write_sweeps(own, changed)
    else:
        _write_sweeps(session, changed)
    with engine._lock:
        engine._swept_written.update(changed)


def _write_sweeps(session: Any, changed: dict[str, dt.datetime]) -> None:
    """Update the platforms' rows in the order of their names, the one order every worker locks them in.

    Workers learn their platforms' sweep times in whatever order their sweeps happen to end; updating
    the rows in that order let two workers each lock one row and wait for the other's (PostgreSQL
    then aborts one of them with "deadlock detected": a worker's heartbeat failed, or its exit did).
    """
    for platform, at in sorted(changed.items()):
        session.execute(update(PlatformRow).where(PlatformRow.name == platform).values(swept_at=at))


def deregister(engine: Engine) -> None:
    record_sweeps(engine)
    with engine.store.session() as session:
        session.execute(delete(WorkerRow).where(WorkerRow.id == engine.worker))


def dead_here(worker: WorkerRow) -> bool:
    """Whether a worker row belongs to a process of this host that no longer exists (killed, crashed)."""
    if worker.host != socket.gethostname():
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _insert_ignore(table: Any, store: Store, values: dict[str, Any]) -> Any:
    """An INSERT that does nothing when the row exists (PostgreSQL and SQLite)."""
    if store.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(**values).on_conflict_do_nothing()
