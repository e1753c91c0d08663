"""Record what snudown renders for the Markdown we emit for each case in ``cases.json``.

Usage (from the repository root, with snudown-js installed outside the repository):

    npm install --prefix /tmp/snudown snudown-js@4.1.0
    python tests/data/reddit/snudown/record.py /tmp/snudown/node_modules/snudown-js

writes ``vectors.json`` beside this file: for every case and every Reddit part, the Markdown
``posts.render.render_reddit`` makes and the HTML snudown-js renders from it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from posts.render import render_reddit  # noqa: E402
from posts.story import Story  # noqa: E402


def story(fields: dict) -> Story:
    return Story(id=fields.get("id", "case"), date=dt.date(2025, 1, 12), **{
        "headline": "Headline", "url": "https://example.com/story", **{k: v for k, v in fields.items() if k != "id"}})


def main(package: str) -> None:
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    rendered = [(case, [(p.kind, p.part, p.payload.get("selftext", p.text)) for p in render_reddit(story(case["story"]))])
                for case in cases]
    markdown = [md for _, parts in rendered for _, _, md in parts]
    result = subprocess.run(["node", str(HERE / "record.js")], input=json.dumps(markdown), capture_output=True,
                            text=True, check=True, env={**os.environ, "SNUDOWN_JS": package}, timeout=120)
    out = json.loads(result.stdout)
    html = iter(out["html"])
    vectors = {"snudown_js": out["version"], "cases": [
        {"name": case["name"], "story": case["story"],
         "parts": [{"kind": kind, "part": part, "markdown": md, "html": next(html)} for kind, part, md in parts]}
        for case, parts in rendered]}
    (HERE / "vectors.json").write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/snudown/node_modules/snudown-js")
