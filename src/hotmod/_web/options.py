"""``hotmod serve``'s options, as the CLI parsed them, handed from supervisor to worker.

The supervisor passes them to every worker it starts in one environment
variable (JSON), with the numbers of the inherited file descriptors.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from dataclasses import dataclass, field
from typing import Final

from .._gate import DEFAULT_DRAIN_TIMEOUT

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug", "trace")


class Env(enum.StrEnum):
    """Environment variables the supervisor sets for its workers."""

    OPTIONS = "HOTMOD_SERVE_OPTIONS"  # ServeOptions as JSON
    LISTEN_FD = "HOTMOD_SERVE_FD"  # the listening socket
    CONTROL_FD = "HOTMOD_SERVE_CONTROL_FD"  # the worker's end of the control channel
    RESTARTS = "HOTMOD_SERVE_RESTARTS"  # how many workers came before this one


@dataclass(frozen=True)
class ServeOptions:
    """What to serve and how (see ``hotmod serve --help``)."""

    target: str
    factory: bool = False
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    uds: str | None = None
    watch: tuple[str, ...] = ()  # absolute; empty: the current folder
    exclude: tuple[str, ...] = ()
    debounce_ms: int = 5
    strict: bool = False
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    live_reload: bool = False
    json_events: str | None = None  # absolute path
    log_level: str = "info"
    verbosity: int = 1  # 0: -q, 1: default, 2: -v
    argv: tuple[str, ...] = field(default_factory=tuple)  # the command line, for events

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServeOptions:
        data = json.loads(os.environ[Env.OPTIONS])
        for name in ("watch", "exclude", "argv"):
            data[name] = tuple(data[name])
        return cls(**data)

    def url(self, port: int | None = None) -> str:
        """Where clients reach the server."""
        if self.uds is not None:
            return f"unix:{self.uds}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}"
