"""Provide MastodonAdapter: statuses and self-replies on a Mastodon instance, through Mastodon.py.

Pictures are uploaded first (:meth:`MastodonAdapter.upload`, ``POST /api/v2/media`` with the alt
text as ``description``) and attached by id (``media_ids[]``) when the status is made.

Every create carries the delivery's key as the ``Idempotency-Key`` header: a resend with the same key
within the server's window (one hour) returns the status already made instead of a second one. Past
that window, and whenever an answer was lost, :meth:`MastodonAdapter.find` looks for the status among
the account's own recent statuses by its content, as for X and Reddit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import html.parser
import io
import logging
import math
import mimetypes
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonUnauthorizedError,
    MastodonVersionError,
)

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState, Uploaded
from posts.clock import utcnow
from posts.errors import (
    AdapterError,
    AuthFailed,
    ConfigError,
    MediaGone,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from posts.masking import Masker
from posts.mastodon_text import MastodonLimits
from posts.media import Picture, alt_length

logger = logging.getLogger(__name__)

PLATFORM = "mastodon"
VISIBILITIES = ("public", "unlisted", "private")
"""What the bot may post as (``direct`` would reach nobody)."""
MASTODON_VERSION = "4.4.0"
"""The server version Mastodon.py is told to assume, so that it never asks the server by itself. With
``version_check_mode="created"`` it is used (with ``"none"`` Mastodon.py keeps 1.0.0 and uploads to the
old ``/api/v1/media``); "created" only refuses calls to endpoints newer than this, and makes no request."""
RATE_LIMIT_FALLBACK = dt.timedelta(minutes=5)
"""How long to wait after a 429 that names no reset time (the general window is 5 minutes)."""
MIN_WAIT = dt.timedelta(seconds=5)
"""The shortest wait after a 429 whose reset is already past by our clock."""
FIND_PAGE = 40
"""Statuses per page when looking for a post (the server's maximum)."""
FIND_PAGES = 10
"""At most this many pages of the account's own statuses are read when looking for a post."""
MAX_REASON = 300
"""A server's message is cut to this many characters in an error."""
MEDIA_CHECKS = 5
"""How often an upload the server is still processing (HTTP 202, ``url: null``) is looked at again
before :meth:`MastodonAdapter.upload` gives up with ``Transient``."""
MEDIA_CHECK_WAIT = dt.timedelta(seconds=2)
"""The wait before each of those looks (images are normally processed at once: 200 with ``url``)."""
REPLY_TEXT_LIMIT = 2000
"""The most characters of a reply's text kept (``Reply.text``)."""
UPLOAD_KEPT = dt.timedelta(hours=12)
"""How long an unattached upload is counted on. Mastodon's ``Vacuum::MediaAttachmentsVacuum`` deletes
unattached media created more than a day before (``TTL = 1.day``, run by the scheduler): half that
leaves room for clocks and for the time between the engine's reuse check and the post. Past it the
engine uploads again; an orphan upload is harmless, and a removed one makes the post ``MediaGone``."""


@dataclasses.dataclass(frozen=True)
class MastodonConfig:
    """What the Mastodon adapter is built from: the instance, the posting account's access token, the
    visibility of its posts and how long to wait for the server. The token never shows in ``repr``."""

    api_base_url: str
    access_token: str = dataclasses.field(repr=False)
    visibility: str = "unlisted"
    timeout: dt.timedelta = dt.timedelta(seconds=30)
    user_agent: str = "oneyearago"
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    """Further secrets to mask out of every message (the token is masked anyway)."""


class _Session(requests.Session):
    """A session that keeps the last response it received (its status and rate-limit headers)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self._local.last = response
        return response

    def forget(self) -> None:
        self._local.last = None

    @property
    def last(self) -> requests.Response | None:
        """The last response received on this thread (``None`` since :meth:`forget`)."""
        return getattr(self._local, "last", None)


class MastodonAdapter:
    """Posts the rendered statuses as given; a follow-up is a plain ``status_post`` with ``in_reply_to_id``.

    Never ``status_reply``: it would prefix the bot's own handle and copy the parent's warning.
    Mastodon.py's own rate-limit waiting is off (``ratelimit_method="throw"``): the engine decides
    when to try again. Every Mastodon.py and requests error is translated in :meth:`_errors`, the one
    place that knows them.
    """

    platform: str = PLATFORM

    def __init__(self, config: MastodonConfig, *, clock: Callable[[], dt.datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep):
        base = config.api_base_url.strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise ConfigError(f"mastodon: the instance URL must be an http(s) URL, not {base!r}")
        if not config.access_token:
            raise ConfigError("mastodon: the configuration has no access token")
        if config.visibility not in VISIBILITIES:
            raise ConfigError(f"mastodon: visibility {config.visibility!r} is not one of {', '.join(VISIBILITIES)}")
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.base_url = base
        self.host = urlsplit(base).netloc
        self._mask = Masker([config.access_token, *config.secrets])
        self.session = _Session()
        self.api = Mastodon(access_token=config.access_token, api_base_url=base, ratelimit_method="throw",
                            version_check_mode="created", mastodon_version=MASTODON_VERSION, session=self.session,
                            request_timeout=config.timeout.total_seconds(), user_agent=config.user_agent)
        self._account: tuple[str, str] | None = None
        """(id, acct) of the posting account, from ``verify_credentials`` (fetched once, when first needed)."""
        self._limits: MastodonLimits | None = None

    # -- the contract -----------------------------------------------------------------

    def new_key(self) -> str:
        """A fresh Idempotency-Key, sent with every attempt of the delivery (the engine commits it first)."""
        return uuid.uuid4().hex

    def publish(self, post: Outgoing) -> PostRef:
        return self._create(post, None)

    def reply(self, post: Outgoing) -> PostRef:
        parent, _root = post.thread()
        return self._create(post, parent.id)

    def upload(self, picture: Picture) -> Uploaded:
        """Upload ``picture`` with its alt text as the media's ``description`` (``POST /api/v2/media``).

        An answer without ``url`` (HTTP 202: still processing) is looked at again up to
        :data:`MEDIA_CHECKS` times, :data:`MEDIA_CHECK_WAIT` apart; still unprocessed, ``Transient``.
        ``Rejected`` (nothing sent) when the alt text is longer than the instance's ``description_limit``
        or the image larger than its ``image_size_limit`` / ``image_matrix_limit``. The upload is counted
        on for :data:`UPLOAD_KEPT`.
        """
        image = picture.image
        limits = self.limits()
        if alt_length(picture.alt) > limits.description_limit:
            raise Rejected(self.platform, f"the alt text is {alt_length(picture.alt)} characters, more than the "
                                          f"instance's {limits.description_limit}")
        if image.size > limits.image_size_limit or image.width * image.height > limits.image_matrix_limit:
            raise Rejected(self.platform, f"the picture ({image.size:,} bytes, {image.width}×{image.height}) is "
                                          f"larger than the instance takes ({limits.image_size_limit:,} bytes, "
                                          f"{limits.image_matrix_limit:,} pixels)")
        extension = mimetypes.guess_extension(image.mime) or ""
        with self._errors("upload the picture", write=True, made="the upload"):
            media = self.api.media_post(io.BytesIO(image.data), mime_type=image.mime, description=picture.alt,
                                        file_name=f"{image.sha256[:16]}{extension}")
        media_id = str(media.get("id") or "") if isinstance(media, Mapping) else ""
        if not media_id:
            raise OutcomeUnknown(self.platform, "the upload was accepted but the answer holds no media id")
        checks = 0
        while not media.get("url"):
            if checks == MEDIA_CHECKS:
                raise Transient(self.platform, f"the uploaded picture {media_id} is still processing after "
                                               f"{MEDIA_CHECKS} checks")
            checks += 1
            self.sleep(MEDIA_CHECK_WAIT.total_seconds())
            with self._errors("check the uploaded picture", write=False):
                media = self.api.media(media_id)
            if not isinstance(media, Mapping):
                raise Transient(self.platform, f"the instance did not describe the uploaded picture {media_id}")
        logger.info("mastodon: uploaded picture %s (%s bytes)", media_id, image.size)
        return Uploaded(image.sha256, {"id": media_id}, self.clock() + UPLOAD_KEPT)

    def thread_state(self, ref: PostRef) -> ThreadState:
        """GONE when the status is deleted or no longer visible to the bot; else OPEN (the author may
        always reply to their own status)."""
        with self._errors("check the status", write=False):
            try:
                status = self.api.status(ref.id)
            except MastodonAPIError as exc:
                if _status_code(exc) in (404, 410):  # deleted, or not visible to the bot (Mastodon says 404)
                    logger.info("mastodon: status %s is gone (HTTP %s)", ref.id, _status_code(exc))
                    return ThreadState.GONE
                raise
        if not isinstance(status, Mapping) or str(status.get("id") or "") != str(ref.id):
            return ThreadState.GONE
        return ThreadState.OPEN

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        """Look for ``post`` among the account's own statuses since ``since``, newest first.

        A status matches when it answers the same parent (none for a root), carries the same content
        warning and, as text, the same content. The oldest match is the one that landed first.
        ``OutcomeUnknown`` when the statuses since ``since`` are more than :data:`FIND_PAGES` pages.
        """
        text, spoiler = self._status_text(post), _normal(str(post.payload.get("spoiler_text") or ""))
        want = _normal(text)
        parent_id = post.parent.id if post.parent is not None else None
        match: Mapping[str, Any] | None = None
        with self._errors("look for the status", write=False):
            account_id, _ = self._me()
            page: Any = self.api.account_statuses(account_id, limit=FIND_PAGE)
            complete = False
            for _ in range(FIND_PAGES):
                if not page:
                    complete = True
                    break
                for status in page:
                    created = _aware(status.get("created_at"))
                    if since is not None and created is not None and created < since:
                        complete = True
                        break
                    if (str(status.get("in_reply_to_id") or "") == str(parent_id or "")
                            and _normal(str(status.get("spoiler_text") or "")) == spoiler
                            and _normal(html_text(str(status.get("content") or ""))) == want):
                        match = status  # keep going: the oldest match is the one to keep
                if complete:
                    break
                page = self.api.fetch_next(page)
        if match is not None:
            return self._ref(match)
        if not complete:
            raise OutcomeUnknown(self.platform, f"look for the status: not among the last {FIND_PAGES * FIND_PAGE} "
                                                "statuses, and there are more")
        return None

    def whoami(self) -> str:
        """``@acct@host`` of the account the token posts as."""
        with self._errors("check the credentials", write=False):
            self._account = None
            _, acct = self._me()
        return f"@{acct}@{self.host}" if "@" not in acct else f"@{acct}"

    def limits(self) -> MastodonLimits:
        """The instance's status limits, read once from ``/api/v2/instance``."""
        if self._limits is None:
            with self._errors("read the instance's limits", write=False):
                instance = self.api.instance_v2()
            self._limits = MastodonLimits.from_instance(instance if isinstance(instance, Mapping) else None)
        return self._limits

    def automation_mark(self) -> bool:
        """Whether the account carries Mastodon's ``bot`` flag (shown as "Automated" on its profile)."""
        with self._errors("read the account", write=False):
            account = self.api.account_verify_credentials()
        if not isinstance(account, Mapping) or "bot" not in account:
            raise Transient(self.platform, "the instance did not say whether the account is a bot")
        return bool(account["bot"])

    def mark_automated(self) -> None:
        """Set the account's ``bot`` flag (``update_credentials``); nothing is sent when it is set already."""
        if self.automation_mark():
            return
        with self._errors("mark the account as a bot", write=True, made="the change"):
            account = self.api.account_update_credentials(bot=True)
        if not isinstance(account, Mapping) or not account.get("bot"):
            raise Rejected(self.platform, "the instance did not set the account's bot flag")
        logger.info("mastodon: the account is now marked as a bot")

    # -- the conversation under a thread ---------------------------------------------------

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The replies by others under ``root``: the ``descendants`` of ``GET /api/v1/statuses/:id/context``.

        Mastodon returns every descendant at any depth to an authenticated client (up to 4,096), so
        ``total`` counts them all, less the bot's own statuses (``own``, and any other status by the
        account). Mastodon lets no author hide a reply: this adapter has no ``hide_reply``.
        """
        skip = {root.id, *(ref.id for ref in own)}
        requests_made = 1 if self._account is not None else 2
        with self._errors("read the replies", write=False):
            account_id, _ = self._me()
            context = self.api.status_context(root.id)
        descendants = context.get("descendants") if isinstance(context, Mapping) else None
        replies: list[Reply] = []
        for status in descendants or []:
            if not isinstance(status, Mapping) or str(status.get("id") or "") in skip:
                continue
            account = status.get("account")
            if not isinstance(account, Mapping):
                account = {}
            if str(account.get("id") or "") == account_id:
                continue
            reply = self._reply(status, account)
            if reply is not None:
                replies.append(reply)
        replies.sort(key=lambda r: (r.at, _numeric(r.id)), reverse=True)
        return Conversation(len(replies), tuple(replies[:max(0, limit)]), requests_made)

    def _reply(self, status: Mapping[str, Any], account: Mapping[str, Any]) -> Reply | None:
        at = _aware(status.get("created_at"))
        if at is None:
            logger.warning("mastodon: reply %s has no creation time; left out", status.get("id"))
            return None
        acct = str(account.get("acct") or account.get("username") or "")
        author = f"@{acct}" if "@" in acct else f"@{acct}@{self.host}"
        status_id = str(status["id"])
        url = str(status.get("url") or status.get("uri") or f"{self.base_url}/statuses/{status_id}")
        return Reply(status_id, author, html_text(str(status.get("content") or ""))[:REPLY_TEXT_LIMIT],
                     at.astimezone(dt.UTC), url, str(status.get("in_reply_to_id") or ""))

    # -- helpers ----------------------------------------------------------------------

    def _create(self, post: Outgoing, in_reply_to_id: str | None) -> PostRef:
        text = self._status_text(post)
        spoiler = post.payload.get("spoiler_text") or None
        language = post.payload.get("language") or None
        action = "reply" if in_reply_to_id is not None else "post"
        media = _media_ids(post)
        with self._errors(action, write=True, replying=in_reply_to_id is not None, media=media):
            status = self.api.status_post(text, in_reply_to_id=in_reply_to_id, media_ids=list(media) or None,
                                          spoiler_text=spoiler, language=language,
                                          visibility=self.config.visibility, idempotency_key=post.key)
        if not isinstance(status, Mapping) or not status.get("id"):
            raise OutcomeUnknown(self.platform, f"the {action} was accepted but the answer holds no status id")
        ref = self._ref(status)
        logger.info("mastodon: %s %s%s", "replied" if in_reply_to_id else "posted", ref.id,
                    f" under {in_reply_to_id}" if in_reply_to_id else "")
        return ref

    def _status_text(self, post: Outgoing) -> str:
        text = post.payload.get("status")
        if not isinstance(text, str) or not text.strip():
            raise Rejected(self.platform, f"the {post.kind} payload has no status text (not a Mastodon payload?)")
        return text

    def _ref(self, status: Mapping[str, Any]) -> PostRef:
        status_id = str(status["id"])
        url = str(status.get("url") or status.get("uri") or f"{self.base_url}/statuses/{status_id}")
        extra = {"uri": str(status["uri"])} if status.get("uri") else {}
        return PostRef(self.platform, status_id, url, extra)

    def _me(self) -> tuple[str, str]:
        """(id, acct) of the posting account; call inside ``_errors``."""
        if self._account is None:
            account = self.api.account_verify_credentials()
            if not isinstance(account, Mapping) or not account.get("id"):
                raise Transient(self.platform, "the instance did not say who the account is")
            self._account = (str(account["id"]), str(account.get("acct") or account.get("username") or ""))
        return self._account

    def _check_media(self, media: tuple[str, ...], action: str, refusal: MastodonAPIError) -> None:
        """After a create naming ``media`` was refused (404 or 422): raise ``MediaGone`` when one of them is
        no longer the account's to attach, ``Transient`` when one is still processing; return when all are
        there and ready (or when asking fails: the refusal then stands as it is). Called by :meth:`_errors`."""
        said = f"HTTP {_status_code(refusal)}{': ' + _server_message(refusal) if _server_message(refusal) else ''}"
        unready = []
        for media_id in media:
            try:
                found = self.api.media(media_id)
            except MastodonNotFoundError as exc:
                raise self._error(MediaGone, f"{action}: the uploaded picture {media_id} is gone from the instance "
                                             f"(removed, or already attached; {said}): upload it again") from exc
            except (MastodonError, requests.RequestException):
                logger.info("mastodon: could not look up picture %s after a refused %s", media_id, action)
                return
            if isinstance(found, Mapping) and not found.get("url"):
                unready.append(media_id)
        if unready:
            raise self._error(Transient, f"{action}: the uploaded picture {', '.join(unready)} is still being "
                                         f"processed ({said})")

    def _error(self, cls: type[AdapterError], message: str, **extra: Any) -> AdapterError:
        """An error with every secret masked out of its message."""
        return cls(self.platform, self._mask(message), **extra)

    @contextlib.contextmanager
    def _errors(self, action: str, *, write: bool, replying: bool = False, made: str = "the status",
                media: tuple[str, ...] = ()) -> Iterator[None]:
        """Translate Mastodon.py and requests errors into the project's errors: the one place that does.

        ``write`` is for calls that create something (``made``: a status, an upload): there, anything
        that may have reached the server (a timeout or a connection lost after sending, a 500, 502 or 504,
        an unreadable answer) is ``OutcomeUnknown``, never a reason to send again under a new key.

        ``media`` are the ids a create attaches: when the server refuses it with 404 or 422 (real
        Mastodon says 422 "Media … not found or already attached to another post", in the server's
        language), each is looked up (``GET /api/v1/media/:id`` finds only the account's unattached
        media): one that is not there makes the refusal :class:`MediaGone`, one still processing makes
        it ``Transient``. The server's localised message itself is never parsed.
        """
        self.session.forget()
        try:
            yield
        except AdapterError:
            raise
        except MastodonRatelimitError as exc:
            last = self.session.last
            if last is not None and last.status_code != 429:
                # Mastodon.py could not read the rate-limit headers of an answer that was not a 429.
                what = f"unreadable rate-limit headers on HTTP {last.status_code} ({exc})"
                if write and last.ok:
                    raise self._error(OutcomeUnknown, f"{action}: {what}: {made} was probably made") from exc
                raise self._error(Transient, f"{action}: {what}") from exc
            retry_at, which = self._retry_at(last)
            raise self._error(RateLimited, f"{action}: too many requests (HTTP 429, {which})",
                              retry_at=retry_at) from exc
        except MastodonAPIError as exc:
            if media and _status_code(exc) in (404, 422):
                self._check_media(media, action, exc)
            raise self._translate(exc, action, write=write, replying=replying, made=made) from exc
        except MastodonNetworkError as exc:
            cause = exc.__context__
            message = f"{action}: {_network(cause, self.host)}"
            if write and not _never_sent(cause):
                raise self._error(OutcomeUnknown, message + f" ({made} may have been made)") from exc
            raise self._error(Transient, message) from exc
        except (MastodonIllegalArgumentError, MastodonVersionError) as exc:  # refused before any request
            raise self._error(Rejected, f"{action}: Mastodon.py refused the call: {_cut(str(exc))}") from exc
        except MastodonError as exc:
            message = f"{action}: {type(exc).__name__}: {_cut(str(exc))}"
            raise self._error(OutcomeUnknown if write else Transient, message) from exc

    def _translate(self, exc: MastodonAPIError, action: str, *, write: bool, replying: bool,
                   made: str = "the status") -> AdapterError:
        status = _status_code(exc)
        said = _server_message(exc)
        described = f"HTTP {status}{': ' + said if said else ''}" if status else _cut(str(exc))
        if isinstance(exc, MastodonUnauthorizedError) or status == 401:
            return self._error(AuthFailed, f"{action}: the instance refused the access token ({described}); make a "
                                           "new one under Preferences > Development")
        if status == 403:
            return self._error(AuthFailed, f"{action}: not allowed ({described}); the token needs the "
                                           "write:statuses, write:media and read:statuses scopes")
        if status is None:  # an answer Mastodon.py could not read (not JSON)
            if write:
                return self._error(OutcomeUnknown, f"{action}: unreadable answer ({described}): {made} may "
                                                   "have been made")
            return self._error(Transient, f"{action}: unreadable answer ({described})")
        if status >= 500:
            if write and status != 503:
                # 500: a repeated Idempotency-Key can answer 500 although the first status exists
                # (mastodon/mastodon#40399); 502/504: the proxy gave up while the server may have posted.
                return self._error(OutcomeUnknown, f"{action}: {described} ({made} may have been made)")
            return self._error(Transient, f"{action}: {described}")
        if status == 429:
            retry_at, which = self._retry_at(self.session.last)
            return self._error(RateLimited, f"{action}: too many requests ({which})", retry_at=retry_at)
        if isinstance(exc, MastodonNotFoundError) or status in (404, 410):
            if replying:
                return self._error(Rejected, f"{action}: the status replied to is gone ({described})")
            return self._error(Rejected if write else Transient, f"{action}: not found ({described})")
        if status == 408:
            return self._error(Transient, f"{action}: the server timed out reading the request ({described})")
        if write:
            return self._error(Rejected, f"{action}: {described}")
        return self._error(Transient, f"{action}: {described}")

    def _retry_at(self, response: requests.Response | None) -> tuple[dt.datetime, str]:
        """When the server allows the next request: its ``X-RateLimit-Reset`` (ISO 8601 on Mastodon, Unix
        seconds on some servers), moved onto our clock by the answer's ``Date``; ``Retry-After`` if later."""
        now = self.clock()
        headers: Mapping[str, str] = response.headers if response is not None else {}
        candidates: list[tuple[dt.datetime, str]] = []
        reset = parse_reset(headers.get("X-RateLimit-Reset"))
        if reset is not None:
            server_now = _http_date(headers.get("Date"))
            when = now + (reset - server_now) if server_now is not None else reset
            candidates.append((when, f"reset at {reset:%H:%M:%S} UTC"))
        retry_after = _seconds(headers.get("Retry-After"))
        if retry_after is not None:
            candidates.append((now + retry_after, f"retry after {math.ceil(retry_after.total_seconds())}s"))
        if not candidates:
            return now + RATE_LIMIT_FALLBACK, "no reset time given"
        latest, which = max(candidates, key=lambda item: item[0])
        return max(latest, now + MIN_WAIT), which


