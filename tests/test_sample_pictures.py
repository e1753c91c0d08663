"""The sample queue's pictures: made by the project's own script, small, described, and all in use."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

import yaml
from PIL import Image as PILImage

from bot.sources.stories import EXTENSIONS
from posts.media import REDDIT_CAPTION, prepare

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "bot" / "sources" / "samples"
PICTURES = SAMPLES / "pictures"
SCRIPT = ROOT / "scripts" / "make_sample_pictures.py"


def declared() -> list[tuple[str, str, dict[str, Any]]]:
    """(story id, field, entry) of every picture the sample stories declare."""
    stories = yaml.safe_load((SAMPLES / "2025.yaml").read_text(encoding="utf-8"))
    return [(story.get("id", story["headline"]), field, entry)
            for story in stories for field in ("images", "followup_images") for entry in story.get(field, ())]


def script() -> Any:
    spec = importlib.util.spec_from_file_location("make_sample_pictures", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_some_stories_declare_pictures_and_one_declares_followup_pictures():
    entries = declared()
    assert len({sid for sid, field, _ in entries if field == "images"}) >= 2
    assert len({sid for sid, field, _ in entries if field == "followup_images"}) >= 1


def test_every_declared_picture_is_a_small_png_in_the_folder_with_a_real_description():
    for sid, field, entry in declared():
        assert set(entry) == {"path", "alt"}, (sid, field)
        path = (SAMPLES / entry["path"]).resolve()
        assert not Path(entry["path"]).is_absolute() and path.parent == PICTURES, (sid, entry["path"])
        data = path.read_bytes()
        assert len(data) < 200_000, entry["path"]
        with PILImage.open(io.BytesIO(data), formats=["PNG"]) as image:
            assert image.size == (1200, 675)
            assert not image.getexif() and not getattr(image, "text", {})
        assert prepare(data, entry["path"]).mime == "image/png"
        alt = entry["alt"]
        assert 60 <= len(alt) <= REDDIT_CAPTION, (sid, len(alt))  # fits a Reddit caption, says more than a label
        assert alt == alt.strip() and "\n" not in alt


def test_every_picture_in_the_folder_is_used_and_nothing_there_is_read_as_a_story_file():
    used = {Path(entry["path"]).name for _, _, entry in declared()}
    files = sorted(p.name for p in PICTURES.iterdir())
    assert sorted(p for p in files if p.endswith(".png")) == sorted(used)
    # the loader reads every story-file ending under samples/: a README.md here would be taken for a story
    assert not [name for name in files if Path(name).suffix.lower() in EXTENSIONS]
    assert "make_sample_pictures.py" in (PICTURES / "README.txt").read_text(encoding="utf-8")


def test_the_script_draws_the_committed_pictures():
    module = script()
    assert set(module.PICTURES) == {p.name for p in PICTURES.glob("*.png")}
    for name, make in module.PICTURES.items():
        drawn = make()
        assert make() == drawn, f"{name}: the script is not deterministic"
        with PILImage.open(io.BytesIO(drawn)) as fresh, PILImage.open(PICTURES / name) as committed:
            # pixels, not bytes: another zlib may compress the same picture differently
            assert fresh.size == committed.size and fresh.tobytes() == committed.convert(fresh.mode).tobytes(), (
                f"{name} differs from what scripts/make_sample_pictures.py draws: run it again")
