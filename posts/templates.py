"""Operator templates: Jinja2 files that override the built-in look per platform and kind.

A template folder holds any of ``x_root.j2``, ``x_followup.j2``, ``bluesky_root.j2``,
``bluesky_followup.j2``, ``reddit_root.j2`` (the self text), ``reddit_followup.j2`` (the
comment), ``mastodon_root.j2`` and ``mastodon_followup.j2`` (the reply's text; its content warning
is always the warning line). They render in a sandboxed environment with strict undefined variables, and every
one is compiled and test-rendered when the folder is opened (by :func:`bot.sources.templates.load_templates`,
which reads the folder), so a broken template is reported (with its file and line) at ``load`` or
``preview`` time, never while posting. This module holds what needs no file: the environment, the
checks and the rendering.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from posts.errors import TemplateError
from posts.render import context, escape_markdown, spoiler_markdown
from posts.story import Story

NAMES = tuple(f"{platform}_{kind}.j2" for platform in ("x", "bluesky", "reddit", "mastodon")
              for kind in ("root", "followup"))
"""The template files a folder may hold."""

VARIABLES = ("stamp", "date", "meta", "category", "source", "headline", "summary", "body", "url", "hashtags",
             "tags", "reveal", "spoiler_line", "story_id")
"""What every template can use (see :func:`posts.render.context`)."""

_SAMPLE = Story(id="template-check", date=dt.date(2025, 1, 12), headline="Sample headline",
                summary="Sample summary.", body="Sample body.", category="research", source="Example",
                url="https://example.com/story", one_year_later="Sample reveal.", tags=("sample",))


def environment(loader: jinja2.BaseLoader) -> ImmutableSandboxedEnvironment:
    """The sandboxed environment templates compile in, taking their sources from ``loader``."""
    env = ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined,
                                        autoescape=False, keep_trailing_newline=False, trim_blocks=True,
                                        lstrip_blocks=True)
    env.filters["spoiler"] = spoiler_markdown
    env.filters["md_escape"] = escape_markdown
    return env


def _location(exc: BaseException, path: Path) -> str:
    """``FILE:LINE`` of the template line a runtime error came from (Jinja maps its frames back)."""
    line = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path}:{line}" if line else str(path)


class Templates:
    """The templates of one folder, compiled and checked."""

    def __init__(self, folder: Path, templates: Mapping[str, jinja2.Template], fingerprint: str):
        self.folder = folder
        self._templates = dict(templates)
        self._fingerprint = fingerprint

    def check(self) -> Templates:
        """Test-render every template with a sample story; raises :class:`TemplateError` for the first that fails."""
        for name in self._templates:
            platform, kind = name[:-3].split("_")
            self.get(platform, kind)(context(_SAMPLE))  # type: ignore[misc]
        return self

    def get(self, platform: str, kind: str) -> Callable[[Mapping[str, Any]], str] | None:
        """The renderer for ``platform`` and ``kind``, or ``None`` to use the built-in look."""
        name = f"{platform}_{kind}.j2"
        template = self._templates.get(name)
        if template is None:
            return None
        path = self.folder / name

        def render(ctx: Mapping[str, Any]) -> str:
            try:
                return template.render(**ctx).strip()
            except jinja2.TemplateError as exc:
                raise TemplateError(f"{_location(exc, path)}: {exc}") from None

        return render

    def fingerprint(self) -> str:
        return self._fingerprint
