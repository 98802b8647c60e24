"""A small HTTP/1.1 client over unix sockets.

http.client cannot read the stream after a `101 UPGRADED` reply (attach) and hides the
framing details this suite compares, so requests are written and parsed here. Every request
has a deadline; a reply cut short by it is marked `timed_out` and keeps what arrived.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

USER_AGENT = "berth-conformance/1"


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    timed_out: bool = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class ConnectionFailed(Exception):
    """The engine did not accept the connection or closed it before a status line."""


def unix_path(host: str) -> str:
    """Returns the socket path of a `unix:///path` address."""
    if not host.startswith("unix://"):
        raise ValueError(f"only unix:// addresses are supported, got {host!r}")
    return host[len("unix://"):]


class PendingResponse:
    """A request running in a thread. `headers_received` is set once the status line and
    headers have arrived, so that a caller can send later requests after it (wait, attach)."""

    def __init__(self) -> None:
        self.headers_received = threading.Event()
        self.done = threading.Event()
        self.response: Response | None = None
        self.error: BaseException | None = None


def request(
    host: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    upgrade: bool = False,
    send_after_upgrade: bytes | None = None,
    close_write: bool = False,
    pending: PendingResponse | None = None,
) -> Response:
    """Sends one request with `Connection: close` and reads the whole reply.

    With `upgrade`, the request is for Docker's `Upgrade: tcp` hijack; after the reply head,
    `send_after_upgrade` is written to the connection and, with `close_write`, the write side is
    shut down (the client's end of stdin). The body of an upgraded reply is the raw stream up
    to the server's close or the deadline.
    """
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(min(timeout, 10.0))
    try:
        try:
            sock.connect(unix_path(host))
        except OSError as err:
            raise ConnectionFailed(f"connecting to {host}: {err}") from err
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"User-Agent: {USER_AGENT}"]
        all_headers = dict(headers or {})
        if upgrade:
            all_headers.setdefault("Connection", "Upgrade")
            all_headers.setdefault("Upgrade", "tcp")
        else:
            all_headers.setdefault("Connection", "close")
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
            all_headers["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT"):
            all_headers["Content-Length"] = "0"
        lines += [f"{key}: {value}" for key, value in all_headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            sock.sendall(head + (body or b""))
        except OSError as err:
            raise ConnectionFailed(f"sending to {host}: {err}") from err
        reader = _Reader(sock, deadline)
        response = reader.read_head()
        if pending is not None:
            pending.headers_received.set()
        if response.status == 101 or (upgrade and response.header("Content-Length") is None
                                      and response.header("Transfer-Encoding") is None):
            if send_after_upgrade:
                sock.sendall(send_after_upgrade)
            if close_write:
                sock.shutdown(socket.SHUT_WR)
            response.body = reader.read_to_end()
        elif method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
            response.body = b""
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            response.body = reader.read_chunked()
        elif response.header("Content-Length") is not None:
            response.body = reader.read_exactly(int(response.header("Content-Length")))
        else:
            response.body = reader.read_to_end()
        response.timed_out = reader.timed_out
        return response
    finally:
        sock.close()


def start_request(**kwargs) -> tuple[threading.Thread, PendingResponse]:
    """Runs `request` in a thread; the caller joins the thread and reads `pending`."""
    pending = PendingResponse()

    def run() -> None:
        try:
            pending.response = request(pending=pending, **kwargs)
        except BaseException as err:  # reported by the joining step
            pending.error = err
        finally:
            pending.headers_received.set()
            pending.done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, pending


class _Reader:
    """Buffered reads from a socket under one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.closed = False
        self.timed_out = False

    def _fill(self) -> bool:
        """Reads more bytes; False at end of stream or deadline."""
        if self.closed or self.timed_out:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            self.timed_out = True
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    def read_head(self) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                reason = "timed out" if self.timed_out else "closed the connection"
                raise ConnectionFailed(f"server {reason} before sending a complete reply head")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionFailed(f"invalid status line {status_line!r}")
        headers = []
        for line in header_lines:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
        return Response(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "", headers=headers)

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def read_chunked(self) -> bytes:
        body = b""
        while True:
            line = self.read_line()
            if line is None:
                return body
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return body
            body += self.read_exactly(size)
            self.read_line()

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data
