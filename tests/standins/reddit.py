"""Provide RedditStandin: a stateful stand-in of Reddit's OAuth API, with fault injection.

It speaks the shapes of the recorded PRAW cassettes (``tests/data/reddit/``): the password-grant
token endpoint, ``/api/submit``, ``/api/comment``, ``/comments/<id>``, ``/api/info``,
``/api/v1/me``, the user's own listings and ``/r/<sub>/about``, with ``x-ratelimit-*`` headers.
Two front ends: :meth:`RedditStandin.install` (the ``responses`` library) and
:meth:`RedditStandin.serve` (a threaded HTTP server on 127.0.0.1). Faults are queued per route:

- ``fail_next``: the next requests answer a given status, body and headers (optionally after
  applying the write, as a 5xx after the post landed);
- ``rate_limit_next``: Reddit's RATELIMIT inside an HTTP 200; ``too_many_requests_next``: a 429;
- ``delay_next``: a slow answer (the write is applied; with ``responses`` a delay at least the
  client's timeout becomes a read timeout at once);
- ``drop_next``: accept then drop: the write is applied and the connection closed without answer.

Routes: ``access_token``, ``submit``, ``comment``, ``submission``, ``info``, ``me``,
``submitted``, ``user_comments``, ``about``, and for pictures ``media_asset`` (the upload lease),
``s3_upload`` (the multipart upload to the URL the lease names: the stand-in itself on 127.0.0.1,
under ``/s3/``), ``convert_rte`` (Markdown to rich text) and ``submit_gallery``, in the shapes of the
recorded ``TestSubreddit.test_submit__selftext_inline_media`` and ``test_submit_gallery*`` cassettes.

Simplifications: ``convert_rte`` turns each paragraph block into one plain text run (Reddit parses
the Markdown inside it) and each ``![img](<id> "caption")`` block into an image; the self text of an
inline post reads back as Reddit's does, a ``[caption](https://preview.redd.it/<id>.<ext>?...)`` line
per picture (a picture without a caption: the bare link, not recorded).
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import hashlib
import html
import http.client
import http.server
import json
import math
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

WRITES = ("submit", "comment", "submit_gallery")
S3_MAX_BYTES = 20 * 1024 * 1024
"""What S3 takes per upload (``MaxSizeAllowed`` in praw's ``test_submit_image__large``)."""
_S3_BUCKET = "reddit-uploaded-media"
_INLINE = re.compile(r'^!\[(img|gif|video)\]\((\S+) "((?:[^"\\]|\\.)*)"\)$')
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_JSON = "application/json; charset=UTF-8"
_INVALID_TOKEN = {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'}


class DropConnection(Exception):
    """Raised by :meth:`RedditStandin.handle`: close the connection without an answer."""


class TimedOut(Exception):
    """Raised by :meth:`RedditStandin.handle`: the answer comes after the client's timeout."""


def base36(number: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_B36[rem])
    return "".join(reversed(digits)) or "0"


@dataclasses.dataclass
class Fault:
    kind: str
    """status, delay or drop"""
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    apply: bool = False
    seconds: float = 0.0


@dataclasses.dataclass
class Recorded:
    """One request as the stand-in saw it."""

    method: str
    route: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    at: float
    timeout: float | None = None
    """The client's read timeout (known with the ``responses`` front end only)."""
    json: Any = None
    """A JSON body (``submit_gallery``)."""
    files: dict[str, tuple[str, bytes]] = dataclasses.field(default_factory=dict)
    """The files of a multipart body, by field name: ``(filename, bytes)`` (``s3_upload``)."""


@dataclasses.dataclass
class Subreddit:
    name: str
    id: str
    allow_self: bool = True
    flair_required: bool = False
    private: bool = False
    quarantined: bool = False
    banned: set[str] = dataclasses.field(default_factory=set)


class RedditStandin:
    """Reddit's API in memory: accounts, a subreddit, submissions and comments."""

    def __init__(
        self,
        *,
        client_id: str = "standin-client-id",
        client_secret: str = "standin-client-secret",
        username: str = "oneyearago_bot",
        password: str = "standin-password",
        subreddit: str = "oneyearago_test",
        quota: int = 100_000,
        window: int = 600,
        action_throttle: float = 0.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client_id, self.client_secret = client_id, client_secret
        self.users: dict[str, str] = {username: password}
        self.username = username
        self.subreddits: dict[str, Subreddit] = {}
        self.add_subreddit(subreddit)
        self.quota, self.window = quota, window
        self.action_throttle = action_throttle
        """Seconds a user must wait between two writes (answered with RATELIMIT in a 200)."""
        self.clock, self.sleep = clock, sleep
        self.submissions: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.requests: list[Recorded] = []
        self.assets: dict[str, dict[str, Any]] = {}
        """Leased uploads by asset id: ``filepath``, ``mimetype``, ``user`` and, once uploaded, ``data``."""
        self.s3_max_bytes = S3_MAX_BYTES
        self.s3_action = "//127.0.0.1/s3"
        """Where the leases send the uploads (``https:`` + this, as praw does): the stand-in itself."""
        self._next_asset = 36**8
        self.early_writes: list[Recorded] = []
        """Writes that arrived while the stand-in had told the client to wait (must stay empty)."""
        self.wait_until = 0.0
        self.told: list[tuple[float, float]] = []
        """(when, until): every time the stand-in told the client to wait."""
        self._faults: dict[str, deque[Fault]] = {}
        self._next_link = 36**5
        self._next_comment = 36**6
        self._used = 0
        self._window_start = 0.0
        self._exhausted_until = 0.0
        self._last_write: dict[str, float] = {}
        self._lock = threading.RLock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file = ""
        """With ``serve(tls=True)``: the PEM certificate a client must trust (``requests``' ``verify``)."""

    # ------------------------------------------------------------------ test hooks

    def add_subreddit(self, name: str, **flags: Any) -> Subreddit:
        sub = Subreddit(name, base36(len(self.subreddits) + 36**4), **flags)
        self.subreddits[name.lower()] = sub
        return sub

    def remove(self, thing_id: str) -> None:
        """A moderator removes the post or comment (``[removed]``; still in its author's listing)."""
        with self._lock:
            thing = self._thing(thing_id)
            thing["removed_by_category"] = "moderator"

    def delete(self, thing_id: str) -> None:
        """Its author deletes the post or comment (``[deleted]``, author gone, out of the listings)."""
        with self._lock:
            thing = self._thing(thing_id)
            thing["removed_by_category"] = "deleted"
            thing["author"] = "[deleted]"

    def add_comment(self, parent: str, body: str, *, author: str = "someone_else",
                    created: float | None = None) -> dict[str, Any]:
        """Someone comments under ``parent`` (a ``t3_``/``t1_`` fullname), as Reddit's site would let them."""
        with self._lock:
            kind, _, parent_id = parent.partition("_")
            target = (self.submissions if kind == "t3" else self.comments)[parent_id]
            link = target if kind == "t3" else self.submissions[target["link_id"][3:]]
            comment_id = base36(self._next_comment)
            self._next_comment += 1
            self.comments[comment_id] = {
                "id": comment_id, "name": f"t1_{comment_id}", "body": body, "_author": author, "author": author,
                "parent_id": parent, "link_id": link["name"], "subreddit": link["subreddit"],
                "subreddit_id": link["subreddit_id"], "created_utc": self.clock() if created is None else created,
                "locked": False, "archived": False, "removed_by_category": None,
                "permalink": f"{link['permalink']}{comment_id}/",
            }
            return self.comments[comment_id]

    def lock(self, thing_id: str) -> None:
        with self._lock:
            self._thing(thing_id)["locked"] = True

    def archive(self, thing_id: str) -> None:
        with self._lock:
            self._thing(thing_id)["archived"] = True

    def revoke_tokens(self) -> None:
        """Every access token stops working (the next API call gets a 401)."""
        with self._lock:
            self.tokens.clear()

    def exhaust(self, seconds: int) -> None:
        """The request quota is used up for ``seconds``: answers say remaining 0, requests get 429."""
        with self._lock:
            self._exhausted_until = self.clock() + seconds

    def fail_next(self, route: str, *, status: int, body: Any = None, headers: Mapping[str, str] | None = None,
                  count: int = 1, apply: bool = False) -> None:
        """The next ``count`` requests to ``route`` answer ``status`` (after applying the write with ``apply``)."""
        self._queue(route, count, Fault("status", status, body, dict(headers or {}), apply))

    def rate_limit_next(self, route: str = "submit",
                        message: str = "You are doing that too much. Try again in 9 minutes.",
                        count: int = 1) -> None:
        """Reddit's action throttle: RATELIMIT inside an HTTP 200, nothing applied."""
        body = {"json": {"errors": [["RATELIMIT", message, "ratelimit"]]}}
        self._queue(route, count, Fault("status", 200, body))

    def too_many_requests_next(self, route: str, *, retry_after: int | None = 4, reset: int | None = None,
                               count: int = 1) -> None:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if reset is not None:
            headers.update({"x-ratelimit-remaining": "0.0", "x-ratelimit-used": str(self.quota),
                            "x-ratelimit-reset": str(reset)})
        self.fail_next(route, status=429, body={"message": "Too Many Requests", "error": 429}, headers=headers,
                       count=count)

    def delay_next(self, route: str, seconds: float, count: int = 1) -> None:
        self._queue(route, count, Fault("delay", seconds=seconds, apply=True))

    def drop_next(self, route: str, *, apply: bool = True, count: int = 1) -> None:
        """Close the connection without answering (after applying the write unless ``apply=False``)."""
        self._queue(route, count, Fault("drop", apply=apply))

    def _queue(self, route: str, count: int, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(route, deque()).extend([fault] * count)

    # ------------------------------------------------------------------ queries for tests

    def requests_to(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if r.route == route]

    def posts_by(self, username: str | None = None) -> list[dict[str, Any]]:
        name = username or self.username
        return [s for s in self.submissions.values() if s["_author"] == name]

    def comments_by(self, username: str | None = None) -> list[dict[str, Any]]:
        name = username or self.username
        return [c for c in self.comments.values() if c["_author"] == name]

    # ------------------------------------------------------------------ the API

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None,
               *, timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: ``(status, headers, body)``.

        Raises:
            DropConnection: the connection must be closed without an answer.
            TimedOut: the answer would come after ``timeout`` (the write, if any, is applied).
        """
        parts = urlsplit(url)
        path = parts.path.rstrip("/").removesuffix(".json") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = body.encode() if isinstance(body, str) else (body or b"")
        lowered = {k.lower(): v for k, v in headers.items()}
        form, data, files = _parse_body(raw, lowered.get("content-type", ""))
        route, args = _route(method.upper(), path)
        with self._lock:
            record = Recorded(method.upper(), route, path, query, form, lowered, self.clock(), timeout, data, files)
            self.requests.append(record)
            if route in WRITES and record.at < self.wait_until:
                self.early_writes.append(record)
            queue = self._faults.get(route)
            fault = queue.popleft() if queue else None
        if fault is not None and fault.kind == "delay":
            if timeout is not None and fault.seconds >= timeout:
                self._respond(record, route, args, lowered)  # the server still does the work
                raise TimedOut(f"{route} answered after {fault.seconds}s")
            self.sleep(fault.seconds)
        if fault is not None and fault.kind == "drop":
            if fault.apply:
                self._respond(record, route, args, lowered)
            raise DropConnection(route)
        if fault is not None and fault.kind == "status":
            if fault.apply:
                self._respond(record, route, args, lowered)
            told = _told_wait(fault)
            if told:
                with self._lock:
                    self._tell_wait(self.clock() + told)
            return self._encode(fault.status, fault.body, {**self._rate_headers(count=True), **fault.headers})
        return self._respond(record, route, args, lowered)

    def _respond(self, record: Recorded, route: str, args: list[str], headers: Mapping[str, str]
                 ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if route == "access_token":
                return self._token(record.form, headers)
            if route == "unknown":
                return self._encode(404, {"message": "Not Found", "error": 404}, self._rate_headers(count=True))
            if route == "s3_upload":
                return self._s3_upload(record, args)
            user = self._user_of(headers)
            if user is None:
                return self._encode(401, {"message": "Unauthorized", "error": 401}, dict(_INVALID_TOKEN))
            now = self.clock()
            if now < self._exhausted_until:
                wait = math.ceil(self._exhausted_until - now)
                self._tell_wait(self._exhausted_until)
                return self._encode(429, {"message": "Too Many Requests", "error": 429},
                                    {"retry-after": str(wait), "x-ratelimit-remaining": "0.0",
                                     "x-ratelimit-used": str(self.quota), "x-ratelimit-reset": str(wait)})
            rate = self._rate_headers(count=True)
            status, data = getattr(self, f"_api_{route}")(user, record, args)
            return self._encode(status, data, rate)

    # -- auth

    def _token(self, form: Mapping[str, str], headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return self._encode(401, {"message": "Unauthorized", "error": 401})
        if form.get("grant_type") != "password":
            return self._encode(200, {"error": "unsupported_grant_type"})
        username = form.get("username", "")
        if self.users.get(username) != form.get("password"):
            return self._encode(200, {"error": "invalid_grant"})
        token = secrets.token_urlsafe(20)
        self.tokens[token] = (username, self.clock() + 3600)
        return self._encode(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": "*"})

    def _user_of(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        entry = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    # -- writes

    def _tell_wait(self, until: float) -> None:
        self.told.append((self.clock(), until))
        self.wait_until = max(self.wait_until, until)

    def _throttled(self, user: str) -> dict[str, Any] | None:
        if not self.action_throttle:
            return None
        left = self._last_write.get(user, -math.inf) + self.action_throttle - self.clock()
        if left <= 0:
            return None
        self._tell_wait(self.clock() + left)
        # Reddit rounds the time down ("9 minutes" may mean 9:59).
        amount, unit = (int(left // 60), "minute") if left >= 60 else (max(1, int(left)), "second")
        message = (f"Looks like you've been doing that a lot. Take a break for {amount} {unit}"
                   f"{'s' if amount != 1 else ''} before trying again.")
        return {"json": {"errors": [["RATELIMIT", message, "ratelimit"]]}}

    def _api_submit(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        form = record.form
        sub = self.subreddits.get(form.get("sr", "").lower())
        if sub is None:
            return 200, _errors(["SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr"])
        if sub.private or user in sub.banned:
            return 403, {"message": "Forbidden", "error": 403}
        throttled = self._throttled(user)
        if throttled:
            return 200, throttled
        title, text, kind = form.get("title", ""), form.get("text", ""), form.get("kind", "")
        media: dict[str, Any] = {}
        if "richtext_json" in form:
            text, media = self._from_richtext(json.loads(form["richtext_json"]))
        if kind == "self" and not sub.allow_self:
            return 200, _errors(["NO_SELFS", "This community doesn't allow text posts.", "sr"])
        refused = self._check_post(sub, title, text, form.get("flair_id"))
        if refused:
            return refused
        link = self._new_link(user, sub, title, text, form, media=media)
        return 200, {"json": {"errors": [], "data": {"url": f"https://www.reddit.com{link['permalink']}",
                                                      "id": link["id"], "name": link["name"]}}}

    def _check_post(self, sub: Subreddit, title: str, text: str, flair_id: Any) -> tuple[int, Any] | None:
        if not title.strip():
            return 200, _errors(["NO_TEXT", "we need something here", "title"])
        if len(title) > 300:
            return 200, _errors(["TOO_LONG", "this is too long (max: 300)", "title"])
        if len(text) > 40_000:
            return 200, _errors(["TOO_LONG", "this is too long (max: 40000)", "text"])
        if sub.flair_required and not flair_id:
            return 400, {"fields": ["flair"], "explanation": "Your post must contain post flair.",
                         "message": "Bad Request", "reason": "SUBMIT_VALIDATION_FLAIR_REQUIRED"}
        return None

    def _new_link(self, user: str, sub: Subreddit, title: str, text: str, form: Mapping[str, Any], *,
                  media: Mapping[str, Any] | None = None, gallery: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
        link_id = base36(self._next_link)
        self._next_link += 1
        now = self.clock()
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50] or "_"
        permalink = f"/r/{sub.name}/comments/{link_id}/{slug}/"
        self.submissions[link_id] = {
            "id": link_id, "name": f"t3_{link_id}", "title": title, "selftext": text, "_author": user,
            "author": user, "subreddit": sub.name, "subreddit_id": f"t5_{sub.id}", "created_utc": now,
            "permalink": permalink, "locked": False, "archived": False, "removed_by_category": None,
            "link_flair_template_id": form.get("flair_id"), "link_flair_text": form.get("flair_text"),
            "send_replies": str(form.get("sendreplies")) == "True", "over_18": str(form.get("nsfw")) == "True",
            "spoiler": str(form.get("spoiler")) == "True", "quarantine": sub.quarantined,
            "media_metadata": dict(media or {}) or None, "gallery": gallery,
        }
        self._last_write[user] = now
        return self.submissions[link_id]

    # -- pictures

    def _api_media_asset(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        """The upload lease, shaped as the 2025 recording (``test_submit_gallery__selftext``)."""
        filepath, mimetype = record.form.get("filepath", ""), record.form.get("mimetype", "")
        if not filepath or not mimetype:
            return 200, _errors(["BAD_REQUEST", "filepath and mimetype are required", "filepath"])
        asset_id = base36(self._next_asset)
        self._next_asset += 1
        self.assets[asset_id] = {"filepath": filepath, "mimetype": mimetype, "user": user, "data": None}
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        fields = {"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-date": stamp, "x-amz-storage-class": "STANDARD",
                  "success_action_status": "201", "bucket": _S3_BUCKET, "acl": "private",
                  "x-amz-signature": hashlib.sha256(asset_id.encode()).hexdigest(),
                  "x-amz-security-token": "standin", "key": asset_id,
                  "x-amz-meta-ext": filepath.rpartition(".")[2], "policy": "c3RhbmRpbg==",
                  "x-amz-credential": f"STANDIN/{stamp[:8]}/us-east-1/s3/aws4_request", "Content-Type": mimetype}
        return 200, {"args": {"action": f"{self.s3_action}/{_S3_BUCKET}",
                              "fields": [{"name": k, "value": v} for k, v in fields.items()]},
                     "asset": {"asset_id": asset_id, "processing_state": "incomplete",
                               "payload": {"filepath": filepath},
                               "websocket_url": f"wss://127.0.0.1/{asset_id}?m=standin"}}

    def _s3_upload(self, record: Recorded, args: list[str]) -> tuple[int, dict[str, str], bytes]:
        """S3's answer to the multipart upload: 201 and the XML ``PostResponse`` (as recorded)."""
        key = record.form.get("key", "")
        asset = self.assets.get(key)
        _, data = record.files.get("file", ("", b""))
        xml = {"content-type": "application/xml"}
        if asset is None or record.form.get("Content-Type") != asset["mimetype"]:
            return 403, xml, (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                              b"<Message>Invalid according to Policy</Message></Error>")
        if len(data) > self.s3_max_bytes:  # the shape praw's test_submit_image__large feeds
            return 400, xml, (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>EntityTooLarge</Code>'
                              f"<Message>Your proposed upload exceeds the maximum allowed size</Message>"
                              f"<ProposedSize>{len(data)}</ProposedSize><MaxSizeAllowed>{self.s3_max_bytes}"
                              f"</MaxSizeAllowed><RequestId>STANDIN</RequestId><HostId>standin</HostId>"
                              f"</Error>").encode()
        asset["data"] = data
        location = f"https:{self.s3_action}/{_S3_BUCKET}/{key}"
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Location>{location}</Location>'
                f"<Bucket>{_S3_BUCKET}</Bucket><Key>{key}</Key><ETag>{html.escape(etag, quote=False)}</ETag>"
                f"</PostResponse>").encode()
        return 201, {**xml, "location": location, "etag": etag}, body

    def _api_convert_rte(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        """Markdown to rich text: a text run per paragraph block, an image per ``![img](id "caption")``."""
        document: list[dict[str, Any]] = []
        assets: list[dict[str, Any]] = []
        for block in re.split(r"\n[ \t]*\n", record.form.get("markdown_text", "")):
            block = block.strip()
            match = _INLINE.match(block)
            if match:
                kind, asset_id, caption = match.groups()
                caption = re.sub(r"\\(.)", r"\1", caption)
                document.append({"c": caption, "e": kind, "id": asset_id})
                assets.append({"obfuscation_descriptor": [], "obfuscation_reason": None, "id": asset_id,
                               "caption": caption})
            elif block:
                document.append({"c": [{"e": "text", "t": block}], "e": "par"})
        return 200, {"output": {"document": document}, "output_mode": "rtjson", "assets": assets}

    def _from_richtext(self, richtext: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The self text Reddit gives back for a rich-text post, and its ``media_metadata``."""
        blocks: list[str] = []
        media: dict[str, Any] = {}
        for item in richtext.get("document", []):
            if item.get("e") == "par":
                blocks.append("".join(run.get("t", "") for run in item.get("c", [])))
                continue
            asset = self.assets.get(item.get("id", ""), {})
            ext = str(asset.get("filepath", "x.png")).rpartition(".")[2]
            url = (f"https://preview.redd.it/{item.get('id')}.{ext}?width=128&format=png&auto=webp"
                   f"&s={hashlib.sha1(str(item.get('id')).encode()).hexdigest()}")
            caption = item.get("c") or ""
            blocks.append(f"[{caption}]({url})" if caption else url)
            media[str(item.get("id"))] = {"status": "valid", "e": "Image", "m": asset.get("mimetype"),
                                          "id": item.get("id")}
        return "\n\n".join(blocks), media

    def _api_submit_gallery(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        """A gallery post (JSON body); the answer has ``url`` and ``id`` (a fullname), as recorded."""
        data = record.json if isinstance(record.json, dict) else {}
        sub = self.subreddits.get(str(data.get("sr", "")).lower())
        if sub is None:
            return 200, _errors(["SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr"])
        if sub.private or user in sub.banned:
            return 403, {"message": "Forbidden", "error": 403}
        throttled = self._throttled(user)
        if throttled:
            return 200, throttled
        items = data.get("items") or []
        if not items:
            return 200, _errors(["NO_MEDIA", "a gallery needs at least one image", "items"])
        for item in items:
            asset = self.assets.get(item.get("media_id", ""))
            if asset is None or asset["data"] is None or asset["user"] != user:
                return 200, _errors(["MEDIA_UNAVAILABLE", f"media {item.get('media_id')} was not uploaded",
                                     "items"])
        title, text = str(data.get("title", "")), str(data.get("text") or "")
        refused = self._check_post(sub, title, text, data.get("flair_id"))
        if refused:
            return refused
        gallery = [{"media_id": i["media_id"], "caption": i.get("caption", ""),
                    "outbound_url": i.get("outbound_url", "")} for i in items]
        media = {i["media_id"]: {"status": "valid", "e": "Image", "m": self.assets[i["media_id"]]["mimetype"],
                                 "id": i["media_id"]} for i in items}
        link = self._new_link(user, sub, title, text, data, media=media, gallery=gallery)
        return 200, {"json": {"errors": [], "data": {"url": f"https://www.reddit.com{link['permalink']}",
                                                      "id": link["name"]}}}

    def _api_comment(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        form = record.form
        thing_id, text = form.get("thing_id", ""), form.get("text", "")
        kind, _, parent_id = thing_id.partition("_")
        parent = (self.submissions if kind == "t3" else self.comments if kind == "t1" else {}).get(parent_id)
        if parent is None:
            return 200, _errors(["INVALID_PARENT", "that parent doesn't exist", "parent"])
        link = parent if kind == "t3" else self.submissions[parent["link_id"][3:]]
        sub = self.subreddits[link["subreddit"].lower()]
        if sub.private or user in sub.banned:
            return 403, {"message": "Forbidden", "error": 403}
        if parent["removed_by_category"] or link["removed_by_category"]:
            gone = "DELETED_LINK" if parent is link else "DELETED_COMMENT"
            return 200, _errors([gone, f"the {'link' if parent is link else 'comment'} you are replying to has "
                                       "been deleted", "parent"])
        if link["archived"]:
            return 200, _errors(["TOO_OLD", "that's a piece of history now; it's too late to reply to it", "parent"])
        if link["locked"] or parent["locked"]:
            return 200, _errors(["THREAD_LOCKED", "Comments are locked.", "parent"])
        throttled = self._throttled(user)
        if throttled:
            return 200, throttled
        if not text.strip():
            return 200, _errors(["NO_TEXT", "we need something here", "text"])
        if len(text) > 10_000:
            return 200, _errors(["TOO_LONG", "this is too long (max: 10000)", "text"])
        comment_id = base36(self._next_comment)
        self._next_comment += 1
        now = self.clock()
        self.comments[comment_id] = {
            "id": comment_id, "name": f"t1_{comment_id}", "body": text, "_author": user, "author": user,
            "parent_id": thing_id, "link_id": link["name"], "subreddit": link["subreddit"],
            "subreddit_id": link["subreddit_id"], "created_utc": now, "locked": False, "archived": False,
            "removed_by_category": None,
            "permalink": f"{link['permalink']}{comment_id}/",
        }
        self._last_write[user] = now
        if sub.quarantined:  # the comment exists, but Reddit does not show it back
            return 200, {"json": {"errors": [], "data": {"things": []}}}
        return 200, {"json": {"errors": [], "data": {"things": [self._comment_thing(self.comments[comment_id])]}}}

    # -- reads

    def _api_submission(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        link = self.submissions.get(args[0])
        if link is None:
            return 404, {"message": "Not Found", "error": 404}
        sort = record.query.get("sort", "")
        try:
            budget = [max(0, min(int(record.query.get("limit") or 200), 500))]
        except ValueError:
            return 400, {"message": "Bad Request", "error": 400}
        return 200, [_listing([self._link_thing(link)]), _listing(self._tree(link["name"], sort, budget, 0))]

    def _tree(self, parent: str, sort: str, budget: list[int], depth: int) -> list[dict[str, Any]]:
        """The comments under ``parent`` as ``GET /comments/<id>`` shows them: ``sort=new`` puts the newest
        first at every level; ``limit`` (``budget``) bounds how many comments come back in all, and what
        does not fit is one ``more`` stub per level (which praw's ``replace_more(limit=0)`` drops).

        Simplification: the comments are taken depth first in sort order; Reddit's own choice of which
        comments fill the limit is not documented."""
        kids = [c for c in self.comments.values() if c["parent_id"] == parent]
        if sort == "new":
            kids.sort(key=lambda c: (c["created_utc"], c["id"]), reverse=True)
        shown: list[dict[str, Any]] = []
        rest: list[str] = []
        for comment in kids:
            if budget[0] <= 0:
                rest.append(comment["id"])
                continue
            budget[0] -= 1
            thing = self._comment_thing(comment)
            below = self._tree(comment["name"], sort, budget, depth + 1)
            thing["data"]["replies"] = _listing(below) if below else ""
            thing["data"]["depth"] = depth
            shown.append(thing)
        if rest:
            shown.append({"kind": "more", "data": {"count": len(rest), "name": "t1__", "id": "_",
                                                   "parent_id": parent, "depth": depth, "children": rest}})
        return shown

    def _api_info(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        things = []
        for fullname in filter(None, record.query.get("id", "").split(",")):
            kind, _, thing_id = fullname.partition("_")
            if kind == "t3" and thing_id in self.submissions:
                things.append(self._link_thing(self.submissions[thing_id]))
            elif kind == "t1" and thing_id in self.comments:
                things.append(self._comment_thing(self.comments[thing_id]))
        return 200, _listing(things)

    def _api_me(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        return 200, {"name": user, "id": base36(abs(hash(user)) % 36**6), "created_utc": 1_458_000_000.0,
                     "link_karma": 1, "comment_karma": 1, "is_suspended": False, "has_verified_email": True,
                     "is_mod": False, "over_18": False, "features": {}}

    def _own(self, things: dict[str, dict[str, Any]], name: str, record: Recorded,
             render: Callable[..., dict[str, Any]]) -> tuple[int, Any]:
        mine = [t for t in things.values() if t["_author"].lower() == name.lower()
                and t["removed_by_category"] != "deleted"]
        mine.sort(key=lambda t: (t["created_utc"], t["id"]), reverse=True)
        after = record.query.get("after")
        if after:
            names = [t["name"] for t in mine]
            mine = mine[names.index(after) + 1:] if after in names else []
        limit = min(int(record.query.get("limit") or 25), 100)
        page = mine[:limit]
        next_after = page[-1]["name"] if len(mine) > limit else None
        return 200, _listing([render(t, own=True) for t in page], after=next_after)

    def _api_submitted(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        return self._own(self.submissions, args[0], record, self._link_thing)

    def _api_user_comments(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        return self._own(self.comments, args[0], record, self._comment_thing)

    def _api_about(self, user: str, record: Recorded, args: list[str]) -> tuple[int, Any]:
        sub = self.subreddits.get(args[0].lower())
        if sub is None:
            return 404, {"message": "Not Found", "error": 404}
        if sub.private:
            return 403, {"message": "Forbidden", "error": 403, "reason": "private"}
        return 200, {"kind": "t5", "data": {
            "display_name": sub.name, "display_name_prefixed": f"r/{sub.name}", "name": f"t5_{sub.id}",
            "id": sub.id, "subreddit_type": "private" if sub.private else "public", "quarantine": sub.quarantined,
            "submission_type": "any" if sub.allow_self else "link", "user_is_banned": user in sub.banned,
            "user_is_contributor": False, "user_is_moderator": False, "over18": False,
            "url": f"/r/{sub.name}/", "created_utc": 1_458_000_000.0, "subscribers": 1}}

    # -- shapes (as in the recorded cassettes)

    def _link_thing(self, link: dict[str, Any], own: bool = False) -> dict[str, Any]:
        removed = link["removed_by_category"]
        text = link["selftext"]
        if removed == "deleted":
            text = "[deleted]"
        elif removed and not own:
            text = "[removed]"
        sub = link["subreddit"]
        return {"kind": "t3", "data": {
            "domain": f"self.{sub}", "banned_by": None, "media_embed": {}, "subreddit": sub,
            "selftext_html": _md_html(text), "selftext": text, "likes": True, "suggested_sort": None,
            "user_reports": [], "secure_media": None, "link_flair_text": link["link_flair_text"],
            "link_flair_template_id": link["link_flair_template_id"], "id": link["id"], "gilded": 0,
            "archived": link["archived"], "clicked": False, "report_reasons": [], "author": link["author"],
            "media": None, "name": link["name"], "score": 1, "approved_by": None, "over_18": link["over_18"],
            "spoiler": link["spoiler"], "hidden": False, "thumbnail": "self", "subreddit_id": link["subreddit_id"],
            "edited": False, "link_flair_css_class": None, "author_flair_css_class": None, "downs": 0,
            "mod_reports": [], "secure_media_embed": {}, "saved": False, "removal_reason": None,
            "removed_by_category": removed, "stickied": False, "is_self": True, "permalink": link["permalink"],
            "locked": link["locked"], "hide_score": False, "created": link["created_utc"],
            "url": f"https://www.reddit.com{link['permalink']}", "author_flair_text": None,
            "quarantine": link["quarantine"], "title": link["title"], "created_utc": link["created_utc"],
            "ups": 1, "upvote_ratio": 1.0, "num_comments": sum(1 for c in self.comments.values()
                                                              if c["link_id"] == link["name"]),
            "visited": False, "num_reports": 0, "distinguished": None, "send_replies": link["send_replies"],
            "subreddit_name_prefixed": f"r/{sub}", "is_gallery": link["gallery"] is not None,
            "media_metadata": link["media_metadata"],
            "gallery_data": None if link["gallery"] is None else {"items": [
                {"media_id": g["media_id"], "id": n, "caption": g["caption"]}
                for n, g in enumerate(link["gallery"], start=1)]}}}

    def _comment_thing(self, comment: dict[str, Any], own: bool = False, nested: bool = False) -> dict[str, Any]:
        removed = comment["removed_by_category"]
        body = comment["body"]
        if removed == "deleted":
            body = "[deleted]"
        elif removed and not own:
            body = "[removed]"
        link = self.submissions[comment["link_id"][3:]]
        replies: Any = ""
        if nested:
            children = [self._comment_thing(c, nested=True) for c in self.comments.values()
                        if c["parent_id"] == comment["name"]]
            replies = _listing(children) if children else ""
        return {"kind": "t1", "data": {
            "subreddit_id": comment["subreddit_id"], "banned_by": None, "removal_reason": None,
            "link_id": comment["link_id"], "likes": True, "replies": replies, "user_reports": [], "saved": False,
            "id": comment["id"], "gilded": 0, "archived": link["archived"], "report_reasons": [],
            "author": "[deleted]" if removed else comment["author"], "parent_id": comment["parent_id"], "score": 1,
            "approved_by": None, "controversiality": 0, "body": body, "edited": False,
            "author_flair_css_class": None, "downs": 0, "body_html": _md_html(body), "stickied": False,
            "subreddit": comment["subreddit"], "score_hidden": False, "name": comment["name"],
            "created": comment["created_utc"], "author_flair_text": None, "created_utc": comment["created_utc"],
            "ups": 1, "mod_reports": [], "num_reports": 0, "distinguished": None, "locked": comment["locked"],
            "permalink": comment["permalink"], "link_title": link["title"],
            "link_permalink": f"https://www.reddit.com{link['permalink']}",
            "subreddit_name_prefixed": f"r/{comment['subreddit']}"}}

    # -- plumbing

    def _thing(self, thing_id: str) -> dict[str, Any]:
        kind, _, bare = thing_id.rpartition("_")
        if kind in ("", "t3") and bare in self.submissions:
            return self.submissions[bare]
        if kind in ("", "t1") and bare in self.comments:
            return self.comments[bare]
        raise KeyError(thing_id)

    def _rate_headers(self, *, count: bool) -> dict[str, str]:
        now = self.clock()
        start = now - now % self.window
        if start != self._window_start:
            self._window_start, self._used = start, 0
        if count:
            self._used += 1
        reset = max(1, math.ceil(start + self.window - now))
        remaining = max(0, self.quota - self._used)
        if now < self._exhausted_until:
            remaining, reset = 0, max(1, math.ceil(self._exhausted_until - now))
        return {"x-ratelimit-used": str(self._used), "x-ratelimit-remaining": f"{float(remaining)}",
                "x-ratelimit-reset": str(reset)}

    @staticmethod
    def _encode(status: int, data: Any, headers: Mapping[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        if isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = json.dumps(data).encode() if data is not None else b""
        return status, {"content-type": _JSON, **(headers or {})}, body

    # ------------------------------------------------------------------ front ends

    def install(self, mock: Any, *, reddit_url: str = "https://www.reddit.com",
                oauth_url: str = "https://oauth.reddit.com") -> None:
        """Register this stand-in with a ``responses.RequestsMock`` for both Reddit hosts."""
        import requests
        import urllib3

        def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
            timeout = getattr(request, "req_kwargs", {}).get("timeout")
            if isinstance(timeout, tuple):
                timeout = timeout[1]
            try:
                return self.handle(request.method, request.url, dict(request.headers), request.body,
                                   timeout=timeout)
            except DropConnection:
                raise requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
                    "Connection aborted.", http.client.RemoteDisconnected(
                        "Remote end closed connection without response"))) from None
            except TimedOut:
                raise requests.exceptions.ReadTimeout(urllib3.exceptions.ReadTimeoutError(
                    None, request.url, f"Read timed out. (read timeout={timeout})")) from None

        for base in dict.fromkeys((reddit_url.rstrip("/"), oauth_url.rstrip("/"))):
            pattern = re.compile(re.escape(base) + r"(/.*)?$")
            for method in ("GET", "POST"):
                mock.add_callback(method, pattern, callback=callback)
        # the uploads the leases send to https:<s3_action>: the stand-in itself on 127.0.0.1
        self.s3_action = "//127.0.0.1/s3"
        mock.add_callback("POST", re.compile(r"https://127\.0\.0\.1/s3/.*$"), callback=callback,
                          content_type=None)  # S3 answers XML

    def serve(self, *, tls: bool = False) -> str:
        """Serve on 127.0.0.1 on a free port in a background thread; returns the base URL.

        The upload leases point at this server (``//127.0.0.1:<port>/s3``); praw always uploads over
        ``https:``, so the uploads reach it only with ``tls``: the server then speaks TLS with a
        certificate made for 127.0.0.1 on the spot, which a client trusts through :attr:`ca_file`.
        """
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                host, port = self.server.server_address[:2]
                try:
                    status, headers, payload = standin.handle(self.command, f"http://{host}:{port}{self.path}",
                                                              dict(self.headers.items()), body)
                except DropConnection:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if self.close_connection:  # the client asked for it (prawcore does on token requests)
                        self.send_header("Connection", "close")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timed out) before the answer
                    self.close_connection = True

            do_GET = do_POST = _serve

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="reddit-standin-")
            self.ca_file, key_file = _self_signed(Path(self._tls_dir.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="reddit-standin", daemon=True)
        self._thread.start()
        host, port = str(server.server_address[0]), int(server.server_address[1])
        self.s3_action = f"//{host}:{port}/s3"
        return f"{'https' if tls else 'http'}://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None


# ---------------------------------------------------------------------------- helpers

_ROUTES = (
    ("POST", re.compile(r"^/api/v1/access_token$"), "access_token"),
    ("POST", re.compile(r"^/api/media/asset$"), "media_asset"),
    ("POST", re.compile(r"^/s3/([^/]+)$"), "s3_upload"),
    ("POST", re.compile(r"^/api/convert_rte_body_format$"), "convert_rte"),
    ("POST", re.compile(r"^/api/submit_gallery_post$"), "submit_gallery"),
    ("POST", re.compile(r"^/api/submit$"), "submit"),
    ("POST", re.compile(r"^/api/comment$"), "comment"),
    ("GET", re.compile(r"^/comments/([a-z0-9]+)(?:/[^/]*)?$"), "submission"),
    ("GET", re.compile(r"^/api/info$"), "info"),
    ("GET", re.compile(r"^/api/v1/me$"), "me"),
    ("GET", re.compile(r"^/user/([^/]+)/submitted$"), "submitted"),
    ("GET", re.compile(r"^/user/([^/]+)/comments$"), "user_comments"),
    ("GET", re.compile(r"^/r/([^/]+)/about$"), "about"),
)


def _route(method: str, path: str) -> tuple[str, list[str]]:
    for verb, pattern, name in _ROUTES:
        match = pattern.match(path)
        if verb == method and match:
            return name, list(match.groups())
    return "unknown", []


def _self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 valid for a day and its key, written to ``folder``: ``(cert, key)`` paths."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _parse_body(raw: bytes, content_type: str) -> tuple[dict[str, str], Any, dict[str, tuple[str, bytes]]]:
    """``(form, json, files)`` of a request body, by its content type."""
    if not raw:
        return {}, None, {}
    if content_type.startswith("application/json"):
        return {}, json.loads(raw), {}
    if content_type.startswith("multipart/form-data"):
        message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw,
                                           policy=email.policy.HTTP)
        form: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            payload = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = (filename, payload)
            else:
                form[name] = payload.decode()
        return form, None, files
    return dict(parse_qsl(raw.decode(), keep_blank_values=True)), None, {}


def _errors(*items: list[str]) -> dict[str, Any]:
    return {"json": {"errors": list(items)}}


_UNIT_SECONDS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}


def _told_wait(fault: Fault) -> float:
    """How long an injected answer tells the client to wait, at the least (0 when it does not)."""
    if fault.status == 429:
        for header in ("retry-after", "x-ratelimit-reset"):
            if header in fault.headers:
                return float(fault.headers[header])
        return 1.0
    errors = fault.body.get("json", {}).get("errors") if isinstance(fault.body, dict) else None
    for item in errors or ():
        if item[0] == "RATELIMIT":
            found = re.findall(r"(\d+) (millisecond|second|minute|hour)", item[1])
            return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in found)
    return 0.0


def _listing(children: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"modhash": None, "dist": len(children), "children": children,
                                         "after": after, "before": None}}


def _md_html(text: str) -> str:
    return f'<!-- SC_OFF --><div class="md"><p>{html.escape(text)}</p>\n</div><!-- SC_ON -->'
