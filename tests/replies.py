"""Build replies for adapter tests: a reply's parent and root travel in the post itself."""

from __future__ import annotations

import dataclasses

from adapters.base import Outgoing, PostRef


def replying(post: Outgoing, parent: PostRef, root: PostRef) -> Outgoing:
    """``post`` as a reply to ``parent`` in the thread that starts at ``root``."""
    return dataclasses.replace(post, parent=parent, root=root)
