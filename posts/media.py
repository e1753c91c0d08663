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


__all__ = ["FORMATS", "MAX_IMAGE_BYTES", "MAX_PIXELS", "MAX_SIDE", "Image", "ImageError", "prepare", "shown"]
