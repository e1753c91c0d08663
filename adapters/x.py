"""Provide XAdapter: posts to X through tweepy's API v2 client with OAuth 1.0a user context."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import io
import logging
import re
import ssl
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from adapters.base import Conversation, Outgoing, PostRef, Reply, ThreadState, Uploaded
from posts.clock import utcnow
from posts.errors import (
    AdapterError,
    AuthFailed,
    Duplicate,
    MediaGone,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from posts.masking import Masker
from posts.media import PROFILES, Picture, alt_length
from posts.twitter_text import url_spans

logger = logging.getLogger(__name__)

X_REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
"""The ``reply_settings`` values create-tweet takes (left out: everyone may reply)."""

TWEEPY_HOST = "https://api.twitter.com"
"""Where tweepy.Client always sends its requests (hard-coded in tweepy)."""
TWEEPY_UPLOAD_HOST = "https://upload.twitter.com"
"""Where tweepy.API sends media uploads and alt text (``upload_host``, always over https)."""
MEDIA_LIFETIME = dt.timedelta(seconds=86400)
"""How long X keeps an unposted upload when its answer does not say (``expires_after_secs`` of the
recorded upload, ``tests/data/x/testmediauploadpng.yaml``)."""
MEDIA_MARGIN = dt.timedelta(minutes=15)
"""Taken off every upload's lifetime: the engine reuses an upload only while it is surely still there."""
ALT_LIMIT = PROFILES["x"].alt_limit or 1000
"""The most characters of alt text X takes (``media/metadata/create``)."""
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
"""The file name extension tweepy needs to tell the media type (``media_upload`` guesses from the name)."""
DEFAULT_WAIT = dt.timedelta(minutes=15)
"""How long to wait after a 429 that names no reset time (X's rate-limit window)."""
MIN_WAIT = dt.timedelta(minutes=1)
"""The shortest wait after a 429 whose reset time is already past by our clock (clock skew)."""
FIND_PAGES = 5
"""At most this many pages of 100 of the account's own posts are read when looking for a post."""
TWEET_FIELDS_FIND = ["created_at", "entities", "referenced_tweets", "conversation_id"]
TWEET_FIELDS_STATE = ["reply_settings", "author_id"]
TWEET_FIELDS_REPLIES = ["author_id", "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets"]
SEARCH_PAGES = 5
"""At most this many pages of 100 of a conversation are read (recent search: 450 requests per 15 minutes per
app, 300 per user)."""
REPLY_TEXT_LIMIT = 2000
"""The most characters of a reply's text kept (``Reply.text``)."""

_DUPLICATE = ("duplicate",)
_MEDIA_GONE = (
    "media ids are invalid",           # POST /2/tweets: "Your media IDs are invalid." (tweepy/tweepy#2016)
    "media.media_ids",                 # ... its parameter (abraham/twitteroauth#1222)
    "invalid media id",                # v1.1 code 324: "Invalid media id 889241623330263044"
    "validation of media ids failed",  # v1.1 code 324, older wording
)
"""How X says a media id it was given is unknown or expired (no recording exists: quoted from issues)."""
_NO_PERMISSION = (
    "permission",              # "...not configured with the appropriate oauth1 app permissions..."
    "oauth1",                  # problem type .../2/problems/oauth1-permissions
    "client-not-enrolled",     # the app is not attached to a project
    "attached to a project",
    "unsupported-authentication",
    "access to a subset",      # code 453: the access level does not include this endpoint
    "suspended",               # the posting account is suspended
)


