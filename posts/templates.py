"""Operator templates: Jinja2 files that override the built-in look per platform and kind.

A template folder holds any of ``x_root.j2``, ``x_followup.j2``, ``bluesky_root.j2``,
``bluesky_followup.j2``, ``reddit_root.j2`` (the self text) and ``reddit_followup.j2`` (the
comment). They render in a sandboxed environment with strict undefined variables, and every
one is compiled and test-rendered when the folder is opened, so a broken template is reported
(with its file and line) at ``load`` or ``preview`` time, never while posting.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from posts.errors import TemplateError
from posts.render import context, escape_markdown, spoiler_markdown
from posts.story import Story

NAMES = tuple(f"{platform}_{kind}.j2" for platform in ("x", "bluesky", "reddit") for kind in ("root", "followup"))
"""The template files a folder may hold."""

VARIABLES = ("stamp", "date", "meta", "category", "source", "headline", "summary", "body", "url", "hashtags",
             "tags", "reveal", "spoiler_line", "story_id")
"""What every template can use (see :func:`posts.render.context`)."""

_SAMPLE = Story(id="template-check", date=dt.date(2025, 1, 12), headline="Sample headline",
                summary="Sample summary.", body="Sample body.", category="research", source="Example",
                url="https://example.com/story", one_year_later="Sample reveal.", tags=("sample",))


def _environment(folder: Path) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined,
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

    @classmethod
    def from_directory(cls, folder: Path | str) -> Templates:
        """Compile and test-render every template in ``folder``.

        Raises:
            TemplateError: naming the file and line, for an unknown file name, a syntax error or
                an error while rendering (such as an unknown variable).
        """
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise TemplateError(f"ONEYEARAGO_TEMPLATES: {folder} is not a folder")
        env = _environment(folder)
        compiled: dict[str, jinja2.Template] = {}
        digest = hashlib.sha256()
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.name not in NAMES:
                close = difflib.get_close_matches(path.name, NAMES, n=1)
                hint = f"did you mean {close[0]}?" if close else f"template files are {', '.join(NAMES)}"
                raise TemplateError(f"{path}: not a template this bot uses ({hint})")
            source = path.read_text(encoding="utf-8")
            digest.update(path.name.encode() + b"\0" + source.encode() + b"\0")
            try:
                compiled[path.name] = env.get_template(path.name)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{path}:{exc.lineno}: {exc.message}") from None
        templates = cls(folder, compiled, digest.hexdigest())
        for name in compiled:
            platform, kind = name[:-3].split("_")
            templates.get(platform, kind)(context(_SAMPLE))  # type: ignore[misc]
        return templates

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
