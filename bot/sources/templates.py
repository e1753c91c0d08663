"""Open an operator's template folder: read, compile and test-render every template in it.

The templates themselves (the sandboxed environment, the checks, the rendering) are
:mod:`posts.templates`; this module is the part that reads the folder.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

import jinja2

from posts.errors import TemplateError
from posts.templates import NAMES, Templates, environment


def load_templates(folder: Path | str) -> Templates:
    """Compile and test-render every template in ``folder``.

    Raises:
        TemplateError: naming the file and line, for an unknown file name, a syntax error or
            an error while rendering (such as an unknown variable).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise TemplateError(f"ONEYEARAGO_TEMPLATES: {folder} is not a folder")
    env = environment(jinja2.FileSystemLoader(str(folder)))
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
    return Templates(folder, compiled, digest.hexdigest()).check()
