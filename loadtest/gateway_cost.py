"""What the api-gateway costs above the framework's floor: the read step of `make bench` alone.

Starts the platform on free ports (loadtest/cpu_per_order.py's platform), puts one item in the
catalog, starts the bare Flask proxy (loadtest/bare_proxy.py: same gunicorn settings, nothing
but the relay) in front of estoque, and reads `GET /items/{id}` through each target in turn,
CLIENTS keep-alive threads for SECONDS each, ROUNDS times, the order rotating every round so
no target always goes first, and each target's seconds cut into SLICES windows taken in
turns. Per read and target: req/s and CPU ms (utime+stime, from /proc, of the target's whole
process group), and both as ratios to the bare proxy's in the same round: the machine is
shared and noisy, so only figures of one round are compared.

Targets: the platform's gateway (this tree), the bare proxy, and with `--compare [NAME=]DIR` the
gateway of another source tree (say `git archive <commit> | tar -x -C DIR`), started beside
the platform's against the same services: before and after in one session. `--token
customer` sends a customer's bearer token with every read (anonymous otherwise).

`--without FEATURE[,FEATURE]` adds this tree's gateway without those features
(loadtest/gateway_without.py), `--without each` one without each feature and one without all
of them: the table at the end says what each costs a read, in ms and as a share of the bare
proxy's, measured in the same rounds as the whole gateway.

`--profile OUT` then samples each gateway with py-spy (only the thread holding the GIL) under
the same load: a speedscope profile and collapsed stacks per target, and `features.txt`, the
CPU per read charged to the gateway's features (`FEATURES`), in µs.

    .venv/bin/python loadtest/gateway_cost.py [--rounds 3] [--seconds 8] [--slices 4]
        [--clients 16]
        [--token customer] [--compare before=/tmp/before] [--without each]
        [--profile bench/profiles/<name>]

Traffic goes to 127.0.0.1 only, bounded in rounds and seconds.
"""

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gateway_without
import requests
from bare_proxy import bare_flask_proxy
from cpu_per_order import SECRET, cpu_seconds, fresh_platform
from nginx_reference import stop

from veloz.dev.devstack import Platform, free_ports

ENV = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
       "RATE_LIMIT_DEFAULT": "100000/minute", "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
BARE = "bare"
GATEWAY = "gateway"
HERE = Path(__file__).resolve().parent
EACH = "each"


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # http://127.0.0.1:<port>
    group: int  # process group: the server's master and its workers


def read_rate(url: str, headers: dict, clients: int, seconds: float) -> int:
    """Reads of `url` answered 200 by `clients` keep-alive threads within `seconds`."""
    stop_at, counts = time.monotonic() + seconds, [0] * clients

    def run(index: int) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                session.get(url, headers=headers, timeout=10).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def measure(target: Target, path: str, headers: dict, clients: int, seconds: float) -> dict:
    """req/s and CPU ms per read of one target, over one window."""
    return figures(window(target, path, headers, clients, seconds))


def window(target: Target, path: str, headers: dict, clients: int,
           seconds: float) -> tuple[int, float, float]:
    """(reads, CPU seconds of the target, seconds) of one window of reads."""
    before, started = cpu_seconds(target.group), time.perf_counter()
    reads = read_rate(target.url + path, headers, clients, seconds)
    return reads, cpu_seconds(target.group) - before, time.perf_counter() - started


def figures(totals: tuple[int, float, float]) -> dict:
    reads, spent, elapsed = totals
    return {"requests_per_second": round(reads / elapsed, 1),
            "cpu_ms": round(1000 * spent / max(reads, 1), 3), "reads": reads}


