"""The run loop speaks systemd's notify protocol: READY=1, a fed watchdog, STOPPING=1 (a real AF_UNIX socket)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runner import run_forever
from bot.sdnotify import SystemdNotifier

UTC = dt.UTC


class Listener:
    """A datagram socket standing in for systemd's notify socket; collects what arrives."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def states(self) -> list[str]:
        return [line for _, message in self.messages for line in message.splitlines()
                if not line.startswith("STATUS=")]

    def last_is(self, state: str, timeout: float = 5) -> bool:
        """Whether ``state`` is (or soon becomes) the last state read: a datagram sent is read a moment
        later by the listening thread, longer on a loaded machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (not self.states() or self.states()[-1] != state):
            time.sleep(0.02)
        return bool(self.states()) and self.states()[-1] == state

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    listening = Listener(str(tmp_path / "notify.sock"))
    yield listening
    listening.close()


def test_without_notify_socket_nothing_is_sent():
    notifier = SystemdNotifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    notifier.feed()  # no error, no socket
    assert notifier.wait_limit(12.0) == 12.0


def test_an_abstract_socket_is_reached(listener):
    name = f"oneyearago-test-{os.getpid()}-{time.monotonic_ns()}"
    abstract = Listener("\0" + name)
    try:
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        deadline = time.monotonic() + 5
        while not abstract.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert abstract.states() == ["READY=1"]
    finally:
        abstract.close()


def test_watchdog_of_another_process_is_not_fed(listener, tmp_path):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000",
                         "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog is None
    mine = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000",
                     "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog == pytest.approx(0.1)


def _start(engine, notifier, stop):
    thread = threading.Thread(target=run_forever, args=(engine,), kwargs={
        "recheck": dt.timedelta(seconds=0.2), "stop": stop, "install_signals": False, "systemd": notifier},
        name="run-loop")
    thread.start()
    return thread


def test_run_says_ready_feeds_the_watchdog_while_it_sweeps_and_says_stopping(engine, listener, tmp_path):
    engine.clock = lambda: dt.datetime.now(UTC)
    sweeps = []
    real_run_once = engine.run_once

    def counting(*args, **kwargs):
        sweeps.append(time.monotonic())
        return real_run_once(*args, **kwargs)

    engine.run_once = counting
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"})
    stop = threading.Event()
    thread = _start(engine, notifier, stop)
    # Start-up (registering, reconciling) takes its own time, longer on a loaded machine: wait for the
    # feeds themselves rather than a fixed time, and judge them by their gaps.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(m == "WATCHDOG=1" for _, m in list(listener.messages)) < 5:
        time.sleep(0.1)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert listener.last_is("STOPPING=1"), listener.states()
    states = listener.states()
    assert states[0] == "READY=1", states
    feeds = [at for at, message in listener.messages if message == "WATCHDOG=1"]
    assert len(feeds) >= 4, states  # every half of WATCHDOG_USEC while it runs
    gaps = [b - a for a, b in zip(feeds, feeds[1:], strict=False)]
    assert max(gaps) < 1.0  # never as long as WATCHDOG_USEC
    assert len(sweeps) >= 2  # it swept (more than the sweep at start) while it fed


def test_a_run_loop_that_stops_sweeping_stops_feeding(engine, listener, tmp_path):
    """The loop itself feeds the watchdog: stuck in a call, it feeds no more and systemd restarts it."""
    hang, release = threading.Event(), threading.Event()

    def clock() -> dt.datetime:
        if hang.is_set() and threading.current_thread().name == "run-loop":
            release.wait(10)
        return dt.datetime.now(UTC)

    engine.clock = clock
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"})
    stop = threading.Event()
    thread = _start(engine, notifier, stop)
    try:
        deadline = time.monotonic() + 30  # start-up under load may take a while: wait for the feeds themselves
        while time.monotonic() < deadline and listener.states().count("WATCHDOG=1") < 2:
            time.sleep(0.05)
        assert listener.states().count("WATCHDOG=1") >= 2
        hang.set()
        time.sleep(0.6)  # the loop is stuck by now (it asks the clock every 0.2 s)
        stuck_at = listener.states().count("WATCHDOG=1")
        time.sleep(1.6)
        assert listener.states().count("WATCHDOG=1") == stuck_at  # eight intervals without a feed
    finally:
        stop.set()
        release.set()
        thread.join(10)
    assert not thread.is_alive()
    assert listener.last_is("STOPPING=1"), listener.states()


def test_the_run_command_notifies_systemd(listener, tmp_path):
    """`oneyearago run` as systemd starts it: NOTIFY_SOCKET and WATCHDOG_USEC in its environment."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    env.update({"ONEYEARAGO_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}", "ONEYEARAGO_TRANSCRIPT":
                str(tmp_path / "t.jsonl"), "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                "WATCHDOG_USEC": "1000000",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and listener.states().count("WATCHDOG=1") < 2:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    assert listener.last_is("STOPPING=1"), listener.states()
    states = listener.states()
    assert states[0] == "READY=1" and states.count("WATCHDOG=1") >= 2, states