class _TimeoutSession(requests.Session):
    """A session that gives every request a timeout (tweepy passes none) and keeps the last headers."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.last_headers: Mapping[str, str] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if not args and kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = response.headers
        return response


class _Rebase(HTTPAdapter):
    """Sends what tweepy addresses to its fixed host to the configured base URL instead."""

    def __init__(self, base: str, host: str = TWEEPY_HOST):
        super().__init__()
        self.base = base.rstrip("/")
        self.host = host

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(self.host + "/"):
            request.url = self.base + url[len(self.host):]
        return super().send(request, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class XConfig:
    """What the X adapter is built from: the app's and the posting account's OAuth 1.0a credentials,
    where the API is and how long to wait for it. Credentials never show in ``repr``."""

    consumer_key: str = dataclasses.field(repr=False)
    consumer_secret: str = dataclasses.field(repr=False)
    access_token: str = dataclasses.field(repr=False)
    access_token_secret: str = dataclasses.field(repr=False)
    api_url: str = TWEEPY_HOST
    upload_url: str | None = None
    """Where media uploads go; ``None``: X's upload host, or ``api_url`` when that is not X's (a test
    server that serves both)."""
    timeout: dt.timedelta = dt.timedelta(seconds=30)
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    """Further secrets to mask out of every message (the credentials are masked anyway)."""


class XAdapter:
    """Publishes, threads and finds posts on X (tweepy.Client, API v2, OAuth 1.0a user context)."""

    platform: str = "x"

    def __init__(self, config: XConfig, *, clock: Callable[[], dt.datetime] = utcnow):
        self.config = config
        self.clock = clock
        self._mask = Masker([config.consumer_key, config.consumer_secret, config.access_token,
                             config.access_token_secret, *config.secrets])
        self.session = _TimeoutSession(config.timeout.total_seconds())
        base = (config.api_url or TWEEPY_HOST).rstrip("/")
        if base != TWEEPY_HOST:
            self.session.mount(TWEEPY_HOST + "/", _Rebase(base))
        self.client = tweepy.Client(
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            access_token=config.access_token,
            access_token_secret=config.access_token_secret,
            wait_on_rate_limit=False,  # it would re-send the same POST after sleeping
        )
        self.client.session = self.session
        upload = (config.upload_url or (TWEEPY_UPLOAD_HOST if base == TWEEPY_HOST else base)).rstrip("/")
        self.upload_session = _TimeoutSession(config.timeout.total_seconds())
        if upload != TWEEPY_UPLOAD_HOST:
            self.upload_session.mount(TWEEPY_UPLOAD_HOST + "/", _Rebase(upload, TWEEPY_UPLOAD_HOST))
        self.api = tweepy.API(
            tweepy.OAuth1UserHandler(config.consumer_key, config.consumer_secret, config.access_token,
                                     config.access_token_secret),
            timeout=config.timeout.total_seconds(),
            upload_host=urlsplit(TWEEPY_UPLOAD_HOST).netloc,
            wait_on_rate_limit=False,
        )
        """tweepy's v1.1 API, for the media upload and alt text only (tweepy's Client has no media calls)."""
        self.api.session = self.upload_session
        self._user: tuple[str, str] | None = None
        """(id, username) of the posting account, from ``get_me`` (fetched once, when first needed)."""

    # -- the contract -----------------------------------------------------------------

    def new_key(self) -> None:
        """X takes no idempotency key: a post of unknown outcome is looked for by its text (:meth:`find`)."""
        return None

    def publish(self, post: Outgoing) -> PostRef:
        text = self._text(post)
        media_ids = self._media_ids(post)
        with self._errors("post", write=True):
            response = self.client.create_tweet(text=text, media_ids=media_ids, user_auth=True,
                                                reply_settings=self._reply_settings(post))
        return self._created(response)

    def reply(self, post: Outgoing) -> PostRef:
        parent, _ = post.thread()
        text = self._text(post)
        media_ids = self._media_ids(post)
        with self._errors("reply", write=True):
            response = self.client.create_tweet(text=text, in_reply_to_tweet_id=parent.id, media_ids=media_ids,
                                                user_auth=True)
        return self._created(response)

    def upload(self, picture: Picture) -> Uploaded:
        """Upload one picture (v1.1 ``media/upload``), then set its alt text (``media/metadata/create``).

        X keeps an upload for ``expires_after_secs`` (a day) if no post uses it; ``expires_at`` is that,
        less :data:`MEDIA_MARGIN`.
        """
        image = picture.image
        extension = EXTENSIONS.get(image.mime)
        if extension is None:
            raise Rejected(self.platform, f"X takes PNG, JPEG, GIF or WebP pictures, not {image.mime!r}")
        if alt_length(picture.alt) > ALT_LIMIT:
            raise Rejected(self.platform, f"the alt text has {alt_length(picture.alt)} characters; X takes at "
                           f"most {ALT_LIMIT}")
        with self._errors("upload the picture", write=True, upload=True):
            media = self.api.media_upload(f"{image.sha256[:16]}{extension}", file=io.BytesIO(image.data))
        media_id = str(getattr(media, "media_id_string", "") or getattr(media, "media_id", "") or "")
        if not media_id.isdigit():
            raise OutcomeUnknown(self.platform, "X accepted the picture but its answer holds no media id")
        if picture.alt:
            with self._errors("set the alt text", write=True, upload=True):
                self.api.create_media_metadata(media_id, picture.alt)
        lifetime = getattr(media, "expires_after_secs", None)
        seconds = lifetime if isinstance(lifetime, int) and lifetime > 0 else MEDIA_LIFETIME.total_seconds()
        expires_at = self.clock() + dt.timedelta(seconds=seconds) - MEDIA_MARGIN
        logger.info("X: uploaded picture %s as media %s", image.sha256[:12], media_id)
        return Uploaded(image.sha256, {"media_id": media_id}, expires_at)

    def thread_state(self, ref: PostRef) -> ThreadState:
        with self._errors("check the post", write=False):
            try:
                response = self.client.get_tweet(ref.id, tweet_fields=TWEET_FIELDS_STATE, user_auth=True)
            except tweepy.NotFound:
                return ThreadState.GONE
        if response.data is not None:
            # The author can always reply to their own post, whatever its reply settings.
            return ThreadState.OPEN
        if response.errors:
            logger.info("X: post %s is gone: %s", ref.id, self._scrub(_error_text(response.errors)))
            return ThreadState.GONE
        raise Transient(self.platform, f"check the post {ref.id}: X answered with neither the post nor an error")

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        text = self._text(post)
        want = _Fingerprint.of_ours(text)
        # A reply must answer its parent, a root must answer nothing; a follow-up given without its
        # parent is matched on its content alone.
        parent_id = post.parent.id if post.parent is not None else None
        check_parent = post.parent is not None or post.kind == "root"
        matches: list[str] = []
        with self._errors("look for the post", write=False):
            user_id, _ = self._me()
            token: str | None = None
            for _ in range(FIND_PAGES):
                params: dict[str, Any] = {"max_results": 100, "tweet_fields": TWEET_FIELDS_FIND}
                if since is not None:
                    params["start_time"] = since
                if token:
                    params["pagination_token"] = token
                response = self.client.get_users_tweets(user_id, user_auth=True, **params)
                for tweet in response.data or []:
                    raw = tweet.data if isinstance(tweet, tweepy.Tweet) else dict(tweet)
                    if (not check_parent or _replied_to(raw) == parent_id) and _Fingerprint.of_theirs(raw) == want:
                        matches.append(str(raw["id"]))
                token = (response.meta or {}).get("next_token")
                if not token:
                    break
        if not matches:
            if token:  # more posts than we read: absence is not certain
                raise Transient(self.platform, f"look for the post: not among the last {FIND_PAGES * 100} posts, "
                                "and there are more")
            return None
        # Newest first: the last match is the earliest post, the one that landed first.
        return self._ref(matches[-1])

    def whoami(self) -> str:
        with self._errors("check the credentials", write=False):
            self._user = None
            user_id, username = self._me()
        level = self.session.last_headers.get("x-access-level", "")
        if level and "write" not in level:
            raise AuthFailed(self.platform, f"@{username} can only read (x-access-level: {level}); give the app "
                             "Read and Write permission, then regenerate the access token and secret")
        return f"@{username} (id {user_id})"

    # -- the conversation under a thread ---------------------------------------------------

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The replies by others in the conversation ``root`` started: recent search ``conversation_id:<id>``.

        Recent search covers the last 7 days only: an older reply is neither listed nor counted, so a
        thread's ``total`` stops growing a week after the replies stop. ``total`` counts the posts by
        others that the search returned (at most :data:`SEARCH_PAGES` pages of 100), the bot's own (``own``
        and anything else by the account) left out. The search does not say which replies are hidden:
        ``Reply.hidden`` is always ``False`` here. With ``max_requests``, the pages stop there (one page at
        least) and a read with pages left is ``partial``.
        """
        skip = {root.id, *(ref.id for ref in own)}
        requests_made = 0 if self._user is not None else 1
        found: list[Reply] = []
        try:
            with self._errors("read the replies", write=False):
                user_id, _ = self._me()
                pages = SEARCH_PAGES if max_requests is None else max(1, min(SEARCH_PAGES, max_requests - requests_made))
                token: str | None = None
                for _ in range(pages):
                    params: dict[str, Any] = {"max_results": 100, "tweet_fields": TWEET_FIELDS_REPLIES,
                                              "expansions": ["author_id"]}
                    if token:
                        params["next_token"] = token
                    requests_made += 1  # counted before it is sent: a page that fails was sent too
                    response = self.client.search_recent_tweets(f"conversation_id:{root.id}", user_auth=True, **params)
                    users = {str(u.id): str(u.username) for u in (response.includes or {}).get("users", [])}
                    for tweet in response.data or []:
                        raw = tweet.data if isinstance(tweet, tweepy.Tweet) else dict(tweet)
                        if str(raw.get("id")) in skip or str(raw.get("author_id")) == user_id:
                            continue
                        reply = self._reply(raw, users)
                        if reply is not None:
                            found.append(reply)
                    token = (response.meta or {}).get("next_token")
                    if not token:
                        break
        except AdapterError as exc:
            exc.requests = max(1, requests_made)  # the pages sent before it failed count against the budget
            raise
        if token and pages == SEARCH_PAGES:
            logger.info("X: conversation %s has more than %d posts; the rest are not counted", root.id,
                        SEARCH_PAGES * 100)
        found.sort(key=lambda r: (r.at, int(r.id) if r.id.isdigit() else 0), reverse=True)
        return Conversation(len(found), tuple(found[:max(0, limit)]), requests_made, partial=bool(token))

    def hide_reply(self, root: PostRef, reply_id: str, *, hidden: bool = True) -> None:
        """Hide (``PUT /2/tweets/:id/hidden``) or show again a reply in a conversation the account started.

        Idempotent on X's side, so an unclear answer is ``Transient`` (doing it again is harmless).
        """
        action = "hide the reply" if hidden else "show the reply again"
        if not reply_id.isdigit():
            raise Rejected(self.platform, f"{action}: {reply_id!r} is not an X post id")
        call = self.client.hide_reply if hidden else self.client.unhide_reply
        with self._errors(action, write=False):
            try:
                response = call(reply_id, user_auth=True)
            except (tweepy.BadRequest, tweepy.NotFound) as exc:
                raise Rejected(self.platform, self._scrub(f"{action} {reply_id}: {_describe(exc)}")) from exc
            except tweepy.Forbidden as exc:
                if any(word in _problem(exc) for word in _NO_PERMISSION):
                    raise  # the app's access: AuthFailed, below
                raise Rejected(self.platform, self._scrub(f"{action} {reply_id}: {_describe(exc)} (only replies "
                                                          "in the account's own conversations can be hidden)")) \
                    from exc
        data = getattr(response, "data", None)
        if not isinstance(data, Mapping) or data.get("hidden") is not hidden:
            raise Transient(self.platform, f"{action} {reply_id}: X did not confirm it (answered {data!r})")
        logger.info("X: %s reply %s under %s", "hid" if hidden else "showed again", reply_id, root.id)

    def _reply(self, tweet: Mapping[str, Any], users: Mapping[str, str]) -> Reply | None:
        created = tweet.get("created_at")
        if isinstance(created, str):
            with contextlib.suppress(ValueError):
                created = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        if not isinstance(created, dt.datetime):
            logger.warning("X: reply %s has no creation time; left out", tweet.get("id"))
            return None
        tweet_id = str(tweet["id"])
        username = users.get(str(tweet.get("author_id")))
        url = f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/web/status/{tweet_id}"
        return Reply(tweet_id, f"@{username}" if username else f"id {tweet.get('author_id')}",
                     html.unescape(str(tweet.get("text") or ""))[:REPLY_TEXT_LIMIT],
                     (created if created.tzinfo else created.replace(tzinfo=dt.UTC)).astimezone(dt.UTC), url,
                     _replied_to(tweet) or "")

    # -- helpers ----------------------------------------------------------------------

    def _text(self, post: Outgoing) -> str:
        text = post.payload.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Rejected(self.platform, "the payload has no text to post")
        return text

    def _reply_settings(self, post: Outgoing) -> str | None:
        """Who may reply to a root, as rendered (``reply_settings``; ``None``: left out, everyone)."""
        value = post.payload.get("reply_settings")
        if value is None:
            return None
        if value not in X_REPLY_SETTINGS:
            raise Rejected(self.platform, f"reply_settings {value!r} is not one X takes "
                                          f"({', '.join(X_REPLY_SETTINGS)})")
        return str(value)

    def _media_ids(self, post: Outgoing) -> list[str] | None:
        """The media ids to attach, in the pictures' order; ``None`` for a post without pictures."""
        if post.pictures and len(post.media) != len(post.pictures):
            raise ValueError(f"{len(post.pictures)} picture(s) but {len(post.media)} upload(s): the engine "
                             "uploads a post's pictures before it sends the post")
        ids = [str(uploaded.ref.get("media_id") or "") for uploaded in post.media]
        if not all(ids):
            raise ValueError("an upload without a media id")
        return ids or None

    def _created(self, response: Any) -> PostRef:
        data = getattr(response, "data", None)
        tweet_id = data.get("id") if isinstance(data, Mapping) else None
        if not tweet_id:
            raise OutcomeUnknown(self.platform, "X accepted the post but its answer holds no post id")
        logger.info("X: posted %s", tweet_id)
        return self._ref(str(tweet_id))

    def _ref(self, tweet_id: str) -> PostRef:
        username = self._username()
        url = (f"https://x.com/{username}/status/{tweet_id}" if username
               else f"https://x.com/i/web/status/{tweet_id}")
        return PostRef(self.platform, tweet_id, url)

    def _username(self) -> str | None:
        """The account's username for post URLs; never fails (``None`` when it cannot be had now)."""
        if self._user is None:
            try:
                with self._errors("look up the account", write=False):
                    self._me()
            except AdapterError as exc:
                logger.warning("X: no username for the post URL (%s)", exc.reason)
                return None
        return self._user[1] if self._user else None

    def _me(self) -> tuple[str, str]:
        """(id, username) of the posting account; call inside ``_errors``."""
        if self._user is None:
            data = self.client.get_me(user_auth=True).data
            if data is None:
                raise Transient(self.platform, "X did not say who the account is")
            self._user = (str(data.id), str(data.username))
        return self._user

    def _scrub(self, text: str) -> str:
        return self._mask(text)

    @contextlib.contextmanager
    def _errors(self, action: str, *, write: bool, upload: bool = False) -> Iterator[None]:
        """Translate tweepy and requests errors into the project's errors: the one place that does.

        ``write`` is for calls that create a post: there, anything that may have reached X
        (a 5xx, a read timeout, a connection lost after sending) is ``OutcomeUnknown``.
        ``upload`` (with ``write``) is for the media upload and its alt text: a 5xx there is
        ``Transient`` (X made nothing usable), a 403 ``AuthFailed`` (the access tier has no
        v1.1 media upload), and only a request lost after sending is ``OutcomeUnknown``.
        """
        try:
            yield
        except AdapterError:
            raise
        except tweepy.TooManyRequests as exc:
            headers = exc.response.headers
            retry_at, which = self._retry_at(headers)
            raise RateLimited(self.platform, self._scrub(f"{action}: {_describe(exc)} ({which})"),
                              retry_at) from exc
        except tweepy.Unauthorized as exc:
            raise AuthFailed(self.platform, self._scrub(f"{action}: {_describe(exc)} (check the X keys and "
                                                        "tokens)")) from exc
        except tweepy.Forbidden as exc:
            problem = _problem(exc)
            message = self._scrub(f"{action}: {_describe(exc)}")
            if upload:
                raise AuthFailed(self.platform, message + " (the app's access may not include media uploads)") \
                    from exc
            if any(word in problem for word in _DUPLICATE):
                raise Duplicate(self.platform, message) from exc
            if any(word in problem for word in _NO_PERMISSION):
                raise AuthFailed(self.platform, message + " (the app needs Read and Write permission; "
                                 "regenerate the access token after changing it)") from exc
            raise (Rejected if write else Transient)(self.platform, message) from exc
        except tweepy.TwitterServerError as exc:
            message = self._scrub(f"{action}: {_describe(exc)}")
            if write and not upload:
                raise OutcomeUnknown(self.platform, message + " (the post may have been created)") from exc
            raise Transient(self.platform, message) from exc
        except tweepy.HTTPException as exc:  # 400, 404 and other 4xx
            message = self._scrub(f"{action}: {_describe(exc)}")
            if write and not upload and any(words in _problem(exc) for words in _MEDIA_GONE):
                raise MediaGone(self.platform, message + " (X no longer has a picture uploaded for the post; "
                                "it is uploaded again)") from exc
            raise (Rejected if write else Transient)(self.platform, message) from exc
        except requests.RequestException as exc:
            raise self._network_error(action, exc, write=write, upload=upload) from exc
        except tweepy.TweepyException as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, requests.RequestException):  # tweepy.API wraps what requests raised
                raise self._network_error(action, cause, write=write, upload=upload) from exc
            message = self._scrub(f"{action}: {type(exc).__name__}: {exc}")
            raise (OutcomeUnknown if write else Transient)(self.platform, message) from exc

    def _network_error(self, action: str, exc: requests.RequestException, *, write: bool,
                       upload: bool) -> AdapterError:
        message = self._scrub(f"{action}: {_network(exc)}")
        if write and not _never_sent(exc):
            made = "the picture may have been uploaded" if upload else "the post may have been created"
            return OutcomeUnknown(self.platform, f"{message} ({made})")
        return Transient(self.platform, message)

    def _retry_at(self, headers: Mapping[str, str]) -> tuple[dt.datetime, str]:
        """When X allows the next request: the latest reset of every exhausted limit."""
        now = self.clock()
        resets: list[tuple[dt.datetime, str]] = []
        window = _epoch(headers.get("x-rate-limit-reset"))
        if window is not None:
            resets.append((window, "15-minute limit"))
        for scope in ("user", "app"):
            if (headers.get(f"x-{scope}-limit-24hour-remaining") or "").strip() == "0":
                day = _epoch(headers.get(f"x-{scope}-limit-24hour-reset"))
                if day is not None:
                    resets.append((day, f"24-hour {scope} limit"))
        if not resets:
            return now + DEFAULT_WAIT, "no reset time given"
        latest, which = max(resets, key=lambda item: item[0])
        return max(latest, now + MIN_WAIT), which


