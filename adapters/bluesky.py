"""Provide BlueskyAdapter: posts rendered records to a PDS through the atproto SDK, exactly once."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from atproto import Client
from atproto_client import models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    BadRequestError,
    LoginRequiredError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState, Uploaded
from adapters.tid import next_tid
from posts.clock import utcnow
from posts.errors import AdapterError, AuthFailed, MediaGone, OutcomeUnknown, RateLimited, Rejected, Transient
from posts.lexicon import LexiconValidationError, bundled_registry
from posts.masking import Masker
from posts.media import MAX_PICTURES, PROFILES, Image, Picture

logger = logging.getLogger(__name__)

PLATFORM = "bluesky"
POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
PROFILE = "app.bsky.actor.profile"
SELF_LABELS = "com.atproto.label.defs#selfLabels"
BOT_LABEL = "bot"
"""The self-label that marks an automated account: a known value of ``com.atproto.label.defs#labelValue``."""
MAX_THUMB_BYTES = 1_000_000
"""``app.bsky.embed.external#external.thumb`` maxSize."""
MAX_PICTURE_BYTES = PROFILES["bluesky"].max_bytes
"""The most bytes of a picture sent: 1,000,000. ``app.bsky.embed.images`` takes 2,000,000 since
2026-04-08, but servers not yet updated still refuse more than 1,000,000 when the post is created."""
BLOB_KEPT = dt.timedelta(minutes=2)
"""How long an uploaded blob is taken to be kept unreferenced ("deleted if it is not referenced within a
time window (eg, minutes)", uploadBlob's lexicon): a resend later than that uploads the bytes again,
which gives the same blob (its CID is the hash of the bytes)."""
RATE_LIMIT_FALLBACK = dt.timedelta(minutes=5)
"""How long to wait after a 429 that names no reset time."""
THREAD_DEPTH = 100
"""How many levels of replies ``getPostThread`` is asked for (the lexicon allows 1000; the AppView's default is 6)."""
MAX_HIDDEN = 300
"""``app.bsky.feed.threadgate#hiddenReplies`` maxLength: the most replies one thread can hide."""
HIDE_ATTEMPTS = 3
"""How often a hide is tried again when the threadgate changed between reading and writing it."""
REPLY_TEXT_LIMIT = 2000
"""The most characters of a reply's text kept (``Reply.text``)."""
THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"

TID_RE = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing",
                         "AccountTakedown", "AccountDeactivated"})
"""XRPC error names that mean our credentials or session are refused (the PDS sends some as 400)."""
ABSENT_ERRORS = frozenset({"RecordNotFound", "RepoNotFound", "RepoDeactivated", "RepoTakendown"})
"""XRPC error names of ``getRecord`` that mean the record is not there."""
_IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


