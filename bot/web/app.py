"""The operator dashboard: a Starlette app over the same store, operations and rendering as the CLI.

Pages: the calendar (``/``), a story with its editor, history and what followers said under its threads
(``/story/ID``), the threads with new replies (``/conversation``), the stories that need a reveal
(``/reveals``), the status (``/status``) and the upload (``/upload``); for monitoring ``/metrics``,
``/healthz`` and ``/readyz`` (:mod:`bot.metrics`). Retry, skip and hiding a reply ask for confirmation on a
page of their own (GET), then act on a POST that carries the CSRF token. Every page is plain server-rendered
HTML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot import conversation, links, metrics, ops, wiring
from bot.config import Settings
from bot.images import describe_picture, media_policy, stored_image
from bot.models import RETRYABLE, SKIPPABLE, DeliveryRow, DeliveryStatus
from bot.planner import Planner, operator_templates
from bot.sources.stories import load_stories
from bot.store import Store
from bot.web import editor, security
from bot.web import post_html as show
from bot.web.pages import MAX_WEEKS, calendar, headlines, link_check_view, status_view, story_view
from posts import limits
from posts.clock import utcnow
from posts.durations import human_duration
from posts.errors import BotError, NotFound, StoryError
from posts.limits import MAX_FIELD_CHARS
from posts.story import PLATFORM_NAMES

HERE = Path(__file__).parent
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""Largest upload (all its files and fields), counted as it streams in."""
MAX_UPLOAD_FILE_BYTES = 10 * 1024 * 1024
"""Largest single file in an upload."""
MAX_UPLOAD_FILES = 20
IMAGE_ENDINGS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
"""Uploaded files with these endings are images that the story files uploaded with them may name."""
MAX_LOGIN_BYTES = 4 * 1024
"""Largest body of a login (a token and two hidden fields)."""
MAX_FORM_BYTES = 16 * 1024
"""Largest body of any other form (retry, skip, logout)."""
_WORST_ENCODING = 12
"""Bytes one character may take in a form: four in UTF-8, each written ``%XX`` in a URL-encoded body."""
MAX_EDIT_FIELD_BYTES = max(MAX_FIELD_CHARS.values()) * _WORST_ENCODING
"""Largest single field of a story edit: the longest a story field may be (the body), at its worst encoding."""
MAX_EDIT_BYTES = sum(MAX_FIELD_CHARS.values()) * _WORST_ENCODING + 64 * 1024
"""Largest body of a story edit or its preview: every field of a story at its longest, at its worst
encoding, and the form's own fields (security token, version, picture tokens)."""
MAX_EDIT_FILES = 12
"""Most file parts one story edit sends: a browser sends every file input, chosen or not (the link card
picture's, and each picture's Replace and the Add of both picture fields: 11 at most)."""
CONVERSATION_PAGE = 50
"""Most threads the Conversation page shows at once (the most recently active; the next ones after these
are marked seen, or on ``?all=1`` never: a bounded page)."""
MAX_SEEN_BYTES = MAX_FORM_BYTES + CONVERSATION_PAGE * 3 * 160
"""Largest body of "Mark these as seen": one ``seen`` field per thread shown (a platform, a count and a
story id of up to 100 characters, each of which may take up to 3 bytes as UTF-8, percent-encoded)."""
MAX_EDIT_FIELDS = 80
"""Most fields one story edit sends (every text field, and each picture's token and alt text)."""
MAX_NAME_BYTES = 255
"""Longest file name accepted in an upload (in UTF-8 bytes, as most file systems count)."""
STATUS_CLASS = {**{status.value: status.tone for status in DeliveryStatus}, "late": "warn"}
"""The ``st-*`` class of each badge: a status's tone, and "late" (a pending post past its time)."""


