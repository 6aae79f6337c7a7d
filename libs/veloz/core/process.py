"""This process's id, known without asking the kernel; whether a socket has something to read.

`os.getpid()` is a system call on every call (glibc stopped caching it), and the code that
must notice a fork asks on every use: the pooled HTTP client for each call out, the
multi-process metrics for each value written. Python's own os.fork (gunicorn's workers,
granian's through multiprocessing) runs the hooks of os.register_at_fork in the child, so the
id is kept here and renewed there.
"""

import os
import select
import sys
from collections.abc import Callable

_pid = os.getpid()


def current_pid() -> int:
    """os.getpid(), as of this process's start or its last fork."""
    return _pid


def _renew() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_renew)


# The kernel's poll: the module's own when gevent has not patched it (yet: a gevent worker
# patches after its server imported this), else the original gevent kept.
_kernel_poll: Callable[[], select.poll] = select.poll
if (_monkey := sys.modules.get("gevent.monkey")) and _monkey.is_module_patched("select"):
    _kernel_poll = _monkey.get_original("select", "poll")


def readable_now(fileno: int) -> bool:
    """Whether the kernel holds something to read on `fileno` (data, or the peer's end of
    stream) at this moment: one zero-timeout poll(2), which never blocks. Under gevent the
    standard library's poll is its emulation, which costs 14 µs against 1 µs here (it arms
    a watcher and asks the hub) and is asked before every pooled call out and database
    checkout; a poll that cannot block needs none of that, so the kernel's is used."""
    poller = _kernel_poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))