def sniff_image(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes, from their signature; ``None`` otherwise."""
    for magic, offset, mime in _IMAGE_MAGIC:
        if data[offset:offset + len(magic)] == magic and (mime != "image/webp" or data[:4] == b"RIFF"):
            return mime
    return None


def rkey_of(uri: str) -> tuple[str, str, str]:
    """``(repo, collection, rkey)`` of an ``at://`` URI."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise Rejected(PLATFORM, f"not a record URI: {uri!r}")
    return parts[0], parts[1], parts[2]


def _validate(record: Mapping[str, Any], rkey: str) -> None:
    """Refuse a record that does not match the bundled ``app.bsky.feed.post`` lexicon (posts/lexicons).

    Checked once per record, as it is about to be sent (the thumbnail's blob, which the server makes,
    is the only part added later), so a malformed record never costs a request.
    """
    try:
        bundled_registry().validate_record(POST, record, rkey=rkey)
    except LexiconValidationError as exc:
        raise Rejected(PLATFORM, f"the record does not match the {POST} lexicon: {exc}") from exc


def _checked(image: Image, what: str, limit: int, takes: str) -> str:
    """The MIME type of ``image``'s bytes, checked to be a picture Bluesky takes within ``limit`` bytes."""
    mime = sniff_image(image.data)
    if mime is None:
        raise Rejected(PLATFORM, f"{what} {image.sha256[:12]} is not a PNG, JPEG, GIF or WebP image")
    if image.size > limit:
        raise Rejected(PLATFORM, f"{what} {image.sha256[:12]} is {image.size:,} bytes; {takes} {limit:,}")
    return mime


def _images_embed(post: Outgoing) -> dict[str, Any]:
    """The ``app.bsky.embed.images`` of a post's pictures: each uploaded blob with its alt text and size.

    A post holds one embed: with pictures there is no link card, and the story's link stays a link
    facet in the text (rendering leaves the card out).
    """
    if len(post.media) != len(post.pictures):
        raise ValueError(f"{post.kind} {post.part} of {post.story_id}: {len(post.pictures)} pictures but "
                         f"{len(post.media)} uploads; the engine uploads the pictures before the post")
    if len(post.pictures) > MAX_PICTURES:
        raise Rejected(PLATFORM, f"{len(post.pictures)} pictures; a post shows at most {MAX_PICTURES}")
    return {"$type": "app.bsky.embed.images", "images": [
        {"image": dict(uploaded.ref["blob"]), "alt": picture.alt,
         "aspectRatio": {"width": picture.image.width, "height": picture.image.height}}
        for picture, uploaded in zip(post.pictures, post.media, strict=True)]}


def _xrpc_error(exc: RequestErrorBase) -> tuple[str, str]:
    """The XRPC error name and message of a failed call (empty when the body had none)."""
    content = exc.response.content if exc.response is not None else None
    if isinstance(content, XrpcError):
        return content.error or "", content.message or ""
    return "", ""


@dataclasses.dataclass(frozen=True)
class BlueskyConfig:
    """What the Bluesky adapter is built from: the account's handle and app password, its PDS, where
    the login session is kept and how long to wait for the server. The password never shows in ``repr``."""

    handle: str
    app_password: str = dataclasses.field(repr=False)
    session_path: Path
    pds_url: str = "https://bsky.social"
    timeout: dt.timedelta = dt.timedelta(seconds=30)
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    """Further secrets to mask out of every message (the app password and session tokens are masked anyway)."""


class BlueskyAdapter:
    """Posts ``app.bsky.feed.post`` records as rendered, under record keys chosen beforehand.

    The login session is kept in the configured ``session_path`` (0600) and reused across runs:
    a saved session is imported when the adapter is built (no network call); the app password is
    sent at the first call only when there is no usable session, and once more when the server
    refuses the session. Records go out byte for byte under ``post.key``, the TID chosen by
    :meth:`new_key` and committed by the engine before the first attempt, so a retry can never make a
    second post, and :meth:`find` tells by that key whether an unclear create landed. Every SDK error is translated in :meth:`_translate`, the one place
    that knows the SDK's exceptions.
    """

    platform: str = PLATFORM

    def __init__(self, config: BlueskyConfig, *, clock: Callable[[], dt.datetime] = utcnow,
                 request_kwargs: Mapping[str, Any] | None = None):
        """Set up the client and load a saved session; the password login waits for the first call.

        ``request_kwargs`` go to ``httpx.Client`` through the SDK's ``Request`` (tests pass
        ``transport=`` or ``event_hooks=``).
        """
        self.clock = clock
        self.config = config
        self.identifier = config.handle.strip().removeprefix("@")
        self._password = config.app_password
        self._secrets = config.secrets
        self.pds_url = config.pds_url.rstrip("/")
        self.session_path = Path(config.session_path)
        self.timeout = config.timeout.total_seconds()
        kwargs = {"timeout": self.timeout, **dict(request_kwargs or {})}
        self.client = Client(base_url=self.pds_url, request=Request(**kwargs))
        self.client.on_session_change(self._on_session_change)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._session: Session | None = None
        self._load_session()

    # -- the contract -----------------------------------------------------------------

    def new_key(self) -> str:
        """A fresh TID: the record key the post is created under, in every attempt (see :meth:`_create`)."""
        return next_tid()

    def publish(self, post: Outgoing) -> PostRef:
        return self._create(post)

    def reply(self, post: Outgoing) -> PostRef:
        post.thread()  # a reply names its parent and root
        return self._create(post)

    def upload(self, picture: Picture) -> Uploaded:
        """Upload a picture's bytes as a blob (``com.atproto.repo.uploadBlob``); the alt text goes in the post.

        Blob limits are enforced only when the post refers to the blob, so the size and type are checked
        here, before any request.
        """
        image = picture.image
        mime = _checked(image, "picture", MAX_PICTURE_BYTES, "Bluesky takes")
        at = self.clock()
        with self._operation():
            blob = self._procedure("com.atproto.repo.uploadBlob", image.data, mime, write=False).get("blob")
        if not isinstance(blob, dict) or not isinstance((blob.get("ref") or {}).get("$link"), str):
            raise Transient(PLATFORM, "com.atproto.repo.uploadBlob: the answer holds no blob")
        return Uploaded(image.sha256, {"blob": blob}, at + BLOB_KEPT)

    def thread_state(self, ref: PostRef) -> ThreadState:
        """OPEN while the record exists (a threadgate never stops the thread's author), else GONE."""
        repo, collection, rkey = rkey_of(ref.extra.get("uri") or ref.id)
        with self._operation():
            if self._get_record(repo, collection, rkey) is None:
                return ThreadState.GONE
            try:
                gate = self._get_record(repo, THREADGATE, rkey)
            except AdapterError as exc:  # cannot change the answer: the author may always reply
                logger.debug("Bluesky: threadgate lookup for %s failed: %s", rkey, exc)
                gate = None
        if gate is not None:
            logger.info("Bluesky: %s has a threadgate; its author may still reply", ref.id)
        return ThreadState.OPEN

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        """Look the post up by its record key: ``None`` when the key holds nothing (or another post)."""
        rkey = self._check_key(post)
        with self._operation():
            found = self._get_record(self._did(), POST, rkey)
        if found is None:
            return None
        if found.get("value", {}).get("text") != post.payload.get("text"):
            logger.warning("Bluesky: record key %s holds a different post; ours is not there", rkey)
            return None
        return self._ref(found["uri"], found["cid"])

    def whoami(self) -> str:
        with self._operation(), self._errors("com.atproto.server.getSession", write=False):
            info = self._authed(lambda: self.client.com.atproto.server.get_session())
        return f"@{info.handle} ({info.did}) on {self._pds()}"

    def automation_mark(self) -> bool:
        """Whether the account's profile record carries the ``bot`` self-label (a ``knownValue`` of
        ``com.atproto.label.defs#labelValue``; ``app.bsky.actor.profile`` takes self-labels)."""
        with self._operation():
            found = self._get_record(self._did(), PROFILE, "self")
        return found is not None and BOT_LABEL in _self_labels(found.get("value"))

    def mark_automated(self) -> None:
        """Add the ``bot`` self-label to the profile record, keeping every other field and label as it is.

        The write names the record it replaces (``swapRecord``), so a profile edited meanwhile is never
        overwritten: the server refuses it and nothing changes. Nothing is sent when the label is there.
        """
        with self._operation():
            did = self._did()
            found = self._get_record(did, PROFILE, "self")
            value = dict(found.get("value") or {}) if found is not None else {"$type": PROFILE}
            labels = _self_labels(value)
            if BOT_LABEL in labels:
                return
            kept = value.get("labels")
            if kept is not None and not (isinstance(kept, Mapping) and kept.get("$type") == SELF_LABELS):
                raise Rejected(PLATFORM, f"the profile's labels are not {SELF_LABELS}; left unchanged")
            value["labels"] = {**(kept or {}), "$type": SELF_LABELS,
                               "values": [*(kept or {}).get("values", []), {"val": BOT_LABEL}]}
            body: dict[str, Any] = {"repo": did, "collection": PROFILE, "rkey": "self", "record": value}
            if found is not None:
                body["swapRecord"] = found.get("cid")
            self._procedure("com.atproto.repo.putRecord", json.dumps(body, ensure_ascii=False).encode(),
                            "application/json", write=True)
        logger.info("Bluesky: the profile now carries the %r self-label", BOT_LABEL)

    # -- the conversation under a thread ---------------------------------------------------

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The replies by others under ``root``, from ``app.bsky.feed.getPostThread`` (one request; two when
        the saved session is refused and the query is sent again after a login).

        The thread view is asked for :data:`THREAD_DEPTH` levels of replies; ``total`` counts the replies
        by others it holds at every depth (the bot's own posts, ``own`` or not, left out). The root's
        ``replyCount`` is not used: it counts direct replies only, the bot's own follow-up among them.
        ``Reply.hidden`` is whether the root's threadgate (in the view) lists the reply in ``hiddenReplies``;
        the AppView still shows a hidden reply in this view. Quotes are not replies and are not counted.
        """
        uri = root.extra.get("uri") or root.id
        author, _, _ = rkey_of(uri)
        skip = {uri, *(ref.extra.get("uri") or ref.id for ref in own)}
        params = models.AppBskyFeedGetPostThread.Params(uri=uri, depth=THREAD_DEPTH, parent_height=0)
        sent: list[int] = []

        def read() -> Any:
            sent.append(1)  # sent again after a refused session and a new login
            return self.client.invoke_query("app.bsky.feed.getPostThread", params=params)

        with self._operation(), self._errors("app.bsky.feed.getPostThread", write=False):
            response = self._authed(read)
        thread = _json(response.content, "app.bsky.feed.getPostThread", write=False).get("thread")
        if not isinstance(thread, dict) or thread.get("$type", THREAD_VIEW) != THREAD_VIEW:
            kind = thread.get("$type") if isinstance(thread, dict) else None
            raise Rejected(PLATFORM, f"app.bsky.feed.getPostThread: {uri} cannot be read ({kind or 'no thread'})")
        gate = ((thread.get("post") or {}).get("threadgate") or {}).get("record") or {}
        hidden = {str(u) for u in gate.get("hiddenReplies") or []}
        found: list[Reply] = []
        pending = list(thread.get("replies") or [])
        while pending:
            node = pending.pop()
            if not isinstance(node, dict) or node.get("$type", THREAD_VIEW) != THREAD_VIEW:
                continue  # a blocked or missing post
            pending += node.get("replies") or []
            post = node.get("post") or {}
            if post.get("uri") in skip or (post.get("author") or {}).get("did") == author:
                continue
            reply = _reply(post, hidden)
            if reply is not None:
                found.append(reply)
        found.sort(key=lambda r: (r.at, r.id), reverse=True)
        return Conversation(len(found), tuple(found[:max(0, limit)]), len(sent))

    def hide_reply(self, root: PostRef, reply_id: str, *, hidden: bool = True) -> None:
        """Hide (or show again) a reply through the root's threadgate: its ``hiddenReplies`` list.

        The threadgate (same record key as the root) is created when there is none, with no ``allow``
        rules (everyone may still reply); an existing one keeps its rules and gets only its list changed.
        Every write names the record version it changes (``swapRecord``; none: it must not exist yet), so a
        change made meanwhile (a reply gate) is never lost: the gate is read again and the change made on it.
        """
        uri = root.extra.get("uri") or root.id
        repo, _, rkey = rkey_of(uri)
        _, collection, _ = rkey_of(reply_id)
        action = "hide the reply" if hidden else "show the reply again"
        if collection != POST:
            raise Rejected(PLATFORM, f"{action}: {reply_id} is not a post")
        with self._operation():
            if repo != self._did():
                raise Rejected(PLATFORM, f"{action}: {uri} is not a post of this account")
            for attempt in range(1, HIDE_ATTEMPTS + 1):
                gate = self._get_record(repo, THREADGATE, rkey)
                value = dict(gate.get("value") or {}) if gate else {}
                listed = [str(u) for u in value.get("hiddenReplies") or []]
                if (reply_id in listed) == hidden:
                    return
                listed = [u for u in listed if u != reply_id] + ([reply_id] if hidden else [])
                if len(listed) > MAX_HIDDEN:
                    raise Rejected(PLATFORM, f"{action}: the thread already hides {MAX_HIDDEN} replies, the most a "
                                             "threadgate holds; show one again first")
                if not value:
                    value = {"$type": THREADGATE, "post": uri, "createdAt": _iso(self.clock())}
                value["hiddenReplies"] = listed
                body = {"repo": repo, "collection": THREADGATE, "rkey": rkey, "record": value,
                        "swapRecord": gate.get("cid") if gate else None}
                try:
                    self._procedure("com.atproto.repo.putRecord", json.dumps(body, ensure_ascii=False).encode(),
                                    "application/json", write=False)
                except Rejected as exc:
                    if "InvalidSwap" not in exc.reason or attempt == HIDE_ATTEMPTS:
                        raise
                    logger.info("Bluesky: the threadgate of %s changed meanwhile; reading it again", rkey)
                    continue
                logger.info("Bluesky: %s %s under %s", "hid" if hidden else "showed again", reply_id, uri)
                return

    # -- posting ------------------------------------------------------------------------

    def _create(self, post: Outgoing) -> PostRef:
        """Create the record under ``post.key``.

        Everything that can be refused without asking the server is checked before any request. After
        an unclear failure (5xx, timeout, lost answer) the create may have landed: that is reported as
        ``OutcomeUnknown``, and the engine settles it by :meth:`find` (the record key says whether it did).
        """
        rkey = self._check_key(post)
        record = copy.deepcopy(dict(post.payload))
        gate = _threadgate(record.pop("threadgate", None), post)
        if post.parent is not None and post.root is not None:
            record["reply"] = {"root": self._strong_ref(post.root), "parent": self._strong_ref(post.parent)}
        if post.pictures:
            record["embed"] = _images_embed(post)
        _validate(record, rkey)
        image = self._thumb(record, post.attachments.get("thumb"))
        with self._operation():
            if image is not None:
                blob = self._procedure("com.atproto.repo.uploadBlob", image[0], image[1], write=False).get("blob")
                if not isinstance(blob, dict):
                    raise Transient(PLATFORM, "com.atproto.repo.uploadBlob: the answer holds no blob")
                record["embed"]["external"]["thumb"] = blob
            nsid, body = self._create_body(record, rkey, gate)
            try:
                out = self._procedure(nsid, json.dumps(body, ensure_ascii=False).encode(), "application/json",
                                      write=True)
            except Rejected as exc:
                if post.pictures and "blob" in exc.reason.lower():  # an upload the server no longer keeps
                    raise MediaGone(PLATFORM, exc.reason) from exc
                raise
            if gate is not None:  # applyWrites answers with one result per write, the post's first
                results = out.get("results")
                out = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
            if not isinstance(out.get("uri"), str) or not isinstance(out.get("cid"), str):
                raise OutcomeUnknown(PLATFORM, f"{nsid}: the answer names no uri and cid")
        ref = self._ref(out["uri"], out["cid"])
        logger.info("Bluesky: posted %s (%s)", ref.id, post.kind)
        return ref

    def _create_body(self, record: dict[str, Any], rkey: str,
                     gate: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The call that creates the post: ``createRecord``, or with a threadgate ``applyWrites``, which
        creates the post and its gate (same record key, ``post`` = the root's URI) in one commit, so that
        neither can exist without the other. Either way the record key makes a second create fail, and an
        unclear one is settled by :meth:`find` as before."""
        did = self._did()
        if gate is None:
            return "com.atproto.repo.createRecord", {"repo": did, "collection": POST, "rkey": rkey, "record": record}
        gate = {**gate, "post": f"at://{did}/{POST}/{rkey}"}
        create = "com.atproto.repo.applyWrites#create"
        return "com.atproto.repo.applyWrites", {"repo": did, "validate": True, "writes": [
            {"$type": create, "collection": POST, "rkey": rkey, "value": record},
            {"$type": create, "collection": THREADGATE, "rkey": rkey, "value": gate}]}

    def _thumb(self, record: dict[str, Any], image: Image | None) -> tuple[bytes, str] | None:
        """The link card's image and its MIME type, checked; ``None`` when there is none to send.

        The bytes are those prepared and stored when the story was loaded; no file or URL is read here.
        """
        if image is None:
            return None
        external = (record.get("embed") or {}).get("external")
        if not isinstance(external, dict):
            logger.warning("Bluesky: the post has no link card, so its image is not sent")
            return None
        return image.data, _checked(image, "thumbnail", MAX_THUMB_BYTES, "a link card allows")

    # -- XRPC calls ---------------------------------------------------------------------

    def _procedure(self, nsid: str, body: bytes, content_type: str, *, write: bool) -> dict[str, Any]:
        """POST ``body`` byte for byte (the SDK's models would add ``$type`` fields to the record)."""
        with self._errors(nsid, write=write):
            response = self._authed(lambda: self.client.invoke_procedure(
                nsid, content=body, headers={"Content-Type": content_type}))
        return _json(response.content, nsid, write=write)

    def _get_record(self, repo: str, collection: str, rkey: str) -> dict[str, Any] | None:
        """``com.atproto.repo.getRecord`` as plain JSON; ``None`` when the record is not there."""
        params = models.ComAtprotoRepoGetRecord.Params(repo=repo, collection=collection, rkey=rkey)
        with self._errors("com.atproto.repo.getRecord", write=False, absent_ok=True) as absent:
            response = self._authed(lambda: self.client.invoke_query("com.atproto.repo.getRecord", params=params))
        if absent:
            return None
        return _json(response.content, "com.atproto.repo.getRecord", write=False)

    @contextlib.contextmanager
    def _errors(self, action: str, *, write: bool, absent_ok: bool = False) -> Iterator[list[bool]]:
        """Translate whatever the SDK or httpx raises; with ``absent_ok`` a missing record is no error.

        Yields a list that holds ``True`` when the record was reported absent.
        """
        absent: list[bool] = []
        try:
            yield absent
        except AdapterError:
            raise
        except (AtProtocolError, httpx.HTTPError) as exc:
            if absent_ok and isinstance(exc, BadRequestError) and _is_absent(exc):
                absent.append(True)
                return
            raise self._translate(exc, action, write=write) from exc

    def _translate(self, exc: Exception, action: str, *, write: bool) -> AdapterError:
        """The one mapping from SDK and httpx errors to the project's errors.

        On a write, anything after which the request may have been applied is ``OutcomeUnknown``;
        on a read it is ``Transient``.
        """
        unknown = OutcomeUnknown if write else Transient
        if isinstance(exc, LoginRequiredError):
            return AuthFailed(PLATFORM, f"{action}: not logged in")
        if isinstance(exc, RequestErrorBase) and exc.response is not None:
            status = exc.response.status_code
            name, message = _xrpc_error(exc)
            detail = self._scrub(f"{action}: HTTP {status}" + (f" {name}" if name else "")
                                 + (f": {message}" if message else ""))
            if status == 429:
                return RateLimited(PLATFORM, detail, self._retry_at(exc.response.headers))
            if status in (401, 403) or name in AUTH_ERRORS:
                return AuthFailed(PLATFORM, detail)
            if status == 408:
                return Transient(PLATFORM, detail)
            if 400 <= status < 500:
                return Rejected(PLATFORM, detail)
            return unknown(PLATFORM, detail)
        cause = exc.__cause__ if isinstance(exc, RequestErrorBase) else exc
        kind = type(cause or exc).__name__
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            where = f" to {self._pds()}" if isinstance(exc, RequestErrorBase) else ""
            return Transient(PLATFORM, self._scrub(f"{action}: cannot connect{where} ({kind})"))
        if isinstance(cause, httpx.TimeoutException):
            return unknown(PLATFORM, f"{action}: no answer within {self.timeout:g}s ({kind})")
        if isinstance(cause, httpx.HTTPError):
            return unknown(PLATFORM, self._scrub(f"{action}: connection failed ({kind}: {cause})"))
        return unknown(PLATFORM, self._scrub(f"{action}: {kind}: {exc}"))

    def _retry_at(self, headers: Mapping[str, str]) -> dt.datetime:
        now = self.clock()
        with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError, OSError):
            reset = dt.datetime.fromtimestamp(int(headers["ratelimit-reset"]), dt.UTC)
            # A reset already past by our clock: the window has turned; try again shortly.
            return reset if reset > now else now + dt.timedelta(seconds=10)
        with contextlib.suppress(KeyError, ValueError):
            seconds = float(headers["retry-after"])
            if 0 < seconds < 86400 * 7:
                return now + dt.timedelta(seconds=seconds)
        return now + RATE_LIMIT_FALLBACK

    # -- the session ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        """One contract call: logged in, with at most one password login in all."""
        self._local.fresh = False
        self._local.fresh = self._ensure_login()
        try:
            yield
        finally:
            self._local.fresh = False

    def _authed(self, call: Callable[[], Any]) -> Any:
        """Run ``call``; when the session is refused and this operation has not logged in yet, log in once."""
        try:
            return call()
        except (UnauthorizedError, BadRequestError) as exc:
            name = _xrpc_error(exc)[0]
            if getattr(self._local, "fresh", False) or not (isinstance(exc, UnauthorizedError) or name in AUTH_ERRORS):
                raise
            logger.warning("Bluesky: the session was refused (%s); logging in with the app password",
                           name or "HTTP 401")
            self._local.fresh = True
            self._login()
            return call()

    def _ensure_login(self) -> bool:
        """Log in with the password unless a session is loaded; ``True`` when it just did."""
        with self._lock:
            if self._session is not None:
                return False
            self._login()
            return True

    def _login(self) -> None:
        with self._lock, self._errors("com.atproto.server.createSession", write=False):
            self._session = None
            self.client.login(self.identifier, self._password, fetch_bsky_profile=False)
            logger.info("Bluesky: logged in as %s", self._session.handle if self._session else self.identifier)

    def _load_session(self) -> None:
        """Import the saved session string, if any, for this account (no network call)."""
        try:
            text = self.session_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("Bluesky: cannot read the session file %s (%s); logging in again",
                           self.session_path, exc.strerror)
            return
        try:
            saved = Session.decode(text)
        except ValueError:
            logger.warning("Bluesky: the session file %s is not a session; logging in again", self.session_path)
            return
        ident = self.identifier.lower()
        if "@" not in ident and ident not in (saved.handle.lower(), saved.did):
            logger.info("Bluesky: the saved session is for %s, not %s; logging in again", saved.handle,
                        self.identifier)
            return
        try:  # the SDK reads the access token's expiry before every call
            refresh_exp, access_exp = saved.refresh_jwt_payload.exp, saved.access_jwt_payload.exp
        except (AtProtocolError, ValueError):
            access_exp = None
        if access_exp is None:
            logger.warning("Bluesky: the saved session holds unreadable tokens; logging in again")
            return
        if refresh_exp is not None and dt.datetime.fromtimestamp(refresh_exp, dt.UTC) <= self.clock():
            logger.info("Bluesky: the saved session has expired; logging in again")
            return
        try:
            self.client.login(session_string=text, fetch_bsky_profile=False)
        except (AtProtocolError, ValueError) as exc:
            logger.warning("Bluesky: the saved session cannot be used (%s); logging in again", type(exc).__name__)
            self._session = None

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        self._session = session
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            self._save_session(session.export())

    def _save_session(self, text: str) -> None:
        """Write the session string atomically, readable by the owner only (0600)."""
        directory = self.session_path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".bluesky-session-", dir=directory)  # mkstemp creates 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.session_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            logger.warning("Bluesky: cannot save the session to %s (%s); the next run logs in again",
                           self.session_path, exc.strerror)

    # -- small helpers ----------------------------------------------------------------------

    def _did(self) -> str:
        if self._session is None:  # a failed login within this operation
            raise AuthFailed(PLATFORM, "not logged in")
        return self._session.did

    def _pds(self) -> str:
        endpoint = (self._session.pds_endpoint if self._session else None) or self.pds_url
        return endpoint.removesuffix("/xrpc")

    def _ref(self, uri: str, cid: str) -> PostRef:
        rkey = uri.rsplit("/", 1)[-1]
        handle = self._session.handle if self._session else self.identifier
        return PostRef(PLATFORM, uri, f"https://bsky.app/profile/{handle}/post/{rkey}",
                       {"uri": uri, "cid": cid, "rkey": rkey})

    @staticmethod
    def _strong_ref(ref: PostRef) -> dict[str, str]:
        uri, cid = ref.extra.get("uri"), ref.extra.get("cid")
        if not uri or not cid:
            raise Rejected(PLATFORM, f"cannot reply to {ref.id}: its reference has no uri and cid")
        return {"uri": uri, "cid": cid}

    @staticmethod
    def _check_key(post: Outgoing) -> str:
        key = post.key or ""
        if not TID_RE.fullmatch(key):
            raise Rejected(PLATFORM, f"record key {post.key!r} is not a TID")
        return key

    def _scrub(self, text: str) -> str:
        """``text`` without the app password or session tokens, whatever a server echoes."""
        mask = Masker([self._password, *self._secrets])
        if self._session is not None:
            mask.add(self._session.access_jwt, self._session.refresh_jwt)
        return mask(text)


