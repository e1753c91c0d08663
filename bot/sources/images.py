"""Check, fetch and prepare a story's image when it is loaded, so that posting never reads a file or a URL.

An image is read once, at load time: a local file (inside the story file's folder, or inside the
media folder when one is set) or an http(s) URL (fetched with a size cap and a deadline, never from
a loopback, private or link-local address unless allowed). The bytes read are then checked
and re-encoded by :func:`posts.media.prepare` into an :class:`~posts.media.Image`, which the queue stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast
from urllib.parse import urljoin

from bot import netguard
from bot.netguard import Address, Network
from posts.media import (
    PROFILES,
    REDDIT_CAPTION,
    Image,
    ImageError,
    is_animated,
    prepare,
    prepare_animation,
    prepare_versions,
    shown,
)

MAX_SOURCE_BYTES = 20_000_000
"""Default cap on the bytes read from a file or URL (``ONEYEARAGO_MEDIA_MAX_BYTES``)."""
FETCH_TIMEOUT = 20.0
"""Default deadline in seconds for fetching an image URL, redirects included (``ONEYEARAGO_MEDIA_TIMEOUT``)."""
MAX_REDIRECTS = 5
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class MediaPolicy:
    """Where images may come from, and how much of them is read.

    ``media_dir``: relative image paths are looked up there instead of in the story file's folder.
    ``uploaded``: the story files came through the dashboard; ``media_dir`` holds the images uploaded
    with them, and a message never tells whether some other path exists.
    ``allow_private``: networks that image URLs may point to although they are not public.
    """

    media_dir: Path | None = None
    allow_private: tuple[Network, ...] = ()
    max_bytes: int = MAX_SOURCE_BYTES
    timeout: float = FETCH_TIMEOUT
    uploaded: bool = False
    platforms: tuple[str, ...] = tuple(PROFILES)
    """The platforms a story goes to when it names none (the enabled ones): its pictures are made for those."""
    reddit_gallery: bool = False
    """Reddit posts pictures as a gallery, whose captions (the alt text) hold at most 180 characters."""
    story_card: bool = False
    """A story without pictures gets its story card as its picture (``ONEYEARAGO_STORY_CARD``)."""
    alt_limits: tuple[tuple[str, int], ...] = ()
    """Alt-text limits announced by a platform, in place of :data:`posts.media.PROFILES`' (a Mastodon
    instance's ``description_limit``, as remembered with its account)."""

    def alt_limit(self, platform: str) -> int | None:
        """The most characters of alt text ``platform`` takes (Reddit: a gallery caption's, in gallery mode)."""
        if platform == "reddit" and self.reddit_gallery:
            return REDDIT_CAPTION
        return dict(self.alt_limits).get(platform, PROFILES[platform].alt_limit)


def _remembered(cache: dict[Any, Any], key: Any, make: Callable[[], T]) -> T:
    """``make()``, made once per ``key`` (its ImageError too: a bad file is read and reported once)."""
    cached = cache.get(key)
    if cached is None:
        try:
            cached = make()
        except ImageError as exc:
            cached = exc
        cache[key] = cached
    if isinstance(cached, ImageError):
        raise cached
    return cast(T, cached)


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