# ---------------------------------------------------------------------------- errors


def _body(exc: tweepy.HTTPException) -> dict[str, Any]:
    try:
        body = exc.response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(exc: tweepy.HTTPException) -> str:
    """Everything X said about a refusal, lower-cased, for classifying it."""
    body = _body(exc)
    parts = [str(m) for m in exc.api_messages]
    parts += [str(body.get(k, "")) for k in ("type", "title", "detail", "reason")]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts += [str(error.get(k, "")) for k in ("type", "title", "detail", "message")]
            if isinstance(error.get("parameters"), dict):  # the names of the parameters refused
                parts += [str(name) for name in error["parameters"]]
    return " ".join(parts).lower()


def _describe(exc: tweepy.HTTPException) -> str:
    """``403 Forbidden: <X's message>``."""
    response = exc.response
    status = getattr(response, "status_code", "?")
    reason = getattr(response, "reason", "") or ""
    messages = [str(m) for m in exc.api_messages if m]
    head = f"{status} {reason}".strip()
    return f"{head}: {'; '.join(messages)}" if messages else head


def _error_text(errors: list[Any]) -> str:
    texts = [str(e.get("detail") or e.get("title") or e) if isinstance(e, dict) else str(e) for e in errors]
    return "; ".join(texts)


def _network(exc: requests.RequestException) -> str:
    """A short description of a network failure (no URL parameters, no headers)."""
    request = getattr(exc, "request", None)
    host = urlsplit(request.url).netloc if request is not None and request.url else "X"
    kinds: dict[type[Exception], str] = {
        requests.ConnectTimeout: "timed out connecting to",
        requests.ReadTimeout: "no answer in time from",
    }
    kind = kinds.get(type(exc), "connection failed to" if isinstance(exc, requests.ConnectionError) else "bad answer from")
    detail = _root_cause(exc)
    return f"{kind} {host} ({type(exc).__name__}{': ' + detail if detail else ''})"


