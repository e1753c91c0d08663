"""The operator CLI: a thin click group over the library; rich tables for people, --json for machines."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import IO, Any, NoReturn
from zoneinfo import ZoneInfo

import click
from rich.console import Console, ConsoleOptions, RenderableType, RenderHook, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import AnnouncesLimits
from bot import __version__, conversation, logs, ops
from bot.accounts import Mark, automation_marks, refresh_accounts
from bot.config import SPEC_BY_NAME, Settings, load_settings, mask_url
from bot.engine import Engine, RunReport
from bot.images import describe_picture, image_info, media_policy, pictures_info
from bot.links import LinkChecker, LinkResult, broken_links, results, use_archive
from bot.metrics import Health, describe_address
from bot.metrics import check as check_health
from bot.models import DeliveryStatus as S
from bot.notify import Notifier
from bot.planner import Planner, operator_templates
from bot.runner import RunLock, run_forever, side_job
from bot.sdnotify import SystemdNotifier
from bot.sources.export import FORMATS, ExportError
from bot.sources.export import export as export_stories
from bot.sources.stories import load_stories
from bot.store import Store, explain_db_error, sqlite_path
from bot.wiring import (
    build_adapters,
    build_engine,
    live_adapter,
    missing_settings,
    open_store,
    reading_adapters,
)
from posts import limits
from posts import replies as reply_gates
from posts.clock import utcnow
from posts.durations import human_duration
from posts.errors import BotError, ConfigError, StoreError, StoryError
from posts.masking import Masker
from posts.story import PLATFORM_NAMES, PLATFORMS, Story


class _Escaped:
    """A renderable whose text is shown with its control characters written out (``\\x1b``)."""

    def __init__(self, renderable: RenderableType):
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.renderable, options):
            if segment.control or not limits.CONTROL_RE.search(segment.text):
                yield segment
            else:
                yield Segment(limits.escape_controls(segment.text), segment.style)


class EscapeControls(RenderHook):
    """Never lets a raw control character from a story, an id, a file name or an error reach the
    terminal: whatever a console prints, its text is escaped after layout (rich's own colour and
    cursor codes are control segments, and pass)."""

    def process_renderables(self, renderables: list[RenderableType]) -> list[RenderableType]:  # type: ignore[override]
        return [_Escaped(r) for r in renderables]


log = logging.getLogger("oneyearago")

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)
out.push_render_hook(EscapeControls())
err.push_render_hook(EscapeControls())


class Refused(BotError):
    """The command will not do what was asked (it would destroy something): exit status 2."""

    exit_code = 2


class State:
    """What the group's options leave for the commands."""

    def __init__(self, options: dict[str, str | None], env_file: str, debug: bool):
        self.options = options
        self.env_file = env_file
        self.debug = debug
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.options, env_file=self.env_file)
            MASKER[0] = self._settings.masker()
            logging.basicConfig(level=self._settings.log_level, handlers=[log_handler(self._settings)])
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store


def _existing_store(state: State) -> Store | None:
    """The queue's database when it exists already, else ``None``: a load that fails creates nothing."""
    url = make_url(state.settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:" or not Path(path).exists() or Path(path).stat().st_size == 0:
            return None
    return state.store


pass_state = click.make_pass_decorator(State)
_STATE: list[State | None] = [None]
"""The state of the command being run (for the database URL in a database error)."""

MASKER: list[Masker] = [Masker()]
"""Masks the secrets of the settings in use (and any URL's password) wherever the CLI prints or logs."""


def mask(text: str) -> str:
    return MASKER[0](text)


class MaskSecrets(logging.Filter):
    """Replaces every secret value in a log record with asterisks."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = ()
        if record.exc_info:  # the traceback is formatted after the filters: mask it now
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


class EscapeLogControls(logging.Filter):
    """Writes control characters in a log record out visibly: a log line goes to a terminal too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = limits.escape_controls(record.getMessage())
        record.args = ()
        return True


def log_handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Where log records go (standard error): masked, control characters written out, in the
    ``ONEYEARAGO_LOG_FORMAT`` of ``settings`` (human lines or one JSON object per line)."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskSecrets())
    handler.addFilter(EscapeLogControls())
    handler.setFormatter(logs.formatter(settings.log_format, mask))
    return handler


def _parse_set(values: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--set")
        name, value = item.split("=", 1)
        name = name.strip().lower().removeprefix("oneyearago_")
        if name not in SPEC_BY_NAME:
            raise click.BadParameter(f"unknown setting {name!r}; see .env.example", param_hint="--set")
        result[name] = value
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "database_url", metavar="URL", help="Database URL (ONEYEARAGO_DATABASE_URL).")
@click.option("--mode", type=click.Choice(["sandbox", "live"]), help="sandbox or live (ONEYEARAGO_MODE).")
@click.option("--platforms", metavar="LIST", help="Comma-separated platforms (ONEYEARAGO_PLATFORMS).")
@click.option("--timezone", metavar="ZONE", help="The bot's IANA time zone (ONEYEARAGO_TIMEZONE).")
@click.option("--transcript", metavar="FILE", help="Sandbox transcript file (ONEYEARAGO_TRANSCRIPT).")
@click.option("--templates", metavar="DIR", help="Template folder (ONEYEARAGO_TEMPLATES).")
@click.option("--set", "-s", "sets", multiple=True, metavar="NAME=VALUE", help="Any setting, e.g. -s grace=3h.")
@click.option("--env-file", default=".env", show_default=True, metavar="FILE", help="The .env file to read.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, prog_name="oneyearago")
@click.pass_context
def cli(ctx: click.Context, sets: tuple[str, ...], env_file: str, debug: bool, **options: str | None) -> None:
    """Replay the news one year late: post each story on its anniversary, then the spoiler."""
    merged: dict[str, str | None] = {**_parse_set(sets), **{k: v for k, v in options.items() if v is not None}}
    if debug:
        merged.setdefault("log_level", "debug")
    ctx.obj = _STATE[0] = State(merged, env_file, debug)


# ---------------------------------------------------------------------------- helpers


def _now(value: str | None) -> dt.datetime:
    if not value:
        return utcnow()
    return _parse_time(value, "--now")


def _parse_time(value: str, what: str, tz: str = "UTC", end_of_day: bool = False) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value) if len(value) != 10 else None
        day = dt.date.fromisoformat(value) if when is None else when.date()
    except ValueError:
        raise click.BadParameter(f"{value[:60]!r} is not an ISO date or date-time (e.g. "
                                 "2026-01-12 or 2026-01-12T14:00:00+00:00)", param_hint=what) from None
    if not limits.date_in_range(day):  # checked before any arithmetic that could overflow
        raise click.BadParameter(f"{value!r} is outside the supported range {limits.time_range_text()}",
                                 param_hint=what)
    if when is None:
        when = dt.datetime.combine(day + dt.timedelta(days=1) if end_of_day else day, dt.time())
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.astimezone(dt.UTC)


def _print_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    # json.dumps escapes C0 controls; DEL, C1 and bidi controls (only ever inside strings) get \uXXXX too
    click.echo(mask(limits.CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)))


