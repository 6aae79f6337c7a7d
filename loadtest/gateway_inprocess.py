"""The api-gateway's Flask path against the bare Flask proxy's, called in this process.

Starts the platform (loadtest/cpu_per_order.py's), builds the gateway's app and the bare
proxy's (loadtest/bare_proxy.py) here, and calls each as a WSGI app with the same
`GET /items/{id}` environ: both reach the same estoque over the same kind of pooled
connection, so what differs is the app, without the server, gevent or a client around it.
CPU per call (this process's user+system time) is taken in ROUNDS short rounds alternating
the two, and the smallest, lower-quartile and median round of each are reported: noise from
the rest of the machine only ever adds. `--profile DIR` then runs each under cProfile and
writes `<app>.prof` and `<app>.txt` (functions by own time), where every function the
gateway calls and the bare proxy does not shows up with its count per call.

    .venv/bin/python loadtest/gateway_inprocess.py [--calls 800] [--rounds 12]
        [--profile bench/profiles/<name>]

Traffic goes to 127.0.0.1 only, bounded in calls.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bare_proxy import UPSTREAM_VARIABLE
from cpu_per_order import SECRET, fresh_platform, new_item
from werkzeug.test import EnvironBuilder

from veloz.dev.devstack import SERVICES

ENV = {"JWT_SECRET": SECRET, "RATE_LIMIT_DEFAULT": "100000/minute",
       "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
HEADERS = {"User-Agent": "python-requests/2.32", "Accept": "*/*",
           "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
           "Host": "127.0.0.1:5000"}


def build_apps(platform) -> dict:
    """The gateway's app with the environment `make up` gives it (its metrics in a
    multiprocess folder, as under gunicorn), and the bare proxy's, both against estoque."""
    gateway = next(spec for spec in SERVICES if spec.name == "api-gateway")
    os.environ.update(platform._environment(gateway))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="veloz-inprocess-")
    os.environ[UPSTREAM_VARIABLE] = platform.url("estoque-service")
    # Imported now: prometheus_client picks its multiprocess values at import.
    import bare_proxy

    from gateway.app import create_app
    return {"gateway": create_app(), "bare": bare_proxy.create_app()}


def caller(path: str):
    """One WSGI call of `app` for `path`, its answer read to the end and closed."""
    template = EnvironBuilder(path=path, method="GET", headers=HEADERS).get_environ()

    def call(app) -> None:
        environ = {**template, "wsgi.input": io.BytesIO(b"")}
        statuses: list[str] = []
        answer = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{path} answered {statuses[0]}")

    return call


def rounds(apps: dict, call, calls: int, count: int) -> dict[str, list[float]]:
    """µs of CPU per call, every round, each app in turn."""
    spent: dict[str, list[float]] = {name: [] for name in apps}
    for _round in range(count):
        for name, app in apps.items():
            started = time.process_time()
            for _ in range(calls):
                call(app)
            spent[name].append(1e6 * (time.process_time() - started) / calls)
    return spent


def report(spent: dict[str, list[float]]) -> None:
    figures = {name: (min(values), statistics.quantiles(values, n=4)[0],
                      statistics.median(values)) for name, values in spent.items()}
    for name, (low, quartile, median) in figures.items():
        print(f"{name:8} µs per call: min {low:.0f}, lower quartile {quartile:.0f}, "
              f"median {median:.0f}")
    gateway, bare = figures["gateway"], figures["bare"]
    print("gateway ÷ bare: " + ", ".join(
        f"{label} {mine / floor:.2f}"
        for label, mine, floor in zip(("min", "lower quartile", "median"), gateway, bare,
                                      strict=True)))


def profile(apps: dict, call, calls: int, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, app in apps.items():
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call(app)
        profiler.disable()
        profiler.dump_stats(folder / f"{name}.prof")
        text = io.StringIO()
        pstats.Stats(str(folder / f"{name}.prof"), stream=text).sort_stats("tottime") \
            .print_stats(60)
        (folder / f"{name}.txt").write_text(f"{calls} calls\n{text.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=800, help="per app and round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--profile", type=Path, help="folder for cProfile's figures")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-inprocess-"))
    with fresh_platform(run_dir, "_inprocess", ENV) as platform:
        apps = build_apps(platform)
        call = item_read(platform)
        with quiet_stdout():
            rounds(apps, call, 100, 1)  # warm up: pools, caches
            spent = rounds(apps, call, args.calls, args.rounds)
            if args.profile:
                profile(apps, call, args.calls, args.profile)
        report(spent)


def item_read(platform):
    """`caller` of `GET /items/{id}` for an item made through the platform's gateway."""
    return caller(f"/items/{new_item(platform, 'Vitrine', 1, 1)}")


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """The apps' access lines go nowhere while they answer."""
    sys.stdout.flush()
    with open(os.devnull, "w") as quiet:
        real_stdout, sys.stdout = sys.stdout, quiet
        try:
            yield
        finally:
            sys.stdout = real_stdout


if __name__ == "__main__":
    main()
