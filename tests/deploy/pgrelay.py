"""A Unix-socket relay to the embedded PostgreSQL, for containers that have no network at all.

The embedded server's socket lives in its data folder, which only the server's own system user
may enter; the relay's socket sits in a folder any user may enter, so the images' non-root
user (uid 10001) reaches the server through a bind mount of that folder, and nothing else.
"""

import contextlib
import socket
import threading
from pathlib import Path

SOCKET_NAME = ".s.PGSQL.5432"  # what libpq opens for `host=<folder>` on the default port


class SocketRelay:
    def __init__(self, folder: Path, target: Path):
        self.folder = folder
        self.target = target
        self._listener: socket.socket | None = None

    def start(self) -> "SocketRelay":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        path = self.folder / SOCKET_NAME
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        path.chmod(0o777)
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(str(self.target))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
