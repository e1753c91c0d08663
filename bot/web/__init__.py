"""The operator dashboard (``oneyearago web``): calendar, stories, status and upload in a browser.

A view over the same store, operations (:mod:`bot.ops`, :mod:`bot.planner`, :mod:`bot.quotas`) and
rendering (:mod:`posts.render`) as the CLI; never a second implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.web.security import check_bind, is_loopback

__all__ = ["check_bind", "create_app", "is_loopback", "serve"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`bot.web.app.create_app`."""
    from bot.web.app import create_app as factory

    return factory(*args, **kwargs)


def serve(settings: Any, open_store: Callable[[], Any], *, host: str = "127.0.0.1", port: int = 8080,
          announce: Callable[[str], None] = print) -> None:
    """Check the address against the token, then serve the dashboard until Ctrl-C.

    Raises:
        BotError: a non-loopback ``host`` without an operator token (before anything is opened).
    """
    import uvicorn

    token = str(getattr(settings, "web_token", "") or "")
    check_bind(host, token)
    app = create_app(settings, open_store(), token=token, public=not is_loopback(host))
    shown = f"[{host}]" if ":" in host else host
    announce(f"oneyearago dashboard on http://{shown}:{port}/ ({settings.mode} mode, times in {settings.timezone}"
             f"{'; the operator token is required' if token else ''}). Ctrl-C stops it.")
    level = str(getattr(settings, "log_level", "WARNING")).lower()
    uvicorn.run(app, host=host, port=port, log_level=level, access_log=level == "debug",
                server_header=False, proxy_headers=False)