@dataclasses.dataclass
class Web:
    """What every request handler needs."""

    settings: Settings
    store: Store
    token: str
    secret: bytes
    clock: Callable[[], dt.datetime]
    templates: Jinja2Templates
    story_templates: Any
    sessions: security.Sessions
    logins: security.LoginLimiter
    secure_cookies: bool = False
    adapter: Callable[[str], Any] | None = None
    """The adapter of a platform, for the actions that reach one (hiding a reply)."""

    def planner(self) -> Planner:
        return Planner(self.store, self.settings, templates=self.story_templates)

    def local(self, when: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return self.settings.local_time(when, fmt)


def create_app(settings: Settings, store: Store, *, token: str | None = None, public: bool = False,
               clock: Callable[[], dt.datetime] = utcnow, secret: bytes | None = None,
               allowed_hosts: list[str] | None = None, adapter: Callable[[str], Any] | None = None) -> Starlette:
    """The dashboard app.

    Args:
        settings: the bot's settings (time zone, platforms, quotas, templates).
        store: the queue database.
        token: the operator token; ``None`` reads ``settings.web_token`` (empty: no token).
        public: the app is served on a non-loopback address: refused without a token.
        clock: the current time (tests pass a fixed one).
        secret: the key that signs CSRF tokens (default: random for this process).
        allowed_hosts: host names accepted without a token (default: loopback names only).
        adapter: the adapter of a platform by its name, for hiding a reply (default: as ``run`` builds it,
            the sandbox in sandbox mode: :func:`bot.wiring.adapter_for`).

    Raises:
        BotError: ``public`` without a token.
    """
    token = str(getattr(settings, "web_token", "") or "") if token is None else token
    if public:
        security.check_bind("0.0.0.0", token)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.finalize = _masking(settings.masker())
    env.filters["web_url"] = show.web_url
    env.globals.update(platform_names=PLATFORM_NAMES, status_class=STATUS_CLASS, S=DeliveryStatus, x_html=show.x_html,
                       bluesky_html=show.bluesky_html, reddit_html=show.reddit_html, domain=show.domain,
                       mastodon_html=show.mastodon_html,
                       zone=settings.timezone, token_required=bool(token))
    idle = getattr(settings, "web_session_idle", None) or dt.timedelta(hours=12)
    secure_cookies = bool(getattr(settings, "web_secure_cookies", False))
    web = Web(settings, store, token, secret or secrets.token_bytes(32), clock, templates,
              operator_templates(settings), security.Sessions(idle.total_seconds()), security.LoginLimiter(),
              secure_cookies, adapter or _adapters(settings, clock))
    env.globals["local"] = web.local
    env.globals["describe_picture"] = describe_picture
    env.globals["hide_url"] = _hide_url
    env.globals["duration"] = human_duration
    hosts = None if token else (allowed_hosts if allowed_hosts is not None else sorted(security.LOOPBACK_NAMES))
    routes = [
        Route("/", _page(web, calendar_page)),
        Route("/story/{story_id:str}", _page(web, story_page)),
        Route("/story/{story_id:str}/edit", _action(web, edit_story), methods=["POST"]),
        Route("/story/{story_id:str}/preview", _action(web, preview_story), methods=["POST"]),
        Route("/story/{story_id:str}/approve", _action(web, approve_story), methods=["POST"]),
        Route("/reveals", _page(web, reveals_page)),
        Route("/conversation", _page(web, conversation_page)),
        Route("/conversation/seen", _action(web, conversation_seen), methods=["POST"]),
        Route("/hide", _page(web, hide_confirm)),
        Route("/hide", _action(web, hide_reply), methods=["POST"]),
        Route("/media/{sha256:str}", _page(web, media_file)),
        Route("/status", _page(web, status_page)),
        Route("/upload", _page(web, upload_form)),
        Route("/upload", _action(web, upload), methods=["POST"]),
        Route("/retry/{target:str}", _page(web, retry_confirm)),
        Route("/retry/{target:str}", _action(web, retry), methods=["POST"]),
        Route("/skip/{story_id:str}", _page(web, skip_confirm)),
        Route("/skip/{story_id:str}", _action(web, skip), methods=["POST"]),
        Route("/use-archive/{story_id:str}", _action(web, use_archive_link), methods=["POST"]),
        Route("/metrics", _monitor(web, "/metrics")),
        Route("/healthz", _monitor(web, "/healthz")),
        Route("/readyz", _monitor(web, "/readyz")),
        Route("/login", _page(web, login_form)),
        Route("/login", _action(web, login), methods=["POST"]),
        Route("/logout", _action(web, logout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    guard = Middleware(security.Guard, token=token, allowed_hosts=hosts, sessions=web.sessions,
                       secure_cookies=secure_cookies, loopback_paths=metrics.HEALTH_PATHS)
    app = Starlette(routes=routes, middleware=[guard],
                    exception_handlers={HTTPException: _error_handler(web), BotError: _error_handler(web)})
    app.state.web = web
    return app


# ---------------------------------------------------------------------------- plumbing


def _adapters(settings: Settings, clock: Callable[[], dt.datetime]) -> Callable[[str], Any]:
    """Each platform's adapter as ``run`` builds it (the sandbox in sandbox mode), made the first time an
    action needs it and kept (a live adapter keeps its login)."""
    made: dict[str, Any] = {}

    def adapter(platform: str) -> Any:
        if platform not in made:
            made[platform] = wiring.adapter_for(settings, platform, clock=clock)
        return made[platform]

    return adapter


def _masking(mask: Callable[[str], str]) -> Callable[[Any], Any]:
    """Jinja's ``finalize``: every value a page shows has the secrets masked out of it (in any
    escaped form), whether it comes from the database, an error or a platform's answer."""

    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):
            return Markup(mask(str(value)))
        if isinstance(value, str):
            return mask(value)
        return value

    return finalize


def page(web: Web, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context = {"csrf_token": security.csrf_token(request, web.secret), "settings": web.settings,
               "now": web.clock(), "path": request.url.path, **context}
    return web.templates.TemplateResponse(request, name, context, status_code=status_code)


def _page(web: Web, handler: Callable[[Web, Request], Response]) -> Callable[[Request], Any]:
    """A GET page: its work (database reads, rendering) runs in a worker thread."""

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(handler, web, request)

    return endpoint


def _monitor(web: Web, path: str) -> Callable[[Request], Any]:
    """``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz`` (JSON, 200 or 503), read in a worker thread."""
    registry = metrics.registry(web.store, web.settings, web.clock)
    mask = web.settings.masker()

    def answer() -> Response:
        if path == "/metrics":
            body, kind = metrics.exposition(registry)
            return Response(body, media_type=kind, headers={"cache-control": "no-store"})
        health = metrics.check(web.store, mask, ready=path == "/readyz")
        status, data = health.readyz() if path == "/readyz" else health.healthz()
        return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(answer)

    return endpoint


def _action(web: Web, handler: Callable[[Web, Request, FormData], Any]) -> Callable[[Request], Any]:
    """A POST: refused (403) unless its form carries this browser's CSRF token.

    What can be refused without the body is refused before any of it is read (no ``csrf`` cookie,
    another site's origin, a login from an address over its failure limit); the body is then read
    within its path's limits as it streams in (413 past them).
    """

    async def endpoint(request: Request) -> Response:
        if request.url.path == "/login" and web.token:
            wait = web.logins.retry_after(security.client_address(request.scope))
            if wait:
                raise HTTPException(429, f"Too many wrong tokens from this address: try again in {wait} s.",
                                    headers={"Retry-After": str(wait)})
        if request.url.path == "/upload":
            limits: dict[str, Any] = {"limit": MAX_UPLOAD_BYTES, "what": "The upload",
                                      "max_files": MAX_UPLOAD_FILES, "max_file_size": MAX_UPLOAD_FILE_BYTES}
        elif request.url.path == "/login":
            limits = {"limit": MAX_LOGIN_BYTES, "what": "The login form"}
        elif request.url.path.startswith("/story/") and request.url.path.endswith("/edit"):
            limits = {"limit": MAX_EDIT_BYTES + MAX_UPLOAD_BYTES, "what": "The story and its pictures",
                      "max_files": MAX_EDIT_FILES, "max_file_size": MAX_UPLOAD_FILE_BYTES,
                      "max_fields": MAX_EDIT_FIELDS, "max_field_size": MAX_EDIT_FIELD_BYTES}
        elif request.url.path.startswith("/story/"):
            limits = {"limit": MAX_EDIT_BYTES, "what": "The story", "max_fields": MAX_EDIT_FIELDS,
                      "max_field_size": MAX_EDIT_FIELD_BYTES}
        elif request.url.path == "/conversation/seen":
            limits = {"limit": MAX_SEEN_BYTES, "what": "The list of threads", "max_fields": CONVERSATION_PAGE + 2}
        else:
            limits = {"limit": MAX_FORM_BYTES, "what": "The form"}
        security.before_body(request, limits["limit"], limits["what"])
        form = await security.read_form(request, **limits)
        try:
            given = form.get(security.CSRF_FIELD) or request.headers.get(security.CSRF_HEADER)
            if not security.csrf_ok(request, web.secret, given):
                raise HTTPException(403, "This form is missing its security token, or it expired "
                                         "(the dashboard restarted, or cookies are blocked). Reload the page "
                                         "and try again.")
            return await handler(web, request, form)
        finally:
            await form.close()

    return endpoint


def _error_handler(web: Web) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        headers = None
        if isinstance(exc, HTTPException):
            code, message, headers = exc.status_code, str(exc.detail), exc.headers
        else:
            code, message = 404 if isinstance(exc, NotFound) else 400, str(exc)
        if code == 405:
            message = "That address does not take this kind of request."
        response = page(web, request, "error.html", {"code": code, "message": message, "title": "Error"},
                        status_code=code)
        response.headers.update(headers or {})
        return response

    return handle


def _now(web: Web) -> dt.datetime:
    return web.clock()


# ---------------------------------------------------------------------------- pages


def calendar_page(web: Web, request: Request) -> Response:
    start = None
    raw = request.query_params.get("start", "")
    if raw:
        try:
            start = dt.date.fromisoformat(raw)
        except ValueError:
            raise HTTPException(400, f"{raw[:60]!r} is not a date (YYYY-MM-DD).") from None
        if not limits.date_in_range(start):
            raise HTTPException(400, f"{raw!r} is outside the supported range of dates, "
                                f"{limits.time_range_text()}.")
    try:
        weeks = min(max(int(request.query_params.get("weeks", "2")[:3]), 1), MAX_WEEKS)
    except ValueError:
        weeks = 2
    day, number = _day_page(request)
    cal = calendar(web.store, web.settings, now=_now(web), start=start, weeks=weeks, day=day, page=number)
    return page(web, request, "calendar.html", {"cal": cal, "title": "Calendar"})


def _day_page(request: Request) -> tuple[dt.date | None, int]:
    """The day whose posts are shown page by page (``?day=YYYY-MM-DD&page=N``), if any."""
    raw = request.query_params.get("day", "")
    try:
        day = dt.date.fromisoformat(raw) if raw else None
        number = int(request.query_params.get("page", "1")[:6])
    except ValueError:
        raise HTTPException(400, "day must be a date (YYYY-MM-DD) and page a whole number.") from None
    return day, max(number, 1)


def story_page(web: Web, request: Request) -> Response:
    return _story(web, request)


def _story(web: Web, request: Request, status_code: int = 200, **context: Any) -> Response:
    """The story page: its posts as they go out, its editor (filled from ``context["ed"]`` when given),
    its history; ``context`` adds a notice (``saved``, ``approved``) or a load report."""
    story_id = request.path_params["story_id"]
    view = story_view(web.store, web.settings, story_id, templates=web.story_templates)
    if "ed" not in context:
        context["ed"] = editor.editor_view(web.store, web.settings, story_id, now=_now(web),
                                           templates=web.story_templates, secret=web.secret)
    context.setdefault("link", link_check_view(web.store, view.story.id))
    context.setdefault("convos", {c.platform: c for c in conversation.threads(web.store, view.story.id)})
    return page(web, request, "story.html", {"v": view, "title": view.story.headline, **context},
                status_code=status_code)


def reveals_page(web: Web, request: Request) -> Response:
    stories = ops.needs_reveal(web.store, _now(web), web.settings.reveal_lead,
                                followup_delay=web.settings.followup_delay)
    return page(web, request, "reveals.html", {"title": "Needs a reveal", "stories": stories,
                                               "lead": web.settings.reveal_lead})


def conversation_page(web: Web, request: Request) -> Response:
    """The threads with replies the operator has not seen (``?all=1``: every thread read), the most recently
    active first, at most :data:`CONVERSATION_PAGE` of them."""
    show_all = request.query_params.get("all") == "1"
    found = conversation.threads(web.store, only_new=not show_all, limit=CONVERSATION_PAGE)
    total = conversation.count_threads(web.store, only_new=not show_all) if len(found) == CONVERSATION_PAGE \
        else len(found)
    return page(web, request, "conversation.html", {"title": "Conversation", "threads": found,
                                                    "more": max(0, total - CONVERSATION_PAGE),
                                                    "show_all": show_all, "settings": web.settings})


async def conversation_seen(web: Web, request: Request, form: FormData) -> Response:
    """Mark threads seen up to the counts the page showed (``seen`` fields: ``PLATFORM:TOTAL:STORY_ID``)."""
    seen = []
    for value in form.getlist("seen"):
        platform, _, rest = str(value).partition(":")
        total, _, story_id = rest.partition(":")
        if platform and story_id and total.isdigit():
            seen.append((story_id, platform, int(total)))
    await run_in_threadpool(conversation.mark_seen, web.store, seen, _now(web))
    return RedirectResponse(security.safe_next(str(form.get("next") or ""), "/conversation"), status_code=303)


def _hide_url(thread: conversation.ThreadConversation, reply: Any, back: str = "") -> str:
    """The confirmation page of hiding ``reply`` (or showing it again, when hidden)."""
    query = {"story": thread.story_id, "platform": thread.platform, "reply": reply.id,
             "hidden": "0" if reply.hidden else "1", "next": back or f"/story/{urllib.parse.quote(thread.story_id, safe='')}"}
    return "/hide?" + urllib.parse.urlencode(query)


def _kept_reply(web: Web, story_id: str, platform: str, reply_id: str) -> tuple[Any, Any]:
    """The thread and the reply a hide names, as kept (404 when either is not)."""
    thread = next((t for t in conversation.threads(web.store, story_id) if t.platform == platform), None)
    reply = next((r for r in thread.replies if r.id == reply_id), None) if thread is not None else None
    if thread is None or reply is None:
        raise HTTPException(404, "There is no such reply kept under that story's thread (the sweep may have "
                                 "read the thread again since: reload the story page).")
    return thread, reply


def hide_confirm(web: Web, request: Request) -> Response:
    params = request.query_params
    story_id, platform, reply_id = params.get("story", ""), params.get("platform", ""), params.get("reply", "")
    thread, reply = _kept_reply(web, story_id, platform, reply_id)
    if not thread.can_hide:
        raise HTTPException(400, f"{thread.name} does not let the author of a thread hide a reply: open it there "
                                 "instead.")
    hidden = params.get("hidden", "1") != "0"
    return page(web, request, "confirm.html", {
        "title": "Hide the reply?" if hidden else "Show the reply again?", "action": "hide", "thread": thread,
        "reply": reply, "hidden": hidden, "target": story_id, "titles": headlines(web.store, [story_id]),
        "back": security.safe_next(params.get("next"), f"/story/{urllib.parse.quote(story_id, safe='')}")})


async def hide_reply(web: Web, request: Request, form: FormData) -> Response:
    """Hide a reply on the platform (X hidden replies, Bluesky threadgate), then show the story."""
    story_id, platform = str(form.get("story") or ""), str(form.get("platform") or "")
    reply_id, hidden = str(form.get("reply") or ""), str(form.get("hidden") or "1") != "0"
    back = security.safe_next(str(form.get("next") or ""), f"/story/{urllib.parse.quote(story_id, safe='')}")

    def work() -> Response:
        thread, _ = _kept_reply(web, story_id, platform, reply_id)
        if not thread.can_hide:
            raise HTTPException(400, f"{thread.name} does not let the author of a thread hide a reply: open it "
                                     "there instead.")
        adapter = web.adapter(platform) if web.adapter is not None else None
        conversation.hide(web.store, adapter, story_id, platform, reply_id, hidden=hidden)
        return RedirectResponse(back, status_code=303)

    return await run_in_threadpool(work)


def media_file(web: Web, request: Request) -> Response:
    """A picture stored with the queue, by its sha256: the bytes a platform is sent (nothing else is served)."""
    sha256 = request.path_params["sha256"]
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise HTTPException(404, "No such picture.")
    with web.store.session() as session:
        image = stored_image(session, sha256)
    if image is None:
        raise HTTPException(404, "No such picture in the queue.")
    return Response(image.data, media_type=image.mime, headers={
        "cache-control": "private, max-age=86400, immutable", "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox"})


def status_page(web: Web, request: Request) -> Response:
    return page(web, request, "status.html", {**status_view(web.store, _now(web)), "title": "Status"})


def upload_form(web: Web, request: Request) -> Response:
    return page(web, request, "upload.html", {"title": "Upload"})


def login_form(web: Web, request: Request) -> Response:
    return page(web, request, "login.html", {"title": "Log in", "next": security.safe_next(
        request.query_params.get("next"))})


def retry_confirm(web: Web, request: Request) -> Response:
    target = request.path_params["target"]
    rows = _targets(web, target)
    return page(web, request, "confirm.html", {
        "title": "Retry?", "action": "retry", "target": target, "rows": rows,
        "retryable": [r for r in rows if r.status in RETRYABLE],
        "titles": headlines(web.store, {r.story_id for r in rows}), "back": _back(request)})


def skip_confirm(web: Web, request: Request) -> Response:
    story_id = request.path_params["story_id"]
    ops.story(web.store, story_id)  # 404 page for an unknown story
    with web.store.session() as session:  # a story not rendered yet has no deliveries: all of it is skipped
        unrendered = not session.scalar(select(DeliveryRow.id).where(DeliveryRow.story_id == story_id).limit(1))
    rows = [] if unrendered else _targets(web, story_id, story_only=True)
    return page(web, request, "confirm.html", {
        "title": "Skip?", "action": "skip", "target": story_id, "rows": rows, "unrendered": unrendered,
        "skippable": [r for r in rows if r.status in SKIPPABLE],
        "titles": headlines(web.store, [story_id]), "back": _back(request)})


def _back(request: Request) -> str:
    return security.safe_next(request.query_params.get("next"), "/status")


def _targets(web: Web, target: str, *, story_only: bool = False) -> list[Any]:
    """The deliveries a retry or skip of ``target`` concerns: a delivery written ``#12`` (``%2312`` in
    an address), else every delivery of the story with that id, even an all-digit one."""
    with web.store.session() as session:
        try:
            if story_only:
                return ops.story_deliveries(session, target)
            return ops.deliveries_for(session, target)
        except NotFound:
            what = "delivery" if target.strip().startswith("#") and not story_only else "story"
            hint = (f" A delivery is written with a #: its retry page is /retry/%23{target.strip()}."
                    if target.strip().isascii() and target.strip().isdigit() and not story_only else "")
            raise HTTPException(404, f"There is no {what} {target[:80]!r}.{hint}") from None


# ---------------------------------------------------------------------------- actions


async def retry(web: Web, request: Request, form: FormData) -> Response:
    target = request.path_params["target"]
    platform = str(form.get("platform") or "") or None
    rows = await run_in_threadpool(ops.retry, web.store, target, _now(web), web.settings, platform)
    return page(web, request, "done.html", {
        "title": "Queued again", "action": "retry", "target": target, "rows": rows,
        "titles": headlines(web.store, {r.story_id for r in rows}),
        "back": security.safe_next(str(form.get("next") or ""), "/status")})


async def skip(web: Web, request: Request, form: FormData) -> Response:
    story_id = request.path_params["story_id"]
    rows = await run_in_threadpool(ops.skip, web.store, story_id, _now(web), web.planner())
    return page(web, request, "done.html", {
        "title": "Skipped", "action": "skip", "target": story_id, "rows": rows,
        "titles": headlines(web.store, [story_id]),
        "back": security.safe_next(str(form.get("next") or ""), "/status")})


async def preview_story(web: Web, request: Request, form: FormData) -> Response:
    """The edited story's parts on every platform as JSON (and as the story page's preview HTML), or the
    problems that would refuse it: what the editor's script shows as the operator types."""
    story_id = request.path_params["story_id"]
    mask = web.settings.masker()  # the JSON carries what was typed: secrets never leave, as on every page

    def work() -> Response:
        checked = editor.check(web.store, web.settings, story_id, form, templates=web.story_templates,
                               secret=web.secret)
        html = web.templates.get_template("_preview.html").render(
            {"checked": checked, "platform_names": PLATFORM_NAMES, "settings": web.settings})
        body = json.dumps({**checked.to_dict(), "html": html}, ensure_ascii=False)
        return Response(mask(body), media_type="application/json", headers={"cache-control": "no-store"})

    return await run_in_threadpool(work)


async def edit_story(web: Web, request: Request, form: FormData) -> Response:
    """The editor's form: ``do=save`` saves (or is refused with the problems, the form still filled);
    anything else previews (the page without JavaScript), after a picture's button (``remove:images.2``,
    ``up:…``, ``down:…``) did its work. Files chosen for pictures are read (each within
    :data:`MAX_UPLOAD_FILE_BYTES`, as the form streams in) into a temporary folder under their own names,
    never as a path, and prepared by the editor as ``load`` prepares pictures."""
    story_id = request.path_params["story_id"]
    with tempfile.TemporaryDirectory(prefix="oneyearago-edit-") as folder:
        uploads: dict[str, Path] = {}
        for index, (key, value) in enumerate(form.multi_items()):
            if isinstance(value, UploadFile) and value.filename:
                target = Path(folder) / str(index) / _upload_name(value.filename)
                target.parent.mkdir()
                with target.open("wb") as out:
                    while chunk := await value.read(1024 * 1024):
                        out.write(chunk)
                uploads[key] = target

        def work() -> Response:
            if form.get("do") != "save":
                ed = editor.editor_view(web.store, web.settings, story_id, now=_now(web),
                                        templates=web.story_templates, form=form, uploads=uploads,
                                        secret=web.secret)
                return _story(web, request, ed=ed, previewed=True)
            saved = editor.save(web.store, web.settings, story_id, form, now=_now(web),
                                templates=web.story_templates, uploads=uploads, secret=web.secret)
            if saved.problems:
                ed = editor.editor_view(web.store, web.settings, story_id, now=_now(web),
                                        templates=web.story_templates,
                                        checked=dataclasses.replace(saved.checked, problems=saved.problems),
                                        version=str(form.get("version") or ""), secret=web.secret)
                return _story(web, request, 422, ed=ed, refused=True)
            return _story(web, request, report=saved.report, saved=True)

        return await run_in_threadpool(work)


async def approve_story(web: Web, request: Request, form: FormData) -> Response:
    """Approve a draft: its posts join the queue (as ``oneyearago approve`` does)."""
    story_id = request.path_params["story_id"]

    def work() -> Response:
        ops.story(web.store, story_id)  # 404 page for an unknown story
        approved = web.planner().approve([story_id], now=_now(web), origin=editor.ORIGIN)
        return _story(web, request, approved=approved)

    return await run_in_threadpool(work)


async def use_archive_link(web: Web, request: Request, form: FormData) -> Response:
    """Make the archived copy offered for the story's broken link its url (a dashboard edit), then show the story."""
    story_id = request.path_params["story_id"]
    await run_in_threadpool(links.use_archive, web.store, web.settings, story_id, now=_now(web), origin="dashboard",
                            templates=web.story_templates)
    return RedirectResponse(f"/story/{urllib.parse.quote(story_id, safe='')}", status_code=303)


async def login(web: Web, request: Request, form: FormData) -> Response:
    given = str(form.get("token") or "")
    target = security.safe_next(str(form.get("next") or ""))
    if not web.token:
        return RedirectResponse(target, status_code=303)
    client = security.client_address(request.scope)
    if not security.same(given, web.token):
        web.logins.failed(client)
        return page(web, request, "login.html", {"title": "Log in", "next": target,
                                                 "error": "That is not the operator token."}, status_code=401)
    web.logins.succeeded(client)
    old = request.cookies.get(security.SESSION_COOKIE, "")
    if old:
        web.sessions.revoke(old)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(security.SESSION_COOKIE, web.sessions.create(), httponly=True, samesite="strict",
                        secure=_secure(web, request), path="/")
    return response


async def logout(web: Web, request: Request, form: FormData) -> Response:
    web.sessions.revoke(request.cookies.get(security.SESSION_COOKIE, ""))
    response = RedirectResponse("/login" if web.token else "/", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(web, request))
    return response


def _secure(web: Web, request: Request) -> bool:
    """Whether cookies are marked Secure: served over https, or the setting says a TLS proxy does."""
    return web.secure_cookies or request.url.scheme == "https"


async def upload(web: Web, request: Request, form: FormData) -> Response:
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    dry_run = form.get("dry_run") == "1"
    force = form.get("force") == "1"
    if not files:
        return page(web, request, "upload.html", {"title": "Upload", "error": "Choose at least one story file."},
                    status_code=400)
    with tempfile.TemporaryDirectory(prefix="oneyearago-upload-") as folder:
        paths, names = [], {}
        images = Path(folder) / "images"  # the only place the uploaded story files may take images from
        images.mkdir()
        total = 0
        for index, upload_file in enumerate(files):
            name = _upload_name(upload_file.filename or "")
            data = await upload_file.read()
            total += len(data)
            if total > MAX_UPLOAD_BYTES:
                raise HTTPException(413, f"The upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
            if name.lower().endswith(IMAGE_ENDINGS):
                if (images / name).exists():
                    return page(web, request, "upload.html", {
                        "title": "Upload", "error": f"Two uploaded images are named {name}; rename one."},
                        status_code=400)
                (images / name).write_bytes(data)
                names[str(images / name)] = name
                continue
            target = Path(folder) / str(index) / name
            target.parent.mkdir()
            target.write_bytes(data)
            paths.append(target)
            names[str(target)] = name
        if not paths:
            return page(web, request, "upload.html", {
                "title": "Upload", "error": "Choose at least one story file (images go with the story files "
                "that name them)."}, status_code=400)
        try:
            report = await run_in_threadpool(_load, web, paths, names, dry_run, images, force)
        except StoryError as exc:
            problems = [dataclasses.replace(p, file=_shown(p.file, names), message=_scrub(p.message, names, folder),
                                            hint=UPLOAD_EDIT_HINT if p.message.startswith(EDITED) else
                                            _scrub(p.hint, names, folder)) for p in exc.problems]
            return page(web, request, "upload.html", {
                "title": "Upload", "problems": problems, "error": f"{_scrub(str(exc), names, folder)}; nothing "
                "was loaded.", "uploaded": list(names.values())}, status_code=422)
        except BotError as exc:
            raise BotError(_scrub(str(exc), names, folder)) from None
    return page(web, request, "upload.html", {"title": "Upload", "report": report, "dry_run": dry_run,
                                              "uploaded": list(names.values())})


def _upload_name(raw: str) -> str:
    """The name an uploaded file is loaded under: its own name without any folder, kept as sent.

    Raises:
        HTTPException: 400 for a name no file system could hold or that names a folder.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    shown = security.quoted(name)
    if name in ("", ".", ".."):
        raise HTTPException(400, f"The uploaded file name {security.quoted(raw)} is not a file name; rename the "
                                 "file and upload it again.")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise HTTPException(400, f"The uploaded file name {shown} holds control characters; rename the file and "
                                 "upload it again.")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise HTTPException(400, f"The uploaded file name {shown} is longer than {MAX_NAME_BYTES} bytes; rename "
                                 "the file and upload it again.")
    return name


def _scrub(text: str, names: dict[str, str], folder: str) -> str:
    """``text`` with every temporary copy's path replaced by the name the operator uploaded."""
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(path, name)
    return text.replace(folder, "upload")


def _shown(file: str, names: dict[str, str]) -> str:
    """A problem's file as the operator named it, not the temporary copy."""
    for path, name in names.items():
        if file == path or file.startswith(path):
            return name + file[len(path):]
    return file


EDITED = "was edited in the dashboard"
"""How a load's problem for a story edited in the dashboard begins (see :meth:`Planner.load`)."""

UPLOAD_EDIT_HINT = ("the dashboard's edit is kept: to keep it in your file too, copy it from the story's page "
                    "(or `oneyearago export STORY_ID`), or tick \u201cReplace dashboard edits\u201d to load the "
                    "uploaded version over it")


def _load(web: Web, paths: list[Path], names: dict[str, str], dry_run: bool, images: Path,
          force: bool = False) -> Any:
    """Exactly what ``oneyearago load`` does (``force`` as ``--force``): read and validate every file, then
    plan all or nothing.

    Local image paths name only the images uploaded with the files (in ``images``), never a server path.
    """
    stories = load_stories(paths, media=media_policy(web.settings, uploaded_to=images, store=web.store))
    stories = [dataclasses.replace(s, origin=_shown(s.origin, names)) for s in stories]
    return web.planner().load(stories, now=_now(web), dry_run=dry_run, force=force)
