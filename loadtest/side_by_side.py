"""CPU per paid order of this tree against an earlier revision's, timed side by side on the
same host: the figure a millisecond target set on another day can be judged by.

This host's speed moves by half within an hour and by two or three times between days (the
database floor of `make bench` went from 548 to 213 orders/s between two days of one week), so
"7.0 ms per paid order", set against 9.0 ms measured on a quick day, cannot be checked on a
slow one by timing this tree alone. Timing an earlier revision in turns with this one can:
each runs its own `loadtest/cpu_per_order.py` (the platform started fresh as `make up` runs
it, 16 clients, one-item orders through the gateway) with its own code on PYTHONPATH, in
ABBA order per round (this tree, the revision, the revision, this tree), so a drift of the
host's speed during a round falls on both alike.

Each tree's own load generator posts its orders. This tree's posts through veloz.net's pooled
client (0.3 ms of CPU per order, since 2026-12-07); a revision's from before then posts through
`requests` (1.0 ms), which shares the two cores with the platform too: against such a revision
this tree's orders/s and p99 gain from its lighter load generator as well (+6-9 % orders/s in
two ABAB pairs of the two generators against the same code). CPU per paid order counts the
services' processes only and is not moved by it.

The revision comes from `git archive` into a temporary folder and runs with this tree's
virtualenv; it needs a `loadtest/cpu_per_order.py` of its own that prints the same JSON
(every revision since a4bc7f3 has one) and no package this virtualenv lacks (90d22e6, the
revision issue 21's "today" figures were measured at, needs none).

    .venv/bin/python loadtest/side_by_side.py --against 90d22e6 [--rounds 3] [--orders 1000]

Prints each run, then this tree's CPU per paid order, orders/s and p99 as a multiple of the
revision's, per round and over all runs. Traffic goes to 127.0.0.1 only, bounded in orders.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TREE = Path(__file__).resolve().parents[1]
# What a tree puts on PYTHONPATH for its own code to win over the editable install's.
CODE_FOLDERS = ("libs", "api-gateway", "estoque-service", "pagamentos-service",
                "pedidos-service")
FIGURES = ("cpu_ms_per_order_total", "orders_per_second", "p99_ms")


def archived(revision: str, into: Path) -> Path:
    """`revision`'s files (no .git) in a folder of `into`."""
    git = shutil.which("git")
    if git is None:
        sys.exit("git not found")
    archive = subprocess.run([git, "-C", str(TREE), "archive", revision],
                             check=True, capture_output=True, timeout=120).stdout
    folder = into / revision
    with tarfile.open(fileobj=io.BytesIO(archive)) as files:
        files.extractall(folder, filter="data")
    return folder


def timed(tree: Path, orders: int) -> dict:
    """One run of `tree`'s own cpu_per_order.py with `tree`'s code first on PYTHONPATH."""
    path = os.pathsep.join(str(tree / folder) for folder in CODE_FOLDERS)
    finished = subprocess.run(
        [sys.executable, str(tree / "loadtest" / "cpu_per_order.py"), "--orders", str(orders)],
        env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True,
        timeout=900)
    return json.loads(finished.stdout)


def ratios(ours: list[dict], theirs: list[dict]) -> str:
    """Each figure's sum over `ours` divided by its sum over `theirs`, as one line."""
    def total(runs: list[dict], figure: str) -> float:
        return sum(run[figure] for run in runs)
    return ", ".join(f"{figure} {total(ours, figure) / total(theirs, figure):.2f}"
                     for figure in FIGURES)


def describe(name: str, run: dict) -> str:
    # The services alone, not their background workers (named like estoque.sweeper).
    services = ", ".join(f"{service.removesuffix('-service')} {ms:.2f}"
                         for service, ms in run["cpu_ms_per_order"].items() if "." not in service)
    return (f"{name:10} {run['cpu_ms_per_order_total']:6.2f} ms ({services})  "
            f"{run['orders_per_second']:6.1f} orders/s  p99 {run['p99_ms']:6.1f} ms  "
            f"failed {run['failed']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="a git revision of this repository")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=1000, help="per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veloz-side-by-side-") as scratch:
        revision = archived(args.against, Path(scratch))
        runs: dict[str, list[dict]] = {"this tree": [], args.against: []}
        for number in range(1, args.rounds + 1):
            for name, tree in (("this tree", TREE), (args.against, revision),
                               (args.against, revision), ("this tree", TREE)):
                runs[name].append(timed(tree, args.orders))
                print(f"round {number}  {describe(name, runs[name][-1])}", flush=True)
            this_round = {name: done[-2:] for name, done in runs.items()}  # two runs a round
            print(f"round {number}  this tree ÷ {args.against}: "
                  f"{ratios(this_round['this tree'], this_round[args.against])}", flush=True)
        print(f"all runs  this tree ÷ {args.against}: "
              f"{ratios(runs['this tree'], runs[args.against])}")


if __name__ == "__main__":
    main()
