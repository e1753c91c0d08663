"""Record keys: the TIDs the bot chooses match atproto's syntax and its reference encoder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.tid import encode, next_tid

TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
SYNTAX = Path(__file__).parent / "data" / "bluesky" / "interop" / "syntax"


def test_encoder_matches_the_reference_value():
    assert encode(1724171495793000, 512) == "3l25zusnsfck2"


def test_next_tid_is_strictly_increasing_and_valid():
    keys = [next_tid() for _ in range(1000)]
    assert keys == sorted(keys) and len(set(keys)) == 1000
    assert all(TID_RE.fullmatch(k) for k in keys)


@pytest.mark.parametrize("bad", [(-1, 0), (2**53, 0), (0, 1024), (0, -1)])
def test_encoder_refuses_out_of_range_values(bad):
    with pytest.raises(ValueError):
        encode(*bad)


def test_valid_interop_tids_match_the_pattern_we_generate():
    lines = [ln.strip() for ln in (SYNTAX / "tid_syntax_valid.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines and all(TID_RE.fullmatch(t) for t in lines)
