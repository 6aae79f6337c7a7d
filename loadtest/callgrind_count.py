"""Counting instructions per call with valgrind's callgrind, for the loadtest tools that need
figures which hold on a shared host (loadtest/gateway_instructions.py,
loadtest/order_instructions.py): the same code on the same input executes the same
instructions whatever else the machine runs, where its CPU time moves by half between runs.

A tool's `main()` hands `main(...)` here its `inner` and `report`: outside valgrind the tool's
script runs again under callgrind with instrumentation off (`run`), and that inner run calls
`inner(N)`, which starts what it needs and hands `count` its calls; `count` switches
instrumentation on only while one call answers its rounds (after a warm-up and a
`gc.freeze()`, as the servers' workers do) and dumps each under its name; the outer run
reports the instructions per call of each name. Only the counted process is instrumented:
whatever it calls over the network runs natively.
"""

import argparse
import functools
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

OUT_VARIABLE = "VELOZ_CALLGRIND_OUT"
WARM_UP_CALLS = 20
# What is counted, by name: the call, and what is switched on around its rounds.
Counted = dict[str, tuple[Callable[[], None], Callable[[], AbstractContextManager]]]


@functools.cache
def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found: apt-get install valgrind")
    return found


def inside_callgrind() -> bool:
    return bool(os.environ.get(OUT_VARIABLE))


def _callgrind(*command: str) -> None:
    subprocess.run([tool("callgrind_control"), *command, str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


def count(counted: Counted, calls: int) -> None:
    """Each call `calls` times with instrumentation on, dumped under its name."""
    for name, (call, switch) in counted.items():
        with switch():
            for _ in range(WARM_UP_CALLS):  # pools, caches, the first call's imports
                call()
            gc.collect()
            gc.freeze()  # what lives this long is out of the collector's way, as in a worker
            _callgrind("--instr=on")
            _callgrind("--zero")
            for _ in range(calls):
                call()
            _callgrind("--dump=" + name.replace(" ", "_"))
            _callgrind("--instr=off")


def counted_in(folder: Path) -> dict[str, int]:
    """Instructions of each dump, by its name, from callgrind's output files."""
    totals = {}
    for path in sorted(folder.glob("callgrind.*.*"), key=lambda path: int(path.suffix[1:])):
        text = path.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: dump (\S+)", text, re.MULTILINE)
        summary = re.search(r"^summary: (\d+)", text, re.MULTILINE)
        if trigger and summary:
            totals[trigger.group(1).replace("_", " ")] = int(summary.group(1))
    return totals


def run(script: str, arguments: list[str], calls: int) -> dict[str, float]:
    """`script` with `arguments` again, under callgrind; instructions per call by name."""
    folder = Path(tempfile.mkdtemp(prefix="veloz-callgrind-"))
    command = [tool("valgrind"), "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={folder}/callgrind.%p", sys.executable, script,
               *arguments]
    subprocess.run(command, check=True, env={**os.environ, OUT_VARIABLE: str(folder),
                                             "PYTHONHASHSEED": "0"},
                   stderr=subprocess.DEVNULL)
    return {name: total / calls for name, total in counted_in(folder).items()}


def main(description: str, *, unit: str, default: int, inner: Callable[[int], None],
         report: Callable[[dict[str, float]], None]) -> None:
    """A counting tool's command line: `--<unit> N` counted per name and `--json FILE`; run
    inside callgrind it counts (`inner(N)`), outside it reports what the inner run counted."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(f"--{unit}", type=int, default=default, help="per name")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    times = getattr(args, unit)
    if inside_callgrind():
        inner(times)
        return
    per_unit = run(sys.argv[0], [f"--{unit}", str(times)], times)
    report(per_unit)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({unit: times, f"instructions_per_{unit[:-1]}": per_unit},
                                        indent=2) + "\n")


def print_table(per_name: dict[str, float], heading: str, floor: str | None = None) -> None:
    """Instructions per name, one line each; with `floor`, each also as a multiple of that
    name's figure."""
    print(f"{heading:32} {'instructions':>14}" + (f" {'÷ ' + floor:>16}" if floor else ""))
    for name, figure in per_name.items():
        ratio = f" {figure / per_name[floor]:16.2f}" if floor else ""
        print(f"{name:32} {figure:14,.0f}{ratio}")
