"""Images through the dashboard's upload: only the images uploaded with the story files, or URLs.

An uploaded file can never name a path on the server, and the page never tells whether one exists.
"""

from __future__ import annotations

import html
import io
import re
import tempfile
from pathlib import Path

import markupsafe
import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.models import ImageRow, StoryRow
from bot.store import Store
from posts.media import prepare, shown
from tests.web.helpers import csrf_of


def png(color: str = "navy") -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (24, 16), color).save(out, "PNG")
    return out.getvalue()


def story(image: str) -> bytes:
    return (f"- id: pictured\n  date: 2025-05-01\n  headline: A story with a picture\n"
            f"  url: https://example.com/pictured\n  image: '{image}'\n").encode()


def upload(client: TestClient, *files: tuple[str, bytes]):
    return client.post("/upload", data={"csrf_token": csrf_of(client)},
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def problems(response) -> list[str]:
    """The problem cells of the upload page, as text."""
    cells = re.findall(r"<tr><td><code>(.*?)</code></td><td><code>.*?</code></td><td>(.*?)</td></tr>",
                       response.text, re.S)
    return [f"{where}: {html.unescape(re.sub(r'<[^>]+>', '', text))}" for where, text in cells]


def stored(store: Store) -> tuple[list[str], list[str]]:
    with store.session() as session:
        return list(session.scalars(select(StoryRow.id))), list(session.scalars(select(ImageRow.sha256)))


@pytest.fixture
def upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The uploads' temporary folders are made in here, so that '../' leads somewhere known."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_story_file_may_use_an_image_uploaded_with_it(make_client, store: Store):
    response = upload(make_client(), ("s.yaml", story("chart.png")), ("chart.png", png()))
    assert response.status_code == 200, response.text
    assert "Loaded 1 story" in response.text and "s.yaml, chart.png" in response.text
    assert stored(store) == (["pictured"], [prepare(png()).sha256])


def test_server_paths_are_refused_alike_whether_they_exist_or_not(make_client, store: Store, upload_dir: Path,
                                                                   tmp_path: Path):
    (upload_dir / "there.png").write_bytes(png("red"))  # what '../../there.png' reaches from an upload's folder
    (tmp_path / "real.png").write_bytes(png("red"))
    client = make_client()
    pairs = [("/etc/hostname", "/etc/no-such-file-here"),
             (str(tmp_path / "real.png"), str(tmp_path / "unreal.png")),
             ("../../there.png", "../../nowhere.png"),
             ("../x.png", "../y.png"),
             ("images/../../../there.png", "images/../../../nowhere.png")]
    for existing, missing in pairs:
        seen = []
        for ref in (existing, missing):
            response = upload(client, ("s.yaml", story(ref)))
            assert response.status_code == 422, ref
            # no server path is ever shown, but for the reference the story itself gives (cut to fit a message)
            quoted = str(markupsafe.escape(shown(ref)))
            assert str(tmp_path) not in response.text.replace(ref, "REF").replace(quoted, "REF")
            seen.append((response.status_code, [p.replace(shown(ref), "REF") for p in problems(response)]))
        assert seen[0] == seen[1], (existing, missing)
        assert seen[0][1] == ["s.yaml:1: image REF is not one of the images uploaded with the story file (upload "
                              "the image file together with the story file (and name it by its file name), or give "
                              "an http(s) URL)"]
    assert stored(store) == ([], [])


def test_an_uploaded_file_that_is_not_an_image_is_refused(make_client, store: Store):
    response = upload(make_client(), ("s.yaml", story("chart.png")), ("chart.png", b"GIF89a not really"))
    assert response.status_code == 422
    assert problems(response) == ["s.yaml:1: image 'chart.png' is not a PNG, JPEG, GIF or WebP image (give a PNG, "
                                  "JPEG, GIF or WebP image file)"]
    assert stored(store) == ([], [])


def test_an_image_url_in_an_uploaded_file_on_a_loopback_address_is_refused(make_client, store: Store):
    response = upload(make_client(), ("s.yaml", story("http://127.0.0.1:9/chart.png")))
    assert response.status_code == 422
    assert "points to 127.0.0.1, a loopback, private or link-local address" in html.unescape(response.text)
    assert stored(store) == ([], [])


def test_images_alone_are_not_a_load(make_client, store: Store):
    response = upload(make_client(), ("chart.png", png()))
    assert response.status_code == 400 and "Choose at least one story file" in response.text
    client = make_client()
    response = upload(client, ("s.yaml", story("chart.png")), ("chart.png", png()), ("chart.png", png("red")))
    assert response.status_code == 400 and "Two uploaded images are named chart.png" in response.text
    assert stored(store) == ([], [])
