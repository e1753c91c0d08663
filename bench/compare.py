"""Compare this tree's benchmarks with another commit's, on the same machine, in the same minutes.

    python -m bench.compare 75e57cf                     # rendering, loading and tick (the defaults)
    python -m bench.compare HEAD~5 tick --runs 5         # some benchmarks, more rounds

The other commit is exported with ``git archive`` into a temporary folder and its own ``python -m
bench`` runs there, with this interpreter (so the same libraries). The two trees take turns, round
after round, so that a noisy neighbour slows both alike; each figure keeps its best round (the
highest rate, the lowest time), the usual defence against noise that only ever makes things slower.
Figures are matched by benchmark and metric name; ratios (unit ``x``) are left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HIGHER_IS_BETTER = {"stories/s", "deliveries/s"}
DEFAULT = ("rendering", "loading", "tick")


def _export(rev: str, folder: Path) -> None:
    archive = folder / "tree.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", "--format=tar", rev], check=True, stdout=handle)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    archive.unlink()


def _run(tree: Path, names: list[str], out: Path) -> dict[tuple[str, str], tuple[float, str]]:
    subprocess.run([sys.executable, "-m", "bench", *names, "--json", str(out)], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)
    rows = json.loads(out.read_text())["results"]
    return {(r["benchmark"], r["metric"]): (float(r["value"]), r["unit"]) for r in rows if r["unit"] != "x"}


def _best(values: list[float], unit: str) -> float:
    return max(values) if unit in HIGHER_IS_BETTER else min(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the commit to compare with (anything git names)")
    parser.add_argument("names", nargs="*", help=f"benchmarks (default: {' '.join(DEFAULT)})")
    parser.add_argument("--runs", type=int, default=3, help="rounds per tree (default 3)")
    args = parser.parse_args(argv)
    names = args.names or list(DEFAULT)
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        folder = Path(tmp)
        _export(args.rev, folder)
        trees = {"this tree": here, args.rev: folder / "tree"}
        seen: dict[str, dict[tuple[str, str], list[float]]] = {name: {} for name in trees}
        units: dict[tuple[str, str], str] = {}
        for round_ in range(1, args.runs + 1):
            for label, tree in trees.items():
                print(f"round {round_}/{args.runs}: {label}…", file=sys.stderr, flush=True)
                for key, (value, unit) in _run(tree, names, folder / "out.json").items():
                    seen[label].setdefault(key, []).append(value)
                    units[key] = unit
    ours, theirs = seen["this tree"], seen[args.rev]
    print(f"| benchmark | metric | {args.rev} | this tree | change |")
    print("|---|---|---|---|---|")
    for key in ours:
        if key not in theirs:
            continue
        unit = units[key]
        old, new = _best(theirs[key], unit), _best(ours[key], unit)
        better = new / old if unit in HIGHER_IS_BETTER else old / new
        change = f"{(better - 1) * 100:+.1f}% {'faster' if better >= 1 else 'slower'}"
        print(f"| {key[0]} | {key[1]} | {old:,.4g} {unit} | {new:,.4g} {unit} | {change} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
