"""Secrets and masking: the one helper every output, log, stored error and page goes through.

It sits in the lowest layer so that the adapters mask their own credentials without reaching up
into the settings, and the bot masks everything else the same way.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Iterable

MASK = "********"
"""What a secret is shown as, wherever it would appear."""
MIN_SECRET = 4
"""Shorter values are not masked (they would blank out ordinary words); no real secret is this short."""


class Secret(str):
    """A string that never shows itself in ``repr``, logs or tracebacks."""

    def __repr__(self) -> str:
        return f"Secret('{MASK}')" if self else "Secret('')"

    def masked(self) -> str:
        return MASK if self else "(not set)"


def secret_forms(secret: str) -> set[str]:
    """Every form in which ``secret`` may come back from a server, a log line or a stored error:
    as is, JSON-escaped (ASCII or not, with ``\\/``, and escaped twice), URL-encoded (``quote`` with
    and without ``/``, ``quote_plus``, lowercase hex; of the secret and of its JSON-escaped forms),
    ``repr``-escaped and HTML-escaped."""
    forms = {secret}
    plain = {secret}
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        plain |= {escaped, escaped.replace("/", "\\/")}
        forms |= {escaped, escaped.replace("/", "\\/"), json.dumps(escaped, ensure_ascii=ascii_only)[1:-1]}
    for text in plain:  # the secret, or a JSON body holding it, URL-encoded
        for encoded in (urllib.parse.quote(text, safe=""), urllib.parse.quote(text), urllib.parse.quote_plus(text)):
            forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    forms |= {repr(secret)[1:-1], ascii(secret)[1:-1], html.escape(secret), html.escape(secret, quote=False)}
    return {form for form in forms if len(form) >= MIN_SECRET}


_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{0,40}://[^\s:/@?#'\"]{0,256}:)"
                           r"(?P<secret>[^\s'\"]{0,512})@")
_QUERY_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd)\s{0,8}=\s{0,8})(?P<secret>[^&\s#'\",;]{1,512})",
                             re.IGNORECASE)
"""Both bounded, so that masking a long hostile text stays linear."""


def mask_url(text: str) -> str:
    """``text`` with the password of every URL (``scheme://user:password@host``) and every
    ``password=`` parameter (a URL's query, a libpq connection string) replaced by ``********``."""
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    if "ass" in text.lower():
        text = _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return text


class Masker:
    """Masks secrets in text: each secret in every form :func:`secret_forms` gives (worked out once,
    when the secret is added) and the password of any URL. The one helper every output, log, stored
    error and page goes through."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._forms: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> Masker:
        forms = set(self._forms)
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                forms |= secret_forms(str(secret))
        self._forms = sorted(forms, key=lambda f: (-len(f), f))  # longest first: no form is cut in two
        return self

    def __call__(self, text: str) -> str:
        if not text:
            return text
        text = str(text)
        for form in self._forms:  # a substring search per form: linear in the text
            if form in text:
                text = text.replace(form, MASK)
        return mask_url(text)
