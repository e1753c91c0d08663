"""Reading snudown's HTML as a reader sees it, for the Reddit tests (recorded and live)."""

from __future__ import annotations

import html.parser


class Shown(html.parser.HTMLParser):
    """What a reader sees: the text outside and inside spoilers, and the links."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.outside: list[str] = []
        self.spoilers: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, shown text)
        self.block_spoilers = 0
        self._stack: list[bool] = []
        self._link: list[str] | None = None
        self._href = ""
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        spoiler = "md-spoiler-text" in (attrs.get("class") or "")
        if tag in ("br", "hr"):
            self.handle_data(" ")
            return
        if spoiler:
            self.block_spoilers += tag != "span"
            self.spoilers.append("")
        self._stack.append(spoiler)
        if tag == "a":
            self._link, self._href = [], attrs.get("href") or ""

    def handle_endtag(self, tag):
        if tag in ("br", "hr"):
            return
        if self._stack:
            self._stack.pop()
        if tag == "a" and self._link is not None:
            self.links.append((self._href, "".join(self._link)))
            self._link = None

    def handle_data(self, data):
        if self._link is not None:
            self._link.append(data)
        if any(self._stack):
            self.spoilers[-1] += data
        else:
            self.outside.append(data)

    @property
    def outside_text(self) -> str:
        return words("".join(self.outside))


def words(text: str) -> str:
    """Text with its white space collapsed, as a browser shows it."""
    return " ".join(text.split())
