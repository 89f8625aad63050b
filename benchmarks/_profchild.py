"""Profile a benchmark program's start-up: cProfile until its first observation.

Used in place of ``python`` when ``HOTMOD_BENCH_PROFILE=DIR`` is set (see
``_scenarios.command``)::

    python benchmarks/_profchild.py PREFIX -m hotmod run --json-events F main.py
    python benchmarks/_profchild.py PREFIX main.py

runs the program as ``python -m hotmod ...`` / ``python main.py`` would, with
one cProfile profiler on the main thread and one on every thread started
later (hotmod's watcher threads). When the program writes its first line
on stdout (its first observation: the end of the start-up the benchmark
measures), just before that line goes out, every profiler's statistics are
written next to ``PREFIX``: ``PREFIX.main.prof`` and ``PREFIX.<thread
name>.prof`` (``pstats`` files), and ``PREFIX.wall.txt`` with the wall time
from the wrapper's start to that point. The program then runs on, unprofiled.

cProfile's wall clock includes waiting for the interpreter lock, so the main
thread's profile shows what the program waited for; the other threads' show
what took the lock from it. Python-heavy code (the import system) is slowed
by the profiler itself: use the profiles for shares, not absolute times.
"""

from __future__ import annotations

import cProfile
import marshal
import os
import re
import runpy
import sys
import threading
import time
from typing import Any, TextIO

_STARTED_NS = time.time_ns()
_THREADS: list[tuple[str, cProfile.Profile]] = []


def _profiled_run(original: Any) -> Any:
    def run(self: threading.Thread) -> None:
        profiler = cProfile.Profile()
        _THREADS.append((self.name, profiler))
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    return run


def _dump(profiler: cProfile.Profile, path: str) -> None:
    # snapshot_stats() reads the statistics without disabling: a thread that is
    # still running keeps its profiler (calls in progress are not counted).
    profiler.snapshot_stats()
    with open(path, "wb") as fh:
        marshal.dump(profiler.stats, fh)  # type: ignore[attr-defined]


class _FirstLine:
    """stdout that dumps the profiles once the first line is complete."""

    def __init__(self, stream: TextIO, prefix: str, main: cProfile.Profile) -> None:
        self._stream = stream
        self._prefix = prefix
        self._main: cProfile.Profile | None = main

    def write(self, text: str) -> int:
        # Dump first: once the line is out, the benchmark may kill the program.
        if self._main is not None and "\n" in text:
            main, self._main = self._main, None
            main.disable()
            elapsed_ms = (time.time_ns() - _STARTED_NS) / 1e6
            _dump(main, f"{self._prefix}.main.prof")
            for name, profiler in list(_THREADS):
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                _dump(profiler, f"{self._prefix}.{safe}.prof")
            with open(f"{self._prefix}.wall.txt", "w", encoding="utf-8") as fh:
                fh.write(f"{elapsed_ms:.1f} ms from the wrapper's start to the first line\n")
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    prefix, *argv = sys.argv[1:]
    threading.Thread.run = _profiled_run(threading.Thread.run)  # type: ignore[method-assign]
    profiler = cProfile.Profile()
    sys.stdout = _FirstLine(sys.stdout, prefix, profiler)  # type: ignore[assignment]
    if argv[0] == "-m":
        module, *rest = argv[1:]
        sys.argv = [module, *rest]
        sys.path[0] = os.getcwd()  # as ``python -m``
        profiler.enable()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # as ``python script.py``
        profiler.enable()
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