class MediaLoader:
    """Reads and prepares the images of one load; each file or URL is read and prepared once."""

    def __init__(self, policy: MediaPolicy | None = None, *,
                 resolve: Callable[[str, int], list[Address]] | None = None):
        self.policy = policy or MediaPolicy()
        self.resolve = resolve or netguard.resolve
        self._by_source: dict[Any, Image | ImageError] = {}
        self._by_digest: dict[str, Image] = {}
        self._versions: dict[Any, dict[str, Image] | ImageError] = {}

    def load(self, ref: str, base: Path | None) -> Image:
        """The prepared image ``ref`` names (a URL, or a path relative to ``base``).

        Raises:
            ImageError: when it cannot be read, is not an image, or cannot be made to fit.
        """
        key, read = self._source(ref, base)

        def make() -> Image:
            data = read()
            digest = hashlib.sha256(data).hexdigest()
            image = self._by_digest.get(digest) or prepare(data, ref)
            self._by_digest[digest] = image
            return image

        return _remembered(self._by_source, key, make)

    def load_versions(self, ref: str, base: Path | None, platforms: tuple[str, ...], *,
                      alone: bool = True) -> dict[str, Image]:
        """The picture ``ref`` names, prepared once for each of ``platforms`` (:func:`posts.media.prepare_versions`).

        An animated picture is kept as an animated GIF only when it is the post's only picture
        (``alone``: X takes an animated GIF only alone) and every one of ``platforms`` plays it
        (Bluesky does not); otherwise it is refused, rather than a still frame going out where the
        operator meant a moving one.

        Raises:
            ImageError: when it cannot be read, is not a still image, or cannot be made to fit.
        """
        key, read = self._source(ref, base)

        def make() -> dict[str, Image]:
            data = read()
            if not is_animated(data):
                return prepare_versions(data, ref, platforms)
            if not alone:
                raise ImageError(f"image {shown(ref)} is animated and not the post's only picture; X takes an "
                                 "animated GIF only alone", "give still pictures, or the animation alone")
            return dict.fromkeys(platforms, prepare_animation(data, ref, platforms))

        return _remembered(self._versions, (key, platforms, alone), make)

    def _source(self, ref: str, base: Path | None) -> tuple[Any, Callable[[], bytes]]:
        """A key that names the bytes ``ref`` stands for (changing with the file), and how to read them."""
        if is_url(ref):
            return ("url", ref), lambda: self._fetch(ref)
        path = self._local(ref, base)
        try:
            info = path.stat()
        except OSError:
            raise self._missing(ref) from None
        return ("file", str(path), info.st_size, info.st_mtime_ns), lambda: self._read(ref, path)

    # -- local files ------------------------------------------------------------------

    def _local(self, ref: str, base: Path | None) -> Path:
        """The file ``ref`` names, checked to lie inside the folder images may come from."""
        policy = self.policy
        root = policy.media_dir if policy.media_dir is not None else base
        where = "the media folder (ONEYEARAGO_MEDIA_DIR)" if policy.media_dir is not None and not policy.uploaded \
            else "the story file's folder"
        hint = ("give a path relative to the story file, e.g. img/chart.png (or set ONEYEARAGO_MEDIA_DIR "
                "to a folder of images)") if policy.media_dir is None else \
            "give a path relative to ONEYEARAGO_MEDIA_DIR, e.g. chart.png"
        pure = PurePosixPath(ref)
        if policy.uploaded:
            if pure.is_absolute() or ".." in pure.parts or "\\" in ref or root is None:
                raise self._missing(ref)
        elif pure.is_absolute():
            raise ImageError(f"image {shown(ref)} is an absolute path; an image must be inside {where}", hint)
        elif ".." in pure.parts:
            raise ImageError(f"image {shown(ref)} leaves {where} ('..')", hint)
        if root is None:
            root = Path.cwd()
        try:
            top = Path(root).resolve(strict=True)
            found = (top / pure).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symbolic link loop, a NUL in the name
            raise self._missing(ref) from None
        if not found.is_relative_to(top):
            if policy.uploaded:
                raise self._missing(ref)
            raise ImageError(f"image {shown(ref)} leads outside {where} (through a symbolic link)",
                             "copy the image into the folder instead of linking to it")
        return found

    def _missing(self, ref: str) -> ImageError:
        if self.policy.uploaded:
            return ImageError(f"image {shown(ref)} is not one of the images uploaded with the story file",
                              "upload the image file together with the story file (and name it by its file "
                              "name), or give an http(s) URL")
        if self.policy.media_dir is not None:
            return ImageError(f"image file {shown(ref)} does not exist in the media folder",
                              "give a path relative to ONEYEARAGO_MEDIA_DIR")
        return ImageError(f"image file {shown(ref)} does not exist", "give a path relative to the story file")

    def _read(self, ref: str, path: Path) -> bytes:
        limit = self.policy.max_bytes
        too_big = ImageError(f"image {shown(ref)} is larger than {limit:,} bytes",
                             "use a smaller image (or raise ONEYEARAGO_MEDIA_MAX_BYTES)")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            if self.policy.uploaded:
                raise self._missing(ref) from None
            raise ImageError(f"image {shown(ref)} cannot be read: {exc.strerror or exc}",
                             "check the file's permissions") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ImageError(f"image {shown(ref)} is not a regular file", "give the path of an image file")
            if info.st_size > limit:
                raise too_big
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise too_big
        return data

    # -- URLs -------------------------------------------------------------------------

    def _fetch(self, url: str) -> bytes:
        """The body of ``url``, following redirects, every hop checked; within the size cap and deadline."""
        import httpx

        policy = self.policy
        deadline = time.monotonic() + policy.timeout
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target, host_header, sni = self._pin(url, current)
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out(url)
            try:
                with httpx.Client(transport=netguard.deadline_transport(deadline), trust_env=False,
                                  follow_redirects=False, timeout=httpx.Timeout(left)) as client:
                    extensions = {"sni_hostname": sni} if sni else {}
                    headers = {"Host": host_header, "Accept": "image/*", "Accept-Encoding": "identity",
                               "User-Agent": "oneyearago (image fetch)"}
                    with client.stream("GET", target, headers=headers, extensions=extensions) as answer:
                        if answer.status_code in (301, 302, 303, 307, 308) and answer.headers.get("location"):
                            current = urljoin(current, answer.headers["location"])
                            continue
                        if answer.status_code != 200:
                            raise ImageError(f"image URL {shown(url)} answered HTTP {answer.status_code}",
                                             "check the address, or use a local copy of the image")
                        return self._body(url, answer)
            except httpx.TimeoutException:
                raise self._timed_out(url) from None
            except httpx.HTTPError as exc:
                raise ImageError(f"image URL {shown(url)} cannot be fetched: {type(exc).__name__}",
                                 "check the address, or use a local copy of the image") from None
        raise ImageError(f"image URL {shown(url)} redirects more than {MAX_REDIRECTS} times",
                         "give the image's final address")

    def _pin(self, url: str, current: str) -> tuple[str, str, str]:
        """The URL to request (host replaced by a checked address), its Host header and TLS server name."""
        try:
            pinned = netguard.pin(current, self.resolve, self.policy.allow_private)
        except netguard.Unfit as exc:
            raise self._unfit(url, current, exc) from None
        return pinned.target, pinned.host_header, pinned.sni

    @staticmethod
    def _unfit(url: str, current: str, exc: netguard.Unfit) -> ImageError:
        """Why ``url`` (through a redirect to ``current``) is not fetched, and what to do."""
        again = "check the address, or use a local copy of the image"
        if exc.reason == netguard.UNPARSABLE:
            return ImageError(f"image URL {shown(url)} redirects to an address that cannot be parsed",
                              "give the image's final address")
        if exc.reason == netguard.SCHEME:
            return ImageError(f"image URL {shown(url)} redirects to a {exc.scheme or 'relative'}: address; "
                              "only http and https are fetched", "give an http(s) address of the image")
        if exc.reason == netguard.NO_HOST:
            return ImageError(f"image URL {shown(url)} has no host", "give the full address of the image")
        if exc.reason == netguard.UNRESOLVED:
            return ImageError(f"image URL {shown(url)}: the host {shown(exc.host)} cannot be resolved", again)
        if exc.reason == netguard.NO_ADDRESS:
            return ImageError(f"image URL {shown(url)}: the host {shown(exc.host)} has no address", again)
        via = "" if current == url else f" (through a redirect to {shown(current)})"
        return ImageError(f"image URL {shown(url)} points to {exc.address}, a loopback, private or link-local "
                          f"address{via}; such URLs are not fetched",
                          "give a public address, or allow that network with ONEYEARAGO_MEDIA_ALLOW_PRIVATE")

    def _body(self, url: str, answer: Any) -> bytes:
        """The body, within the size cap (every read of it ends by the fetch's deadline)."""
        limit = self.policy.max_bytes
        too_big = ImageError(f"image URL {shown(url)} sends more than {limit:,} bytes",
                             "use a smaller image (or raise ONEYEARAGO_MEDIA_MAX_BYTES)")
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        chunks, total = [], 0
        for chunk in answer.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self, url: str) -> ImageError:
        return ImageError(f"image URL {shown(url)} took longer than {self.policy.timeout:g} s to fetch",
                          "try again, use a local copy of the image, or raise ONEYEARAGO_MEDIA_TIMEOUT")


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDR blocks (``127.0.0.1``, ``192.168.1.0/24``, ``::1``)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


__all__ = ["MediaLoader", "MediaPolicy", "is_url", "parse_networks"]
