"""A server that misbehaves at the socket level, for deadline tests and `scripts/stress.py faults`.

`stall`: accepts the connection, reads the request, never answers. `trickle`: answers HTTP 200 at once, then
one byte every `interval` seconds, forever: a per-read timeout never fires on it, only a total deadline does.
The listening socket is bound (port 0) and held from construction to `close()`, so no test races for a port.
"""

from __future__ import annotations

import socket
import threading

MODES = ("stall", "trickle")


class FaultServer:
    def __init__(self, mode: str, interval: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode, self.interval = mode, interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.mode == "trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n")
                while not self.stop.wait(self.interval):
                    if self.mode == "trickle":
                        conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
