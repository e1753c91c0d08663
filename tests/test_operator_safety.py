"""What a careless operator (or a hostile server) meets through the CLI and the dashboard: commands
that never destroy, secrets masked in every form, databases refused or explained in one line, settings
kept in range, and delivery ids that cannot be taken for story ids."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.config import load_settings
from bot.store import Store
from bot.web import create_app
from posts.masking import secret_forms
from tests.cli_support import isolate, run_cli

STORIES = """\
- id: alpha
  date: 2025-03-01T12:00:00Z
  headline: Alpha model released
  url: https://example.com/alpha
  one_year_later: It became the default choice.
- id: "1"
  date: 2025-03-02T12:00:00Z
  headline: A story whose id is a number
  one_year_later: Still a story, not a delivery.
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "stories.yaml").write_text(STORIES)
    return tmp_path


cli = run_cli  # oneyearago [--db DB] ARGS: (exit status, stdout, stderr)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- demo never destroys


def test_demo_refuses_a_folder_holding_anything_it_did_not_create(env, capsys):
    mine = env / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work")
    (mine / "notes").mkdir()
    before = digest(mine)
    code, out, err = cli(capsys, "demo", "--quiet", "--dir", "mine", db=None)
    assert code == 2 and "Traceback" not in err
    assert "holds files the demo did not create" in err and "'thesis.tex'" in err and "nothing was touched" in err
    assert digest(mine) == before and sorted(p.name for p in mine.iterdir()) == ["notes", "thesis.tex"]


def test_a_refused_demo_folder_suggests_another_one(env, capsys):
    (env / "oneyearago-demo").mkdir()
    (env / "oneyearago-demo" / "mine.txt").write_text("mine")
    code, _, err = cli(capsys, "demo", "--quiet", db=None)
    assert code == 2 and "'mine.txt'" in err
    assert "e.g. --dir oneyearago-demo-2;" in err


def test_demo_in_the_current_folder_never_empties_it(env, capsys):
    before = digest(env)
    code, _, err = cli(capsys, "demo", "--quiet", "--dir", ".", db=None)
    assert code == 2 and "'stories.yaml'" in err
    assert digest(env) == before


@pytest.mark.slow
def test_demo_runs_again_in_its_own_folder_and_starts_fresh(env, capsys):
    code, out, _ = cli(capsys, "demo", "--quiet", "--dir", "show", db=None)
    assert code == 0 and "sample stories" in out
    first = (env / "show" / "transcript.jsonl").read_text().count("\n")
    code, out, err = cli(capsys, "demo", "--quiet", "--dir", "show", db=None)
    assert code == 0, err
    assert (env / "show" / "transcript.jsonl").read_text().count("\n") == first  # fresh, not appended
    assert {p.name for p in (env / "show").iterdir()} <= {"demo.db", "demo.db-wal", "demo.db-shm",
                                                          "transcript.jsonl"}


# ---------------------------------------------------------------------------- secrets in every form


PASSWORD = 'pä"ss\\wörd/7-x'  # JSON, URL and repr escape each differently


