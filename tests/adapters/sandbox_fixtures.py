"""The sandbox adapter as a target of the shared adapter contract test."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from adapters.base import PostRef
from adapters.sandbox import SandboxAdapter, SandboxConfig


@dataclasses.dataclass
class SandboxTarget:
    adapter: SandboxAdapter
    path: Path

    def remove(self, ref: PostRef) -> None:
        """Delete a post from the transcript (the sandbox's 'server')."""
        kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["remote_id"] != ref.id]
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def lock(self, ref: PostRef) -> None:
        pytest.skip("the sandbox has no locked threads")


@pytest.fixture
def sandbox_target(tmp_path: Path) -> SandboxTarget:
    path = tmp_path / "transcript.jsonl"
    return SandboxTarget(SandboxAdapter(SandboxConfig("bluesky", path)), path)
