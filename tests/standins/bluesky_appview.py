"""Provide AppViewStandin: ``app.bsky.feed.getPostThread`` for the local PDS, which serves no ``app.bsky`` views.

The reference PDS answers ``app.bsky.*`` queries by proxying them to an AppView; the local one has none
(``400 InvalidRequest: No service configured for app.bsky.feed.getPostThread``). This stand-in sits in front
of the PDS like :class:`~tests.standins.bluesky_proxy.FaultProxy` (it is one: faults work the same), forwards
every other request unchanged, and answers ``getPostThread`` itself, built from the real records of every
repository on the PDS (``com.atproto.sync.listRepos``, ``com.atproto.repo.listRecords``, ``describeRepo``):
posts, threadgates, follows and list items.

The view follows the AppView's ``app.bsky.feed.getPostThread`` (``bluesky-social/atproto``,
``packages/bsky/src/views/index.ts``: ``thread``, ``threadReplies``, ``post``, ``userReplyDisabled``) and the
lexicon (``app.bsky.feed.defs#threadViewPost``, ``#postView``, ``#viewerState``, ``#threadgateView``):

- ``thread``: the anchor post with ``replies`` (every post whose ``reply.parent`` is the node and whose
  ``reply.root`` is the thread's root) to ``depth`` levels (default 6, at most 1000), and its ``parent``
  chain to ``parentHeight`` (default 80); ``400 NotFound`` "Post not found" for a post that is not there;
- **threadgates** (:func:`parse_thread_gate`, :meth:`AppViewStandin.refused`): a reply that the root's
  threadgate does not allow is left out of ``replies``, with everything under it; anchored on such a reply,
  the view has neither ``parent`` nor ``replies``; it is not counted in its parent's ``replyCount``;
- the viewer is the account whose access token the request carries (the PDS is asked who that is, and its
  refusal of a bad token is the answer, as when it proxies); for a viewer every ``postView`` has a
  ``viewer`` with ``threadMuted`` (``false``: no mutes here) and ``replyDisabled`` (absent when the thread
  has no threadgate); without a token there is no ``viewer``;
- a reply hidden by the root author's threadgate (``hiddenReplies``) is still in the view (the AppView hides
  such replies from ``getPostThread`` v1 for no one; ``getPostThreadV2`` moves them to
  ``getPostThreadOtherV2``); the root's ``postView.threadgate`` carries the threadgate record, which is what
  clients read (``views.replyIsHiddenByThreadgate``);
- ``replyCount`` counts the direct replies to a post that do not violate a threadgate, ``quoteCount`` the
  posts that embed it (``app.bsky.embed.record``); likes and reposts are 0; ``indexedAt`` is when the view
  was made.

Simplifications: no blocks, mutes, labels, postgates or takedowns; a ``threadgateView``'s ``lists`` is
empty; every repository is read on every call (a test PDS holds a few records per account). The real
AppView decides whether a reply violates the gate once, when it indexes the reply; this stand-in decides on
every read from the records as they are then. The two agree whenever the threadgate and the follows a reply
relies on were written before the reply, which is how the bot works (its threadgate is created in the same
commit as its root) and how the tests write them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.standins.bluesky_proxy import FaultProxy

POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
FOLLOW = "app.bsky.graph.follow"
LISTITEM = "app.bsky.graph.listitem"
MENTION_RULE = f"{THREADGATE}#mentionRule"
FOLLOWER_RULE = f"{THREADGATE}#followerRule"
FOLLOWING_RULE = f"{THREADGATE}#followingRule"
LIST_RULE = f"{THREADGATE}#listRule"
MENTION = "app.bsky.richtext.facet#mention"


@dataclass
class Network:
    """What the AppView would have indexed: every post, handle, threadgate, follow and list membership."""

    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # uri -> {uri, cid, value}
    handles: dict[str, str] = field(default_factory=dict)  # did -> handle
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)  # the gated post's uri -> {uri, cid, value}
    follows: set[tuple[str, str]] = field(default_factory=set)  # (creator, subject)
    listed: set[tuple[str, str]] = field(default_factory=set)  # (list uri, subject)

    def gate_of(self, root_uri: str) -> dict[str, Any] | None:
        """The root's threadgate: the record of the same key in the root author's repository."""
        return self.gates.get(root_uri)


@dataclass
class ParsedThreadGate:
    """``parseThreadGate``'s answer: allowed outright, or which checks against the graph remain."""

    can_reply: bool = False
    allow_mentions: bool = False
    allow_follower: bool = False
    allow_following: bool = False
    allow_lists: list[str] = field(default_factory=list)


