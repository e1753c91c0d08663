"""Provide AppViewStandin: ``app.bsky.feed.getPostThread`` for the local PDS, which serves no ``app.bsky`` views.

The reference PDS answers ``app.bsky.*`` queries by proxying them to an AppView; the local one has none
(``400 InvalidRequest: No service configured for app.bsky.feed.getPostThread``). This stand-in sits in front
of the PDS like :class:`~tests.standins.bluesky_proxy.FaultProxy` (it is one: faults work the same), forwards
every other request unchanged, and answers ``getPostThread`` itself, built from the real records of every
repository on the PDS (``com.atproto.sync.listRepos``, ``com.atproto.repo.listRecords``, ``describeRepo``).

The view follows the AppView's ``app.bsky.feed.getPostThread`` (``bluesky-social/atproto``,
``packages/bsky/src/views/index.ts``: ``thread``, ``threadReplies``, ``post``) and the lexicon
(``app.bsky.feed.defs#threadViewPost``, ``#postView``, ``#threadgateView``):

- ``thread``: the anchor post with ``replies`` (every post whose ``reply.parent`` is the node and whose
  ``reply.root`` is the thread's root) to ``depth`` levels (default 6, at most 1000), and its ``parent``
  chain to ``parentHeight`` (default 80); ``400 NotFound`` "Post not found" for a post that is not there;
- a reply hidden by the root author's threadgate is still in the view (the AppView hides such replies from
  ``getPostThread`` v1 for no one; ``getPostThreadV2`` moves them to ``getPostThreadOtherV2``); the root's
  ``postView.threadgate`` carries the threadgate record, ``hiddenReplies`` included, which is what clients
  read (``views.replyIsHiddenByThreadgate``);
- ``replyCount`` counts the direct replies to a post, ``quoteCount`` the posts that embed it
  (``app.bsky.embed.record``); likes and reposts are 0; ``indexedAt`` is when the view was made.

Simplifications: no blocks, mutes, labels or takedowns; every repository is read on every call (a test PDS
holds a few posts per account).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.standins.bluesky_proxy import FaultProxy

POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"


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
        status, body = self.post_thread(params)
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()

    # -- the view -------------------------------------------------------------------------

    def post_thread(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        uri = params.get("uri", "")
        try:
            depth = int(params.get("depth", "6"))
            height = int(params.get("parentHeight", "80"))
        except ValueError:
            return 400, {"error": "InvalidRequest", "message": "depth and parentHeight must be integers"}
        if not uri.startswith("at://") or not 0 <= depth <= 1000 or not 0 <= height <= 1000:
            return 400, {"error": "InvalidRequest", "message": f"Invalid request: uri {uri!r}, depth {depth}, "
                                                              f"parentHeight {height}"}
        posts, handles = self._posts()
        if uri not in posts:
            return 400, {"error": "NotFound", "message": f"Post not found: {uri}"}
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
                "uri": post_uri, "cid": post["cid"], "author": {"did": did, "handle": handles.get(did, did)},
                "record": post["value"], "replyCount": len(children.get(post_uri, [])), "repostCount": 0,
                "likeCount": 0, "quoteCount": quotes.get(post_uri, 0), "indexedAt": now, "labels": []}
            if not post["value"].get("reply"):
                gate = self._threadgate(post_uri)
                if gate is not None:
                    out["threadgate"] = {"uri": gate["uri"], "cid": gate["cid"], "record": gate["value"], "lists": []}
            return out

        def root_of(post_uri: str) -> str:
            return str(((posts[post_uri]["value"].get("reply") or {}).get("root") or {}).get("uri") or post_uri)

        thread_root = root_of(uri)

        def replies(post_uri: str, left: int) -> list[dict[str, Any]] | None:
            if left < 1:
                return None
            kids = [k for k in children.get(post_uri, []) if root_of(k) == thread_root]
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

        thread: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": view(uri),
                                  "replies": replies(uri, depth) or []}
        up = parent(uri, height)
        if up is not None:
            thread["parent"] = up
        return 200, {"thread": thread}

    # -- reading the PDS -------------------------------------------------------------------

    def _posts(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Every post on the PDS by URI (``{uri, cid, value}``), and every account's handle by DID."""
        posts: dict[str, dict[str, Any]] = {}
        handles: dict[str, str] = {}
        with httpx.Client(base_url=self.pds, timeout=30) as client:
            for did in self._paged(client, "com.atproto.sync.listRepos", {}, "repos", key="did"):
                described = client.get("/xrpc/com.atproto.repo.describeRepo", params={"repo": did})
                if described.status_code != 200:
                    continue  # deactivated or taken down: not in the views
                handles[did] = str(described.json().get("handle") or did)
                for record in self._paged(client, "com.atproto.repo.listRecords",
                                          {"repo": did, "collection": POST, "limit": 100}, "records"):
                    posts[record["uri"]] = record
        return posts, handles

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

    def _threadgate(self, post_uri: str) -> dict[str, Any] | None:
        did, _, rkey = post_uri.removeprefix("at://").split("/")
        answer = httpx.get(f"{self.pds}/xrpc/com.atproto.repo.getRecord",
                           params={"repo": did, "collection": THREADGATE, "rkey": rkey}, timeout=30)
        return answer.json() if answer.status_code == 200 else None
