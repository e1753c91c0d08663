"""Run the benchmarks: ``python -m bench [NAME...] [--quick] [--json FILE]``.

Each figure is the median of several runs; each comparison is a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
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
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown (for docs/benchmarks.md)")
    args = parser.parse_args(argv)
    names = args.names or list(cases.ALL)
    unknown = [n for n in names if n not in cases.ALL]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(cases.ALL)}")
    results: list[dict] = []
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    # idle only watches another process sleep, and punctuality mostly waits for due times: the two
    # real-time benchmarks share their minute instead of taking one each.
    alongside = {}
    if "idle" in names and "punctuality" in names:
        alongside["idle"] = _Background("idle", lambda: cases.ALL["idle"](quick=args.quick))
    for name in names:
        print(f"running {name}…", file=sys.stderr, flush=True)
        began = time.perf_counter()
        if name in alongside:
            rows, seconds[name] = alongside[name].result()
        else:
            rows = cases.ALL[name](quick=args.quick)
            seconds[name] = time.perf_counter() - began
        for row in rows:
            if name in alongside:
                row["alongside"] = "punctuality"
            results.append(row)
        print(f"  {name}: {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    table = render_table(results)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    total = time.perf_counter() - started
    out.write_text(json.dumps({"machine": machine(), "command": command, "date": time.strftime("%Y-%m-%d"),
                               "seconds": round(total, 1),
                               "seconds_each": {k: round(v, 1) for k, v in seconds.items()},
                               "results": results}, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(results, machine(), command, total, seconds))
    print(f"\nwrote {out} in {total:.0f} s", file=sys.stderr)
    return 0


class _Background:
    """A benchmark run on a thread of its own, started at once."""

    def __init__(self, name: str, run: Callable[[], list[dict]]):
        self.name, self._run = name, run
        self._rows: list[dict] = []
        self._error: BaseException | None = None
        self._began = time.perf_counter()
        self._ended = self._began
        self._thread = threading.Thread(target=self._target, name=f"bench-{name}", daemon=True)
        self._thread.start()

    def _target(self) -> None:
        try:
            self._rows = self._run()
        except BaseException as exc:  # re-raised in the main thread by result()
            self._error = exc
        self._ended = time.perf_counter()

    def result(self) -> tuple[list[dict], float]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._rows, self._ended - self._began


HEADER = ("benchmark", "metric", "value", "unit", "target", "met")


def _cells(row: dict) -> tuple[str, ...]:
    return (row["benchmark"], row["metric"], _fmt(row["value"]), row.get("unit", ""), row.get("target", ""),
            row.get("verdict", ""))


def render_table(results: list[dict]) -> str:
    """The results as a plain-text table."""
    rows = [_cells(r) for r in results]
    widths = [max(len(str(row[i])) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def render_markdown(results: list[dict], info: dict[str, str], command: str, total: float,
                    seconds: dict[str, float]) -> str:
    """The results as the Markdown table of docs/benchmarks.md, with the machine and the command."""
    lines = [f"Command: `{command}`, {time.strftime('%Y-%m-%d')}, {total:.0f} s in all "
             f"({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())}).",
             "",
             f"Machine: {info['cores']} cores ({info['cpu']}), {info['system']}, Python {info['python']}.",
             "",
             "| benchmark | metric | value | target | met |",
             "|---|---|---|---|---|"]
    for row in results:
        cells = list(_cells(row))
        cells[2] = f"{cells[2]} {cells[3]}".strip()
        if cells[5] == "NO":
            cells[5] = "**no**"
        del cells[3]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
