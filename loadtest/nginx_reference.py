"""nginx in front of one upstream: the reference proxy that `make bench` reads through beside
the api-gateway, to show what proxying alone costs on this machine.

    with nginx_proxy("http://127.0.0.1:8001") as proxy:
        if proxy is not None:  # None: no nginx on this machine (`make bench-tools`)
            requests.get(f"{proxy.url}/items/1")

Runs Debian's nginx with a config of its own in a temporary directory (no file outside it is
read or written), listening on 127.0.0.1 on a free port, in a process group of its own
(master + one worker, so `cpu_seconds(proxy.pid)` counts both). Stopped by its pid on the
way out: SIGQUIT, then SIGKILL to its group if it has not finished within a timeout.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from veloz.dev.devstack import free_port

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream backend {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class ReferenceFailed(RuntimeError):
    """A reference proxy is installed but did not come up; the message has the end of its
    log."""


@dataclass(frozen=True)
class ReferenceProxy:
    url: str  # http://127.0.0.1:<port>
    pid: int  # the master's pid, also its process group


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def write_config(root: Path, upstream_url: str, port: int) -> Path:
    config = root / "nginx.conf"
    config.write_text(CONFIG.format(root=root, upstream=urlsplit(upstream_url).netloc,
                                    port=port))
    root.chmod(0o755)  # run as root, the worker is `nobody` and must reach its temp paths
    return config


def wait_until_ready(process: subprocess.Popen, port: int, root: Path, name: str = "nginx",
                     timeout: float = 10, ready: Callable[[], bool] | None = None) -> None:
    """Poll `ready` (by default: `process` accepts connections on `port`) until it holds;
    ReferenceFailed with the end of what it wrote under `root` if it exits or takes longer
    than `timeout`."""
    ready = ready or (lambda: accepts(port))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReferenceFailed(f"{name} exited with {process.returncode}: {tail(root)}")
        if ready():
            return
        time.sleep(0.05)
    raise ReferenceFailed(f"{name} was not ready on {port} within {timeout:.0f}s: {tail(root)}")


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def tail(root: Path, lines: int = 5) -> str:
    """The last lines a reference wrote, to its output or (nginx) its error log."""
    written = [line for name in ("out.log", "error.log") if (root / name).is_file()
               for line in (root / name).read_text(errors="replace").splitlines()]
    return " | ".join(written[-lines:]) or "(no output)"


def stop(process: subprocess.Popen, timeout: float = 10,
         graceful: signal.Signals = signal.SIGQUIT) -> None:
    """Graceful quit (nginx: SIGQUIT to the master, which waits for its worker), then SIGKILL
    to the whole group if that takes longer than `timeout`."""
    if process.poll() is not None:
        return
    process.send_signal(graceful)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def nginx_proxy(upstream_url: str) -> Iterator[ReferenceProxy | None]:
    """nginx proxying to `upstream_url` (keep-alive to it), or None without nginx."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="veloz-nginx-") as directory:
        root, port = Path(directory), free_port()
        config, output = write_config(root, upstream_url, port), root / "out.log"
        with output.open("wb") as log:
            process = subprocess.Popen([binary, "-p", f"{root}/", "-c", str(config),
                                        "-e", str(root / "error.log")],
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_ready(process, port, root)
            yield ReferenceProxy(url=f"http://127.0.0.1:{port}", pid=process.pid)
        finally:
            stop(process)
