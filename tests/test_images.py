"""Images are read, checked and prepared at load time, kept in the queue, and never a way into the host.

Every refusal is shown through ``oneyearago load`` as an operator meets it: exit 2, ``FILE:LINE``, and
the queue exactly as it was. URLs are fetched from a loopback test server, which the default settings
refuse to reach; tests that fetch from it allow it with ONEYEARAGO_MEDIA_ALLOW_PRIVATE.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from adapters.sandbox import read_transcript
from posts.media import MAX_IMAGE_BYTES, prepare
from tests.cli_support import isolate, run_cli
from tests.local_site import LocalSite

WHEN = "2025-03-01T12:00:00Z"
DUE = "2026-03-01T12:00:30+00:00"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


def png(width: int = 40, height: int = 30, color: str = "navy", *, noise: bool = False) -> bytes:
    picture = (PILImage.frombytes("RGB", (width, height), os.urandom(width * height * 3)) if noise
               else PILImage.new("RGB", (width, height), color))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A complete, valid black-and-white PNG of ``width`` x ``height`` pixels, all white (compresses ~1000:1)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" + b"\xff" * ((width + 7) // 8)
    body = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    body += packer.compress(row * (height % 1000)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def story_file(folder: Path, image: str, *, name: str = "s.yaml", sid: str = "pic") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"- id: other\n  date: {WHEN}\n  headline: A story without a picture\n"
                    f"- id: {sid}\n  date: {WHEN}\n  headline: A story with a picture\n"
                    f"  url: https://example.com/{sid}\n  image: {json.dumps(image)}\n")
    return path


def queue(db: Path) -> tuple[list[tuple[str, str]], list[tuple[str, int, str]]]:
    """(story id, content hash) of every story and (sha256, size, mime) of every stored image."""
    if not db.exists():
        return [], []
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        stories = sorted(conn.execute("SELECT id, content_hash FROM stories")) if "stories" in tables else []
        images = sorted(conn.execute("SELECT sha256, size, mime FROM images")) if "images" in tables else []
    return stories, images


@pytest.fixture
def loaded(env: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[Any], list[Any]]:
    """A queue that already holds a story with an image: a refused load must leave it exactly so."""
    (env / "first").mkdir()
    (env / "first" / "logo.png").write_bytes(png(color="green"))
    story_file(env / "first", "logo.png", sid="first")
    code, out, err = run(capsys, "load", "first/s.yaml")
    assert code == 0, err
    before = queue(env / "queue.db")
    assert len(before[0]) == 2 and len(before[1]) == 1
    return before


def refused(capsys: pytest.CaptureFixture[str], env: Path, before: Any, path: Path, message: str,
            hint: str = "") -> str:
    code, out, err = run(capsys, "load", str(path.relative_to(env)))
    line = f"{path.relative_to(env)}:4: pic: {message}"
    assert code == 2, (out, err)
    assert line in err, err
    if hint:
        assert f"({hint})" in err, err
    assert "nothing was loaded" in err and "Traceback" not in err
    assert queue(env / "queue.db") == before
    return err


# ---------------------------------------------------------------- local files


def test_a_file_that_is_not_an_image_is_refused(env, capsys, loaded):
    (env / "s").mkdir()
    (env / "s" / "notes.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    refused(capsys, env, loaded, story_file(env / "s", "notes.png"),
            "image 'notes.png' is not a PNG, JPEG, GIF or WebP image", "give a PNG, JPEG, GIF or WebP image file")


def test_an_absolute_path_is_refused_without_being_read(env, capsys, loaded):
    refused(capsys, env, loaded, story_file(env / "s", "/etc/passwd"),
            "image '/etc/passwd' is an absolute path; an image must be inside the story file's folder",
            "give a path relative to the story file, e.g. img/chart.png (or set ONEYEARAGO_MEDIA_DIR to a "
            "folder of images)")


def test_a_path_that_leaves_the_folder_is_refused(env, capsys, loaded):
    private = env / "private"
    private.mkdir()
    (private / "secret.png").write_bytes(png(color="red"))
    (private / "secret.png").chmod(0o600)
    refused(capsys, env, loaded, story_file(env / "s", "../private/secret.png"),
            "image '../private/secret.png' leaves the story file's folder ('..')")
    refused(capsys, env, loaded, story_file(env / "s", "img/../../private/secret.png"),
            "image 'img/../../private/secret.png' leaves the story file's folder ('..')")


def test_a_symbolic_link_out_of_the_folder_is_refused_and_one_inside_it_is_followed(env, capsys, loaded):
    private = env / "private"
    private.mkdir()
    (private / "secret.png").write_bytes(png(color="red"))
    (env / "s").mkdir()
    (env / "s" / "escape.png").symlink_to(private / "secret.png")
    (env / "s" / "up").symlink_to(private, target_is_directory=True)
    refused(capsys, env, loaded, story_file(env / "s", "escape.png"),
            "image 'escape.png' leads outside the story file's folder (through a symbolic link)",
            "copy the image into the folder instead of linking to it")
    refused(capsys, env, loaded, story_file(env / "s", "up/secret.png"),
            "image 'up/secret.png' leads outside the story file's folder (through a symbolic link)")
    (env / "s" / "img").mkdir()
    (env / "s" / "img" / "real.png").write_bytes(png(color="blue"))
    (env / "s" / "inside.png").symlink_to(env / "s" / "img" / "real.png")
    code, _, err = run(capsys, "load", str(story_file(env / "s", "inside.png").relative_to(env)))
    assert code == 0, err


def test_a_missing_file_and_a_folder_are_refused(env, capsys, loaded):
    refused(capsys, env, loaded, story_file(env / "s", "missing.png"),
            "image file 'missing.png' does not exist", "give a path relative to the story file")
    (env / "s" / "folder.png").mkdir()
    refused(capsys, env, loaded, story_file(env / "s", "folder.png"), "image 'folder.png' is not a regular file")


def test_the_media_folder_setting_is_where_relative_paths_are_read_and_it_confines_them(
        env, capsys, loaded, monkeypatch):
    media = env / "media"
    media.mkdir()
    (media / "chart.png").write_bytes(png(color="purple"))
    monkeypatch.setenv("ONEYEARAGO_MEDIA_DIR", str(media))
    refused(capsys, env, loaded, story_file(env / "s", "../first/logo.png"),
            "image '../first/logo.png' leaves the media folder (ONEYEARAGO_MEDIA_DIR) ('..')",
            "give a path relative to ONEYEARAGO_MEDIA_DIR, e.g. chart.png")
    code, out, err = run(capsys, "load", str(story_file(env / "s", "chart.png").relative_to(env)))
    assert code == 0 and "1 new" in out, err


def test_a_file_over_the_byte_cap_is_refused_before_it_is_read(env, capsys, loaded, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_MEDIA_MAX_BYTES", "5000")
    (env / "s").mkdir()
    (env / "s" / "big.png").write_bytes(png(200, 200, noise=True))
    refused(capsys, env, loaded, story_file(env / "s", "big.png"), "image 'big.png' is larger than 5,000 bytes",
            "use a smaller image (or raise ONEYEARAGO_MEDIA_MAX_BYTES)")


@pytest.mark.parametrize(("size", "message"), [
    ((20_000, 20_000), "image 'bomb.png' declares more than 40,000,000 pixels"),
    ((10_000, 5_000), "image 'bomb.png' is 10,000×5,000 pixels, more than 40,000,000"),
], ids=["past-pillow-limit", "past-our-limit"])
def test_a_decompression_bomb_is_refused_without_being_decoded(env, capsys, loaded, size, message):
    (env / "s").mkdir()
    bomb = bomb_png(*size)  # a few hundred KB that would decode to gigabytes
    assert len(bomb) < 500_000
    (env / "s" / "bomb.png").write_bytes(bomb)
    started = time.monotonic()
    refused(capsys, env, loaded, story_file(env / "s", "bomb.png"), message)
    assert time.monotonic() - started < 5


def test_a_png_over_the_bluesky_limit_is_recompressed_to_fit_and_stored(env, capsys):
    source = png(1600, 1200, noise=True)
    assert len(source) > 4 * MAX_IMAGE_BYTES
    (env / "s").mkdir()
    (env / "s" / "huge.png").write_bytes(source)
    code, _, err = run(capsys, "load", str(story_file(env / "s", "huge.png").relative_to(env)))
    assert code == 0, err
    (sha, size, mime), = queue(env / "queue.db")[1]
    with sqlite3.connect(env / "queue.db") as conn:
        data = conn.execute("SELECT data FROM images").fetchone()[0]
    assert size == len(data) <= MAX_IMAGE_BYTES and hashlib.sha256(data).hexdigest() == sha
    with PILImage.open(io.BytesIO(data)) as back:
        assert (back.format, mime) == ("JPEG", "image/jpeg")
        assert back.width <= 1600 and back.width * 3 == back.height * 4


def test_a_large_image_is_scaled_down_and_its_metadata_dropped(env, capsys):
    picture = PILImage.new("RGB", (3000, 1500), "white")
    exif = PILImage.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS: where it was taken
    exif[0x0112] = 6  # shown turned a quarter to the right
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif.tobytes())
    (env / "s").mkdir()
    (env / "s" / "photo.jpg").write_bytes(out.getvalue())
    code, _, err = run(capsys, "load", str(story_file(env / "s", "photo.jpg").relative_to(env)))
    assert code == 0, err
    with sqlite3.connect(env / "queue.db") as conn:
        data = conn.execute("SELECT data FROM images").fetchone()[0]
    with PILImage.open(io.BytesIO(data)) as back:
        assert back.size == (1000, 2000)  # upright, and at most 2000 pixels a side
        assert dict(back.getexif()) == {} and b"PhoneMaker" not in data


# ---------------------------------------------------------------- the anniversary uses the stored bytes


def test_the_stored_bytes_are_posted_even_after_the_file_is_changed_or_deleted(env, capsys):
    (env / "s").mkdir()
    original = png(64, 48, "teal")
    (env / "s" / "chart.png").write_bytes(original)
    path = story_file(env / "s", "chart.png")
    code, _, err = run(capsys, "load", str(path.relative_to(env)))
    assert code == 0, err
    (sha, size, _), = queue(env / "queue.db")[1]
    assert sha == prepare(original).sha256
    (env / "s" / "chart.png").write_bytes(png(64, 48, "orange"))  # changed after the load ...
    code, _, err = run(capsys, "run", "--once", "--now", DUE)
    assert code == 0, err
    (env / "s" / "chart.png").unlink()  # ... and gone
    records = read_transcript(env / "transcript.jsonl")
    roots = [r for r in records if r["story_id"] == "pic" and r["kind"] == "root"]
    assert sorted(r["platform"] for r in roots) == ["bluesky", "mastodon", "reddit", "x"]
    assert all(r["image"]["sha256"] == sha and r["image"]["bytes"] == size for r in roots)
    assert all("image" not in r for r in records if r["story_id"] == "other")


def test_a_missing_file_at_posting_time_changes_nothing_and_a_reload_takes_the_new_picture(env, capsys):
    (env / "s").mkdir()
    (env / "s" / "chart.png").write_bytes(png(color="teal"))
    path = story_file(env / "s", "chart.png")
    run(capsys, "load", str(path.relative_to(env)))
    first = queue(env / "queue.db")
    (env / "s" / "chart.png").write_bytes(png(color="orange"))
    code, out, _ = run(capsys, "load", str(path.relative_to(env)))
    assert code == 0 and "1 updated" in out  # a new picture is an edit of the story
    stories, images = queue(env / "queue.db")
    assert len(images) == 2 and stories != first[0]
    (env / "s" / "chart.png").unlink()
    code, _, err = run(capsys, "run", "--once", "--now", DUE)
    assert code == 0, err
    roots = [r for r in read_transcript(env / "transcript.jsonl") if r["story_id"] == "pic" and r["kind"] == "root"]
    assert {r["image"]["sha256"] for r in roots} == {prepare(png(color="orange")).sha256}


# ---------------------------------------------------------------- URLs


class Server(LocalSite):
    """A loopback HTTP server with a few routes; it records every request it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.image = png(32, 32, "maroon")

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        path = h.path
        if path == "/image.png":
            self.send(h, 200, self.image, {"Content-Type": "image/png"})
        elif path == "/big":
            self.send(h, 200, png(400, 400, noise=True))
        elif path == "/big-unannounced":  # no Content-Length: the body ends when the connection closes
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            for _ in range(100):
                h.wfile.write(b"\0" * 10_000)
        elif path == "/stall":
            h.send_response(200)
            h.send_header("Content-Length", "100")
            h.end_headers()
            h.wfile.flush()
            self.stop.wait(10)
        elif path == "/drip":  # each byte in time, the whole far too late
            h.send_response(200)
            h.send_header("Content-Length", "1000")
            h.end_headers()
            for _ in range(1000):
                if self.stop.wait(0.2):
                    return
                h.wfile.write(b"\0")
                h.wfile.flush()
        elif path == "/drip-headers":  # the status line at once, then a header a byte every 0.2 s, 8 s in all
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            h.wfile.flush()
            for byte in b"a" * 40 + b"\r\nContent-Length: 0\r\n\r\n":
                if self.stop.wait(0.2):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
        elif path == "/missing":
            self.send(h, 404, b"not here")
        elif path.startswith("/to/"):
            location = path[len("/to/"):].replace("PORT", str(self.port))
            self.send(h, 302, b"", {"Location": location})
        else:
            self.send(h, 500, b"?")


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server().start()
    try:
        yield running
    finally:
        running.close()


