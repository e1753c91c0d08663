"""Provide RedditAdapter: self posts to a subreddit and comment replies, through praw."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import logging
import math
import mimetypes
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import praw
import prawcore
import requests
import urllib3
from praw.exceptions import (
    ClientException,
    MediaPostFailed,
    PRAWException,
    ReadOnlyException,
    RedditAPIException,
    TooLargeMediaException,
    WebSocketException,
)
from praw.models import InlineImage, PostMedia
from prawcore.sessions import FiniteRetryStrategy, RetryStrategy

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState
from posts.clock import utcnow
from posts.errors import (
    AdapterError,
    AuthFailed,
    ConfigError,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from posts.masking import Masker
from posts.media import REDDIT_CAPTION, Picture

logger = logging.getLogger(__name__)

RATELIMIT_FALLBACK = dt.timedelta(minutes=10)
"""Wait after a RATELIMIT whose message gives no time."""
TOO_MANY_REQUESTS_FALLBACK = dt.timedelta(seconds=60)
"""Wait after a 429 that says neither ``retry-after`` nor ``x-ratelimit-reset``."""
PACING_LIMIT = 15.0
"""prawcore sleeps before a request to spread the quota (at most 10 s); longer means the quota is spent."""
LISTING_LIMIT = 100
COMMENTS_READ = 500
"""The most comments one read of a thread asks for (``limit`` of ``GET /comments/<id>``; Reddit's own cap)."""
REPLY_TEXT_LIMIT = 2000
"""The most characters of a reply's text kept (``Reply.text``)."""
"""How many of the account's newest submissions or comments ``find`` looks through."""

_UNIT_SECONDS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0, "hour": 3600.0}
_AMOUNT = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)s?\b", re.IGNORECASE)
_GONE_TEXT = ("[removed]", "[deleted]")
IMAGE_MODES = ("inline", "gallery")
"""How a root's pictures go into its post (``ONEYEARAGO_REDDIT_IMAGES``)."""
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_REDDIT_MEDIA_LINE = re.compile(
    r"^[ \t]*(?:\[[^\n]*\]\()?<?https?://(?:(?:preview|i)\.redd\.it/|(?:www\.)?reddit\.com/link/)[^\s)]*>?\)?"
    r"[ \t]*$", re.MULTILINE)
"""A line Reddit made of an inline picture in the self text it gives back: ``[caption](https://preview.redd.it/...)``
(``i.redd.it`` for a GIF, ``reddit.com/link/<id>/video/`` for a video, as recorded)."""
_WORD = re.compile(r"[^\W_]+")
"""Letters and digits: ``foo\\_bar`` (escaped) and ``foo_bar`` have the same words."""


@dataclasses.dataclass(frozen=True)
class RedditConfig:
    """What the Reddit adapter is built from: the script app's and the posting account's credentials,
    the subreddit, the flair template, where Reddit is and how long to wait for it. Secrets never
    show in ``repr``."""

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    username: str
    password: str = dataclasses.field(repr=False)
    subreddit: str
    version: str
    """The bot's version, for the user agent Reddit requires."""
    user_agent: str = ""
    """Empty builds Reddit's required form from the version and the username (see :func:`user_agent`)."""
    flair_id: str = ""
    images: str = "inline"
    """How a root's pictures are posted: ``inline`` (in the self text, captioned) or ``gallery``."""
    url: str = "https://www.reddit.com"
    oauth_url: str = "https://oauth.reddit.com"
    timeout: dt.timedelta = dt.timedelta(seconds=30)
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    """Further secrets to mask out of every message (the credentials are masked anyway)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "username", "password", "subreddit")


def user_agent(config: RedditConfig) -> str:
    """The configured one, else Reddit's required form ``<platform>:<app id>:<version> (by /u/<username>)``."""
    if config.user_agent.strip():
        return config.user_agent.strip()
    return f"{sys.platform}:oneyearago:{config.version} (by /u/{config.username})"


