"""Who may reply to a story's thread, and what each platform can be told of it: pure, no I/O.

The operator picks one of :data:`REPLIES` (``ONEYEARAGO_REPLIES``, per platform, per story). It is applied
to the root post as far as each platform allows: X's ``reply_settings``, a Bluesky threadgate record created
with the root. Mastodon has no per-post reply control (its visibility decides who can *see* a post, which is
not what a news post should change) and Reddit has none either: for those the setting is shown as not applied.
The thread's author may always reply under its own gate, so the bot's own follow-up is never blocked.
"""

from __future__ import annotations

from typing import Any

REPLIES: tuple[str, ...] = ("everyone", "followers", "mentioned", "nobody")
"""Who may reply: anyone, the account's followers, the accounts the root mentions, or no one but the bot."""

DEFAULT = "everyone"

X_REPLY_SETTINGS: dict[str, str | None] = {
    "everyone": None,  # the field left out: X's default, everyone may reply
    "followers": "following",  # "people the author follows" is the closest X has; see below
    "mentioned": "mentionedUsers",
    "nobody": "mentionedUsers",  # a root that mentions no one: only the author may reply
}
"""The create-tweet ``reply_settings`` of each choice (``None``: the field is left out).

X offers ``following`` (accounts the author follows), ``mentionedUsers``, ``subscribers`` and ``verified``;
it has no "the author's followers" setting, so ``followers`` becomes ``following``, the closest it has.
"""

THREADGATE = "app.bsky.feed.threadgate"
_RULES: dict[str, list[dict[str, str]] | None] = {
    "everyone": None,  # no threadgate record at all
    "followers": [{"$type": "app.bsky.feed.threadgate#followerRule"}],
    "mentioned": [{"$type": "app.bsky.feed.threadgate#mentionRule"}],
    "nobody": [],  # an empty allow list: no one (but the author) may reply
}

NOT_APPLIED: dict[str, str] = {
    "mastodon": "Mastodon has no per-post reply control (visibility limits who can see a post, not who "
                "replies), so nothing is applied",
    "reddit": "Reddit has no per-post reply control, so nothing is applied",
}
"""Why the setting changes nothing on these platforms: what preview and the README say."""


def parse(value: str, what: str) -> str:
    """``value`` as one of :data:`REPLIES` (case and surrounding space ignored), or a ValueError naming ``what``."""
    text = str(value).strip().lower()
    if text not in REPLIES:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(REPLIES)}")
    return text


def x_reply_settings(replies: str) -> str | None:
    """The ``reply_settings`` field of an X root for ``replies``; ``None``: left out (everyone)."""
    return X_REPLY_SETTINGS[replies]


def bluesky_threadgate(replies: str, created_at: str) -> dict[str, Any] | None:
    """The ``app.bsky.feed.threadgate`` record of a root for ``replies``, without its ``post`` (the root's
    ``at://`` URI, known once the record key is: the adapter sets it); ``None`` for everyone (no gate)."""
    rules = _RULES[replies]
    if rules is None:
        return None
    return {"$type": THREADGATE, "allow": [dict(rule) for rule in rules], "createdAt": created_at}


def applied(platform: str, replies: str) -> str:
    """One line that says what ``replies`` does on ``platform`` (preview shows it)."""
    if platform in NOT_APPLIED:
        return f"{replies}: not applied. {NOT_APPLIED[platform]}"
    if replies == "everyone":
        return "everyone: nothing to apply (the platform's default)"
    if platform == "x":
        return f"{replies}: reply_settings {X_REPLY_SETTINGS[replies]!r} on the root" + (
            " (anyone the root @mentions may still reply)" if replies == "nobody" else "")
    if platform == "bluesky":
        rules = _RULES[replies] or []
        allow = ", ".join(r["$type"].rsplit("#", 1)[1] for r in rules) or "no one"
        note = (" Bluesky's mention rule admits the accounts the root mentions by a mention facet, and the bot writes "
                "none (an @handle in the text stays text): no one else may reply, as with nobody."
                if replies == "mentioned" else "")
        return (f"{replies}: a threadgate created with the root under its record key (allow: {allow}; its post: the "
                "root's at:// URI, set as it is sent); the bot's own follow-up is allowed." + note)
    return f"{replies}: not applied"