def parse_thread_gate(replier: str, owner: str, root: dict[str, Any] | None, gate: dict[str, Any] | None
                      ) -> ParsedThreadGate:
    """The AppView's ``parseThreadGate`` (``packages/bsky/src/views/util.ts``), step for step.

    The thread's author may always reply; no threadgate, or one without ``allow``, lets anyone reply; an
    empty ``allow`` lets no one else. A ``mentionRule`` is settled here: the root's facets mention the
    replier's DID. Follower, following and list rules are left to the caller, which knows the graph.
    """
    if replier == owner:
        return ParsedThreadGate(can_reply=True)
    if gate is None or gate.get("allow") is None:
        return ParsedThreadGate(can_reply=True)
    rules = [r for r in gate["allow"] if isinstance(r, dict)]
    parsed = ParsedThreadGate(
        allow_mentions=any(r.get("$type") == MENTION_RULE for r in rules),
        allow_follower=any(r.get("$type") == FOLLOWER_RULE for r in rules),
        allow_following=any(r.get("$type") == FOLLOWING_RULE for r in rules),
        allow_lists=[str(r.get("list")) for r in rules if r.get("$type") == LIST_RULE])
    if parsed.allow_mentions:
        facets = (root or {}).get("facets") or []
        parsed.can_reply = any(feature.get("$type") == MENTION and feature.get("did") == replier
                               for facet in facets for feature in facet.get("features") or [])
    return parsed