def ratelimit_delay(message: str | None) -> dt.timedelta | None:
    """The wait a RATELIMIT message asks for, rounded up; ``None`` when it names no time.

    Reddit rounds the time down ("9 minutes" may mean 9:59), so one unit of the smallest unit
    named is added: the result is never earlier than Reddit meant.
    """
    found = _AMOUNT.findall(message or "")
    if not found:
        return None
    units = [_UNIT_SECONDS[unit.lower()] for _, unit in found]
    total = sum(int(amount) * unit for (amount, _), unit in zip(found, units, strict=True)) + min(units)
    return dt.timedelta(seconds=max(1, math.ceil(total)))


def retry_after(response: requests.Response, now: dt.datetime) -> dt.timedelta:
    """The wait a 429 asks for: ``retry-after``, else ``x-ratelimit-reset`` (seconds), else the body."""
    for header in ("retry-after", "x-ratelimit-reset"):
        value = (response.headers.get(header) or "").strip()
        if not value:
            continue
        try:
            return dt.timedelta(seconds=max(1, math.ceil(float(value))))
        except ValueError:
            pass
        with contextlib.suppress(TypeError, ValueError):
            when = email.utils.parsedate_to_datetime(value)
            return max(dt.timedelta(seconds=1), when - now)
    match = re.search(r"wait (\d+) second", response.text or "")
    if match:
        return dt.timedelta(seconds=max(1, int(match.group(1))))
    return TOO_MANY_REQUESTS_FALLBACK


# ---------------------------------------------------------------------------- pictures


def media_name(index: int, mime: str) -> str:
    """The file name praw is given for a picture's bytes (praw infers the MIME type from it): ``img1.png``.

    A MIME type with no known image extension gives a name without one, which praw refuses
    (``ClientException``: it cannot tell the type) before anything is uploaded.
    """
    extension = mimetypes.guess_extension(mime) if mime.startswith("image/") else None
    if mime == "image/jpeg":
        extension = ".jpg"
    return f"img{index}{extension or ''}"


def caption(alt: str) -> str:
    """A picture's alt text as its Reddit caption: on one line (a gallery caption is checked against
    :data:`posts.media.REDDIT_CAPTION` as this)."""
    return " ".join(alt.split())


def inline_caption(alt: str) -> str:
    """The caption of an inline picture: :func:`caption` with ``\\`` and ``"`` escaped, because praw writes
    it as the title of a Markdown image, ``![img](<media id> "caption")``."""
    return caption(alt).replace("\\", "\\\\").replace('"', '\\"')


def inline_selftext(body: str, count: int) -> str:
    """The self text praw is given for an inline post of ``count`` pictures: ``body`` with the placeholders
    ``{img1}`` ... ``{imgN}`` after its first paragraph block (with the built-in template: the date line),
    or at the end when it has only one block or the first one opens a code fence.

    praw fills the placeholders with ``str.format``, so braces in ``body`` are doubled here: what Reddit
    receives is ``body`` unchanged, with each picture (and its caption) between the first block and the rest.
    The payload rendering produced is left as it is; this is applied at send time.
    """
    if not count:
        return body
    escaped = body.replace("{", "{{").replace("}", "}}")
    marks = "".join(f"{{img{i}}}" for i in range(1, count + 1))
    parts = _BLOCK_BREAK.split(escaped, maxsplit=1)
    if len(parts) == 1 or parts[0].count("```") % 2 or parts[0].count("~~~") % 2:
        return f"{escaped}\n\n{marks}"
    return f"{parts[0]}\n\n{marks}\n\n{parts[1]}"


def surviving_words(selftext: str) -> list[str]:
    """The words of a self text that survive Reddit's rich-text round trip of an inline-picture post.

    Reddit gives back the self text of a post made with ``richtext_json`` as Markdown it wrote itself:
    each picture becomes a line ``[caption](https://preview.redd.it/...)`` and the Markdown around it may be
    re-spelled (escapes, emphasis marks, spacing). The picture lines are dropped and the words compared.
    """
    return _WORD.findall(_REDDIT_MEDIA_LINE.sub("", selftext).casefold())


