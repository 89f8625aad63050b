"""The control channel between ``hotmod serve``'s supervisor and its workers.

One connected stream socket per worker (a ``socketpair``; the worker's end is
inherited). Messages are named, one byte each (as in hupper's ``ipc.py``),
followed by a 4-byte length and that many bytes of JSON (often none)::

    worker -> supervisor   READY     the app is imported, the server accepts
                                     {"kind", "server", "url"}
                           FAILED    the app failed to start; the worker serves an
                                     error page {"type", "message", "path", "line",
                                     "traceback"}
                           FATAL     the target cannot be served at all (bad
                                     target, missing extra) {"message", "exit_code"}
                           RESTART   an edit needs a restart {"reason"}
    supervisor -> worker   STOP      stop accepting, drain, exit

End of file means the other side is gone: a worker whose supervisor died
stops as if told to.
"""

from __future__ import annotations

import enum
import json
import socket
import struct
import threading
from typing import Any, Final

__all__ = ["Channel", "Message"]

_HEADER: Final = struct.Struct(">cI")


class Message(enum.Enum):
    """The named control messages (one byte each)."""

    READY = b"R"
    FAILED = b"F"
    FATAL = b"X"
    RESTART = b"A"
    STOP = b"S"


class Channel:
    """Framed messages over one stream socket; ``send`` is thread-safe."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._lock = threading.Lock()

    @classmethod
    def from_fd(cls, fd: int) -> Channel:
        return cls(socket.socket(fileno=fd))

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Message, payload: dict[str, Any] | None = None) -> bool:
        """Send one message; False if the other side is gone."""
        body = json.dumps(payload).encode() if payload else b""
        try:
            with self._lock:
                self.sock.sendall(_HEADER.pack(message.value, len(body)) + body)
        except OSError:
            return False
        return True

    def receive(self) -> list[tuple[Message, dict[str, Any]]] | None:
        """Read what is available (blocking for at least some bytes): complete
        messages, or ``None`` at end of file."""
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionError, OSError):
            chunk = b""
        if not chunk:
            return None
        self._buffer += chunk
        out: list[tuple[Message, dict[str, Any]]] = []
        while len(self._buffer) >= _HEADER.size:
            code, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            body, self._buffer = self._buffer[_HEADER.size : end], self._buffer[end:]
            try:
                message = Message(code)
            except ValueError:
                continue  # not ours: ignored
            out.append((message, json.loads(body) if body else {}))
        return out

    def close(self) -> None:
        self.sock.close()