class AppViewStandin(FaultProxy):
    """A :class:`FaultProxy` to the PDS at ``upstream`` that also serves ``app.bsky.feed.getPostThread``."""

    VIEWS = ("app.bsky.feed.getPostThread",)

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.pds = upstream.rstrip("/")

    def answer_here(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        parts = urlsplit(path)
        if method != "GET" or parts.path.removeprefix("/xrpc/") not in self.VIEWS:
            return None
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        viewer: str | None = None
        if token is not None:
            who = httpx.get(f"{self.pds}/xrpc/com.atproto.server.getSession", headers={"Authorization": token},
                            timeout=30)
            if who.status_code != 200:  # the PDS refuses a bad token before it proxies anything
                return who.status_code, {"Content-Type": "application/json; charset=utf-8"}, who.content
            viewer = str(who.json()["did"])
        status, body = self.post_thread(params, viewer)
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()

    # -- threadgates -------------------------------------------------------------------------

    @staticmethod
    def refused(net: Network, did: str, root_uri: str) -> bool:
        """Whether the threadgate of the thread rooted at ``root_uri`` refuses a reply by ``did``: the
        AppView's ``violatesThreadGate`` (``packages/bsky/src/data-plane/server/util.ts``).

        Past :func:`parse_thread_gate`: with no follower, following or list rule left, refused; otherwise
        ``followingRule`` admits an account the root's author follows, ``followerRule`` one that follows the
        root's author (a follow record in its own repository), a ``listRule`` one that list holds.
        """
        owner = root_uri.removeprefix("at://").split("/")[0]
        gate, root = net.gate_of(root_uri), net.posts.get(root_uri)
        parsed = parse_thread_gate(did, owner, root["value"] if root else None,
                                   gate["value"] if gate else None)
        if parsed.can_reply:
            return False
        if not parsed.allow_follower and not parsed.allow_following and not parsed.allow_lists:
            return True
        if parsed.allow_following and (owner, did) in net.follows:
            return False
        if parsed.allow_follower and (did, owner) in net.follows:
            return False
        return not any((listed, did) in net.listed for listed in parsed.allow_lists)

    @classmethod
    def violates_thread_gate(cls, net: Network, post_uri: str) -> bool:
        """Whether the post ``post_uri`` is a reply its thread's threadgate refuses, as the AppView's indexer
        marks each reply (``data-plane/server/indexing/plugins/post.ts``, ``validateReply``: the replier, the
        root's author from the root's URI, the root record and the root's threadgate)."""
        reply = net.posts[post_uri]["value"].get("reply")
        if not reply:
            return False
        root_uri = str((reply.get("root") or {}).get("uri") or "")
        return cls.refused(net, post_uri.removeprefix("at://").split("/")[0], root_uri)

    @classmethod
    def reply_disabled(cls, net: Network, post_uri: str, viewer: str | None) -> bool | None:
        """``viewer.replyDisabled`` of a post: the AppView's ``userReplyDisabled`` (``views/index.ts``).

        ``True`` on a reply that violates its threadgate; ``None`` (left out) when the thread has no
        threadgate or there is no viewer; otherwise whether the threadgate refuses the viewer, by the same
        rules as a reply, the viewer in the replier's place.
        """
        if cls.violates_thread_gate(net, post_uri):
            return True
        record = net.posts[post_uri]["value"]
        root_uri = str(((record.get("reply") or {}).get("root") or {}).get("uri") or post_uri)
        if net.gate_of(root_uri) is None or viewer is None:
            return None
        return cls.refused(net, viewer, root_uri)

    # -- the view -------------------------------------------------------------------------

    def post_thread(self, params: dict[str, str], viewer: str | None = None) -> tuple[int, dict[str, Any]]:
        uri = params.get("uri", "")
        try:
            depth = int(params.get("depth", "6"))
            height = int(params.get("parentHeight", "80"))
        except ValueError:
            return 400, {"error": "InvalidRequest", "message": "depth and parentHeight must be integers"}
        if not uri.startswith("at://") or not 0 <= depth <= 1000 or not 0 <= height <= 1000:
            return 400, {"error": "InvalidRequest", "message": f"Invalid request: uri {uri!r}, depth {depth}, "
                                                              f"parentHeight {height}"}
        net = self._network()
        posts = net.posts
        if uri not in posts:
            return 400, {"error": "NotFound", "message": f"Post not found: {uri}"}
        violating = {post_uri for post_uri in posts if self.violates_thread_gate(net, post_uri)}
        children: dict[str, list[str]] = {}
        quotes: dict[str, int] = {}
        for post_uri, post in posts.items():
            reply = post["value"].get("reply") or {}
            parent = (reply.get("parent") or {}).get("uri")
            if parent:
                children.setdefault(parent, []).append(post_uri)
            embed = post["value"].get("embed") or {}
            quoted = ((embed.get("record") or {}).get("record") or embed.get("record") or {}).get("uri")
            if embed.get("$type", "").startswith("app.bsky.embed.record") and quoted:
                quotes[quoted] = quotes.get(quoted, 0) + 1
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

        def view(post_uri: str) -> dict[str, Any]:
            post = posts[post_uri]
            did = post_uri.removeprefix("at://").split("/")[0]
            out: dict[str, Any] = {
                "uri": post_uri, "cid": post["cid"], "author": {"did": did, "handle": net.handles.get(did, did)},
                "record": post["value"],
                "replyCount": sum(1 for k in children.get(post_uri, []) if k not in violating),
                "repostCount": 0, "likeCount": 0, "quoteCount": quotes.get(post_uri, 0), "indexedAt": now,
                "labels": []}
            if viewer is not None:
                out["viewer"] = {"threadMuted": False}
                disabled = self.reply_disabled(net, post_uri, viewer)
                if disabled is not None:
                    out["viewer"]["replyDisabled"] = disabled
            if not post["value"].get("reply"):  # only a root carries its threadgate
                gate = net.gate_of(post_uri)
                if gate is not None:
                    out["threadgate"] = {"uri": gate["uri"], "cid": gate["cid"], "record": gate["value"], "lists": []}
            return out

        def root_of(post_uri: str) -> str:
            return str(((posts[post_uri]["value"].get("reply") or {}).get("root") or {}).get("uri") or post_uri)

        thread_root = root_of(uri)

        def replies(post_uri: str, left: int) -> list[dict[str, Any]] | None:
            if left < 1:
                return None
            kids = [k for k in children.get(post_uri, []) if k not in violating and root_of(k) == thread_root]
            kids.sort(key=lambda k: str(posts[k]["value"].get("createdAt") or ""), reverse=True)
            return [{"$type": "app.bsky.feed.defs#threadViewPost", "post": view(k), "replies": replies(k, left - 1)
                     or []} for k in kids]

        def parent(post_uri: str, left: int) -> dict[str, Any] | None:
            above = ((posts[post_uri]["value"].get("reply") or {}).get("parent") or {}).get("uri")
            if left < 1 or not above:
                return None
            if above not in posts:
                return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": above, "notFound": True}
            node: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": view(above)}
            higher = parent(above, left - 1)
            if higher is not None:
                node["parent"] = higher
            return node

        thread: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": view(uri)}
        if uri not in violating:  # a reply that breaks the gate is shown alone, cut off from its thread
            thread["replies"] = replies(uri, depth) or []
            up = parent(uri, height)
            if up is not None:
                thread["parent"] = up
        return 200, {"thread": thread}

    # -- reading the PDS -------------------------------------------------------------------

    def _network(self) -> Network:
        """Every repository's posts, threadgates, follows and list items, and every account's handle."""
        net = Network()
        with httpx.Client(base_url=self.pds, timeout=30) as client:
            for did in self._paged(client, "com.atproto.sync.listRepos", {}, "repos", key="did"):
                described = client.get("/xrpc/com.atproto.repo.describeRepo", params={"repo": did})
                if described.status_code != 200:
                    continue  # deactivated or taken down: not in the views
                net.handles[did] = str(described.json().get("handle") or did)

                def records(collection: str, did: str = did) -> list[dict[str, Any]]:
                    return self._paged(client, "com.atproto.repo.listRecords",
                                       {"repo": did, "collection": collection, "limit": 100}, "records")

                for record in records(POST):
                    net.posts[record["uri"]] = record
                for record in records(THREADGATE):
                    # A threadgate gates the post of its own key in its own repository; the indexer refuses
                    # one whose ``post`` is another ("Creator and rkey of thread gate does not match its
                    # post", ``data-plane/server/indexing/plugins/thread-gate.ts``).
                    gated = record["uri"].replace(f"/{THREADGATE}/", f"/{POST}/", 1)
                    if record["value"].get("post") == gated:
                        net.gates[gated] = record
                for record in records(FOLLOW):
                    net.follows.add((did, str(record["value"].get("subject"))))
                for record in records(LISTITEM):
                    net.listed.add((str(record["value"].get("list")), str(record["value"].get("subject"))))
        return net

    @staticmethod
    def _paged(client: httpx.Client, nsid: str, params: dict[str, Any], field: str, key: str | None = None
               ) -> list[Any]:
        found: list[Any] = []
        cursor = None
        while True:
            answer = client.get(f"/xrpc/{nsid}", params={**params, **({"cursor": cursor} if cursor else {})})
            answer.raise_for_status()
            page = answer.json()
            items = page.get(field) or []
            found += [item[key] for item in items] if key else items
            cursor = page.get("cursor")
            if not cursor or not items:
                return found
