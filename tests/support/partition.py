"""A network partition for federation tests: a ``Gate`` is a TCP relay in front of a server's
federation listener, and the port in the server's name is the gate's, so every other server
reaches it only through the gate. ``cut()`` ends every relayed connection and refuses new ones
at once (the peer sees a reset, as when a route goes down); ``mend()`` lets them through again.

TLS passes through untouched (the relay never reads the bytes), so certificates and signatures
are checked end to end as without it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

from tests.support.server import free_port

BUFFER = 65536


class Gate:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.target_port: int | None = None  # set once the server behind it is listening
        self.open = True
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener.settimeout(0.2)
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Partition: close every relayed connection; new ones are closed as soon as accepted."""
        with self._lock:
            self.open = False
            live, self._live = self._live, set()
        for sock in live:
            _close_hard(sock)

    def mend(self) -> None:
        with self._lock:
            self.open = True

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                allowed = self.open and self.target_port is not None
            if not allowed:
                _close_hard(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port or 0), timeout=5)
            except OSError:
                _close_hard(client)
                continue
            with self._lock:
                self._live.update((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                if not self.open:
                    return
                for sock in readable:
                    data = sock.recv(BUFFER)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._live.discard(client)
                self._live.discard(upstream)
            _close_hard(client)
            _close_hard(upstream)


def _close_hard(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), so the other end fails at once instead of waiting."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
