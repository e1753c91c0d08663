"""The in-memory fake adapter (adapters/fake.py, what the engine tests post through) as a target of
the shared adapter contract test, so it behaves as the real platforms do."""

from __future__ import annotations

import dataclasses

import pytest

from adapters.base import PostRef, ThreadState
from adapters.fake import FakeAdapter, FakeConfig


@dataclasses.dataclass
class FakeTarget:
    adapter: FakeAdapter

    def remove(self, ref: PostRef) -> None:
        self.adapter.states[ref.id] = ThreadState.GONE

    def lock(self, ref: PostRef) -> None:
        self.adapter.states[ref.id] = ThreadState.LOCKED


@pytest.fixture
def fake_target() -> FakeTarget:
    return FakeTarget(FakeAdapter(FakeConfig("x")))
