"""How fast does `bench` answer from the config alone? (issue 14: well under a second)

    python benchmarks/startup.py [--repeat 5] [--smoke]

Times, as the user sees them (a fresh `bench` process, wall clock, median of --repeat runs interleaved):
`bench run protocol=ff_to_all --cfg`, the missing-data-root error of `bench run protocol=ff_to_all`, `bench list`,
a config error, and `bench data status`. Each is also timed with torch, torchvision, timm and open_clip imported
first (`python -X importtime`-free: a wrapper imports them, then calls the same CLI), which is what every one of
these commands paid before composition became torch-free; the ratio is after / before.

The missing-root error goes through whatever the runner checks before loading data; it is under a second only
once those checks run before the runner (and torch) are imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tabulate import tabulate

COMMANDS = {
    "bench run protocol=ff_to_all --cfg": (["run", "protocol=ff_to_all", "--cfg"], 0),
    "bench run protocol=ff_to_all (missing root)": (["run", "protocol=ff_to_all", "detector=clip_probe"], 2),
    "bench list": (["list"], 0),
    "bench run trainer.epochs=0 (config error)": (["run", "trainer.epochs=0"], 2),
    "bench data status": (["data", "status"], 0),
}
HEAVY = "import torch, torchvision, timm, open_clip"


def timed(argv: list[str], expect: int, heavy: bool, env: dict[str, str], cwd: str) -> float:
    code = f"{HEAVY if heavy else 'pass'}\nimport sys\nfrom bench.cli import main\nsys.exit(main({argv!r}))"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    elapsed = time.perf_counter() - t0
    if res.returncode != expect:
        raise SystemExit(f"{argv}: exit {res.returncode}, expected {expect}:\n{res.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="`bench list` once: check that the script runs")
    args = parser.parse_args()
    commands = {"bench list": COMMANDS["bench list"]} if args.smoke else COMMANDS
    repeat = 1 if args.smoke else args.repeat
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}  # no dataset roots: the missing-root path
    times: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as cwd:
        env["BENCH_CACHE"] = cwd
        for _ in range(repeat):  # interleaved, so load on the machine hits every command alike
            for name, (argv, expect) in commands.items():
                for heavy in (False, True):
                    times.setdefault((name, heavy), []).append(timed(argv, expect, heavy, env, cwd))
    rows = []
    for name in commands:
        after, before = (statistics.median(times[(name, h)]) for h in (False, True))
        rows.append([name, f"{after:.2f}", f"{before:.2f}", f"{after / before:.2f}", "yes" if after < 1.0 else "NO"])
    print(f"median of {repeat} runs, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(tabulate(rows, headers=["command", "s", "s with torch & co imported", "ratio", "< 1 s"]))


if __name__ == "__main__":
    main()
