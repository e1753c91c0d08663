"""Provide the sandbox adapter: renders exactly as the platform will, records instead of posting.

Every post is appended to a JSON Lines transcript (one object per post, flushed and synced
before the call returns, so the transcript is the sandbox's "server") and shown to the
operator as a follower would see it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState, Uploaded
from adapters.tid import next_tid
from posts.clock import utcnow
from posts.errors import Rejected
from posts.media import Picture

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
FOLLOWER_REPLY = "follower-reply"
"""The ``kind`` of a transcript record that stands for a reply someone else made (:meth:`SandboxAdapter.add_reply`)."""
HIDE_REPLY = "hide-reply"
"""The ``kind`` of a transcript record of the bot hiding (or showing again) such a reply."""
HIDES = ("x", "bluesky")
"""The platforms that let a thread's author hide a reply (X hidden replies, Bluesky threadgate)."""
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path.resolve()), threading.Lock())


def _digest(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16)


def sandbox_ref(platform: str, key: str) -> PostRef:
    """The reference the sandbox gives a post: deterministic from its key, shaped like the platform's."""
    number = _digest(key)
    if platform == "x":
        post_id = str(10**18 + number % (9 * 10**18))
        return PostRef("x", post_id, f"sandbox://x/status/{post_id}")
    if platform == "reddit":
        chars = []
        for _ in range(7):
            number, rem = divmod(number, 36)
            chars.append(_BASE36[rem])
        post_id = "".join(chars)
        return PostRef("reddit", post_id, f"sandbox://reddit/comments/{post_id}")
    if platform == "mastodon":  # a snowflake-like status id, 18 digits; the .example host is never real
        post_id = str(10**17 + number % (9 * 10**17))
        return PostRef("mastodon", post_id, f"https://mastodon.example/@oneyearago/{post_id}")
    uri = f"at://did:plc:sandbox/app.bsky.feed.post/{key}"
    cid = "bafyrei" + format(number, "x")[:52]
    return PostRef("bluesky", uri, f"sandbox://bsky/post/{key}", {"uri": uri, "cid": cid, "rkey": key})


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox adapter is built from: the platform it stands in for, the transcript it
    records to, and the seconds each post is made to take (for rehearsals and benchmarks)."""

    platform: str
    transcript: Path
    latency: float = 0.0


class SandboxAdapter:
    """Records posts to a transcript instead of sending them."""

    platform: str

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        show: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.platform = config.platform
        self.transcript = Path(config.transcript)
        self.clock = clock
        self.show = show
        self.latency = config.latency
        self.sleep = sleep
        self._lock = _lock_for(self.transcript)

    # -- the contract -----------------------------------------------------------------

    def new_key(self) -> str:
        """The sandbox's own key for every post, on every platform (a TID): its ids are made from it
        (:func:`sandbox_ref`), and :meth:`find` knows the post again by it."""
        return next_tid()

    def publish(self, post: Outgoing) -> PostRef:
        return self._record(post)

    def reply(self, post: Outgoing) -> PostRef:
        post.thread()  # a reply names its parent and root
        return self._record(post)

    def thread_state(self, ref: PostRef) -> ThreadState:
        return ThreadState.OPEN if ref.id in _reader_for(self.transcript).refresh().remote_ids else ThreadState.GONE

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        if not post.key:
            return None  # nothing is recorded without a key (a delivery claimed live, on X or Reddit)
        key = post.key
        if (self.platform, key) in _reader_for(self.transcript).refresh().keys:
            return sandbox_ref(self.platform, key)
        return None

    def whoami(self) -> str:
        return f"sandbox ({self.platform}): posts are recorded in {self.transcript}"

    def upload(self, picture: Picture) -> Uploaded:
        """Take a picture as the platform would before the post: its reference is made from its bytes."""
        digest = hashlib.sha256(picture.image.data).hexdigest()
        return Uploaded(picture.image.sha256, {"media_id": f"sandbox-{self.platform}-{digest[:16]}"})

    # -- the transcript ---------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every post recorded so far (all platforms)."""
        return read_transcript(self.transcript)

    def _record(self, post: Outgoing) -> PostRef:
        if self.latency:
            self.sleep(self.latency)
        ref = sandbox_ref(self.platform, _key_of(post))
        text = recorded_text(self.platform, post.kind, post.payload)
        record = {
            "platform": self.platform,
            "story_id": post.story_id,
            "kind": post.kind,
            "part": post.part,
            "remote_id": ref.id,
            "url": ref.url,
            "reply_to": post.parent.id if post.parent else None,
            "thread_root": post.root.id if post.root else None,
            "text": text,
            "posted_at": self.clock().astimezone(dt.UTC).isoformat(),
            "key": post.key,
            "payload": dict(post.payload),
        }
        gate = sent_gate(self.platform, post.payload, ref)
        if gate:  # who may reply, as the platform is told: X's reply_settings, Bluesky's threadgate record
            record["gate"] = gate
        thumb = post.attachments.get("thumb")
        if thumb is not None:  # what the platform would receive: the hash is taken of the bytes handed over
            record["image"] = {"sha256": hashlib.sha256(thumb.data).hexdigest(), "bytes": len(thumb.data),
                               "mime": thumb.mime, "width": thumb.width, "height": thumb.height}
        if post.pictures:  # what the platform would show: each picture's bytes as handed over, and its alt text
            if post.media and len(post.media) != len(post.pictures):
                raise ValueError(f"{post.kind} {post.part} of {post.story_id}: {len(post.pictures)} pictures but "
                                 f"{len(post.media)} uploads")
            record["pictures"] = [
                {"sha256": hashlib.sha256(p.image.data).hexdigest(), "bytes": len(p.image.data), "mime": p.image.mime,
                 "width": p.image.width, "height": p.image.height, "alt": p.alt,
                 "media": dict(post.media[i].ref) if post.media else None}
                for i, p in enumerate(post.pictures)]
        self._append(record)
        if self.show is not None:
            self.show(record)
        return ref

    def _append(self, record: dict[str, Any]) -> None:
        # U+2028/U+2029 are escaped too: a reader splitting "lines" at them must not tear a record
        text_line = json.dumps(record, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        line = (text_line + "\n").encode("utf-8")
        with self._lock:  # threads of this process; flock serialises the processes sharing the file
            self.transcript.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.transcript, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- the conversation under a thread (rehearsed: replies by others are recorded too) --

    def add_reply(self, root: PostRef, author: str, text: str, at: dt.datetime | None = None, *,
                  parent_id: str = "") -> Reply:
        """Record a reply someone else made under the thread at ``root``, for a rehearsal of the conversation
        sweep and the dashboard (nobody can reply to a post the sandbox only recorded)."""
        when = (at or self.clock()).astimezone(dt.UTC)
        key = next_tid()
        reply_id = sandbox_ref(self.platform, key).id
        reply = Reply(reply_id, author, text, when, f"sandbox://{self.platform}/reply/{key}", parent_id or root.id)
        self._append({"platform": self.platform, "kind": FOLLOWER_REPLY, "story_id": None, "remote_id": reply_id,
                      "url": reply.url, "reply_to": reply.parent_id, "thread_root": root.id, "author": author,
                      "text": text, "posted_at": when.isoformat(), "key": None})
        return reply

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The replies recorded under ``root`` (:meth:`add_reply`), newest first, as the hides left them."""
        mine = {ref.id for ref in own} | {root.id}
        replies: dict[str, Reply] = {}
        for record in read_transcript(self.transcript):
            if record.get("platform") != self.platform or record.get("thread_root") != root.id:
                continue
            if record.get("kind") == FOLLOWER_REPLY and record.get("remote_id") not in mine:
                reply_id = str(record["remote_id"])
                replies[reply_id] = Reply(reply_id, str(record.get("author") or ""), str(record.get("text") or ""),
                                          dt.datetime.fromisoformat(str(record["posted_at"])),
                                          str(record.get("url") or ""), str(record.get("reply_to") or ""))
            elif record.get("kind") == HIDE_REPLY and str(record.get("reply_id")) in replies:
                reply_id = str(record["reply_id"])
                replies[reply_id] = dataclasses.replace(replies[reply_id], hidden=bool(record.get("hidden")))
        ordered = sorted(replies.values(), key=lambda r: r.at, reverse=True)
        return Conversation(len(ordered), tuple(ordered[:limit]), 1)

    def hide_reply(self, root: PostRef, reply_id: str, *, hidden: bool = True) -> None:
        """Record that the bot hid (or showed again) a reply, where the platform would let it."""
        if self.platform not in HIDES:
            raise Rejected(self.platform, "the platform does not let the author of a thread hide replies")
        self._append({"platform": self.platform, "kind": HIDE_REPLY, "story_id": None, "thread_root": root.id,
                      "reply_id": reply_id, "hidden": hidden, "posted_at": self.clock().astimezone(dt.UTC).isoformat(),
                      "key": None})


def recorded_text(platform: str, kind: str, payload: dict[str, Any] | Any) -> str | None:
    """The text a transcript records for a post: what it says (a Reddit post's title and self text; a
    Mastodon status's text, its content warning being in the payload)."""
    if platform == "reddit" and kind == "root":
        return f"{payload.get('title', '')}\n\n{payload.get('selftext', '')}"
    if platform == "mastodon":
        return payload.get("status")
    return payload.get("text")


def sent_gate(platform: str, payload: Mapping[str, Any], ref: PostRef) -> dict[str, Any]:
    """The reply gate a root tells its platform: ``{"reply_settings": ...}`` on X, ``{"threadgate": record}`` on
    Bluesky (its ``post`` set to the root's URI, as the adapter sends it); empty when there is none."""
    if platform == "x" and payload.get("reply_settings"):
        return {"reply_settings": payload["reply_settings"]}
    gate = payload.get("threadgate")
    if platform == "bluesky" and isinstance(gate, Mapping):
        return {"threadgate": {**gate, "post": ref.id}}
    return {}


def _key_of(post: Outgoing) -> str:
    """The key the sandbox chose for ``post`` (:meth:`SandboxAdapter.new_key`)."""
    if not post.key:
        raise ValueError(f"{post.kind} {post.part} of {post.story_id} has no key: the sandbox records a post "
                         "under the key it chose for it")
    return post.key


class _TranscriptReader:
    """What a transcript holds, parsed incrementally: each look-up parses only the lines appended
    since the last one, so a look-up costs what was added, not the whole transcript. The file is still
    read whole (cheap) and its part already parsed checked by checksum: a transcript edited or
    replaced by hand rather than appended to is parsed again from the start."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.offset, self.crc = 0, 0
        self.remote_ids: set[str] = set()
        self.keys: set[tuple[str, str]] = set()

    def refresh(self) -> _TranscriptReader:
        with self.lock:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                self._reset()
                return self
            if len(data) < self.offset or zlib.crc32(data[:self.offset]) != self.crc:
                self._reset()
            end = data.rfind(b"\n") + 1  # an unfinished last line is read again next time
            if end > self.offset:
                new = data[self.offset:end]
                for record in _parse(new.decode("utf-8", "replace")):
                    self.remote_ids.add(str(record.get("remote_id")))
                    self.keys.add((str(record.get("platform")), str(record.get("key"))))
                self.offset, self.crc = end, zlib.crc32(new, self.crc)
            return self


_readers: dict[str, _TranscriptReader] = {}


def _reader_for(path: Path) -> _TranscriptReader:
    with _locks_guard:
        name = str(Path(path).resolve())
        return _readers.setdefault(name, _TranscriptReader(Path(name)))


def _parse(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.split("\n"):  # records end at \n only: str.splitlines() also splits at U+2028, \x0c ...
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """The records of a sandbox transcript (a torn last line from a crash is ignored)."""
    try:
        return _parse(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