def _snippet(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _shown_text(text: str, payload: Any) -> Text:
    """A post's text as a panel shows it, after its content warning (a Mastodon reply's) if it has one."""
    warning = payload.get("spoiler_text") if isinstance(payload, Mapping) else None
    if not warning:
        return Text(text)
    return Text.assemble((f"CW: {warning}", "bold yellow"), " (folded until opened)\n\n", text)


def show_post(settings: Settings) -> Callable[[dict[str, Any]], None]:
    """How the sandbox shows a post: as a follower would see it, with its place in the thread."""

    def show(record: dict[str, Any]) -> None:
        when = dt.datetime.fromisoformat(record["posted_at"])
        where = PLATFORM_NAMES.get(record["platform"], record["platform"])
        if record["kind"] == "root":
            title = f"{where} · new post · {settings.local_time(when)}"
        else:
            title = f"{where} · ↳ reply {record['part']} in the thread of {record['story_id']} · {settings.local_time(when)}"
        subtitle = f"{record['remote_id']}" + (f" → replying to {record['reply_to']}" if record["reply_to"] else "")
        body = _shown_text(record["text"] or "", record.get("payload") or {})
        pictures = record.get("pictures") or []
        for i, picture in enumerate(pictures, start=1):
            body.append(f"\n\n[picture {i}/{len(pictures)}: {describe_picture(picture)}]", style="bold blue")
            body.append(f"\nalt: {picture.get('alt', '')}", style="blue")
        out.print(Panel(body, title=title, subtitle=subtitle,
                        title_align="left",
                        subtitle_align="right", border_style="cyan" if record["kind"] == "root" else "magenta",
                        width=min(90, out.width)))

    return show


def _print_events(report: RunReport, settings: Settings, *, show_posted: bool = False) -> None:
    for event in report.events:
        if event.action == "posted" and not show_posted:
            continue
        where = f"{PLATFORM_NAMES.get(event.platform, event.platform)} {event.kind}"
        if event.parts > 1:
            where += f" {event.part}/{event.parts}"
        style = (TONE_STYLE[S(event.action).tone] if event.action in set(S) else
                 {"paused": "red", "rate-limited": "yellow", "retry-later": "yellow", "would-defer": "yellow",
                  "would-post": "green"}.get(event.action, "white"))
        line = Text.from_markup(f"[{style}]{event.action:>12}[/] ")
        line.append(f"#{event.delivery_id} {event.story_id} · {where}")
        if event.detail:
            line.append(f" · {mask(event.detail)}")
        out.print(line)
        if event.action == "would-post":
            out.print(Text("             " + _snippet(event.text, 100), style="dim"))


# ---------------------------------------------------------------------------- load


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and report; change nothing.")
@click.option("--render/--defer", default=None,
              help="Render every post now (and report cuts), or leave it until shortly before it is due. "
                   "Default: render loads of up to 2,000 new stories now.")
@click.option("--force", is_flag=True, help="Overwrite stories edited in the dashboard since they were last loaded.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def load(state: State, paths: tuple[Path, ...], dry_run: bool, render: bool | None, force: bool,
         as_json: bool) -> None:
    """Load story files (YAML, JSON, JSON Lines, CSV, Markdown) or folders of them into the queue."""
    settings = state.settings
    now = utcnow()
    with _progress(enabled=not as_json) as progress:
        task = progress.add_task("reading", total=None) if progress else None
        def tick(n: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=n)
        stories = load_stories(paths, progress=tick, media=media_policy(settings, store=_existing_store(state)))
        if progress is not None and task is not None:
            progress.update(task, description="queueing", total=len(stories), completed=0)
        report = Planner(state.store, settings, templates=operator_templates(settings)).load(
            stories, now=now, dry_run=dry_run, render=render, progress=tick, force=force)
    if as_json:
        _print_json(report.to_dict())
        return
    verb = "Would load" if dry_run else "Loaded"
    out.print(f"{verb} {report.stories} stories: {len(report.added)} new, {len(report.updated)} updated, "
              f"{report.unchanged} unchanged; deliveries: +{report.deliveries_added} "
              f"~{report.deliveries_updated} -{report.deliveries_removed}.")
    for title, items, style in (("updated (not yet posted parts follow the edit)", report.updated, "cyan"),
                                ("new drafts, posted only once approved (`oneyearago approve ID`)",
                                 report.drafts, "cyan"),
                                ("moved to make room on a busy day", report.moved, "cyan"),
                                ("too late to change", report.too_late, "yellow"),
                                ("will be cut to fit", report.cuts, "yellow"),
                                ("already past their anniversary (will be marked missed)", report.past_due,
                                 "yellow"),
                                ("with a URL X links only in part (percent-encode the character named, if "
                                 "the site accepts it, or leave X out of the story's platforms)", report.links,
                                 "yellow")):
        if items:
            out.print(f"[{style}]{len(items)} {title}:[/]")
            for item in items[:20]:
                out.print(f"  {escape(item)}")
            if len(items) > 20:
                out.print(f"  … and {len(items) - 20} more")
    if report.over_quota:
        out.print(f"[yellow]{len(report.over_quota)} days would exceed a quota (the engine spreads their posts "
                  "instead):[/]")
        for line in report.over_quota[:20]:
            out.print(f"  {escape(line)}")
    if report.deferred:
        out.print(f"[dim]{report.deferred} new stories are queued unrendered: each is rendered and checked "
                  "against the platform limits a day before it is due (`load --render` does it now).[/]")
    if dry_run:
        out.print("[dim]Dry run: nothing was written.[/]")


@cli.command()
@click.argument("feeds", metavar="FEED...", nargs=-1, required=True)
@click.option("--since", metavar="DATE", help="Leave out entries dated before this (date or date-time, bot time zone).")
@click.option("--dry-run", is_flag=True, help="Check and report; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def capture(state: State, feeds: tuple[str, ...], since: str | None, dry_run: bool, as_json: bool) -> None:
    """Add each new entry of RSS or Atom feeds (files or http(s) URLs) as a draft story.

    Entries captured before (same link or same id) are skipped, so it suits a daily cron line. Broken
    entries are skipped with a warning on standard error; the exit status is 1 only when a feed cannot
    be read at all. Drafts are posted once approved: `oneyearago approve STORY_ID`.
    """
    from bot.sources.feeds import capture as capture_feeds

    settings = state.settings
    begin = _parse_time(since, "--since", settings.timezone) if since else None
    report = capture_feeds(feeds, Planner(state.store, settings, templates=operator_templates(settings)),
                           now=utcnow(), since=begin, dry_run=dry_run,
                           media=media_policy(settings, store=_existing_store(state)))
    for problem in report.problems:
        err.print(Text.assemble(("warning: ", "yellow"), f"{problem} — skipped"))
    for warning in report.warnings:
        err.print(Text.assemble(("note: ", "cyan"), warning))
    for failure in report.unreadable:
        err.print(Text.assemble(("error: ", "red"), mask(str(failure))))
    if as_json:
        _print_json(report.to_dict())
    else:
        verb = "Would capture" if dry_run else "Captured"
        older = f", {report.older} older than --since" if report.older else ""
        out.print(Text(f"{verb} {len(report.captured)} new drafts from {len(report.feeds)} feed"
                       f"{'s' if len(report.feeds) != 1 else ''} ({report.entries} entries): "
                       f"{len(report.skipped)} already captured{older}, {len(report.problems)} broken (skipped)."))
        for sid in report.captured[:50]:
            out.print(Text(f"  {sid}"))
        if len(report.captured) > 50:
            out.print(f"  … and {len(report.captured) - 50} more")
        load = report.load
        if load is not None and load.past_due:
            out.print(f"[yellow]{len(load.past_due)} already past their anniversary (approving them would only "
                      "mark them missed):[/]")
            for item in load.past_due[:20]:
                out.print(f"  {escape(item)}")
        if report.captured and not dry_run:
            out.print("[dim]Drafts are never posted: review them (`oneyearago status`, `oneyearago preview ID`), "
                      "then `oneyearago approve ID...`.[/]")
        if dry_run:
            out.print("[dim]Dry run: nothing was written.[/]")
    if report.unreadable:
        raise SystemExit(1)


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if enabled and err.is_terminal:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True)
    return _NoProgress()


# ---------------------------------------------------------------------------- agenda / preview


@cli.command()
@click.option("--from", "start", metavar="DATE", help="Start (date or date-time; default now).")
@click.option("--to", "end", metavar="DATE", help="End (date or date-time; default 7 days after the start).")
@click.option("--platform", type=click.Choice(PLATFORMS), help="Only this platform.")
@click.option("--days", is_flag=True, help="Posts per platform per day against the quotas, with X's estimated cost.")
@click.option("--drafts", "only_drafts", is_flag=True,
              help="Only the drafts due in the period (stories not posted until approved).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def agenda(state: State, start: str | None, end: str | None, platform: str | None, days: bool,
           only_drafts: bool, as_json: bool) -> None:
    """The deliveries due in a period, past or future, by due time; --days counts them per day.

    Drafts have no deliveries: they are listed apart, below the table (--drafts lists only them).
    Stories due within ONEYEARAGO_REVEAL_LEAD whose reveal is empty are marked "needs a reveal".
    """
    settings = state.settings
    now = utcnow()
    begin = _parse_time(start, "--from", settings.timezone) if start else now
    finish = _parse_time(end, "--to", settings.timezone, end_of_day=True) if end else begin + dt.timedelta(days=7)
    draft_count, draft_list = ops.drafts(state.store, start=begin, end=finish, limit=None if as_json else 50,
                                         now=now, lead=settings.reveal_lead)
    if only_drafts:
        if as_json:
            _print_json([d.to_dict() for d in draft_list])
            return
        _print_drafts(settings, draft_count, draft_list)
        if not draft_count:
            out.print("No drafts are due in that period.")
        return
    missing = {d.id for d in ops.needs_reveal(state.store, now, settings.reveal_lead,
                                                   followup_delay=settings.followup_delay)}
    planner = Planner(state.store, settings, templates=operator_templates(settings))
    rows = ops.agenda(state.store, start=begin, end=finish, now=now, platform=platform, planner=planner)
    counts = ops.agenda_days(state.store, rows, settings, start=begin, now=now, platform=platform,
                             planner=planner)
    if days:
        if as_json:
            _print_json([c.to_dict() for c in counts])
            return
        table = Table(title=f"Posts per day {settings.local_time(begin)} → {settings.local_time(finish)}",
                      title_justify="left")
        for col in ("day", "platform", "posts", "busiest 15 min", "cost (X)", "over quota"):
            table.add_column(col, justify="right" if col in ("posts", "busiest 15 min", "cost (X)") else "left")
        for c in counts:
            table.add_row(c.day, PLATFORM_NAMES[c.platform], f"{c.posts}/{c.quota_24h or '∞'}",
                          f"{c.busiest_15m}/{c.quota_15m or '∞'}", "" if c.cost_usd is None else f"${c.cost_usd:.2f}",
                          Text("; ".join(c.over), style="red") if c.over else "")
        out.print(table if counts else "Nothing is due in that period.")
        return
    over_days = {(c.day, c.platform) for c in counts if c.over}
    if as_json:
        _print_json([{**ops.delivery_dict(r), "needs_reveal": r.story_id in missing} for r in rows])
        return
    table = Table(title=f"Agenda {settings.local_time(begin)} → {settings.local_time(finish)}", title_justify="left")
    for col in ("due", "platform", "story", "post", "status", "text"):
        table.add_column(col, overflow="fold" if col == "story" else "ellipsis",
                         no_wrap=col != "story")
    for row in rows:
        post = row.kind + (f" {row.part}/{row.parts}" if row.parts > 1 else "")
        day = row.due_at.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        when = settings.local_time(row.due_at) + (" ⚠ over quota" if (day, row.platform) in over_days else "")
        story_cell = Text(row.story_id)
        if row.story_id in missing:
            story_cell.append(" ⚠ needs a reveal", style="yellow")
        table.add_row(when, PLATFORM_NAMES[row.platform], story_cell, post,
                      _status_text(row.status), _snippet(row.text, 48))
    out.print(table if rows else "Nothing is due in that period." if not draft_count
              else "No posts are due in that period.")
    if over_days:
        out.print(f"[yellow]{len(over_days)} platform-days exceed a quota: the engine will spread their posts "
                  "later; see `agenda --days`.[/]")
    shown_missing = sorted({r.story_id for r in rows if r.story_id in missing})
    if shown_missing:
        out.print(Text(f"{len(shown_missing)} of these stories need a reveal (one_year_later is empty; without "
                       f"one no follow-up goes out): {', '.join(shown_missing)}", style="yellow"))
    _print_drafts(settings, draft_count, draft_list)


def _print_drafts(settings: Settings, count: int, items: list[ops.StoryDue]) -> None:
    """The drafts of an agenda's period, apart from its deliveries (they have none)."""
    if not count:
        return
    table = Table(title=f"{count} draft{'s' if count != 1 else ''}, not posted until approved "
                        "(`oneyearago approve ID...`)", title_justify="left")
    for col in ("due", "story", "headline"):
        table.add_column(col, overflow="fold" if col == "story" else "ellipsis", no_wrap=col != "story")
    for item in items:
        story_cell = Text(item.id)
        if item.needs_reveal:
            story_cell.append(" ⚠ needs a reveal", style="yellow")
        table.add_row(settings.local_time(item.due), story_cell, _snippet(item.headline, 48))
    out.print(table)
    if count > len(items):
        out.print(f"  … and {count - len(items)} more (`agenda --drafts --json` lists them all)")


TONE_STYLE = {"ok": "green", "pending": "cyan", "sending": "magenta", "bad": "red", "warn": "yellow", "muted": "dim"}
"""The colour of each :attr:`DeliveryStatus.tone <bot.models.DeliveryStatus.tone>`."""


def _status_text(status: str) -> Text:
    return Text(status, style=TONE_STYLE[S(status).tone] if status in set(S) else "white")


@cli.command()
@click.argument("story_id")
@click.option("--platform", type=click.Choice(PLATFORMS), help="Only this platform.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with each part's payload.")
@pass_state
def preview(state: State, story_id: str, platform: str | None, as_json: bool) -> None:
    """Each part of a story as it will be posted, with its length against its limit."""
    parts = ops.preview(state.store, state.settings, story_id, platform, templates=operator_templates(state.settings))
    image = image_info(state.store, story_id)
    sizes = pictures_info(state.store, [p.sha256 for part in parts for p in part.pictures])
    if as_json:
        _print_json([{**p.to_dict(), "pictures": [{**q.to_dict(), **(sizes.get(q.sha256) or {"stored": False})}
                                                  for q in p.pictures],
                      **({"image": image} if image and p.kind == "root" else {})} for p in parts])
        return
    for part in parts:
        label = f"{PLATFORM_NAMES[part.platform]} · {part.kind}" + (f" {part.part}/{part.parts}" if part.parts > 1 else "")
        checks = " · ".join(f"{c.what} {c.length}/{c.limit} {c.unit}" for c in part.checks)
        body = _shown_text(part.text, part.payload)
        for i, picture in enumerate(part.pictures, start=1):
            body.append(f"\n\n[picture {i}/{len(part.pictures)}: {describe_picture(sizes.get(picture.sha256))}]",
                        style="bold blue")
            body.append(f"\nalt: {picture.alt}", style="blue")
        if part.replies:
            body.append(f"\n\n[who may reply: {reply_gates.applied(part.platform, part.replies)}]", style="dim")
        out.print(Panel(body, title=label, subtitle=checks + (" · cut to fit" if part.cut else ""),
                        title_align="left", subtitle_align="right", width=min(90, out.width)))
    if image and image.get("stored"):
        out.print(f"Image (stored with the queue, on the root): {image['width']}×{image['height']} {image['mime']}, "
                  f"{image['bytes']:,} bytes, sha256 {image['sha256']}")
    elif image:
        out.print(f"[yellow]Image {image['sha256']} is not in the queue: load the story again.[/]")


# ---------------------------------------------------------------------------- run


@cli.command()
@click.option("--once", is_flag=True, help="Deliver everything due now, then exit (for cron/systemd timers).")
@click.option("--now", "now_text", metavar="ISO-DATETIME", help="Run against a simulated clock starting here.")
@click.option("--dry-run", is_flag=True, help="Print what would go out; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the run report as JSON.")
@pass_state
def run(state: State, once: bool, now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Post each delivery at its due time; runs until SIGINT/SIGTERM unless --once."""
    settings = state.settings
    start = _now(now_text)
    offset = start - utcnow()
    clock = (lambda: utcnow() + offset) if now_text else utcnow
    quiet = settings.log_format == "json" and not once  # the run loop writes only log lines (each event logged)
    show = None if as_json or quiet else show_post(settings)
    notifier = Notifier(settings, state.store, clock=clock) if settings.notify and not dry_run else None
    if notifier is not None:
        notifier.starting(start)  # before this run registers: did the last one stop cleanly?
    engine = build_engine(settings, state.store, clock=clock, show=show)
    # On SQLite one process sends at a time (an OS lock beside the database file); a dry run sends nothing.
    lock = None if dry_run else RunLock.for_database(settings.database_url, "run --once" if once else "run")
    if lock is not None and not lock.acquire():
        role, holder = lock.holder()
        if once:  # cron starts overlap: the run in progress delivers what is due
            err.print(f"another run is in progress on this database ({holder}): this one sends nothing; what "
                      "is due goes out with that run or the next", markup=False)
            if as_json:
                _print_json({**RunReport().to_dict(), "in_progress": holder})
            return
        if role == "run":
            raise StoreError(f"another worker ({holder}) already runs on this SQLite database, and SQLite "
                             "supports one worker; to run several, use PostgreSQL "
                             "(ONEYEARAGO_DATABASE_URL=postgresql+psycopg://...)")
        err.print(f"another run is in progress on this database ({holder}); waiting for it to finish",
                  markup=False)
        lock.acquire(wait=True)
    if lock is not None:
        click.get_current_context().call_on_close(lock.release)
    if settings.mode == "live" and not dry_run:  # the accounts' limits, before anything is rendered
        for line in refresh_accounts(state.store, engine.adapters, at=start):
            if quiet:
                log.info("%s", line)
            else:
                err.print(line, markup=False)
    checker = LinkChecker(state.store, settings, clock=clock) if not dry_run else None
    sweep = conversation.ConversationSweep(state.store, settings,
                                           reading_adapters(settings, engine.adapters, clock=clock),
                                           clock=clock, worker=engine.worker) if not dry_run else None
    if once or dry_run:
        report = engine.run_once(start, dry_run=dry_run)
        # The side jobs, each when it is on; a failing one is logged and never fails the posts' run.
        if checker is not None:
            side_job("the link check", lambda: checker.tick(start))
        if sweep is not None:
            side_job("the conversation sweep", lambda: sweep.tick(start))
        if notifier is not None:
            side_job("the notification check", lambda: notifier.tick(start))
        if as_json:
            _print_json(report.to_dict())
            return
        _print_events(report, settings)
        if dry_run:
            count = report.count("would-post")
            out.print(f"Dry run at {settings.local_time(start)}: {count} post{'s' if count != 1 else ''} would go out; "
                      "nothing was changed.")
        else:
            out.print(f"Posted {report.count('posted')} at {settings.local_time(start)}.")
        return

    def banner() -> None:
        text = (f"oneyearago {__version__}: {settings.mode} mode, {', '.join(settings.platforms)}; "
                f"database {mask_url(settings.database_url)}. Ctrl-C stops after the post in flight.")
        if quiet:
            log.info("%s", text)
        else:
            err.print(text, markup=False)

    def serving(server: Any) -> None:
        text = f"Serving {describe_address(server)}."
        if quiet:
            log.info("%s", text)
        else:
            err.print(text, markup=False)

    run_forever(engine, recheck=settings.recheck, on_start=banner, systemd=SystemdNotifier(),
                on_report=None if quiet else lambda r: _print_events(r, settings),
                metrics_addr=settings.metrics_addr, on_metrics=serving, link_checker=checker, notifier=notifier,
                conversations=sweep)
    if quiet:
        log.info("Stopped.")
    else:
        err.print("Stopped.")


@cli.command()
@click.option("--test", "send_test", is_flag=True, help="Send one test message to every configured URL.")
@pass_state
def notify(state: State, send_test: bool) -> None:
    """Tell the operator now what needs them (ONEYEARAGO_NOTIFY), or check the URLs with --test."""
    settings = state.settings
    if not settings.notify:
        raise ConfigError("ONEYEARAGO_NOTIFY is empty: set it to one or more Apprise URLs (json://, mailto://, "
                          "ntfy://, ...) to be told of failures")
    notifier = Notifier(settings, state.store)
    if send_test:
        results = notifier.test()
        for i, (service, ok) in enumerate(results, start=1):
            out.print(Text.assemble(f"{i}. {service} ", ("worked", "green") if ok else ("failed", "red")))
        if not all(ok for _, ok in results):
            raise SystemExit(1)
        return
    told = notifier.check()
    out.print(f"Told {len(told)} new thing{'s' if len(told) != 1 else ''}." if told else "Nothing new to tell.")


# ---------------------------------------------------------------------------- links


def _print_broken_links(broken: list[LinkResult], settings: Settings) -> None:
    """The ``status`` block of broken links: story, link, what it answered, when, the archived copy."""
    if not broken:
        return
    out.print("[b]Broken links[/] (checked before the anniversary; `oneyearago links` lists every check)")
    for r in broken:
        line = Text.assemble(f"  {r.story_id} ", (r.detail, "red"), f" · {r.url} · checked "
                             f"{settings.local_time(r.checked_at)}")
        if r.root_due:
            line.append(f" · goes out {settings.local_time(r.root_due)}")
        out.print(line, soft_wrap=True)
        if r.archive_url:
            out.print(Text(f"    archived copy: {r.archive_url} (`oneyearago links --use-archive {r.story_id}` "
                           "makes it the story's link)"), soft_wrap=True)


@cli.command()
@click.argument("story_ids", metavar="[STORY_ID]...", nargs=-1)
@click.option("--check", "check_now", is_flag=True,
              help="Check now: the stories given, else those due within ONEYEARAGO_LINK_CHECK_AHEAD.")
@click.option("--use-archive", "archive", is_flag=True,
              help="Make the archived copy offered for each given story's broken link its url.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def links(state: State, story_ids: tuple[str, ...], check_now: bool, archive: bool, as_json: bool) -> None:
    """The latest link checks, broken first (the stories given, else those not posted yet).

    Each story's link is checked a few days before its anniversary (ONEYEARAGO_LINK_CHECK); --check
    checks now, whatever that setting says. A broken link's archived copy (ONEYEARAGO_ARCHIVE_LOOKUP_URL)
    replaces it with --use-archive, as a dashboard edit would.
    """
    settings = state.settings
    now = utcnow()
    if archive:
        if not story_ids or check_now:
            raise click.UsageError("--use-archive takes the story ids whose link to replace (and no --check)")
        templates = operator_templates(settings)
        done = {}
        for story_id in story_ids:
            report = use_archive(state.store, settings, story_id, now=now, origin="cli: links --use-archive",
                                 templates=templates)
            done[story_id] = report
            if not as_json:
                late = " (too late for the posts already sent)" if report.too_late else ""
                out.print(Text(f"{story_id}: its link is now the archived copy{late}."))
                for note in report.links:  # X may link such an address only in part
                    out.print(Text(f"  {note}", style="yellow"), soft_wrap=True)
        if as_json:
            _print_json({sid: r.to_dict() for sid, r in done.items()})
        return
    if check_now:
        checker = LinkChecker(state.store, settings)
        found = ([checker.check(sid, now) for sid in story_ids] if story_ids else checker.check_due(now))
        found.sort(key=lambda r: (r.ok, r.story_id))
    else:
        found = results(state.store, story_ids or None, due_after=None if story_ids else now)
    if as_json:
        _print_json([r.to_dict() for r in found])
        return
    if check_now:
        broken = sum(r.broken for r in found)
        out.print(f"Checked {len(found)} link{'s' if len(found) != 1 else ''}: {broken} broken."
                  if found else "No link is due to be checked (--check ID checks any story's link).")
    elif not found:
        out.print("No link checked yet: `oneyearago links --check` checks the links due within "
                  f"{settings.link_check_ahead} now.")
    for r in found:
        tone = "yellow" if r.rate_limited else "green" if r.ok else "red"
        line = Text.assemble((f"{'ok' if r.ok and not r.rate_limited else 'later' if r.ok else 'BROKEN':>6} ", tone),
                             f"{r.story_id} · {r.url} · {r.detail} · checked {settings.local_time(r.checked_at)}")
        out.print(line, soft_wrap=True)
        if r.archive_url:
            out.print(Text(f"       archived copy: {r.archive_url}"), soft_wrap=True)


# ---------------------------------------------------------------------------- replies


@cli.command()
@click.argument("story_id", required=False)
@click.option("--new", "only_new", is_flag=True, help="Only the threads with replies not marked seen yet.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def replies(state: State, story_id: str | None, only_new: bool, as_json: bool) -> None:
    """What followers said under each thread: the count and the latest replies (author, time, text, link,
    hidden), per story and platform, as the conversation sweep last read them (ONEYEARAGO_CONVERSATION_*).
    No STORY_ID: every thread read, the most recently answered first."""
    settings = state.settings
    found = conversation.threads(state.store, story_id, only_new=only_new)
    if as_json:
        _print_json([t.to_dict() for t in found])
        return
    if not found:
        where = f" under {story_id}" if story_id else ""
        out.print(Text(f"No replies read{where} yet: `run` reads the threads posted in the last "
                       f"{settings.conversation_days} days every "
                       f"{human_duration(settings.conversation_every) if settings.conversation_every else '(off)'}"
                       + ("" if settings.conversation_x else "; X only with ONEYEARAGO_CONVERSATION_X=true") + "."),
                  soft_wrap=True)
        return
    for t in found:
        head = Text.assemble((f"{t.story_id} · {t.name}", "bold"),
                             f" · {t.total} repl{'y' if t.total == 1 else 'ies'}")
        if t.new:
            head.append(f" ({t.new} new)", style="cyan")
        head.append(f" · read {settings.local_time(t.swept_at)}" if t.swept_at else " · not read yet")
        out.print(head, soft_wrap=True)
        if t.headline:
            out.print(Text(f"  {t.headline}", style="dim"), soft_wrap=True)
        if t.last_error:
            out.print(Text(f"  last read failed: {mask(t.last_error)}", style="yellow"), soft_wrap=True)
        if t.retry_at and t.retry_at > utcnow():
            out.print(Text(f"  rate limited: read again after {settings.local_time(t.retry_at)}", style="yellow"))
        for reply in t.replies:
            line = Text.assemble("  ", (f"{settings.local_time(reply.at)} ", "dim"), (reply.author, "bold"))
            if reply.hidden:
                line.append(" [hidden]", style="yellow")
            line.append(f": {_snippet(reply.text, 200)}")
            out.print(line, soft_wrap=True)
            if reply.url:
                out.print(Text(f"    {reply.url}", style="dim"), soft_wrap=True)
        if t.total > len(t.replies):
            out.print(Text(f"  … {t.total - len(t.replies)} more on the platform", style="dim"))


# ---------------------------------------------------------------------------- status / skip / retry


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Counts by status, recent problems, paused platforms and what posts next."""
    settings = state.settings
    now = utcnow()
    view = ops.status(state.store, now, reveal_lead=settings.reveal_lead,
                      followup_delay=settings.followup_delay)
    if as_json:
        _print_json({**view.to_dict(), "broken_links": [r.to_dict() for r in broken_links(state.store, now)]})
        return
    waiting = f" ({view.unrendered} rendered a day before they are due)" if view.unrendered else ""
    drafted = f", {view.drafts} draft{'s' if view.drafts != 1 else ''} (not posted until approved)" \
        if view.drafts else ""
    table = Table(title=f"{view.stories} stories{drafted}{waiting}", title_justify="left")
    table.add_column("platform")
    order = [s.value for s in S]
    for name in order:
        table.add_column(name, justify="right")
    for platform in sorted(view.by_platform):
        table.add_row(PLATFORM_NAMES.get(platform, platform),
                      *[str(view.by_platform[platform].get(s, 0) or "") for s in order])
    table.add_row("[b]all[/]", *[f"[b]{view.counts.get(s, 0) or ''}[/]" for s in order])
    out.print(table)
    for p in view.platforms:
        if p.paused_reason:
            out.print(Text.assemble((f"{PLATFORM_NAMES.get(p.name, p.name)} is paused:", "red"),
                                    f" {mask(p.paused_reason)} (fix it, then `oneyearago retry` a delivery "
                                    "to resume)"))
        elif p.retry_at:
            out.print(f"[yellow]{PLATFORM_NAMES.get(p.name, p.name)} is rate limited until "
                      f"{settings.local_time(p.retry_at)}[/]")
    if view.workers:
        out.print("[b]Workers[/]")
        for worker in view.workers:
            seen = settings.local_time(dt.datetime.fromisoformat(worker["heartbeat_at"]))
            holds = ", ".join(worker["holds"]) or "nothing in flight"
            out.print(f"  {worker['id']} ({worker['platforms']}), last heartbeat {seen}: {holds}")
    if view.problems:
        out.print("[b]Needs attention[/]")
        for row in view.problems:
            out.print(Text.assemble(f"  #{row.id} {row.story_id} {PLATFORM_NAMES[row.platform]} {row.kind} ",
                                    _status_text(row.status), f": {mask(row.last_error or '')}"))
    if view.draft_stories:
        out.print(f"[b]Drafts[/] ({view.drafts}; posted only once approved: `oneyearago approve ID...`)")
        for item in view.draft_stories:
            out.print(Text(f"  {settings.local_time(item.due)}  {item.id}"
                           + (" · needs a reveal" if item.needs_reveal else "")))
        if view.drafts > len(view.draft_stories):
            out.print(f"  … and {view.drafts - len(view.draft_stories)} more (`oneyearago agenda --drafts` by period)")
    if view.needs_reveal:
        out.print(f"[b]Needs a reveal[/] (due within {human_duration(settings.reveal_lead)}, one_year_later empty: "
                  "without one no follow-up goes out)")
        for item in view.needs_reveal:
            out.print(Text(f"  {settings.local_time(item.due)}  {item.id}" + (" (draft)" if item.draft else "")))
    if view.upcoming:
        out.print("[b]Next[/]")
        for row in view.upcoming:
            out.print(f"  {settings.local_time(row.due_at)}  {PLATFORM_NAMES[row.platform]} {row.kind} "
                      f"· {row.story_id}")
    elif not view.counts and not view.drafts:
        out.print("The queue is empty: `oneyearago load FILE` adds stories.")
    _print_broken_links(broken_links(state.store, now), settings)


@cli.command()
@click.argument("story_ids", metavar="STORY_ID...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def approve(state: State, story_ids: tuple[str, ...], as_json: bool) -> None:
    """Make draft stories part of the queue: they are posted on their anniversary."""
    report = Planner(state.store, state.settings, templates=operator_templates(state.settings)).approve(
        story_ids, now=utcnow(), origin="cli")
    if as_json:
        _print_json(report.to_dict())
    else:
        if report.approved:
            out.print(Text(f"Approved {len(report.approved)}: {', '.join(report.approved)}."))
        if report.not_drafts:
            out.print(Text(f"Already in the queue (not drafts): {', '.join(report.not_drafts)}."))
        if report.unknown:
            out.print(Text(f"No such story: {', '.join(report.unknown)} (`oneyearago status` lists drafts)."),
                      style="red")
    if report.unknown:
        raise SystemExit(1)


@cli.command()
@click.argument("story_ids", metavar="STORY_ID...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def discard(state: State, story_ids: tuple[str, ...], as_json: bool) -> None:
    """Delete unwanted drafts; `capture` never captures their feed entries again. Only drafts: a story
    in the queue is stopped with `oneyearago skip STORY_ID` instead. Exit status 1 if any was refused."""
    report = Planner(state.store, state.settings).discard(story_ids, now=utcnow(), origin="cli")
    if as_json:
        _print_json(report.to_dict())
    else:
        if report.discarded:
            out.print(Text(f"Discarded {len(report.discarded)}: {', '.join(report.discarded)} (capture will not "
                           "take their feed entries again)."))
        if report.not_drafts:
            out.print(Text(f"Not drafts, left in the queue: {', '.join(report.not_drafts)}. Only a draft is "
                           "discarded; `oneyearago skip STORY_ID` stops a queued story's posts."), style="red")
        if report.unknown:
            out.print(Text(f"No such story: {', '.join(report.unknown)} (`oneyearago status` lists drafts)."),
                      style="red")
    if report.not_drafts or report.unknown:
        raise SystemExit(1)


@cli.command("export")
@click.argument("story_ids", metavar="[STORY_ID]...", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="yaml, json, jsonl, csv or md (Markdown, one story a file). Default: from --out's ending, else yaml.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Write this file (replaced atomically) instead of standard output; with --format md, a "
                   "folder to write one file per story into.")
@click.option("--from", "from_file", type=click.Path(path_type=Path), metavar="FILE",
              help="The stories this story file holds, as the queue holds them (to keep dashboard edits in it: "
                   "--from F --out F); one the queue lacks is written as the file holds it.")
@click.option("--json", "as_json", is_flag=True, help="With --out: print what was written as JSON.")
@pass_state
def export_command(state: State, story_ids: tuple[str, ...], fmt: str | None, out_path: Path | None,
                   from_file: Path | None, as_json: bool) -> None:
    """Write stories back as a story file that `load` reads to the same queue (a round trip changes
    nothing), so that edits made in the dashboard can be kept in version control. No STORY_ID: every
    story, in load order. Drafts are written with `draft: true`, so they stay drafts in a new queue."""
    if as_json and out_path is None:
        raise click.UsageError("--json needs --out (without it the stories themselves go to standard output)")
    own: dict[str, Story] = {}
    if from_file is not None:
        if story_ids:
            raise click.UsageError("give story ids or --from FILE, not both")
        ids, own = _file_versions(state, from_file)
        story_ids = tuple(ids)
    stdout = sys.stdout
    stream: Any = stdout
    if out_path is None and hasattr(stdout, "buffer"):  # UTF-8 and \n line ends whatever the terminal's settings
        stdout.flush()
        stream = io.TextIOWrapper(stdout.buffer, encoding="utf-8", newline="\n", write_through=True)
    try:
        report = export_stories(_existing_store(state), list(story_ids) or None, fmt=fmt,
                                out=out_path, stdout=stream, media_dir=state.settings.media_dir, own=own)
        stream.flush()
    except BrokenPipeError:  # the reader stopped early (`export | head`): stop quietly, as other tools do
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        raise SystemExit(1) from None
    except OSError as exc:
        raise ExportError(f"cannot write standard output: {exc.strerror or exc}",
                          "check where standard output goes, and that its disk has room") from exc
    finally:
        if stream is not stdout:  # leave sys.stdout open and usable
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
            stream.detach()
    for warning in report.warnings:
        err.print(Text(f"warning: {warning}", style="yellow"))
    if report.warned > len(report.warnings):
        err.print(Text(f"warning: … and {report.warned - len(report.warnings)} more", style="yellow"))
    if report.own and not as_json:
        shown = ", ".join(report.own[:20]) + (f" and {len(report.own) - 20} more" if len(report.own) > 20 else "")
        err.print(Text(f"Not in the queue yet, written as {from_file} holds them: {shown} "
                       f"(`oneyearago load {shlex.quote(str(from_file))}` adds them).", style="yellow"))
    if as_json:
        _print_json(report.to_dict())
    elif out_path is not None:
        where = str(out_path) if report.file_count <= 1 else f"{report.file_count} files in {out_path}"
        out.print(Text(f"Exported {report.stories} stor{'y' if report.stories == 1 else 'ies'} to {where}."))


def _file_versions(state: State, file: Path) -> tuple[list[str], dict[str, Story]]:
    """The ids of the stories the story file ``file`` holds now, in its order, and the file's own version
    of those the queue lacks: what ``export --from FILE`` writes (the queue's version of the others, whose
    pictures the queue holds: they are not read again).

    Raises:
        ExportError: the file cannot be read as stories (its problems are printed first), or holds none.
    """
    from bot.sources.export import unknown_ids
    from bot.sources.stories import file_story_ids

    store = _existing_store(state)
    try:
        ids, stories = file_story_ids(file, media=media_policy(state.settings, store=store),
                                      validate=lambda ids: unknown_ids(store, ids) if store is not None else ids)
    except StoryError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        raise ExportError(f"cannot read the stories of {file}: {exc}",
                          "give the story file as it was loaded, and fix what is listed above; nothing was "
                          "written") from None
    if not ids:
        raise ExportError(f"{file} holds no story", "give the story file the stories were loaded from")
    return ids, {story.id: story for story in stories}


@cli.command()
@click.argument("story_id")
@pass_state
def skip(state: State, story_id: str) -> None:
    """Never post a story (its deliveries not yet sent are marked skipped); STORY_ID is a story id."""
    rows = ops.skip(state.store, story_id, utcnow(), planner=Planner(state.store, state.settings,
                                                                     templates=operator_templates(state.settings)))
    out.print(Text(f"Skipped {len(rows)} deliveries of {story_id}." if rows
                   else f"Nothing left to skip for {story_id}: every delivery is already sent or settled."))


@cli.command()
@click.argument("target", metavar="STORY_ID|#DELIVERY", required=False)
@click.option("--delivery", type=click.IntRange(min=1), metavar="N", help="Retry delivery #N (as `status` shows it).")
@click.option("--platform", type=click.Choice(PLATFORMS), help="Only this platform's deliveries.")
@pass_state
def retry(state: State, target: str | None, delivery: int | None, platform: str | None) -> None:
    """Queue failed, missed, unconfirmed or skipped deliveries again.

    A bare argument is always a story id (every delivery of the story); a delivery is written with a
    # (quote it in a shell: retry '#12') or given as --delivery 12.
    """
    if (target is None) == (delivery is None):
        raise click.UsageError("give a story id, or a delivery as '#12' or --delivery 12 (one of them)")
    rows = ops.retry(state.store, target if delivery is None else f"#{delivery}", utcnow(), state.settings, platform)  # type: ignore[arg-type]
    for row in rows:
        out.print(Text(f"Queued again: #{row.id} {row.story_id} {PLATFORM_NAMES[row.platform]} {row.kind}"
                       f"{f' {row.part}/{row.parts}' if row.parts > 1 else ''}, due "
                       f"{state.settings.local_time(row.due_at)}"))


# ---------------------------------------------------------------------------- doctor


@cli.command()
@pass_state
def doctor(state: State) -> None:
    """Check the settings, the database and each platform, without posting."""
    settings = state.settings
    table = Table(title="Settings", title_justify="left")
    for col in ("variable", "value", "from"):
        table.add_column(col)
    for env, shown, source in settings.describe():
        table.add_row(env, Text(mask(shown)), Text(source))
    out.print(table)
    problems = 0

    def check(ok: bool, text: str) -> None:
        out.print(Text.assemble(("✓", "green") if ok else ("✗", "red"), " ", mask(text)), soft_wrap=True)

    try:
        store = state.store
        view = ops.status(store, utcnow())
        check(True, f"database {mask_url(settings.database_url)} (schema {store.revision()}): "
                    f"{view.stories} stories, {sum(view.counts.values())} deliveries")
        for p in view.platforms:
            if p.paused_reason:
                problems += 1
                check(False, f"{PLATFORM_NAMES.get(p.name, p.name)} is paused: {p.paused_reason}")
    except BotError as exc:
        problems += 1
        check(False, f"database: {exc}")
    if settings.mode == "sandbox":
        for name, adapter in build_adapters(settings).items():
            check(True, f"{PLATFORM_NAMES[name]} (sandbox): {adapter.whoami()}")
    else:
        for name in settings.platforms:
            missing = missing_settings(settings, name)
            if missing:
                problems += 1
                check(False, f"{PLATFORM_NAMES[name]} (live): missing {', '.join(missing)} "
                             "(see .env.example for where to get each)")
                continue
            try:
                adapter = live_adapter(settings, name)
                who = adapter.whoami()
                check(True, f"{PLATFORM_NAMES[name]} (live): posts as {who}")
                if isinstance(adapter, AnnouncesLimits):
                    for line in refresh_accounts(state.store, {name: adapter}, at=utcnow()):
                        check(True, f"{PLATFORM_NAMES[name]} limits: {line.split('; ', 1)[-1]}")
                for mark in automation_marks({name: adapter}):
                    _mark_line(mark)
            except BotError as exc:
                problems += 1
                check(False, f"{PLATFORM_NAMES[name]} (live): {exc}")
    if problems:
        raise BotError(f"doctor found {problems} problem{'s' if problems != 1 else ''}")
    out.print("All good.")


def _mark_line(mark: Mark) -> None:
    """One platform's automated-account mark: ✓ marked, ! not marked (or cannot tell), ✗ could not read."""
    sign = ("✗", "red") if mark.error else ("✓", "green") if mark.marked else ("!", "yellow")
    name = PLATFORM_NAMES.get(mark.platform, mark.platform)
    out.print(Text.assemble(sign, " ", mask(f"{name} automated-account mark: {mark.line.split(': ', 1)[1]}")),
              soft_wrap=True)


@cli.command()
@click.option("--mark-bot", is_flag=True, help="Mark each account as automated where the platform's API allows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def accounts(state: State, mark_bot: bool, as_json: bool) -> None:
    """Whether each live account is marked as automated (Mastodon's bot flag, Bluesky's 'bot' self-label;
    X's label is set in the X settings, Reddit has none); --mark-bot sets it where the API allows."""
    settings = state.settings
    if settings.mode != "live":
        raise BotError("accounts works on the live accounts: run it with ONEYEARAGO_MODE=live (or --mode live)")
    adapters: dict[str, Any] = {}
    marks: list[Mark] = []
    for name in settings.platforms:
        try:
            adapters[name] = live_adapter(settings, name)
        except BotError as exc:
            marks.append(Mark(name, None, "", error=str(exc)))
    marks += automation_marks(adapters, mark=mark_bot)
    marks.sort(key=lambda m: settings.platforms.index(m.platform))
    if as_json:
        _print_json([{**m.to_dict(), "error": mask(m.error)} for m in marks])
    else:
        for mark in marks:
            _mark_line(mark)
    failed = [m.platform for m in marks if m.error or (mark_bot and m.marked is False)]
    if failed:
        raise BotError(f"accounts: {', '.join(failed)} could not be {'marked' if mark_bot else 'read'}")


# ---------------------------------------------------------------------------- health


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def health(state: State, as_json: bool) -> None:
    """Whether the bot can run: exit 0 healthy and ready, 1 not ready (a platform paused, the schema
    behind), 2 the database unreachable. Changes nothing (for cron and monitoring)."""
    settings = state.settings
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        result = Health(False, error=f"database {path} does not exist (ONEYEARAGO_DATABASE_URL)")
    else:
        try:
            store = Store(settings.database_url, migrate=False)
        except BotError as exc:
            result = Health(False, error=mask(str(exc)))
        else:
            try:
                result = check_health(store, mask)
            finally:
                store.dispose()
    code = 0 if result.ready else 1 if result.healthy else 2
    if as_json:
        _print_json({"healthy": result.healthy, "ready": result.ready, "database": result.database,
                     "revision": result.revision, "head": result.head, "paused": sorted(result.paused),
                     "reasons": result.reasons, "exit_code": code})
    elif code == 0:
        out.print(f"healthy and ready: database {mask_url(settings.database_url)} at revision {result.revision}, "
                  "no platform paused", markup=False, soft_wrap=True)
    else:
        out.print("healthy, not ready:" if code == 1 else "unhealthy:", markup=False)
        for reason in result.reasons:
            out.print(f"  {mask(reason)}", markup=False, soft_wrap=True)
    sys.exit(code)


# ---------------------------------------------------------------------------- demo


@cli.command()
@click.option("--dir", "folder", default="oneyearago-demo", show_default=True, type=click.Path(path_type=Path),
              help="Where the demo keeps its database and transcript.")
@click.option("--keep", is_flag=True, help="Keep an existing demo database instead of starting fresh.")
@click.option("--quiet", is_flag=True, help="Only print the summary.")
@pass_state
def demo(state: State, folder: Path, keep: bool, quiet: bool) -> None:
    """Load the bundled sample queue and replay it in sandbox mode on a fast-forwarded clock.

    The folder must be new, empty, or hold only what an earlier demo wrote there: the demo removes
    its own files (to start fresh) and never anything else.
    """
    _check_demo_folder(folder)
    if not keep:
        for item in folder.iterdir() if folder.is_dir() else ():
            item.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo.db"
    options = {**state.options, "database_url": f"sqlite:///{db.resolve()}", "mode": "sandbox",
               "transcript": str((folder / "transcript.jsonl").resolve())}
    settings = load_settings(options, env_file=state.env_file)
    store = Store(settings.database_url)
    samples = resources.files("bot.sources") / "samples"
    with resources.as_file(samples) as sample_dir:
        stories = load_stories([sample_dir])
    report = Planner(store, settings).load(stories, now=utcnow())
    out.print(f"Loaded {report.stories} sample stories into {db} ({report.deliveries_added} deliveries). "
              "Replaying their anniversaries on a simulated clock:")
    clock_now = {"t": utcnow()}
    engine = build_engine(settings, store, clock=lambda: clock_now["t"],
                          show=None if quiet else show_post(settings))
    posted = replay(engine, clock_now)
    transcript = settings.transcript_path
    out.print(f"Posted {posted} posts across {', '.join(settings.platforms)}; transcript: {transcript}")
    out.print(f"Try: oneyearago --db sqlite:///{db} status   ·   oneyearago --db sqlite:///{db} agenda "
              "--from 2025-01-01 --to 2027-12-31")


DEMO_FILES = ("demo.db", "transcript.jsonl")
"""What the demo writes in its folder; SQLite's companions (``demo.db-wal``, ``-shm``, ``-journal``, a
``.lock``) and the transcript's count as the demo's too."""


def _is_demo_file(item: Path) -> bool:
    return (item.is_file() or item.is_symlink()) and any(
        item.name == name or item.name.startswith((name + "-", name + ".")) for name in DEMO_FILES)


def _check_demo_folder(folder: Path) -> None:
    """Refuse a folder the demo could not start fresh in without deleting something it did not write."""
    if folder.exists() and not folder.is_dir():
        raise Refused(f"--dir {folder} is a file, not a folder: choose a new or empty folder for the demo; "
                      "nothing was touched")
    if not folder.is_dir():
        return
    try:
        foreign = sorted(item.name for item in folder.iterdir() if not _is_demo_file(item))
    except OSError as exc:
        raise Refused(f"--dir {folder} cannot be read ({exc.strerror}): choose another folder; nothing was "
                      "touched") from None
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3]) + (f" and {len(foreign) - 3} more"
                                                                 if len(foreign) > 3 else "")
        other = next((name for name in ("oneyearago-demo", "oneyearago-demo-2", "oneyearago-demo-3")
                      if Path(name).resolve() != folder.resolve() and not Path(name).exists()), "NEW_FOLDER")
        raise Refused(f"--dir {folder} holds files the demo did not create ({shown}): the demo only writes "
                      f"(and removes) {' and '.join(DEMO_FILES)}; choose a new or empty folder, e.g. "
                      f"--dir {other}; nothing was touched")


def replay(engine: Engine, clock: dict[str, dt.datetime], stop: threading.Event | None = None) -> int:
    """Fast-forward through the queue: jump the clock to each due time and deliver."""
    posted = 0
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    while stop is None or not stop.is_set():
        wake = engine.next_wake(start)
        if wake is None:
            break
        clock["t"] = wake
        report = engine.run_once(wake)
        posted += report.count("posted")
        if not report.events:
            break
    return posted


# ---------------------------------------------------------------------------- web


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback needs ONEYEARAGO_WEB_TOKEN.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@pass_state
def web(state: State, host: str, port: int) -> None:
    """Serve the operator dashboard: calendar, stories, status, upload (Ctrl-C stops it)."""
    from bot.web import serve

    serve(state.settings, lambda: state.store, host=host, port=port,
          announce=lambda line: err.print(line, markup=False, soft_wrap=True))


# ---------------------------------------------------------------------------- entry point


def _fail(message: str, code: int) -> NoReturn:
    err.print("[red]error:[/] ", end="")
    err.print(mask(message), soft_wrap=True, markup=False)
    sys.exit(code)


def _debug_traceback() -> None:
    import traceback

    err.print(mask(traceback.format_exc()), markup=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: one clear line on stderr for any error, a traceback only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    MASKER[0], _STATE[0] = Masker(), None
    try:
        cli.main(args=args, prog_name="oneyearago", standalone_mode=False)
    except StoryError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        _fail(f"{exc}; nothing was loaded", 2)
    except BotError as exc:
        if debug:
            _debug_traceback()
        _fail(str(exc), getattr(exc, "exit_code", 1))
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)  # it may quote what was typed: escape its control characters
        sys.stderr.write(limits.escape_controls(shown.getvalue()))
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except SQLAlchemyError as exc:  # one line (a full disk, a read-only folder), never the SQL and its values
        if debug:
            _debug_traceback()
        state = _STATE[0]
        url = state._settings.database_url if state is not None and state._settings is not None else ""
        _fail(explain_db_error(exc, url), 1)
    except Exception as exc:
        if debug:
            _debug_traceback()
        _fail(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1)
