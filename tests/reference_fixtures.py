"""The independent reference implementations (twitter-text, @atproto/api, snudown-js) for the tests.

``scripts/install-reference.sh`` (run by ``make test`` through ``make reference``) installs the npm
packages pinned in ``tests/reference/package.json`` into ``$ONEYEARAGO_REFERENCE_DIR`` (default
``<repo>/.cache/reference``). ``tests/reference/server.js`` serves them: one long-lived Node process
per test session, JSON lines over stdin/stdout, one method per reference function (see ``METHODS``
there). The ``reference`` fixture skips, with the reason, when Node.js or the install is missing;
tests that use it carry the ``reference`` marker.

Usage::

    def test_x(reference):
        assert reference.call("twitter.parseTweet", text="hi")["weightedLength"] == 2
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_JSON = REPO_ROOT / "tests" / "reference" / "package.json"
SERVER_JS = REPO_ROOT / "tests" / "reference" / "server.js"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-reference.sh"


class ReferenceError(RuntimeError):
    """The reference process failed or answered with an error."""


def install_dir() -> Path:
    """Where ``scripts/install-reference.sh`` puts node_modules."""
    return Path(os.environ.get("ONEYEARAGO_REFERENCE_DIR") or REPO_ROOT / ".cache" / "reference")


def missing_reason() -> str | None:
    """Why the reference implementations cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "Node.js is not installed: the reference implementations cannot run"
    directory = install_dir()
    stamp = directory / ".install-stamp"
    if not stamp.is_file() or not (directory / "node_modules").is_dir():
        return f"the reference implementations are not installed in {directory}: run `make reference`"
    node = subprocess.run(["node", "-v"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    want = f"{hashlib.sha256(PACKAGE_JSON.read_bytes()).hexdigest()} node {node}"
    if stamp.read_text().strip() != want:
        return f"the reference install in {directory} is out of date: run `make reference`"
    return None


class ReferenceProcess:
    """One ``node tests/reference/server.js`` process; calls are answered in order."""

    def __init__(self, directory: Path) -> None:
        self._proc = subprocess.Popen(
            ["node", str(SERVER_JS), str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="surrogatepass",
        )
        self._next_id = 0
        self._lock = threading.Lock()
        self.calls = 0

    def call(self, method: str, **params: Any) -> Any:
        """Call one reference method and return its result."""
        return self.call_many(method, [params])[0]

    def call_many(self, method: str, params: Iterable[dict[str, Any]]) -> list[Any]:
        """Call ``method`` once per params object, pipelined; results in the same order."""
        with self._lock:
            requests = []
            for item in params:
                self._next_id += 1
                requests.append({"id": self._next_id, "method": method, "params": item})
            payload = "".join(json.dumps(r) + "\n" for r in requests)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            # Write from a thread so that a large batch cannot block on a full pipe both ways.
            writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
            writer.start()
            results = []
            for request in requests:
                line = self._proc.stdout.readline()
                if not line:
                    raise ReferenceError(f"the reference process exited: {self._stderr()}")
                answer = json.loads(line)
                if answer.get("id") != request["id"]:
                    raise ReferenceError(f"answer out of order: {line[:200]}")
                if "error" in answer:
                    raise ReferenceError(f"{method} failed: {answer['error']}")
                results.append(answer["result"])
            writer.join()
            self.calls += len(requests)
            return results

    def _write(self, payload: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(payload)
        self._proc.stdin.flush()

    def _stderr(self) -> str:
        self._proc.kill()
        assert self._proc.stderr is not None
        return self._proc.stderr.read()[-2000:]

    def stop(self) -> None:
        """End the process (it exits when its stdin closes)."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


_PROCESS = pytest.StashKey[ReferenceProcess]()


@pytest.fixture(scope="session")
def reference(request: pytest.FixtureRequest) -> ReferenceProcess:
    """The session's reference process, started on first use and stopped when pytest ends."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    config = request.config
    if _PROCESS not in config.stash:
        process = ReferenceProcess(install_dir())
        config.stash[_PROCESS] = process
        config.add_cleanup(process.stop)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:  # one line at the end of the run: how much was compared
            config.add_cleanup(lambda: reporter.write_line(
                f"reference implementations: {process.calls:,} calls answered by one process"))
    return config.stash[_PROCESS]
