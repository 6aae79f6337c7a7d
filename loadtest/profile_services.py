"""Where the CPU of a paid order goes: py-spy flame graphs of every service under load.

Starts the platform as `make up` runs it (loadtest/cpu_per_order.py's platform), has 16
clients post one-item orders through the gateway, and samples each service's server
processes (main process and workers, only threads holding the GIL, i.e. using the CPU) with
py-spy: an SVG flame graph per service, then the same again as collapsed stacks
(`*.stacks`, not committed), summed by library into `summary.txt`. Traffic goes to
127.0.0.1 only, bounded in time.

    .venv/bin/python loadtest/profile_services.py bench/profiles/<name> [--seconds 15]
"""

import argparse
import collections
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from cpu_per_order import APPROVING_CARD, SECRET, fresh_platform, place_orders

SERVICES = ("api-gateway", "pedidos-service", "estoque-service", "pagamentos-service")
# Innermost frame's file decides the library a sample is charged to.
LIBRARIES = (("sqlalchemy", "sqlalchemy/"), ("psycopg", "psycopg"), ("requests", "requests/"),
             ("urllib3", "urllib3/"), ("http.client", "http/client"), ("pydantic", "pydantic"),
             ("json", "simplejson"), ("json", "json/"), ("logging", "logging/"),
             ("prometheus", "prometheus"), ("werkzeug", "werkzeug/"), ("flask", "flask/"),
             ("gunicorn", "gunicorn/"), ("granian", "granian/"), ("rate limits", "limits/"),
             ("rate limits", "gateway/ratelimit"), ("jwt", "jwt/"), ("veloz", "veloz/"),
             ("service code", "-service/"), ("service code", "api-gateway/"))


def record(platform, out: Path, seconds: int, fmt: str, suffix: str) -> None:
    spy = shutil.which("py-spy") or str(Path(__file__).parents[1] / ".venv/bin/py-spy")
    runs = [subprocess.Popen([spy, "record", "--pid", str(platform.processes[name].pid),
                              "--subprocesses", "--gil", "--nonblocking", "--rate", "200",
                              "--duration", str(seconds), "--format", fmt,
                              "-o", str(out / f"{name}.{suffix}")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in SERVICES]
    for run in runs:
        run.wait(timeout=seconds + 60)


def by_library(collapsed: Path) -> collections.Counter:
    """Samples per library, each charged to the innermost frame of a known library."""
    counts: collections.Counter = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = reversed(stack.split(";"))
        library = next((name for frame in frames for name, marker in LIBRARIES
                        if marker in frame), "other")
        counts[library] += int(samples)
    return counts


def summary(out: Path) -> str:
    lines = []
    for name in SERVICES:
        counts = by_library(out / f"{name}.stacks")
        total = sum(counts.values()) or 1
        lines.append(f"{name} ({total} samples)")
        lines += [f"  {100 * n / total:5.1f}% {library}" for library, n in counts.most_common()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
           "RATE_LIMIT_DEFAULT": "100000/minute"}
    with fresh_platform(Path(tempfile.mkdtemp(prefix="veloz-profile-")), "_profile",
                        env) as platform:
        from gateway.auth import TokenAuthority
        from gateway.config import JwtSettings

        token = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint("bench", ["admin"])
        gateway = platform.url("api-gateway")
        item = requests.post(f"{gateway}/items", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"name": "Carga", "quantity": 1_000_000, "price": 10.5}).json()
        window = 2 * args.seconds + 20
        # More orders than the window can take (this machine places well under 100/s); the
        # ones left when the window closes return at once.
        load = threading.Thread(target=place_orders, args=(gateway, token, [item["id"]],
                                                           100 * window, 16,
                                                           time.monotonic() + window))
        load.start()
        time.sleep(3)  # past the warm-up
        record(platform, args.out, args.seconds, "flamegraph", "svg")
        record(platform, args.out, args.seconds, "raw", "stacks")
        load.join()
    (args.out / "summary.txt").write_text(summary(args.out))
    print((args.out / "summary.txt").read_text(), end="")
    print(f"(card {APPROVING_CARD[-4:]}; flame graphs and stacks in {args.out})")


if __name__ == "__main__":
    main()
