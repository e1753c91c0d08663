"""Provide FakeAdapter: an in-memory platform for tests, able to fail on demand."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

from adapters.base import Outgoing, PostRef, ThreadState
from adapters.tid import next_tid
from posts.errors import AdapterError


@dataclasses.dataclass
class FakePost:
    ref: PostRef
    post: Outgoing
    parent: PostRef | None
    root: PostRef | None


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """What a fake adapter is built from: the platform it plays."""

    platform: str = "x"


class FakeAdapter:
    """Keeps posts in memory. ``fail_next(exc)`` makes the next call raise ``exc``.

    ``land_then_fail(exc)`` makes the next send store the post and then raise (a response lost
    after the platform accepted it).
    """

    def __init__(self, config: FakeConfig = FakeConfig()):
        self.config = config
        self.platform = config.platform
        self.posts: list[FakePost] = []
        self.states: dict[str, ThreadState] = {}
        self._failures: deque[tuple[AdapterError, bool]] = deque()
        self.find_error: AdapterError | None = None
        self.calls: list[str] = []

    def fail_next(self, error: AdapterError) -> None:
        self._failures.append((error, False))

    def land_then_fail(self, error: AdapterError) -> None:
        self._failures.append((error, True))

    def _send(self, post: Outgoing) -> PostRef:
        land, error = True, None
        if self._failures:
            error, land = self._failures.popleft()
        ref = PostRef(self.platform, f"{self.platform}-{len(self.posts) + 1}", f"fake://{self.platform}/"
                      f"{len(self.posts) + 1}", {"uri": f"at://fake/{post.key}", "cid": "bafyfake"})
        if land:
            self.posts.append(FakePost(ref, post, post.parent, post.root))
        if error is not None:
            raise error
        return ref

    def new_key(self) -> str:
        """Its own key for every post (a TID), under which :meth:`find` knows it again."""
        return next_tid()

    def publish(self, post: Outgoing) -> PostRef:
        self.calls.append("publish")
        return self._send(post)

    def reply(self, post: Outgoing) -> PostRef:
        self.calls.append("reply")
        post.thread()  # a reply names its parent and root
        return self._send(post)

    def thread_state(self, ref: PostRef) -> ThreadState:
        self.calls.append("thread_state")
        if ref.id in self.states:
            return self.states[ref.id]
        return ThreadState.OPEN if any(p.ref.id == ref.id for p in self.posts) else ThreadState.GONE

    def find(self, post: Outgoing, *, since: Any = None) -> PostRef | None:
        self.calls.append("find")
        if self.find_error is not None:
            raise self.find_error
        for stored in self.posts:
            if post.key is not None and stored.post.key == post.key:
                return stored.ref
        return None

    def whoami(self) -> str:
        return f"fake {self.platform} account"