def rounds(targets: list[Target], path: str, headers: dict, args) -> list[dict]:
    """Every target once per round, the order rotated each round, each target's SECONDS cut
    into SLICES windows taken in turns (a burst of load from elsewhere on the machine then
    falls on every target alike); ratios to the bare proxy's figures of the same round."""
    results = []
    for number in range(args.rounds):
        shift = number % len(targets)
        order = targets[shift:] + targets[:shift]
        totals = {target.name: (0, 0.0, 0.0) for target in order}
        for _ in range(args.slices):
            for target in order:
                taken = window(target, path, headers, args.clients, args.seconds / args.slices)
                totals[target.name] = tuple(  # type: ignore[assignment]
                    a + b for a, b in zip(totals[target.name], taken, strict=True))
        round_figures = {name: figures(total) for name, total in totals.items()}
        bare = round_figures[BARE]
        for figure in round_figures.values():
            figure["cpu_ratio"] = round(figure["cpu_ms"] / bare["cpu_ms"], 3)
            figure["rate_ratio"] = round(figure["requests_per_second"]
                                         / bare["requests_per_second"], 3)
        results.append(round_figures)
        print(f"round {number + 1} ({', '.join(t.name for t in order)}):", flush=True)
        for name, figure in round_figures.items():
            print(f"  {name:<12} {figure['cpu_ms']:6.3f} ms/read  "
                  f"{figure['requests_per_second']:7.1f} req/s  cpu x{figure['cpu_ratio']:.3f}"
                  f"  rate x{figure['rate_ratio']:.3f}", flush=True)
    return results


def ablations(requested: list[str]) -> list[str]:
    """GATEWAY_WITHOUT values of the gateways `--without` asks for, each checked."""
    values = []
    for value in requested:
        if value == EACH:
            values += [*gateway_without.FEATURES, gateway_without.ALL]
        else:
            values.append(",".join(gateway_without.taken_out(value)))
    return list(dict.fromkeys(values))


def feature_costs(results: list[dict]) -> str:
    """What the features each `--without` gateway lacks cost a read: the whole gateway's CPU
    per read less that gateway's, in ms and as a share of the bare proxy's, per round and
    over all rounds (the rounds' mean)."""
    names = [name for name in results[0] if name.startswith("-")]
    lines = ["what the features cost a read (the gateway's CPU less the one without them):",
             "without".ljust(28) + "ms per round".ljust(30) + "x bare per round".ljust(30)
             + "mean ms  mean x bare"]
    for name in names:
        saved = [round_figures[GATEWAY]["cpu_ms"] - round_figures[name]["cpu_ms"]
                 for round_figures in results]
        shares = [cut / round_figures[BARE]["cpu_ms"]
                  for cut, round_figures in zip(saved, results, strict=True)]
        lines.append(name[1:][:27].ljust(28) + " ".join(f"{cut:6.3f}" for cut in saved).ljust(30)
                     + " ".join(f"{share:6.3f}" for share in shares).ljust(30)
                     + f"{sum(saved) / len(saved):7.3f}  {sum(shares) / len(shares):11.3f}")
    return "\n".join(lines) + "\n"


def gateway_environment(platform: Platform, source: Path, run_dir: Path, port: int,
                        metrics_port: int, without: str = "") -> dict:
    """The platform gateway's environment for a gateway built from another source tree, or
    from this one without the features `without` names."""
    metrics = run_dir / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    backends = {f"{name.upper()}_URL": platform.url(f"{name}-service")
                for name in ("estoque", "pedidos", "pagamentos")}
    return {**os.environ, "BIND": f"127.0.0.1:{port}", "METRICS_BIND": f"127.0.0.1:{metrics_port}",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics), "PYTHONUNBUFFERED": "1",
            "SERVICE_NAME": "api-gateway", "DRAIN_FILE": str(run_dir / "draining"),
            "PYTHONPATH": f"{source / 'libs'}:{source / 'api-gateway'}:{HERE}",
            gateway_without.VARIABLE: without, **backends, **ENV}


@contextlib.contextmanager
def gateway_from(platform: Platform, name: str, source: Path,
                 without: str = "") -> Iterator[Target]:
    """The gateway of the tree `source`, as the platform runs its own (gunicorn with
    veloz.run.gunicorn_conf), against the platform's services; with `without`, this tree's
    gateway without those features (loadtest/gateway_without.py)."""
    run_dir, (port, metrics_port) = Path(tempfile.mkdtemp(prefix=f"veloz-{name}-")), free_ports(2)
    with (run_dir / "out.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:veloz.run.gunicorn_conf",
             "gateway_without:create_app()" if without else "gateway.app:create_app()"],
            cwd=source, env=gateway_environment(platform, source, run_dir, port, metrics_port,
                                                without),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/livez", process, run_dir / "out.log")
        yield Target(name, url, process.pid)
    finally:
        stop(process, graceful=signal.SIGTERM)
        shutil.rmtree(run_dir, ignore_errors=True)


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).ok:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not up within {timeout:.0f}s")


