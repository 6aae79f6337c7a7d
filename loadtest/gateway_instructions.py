"""Instructions per proxied read: the api-gateway's Flask path, feature by feature, against
the bare Flask proxy's, counted by valgrind's callgrind instead of timed.

CPU time on this shared host moves by half between runs, more than any one of the gateway's
features costs. An instruction count does not: the same code on the same input executes the
same instructions whatever else the machine runs. This runs loadtest/gateway_inprocess.py's
setup (the platform on free ports, the gateway's and the bare proxy's apps called as WSGI apps
in this process with the same `GET /items/{id}`) under callgrind, with instrumentation on only
while one app answers its calls, and reports instructions per call for:

- `bare`: the bare Flask proxy (loadtest/bare_proxy.py);
- `gateway`: the api-gateway as `make up` builds it;
- `gateway - <feature>`: the same app without that feature, taken out as
  `gateway_cost.py --without` takes it out when timing (loadtest/gateway_without.py: the
  same names), while the app is built and while it answers, so the difference is what the
  feature costs a read; `gateway - all` without every one of them;
- `gateway - hooks`: every hook out: Flask, the proxy view (auth, breaker, header filters,
  the call) and nothing else;
- `gateway - hooks - <part>`: that, with one part of the proxy view replaced while it answers
  (auth by no identity, the header filters by no header but the content type, the breaker
  and its call metrics by the bare call, and then the service client too by one bare
  exchange on its pool: no retries, budget or request id), so the difference from
  `gateway - hooks` is what the part costs.

The platform's other processes run natively; only this process is counted. Needs valgrind
(Debian's package). About two minutes for the default 300 calls per app.

    .venv/bin/python loadtest/gateway_instructions.py [--calls 300] [--json FILE]

Traffic goes to 127.0.0.1 only, bounded in calls.
"""

import functools
import tempfile
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from unittest.mock import patch

import callgrind_count
import gateway_without
from cpu_per_order import fresh_platform
from gateway_inprocess import ENV, build_apps, item_read, quiet_stdout

from veloz.net.client import Call

HOOK_LISTS = ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")


def without_hooks(app) -> None:
    """Takes out every request hook and request step (veloz.web.steps) of `app`."""
    steps = app.extensions["request_steps"]
    for functions in [*(functions for attribute in HOOK_LISTS
                        for functions in getattr(app, attribute).values()),
                      steps.before, steps.after, steps.teardown]:
        functions.clear()


@contextmanager
def without(*features: str):
    """This tree's gateway without `features` (gateway_without.FEATURES) in this block."""
    with ExitStack() as stack:
        for feature in features:
            gateway_without.take_out(feature, lambda owner, attribute, replacement:
                                     stack.enter_context(patch.object(owner, attribute,
                                                                      replacement)))
        yield


def view_switches() -> dict:
    """What replaces each part of the proxy view while an app answers, by the part's name."""
    from gateway import proxy
    from gateway.backends import Backend

    def unguarded_send(backend, method, path, **kwargs):
        return backend.client.request(method, path, **kwargs)

    def bare_send(backend, method, path, *, headers, body, idempotent):
        call = Call(method, path, body, headers, retry_safe=False)
        return backend.client._connections().exchange(call, 1.0, 5.0)

    def content_type_only(upstream, backend):
        return [("Content-Type", upstream.headers.get("Content-Type"))]

    return {
        "auth": functools.partial(without, "auth"),
        "header filters": lambda: patch.multiple(
            proxy, _outgoing_headers=lambda served, identity: {},
            _relayed_headers=content_type_only),
        "breaker and call metrics": lambda: patch.object(Backend, "send", unguarded_send),
        "breaker, call metrics and client": lambda: patch.object(Backend, "send", bare_send),
    }


def variants(platform) -> dict:
    """The apps to count, by name, each with what is switched off while it answers: bare, the
    gateway, and the gateway without each feature."""
    apps = {name: (app, nullcontext) for name, app in build_apps(platform).items()}
    from gateway.app import create_app
    for name in [*gateway_without.FEATURES, gateway_without.ALL]:
        features = gateway_without.taken_out(name)
        with without(*features):
            app = create_app()
        apps[f"gateway - {name}"] = (app, functools.partial(without, *features))
    hookless = create_app()
    without_hooks(hookless)
    apps["gateway - hooks"] = (hookless, nullcontext)
    for part, switch in view_switches().items():
        apps[f"gateway - hooks - {part}"] = (hookless, switch)
    return apps


def inner(calls: int) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-instructions-"))
    with fresh_platform(run_dir, "_instructions", ENV) as platform:
        apps = variants(platform)
        call = item_read(platform)
        with quiet_stdout():
            callgrind_count.count({name: (functools.partial(call, app), switch)
                                   for name, (app, switch) in apps.items()}, calls)


def report(per_call: dict[str, float]) -> None:
    bare, gateway, hookless = (per_call[name] for name in ("bare", "gateway", "gateway - hooks"))
    print(f"{'app':48} {'instructions per read':>22} {'÷ bare':>7} {'feature costs':>14}")
    for name, figure in per_call.items():
        whole = hookless if name.startswith("gateway - hooks - ") else gateway
        saved = f"{whole - figure:14,.0f}" if name.startswith("gateway - ") else ""
        print(f"{name:48} {figure:22,.0f} {figure / bare:7.3f} {saved}")


def main() -> None:
    callgrind_count.main(__doc__, unit="calls", default=300, inner=inner, report=report)


if __name__ == "__main__":
    main()
