"""Keep the images prepared at load time in the queue, and hand those a post declares to its adapter."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.models import DeliveryRow, ImageRow, StoryRow
from bot.sources.images import MediaPolicy
from bot.store import Store
from posts.media import Image, Picture

log = logging.getLogger(__name__)


def media_policy(settings: Settings, *, uploaded_to: Path | None = None, store: Store | None = None) -> MediaPolicy:
    """Where ``load`` may read images from, and what their pictures must respect, as the settings say.

    With ``store``, the alt-text limit a Mastodon instance announced (remembered with its account by
    ``run`` and ``doctor``) replaces the stock one.

    ``uploaded_to`` is the folder of a dashboard upload: its story files may name only the images
    uploaded with them (in that folder) or URLs, never a path on the server.
    """
    return MediaPolicy(
        media_dir=uploaded_to if uploaded_to is not None else settings.media_dir,
        allow_private=settings.media_allow_private,
        max_bytes=settings.media_max_bytes,
        timeout=settings.media_timeout.total_seconds(),
        uploaded=uploaded_to is not None,
        platforms=tuple(settings.platforms),
        story_card=settings.story_card,
        reddit_gallery=settings.reddit_images == "gallery",
        alt_limits=_announced_alt_limits(store) if store is not None else (),
    )


def _announced_alt_limits(store: Store) -> tuple[tuple[str, int], ...]:
    from bot.accounts import remembered_limits

    limits = remembered_limits(store, "mastodon") or {}
    limit = limits.get("description_limit")
    return (("mastodon", int(limit)),) if isinstance(limit, int) and limit > 0 else ()


def store_images(session: Session, images: Iterable[Image], now: dt.datetime) -> int:
    """Insert the images not stored yet (content-addressed: an equal hash is the same bytes)."""
    wanted = {image.sha256: image for image in images}
    if not wanted:
        return 0
    have = set(session.scalars(select(ImageRow.sha256).where(ImageRow.sha256.in_(list(wanted)))))
    rows = [{"sha256": image.sha256, "mime": image.mime, "width": image.width, "height": image.height,
             "size": image.size, "data": image.data, "created_at": now}
            for sha, image in wanted.items() if sha not in have]
    if rows:
        session.execute(ImageRow.__table__.insert(), rows)  # type: ignore[attr-defined]
    return len(rows)


def stored_image(session: Session, sha256: str) -> Image | None:
    """The stored image with this hash; ``None`` when there is none (or its bytes do not match it)."""
    row = session.get(ImageRow, sha256)
    if row is None:
        return None
    image = Image.of(bytes(row.data), row.mime, row.width, row.height)
    if image.sha256 != sha256:
        log.error("stored image %s does not match its hash; the post goes without it", sha256)
        return None
    return image


def attachments_of(session: Session, row: DeliveryRow) -> dict[str, Image]:
    """The images a delivery's post carries, by name: the bytes stored when its story was loaded.

    Rendering declares them per part (``Part.attachments``: name and sha256, the root's ``thumb``), and
    the queue keeps them with the delivery; an image no longer stored (or whose bytes do not match
    its hash) is left out, and the post goes without it.
    """
    images = {}
    for name, sha256 in (row.attachments or {}).items():
        image = stored_image(session, sha256)
        if image is None:
            log.error("the %s image of %s (%s) is not in the queue; the post goes without it", name, row.label,
                      sha256)
            continue
        images[name] = image
    return images


def pictures_of(session: Session, row: DeliveryRow) -> tuple[Picture, ...]:
    """The pictures a delivery's post shows, in order, with their alt text: the bytes stored at load.

    A picture no longer stored (or whose bytes do not match its hash) is left out, and said so: the
    post goes with the others rather than not at all.
    """
    pictures = []
    for i, item in enumerate(row.pictures or [], start=1):
        image = stored_image(session, str(item.get("sha256")))
        if image is None:
            log.error("picture %d of %s (%s) is not in the queue; the post goes without it", i, row.label,
                      item.get("sha256"))
            continue
        pictures.append(Picture(image, str(item.get("alt") or "")))
    return tuple(pictures)


def pictures_info(store: Store, hashes: Iterable[str]) -> dict[str, dict[str, object]]:
    """What is stored of each picture by its hash (bytes, type, dimensions), without the bytes themselves."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    with store.session() as session:
        rows = session.execute(select(ImageRow.sha256, ImageRow.size, ImageRow.mime, ImageRow.width, ImageRow.height)
                               .where(ImageRow.sha256.in_(wanted))).all()
    return {row.sha256: {"bytes": row.size, "mime": row.mime, "width": row.width, "height": row.height}
            for row in rows}


def describe_picture(info: dict[str, object] | None) -> str:
    """``640×480 JPEG, 35,538 bytes``: a picture's size as the operator reads it."""
    if not info:
        return "not in the queue (load the story again)"
    kind = str(info["mime"]).removeprefix("image/").upper()
    return f"{info['width']}×{info['height']} {kind}, {int(info['bytes']):,} bytes"  # type: ignore[call-overload]


def image_info(store: Store, story_id: str) -> dict[str, object] | None:
    """What is stored of a story's image (hash, size, type, dimensions), without its bytes."""
    with store.session() as session:
        content = session.scalar(select(StoryRow.content).where(StoryRow.id == story_id)) or {}
    sha256 = content.get("image_sha256")
    if not sha256:
        return None
    info = pictures_info(store, [sha256]).get(sha256)
    return {"sha256": sha256, **info, "stored": True} if info else {"sha256": sha256, "stored": False}
