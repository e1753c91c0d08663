"""Run the benchmarks: ``python -m bench [NAME...] [--quick] [--json FILE]``.

Each figure is the median of several runs; each comparison is a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from bench import cases


def machine() -> dict[str, str]:
    import os

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "system": f"{platform.system()} {platform.release()}",
            "cpu": cpu, "cores": str(os.cpu_count())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(cases.ALL)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, under a minute)")
    parser.add_argument("--json", default="bench/results/latest.json", help="where to write the results")
    args = parser.parse_args(argv)
    names = args.names or list(cases.ALL)
    unknown = [n for n in names if n not in cases.ALL]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(cases.ALL)}")
    results = []
    started = time.perf_counter()
    for name in names:
        print(f"running {name}…", file=sys.stderr, flush=True)
        for row in cases.ALL[name](quick=args.quick):
            results.append(row)
    rows = [(r["benchmark"], r["metric"], _fmt(r["value"]), r.get("unit", ""), r.get("target", ""),
             r.get("verdict", "")) for r in results]
    widths = [max(len(str(row[i])) for row in [("benchmark", "metric", "value", "unit", "target", "met"), *rows])
              for i in range(6)]
    header = ("benchmark", "metric", "value", "unit", "target", "met")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "command": "python -m bench " + " ".join(argv or sys.argv[1:]),
                               "seconds": round(time.perf_counter() - started, 1), "results": results}, indent=2))
    print(f"\nwrote {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _fmt(value: float) -> str:
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
