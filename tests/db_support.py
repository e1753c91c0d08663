"""Support for database tests: every write statement sent to a database (for tests that check a read
writes nothing), and moving a queue to a given schema revision (for the migrations' tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


@contextmanager
def writes(engine: Any = Engine) -> Iterator[list[str]]:
    """Every INSERT, UPDATE or DELETE (or other write) ``engine`` sends while inside; by default
    every engine's, including those a command opens for itself."""
    seen: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        word = statement.lstrip().split(None, 1)[0].upper()
        if word in WRITE_WORDS:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", watch)


def migrate(store: Any, revision: str, *, down: bool = False) -> None:
    """Bring ``store``'s database (opened with ``migrate=False``) up, or ``down``, to ``revision``."""
    from alembic import command

    from bot.store import _alembic_config

    config = _alembic_config(store.url)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