# ---------------------------------------------------------------------------- sending once

_writing = threading.local()


class _SendOnce(RetryStrategy):
    """A prawcore retry strategy that never retries and never sleeps."""

    def _sleep_seconds(self) -> float | None:
        return None

    def consume_available_retry(self) -> _SendOnce:
        return self

    def should_retry_on_failure(self) -> bool:
        return False


def _retry_strategy() -> RetryStrategy:
    """prawcore's retries for reads; none for a write in progress on this thread."""
    return _SendOnce() if getattr(_writing, "active", False) else FiniteRetryStrategy()


@contextlib.contextmanager
def _send_once() -> Iterator[None]:
    previous = getattr(_writing, "active", False)
    _writing.active = True
    try:
        yield
    finally:
        _writing.active = previous


class _Requestor(prawcore.Requestor):
    """prawcore's requestor with our timeout on every request (praw 8 ignores its own ``timeout``), counting
    what it sends: a read's cost includes the token fetches and prawcore's retries it caused."""

    sent: int = 0

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        self.sent += 1
        return super().request(*args, timeout=self.timeout, **kwargs)


def _never_sent(exc: BaseException | None) -> bool:
    """True when the connection failed before the request could be sent (refused, DNS, TLS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = exc.args[0]
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return isinstance(reason, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError))
    return False


def _is_token_request(exc: BaseException) -> bool:
    """The failure was in getting an access token, so no write was sent."""
    url = ""
    if isinstance(exc, prawcore.ResponseException):
        url = getattr(exc.response.request, "url", "") or ""
    elif isinstance(exc, prawcore.RequestException):
        url = next((str(a) for a in exc.request_args if isinstance(a, str) and "://" in a), "")
    return "/api/v1/access_token" in url


_THE_POST = ("/api/submit", "/api/comment")
"""The paths of the writes themselves (``/api/submit/``, ``/api/submit_gallery_post.json``, ``/api/comment/``):
every other request of a submit or reply (the token, a picture's lease and its upload, the conversion of an
inline post's text) comes before the post, so its failure leaves nothing posted."""


def _request_url(exc: BaseException) -> str:
    if isinstance(exc, prawcore.ResponseException):
        return getattr(exc.response.request, "url", "") or ""
    if isinstance(exc, prawcore.RequestException):
        return next((str(a) for a in exc.request_args if isinstance(a, str) and "://" in a), "")
    return ""


def _before_the_post(exc: BaseException) -> bool:
    """The failed request is known and is not the write itself (:data:`_THE_POST`): nothing was posted."""
    url = _request_url(exc)
    if not url:
        return False
    path = urlsplit(url).path
    return not any(write in path for write in _THE_POST)


def _normal(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def _fullname(ref: PostRef) -> str:
    """``t3_<id>`` for a submission, ``t1_<id>`` for a comment."""
    name = ref.extra.get("name", "")
    if name:
        return name
    return f"t3_{ref.id}" if ref.extra.get("submission", ref.id) == ref.id else f"t1_{ref.id}"


class RedditAdapter:
    """Posts each root as a self post in the configured subreddit; follow-ups are comments.

    Every write sends its POST exactly once: prawcore's own retries (on timeouts and 5xx) are
    turned off for the duration of a write, on the writing thread only, so a post can never be
    doubled by the library. The one exception is a 401 on the write itself: Reddit refused the
    token before looking at the post, so it is sent again once with a fresh token.

    Flair: praw 8 sends ``flair_text`` as given, but Reddit needs a flair template id with it.
    The story's ``flair_text`` is therefore sent only when the configuration's ``flair_id`` is set;
    the template id alone is sent when there is no text.

    Pictures (``post.pictures``): Reddit has no alt text, so each picture's alt text is its caption.
    This adapter has no ``upload``: praw uploads the pictures inside ``submit`` (a lease from
    ``/api/media/asset.json``, then a multipart POST to the S3 URL the lease names), all before the
    post itself is sent, so a failed upload posts nothing. With ``images="inline"`` (the default) the root
    is a self post with the pictures in its text, after the first paragraph block (:func:`inline_selftext`);
    praw converts the Markdown to rich text (``/api/convert_rte_body_format``) and submits ``richtext_json``.
    With ``images="gallery"`` it is a gallery post (``/api/submit_gallery_post.json``) with the self text
    under it; a gallery caption holds at most 180 characters, and a longer alt text is refused
    (``Rejected``), never cut. Comments cannot carry uploaded pictures through praw: a follow-up's
    pictures are left out (logged at info level) and the comment is posted with its text alone.
    """

    platform: str = "reddit"

    def __init__(self, config: RedditConfig, *, clock: Callable[[], dt.datetime] = utcnow,
                 requestor_kwargs: dict[str, Any] | None = None):
        missing = [name for name in config.REQUIRED if not getattr(config, name)]
        if missing:
            raise ConfigError(f"reddit: the configuration has no {', '.join(missing)}")
        self.config = config
        self.clock = clock
        self._mask = Masker([config.client_secret, config.password, *config.secrets])
        self.subreddit_name = re.sub(r"^/?r/", "", config.subreddit.strip()).strip("/")
        self.username = config.username
        self.site = config.url.rstrip("/")
        self.flair_id = config.flair_id.strip() or None
        if config.images not in IMAGE_MODES:
            raise ConfigError(f"reddit: images must be one of {', '.join(IMAGE_MODES)}, not {config.images!r}")
        self.images = config.images
        timeout = config.timeout.total_seconds()
        self.reddit = praw.Reddit(
            client_id=config.client_id,
            client_secret=config.client_secret,
            username=config.username,
            password=config.password,
            user_agent=user_agent(config),
            reddit_url=config.url,
            oauth_url=config.oauth_url,
            ratelimit_seconds=-1,  # never sleep and re-send on RATELIMIT (0 still re-sends after "N milliseconds")
            timeout=max(1, math.ceil(timeout)),  # praw 8.0.3 parses it but never uses it: _Requestor does
            check_for_updates=False,
            check_for_async=False,
            requestor_class=_Requestor,
            requestor_kwargs={"timeout": timeout, **(requestor_kwargs or {})},
        )
        for core in {id(c): c for c in (self.reddit._core, self.reddit._authorized_core,
                                        self.reddit._read_only_core) if c is not None}.values():
            if not hasattr(core, "_retry_strategy_class"):
                raise ConfigError("reddit: this prawcore has no retry hook (prawcore 4.x is needed to send "
                                  "each post exactly once)")
            core._retry_strategy_class = _retry_strategy  # type: ignore[attr-defined]
        self.subreddit = self.reddit.subreddit(self.subreddit_name)

    # ------------------------------------------------------------------ the contract

    def new_key(self) -> None:
        """Reddit takes no idempotency key: a post of unknown outcome is looked for by its text (:meth:`find`)."""
        return None

    def publish(self, post: Outgoing) -> PostRef:
        title, selftext = self._field(post, "title"), self._field(post, "selftext")
        flair_text = post.payload.get("flair_text") or None
        if flair_text and self.flair_id is None:
            logger.debug("reddit: flair text %r not sent: ONEYEARAGO_REDDIT_FLAIR_ID is not set", flair_text)
            flair_text = None
        media = self._media(post.pictures)
        with self._mapped("submit"):
            submission = self._write(lambda: self.subreddit.submit(
                title, flair_id=self.flair_id, flair_text=flair_text, send_replies=True,
                **self._content(selftext, post.pictures, media)))
        if submission is None:
            raise self._error(OutcomeUnknown, "Reddit accepted the submission but did not say its id")
        ref = PostRef(self.platform, submission.id, self._url(submission, f"/comments/{submission.id}/"),
                      {"name": f"t3_{submission.id}", "submission": submission.id})
        logger.info("reddit: posted %s to r/%s", ref.id, self.subreddit_name)
        return ref

    def reply(self, post: Outgoing) -> PostRef:
        parent, root = post.thread()
        text = self._field(post, "text")
        parent_name = _fullname(parent)
        if post.pictures:
            logger.info("reddit: %d picture(s) of %s %d of %s left out: a Reddit comment cannot carry an "
                        "uploaded picture", len(post.pictures), post.kind, post.part, post.story_id)
        thing = (self.reddit.submission(parent.id) if parent_name.startswith("t3_")
                 else self.reddit.comment(parent.id))
        with self._mapped("reply"):
            comment = self._write(lambda: thing.reply(text))
        if comment is None:
            raise self._error(OutcomeUnknown, f"Reddit accepted the reply to {parent_name} but did not return it "
                                              "(quarantined subreddit?)")
        ref = self._comment_ref(comment, parent.extra.get("submission") or root.id)
        logger.info("reddit: replied %s under %s", ref.id, parent_name)
        return ref

    def thread_state(self, ref: PostRef) -> ThreadState:
        name = _fullname(ref)
        submission_id = ref.extra.get("submission") or ref.id
        with self._mapped("read"):
            if name.startswith("t1_"):
                found = list(self.reddit.info(fullnames=[name]))
                if not found:
                    return ThreadState.GONE
                comment = vars(found[0])
                if comment.get("author") is None and comment.get("body") in _GONE_TEXT:
                    return ThreadState.GONE
                if comment.get("locked"):
                    return ThreadState.LOCKED
                submission_id = str(comment.get("link_id") or f"t3_{submission_id}").removeprefix("t3_")
            submission = self.reddit.submission(submission_id)
            submission.comment_limit = 1
            try:
                submission.title  # noqa: B018  (fetches GET /comments/<id>)
            except prawcore.NotFound:
                return ThreadState.GONE
            data = vars(submission)
        if data.get("removed_by_category") or (data.get("author") is None and data.get("selftext") in _GONE_TEXT):
            return ThreadState.GONE
        if data.get("locked") or data.get("archived"):
            return ThreadState.LOCKED
        return ThreadState.OPEN

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        cutoff = since.timestamp() if since is not None else float("-inf")
        is_root = "title" in post.payload
        if is_root:
            title, selftext = self._field(post, "title"), _normal(self._field(post, "selftext"))
            words = surviving_words(selftext) if post.pictures else None
        else:
            text = _normal(self._field(post, "text"))
        with self._mapped("read"):
            me = self.reddit.user.me()
            if is_root:
                match = None
                for submission in me.submissions.new(limit=LISTING_LIMIT):  # type: ignore[union-attr]
                    if submission.created_utc < cutoff:
                        break
                    same_text = (_normal(submission.selftext) == selftext if words is None
                                 else surviving_words(submission.selftext) == words)
                    if (submission.title == title and same_text
                            and str(submission.subreddit).lower() == self.subreddit_name.lower()):
                        match = submission  # keep going: the oldest one is the one to keep
                if match is None:
                    return None
                return PostRef(self.platform, match.id, self._url(match, f"/comments/{match.id}/"),
                               {"name": f"t3_{match.id}", "submission": match.id})
            parent = _fullname(post.parent) if post.parent is not None else None
            found = None
            for comment in me.comments.new(limit=LISTING_LIMIT):  # type: ignore[union-attr]
                if comment.created_utc < cutoff:
                    break
                if _normal(comment.body) == text and parent in (None, comment.parent_id):
                    found = comment
            if found is None:
                return None
            root = post.root.id if post.root is not None else ""
            return self._comment_ref(found, root)

    def whoami(self) -> str:
        with self._mapped("read"):
            name = self.reddit.user.me().name  # type: ignore[union-attr]
        with self._mapped("subreddit"):
            subreddit = self.reddit.subreddit(self.subreddit_name)
            display = subreddit.display_name_prefixed if hasattr(subreddit, "display_name_prefixed") else None
            data = vars(subreddit)
        if data.get("user_is_banned"):
            raise self._error(Rejected, f"u/{name} is banned from r/{self.subreddit_name}")
        return f"u/{name} posting to {display or 'r/' + self.subreddit_name}"

    # ------------------------------------------------------------------ the conversation under a thread

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The comments by others under the submission ``root``: one ``GET /comments/<id>?sort=new``
        (``requests`` also counts the access token praw fetches first when it has none or it ran out).

        ``total`` is the submission's ``num_comments`` less the bot's own comments (``own``, and any
        other comment by the account that the read showed), and never less than the replies seen:
        Reddit counts comments at every depth, the removed and deleted ones included. The replies are
        the newest of the comments the read returned (at most :data:`COMMENTS_READ`; the rest are
        "load more" stubs, dropped). Removed and deleted comments are left out of the list.
        Reddit lets a post's author hide no comment (only moderators remove): no ``hide_reply``.
        """
        submission_id = root.extra.get("submission") or root.id
        own_names = {_fullname(ref) for ref in own}
        me = self.username.lower()
        core = self.reddit._core
        requestor: Any = core.requestor if core is not None else None
        sent = getattr(requestor, "sent", 0)
        # Sent once, without prawcore's retries (up to three sends of a GET on a 5xx or timeout): the sweep
        # counts each read against its budget and reads the thread again at its next pass.
        try:
            with self._mapped("read"), _send_once():
                submission = self.reddit.submission(submission_id)
                submission.comment_sort = "new"
                submission.comment_limit = min(COMMENTS_READ, max(1, limit) + len(own) + 50)
                try:
                    comments = submission.comments
                except prawcore.NotFound:
                    raise self._error(Rejected, f"the submission {submission_id} is gone (HTTP 404)") from None
                comments.replace_more(limit=0)
                found = comments.list()
                num_comments = int(vars(submission).get("num_comments") or 0)
        except AdapterError as exc:  # the access token fetched before a read that failed was sent too
            exc.requests = max(1, getattr(requestor, "sent", 0) - sent)
            raise
        replies: list[Reply] = []
        for comment in found:
            if not isinstance(comment, praw.models.Comment):  # a "load more" stub left by replace_more
                continue
            name = f"t1_{comment.id}"
            author = str(comment.author) if comment.author is not None else ""
            if name in own_names or author.lower() == me:
                own_names.add(name)
                continue
            if not author or comment.body in _GONE_TEXT:
                continue
            replies.append(Reply(name, f"u/{author}", str(comment.body)[:REPLY_TEXT_LIMIT],
                                 dt.datetime.fromtimestamp(float(comment.created_utc), dt.UTC),
                                 self._url(comment, f"/comments/{submission_id}/_/{comment.id}/"),
                                 str(comment.parent_id or "")))
        replies.sort(key=lambda r: (r.at, r.id), reverse=True)
        own_count = sum(1 for name in own_names if name.startswith("t1_"))
        total = max(len(replies), num_comments - own_count)
        # Requests sent: the read, and the access token praw fetched first when it had none or it ran out.
        return Conversation(total, tuple(replies[:max(0, limit)]), max(1, getattr(requestor, "sent", 0) - sent))

    # ------------------------------------------------------------------ pictures

    def _media(self, pictures: tuple[Picture, ...]) -> list[PostMedia]:
        """praw's media for ``pictures``; a gallery caption too long for Reddit is refused before any upload."""
        if self.images == "gallery":
            for number, picture in enumerate(pictures, start=1):
                if len(caption(picture.alt)) > REDDIT_CAPTION:
                    raise self._error(Rejected, f"the alt text of picture {number} has {len(caption(picture.alt))} "
                                                f"characters: a Reddit gallery caption holds at most "
                                                f"{REDDIT_CAPTION} (shorten it, or set ONEYEARAGO_REDDIT_IMAGES="
                                                "inline)")
        return [PostMedia(p.image.data, name=media_name(i, p.image.mime)) for i, p in enumerate(pictures, start=1)]

    def _content(self, selftext: str, pictures: tuple[Picture, ...], media: list[PostMedia]) -> dict[str, Any]:
        """The keywords of ``submit`` that carry the text and the pictures."""
        if not pictures:
            return {"selftext": selftext}
        if self.images == "gallery":
            return {"selftext": selftext, "gallery": [{"media": m, "caption": caption(p.alt)}
                                                      for p, m in zip(pictures, media, strict=True)]}
        return {"selftext": inline_selftext(selftext, len(pictures)),
                "inline_media": {f"img{i}": InlineImage(caption=inline_caption(p.alt), media=m)
                                 for i, (p, m) in enumerate(zip(pictures, media, strict=True), start=1)}}

    # ------------------------------------------------------------------ plumbing

    def _write(self, send: Callable[[], Any]) -> Any:
        """Send one write with prawcore's retries off; again once only after a 401 on the write itself."""
        for attempt in (1, 2):
            try:
                with _send_once():
                    return send()
            except prawcore.InvalidToken as exc:
                if attempt == 2 or _is_token_request(exc):
                    raise
                logger.info("reddit: the access token was refused before the write was read; sending it with a "
                            "fresh token")
        raise AssertionError("unreachable")

    def _check_pacing(self) -> None:
        """Raise RateLimited instead of letting prawcore sleep until the request quota comes back."""
        limiter = self.reddit._core.rate_limiter if self.reddit._core is not None else None
        when = getattr(limiter, "next_request_timestamp_ns", None)
        if when is None:
            return
        wait = (when - time.monotonic_ns()) / 1e9
        if wait > PACING_LIMIT:
            raise self._error(RateLimited, f"the request quota is spent (x-ratelimit-remaining 0); it comes back "
                                           f"in {math.ceil(wait)}s",
                              retry_at=self.clock() + dt.timedelta(seconds=math.ceil(wait)))

    def _url(self, thing: Any, fallback: str) -> str:
        permalink = vars(thing).get("permalink")
        path = permalink if isinstance(permalink, str) and permalink.startswith("/") else fallback
        return f"{self.site}{path}"

    def _comment_ref(self, comment: Any, submission_id: str) -> PostRef:
        data = vars(comment)
        link = str(data.get("link_id") or "").removeprefix("t3_") or submission_id
        url = self._url(comment, f"/comments/{link}/_/{comment.id}/")
        return PostRef(self.platform, comment.id, url, {"name": f"t1_{comment.id}", "submission": link})

    def _field(self, post: Outgoing, name: str) -> str:
        value = post.payload.get(name)
        if not isinstance(value, str):
            raise self._error(Rejected, f"the {post.kind} payload has no {name!r} (not a Reddit payload?)")
        return value

    def _error(self, cls: type[AdapterError], message: str, **extra: Any) -> AdapterError:
        """An error with every secret masked out of its message."""
        return cls(self.platform, self._mask(message), **extra)

    @contextlib.contextmanager
    def _mapped(self, context: str) -> Iterator[None]:
        """Translate praw, prawcore and requests errors into the project's errors (the one place).

        ``context`` is ``submit`` or ``reply`` (writes: a request that may have reached Reddit is
        OutcomeUnknown), ``read``, or ``subreddit`` (checking the subreddit for ``whoami``).
        """
        try:
            self._check_pacing()
            yield
        except AdapterError:
            raise
        except Exception as exc:
            error = self._translate(exc, context)
            logger.debug("reddit: %s failed: %s (%s)", context, error.reason, type(exc).__name__)
            raise error from exc

    def _translate(self, exc: Exception, context: str) -> AdapterError:
        write = context in ("submit", "reply") and not _before_the_post(exc)
        sub = f"r/{self.subreddit_name}"
        status = exc.response.status_code if isinstance(exc, prawcore.ResponseException) else None
        if isinstance(exc, RedditAPIException):
            for item in exc.items:
                if item.error_type == "RATELIMIT":
                    delay = ratelimit_delay(item.message) or RATELIMIT_FALLBACK
                    return self._error(RateLimited, f"Reddit asks to wait: {item.message}",
                                       retry_at=self.clock() + delay)
            reasons = "; ".join(f"{i.error_type}: {i.message}" + (f" (field {i.field})" if i.field else "")
                                for i in exc.items)
            return self._error(Rejected, reasons or "Reddit refused the request")
        if status == 429:
            delay = retry_after(exc.response, self.clock())  # type: ignore[attr-defined]
            return self._error(RateLimited, f"too many requests (HTTP 429); wait {_seconds(delay)}",
                               retry_at=self.clock() + delay)
        if isinstance(exc, prawcore.OAuthException):
            return self._error(AuthFailed, f"Reddit refused the login ({exc.error}): check the username and "
                                           "password, and that the account is a developer of the script app")
        if isinstance(exc, (prawcore.InvalidToken, prawcore.InsufficientScope)) or status == 401:
            what = "client id or secret" if _is_token_request(exc) else "access token"
            return self._error(AuthFailed, f"Reddit refused the app's {what} (HTTP {status})")
        if isinstance(exc, ReadOnlyException):
            return self._error(AuthFailed, "praw is in read-only mode: the username and password are needed")
        if isinstance(exc, TooLargeMediaException):
            return self._error(Rejected, f"a picture is too large for Reddit ({exc.actual:,} bytes; at most "
                                         f"{exc.maximum_size:,}): nothing was posted")
        if isinstance(exc, MediaPostFailed):
            return self._error(Rejected, "Reddit could not process a picture of the post (corrupt image?)")
        if isinstance(exc, WebSocketException):
            if write:
                return self._error(OutcomeUnknown, f"the media post's outcome is unknown ({exc}): it may have "
                                                   "been posted")
            return self._error(Transient, f"Reddit's WebSocket failed ({exc})")
        if isinstance(exc, ClientException) and context in ("submit", "reply"):
            return self._error(Rejected, f"praw refused the post before sending it: {exc}")
        if isinstance(exc, prawcore.Forbidden):
            return self._error(Rejected, {
                "submit": f"not allowed to post in {sub} (HTTP 403: private or restricted, or the account is "
                          "banned)",
                "reply": "not allowed to reply there (HTTP 403: the thread is locked or the account is banned)",
                "subreddit": f"u/{self.username} cannot see {sub} (HTTP 403: private or quarantined)",
            }.get(context, "forbidden (HTTP 403)"))
        if context == "subreddit" and isinstance(exc, (prawcore.NotFound, prawcore.Redirect)):
            return self._error(Rejected, f"{sub} does not exist or is banned")
        if status == 408:  # Reddit gave up waiting for the request: it was not read
            return self._error(Transient, "Reddit timed out waiting for the request (HTTP 408)")
        if isinstance(exc, prawcore.ServerError) or (status is not None and status >= 500):
            if write:
                return self._error(OutcomeUnknown, f"Reddit answered HTTP {status} to the {context}: it may have "
                                                   "been posted")
            return self._error(Transient, f"Reddit answered HTTP {status}")
        if isinstance(exc, prawcore.BadJSON):
            if write:
                return self._error(OutcomeUnknown, f"unreadable answer to the {context} (HTTP {status})")
            return self._error(Transient, f"unreadable answer from Reddit (HTTP {status})")
        if status is not None:
            return self._error(Rejected, f"Reddit refused the request (HTTP {status} "
                                         f"{exc.response.reason})")  # type: ignore[attr-defined]
        if isinstance(exc, prawcore.RequestException):
            cause = exc.original_exception
            kind = type(cause).__name__
            if _never_sent(cause):
                return self._error(Transient, f"could not connect to Reddit ({kind})")
            if write:
                return self._error(OutcomeUnknown, f"no answer to the {context} ({kind}): it may have been posted")
            return self._error(Transient, f"no answer from Reddit ({kind})")
        if write:
            return self._error(OutcomeUnknown, f"unexpected {type(exc).__name__} during the {context}")
        if isinstance(exc, (PRAWException, prawcore.PrawcoreException, requests.RequestException)):
            return self._error(Transient, f"unexpected answer from Reddit ({type(exc).__name__})")
        return self._error(Transient, f"unexpected {type(exc).__name__} while talking to Reddit")


def _seconds(delay: dt.timedelta) -> str:
    return f"{math.ceil(delay.total_seconds())}s"
