"""Fuzzing ``oneyearago load`` with generated story files in every format, hostile ones included.

Only two outcomes are allowed: the file loads (exit 0), or the load is refused with exit 2, every
problem located as ``FILE:LINE``, and the queue exactly as it was. Either way within a time bound
(hypothesis' per-example deadline) and a memory bound (tracemalloc's peak), and without a raw
control character on the terminal. ``HYPOTHESIS_EXAMPLES`` raises the number of examples.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from posts import limits
from posts.story import FIELDS
from tests.cli_support import isolate, snapshot

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))
MEMORY_BOUND = 256 * 1024 * 1024
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

HOSTILE_CHARS = ["\x00", "\x07", "\x1b", "\r", "\x7f", "\x85", "\x9b", "\u202e", "\u2066", "\u2028", "\u2029",
                 "\ufeff", "\t", "\n", "é", "😀", "\u200f"]
SYNTAX_CHARS = list(" :-,\"'#[]{}&*|>!%@`\\")
text = st.text(alphabet=st.sampled_from(list("abcxyz019") + SYNTAX_CHARS + HOSTILE_CHARS), max_size=24)
huge = st.sampled_from(sorted(limits.MAX_FIELD_CHARS)).map(lambda f: "w " * (limits.MAX_FIELD_CHARS[f] // 2 + 1))
dates = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.sampled_from(["2025-01-01", "2025-02-30", "9998-12-31", "0001-01-01", "1900-01-01", "2999-12-31",
                     "3000-01-01", "1899-12-31", "2025-01-01T25:00", "2025-03-01T12:00:00+14:00",
                     "2999-12-31T23:59:59-12:00", "not a date", ""]),
)
scalar = st.one_of(text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True))
nested: Any = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)
field_value = st.one_of(text, text, scalar, nested, huge)
field_name = st.one_of(st.sampled_from(FIELDS), text)


@st.composite
def stories(draw: st.DrawFn) -> list[dict[str, Any]]:
    result = []
    for _ in range(draw(st.integers(0, 4))):
        story: dict[str, Any] = {}
        if draw(st.booleans()):
            story["date"] = draw(dates)
        if draw(st.booleans()):
            story["headline"] = draw(text)
        for _ in range(draw(st.integers(0, 4))):
            story[draw(field_name)] = draw(field_value)
        result.append(story)
    return result


def _yaml_scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def to_yaml(items: list[dict[str, Any]], raw: bool) -> str:
    if not raw:
        return yaml.safe_dump(items, allow_unicode=True, sort_keys=False)
    # written by hand, as an operator might: unquoted, possibly broken, possibly with a key twice
    lines = []
    for item in items:
        for i, (key, value) in enumerate(item.items()):
            lines.append(f"{'- ' if i == 0 else '  '}{key}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def to_json(items: list[dict[str, Any]], raw: bool) -> str:
    if not raw:
        return json.dumps(items, ensure_ascii=False, default=str)
    # objects written pair by pair: a key may repeat
    return "[" + ",\n".join("{" + ", ".join(f"{json.dumps(str(k))}: {json.dumps(v, default=str)}"
                                            for k, v in list(item.items()) + list(item.items())[:1]) + "}"
                            for item in items) + "]"


def to_jsonl(items: list[dict[str, Any]], raw: bool) -> str:
    return "".join(json.dumps(item, ensure_ascii=raw, default=str) + "\n" for item in items)


def to_csv(items: list[dict[str, Any]], raw: bool) -> str:
    header = list(dict.fromkeys(str(k) for item in items for k in item)) or ["date", "headline"]
    if raw:  # cells joined by hand: quotes may be left open
        return "\n".join([",".join(header)] + [",".join(str(item.get(h, "")) for h in header) for item in items]) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for item in items:
        writer.writerow([item.get(h, "") for h in header])
    return buffer.getvalue()


def to_markdown(items: list[dict[str, Any]], raw: bool) -> str:
    item = dict(items[0]) if items else {}
    body = str(item.pop("body", "A body."))
    return "---\n" + (to_yaml([item], raw)[2:].replace("\n  ", "\n") if item else "") + "---\n" + body + "\n"


WRITERS = {"yaml": to_yaml, "json": to_json, "jsonl": to_jsonl, "csv": to_csv, "md": to_markdown}

HOSTILE_FILES = {
    "yaml": ["- date: &a [*a]\n  headline: h\n", "[" * 5000 + "\n", "- &x " + "[*x, " * 3 + "\n",
             "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
             "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ndate: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nheadline: bomb\n",
             "- date: 2025-01-01\n  headline: a\n  headline: b\n", "- date: 2025-01-01\n  headline: !!python/name:os.system\n"],
    "json": ["[" * 100_000, '[{"date": "2025-01-01", "headline": "a", "headline": "b"}]', '[{"n": ' + "9" * 5000 + "}]"],
    "jsonl": ["{" * 50_000 + "\n", '{"date": "2025-01-01", "headline": "\\u0000"}\n'],
    "csv": ['date,headline\n2025-01-01,"open\n2025-01-02,b\n', "date,date\n2025-01-01,2025-01-02\n"],
    "md": ["---\ndate: 2025-01-01\nheadline: h\nsummary: |\n  a\n  ---\n  b\n---\nbody\n", "---\n---\n"],
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ONEYEARAGO_DATABASE_URL", f"sqlite:///{tmp_path / 'queue.db'}")
    (tmp_path / "base.yaml").write_text("- id: kept\n  date: 2025-06-01\n  headline: Already queued\n")
    assert _load(["load", "base.yaml"])[0] == 0
    return tmp_path


def _load(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process; the consoles write to whatever sys.stdout/sys.stderr are."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


_counter = itertools.count()


def check_load(folder: Path, kind: str, content: str) -> None:
    name = f"f{next(_counter)}.{kind}"
    (folder / name).write_text(content, encoding="utf-8", newline="")
    db_url = f"sqlite:///{folder / 'queue.db'}"
    before = snapshot(db_url)
    tracemalloc.start()
    try:
        code, out, err = _load(["load", "--render", name])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{name}: peak {peak:,} bytes"
    assert not RAW_CONTROL.search(out + err), (name, out, err)
    assert code in (0, 2), (name, code, out, err, content[:500])
    if code == 0:
        assert "Loaded" in out, out
        return
    lines = [line for line in err.splitlines() if line]
    assert lines and lines[-1].startswith("error: ") and "nothing was loaded" in lines[-1], err
    for line in lines[:-1]:
        assert re.match(rf"{re.escape(name)}:\d+: ", line), (line, content[:500])
        assert len(line) < 1000, line
    assert snapshot(db_url) == before, name


FUZZ = settings(max_examples=EXAMPLES, deadline=dt.timedelta(seconds=20),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.mark.slow
@pytest.mark.timeout(900)
@FUZZ
@given(kind=st.sampled_from(sorted(WRITERS)), items=stories(), raw=st.booleans())
def test_a_generated_story_file_loads_or_is_refused_at_its_line(workdir, kind, items, raw):
    check_load(workdir, kind, WRITERS[kind](items, raw))


@pytest.mark.slow
@pytest.mark.timeout(900)
@FUZZ
@given(kind=st.sampled_from(sorted(HOSTILE_FILES)), data=st.data(),
       prefix=st.sampled_from(["", "\ufeff", "# note\n"]))
def test_a_hostile_story_file_is_refused_at_its_line(workdir, kind, data, prefix):
    content = data.draw(st.sampled_from(HOSTILE_FILES[kind]))
    check_load(workdir, kind, (prefix if kind != "md" else prefix.replace("# note\n", "")) + content)