def bearer(role: str | None) -> dict:
    if role is None:
        return {}
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    token = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint(f"bench-{role}", [role])
    return {"Authorization": f"Bearer {token}"}


# --- where a gateway's CPU goes ---------------------------------------------------------------
# A marker is a substring of py-spy's `function (file:line)` frames. A feature of CLAIMS owns
# every sample with one of its markers anywhere in the stack (the first in this order wins:
# the access line is written from the metrics hook, a token is first decoded for the rate
# limit's key); the others are charged by the innermost frame that names one of LAYERS.
CLAIMS = (
    ("access log line", ("logging/__init__.py", "veloz/telemetry/logs.py")),
    ("auth (token, access table)", ("gateway/auth.py", "jwt/")),
    ("metrics (prometheus)", ("prometheus_client/", "gateway/telemetry.py",
                              "veloz/web/request_metrics.py", "veloz/telemetry/metrics.py")),
    ("rate limit", ("gateway/ratelimit.py", "limits/")),
    ("tracing hooks", ("veloz/web/tracing.py", "veloz/telemetry/tracing.py", "opentelemetry/")),
    ("request id", ("start (veloz/web/app.py", "finish (veloz/web/app.py",
                    "forget (veloz/web/app.py", "incoming_request_id", "new_request_id",
                    "uuid.py")),
    ("drain watch", ("close_when_draining", "DrainWatch", "server_settings.py")),
    ("other hooks: empty segments, metrics port, rejections",
     ("exact_path (veloz/web/app.py", "metrics_on_their_own_port", "names_metrics",
      "arrival_port", "count (gateway/app.py", "record_gateway_rejection",
      "ProxyFastPath.ordinary")),
    ("problem handlers", ("veloz/web/problems.py",)),
    ("request headers out (filter, copy)", ("_outgoing_headers",)),
    ("answer relayed (filter headers, build Response)",
     ("_relayed", "_gateway_links", "_set_all", "_finished", "status_line")),
)
LAYERS = (
    ("breaker", ("gateway/breaker.py",)),
    ("pooled client: our wrapper (retries, timeouts, budget)", ("veloz/net/client.py",)),
    ("pooled client: urllib3, http.client", ("urllib3/", "http/client.py", "email/")),
    ("fast path (the Flask hooks' work, in their order)", ("gateway/fastpath.py",)),
    ("proxy view (access path, target, body)", ("gateway/proxy.py", "gateway/backends.py")),
    ("Flask (dispatch, hooks, context)", ("flask/",)),
    ("Werkzeug (environ, routing, Response)", ("werkzeug/",)),
    ("gunicorn worker (parse, write, connection)", ("gunicorn/", "veloz/run/gunicorn_workers")),
    ("gevent (hub, sockets, greenlets)", ("gevent/",)),
)
FEATURES = (*(name for name, _ in (*CLAIMS, *LAYERS)), "other")


def feature_of(stack: str) -> str:
    """The feature one sample is charged to (stack: frames outermost first, `;` apart)."""
    for name, markers in CLAIMS:
        if any(marker in stack for marker in markers):
            return name
    for frame in reversed(stack.split(";")):
        for name, markers in LAYERS:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def charge(collapsed: Path) -> collections.Counter:
    """Samples per feature of one py-spy `raw` (collapsed stacks) file."""
    counts: collections.Counter = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        counts[feature_of(stack)] += int(samples)
    return counts


def feature_table(counts: dict[str, collections.Counter], cpu_ms: dict[str, float]) -> str:
    """µs per read per feature and target: each target's CPU per read split as its samples."""
    names = list(counts)
    lines = ["feature".ljust(64) + "".join(name.rjust(12) for name in names)]
    for feature in FEATURES:
        cells = []
        for name in names:
            total = sum(counts[name].values()) or 1
            cells.append(f"{1000 * cpu_ms[name] * counts[name][feature] / total:12.0f}")
        lines.append(feature[:63].ljust(64) + "".join(cells))
    lines.append("CPU per read, µs".ljust(64)
                 + "".join(f"{1000 * cpu_ms[name]:12.0f}" for name in names))
    return "\n".join(lines) + "\n"


