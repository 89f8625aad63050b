"""Helpers for in-process engine tests (driven through ``Reloader.apply``)."""

from __future__ import annotations

import queue
import textwrap
from pathlib import Path

from hotmod import ReloadResult


def write(root: Path, name: str, text: str) -> Path:
    """Write ``root/name`` (folders created, ``text`` dedented); return its path."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


class Collect:
    """A reporter that hands results to the test through a queue."""

    def __init__(self) -> None:
        self.results: queue.Queue[ReloadResult] = queue.Queue()

    def started(self, event: object) -> None:
        pass

    def reloaded(self, result: ReloadResult) -> None:
        self.results.put(result)