def test_a_url_on_a_loopback_address_is_refused_by_default_and_never_requested(env, capsys, loaded, server):
    url = server.url("/image.png")
    refused(capsys, env, loaded, story_file(env / "s", url),
            f"image URL {url!r} points to 127.0.0.1, a loopback, private or link-local address; such URLs are "
            "not fetched", "give a public address, or allow that network with ONEYEARAGO_MEDIA_ALLOW_PRIVATE")
    assert server.paths == []


def test_an_image_url_is_fetched_at_load_time_and_stored(env, capsys, server, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_MEDIA_ALLOW_PRIVATE", "127.0.0.1")
    code, _, err = run(capsys, "load", str(story_file(env / "s", server.url("/image.png")).relative_to(env)))
    assert code == 0, err
    assert server.paths == ["/image.png"]
    (sha, _, mime), = queue(env / "queue.db")[1]
    assert sha == prepare(server.image).sha256 and mime == "image/png"
    server.stop.set()  # the anniversary needs the server no more
    code, _, err = run(capsys, "run", "--once", "--now", DUE)
    assert code == 0, err
    roots = [r for r in read_transcript(env / "transcript.jsonl") if r["story_id"] == "pic" and r["kind"] == "root"]
    assert len(roots) == 4 and {r["image"]["sha256"] for r in roots} == {sha}
    assert server.paths == ["/image.png"]


def test_a_redirect_is_followed_and_checked_at_every_hop(env, capsys, loaded, server, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_MEDIA_ALLOW_PRIVATE", "127.0.0.1")
    url = server.url("/to/http://127.0.0.2:PORT/image.png")
    refused(capsys, env, loaded, story_file(env / "s", url),
            f"image URL {url!r} points to 127.0.0.2, a loopback, private or link-local address (through a "
            f"redirect to 'http://127.0.0.2:{server.port}/image.png'); such URLs are not fetched")
    url = server.url("/to/file:///etc/passwd")
    refused(capsys, env, loaded, story_file(env / "s", url),
            f"image URL {url!r} redirects to a file: address; only http and https are fetched")
    assert server.paths == ["/to/http://127.0.0.2:PORT/image.png", "/to/file:///etc/passwd"]
    code, _, err = run(capsys, "load", str(story_file(env / "s", server.url("/to//image.png")).relative_to(env)))
    assert code == 0, err
    assert server.paths[-1] == "/image.png"


@pytest.mark.parametrize(("path", "message"), [
    ("/big", "sends more than 20,000 bytes"),
    ("/big-unannounced", "sends more than 20,000 bytes"),
    ("/stall", "took longer than 1 s to fetch"),
    ("/drip", "took longer than 1 s to fetch"),
    ("/drip-headers", "took longer than 1 s to fetch"),
    ("/to//drip-headers", "took longer than 1 s to fetch"),
    ("/missing", "answered HTTP 404"),
], ids=["announced-too-big", "unannounced-too-big", "stalls", "drips", "drips-headers", "drips-after-redirect",
        "not-found"])
def test_a_url_is_fetched_within_a_size_cap_and_a_deadline(env, capsys, loaded, server, monkeypatch, path, message):
    monkeypatch.setenv("ONEYEARAGO_MEDIA_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("ONEYEARAGO_MEDIA_MAX_BYTES", "20000")
    monkeypatch.setenv("ONEYEARAGO_MEDIA_TIMEOUT", "1s")
    url = server.url(path)
    started = time.monotonic()
    refused(capsys, env, loaded, story_file(env / "s", url), f"image URL {url!r} {message}")
    assert time.monotonic() - started < 5


def test_the_allow_private_setting_is_checked(env, capsys):
    (env / "stories.yaml").write_text(f"- date: {WHEN}\n  headline: H\n")
    code, _, err = run(capsys, "--set", "media_allow_private=192.168.1.0/33", "load", "stories.yaml")
    assert code != 0 and "ONEYEARAGO_MEDIA_ALLOW_PRIVATE" in err and "Traceback" not in err


# ---------------------------------------------------------------- every backend


def test_the_engine_hands_the_stored_bytes_to_the_adapter_on_every_backend(tmp_path, store, settings, engine, fakes,
                                                                            clock):
    import datetime as dt

    from bot.planner import Planner
    from bot.sources.stories import load_stories

    source = png(300, 200, noise=True)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "chart.png").write_bytes(source)
    stories = load_stories([story_file(tmp_path / "s", "chart.png")])
    Planner(store, settings).load(stories, now=clock["t"])
    (tmp_path / "s" / "chart.png").unlink()
    due = dt.datetime(2026, 3, 1, 12, 0, 30, tzinfo=dt.UTC)
    clock["t"] = due
    engine.run_once(due)
    for platform, fake in fakes.items():
        roots = {p.post.story_id: p.post for p in fake.posts if p.post.kind == "root"}
        assert set(roots) == {"other", "pic"}, platform
        thumb = roots["pic"].attachments["thumb"]
        assert thumb == prepare(source) and hashlib.sha256(thumb.data).hexdigest() == thumb.sha256
        assert roots["other"].attachments == {}


def test_the_engine_hands_over_the_images_a_delivery_declares_not_its_storys(tmp_path, store, settings, engine,
                                                                            fakes, clock):
    import datetime as dt

    from sqlalchemy import select, update

    from bot.models import DeliveryRow
    from bot.planner import Planner
    from bot.sources.stories import load_stories

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "chart.png").write_bytes(png(40, 30, "navy"))
    stories = load_stories([story_file(tmp_path / "s", "chart.png")])
    Planner(store, settings).load(stories, now=clock["t"])
    sha = next(s for s in stories if s.id == "pic").image_sha256
    with store.session() as session:
        declared = dict(session.execute(select(DeliveryRow.platform, DeliveryRow.attachments).where(
            DeliveryRow.story_id == "pic", DeliveryRow.kind == "root")).all())
        assert declared == {"x": {"thumb": sha}, "reddit": {"thumb": sha}, "bluesky": {"thumb": sha},
                            "mastodon": {"thumb": sha}}
        # The Bluesky root declares none (the story still names its image), the X root one the queue lacks.
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "pic", DeliveryRow.kind == "root",
                                                  DeliveryRow.platform == "bluesky").values(attachments=None))
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "pic", DeliveryRow.kind == "root",
                                                  DeliveryRow.platform == "x").values(attachments={"thumb": "0" * 64}))
    due = dt.datetime(2026, 3, 1, 12, 0, 30, tzinfo=dt.UTC)
    clock["t"] = due
    engine.run_once(due)
    roots = {platform: next(p.post for p in fake.posts if p.post.story_id == "pic") for platform, fake in fakes.items()}
    assert roots["bluesky"].attachments == {} and roots["x"].attachments == {}
    assert roots["reddit"].attachments["thumb"].sha256 == sha


