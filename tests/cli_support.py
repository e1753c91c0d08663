"""Support for tests that run the command line as an operator does: a clean working folder, the
CLI in this process, and a snapshot of every row of a queue (to show a refused load changed nothing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import main


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in ``tmp_path`` with none of the machine's ``ONEYEARAGO_*`` settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ONEYEARAGO_"):
            monkeypatch.delenv(name)
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, db: str | None = "sqlite:///queue.db"
            ) -> tuple[int, str, str]:
    """``oneyearago [--db DB] ARGS``: its exit status, standard output and standard error."""
    try:
        main([*(["--db", db] if db else []), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(db_url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table of the queue, in a stable order."""
    engine = sa.create_engine(db_url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {name: sorted(tuple(map(str, row)) for row in conn.execute(sa.select(table)))
                    for name, table in meta.tables.items()}
    finally:
        engine.dispose()
