"""Check, fetch and prepare a story's image when it is loaded, so that posting never reads a file or a URL.

An image is read once, at load time: a local file (inside the story file's folder, or inside the
media folder when one is set) or an http(s) URL (fetched with a size cap and a deadline, never from
a loopback, private or link-local address unless allowed). Pillow then checks that it really is a
PNG, JPEG, GIF or WebP image of sane dimensions, and re-encodes it so that it fits every platform's
limit (the strictest is Bluesky's link card thumbnail, 1,000,000 bytes) without its metadata (EXIF,
GPS, comments). The result is an :class:`Image`: its bytes and their sha256, which the queue stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import ipaddress
import os
import socket
import stat
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
"""The image formats accepted at load time (Pillow's names); nothing else is ever decoded."""
MAX_IMAGE_BYTES = 1_000_000
"""The most bytes a prepared image may have: Bluesky's link card ``thumb`` maxSize (X allows 5 MB,
Reddit 20 MiB), so one stored image fits everywhere."""
MAX_SIDE = 2000
"""The longest side of a prepared image, in pixels (larger images are scaled down)."""
MAX_PIXELS = 40_000_000
"""The most pixels an image may declare; larger ones are refused before they are decoded."""
MAX_SOURCE_BYTES = 20_000_000
"""Default cap on the bytes read from a file or URL (``ONEYEARAGO_MEDIA_MAX_BYTES``)."""
FETCH_TIMEOUT = 20.0
"""Default deadline in seconds for fetching an image URL, redirects included (``ONEYEARAGO_MEDIA_TIMEOUT``)."""
MAX_REDIRECTS = 5
JPEG_QUALITIES = (90, 80, 70, 60, 50)
SHOWN = 80
"""At most this many characters of an image reference are quoted in a message."""


@dataclasses.dataclass(frozen=True)
class Image:
    """An image ready to post: re-encoded bytes within every platform's limits, and their sha256."""

    sha256: str
    mime: str
    width: int
    height: int
    data: bytes = dataclasses.field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def of(cls, data: bytes, mime: str, width: int, height: int) -> Image:
        return cls(hashlib.sha256(data).hexdigest(), mime, width, height, data)


class ImageError(Exception):
    """An image that cannot be used: ``message`` says what is wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def shown(ref: str) -> str:
    """``ref`` quoted for a message, cut to :data:`SHOWN` characters."""
    return repr(ref if len(ref) <= SHOWN else ref[:SHOWN] + "…")


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


class MediaLoader:
    """Reads and prepares the images of one load; each file or URL is read and prepared once."""

    def __init__(self, policy: MediaPolicy | None = None, *,
                 resolve: Callable[[str, int], list[Address]] | None = None):
        self.policy = policy or MediaPolicy()
        self.resolve = resolve or _resolve
        self._by_source: dict[Any, Image | ImageError] = {}
        self._by_digest: dict[str, Image] = {}

    def load(self, ref: str, base: Path | None) -> Image:
        """The prepared image ``ref`` names (a URL, or a path relative to ``base``).

        Raises:
            ImageError: when it cannot be read, is not an image, or cannot be made to fit.
        """
        if is_url(ref):
            key: Any = ("url", ref)
            read: Callable[[], bytes] = lambda: self._fetch(ref)  # noqa: E731
        else:
            path = self._local(ref, base)
            try:
                info = path.stat()
            except OSError:
                raise self._missing(ref) from None
            key = ("file", str(path), info.st_size, info.st_mtime_ns)
            read = lambda: self._read(ref, path)  # noqa: E731
        cached = self._by_source.get(key)
        if cached is None:
            try:
                data = read()
                digest = hashlib.sha256(data).hexdigest()
                cached = self._by_digest.get(digest) or prepare(data, ref)
                self._by_digest[digest] = cached
            except ImageError as exc:
                cached = exc
            self._by_source[key] = cached
        if isinstance(cached, ImageError):
            raise cached
        return cached

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
                with httpx.Client(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(left)) as client:
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
                        return self._body(url, answer, deadline)
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
            parts = urlsplit(current)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ImageError(f"image URL {shown(url)} redirects to an address that cannot be parsed",
                             "give the image's final address") from None
        if parts.scheme not in ("http", "https"):
            raise ImageError(f"image URL {shown(url)} redirects to a {parts.scheme or 'relative'}: address; "
                             "only http and https are fetched", "give an http(s) address of the image")
        if not host:
            raise ImageError(f"image URL {shown(url)} has no host", "give the full address of the image")
        try:
            addresses = self.resolve(host, port)
        except OSError:
            raise ImageError(f"image URL {shown(url)}: the host {shown(host)} cannot be resolved",
                             "check the address, or use a local copy of the image") from None
        if not addresses:
            raise ImageError(f"image URL {shown(url)}: the host {shown(host)} has no address",
                             "check the address, or use a local copy of the image")
        for address in addresses:
            if not self._allowed(address):
                via = "" if current == url else f" (through a redirect to {shown(current)})"
                raise ImageError(f"image URL {shown(url)} points to {address}, a loopback, private or link-local "
                                 f"address{via}; such URLs are not fetched",
                                 "give a public address, or allow that network with ONEYEARAGO_MEDIA_ALLOW_PRIVATE")
        address = addresses[0]
        netloc = f"[{address}]" if address.version == 6 else str(address)
        default = 443 if parts.scheme == "https" else 80
        host_header = parts.netloc.rpartition("@")[2]
        target = f"{parts.scheme}://{netloc}:{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        if port == default:
            target = f"{parts.scheme}://{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        return target, host_header, host if parts.scheme == "https" else ""

    def _allowed(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.policy.allow_private):
            return True
        return address.is_global and not address.is_multicast

    def _body(self, url: str, answer: Any, deadline: float) -> bytes:
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
            if time.monotonic() > deadline:
                raise self._timed_out(url)
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self, url: str) -> ImageError:
        return ImageError(f"image URL {shown(url)} took longer than {self.policy.timeout:g} s to fetch",
                          "try again, use a local copy of the image, or raise ONEYEARAGO_MEDIA_TIMEOUT")


def _resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an address literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDR blocks (``127.0.0.1``, ``192.168.1.0/24``, ``::1``)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


# -- preparing ----------------------------------------------------------------------------


def prepare(data: bytes, ref: str = "") -> Image:
    """Check ``data`` is a PNG, JPEG, GIF or WebP image and re-encode it to fit every platform.

    The first frame is kept, turned upright by its EXIF orientation, scaled to at most
    :data:`MAX_SIDE` pixels a side and encoded without metadata: as PNG when the source is PNG or GIF
    (or has transparency) and that fits :data:`MAX_IMAGE_BYTES`, else as JPEG at the best quality
    that fits, scaled down further when none does.

    Raises:
        ImageError: for anything that is not such an image, or declares too many pixels.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    what = f"image {shown(ref)}" if ref else "the image"
    not_image = ImageError(f"{what} is not a PNG, JPEG, GIF or WebP image",
                           "give a PNG, JPEG, GIF or WebP image file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(io.BytesIO(data), formats=FORMATS) as probe:
                width, height = probe.size
                _check_pixels(what, width, height)
                probe.verify()
            with PILImage.open(io.BytesIO(data), formats=FORMATS) as source:
                source_format = source.format or ""
                turn = _TURNS.get(source.getexif().get(0x0112, 1))
                if source_format == "JPEG":
                    source.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4 or 1/8 scale when larger
                source.seek(0)
                source.load()
                return _encode(source, source_format, what, turn)
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise not_image from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise ImageError(f"{what} declares more than {MAX_PIXELS:,} pixels",
                             f"scale it down (at most {MAX_SIDE} pixels a side are used)") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError,
                ZeroDivisionError) as exc:
            raise ImageError(f"{what} is damaged or truncated ({type(exc).__name__})",
                             "open it in an image editor and save it again") from None


def _check_pixels(what: str, width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{what} has no pixels", "give a real image")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{what} is {width:,}×{height:,} pixels, more than {MAX_PIXELS:,}",
                         f"scale it down (at most {MAX_SIDE} pixels a side are used)")


_TURNS = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}
"""EXIF orientation -> ``PIL.Image.Transpose`` value that turns the picture upright."""