def _media_ids(post: Outgoing) -> tuple[str, ...]:
    """The media ids ``post`` attaches, in the order of its pictures.

    Raises:
        ValueError: pictures without uploads (the engine uploads them first, through :meth:`upload`),
            or uploads that are not those pictures'.
    """
    if not post.media:
        if post.pictures:
            raise ValueError(f"{post.kind} {post.part} of {post.story_id} has {len(post.pictures)} pictures but no "
                             "uploads: the engine uploads them before it sends the post")
        return ()
    if post.pictures and [u.sha256 for u in post.media] != [p.image.sha256 for p in post.pictures]:
        raise ValueError(f"the uploads of {post.kind} {post.part} of {post.story_id} are not its pictures, in order")
    ids = tuple(str(u.ref.get("id") or "") for u in post.media)
    if not all(ids):
        raise ValueError(f"an upload of {post.kind} {post.part} of {post.story_id} has no Mastodon media id")
    return ids


# ---------------------------------------------------------------------------- errors


def _status_code(exc: MastodonAPIError) -> int | None:
    """The HTTP status of a failed call (``exc.args[1]`` as Mastodon.py raises it), else ``None``."""
    if len(exc.args) >= 2 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def _server_message(exc: MastodonAPIError) -> str:
    """The server's ``error`` text (localised: shown to the operator, never parsed)."""
    said = exc.args[3] if len(exc.args) >= 4 and exc.args[3] else (exc.args[2] if len(exc.args) >= 3 else "")
    return _cut(str(said or ""))


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def parse_reset(value: str | None) -> dt.datetime | None:
    """An ``X-RateLimit-Reset`` value as an aware UTC time: ISO 8601 (Mastodon: ``2026-08-01T15:00:00.949515Z``)
    or Unix seconds; ``None`` when it is neither."""
    text = (value or "").strip()
    if not text:
        return None
    with contextlib.suppress(ValueError, OverflowError, OSError):
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    with contextlib.suppress(ValueError):
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return None