def test_preview_shows_the_stored_image(env, capsys):
    (env / "s").mkdir()
    (env / "s" / "chart.png").write_bytes(png(64, 48, "teal"))
    run(capsys, "load", str(story_file(env / "s", "chart.png").relative_to(env)))
    prepared = prepare(png(64, 48, "teal"))
    code, out, _ = run(capsys, "preview", "pic", "--json")
    parts = json.loads(out)
    assert code == 0 and {p["kind"] for p in parts} == {"root"}
    assert all(p["image"] == {"sha256": prepared.sha256, "bytes": prepared.size, "mime": "image/png", "width": 64,
                              "height": 48, "stored": True} for p in parts)
    code, out, _ = run(capsys, "preview", "pic")
    assert f"64×48 image/png, {prepared.size:,} bytes, sha256 {prepared.sha256}" in " ".join(out.split())
    _, out, _ = run(capsys, "preview", "other", "--json")
    assert all("image" not in p for p in json.loads(out))


def test_every_address_of_a_host_is_checked_and_the_request_goes_to_the_checked_one(server):
    import ipaddress

    from bot.sources.images import MediaLoader, MediaPolicy, parse_networks
    from posts.media import ImageError

    policy = MediaPolicy(allow_private=parse_networks(["127.0.0.1"]))
    answers = {"img.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.1.2.3"]}

    def resolve(host: str, port: int) -> list:
        return [ipaddress.ip_address(a) for a in answers[host]]

    image = MediaLoader(policy, resolve=resolve).load(f"http://img.test:{server.port}/image.png", None)
    assert image == prepare(server.image)
    assert server.paths == ["/image.png"] and server.hosts == [f"img.test:{server.port}"]  # name kept, address pinned
    with pytest.raises(ImageError, match=r"points to 10\.1\.2\.3, a loopback, private or link-local address"):
        MediaLoader(policy, resolve=resolve).load(f"http://mixed.test:{server.port}/image.png", None)
    assert server.paths == ["/image.png"]