def _encode(picture: Any, source_format: str, what: str, turn: int | None) -> Image:
    from PIL import Image as PILImage

    alpha = picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        picture.mode == "P" and "transparency" in picture.info)
    mode = "RGBA" if alpha else "RGB"
    picture = picture.convert(mode) if picture.mode != mode else picture  # ours alone: changed in place below
    picture.info.clear()  # no metadata goes out (EXIF, GPS, XMP, comments, text chunks, ICC)
    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE), PILImage.Resampling.LANCZOS)
    if turn is not None:
        picture = picture.transpose(PILImage.Transpose(turn))
    lossless = alpha or source_format in ("PNG", "GIF")
    while True:
        if lossless:
            out = io.BytesIO()
            picture.save(out, "PNG", optimize=True)
            if out.tell() <= MAX_IMAGE_BYTES:
                return Image.of(out.getvalue(), "image/png", *picture.size)
        flat = picture
        if alpha:
            flat = PILImage.new("RGB", picture.size, (255, 255, 255))
            flat.paste(picture, mask=picture.getchannel("A"))
        for quality in JPEG_QUALITIES:
            out = io.BytesIO()
            flat.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= MAX_IMAGE_BYTES:
                return Image.of(out.getvalue(), "image/jpeg", *flat.size)
        if max(picture.size) <= 64:
            raise ImageError(f"{what} cannot be made smaller than {MAX_IMAGE_BYTES:,} bytes",
                             "use a simpler or smaller image")
        picture = picture.resize((max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)),
                                 PILImage.Resampling.LANCZOS)


__all__ = ["FORMATS", "MAX_IMAGE_BYTES", "MAX_PIXELS", "MAX_SIDE", "Image", "ImageError", "MediaLoader",
           "MediaPolicy", "is_url", "parse_networks", "prepare", "shown"]