def _threadgate(gate: Any, post: Outgoing) -> dict[str, Any] | None:
    """The rendered threadgate of a root (``None``: no gate), checked before any request: only a root has
    one (the bot's follow-up replies under its own gate, which never limits the thread's author)."""
    if gate is None:
        return None
    if post.parent is not None or post.kind != "root":
        raise Rejected(PLATFORM, f"{post.kind} {post.part} of {post.story_id} carries a threadgate; only a root has one")
    allow = gate.get("allow") if isinstance(gate, Mapping) else None
    if not isinstance(gate, Mapping) or gate.get("$type") != THREADGATE or not isinstance(allow, list) \
            or not all(isinstance(rule, Mapping) and str(rule.get("$type", "")).startswith(THREADGATE + "#")
                       for rule in allow) or not isinstance(gate.get("createdAt"), str):
        raise Rejected(PLATFORM, f"the threadgate of {post.story_id} is not an {THREADGATE} record: {gate!r}")
    return {key: value for key, value in gate.items() if key != "post"}


def _self_labels(record: Any) -> list[str]:
    """The self-label values of a record (``labels`` of type ``selfLabels``); empty when it has none."""
    labels = record.get("labels") if isinstance(record, Mapping) else None
    if not isinstance(labels, Mapping) or labels.get("$type") != SELF_LABELS:
        return []
    return [str(v.get("val")) for v in labels.get("values") or [] if isinstance(v, Mapping) and v.get("val")]

def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reply(post: Mapping[str, Any], hidden: set[str]) -> Reply | None:
    """A ``postView`` as a :class:`Reply`; ``None`` when it lacks what one needs."""
    uri, record = post.get("uri"), post.get("record") or {}
    author = post.get("author") or {}
    created = record.get("createdAt") or post.get("indexedAt")
    try:
        at = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        at = None
    if not isinstance(uri, str) or at is None:
        logger.warning("Bluesky: a reply without a URI or time in the thread view (%r); left out", uri)
        return None
    at = at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)
    handle = str(author.get("handle") or author.get("did") or "")
    return Reply(uri, f"@{handle}", str(record.get("text") or "")[:REPLY_TEXT_LIMIT], at,
                 f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}",
                 str(((record.get("reply") or {}).get("parent") or {}).get("uri") or ""), uri in hidden)


def _is_absent(exc: BadRequestError) -> bool:
    name, message = _xrpc_error(exc)
    return name in ABSENT_ERRORS or message.startswith("Could not locate record")


def _json(content: Any, action: str, *, write: bool) -> dict[str, Any]:
    if isinstance(content, dict):
        return content
    error = OutcomeUnknown if write else Transient
    raise error(PLATFORM, f"{action}: the server's answer is not JSON")