def _http_date(value: str | None) -> dt.datetime | None:
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value or "")
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def _seconds(value: str | None) -> dt.timedelta | None:
    with contextlib.suppress(ValueError, OverflowError):
        seconds = float((value or "").strip())
        if math.isfinite(seconds) and seconds >= 0:
            return dt.timedelta(seconds=seconds)
    return None


def _network(exc: BaseException | None, host: str) -> str:
    """A short description of a network failure (no URL parameters, no headers)."""
    if isinstance(exc, requests.ConnectTimeout):
        kind = "timed out connecting to"
    elif isinstance(exc, requests.ReadTimeout):
        kind = "no answer in time from"
    elif isinstance(exc, requests.ConnectionError):
        kind = "connection failed to"
    else:
        kind = "bad answer from"
    return f"{kind} {host} ({type(exc).__name__ if exc is not None else 'network error'})"


def _never_sent(exc: BaseException | None) -> bool:
    """Whether the request certainly never reached the server (the connection was never made)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = exc.args[0]
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        # NewConnectionError (refused, no route) and NameResolutionError are ConnectTimeoutErrors.
        return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
    return False


def _numeric(status_id: str) -> int:
    """A status id as a number, for ordering statuses of the same second (Mastodon's ids grow with time)."""
    return int(status_id) if status_id.isdigit() else 0


def _aware(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


# ---------------------------------------------------------------------------- matching


class _Text(html.parser.HTMLParser):
    """The text of a status's HTML content: paragraphs and line breaks as newlines, links as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(content: str) -> str:
    """The plain text of a status's ``content`` (Mastodon answers HTML: ``<p>…<br />…</p>``)."""
    parser = _Text()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts)


_SPACE = re.compile(r"\s+")


def _normal(text: str) -> str:
    """Text as compared: NFC, every run of white space one space, no white space at the ends."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