class EchoPDS(http.server.BaseHTTPRequestHandler):
    """A PDS that refuses every login and echoes the request body in its error message."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        self._answer(body)

    def do_GET(self) -> None:
        self._answer(self.path)

    def _answer(self, echoed: str) -> None:
        data = json.dumps({"error": "AuthenticationRequired", "message": f"Invalid identifier or password: "
                           f"{echoed} (quoted: {urllib.parse.quote(echoed)})"}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_pds() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoPDS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def leaks(text: str, secret: str = PASSWORD) -> list[str]:
    """The forms of ``secret`` found in ``text`` (also where a terminal line break splits one)."""
    unwrapped = text.replace("\n", "")
    return [form for form in secret_forms(secret) if form in text or form in unwrapped]


def words(text: str) -> str:
    return " ".join(text.split())


def test_secret_forms_cover_json_url_and_repr_escapes():
    forms = secret_forms(PASSWORD)
    assert {PASSWORD, json.dumps(PASSWORD)[1:-1], json.dumps(PASSWORD, ensure_ascii=False)[1:-1],
            urllib.parse.quote(PASSWORD), urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote_plus(PASSWORD),
            repr(PASSWORD)[1:-1]} <= forms


def test_an_echoed_app_password_is_masked_in_output_database_and_dashboard(env, capsys, monkeypatch, echo_pds):
    monkeypatch.setenv("ONEYEARAGO_BLUESKY_HANDLE", "bot.test")
    monkeypatch.setenv("ONEYEARAGO_BLUESKY_APP_PASSWORD", PASSWORD)
    monkeypatch.setenv("ONEYEARAGO_BLUESKY_PDS_URL", echo_pds)
    live = ("--mode", "live", "--platforms", "bluesky")
    code, out, err = cli(capsys, *live, "doctor")
    assert code == 1 and "Invalid identifier or password" in out  # the echo reached us...
    assert leaks(out + err) == []  # ...masked in every form
    assert "[red]" not in out and "✗ Bluesky (live):" in out  # the mark is rendered, not printed as markup
    cli(capsys, *live, "load", "stories.yaml")
    code, out, err = cli(capsys, *live, "--debug", "run", "--once", "--now", "2026-03-01T12:00:00Z")
    assert "Invalid identifier or password" in words(out + err) and leaks(out + err) == []
    assert "p%C3%A4" not in out + err  # the JSON body, URL-encoded, is masked too
    code, out, err = cli(capsys, *live, "status")
    assert "paused" in out and leaks(out + err) == []
    code, out, err = cli(capsys, *live, "status", "--json")
    assert leaks(out + err) == []
    with contextlib.closing(sqlite3.connect(env / "queue.db")) as conn:
        dump = "\n".join(conn.iterdump())
    assert "Invalid identifier or password" in dump and leaks(dump) == []
    settings = load_settings({"database_url": "sqlite:///queue.db", "mode": "live", "platforms": "bluesky"},
                             env_file=None)
    store = Store(settings.database_url)
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as client:
        for page in ("/status", "/story/alpha", "/"):
            html = client.get(page).text
            assert leaks(html) == [], page
    store.dispose()


def test_a_secret_stored_by_an_older_version_never_reaches_a_page_or_the_cli(env, capsys, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_REDDIT_PASSWORD", PASSWORD)
    cli(capsys, "load", "stories.yaml")
    escaped = json.dumps({"password": PASSWORD})
    with contextlib.closing(sqlite3.connect(env / "queue.db")) as conn, conn:
        conn.execute("UPDATE deliveries SET status = 'failed', last_error = ? WHERE id = 1",
                     (f"rejected: server said {escaped} and {urllib.parse.quote_plus(PASSWORD)}",))
    code, out, err = cli(capsys, "status")
    assert "rejected: server said" in out and leaks(out + err) == []
    _, out, _ = cli(capsys, "status", "--json")
    assert leaks(out) == []
    settings = load_settings({"database_url": "sqlite:///queue.db"}, env_file=None)
    store = Store(settings.database_url)
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as client:
        html = client.get("/status").text
        assert "rejected: server said" in html and leaks(html) == []
        html = client.get("/story/alpha").text
        assert leaks(html) == []
    store.dispose()


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://bot@127.0.0.1:1/none?password=q-s3cret-pw&connect_timeout=2",
    "postgresql+psycopg://bot:u-s3cret-pw@127.0.0.1:1/none?connect_timeout=2",
])
def test_a_database_url_password_is_masked_in_errors_and_doctor(env, capsys, url):
    code, out, err = cli(capsys, "status", db=url)
    assert code == 1 and "Traceback" not in err and "127.0.0.1" in err
    assert "s3cret-pw" not in out + err
    code, out, err = cli(capsys, "--debug", "doctor", db=url)
    assert code == 1 and "✗ database" in out
    assert "s3cret-pw" not in out + err and "********" in out


# ---------------------------------------------------------------------------- databases


def test_a_database_from_a_newer_version_says_which_revision_and_what_to_do(env, capsys):
    cli(capsys, "load", "stories.yaml")
    with contextlib.closing(sqlite3.connect(env / "queue.db")) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    code, _, err = cli(capsys, "status")
    assert code == 1 and "CommandError" not in err and "Traceback" not in err
    assert "is at revision 0099, newer than this oneyearago" in err and "knows up to 00" in err
    assert "upgrade oneyearago, or use another --db" in err
    code, out, err = cli(capsys, "doctor")
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    assert "✗ database: database sqlite:///queue.db is at revision 0099" in out


@pytest.mark.postgres
def test_a_postgresql_database_from_a_newer_version_says_which_revision(env, capsys, postgres_url):
    Store(postgres_url).dispose()
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    code, out, err = cli(capsys, "doctor", db=postgres_url)
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    assert "is at revision 0099, newer than this oneyearago" in out


def other_program_db(path: Path, table: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(f"INSERT INTO {table} (name) VALUES ('precious')")


@pytest.mark.parametrize("table", ["users", "stories"])  # "stories" clashes with one of ours
def test_another_programs_sqlite_file_is_refused_without_writing_to_it(env, capsys, table):
    other_program_db(env / "app.db", table)
    before = (env / "app.db").read_bytes()
    for command in (("load", "stories.yaml"), ("status",), ("doctor",)):
        code, out, err = cli(capsys, *command, db="sqlite:///app.db")
        assert code == 1 and "Traceback" not in err, command
        assert f"holds tables that are not oneyearago's ({table})" in out + err
        assert "nothing was written" in out + err
    assert (env / "app.db").read_bytes() == before
    assert sorted(p.name for p in env.iterdir()) == ["app.db", "stories.yaml"]


def test_a_file_that_is_not_a_database_is_refused(env, capsys):
    (env / "notes.txt").write_text("not a database at all " * 100)
    before = (env / "notes.txt").read_bytes()
    code, _, err = cli(capsys, "status", db="sqlite:///notes.txt")
    assert code == 1 and "is not a SQLite database" in err and "Traceback" not in err
    assert (env / "notes.txt").read_bytes() == before


def test_a_mistyped_database_folder_is_not_created(env, capsys):
    code, _, err = cli(capsys, "load", "stories.yaml", db="sqlite:///qeueu/bot.db")
    assert code == 1 and "the folder" in err and "qeueu does not exist" in err and "mkdir -p" in err
    assert not (env / "qeueu").exists()


def test_the_default_database_is_created_where_the_bot_runs(env, capsys):
    code, out, _ = cli(capsys, "load", "stories.yaml", db=None)
    assert code == 0 and (env / "oneyearago.db").is_file()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("closed_cleanly", [True, False])  # without or with a write-ahead log left behind
def test_read_only_commands_work_on_a_database_in_a_read_only_folder(env, capsys, closed_cleanly):
    with tmpfs(env / "ro", "4m") as folder:
        db = f"sqlite:///{folder / 'queue.db'}"
        subprocess.run([sys.executable, "-m", "bot", "--db", db, "load", "stories.yaml"], check=True,
                       capture_output=True)
        if closed_cleanly:
            with contextlib.closing(sqlite3.connect(folder / "queue.db")) as conn:  # the last connection to
                conn.execute("SELECT count(*) FROM stories").fetchall()       # close folds the log in
        assert (folder / "queue.db-wal").exists() is not closed_cleanly
        if subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=False).returncode != 0:
            pytest.skip("cannot remount read-only")
        for command in (("status",), ("agenda", "--from", "2026-03-01", "--to", "2026-03-03"),
                        ("preview", "alpha"), ("doctor",)):
            code, out, err = cli(capsys, *command, db=db)
            assert code == 0 and "unable to open" not in err, (command, err)
        code, out, err = cli(capsys, "status", "--json", db=db)
        assert json.loads(out)["stories"] == 2
        code, _, err = cli(capsys, "skip", "alpha", db=db)
        assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "read-only" in err and "not writable" in err


def test_a_full_disk_is_one_clear_line(env, capsys):
    big = "\n".join(f"- id: s{i}\n  date: 2025-03-01\n  headline: Story {i}\n  summary: {'word ' * 400}"
                    for i in range(400))
    (env / "big.yaml").write_text(big)
    with tmpfs(env / "small", "256k") as folder:
        code, out, err = cli(capsys, "load", "big.yaml", db=f"sqlite:///{folder / 'queue.db'}")
    assert code == 1 and "Traceback" not in err
    assert err.startswith("error: database disk is full: free space on the file system holding ")
    assert len(err.strip().splitlines()) == 1 and "INSERT" not in err and len(err) < 400


# ---------------------------------------------------------------------------- settings in range


@pytest.mark.parametrize("setting, value, allowed", [
    ("sandbox_latency", "nan", "from 0 to 60"),
    ("sandbox_latency", "inf", "from 0 to 60"),
    ("sandbox_latency", "61", "from 0 to 60"),
    ("x_price_post", "nan", "from 0 to 1000"),
    ("x_price_post_link", "-1", "from 0 to 1000"),
    ("years", "100000", "at least 1 and at most 100"),
    ("max_attempts", "1000", "at most 100"),
    ("quota_x_24h", "-1", "at least 0"),
    ("grace", "999d", "at most 30d"),
    ("http_timeout", "2h", "at most 10m"),
    ("backlog_pace", "400d", "at most 1d"),
])
def test_numeric_settings_out_of_range_are_refused_naming_the_range(env, capsys, setting, value, allowed):
    code, _, err = cli(capsys, "-s", f"{setting}={value}", "status")
    assert code == 1 and "Traceback" not in err
    assert f"ONEYEARAGO_{setting.upper()}={value} (from option)" in err and allowed in err


def test_sandbox_latency_nan_from_the_environment_is_refused(env, capsys, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_SANDBOX_LATENCY", "nan")
    cli(capsys, "load", "stories.yaml")
    code, _, err = cli(capsys, "run", "--once", "--now", "2026-03-01T12:00:00Z")
    assert code == 1 and "ONEYEARAGO_SANDBOX_LATENCY=nan (from environment)" in err


# ---------------------------------------------------------------------------- story ids and delivery ids


def deliveries(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    _, out, _ = cli(capsys, "agenda", "--from", "2026-01-01", "--to", "2026-12-31", "--json")
    return json.loads(out)


def test_a_bare_number_is_a_story_id_and_a_delivery_is_written_with_a_hash(env, capsys):
    cli(capsys, "load", "stories.yaml")
    rows = deliveries(capsys)
    first = next(r for r in rows if r["id"] == 1)
    assert first["story_id"] == "alpha"  # delivery #1 belongs to another story than story "1"
    code, out, err = cli(capsys, "skip", "1")
    assert code == 0, err
    after = {r["id"]: r for r in deliveries(capsys)}
    assert after[1]["status"] == "pending"  # alpha's delivery #1 untouched
    assert {r["status"] for r in after.values() if r["story_id"] == "1"} == {"skipped"}
    assert {r["status"] for r in after.values() if r["story_id"] == "alpha"} == {"pending"}
    code, out, _ = cli(capsys, "retry", "1")  # story "1" again, all of it
    assert code == 0 and out.count("Queued again") == sum(1 for r in rows if r["story_id"] == "1")
    cli(capsys, "skip", "alpha")
    code, out, _ = cli(capsys, "retry", "#1")
    assert code == 0 and out.count("Queued again") == 1 and "#1 alpha" in out
    code, out, _ = cli(capsys, "retry", "--delivery", "2")
    assert code == 0 and out.count("Queued again") == 1 and "#2 alpha" in out
    code, _, err = cli(capsys, "skip", "#1")
    assert code == 1 and "skip takes a story id" in err
    code, _, err = cli(capsys, "retry", "#x1")
    assert code == 1 and "not a delivery id" in err


def test_a_number_that_is_no_story_points_to_the_delivery_spelling(env, capsys):
    cli(capsys, "load", "stories.yaml")
    code, _, err = cli(capsys, "retry", "3")
    assert code == 1 and "no story '3'" in err and "'#3'" in err and "--delivery 3" in err


def test_the_dashboard_tells_story_one_from_delivery_one(env, capsys):
    cli(capsys, "load", "stories.yaml")
    settings = load_settings({"database_url": "sqlite:///queue.db"}, env_file=None)
    store = Store(settings.database_url)
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as client:
        story = client.get("/skip/1")
        assert story.status_code == 200 and "A story whose id is a number" in story.text
        assert "Alpha model released" not in story.text
        delivery = client.get("/retry/%231")
        assert delivery.status_code == 200 and "delivery #1" in delivery.text
        assert "Alpha model released" in delivery.text
        as_story = client.get("/retry/1")
        assert as_story.status_code == 200 and "A story whose id is a number" in as_story.text
        token = client.cookies.get("oneyearago_csrf")
        page = client.get("/skip/1").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        done = client.post("/skip/1", data={"csrf_token": token})
        assert done.status_code == 200
    store.dispose()
    after = {r["id"]: r for r in deliveries(capsys)}
    assert after[1]["status"] == "pending"
    assert {r["status"] for r in after.values() if r["story_id"] == "1"} == {"skipped"}


def test_log_records_and_their_tracebacks_are_masked_in_every_form():
    import logging

    from bot import cli as cli_module
    from posts.masking import Masker

    cli_module.MASKER[0] = Masker([PASSWORD])
    try:
        try:
            raise RuntimeError(f"server said {json.dumps({'password': PASSWORD})}")
        except RuntimeError:
            record = logging.LogRecord("bot.engine", logging.ERROR, __file__, 1, "login as %s failed",
                                       (urllib.parse.quote_plus(PASSWORD),), sys.exc_info())
        assert cli_module.MaskSecrets().filter(record)
        text = logging.Formatter("%(message)s").format(record)
    finally:
        cli_module.MASKER[0] = Masker()
    assert "login as ******** failed" in text and "RuntimeError: server said" in text
    assert leaks(text) == []
