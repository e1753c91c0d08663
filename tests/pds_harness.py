"""Run the real Bluesky reference server on loopback for integration tests.

One ``node tests/pds/serve.js`` process holds an in-memory ``did:plc`` directory
(``@did-plc/server``) and the reference PDS (``@atproto/pds``, SQLite + disk blobstore), every
listener bound to 127.0.0.1. The node packages are installed by ``scripts/install-pds.sh`` into
``$ONEYEARAGO_PDS_DIR`` (default ``<repo>/.cache/pds``); :func:`ensure_installed` runs it when needed.

The PDS alone serves no ``app.bsky.*`` views (profiles, threads, feeds): log in with
``client.login(handle, password, fetch_bsky_profile=False)`` and pass the DID explicitly where the
SDK would take it from ``client.me``. See ``tests/adapters/test_pds_harness.py``.

Usage::

    with LocalPDS() as pds:
        account = pds.create_account("bot")
        client = atproto.Client(base_url=pds.url)
        client.login(account.handle, account.password, fetch_bsky_profile=False)
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
PDS_JS_DIR = REPO_ROOT / "tests" / "pds"
PACKAGE_JSON = PDS_JS_DIR / "package.json"
SERVE_JS = PDS_JS_DIR / "serve.js"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-pds.sh"
STAMP_NAME = ".install-stamp"

HANDLE_DOMAIN = ".test"
# The PDS requires the first label of a handle on one of its own domains to be 3..18 characters.
_HANDLE_LABEL_MAX = 18
_SUFFIX_HEX = 4  # bytes of randomness -> 8 hex characters

DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_MAX_LIFETIME = 3600  # seconds; serve.js exits by itself after this
_STOP_TIMEOUT = 15.0


class PDSError(RuntimeError):
    """The local PDS could not be installed, started or used."""


@dataclass(frozen=True)
class Account:
    handle: str
    password: str
    did: str
    email: str


def node_available() -> bool:
    """Whether a ``node`` executable is on PATH."""
    return shutil.which("node") is not None


def install_dir() -> Path:
    """Where ``scripts/install-pds.sh`` puts node_modules."""
    return Path(os.environ.get("ONEYEARAGO_PDS_DIR") or REPO_ROOT / ".cache" / "pds")


def _expected_stamp() -> str:
    """Same value as the stamp scripts/npm-install.sh writes for scripts/install-pds.sh."""
    pkg_hash = hashlib.sha256(PACKAGE_JSON.read_bytes()).hexdigest()
    node_version = subprocess.run(
        ["node", "-v"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return f"{pkg_hash} node {node_version}"


def is_installed(directory: Path | None = None) -> bool:
    """Whether the install stamp matches tests/pds/package.json and the running node."""
    directory = directory or install_dir()
    stamp = directory / STAMP_NAME
    if not stamp.is_file() or not (directory / "node_modules").is_dir():
        return False
    return stamp.read_text().strip() == _expected_stamp()


def ensure_installed(*, timeout: float = 1200.0) -> Path:
    """Install the node packages unless the install stamp says they are there; return the install dir.

    The first install takes a few minutes (better-sqlite3 is compiled); later calls cost one
    ``node -v``.
    """
    if not node_available():
        raise PDSError("Node.js is not installed: the local Bluesky server cannot run")
    directory = install_dir()
    if is_installed(directory):
        return directory
    try:
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "ONEYEARAGO_PDS_DIR": str(directory)},
        )
    except subprocess.TimeoutExpired as e:
        raise PDSError(f"{INSTALL_SCRIPT} did not finish in {timeout:.0f}s") from e
    if proc.returncode != 0 or not is_installed(directory):
        raise PDSError(
            f"{INSTALL_SCRIPT} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return directory


def _free_loopback_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (free when checked; the server binds them right after)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _handle_label(prefix: str) -> str:
    label = re.sub(r"[^a-z0-9-]", "", prefix.lower()).strip("-")
    label = label[: _HANDLE_LABEL_MAX - 2 * _SUFFIX_HEX]
    return f"{label}{secrets.token_hex(_SUFFIX_HEX)}"


class LocalPDS:
    """A throwaway reference PDS + PLC directory on 127.0.0.1, one node process.

    Each instance gets two free loopback ports, a fresh temporary data dir (removed on stop), a
    random JWT secret, PLC rotation key and admin password. Use as a context manager or call
    :meth:`start` / :meth:`stop`. ``url`` is the PDS base URL (``http://127.0.0.1:<port>``).
    """

    def __init__(
        self,
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        log_level: str = "warn",
        keep_data: bool = False,
    ) -> None:
        self.startup_timeout = startup_timeout
        self.max_lifetime = max_lifetime
        self.log_level = log_level
        self.keep_data = keep_data
        self.admin_password = secrets.token_urlsafe(18)
        self.url: str | None = None
        self.plc_url: str | None = None
        self.port: int | None = None
        self.plc_port: int | None = None
        self.version: str | None = None
        self.tmp_dir: Path | None = None
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = None

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalPDS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, install: bool = True) -> LocalPDS:
        if self._proc is not None:
            raise PDSError("LocalPDS is already started")
        if not node_available():
            raise PDSError("Node.js is not installed: the local Bluesky server cannot run")
        directory = ensure_installed() if install else install_dir()
        t0 = time.monotonic()
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="oneyearago-pds-"))
        self.data_dir = self.tmp_dir / "data"
        self.data_dir.mkdir()
        self.log_path = self.tmp_dir / "server.log"
        # Ports are picked free and bound a moment later by node: retry if another process won the race.
        for attempt in range(3):
            try:
                self._spawn(directory)
                self._wait_ready(t0)
                break
            except PDSError:
                log = self.server_log()
                self._terminate()
                if "EADDRINUSE" in log and attempt < 2:
                    continue
                self._cleanup_files()
                raise
        self.startup_seconds = time.monotonic() - t0
        atexit.register(self.stop)
        return self

    def _spawn(self, directory: Path) -> None:
        self.plc_port, self.port = _free_loopback_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.plc_url = f"http://127.0.0.1:{self.plc_port}"
        # Never inherit a developer's PDS_* settings (a real hostname, a real PLC URL...).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PDS_", "PLC_"))}
        env.update(
            NODE_PATH=str(directory / "node_modules"),
            PLC_PORT=str(self.plc_port),
            PDS_PORT=str(self.port),
            PDS_HOSTNAME="localhost",
            PDS_DEV_MODE="true",
            PDS_DATA_DIRECTORY=str(self.data_dir),
            PDS_BLOBSTORE_DISK_LOCATION=str(self.data_dir / "blobs"),
            PDS_JWT_SECRET=secrets.token_hex(16),
            PDS_ADMIN_PASSWORD=self.admin_password,
            PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=secrets.token_hex(32),
            PDS_SERVICE_HANDLE_DOMAINS=HANDLE_DOMAIN,
            PDS_INVITE_REQUIRED="true",
            PDS_DID_PLC_URL=self.plc_url,
            LOG_ENABLED="true",
            LOG_LEVEL=self.log_level,
            ONEYEARAGO_PDS_MAX_SECONDS=str(int(self.max_lifetime)),
            ONEYEARAGO_PDS_PARENT_PID=str(os.getpid()),
        )
        assert self.log_path is not None
        self._log_file = open(self.log_path, "wb")  # closed in _terminate
        self._proc = subprocess.Popen(
            ["node", str(SERVE_JS)],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.startup_timeout
        ready = None
        while ready is None:
            ready = self._ready_line()
            if ready is not None:
                break
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                raise PDSError(f"the local PDS exited during startup (exit {code}):\n{self.server_log()}")
            if time.monotonic() > deadline:
                raise PDSError(
                    f"the local PDS did not print its ready line within {self.startup_timeout:.0f}s:\n"
                    f"{self.server_log()}"
                )
            time.sleep(0.05)
        self.version = ready.get("version")
        last_error: Exception | None = None
        while True:
            try:
                r = httpx.get(f"{self.url}/xrpc/_health", timeout=5)
                if r.status_code == 200:
                    return
                last_error = PDSError(f"HTTP {r.status_code}: {r.text[:200]}")
            except httpx.HTTPError as e:
                last_error = e
            if time.monotonic() > deadline:
                raise PDSError(
                    f"the local PDS did not answer /xrpc/_health within {self.startup_timeout:.0f}s "
                    f"({last_error}):\n{self.server_log()}"
                )
            time.sleep(0.1)

    def _ready_line(self) -> dict | None:
        if self.log_path is None or not self.log_path.exists():
            return None
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"ready":true' in line:
                with contextlib.suppress(ValueError):
                    return json.loads(line)
        return None

    def server_log(self, tail: int = 8000) -> str:
        """The last ``tail`` characters of the server's stdout+stderr."""
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(errors="replace")
        return text[-tail:] if text else "(server log is empty)"

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after 15 s) and remove its data. Idempotent."""
        self._terminate()
        self._cleanup_files()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=_STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _cleanup_files(self) -> None:
        if self.tmp_dir is not None and not self.keep_data:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    # -- accounts -------------------------------------------------------------------------------

    @property
    def admin_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth("admin", self.admin_password)

    def _xrpc(self, nsid: str, body: dict, *, auth: httpx.Auth | None = None) -> dict:
        if not self.running:
            raise PDSError("the local PDS is not running")
        r = httpx.post(f"{self.url}/xrpc/{nsid}", json=body, auth=auth, timeout=30)
        if r.status_code != 200:
            raise PDSError(f"{nsid} -> HTTP {r.status_code}: {r.text[:500]}")
        return r.json()

    def create_invite_code(self, use_count: int = 1) -> str:
        return self._xrpc(
            "com.atproto.server.createInviteCode", {"useCount": use_count}, auth=self.admin_auth
        )["code"]

    def create_account(self, handle_prefix: str = "bot") -> Account:
        """Create a new ``did:plc`` account ``<prefix><8 hex>.test`` with a random password."""
        label = _handle_label(handle_prefix)
        handle = f"{label}{HANDLE_DOMAIN}"
        email = f"{label}@example.com"
        password = secrets.token_urlsafe(18)
        out = self._xrpc(
            "com.atproto.server.createAccount",
            {"handle": handle, "email": email, "password": password, "inviteCode": self.create_invite_code()},
        )
        return Account(handle=out["handle"], password=password, did=out["did"], email=email)