def _root_cause(exc: BaseException) -> str:
    cause: BaseException = exc
    while True:
        inner = getattr(cause, "reason", None) if isinstance(cause, MaxRetryError) else None
        if inner is None and cause.args and isinstance(cause.args[-1], BaseException):
            inner = cause.args[-1]
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    return type(cause).__name__ if cause is not exc else ""


_UNSENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
               requests.exceptions.InvalidHeader, requests.exceptions.URLRequired)
"""Raised while preparing a request, before any connection is made."""


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request certainly never reached X (the connection was never made)."""
    if isinstance(exc, (requests.ConnectTimeout, *_UNSENDABLE)):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
        # NewConnectionError (refused, no route) and NameResolutionError are ConnectTimeoutErrors.
        if isinstance(reason, ConnectTimeoutError):
            return True
        if isinstance(exc, requests.exceptions.SSLError):  # a failed handshake: nothing was sent
            return _chain_has(reason, ssl.SSLCertVerificationError)
    return False


def _chain_has(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind) or any(isinstance(a, kind) for a in exc.args):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _epoch(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(float(value or "")), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


# ---------------------------------------------------------------------------- matching


_SPACE = re.compile(r"\s+")


def _canonical(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _without_urls(text: str) -> tuple[str, list[str]]:
    spans = url_spans(text)
    urls = [text[start:end] for start, end in spans]
    for start, end in reversed(spans):
        text = text[:start] + " " + text[end:]
    return text, urls


def _norm_url(url: str) -> str:
    """A URL as compared: no scheme, lower-case host, percent-decoded, no trailing slash."""
    url = unquote(url.strip())
    url = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url)
    host, slash, rest = url.partition("/")
    return (host.lower() + slash + rest).rstrip("/")


_MEDIA_LINK = re.compile(r"(?i)^https?://(?:www\.)?(?:x|twitter)\.com/[^/]+/status/\d+/(?:photo|video)/\d+$")


def _is_media_link(entity: Mapping[str, Any]) -> bool:
    """Whether a url entity is the link X adds to a post's own pictures (``.../status/<id>/photo/1``)."""
    return bool(entity.get("media_key")) or bool(_MEDIA_LINK.match(str(entity.get("expanded_url") or "")))


