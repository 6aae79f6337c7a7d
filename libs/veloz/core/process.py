"""This process's id, known without asking the kernel.

`os.getpid()` is a system call on every call (glibc stopped caching it), and the code that
must notice a fork asks on every use: the pooled HTTP client for each call out, the
multi-process metrics for each value written. Python's own os.fork (gunicorn's workers,
granian's through multiprocessing) runs the hooks of os.register_at_fork in the child, so the
id is kept here and renewed there.
"""

import os

_pid = os.getpid()


def current_pid() -> int:
    """os.getpid(), as of this process's start or its last fork."""
    return _pid


def _renew() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_renew)
