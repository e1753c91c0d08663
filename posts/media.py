"""Prepare a story's image from its bytes: check it really is an image and re-encode it to fit every platform.

Pillow checks that the bytes are a PNG, JPEG, GIF or WebP image of sane dimensions and re-encodes
them so that they fit every platform's limit (the strictest is Bluesky's link card thumbnail,
1,000,000 bytes) without their metadata (EXIF, GPS, comments). The result is an :class:`Image`: its
bytes and their sha256, which the queue stores. Reading the bytes from a file or a URL is
:mod:`bot.sources.images`' job; nothing here reads a file or the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
from typing import Any

FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
"""The image formats accepted at load time (Pillow's names); nothing else is ever decoded."""
MAX_IMAGE_BYTES = 1_000_000
"""The most bytes a prepared image may have: Bluesky's link card ``thumb`` maxSize (X allows 5 MB,
Reddit 20 MiB), so one stored image fits everywhere."""
MAX_SIDE = 2000
"""The longest side of a prepared image, in pixels (larger images are scaled down)."""
MAX_PIXELS = 40_000_000
"""The most pixels an image may declare; larger ones are refused before they are decoded."""
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


@dataclasses.dataclass(frozen=True)
class Picture:
    """A picture a post shows: the image prepared for the platform and its alt text (what a screen
    reader says; Reddit shows it as the caption)."""

    image: Image
    alt: str


@dataclasses.dataclass(frozen=True)
class Profile:
    """What one platform takes as a picture: the most bytes, the longest side, the longest alt text."""

    platform: str
    max_bytes: int
    max_side: int
    alt_limit: int | None
    """Characters of alt text at most; ``None``: no limit the bot must respect."""
    animated: bool
    """Whether an animated image plays there as a picture of a post."""


MAX_PICTURES = 4
"""Pictures per post: X's 4 photos, Bluesky's ``embed.images`` maxLength, Mastodon's stock
``max_media_attachments``; Reddit takes as many, so 4 everywhere."""

PROFILES: dict[str, Profile] = {
    # X: 5 MB per image through the API (docs.x.com/x-api/media); alt text <= 1000 characters
    # (media/metadata/create). Photos are shown at up to 4096 px a side.
    "x": Profile("x", 5_000_000, 4096, 1000, True),
    # Bluesky: the blob limit of app.bsky.embed.images rose to 2,000,000 bytes on 2026-04-08, but older
    # servers still enforce 1,000,000: keep to the old limit so a post is taken everywhere. The lexicon
    # sets no alt limit; the official app's editor stops at 2000 characters. embed.images does not play
    # animations.
    "bluesky": Profile("bluesky", 1_000_000, 2000, 2000, False),
    # Reddit: uploads are refused above 20 MiB; it has no alt text, the alt text is the caption (gallery
    # captions are checked separately: at most 180 characters).
    "reddit": Profile("reddit", 20 * 1024 * 1024, 4096, None, True),
    # Mastodon: a stock instance takes 16 MiB and 16,777,216 pixels (4096 x 4096) per image (older
    # image_matrix_limit); alt text at most the instance's description_limit (1500 on a stock 4.x).
    "mastodon": Profile("mastodon", 16 * 1024 * 1024, 4096, 1500, True),
}
"""Each platform's picture limits (``../reference/media.md`` gives the sources)."""

REDDIT_CAPTION = 180
"""A Reddit gallery caption's most characters (PRAW's ``Subreddit.MAX_CAPTION_LENGTH``)."""


def alt_length(alt: str) -> int:
    """Alt text as the platforms count it: characters (code points)."""
    return len(alt)


class ImageError(Exception):
    """An image that cannot be used: ``message`` says what is wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


def shown(ref: str) -> str:
    """``ref`` quoted for a message, cut to :data:`SHOWN` characters."""
    return repr(ref if len(ref) <= SHOWN else ref[:SHOWN] + "…")


# -- preparing ----------------------------------------------------------------------------


def prepare_versions(data: bytes, ref: str = "", platforms: tuple[str, ...] = tuple(PROFILES)) -> dict[str, Image]:
    """One version of the picture in ``data`` for each of ``platforms``, each within its platform's
    bytes and side (:data:`PROFILES`), re-encoded without metadata and turned upright (first frame).

    The source is decoded once. Platforms whose limits give the same result share one version (the
    same bytes, so the queue stores them once): a picture that fits the strictest limits at its best
    quality is the same picture everywhere.

    Raises:
        ImageError: for anything that is not a PNG, JPEG, GIF or WebP image within the pixel limit.
    """
    what = f"image {shown(ref)}" if ref else "the image"
    largest = max((PROFILES[p].max_side for p in platforms), default=MAX_SIDE)
    picture, source_format, turn = _decode(data, what, largest)
    versions: dict[str, Image] = {}
    best: dict[int, Image] = {}  # side -> the version made at the best quality for that side
    for name in sorted(platforms, key=lambda p: (PROFILES[p].max_bytes, PROFILES[p].max_side)):
        profile = PROFILES[name]
        side = min(profile.max_side, max(picture.size))
        image = best.get(side)
        if image is None or image.size > profile.max_bytes:
            image, first_try = _encode(picture, source_format, what, turn, max_bytes=profile.max_bytes,
                                       max_side=profile.max_side)
            if first_try:
                best[side] = image
        versions[name] = image
    return versions


ANIMATION_BYTES = {"x": 15_000_000, "reddit": 20 * 1024 * 1024, "mastodon": 16 * 1024 * 1024}
"""The most bytes of an animated GIF per platform that plays one (X: 15 MB for a GIF)."""


def prepare_animation(data: bytes, ref: str, platforms: tuple[str, ...]) -> Image:
    """The animated image in ``data`` as a GIF without metadata, for ``platforms`` that all play one.

    Raises:
        ImageError: when a platform shows no animation, or the GIF is too large or too big for one.
    """
    from PIL import Image as PILImage

    what = f"image {shown(ref)}"
    still = sorted(p for p in platforms if not PROFILES[p].animated)
    if still:
        raise ImageError(f"{what} is animated, and {', '.join(still)} shows no animation in a post's pictures",
                         "give a still PNG or JPEG, or send the story only to platforms that play animations")
    side = min(PROFILES[p].max_side for p in platforms)
    with PILImage.open(io.BytesIO(data), formats=FORMATS) as source:
        _check_pixels(what, *source.size)
        if max(source.size) > side:
            raise ImageError(f"{what} is {source.width}×{source.height} pixels; an animation may have at most "
                             f"{side} a side", "scale the animation down")
        out = io.BytesIO()
        source.info.clear()  # no comment or other metadata goes out
        source.save(out, "GIF", save_all=True, optimize=False)
        size = (source.width, source.height)
    limit = min(ANIMATION_BYTES[p] for p in platforms)
    if out.tell() > limit:
        raise ImageError(f"{what} is {out.tell():,} bytes as a GIF; the most is {limit:,}",
                         "shorten or scale down the animation")
    return Image.of(out.getvalue(), "image/gif", *size)


def is_animated(data: bytes) -> bool:
    """Whether ``data`` is an image of more than one frame (an animated GIF, PNG or WebP)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data), formats=FORMATS) as probe:
            return bool(getattr(probe, "is_animated", False)) and int(getattr(probe, "n_frames", 1)) > 1
    except Exception:
        return False