def _replied_to(tweet: Mapping[str, Any]) -> str | None:
    for ref in tweet.get("referenced_tweets") or []:
        if isinstance(ref, Mapping) and ref.get("type") == "replied_to":
            return str(ref.get("id"))
    return None


class _Fingerprint(NamedTuple):
    """What identifies a post's text on X: the text without its links, and where the links lead.

    X rewrites every link to t.co and may HTML-escape ``&<>``, so the raw text cannot be compared.
    """

    text: str
    urls: frozenset[str]

    @classmethod
    def of_ours(cls, text: str) -> _Fingerprint:
        bare, urls = _without_urls(text)
        return cls(_canonical(bare), frozenset(_norm_url(u) for u in urls))

    @classmethod
    def of_theirs(cls, tweet: Mapping[str, Any]) -> _Fingerprint:
        text = html.unescape(str(tweet.get("text") or ""))
        entity_urls = [u for u in ((tweet.get("entities") or {}).get("urls") or []) if isinstance(u, Mapping)]
        for entity in entity_urls:
            if entity.get("url"):
                text = text.replace(str(entity["url"]), " ")
        bare, _ = _without_urls(text)
        # The link X appends for a post's pictures is not one of ours.
        expanded = frozenset(_norm_url(str(u.get("expanded_url") or u.get("url") or "")) for u in entity_urls
                             if not _is_media_link(u))
        return cls(_canonical(bare), expanded)