def profile(targets: list[Target], path: str, headers: dict, args) -> None:
    """py-spy on each target under load: speedscope and collapsed stacks, then features.txt."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.profile.mkdir(parents=True, exist_ok=True)
    counts, cpu_ms = {}, {}
    for target in targets:
        for fmt, suffix in (("raw", "stacks"), ("speedscope", "speedscope.json")):
            out = args.profile / f"{target.name}.{suffix}"
            spying = subprocess.Popen(
                [spy, "record", "--pid", str(target.group), "--subprocesses", "--gil",
                 "--nonblocking", "--rate", "250", "--duration", str(round(args.seconds)),
                 "--format", fmt, "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=(args.profile / "py-spy.log").open("ab"))
            figure = measure(target, path, headers, args.clients, args.seconds)
            spying.wait(timeout=args.seconds + 60)
            if fmt == "raw":
                counts[target.name], cpu_ms[target.name] = charge(out), figure["cpu_ms"]
    (args.profile / "cpu.json").write_text(json.dumps(cpu_ms) + "\n")
    charge_folder(args.profile)


def charge_folder(folder: Path) -> None:
    """features.txt of a --profile folder, from its stacks and cpu.json (again, after the
    features changed)."""
    cpu_ms = json.loads((folder / "cpu.json").read_text())
    counts = {name: charge(folder / f"{name}.stacks") for name in cpu_ms}
    table = feature_table(counts, cpu_ms)
    (folder / "features.txt").write_text(table)
    print(table, end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8, help="per target and round")
    parser.add_argument("--slices", type=int, default=4,
                        help="windows each target's seconds are cut into, taken in turns")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--token", choices=["customer", "admin"],
                        help="read with this role's bearer token (default: anonymous)")
    parser.add_argument("--compare", action="append", default=[],
                        help="[NAME=]DIR: another source tree whose gateway is read through "
                             "too (named NAME, else compare1, compare2...)")
    parser.add_argument("--without", action="append", default=[],
                        help="FEATURE[,FEATURE...]: this tree's gateway without those features "
                             f"is read through too ({', '.join(gateway_without.FEATURES)}, "
                             f"{gateway_without.ALL}); `{EACH}`: one gateway without each "
                             "feature, and one without all")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles")
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    parser.add_argument("--charge", type=Path, help="only redo a --profile folder's table")
    args = parser.parse_args()
    if args.charge:
        charge_folder(args.charge)
        return
    headers = bearer(args.token)
    with (fresh_platform(Path(tempfile.mkdtemp(prefix="veloz-gwcost-")), "_gwcost", ENV)
          as platform, contextlib.ExitStack() as stack):
        admin = bearer("admin")
        item = requests.post(f"{platform.url('api-gateway')}/items", headers=admin, timeout=10,
                             json={"name": "Vitrine", "quantity": 1, "price": 1}).json()
        path = f"/items/{item['id']}"
        targets = [Target(GATEWAY, platform.url("api-gateway"),
                          platform.processes["api-gateway"].pid)]
        for number, compared in enumerate(args.compare):
            name, _, source = compared.rpartition("=")
            targets.append(stack.enter_context(gateway_from(
                platform, name or f"compare{number + 1}", Path(source).resolve())))
        for without in ablations(args.without):
            targets.append(stack.enter_context(gateway_from(
                platform, f"-{without}", HERE.parent, without)))
        bare = stack.enter_context(bare_flask_proxy(platform.url("estoque-service")))
        targets.append(Target(BARE, bare.url, bare.pid))
        for target in targets:  # warm up: pools, caches, first imports
            measure(target, path, headers, args.clients, 1)
        results = rounds(targets, path, headers, args)
        if args.without:
            print(feature_costs(results), end="")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"compare": args.compare, "without": args.without,
                                             "token": args.token, "rounds": results},
                                            indent=2) + "\n")
        if args.profile:
            profile(targets, path, headers, args)


if __name__ == "__main__":
    main()
