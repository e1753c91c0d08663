"""Running ``run``'s loop (:func:`bot.runner.run_forever`) in a test, and waiting for what it does."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot.engine import Engine
from bot.runner import run_forever


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    """Whether ``predicate()`` came true within ``timeout`` seconds (asked every ``interval``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@contextmanager
def looping(engine: Engine, *, recheck: dt.timedelta = dt.timedelta(seconds=1), join: float = 30,
            **options: Any) -> Iterator[threading.Event]:
    """``run_forever(engine, ...)`` on a thread of its own for the ``with`` block, which gets its stop event.

    No signal handlers are installed. At the block's end the loop is stopped; it must return within
    ``join`` seconds (the posts and side jobs in flight finish first).
    """
    stop = options.pop("stop", None) or threading.Event()
    thread = threading.Thread(target=run_forever, args=(engine,), name="run-loop", kwargs={
        "recheck": recheck, "stop": stop, "install_signals": False, **options})
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=join)
    assert not thread.is_alive(), f"the run loop did not return within {join:g} s of being stopped"
