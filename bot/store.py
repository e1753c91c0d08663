"""Open the queue database, keep its schema current (Alembic), and hand out sessions."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot import __version__
from bot.config import SPEC_BY_NAME, mask_url
from posts.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATING = threading.Lock()
"""Alembic keeps its migration context in module globals: one upgrade at a time per process."""


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class EncodedJSON(dict):  # type: ignore[type-arg]
    """A mapping that carries its own JSON text: a value serialised once (to hash it, say) is stored as
    that text instead of being serialised a second time. Treat it as read-only."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str):
        super().__init__(value)
        self.text = text


def _to_json(value: Any) -> str:
    return value.text if type(value) is EncodedJSON else json.dumps(value)


class Store:
    """The queue database: an engine, a session factory, and the schema at its newest revision."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        self.path = sqlite_path(url)
        """The SQLite database file, or ``None`` (another backend, or in memory)."""
        self.read_only = False
        """The SQLite file's folder (or the file) is not writable: opened for reading only."""
        engine_url = url
        if self.path is not None:
            self.read_only = _check_sqlite_file(self.path, url)
            if self.read_only:
                engine_url = "sqlite:///" + _read_only_uri(self.path) + "&uri=true"
        try:
            kwargs: dict[str, Any] = {"json_serializer": _to_json}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            self.engine: Engine = create_engine(engine_url, future=True, **kwargs)
        except (ArgumentError, ImportError, SQLAlchemyError) as exc:
            raise StoreError(f"cannot use database {mask_url(url)}: {mask_url(str(exc))}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_read_only_pragmas if self.read_only else _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Bring the schema to the newest revision; never drops a queue.

        Raises:
            StoreError: the database was written by a newer version (or another program using Alembic),
                cannot be opened, or its schema cannot be upgraded (a read-only folder, a full disk).
        """
        try:
            with _MIGRATING, self.engine.begin() as conn:
                current, head = self.current_revision(conn), self.head_revision()
                if current == head:
                    return
                if current is not None and current not in known_revisions():
                    raise StoreError(
                        f"database {mask_url(self.url)} is at revision {current}, newer than this oneyearago "
                        f"{__version__} (knows up to {head}): upgrade oneyearago, or use another --db "
                        "(if no oneyearago wrote it, it is another program's database)")
                if self.read_only:
                    raise StoreError(
                        f"database {self.path} is at revision {current or 'none'} and needs an upgrade to "
                        f"{head}, but {describe_unwritable(self.path)}: make it writable for one run")  # type: ignore[arg-type]
                config = _alembic_config(self.url)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except DBAPIError as exc:
            raise StoreError(explain_db_error(exc, self.url, "cannot open or upgrade database")) from None

    @staticmethod
    def current_revision(conn: Any) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return self.current_revision(conn)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def refresh_statistics(self) -> None:
        """After a bulk write, let PostgreSQL's planner see the queue as it now is.

        Autovacuum analyses a table only a while after it changed; until then the planner plans
        for the table as it was (empty, after a first load) and the claim's parent check scans every
        posted row instead of using the delivery-slot index: tens of milliseconds a claim instead of
        a few. SQLite keeps no statistics unless asked to, and plans well without them.
        """
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE deliveries, stories"))

    def dispose(self) -> None:
        self.engine.dispose()


def known_revisions() -> set[str]:
    """Every schema revision this version of the bot has a migration for."""
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return {rev.revision for rev in script.walk_revisions()}


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (``None`` for another backend, memory or a ``file:`` URI)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def describe_unwritable(path: Path) -> str:
    folder = path.resolve().parent
    if not _writable(folder):
        return f"its folder {folder} is not writable (read-only)"
    return f"the file {path} is not writable (read-only)"


def _check_sqlite_file(path: Path, url: str) -> bool:
    """Check a SQLite database file before anything is written to it. Returns whether it must be
    opened read-only (it exists, is ours and up to date or not, but its folder or itself is not writable).

    Raises:
        StoreError: the folder does not exist (only the default database's is created), the file is not a
            SQLite database, or it holds another program's tables. Nothing is written in any case.
    """
    folder = Path(os.path.abspath(path)).parent
    if not folder.is_dir():
        if url == SPEC_BY_NAME["database_url"].default:
            folder.mkdir(parents=True, exist_ok=True)
        elif folder.exists():
            raise StoreError(f"database {path}: {folder} is not a folder; correct --db (ONEYEARAGO_DATABASE_URL)")
        else:
            raise StoreError(f"database {path}: the folder {folder} does not exist; create it (mkdir -p "
                             f"{folder}) or correct --db (ONEYEARAGO_DATABASE_URL)")
    if not path.exists():
        if not _writable(folder):
            raise StoreError(f"database {path} does not exist and cannot be created: its folder {folder} is not "
                             "writable (read-only)")
        return False
    if path.is_dir():
        raise StoreError(f"database {path} is a folder, not a file; point --db at a file (e.g. sqlite:///"
                         f"{path}/oneyearago.db)")
    read_only = not _writable(folder) or not os.access(path, os.W_OK)
    tables = _sqlite_tables(path, read_only)
    if tables and "alembic_version" not in tables:
        names = sorted(tables)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise StoreError(f"database {path} holds tables that are not oneyearago's ({shown}): it is another "
                         "program's database (or the first set-up of one was cut short: then delete it); point "
                         "--db at a new file or an oneyearago database (nothing was written)")
    return read_only


def _sqlite_tables(path: Path, read_only: bool) -> set[str]:
    """The table names of a SQLite file, read without writing to it (not even its journal mode)."""
    location = "file:" + urllib.parse.quote(str(path.resolve()))
    uris = (_read_only_uri(path),) if read_only else (location + "?mode=ro", location + "?mode=ro&immutable=1")
    error: sqlite3.Error | None = None
    for uri in uris:
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30)
            try:
                rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
            finally:
                conn.close()
            return {name for (name,) in rows}
        except sqlite3.DatabaseError as exc:
            error = exc
            if "not a database" in str(exc) or "malformed" in str(exc):
                break
    message = str(error)
    if "not a database" in message:
        raise StoreError(f"{path} is not a SQLite database (another program's file?): point --db at a new file "
                         "or an oneyearago database (nothing was written)")
    raise StoreError(f"cannot read database {path}: {message}")


def _read_only_uri(path: Path) -> str:
    """A URI that opens a SQLite file for reading without writing anything next to it: through its
    write-ahead log when one was left (its ``-shm`` with it), else as an immutable file."""
    location = "file:" + urllib.parse.quote(str(path.resolve()))
    if Path(f"{path}-wal").exists():
        return location + "?mode=ro"
    return location + "?mode=ro&immutable=1"


def explain_db_error(exc: BaseException, url: str, what: str = "database error") -> str:
    """One clear line for a database error: a full disk, a read-only or missing folder, or the driver's
    own message (its first line, never the SQL statement and its parameters)."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    path = sqlite_path(url)
    where = path.resolve().parent if path is not None else None
    lowered = message.lower()
    if "disk is full" in lowered or "no space left" in lowered or "disk full" in lowered:
        place = f"free space on the file system holding {where}" if where else "free space on the database server"
        return f"database disk is full: {place}, then run the command again (nothing was half-written)"
    if path is not None and ("readonly database" in lowered or "read-only" in lowered):
        return (f"database {path} is read-only for this command ({describe_unwritable(path)}): it needs to "
                "write; make it writable, or run the command where the database can be written")
    if path is not None and "unable to open database file" in lowered:
        if where is not None and not _writable(where):
            return f"cannot open database {path}: its folder {where} is not writable (read-only)"
        return f"cannot open database {path}: {message}"
    if len(message) > 300:
        message = message[:300] + "…"
    return f"{what} {mask_url(url)}: {mask_url(message)}"


def _sqlite_read_only_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
