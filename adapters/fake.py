"""Provide FakeAdapter: an in-memory platform for tests, able to fail on demand."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState, Uploaded
from adapters.tid import next_tid
from posts.errors import AdapterError, MediaGone, Rejected
from posts.media import Picture

CONTENT_FIELDS = ("text", "title", "selftext", "status", "spoiler_text")
"""The payload fields a post is recognised by, as X (its text), Reddit (title and self text, or a
comment's body) and Mastodon (a status's text and content warning, when its idempotency key has
expired) recognise ours: by what it says, never by a key of our own."""


@dataclasses.dataclass
class FakePost:
    ref: PostRef
    post: Outgoing
    parent: PostRef | None
    root: PostRef | None
    at: dt.datetime | None
    """When the platform took it, by the adapter's clock (``None`` without one)."""


def _content(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {name: payload[name] for name in CONTENT_FIELDS if name in payload}


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """What a fake adapter is built from: the platform it plays."""

    platform: str = "x"


class FakeAdapter:
    """Keeps posts in memory. ``fail_next(exc)`` makes the next call raise ``exc``.

    ``land_then_fail(exc)`` makes the next send store the post and then raise (a response lost
    after the platform accepted it). :meth:`find` looks a post up as X and Reddit do: among the
    account's posts since ``since``, by its content and the post it answers (a root answers none),
    the earliest match first; two posts that say the same thing in the same place are one to it.
    Give it the clock the engine runs on (``clock=``) for posts to be dated and ``since`` to count;
    without one, every post is taken to be recent enough.

    Replies by others come from :meth:`add_reply`; :meth:`conversation` reads them (counting each read in
    :attr:`reads`, ``fail_next_read(exc)`` making the next one fail) and :meth:`hide_reply` hides one
    where the platform it plays lets a thread's author do so (X, Bluesky).
    """

    platform: str

    def __init__(self, config: FakeConfig = FakeConfig(), *, clock: Callable[[], dt.datetime] | None = None):
        self.config = config
        self.platform = config.platform
        self.clock = clock
        self.posts: list[FakePost] = []
        self.states: dict[str, ThreadState] = {}
        self._failures: deque[tuple[AdapterError, bool]] = deque()
        self.find_error: AdapterError | None = None
        self.calls: list[str] = []
        self.media: dict[str, Picture] = {}
        """The uploads the platform still keeps, by media id (:meth:`drop_media` forgets them)."""
        self.uploads = 0
        self._upload_failures: deque[AdapterError] = deque()
        self.replies: dict[str, list[Reply]] = {}
        """Replies by others, by the id of the root of the thread they are in (:meth:`add_reply`)."""
        self.reads = 0
        """Read requests made (:meth:`conversation`), each read costing :attr:`requests_per_read`."""
        self.requests_per_read = 1
        self._read_failures: deque[AdapterError] = deque()
        self.hides: list[tuple[str, str, bool]] = []
        """Every hide asked for, as (root id, reply id, hidden)."""

    MEDIA_LIFETIME = dt.timedelta(hours=24)
    """How long the fake keeps an upload no post uses (X's ``expires_after_secs``)."""

    def fail_next_upload(self, error: AdapterError) -> None:
        self._upload_failures.append(error)

    def drop_media(self) -> None:
        """Forget every upload, as a platform does with media no post used in time."""
        self.media.clear()

    def upload(self, picture: Picture) -> Uploaded:
        self.calls.append("upload")
        if self._upload_failures:
            raise self._upload_failures.popleft()
        self.uploads += 1
        media_id = f"{self.platform}-media-{self.uploads}"
        self.media[media_id] = picture
        expires = self.clock() + self.MEDIA_LIFETIME if self.clock else None
        return Uploaded(picture.image.sha256, {"media_id": media_id}, expires)

    def fail_next(self, error: AdapterError) -> None:
        self._failures.append((error, False))

    def land_then_fail(self, error: AdapterError) -> None:
        self._failures.append((error, True))

    def _send(self, post: Outgoing) -> PostRef:
        if post.pictures and len(post.media) != len(post.pictures):
            raise ValueError(f"{post.kind} {post.part} of {post.story_id}: {len(post.pictures)} pictures, "
                             f"{len(post.media)} uploads; the engine uploads before it sends")
        for uploaded in post.media:
            if str(uploaded.ref.get("media_id")) not in self.media:
                raise MediaGone(self.platform, f"media {uploaded.ref.get('media_id')} is not known (expired)")
        land, error = True, None
        if self._failures:
            error, land = self._failures.popleft()
        ref = PostRef(self.platform, f"{self.platform}-{len(self.posts) + 1}", f"fake://{self.platform}/"
                      f"{len(self.posts) + 1}", {"uri": f"at://fake/{post.key}", "cid": "bafyfake"})
        if land:
            self.posts.append(FakePost(ref, post, post.parent, post.root, self.clock() if self.clock else None))
        if error is not None:
            raise error
        return ref

    def new_key(self) -> str | None:
        """As the platform it plays: X and Reddit take no key of ours (a post is found again by what it
        says); others get a fresh TID, as Bluesky's record keys are (Mastodon sends its key as the
        ``Idempotency-Key`` header, and finds a post by what it says, as :meth:`find` does)."""
        return None if self.platform in ("x", "reddit") else next_tid()

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

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        self.calls.append("find")
        if self.find_error is not None:
            raise self.find_error
        want = _content(post.payload)
        # A reply must answer its parent, a root must answer nothing; a follow-up given without its
        # parent is matched on its content alone (as on X).
        check_parent = post.parent is not None or post.kind == "root"
        parent_id = post.parent.id if post.parent is not None else None
        for stored in self.posts:
            if since is not None and stored.at is not None and stored.at < since:
                continue
            if self.states.get(stored.ref.id) is ThreadState.GONE:
                continue
            answered = stored.parent.id if stored.parent is not None else None
            if (not check_parent or answered == parent_id) and _content(stored.post.payload) == want:
                return stored.ref
        return None

    def whoami(self) -> str:
        return f"fake {self.platform} account"

    # -- the conversation under a thread ----------------------------------------------

    HIDES = ("x", "bluesky")
    """The platforms that let a thread's author hide a reply (X hidden replies, Bluesky threadgate)."""

    def add_reply(self, root: PostRef | str, author: str, text: str, at: dt.datetime, *, reply_id: str = "",
                  parent_id: str = "", hidden: bool = False) -> Reply:
        """Someone else replies under the thread at ``root`` (an id or a reference), as a follower would."""
        root_id = root if isinstance(root, str) else root.id
        thread = self.replies.setdefault(root_id, [])
        reply_id = reply_id or f"{self.platform}-reply-{root_id}-{len(thread) + 1}"
        reply = Reply(reply_id, author, text, at, f"fake://{self.platform}/reply/{reply_id}", parent_id or root_id,
                      hidden)
        thread.append(reply)
        return reply

    def fail_next_read(self, error: AdapterError) -> None:
        """Make the next :meth:`conversation` or :meth:`hide_reply` raise ``error`` (it still counts a request)."""
        self._read_failures.append(error)

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        self.calls.append("conversation")
        self.reads += self.requests_per_read
        if self._read_failures:
            raise self._read_failures.popleft()
        if self.states.get(root.id) is ThreadState.GONE:
            raise Rejected(self.platform, f"no post {root.id} (deleted)")
        mine = {ref.id for ref in own} | {root.id}
        theirs = sorted((r for r in self.replies.get(root.id, []) if r.id not in mine), key=lambda r: r.at,
                        reverse=True)
        return Conversation(len(theirs), tuple(theirs[:limit]), self.requests_per_read)

    def hide_reply(self, root: PostRef, reply_id: str, *, hidden: bool = True) -> None:
        self.calls.append("hide_reply")
        if self.platform not in self.HIDES:
            raise Rejected(self.platform, "the platform does not let the author of a thread hide replies")
        if self._read_failures:
            raise self._read_failures.popleft()
        thread = self.replies.get(root.id, [])
        for i, reply in enumerate(thread):
            if reply.id == reply_id:
                thread[i] = dataclasses.replace(reply, hidden=hidden)
                self.hides.append((root.id, reply_id, hidden))
                return
        raise Rejected(self.platform, f"no reply {reply_id} under {root.id}")
