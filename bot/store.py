"""Open the queue database, keep its schema current (Alembic), and hand out sessions."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import mask_url
from bot.errors import StoreError

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
        try:
            kwargs: dict[str, Any] = {"json_serializer": _to_json}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            self.engine: Engine = create_engine(url, future=True, **kwargs)
        except (ArgumentError, ImportError, SQLAlchemyError) as exc:
            raise StoreError(f"cannot use database {mask_url(url)}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Bring the schema to the newest revision; never drops a queue."""
        if self.is_sqlite and self.url.startswith("sqlite:///") and ":memory:" not in self.url:
            Path(self.url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            with _MIGRATING, self.engine.begin() as conn:
                if self.current_revision(conn) == self.head_revision():
                    return
                config = _alembic_config(self.url)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except DBAPIError as exc:
            raise StoreError(f"cannot open or upgrade database {mask_url(self.url)}: {exc.orig}") from None

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

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC: the one place the real clock is read."""
    return dt.datetime.now(dt.UTC)