def prepare(data: bytes, ref: str = "") -> Image:
    """Check ``data`` is a PNG, JPEG, GIF or WebP image and re-encode it to fit every platform.

    The first frame is kept, turned upright by its EXIF orientation, scaled to at most
    :data:`MAX_SIDE` pixels a side and encoded without metadata: as PNG when the source is PNG or GIF
    (or has transparency) and that fits :data:`MAX_IMAGE_BYTES`, else as JPEG at the best quality
    that fits, scaled down further when none does.

    Raises:
        ImageError: for anything that is not such an image, or declares too many pixels.
    """
    what = f"image {shown(ref)}" if ref else "the image"
    picture, source_format, turn = _decode(data, what, MAX_SIDE)
    return _encode(picture, source_format, what, turn, max_bytes=MAX_IMAGE_BYTES, max_side=MAX_SIDE)[0]


def _decode(data: bytes, what: str, side: int) -> tuple[Any, str, int | None]:
    """The first frame of the image in ``data``, loaded, with its format and the turn that makes it upright."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

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
                    source.draft("RGB", (side, side))  # decode at 1/2, 1/4 or 1/8 scale when larger
                source.seek(0)
                source.load()
                alpha = source.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                    source.mode == "P" and "transparency" in source.info)
                mode = "RGBA" if alpha else "RGB"
                picture = source.convert(mode)  # a copy of the first frame, detached from the file
            picture.info.clear()  # no metadata goes out (EXIF, GPS, XMP, comments, text chunks, ICC)
            return picture, source_format, turn
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


def _encode(picture: Any, source_format: str, what: str, turn: int | None, *, max_bytes: int,
            max_side: int) -> tuple[Image, bool]:
    """``picture`` (RGB or RGBA, no metadata) within ``max_bytes`` and ``max_side``, upright, and whether
    the first, best encoding fitted (PNG for lossless sources, else JPEG at the highest quality).

    ``picture`` itself is never changed.
    """
    from PIL import Image as PILImage

    alpha = picture.mode == "RGBA"
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    if turn is not None:
        picture = picture.transpose(PILImage.Transpose(turn))
    lossless = alpha or source_format in ("PNG", "GIF")
    first = True
    while True:
        if lossless:
            out = io.BytesIO()
            picture.save(out, "PNG", optimize=True)
            if out.tell() <= max_bytes:
                return Image.of(out.getvalue(), "image/png", *picture.size), first
            first = False
        flat = picture
        if alpha:
            flat = PILImage.new("RGB", picture.size, (255, 255, 255))
            flat.paste(picture, mask=picture.getchannel("A"))
        for quality in JPEG_QUALITIES:
            out = io.BytesIO()
            flat.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return Image.of(out.getvalue(), "image/jpeg", *flat.size), first
            first = False
        if max(picture.size) <= 64:
            raise ImageError(f"{what} cannot be made smaller than {max_bytes:,} bytes",
                             "use a simpler or smaller image")
        picture = picture.resize((max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)),
                                 PILImage.Resampling.LANCZOS)


__all__ = ["FORMATS", "MAX_IMAGE_BYTES", "MAX_PICTURES", "MAX_PIXELS", "MAX_SIDE", "PROFILES", "REDDIT_CAPTION", "Image",
           "ImageError", "Picture", "Profile", "alt_length", "is_animated", "prepare_animation", "prepare", "prepare_versions", "shown"]
