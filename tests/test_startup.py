"""Start-up: what ``hotmod run`` defers until the program's imports pause loses nothing.

The import hook queues what it saw of each module and the graph makes the
records at its first look; the watchers arm at the first pause in the
growth of ``sys.modules`` (``hotmod._run.arming``). An edit saved while the
program still imports, before the watchers are armed, is applied once they are.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from hotmod import Reloader
from hotmod._run.arming import Arming
from inprocess import write
from oracle import write_files
from test_cli import HOTMOD, Spawned, read_events, wait_for_event

pytestmark = pytest.mark.timeout(60)

DEADLINE_S = 20.0

# Imports app, says so, then keeps adding modules (a start-up that goes on
# importing) until stdin says go; then waits for app.VALUE to change.
KEEPS_IMPORTING = """
    import sys
    import threading
    import time
    import types

    import app


    def run() -> None:
        print("value", app.VALUE, flush=True)
        go = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.readline(), go.set()), daemon=True).start()
        n = 0
        while not go.is_set():
            n += 1
            sys.modules[f"_filler_{n}"] = types.ModuleType(f"_filler_{n}")
            time.sleep(0.002)
        deadline = time.monotonic() + 30
        while app.VALUE == 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        print("value", app.VALUE, flush=True)
        sys.stdin.readline()  # up until the test has read the events


    if __name__ == "__main__":
        run()
"""


def test_an_edit_saved_while_the_program_imports_is_applied_once_armed(tmp_path: Path) -> None:
    write_files(tmp_path, {"main.py": KEEPS_IMPORTING, "app.py": "VALUE = 1\n"})
    events = tmp_path / "events.jsonl"
    child = Spawned([*HOTMOD, "run", "--json-events", str(events), "main.py"], tmp_path)
    try:
        child.wait_line("value 1")
        write_files(tmp_path, {"app.py": "VALUE = 2\n"})
        # Still importing: not armed yet (arming waits for a pause, up to 2 s).
        before = [e["event"] for e in read_events(events)]
        child.send("go\n")
        child.wait_line("value 2")
        reload = wait_for_event(events, "reload")
        kinds = [e["event"] for e in read_events(events)]
        child.send("stop\n")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()
    assert "started" not in before, "armed before the edit: the test proves nothing"
    assert kinds[:2] == ["started", "reload"], kinds
    assert reload["outcome"] == "applied", (reload, child.stderr_so_far())
    assert reload["paths"] == [str(tmp_path.resolve() / "app.py")]


# The main code starts a serving thread and returns; the thread reads app.VALUE
# until it changes (or stdin says stop).
SERVES_FROM_A_THREAD = """
    import sys
    import threading
    import time

    import app


    def serve() -> None:
        print("value", app.VALUE, flush=True)
        deadline = time.monotonic() + 30
        while app.VALUE == 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        print("value", app.VALUE, flush=True)
        sys.stdin.readline()


    threading.Thread(target=serve).start()
"""


def test_a_program_whose_main_code_returns_is_watched_while_its_threads_run(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, {"main.py": SERVES_FROM_A_THREAD, "app.py": "VALUE = 1\n"})
    events = tmp_path / "events.jsonl"
    child = Spawned([*HOTMOD, "run", "--json-events", str(events), "main.py"], tmp_path)
    try:
        child.wait_line("value 1")
        wait_for_event(events, "started")
        write_files(tmp_path, {"app.py": "VALUE = 2\n"})
        child.wait_line("value 2")
        reload = wait_for_event(events, "reload")
        child.send("stop\n")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()
    assert reload["outcome"] == "applied", reload


def _watching() -> bool:
    return any(t.name == "hotmod-watch" for t in threading.enumerate())


def test_arming_does_not_wait_for_ever_for_a_pause(tmp_path: Path) -> None:
    reloader = Reloader([tmp_path], packages=())
    armed = threading.Event()
    arming = Arming(reloader, armed.set, step_s=0.01, latest_s=0.2)
    reloader.install()
    try:
        arming.start()
        deadline = time.monotonic() + DEADLINE_S
        n = 0
        while not armed.is_set() and time.monotonic() < deadline:  # imports that never pause
            n += 1
            sys.modules[f"_arming_filler_{n}"] = types.ModuleType(f"_arming_filler_{n}")
            time.sleep(0.001)
        assert armed.is_set()
        assert _watching()
    finally:
        reloader.uninstall()
    assert not _watching()


def test_arming_cancelled_never_starts_the_watchers(tmp_path: Path) -> None:
    reloader = Reloader([tmp_path], packages=())
    armed = threading.Event()
    arming = Arming(reloader, armed.set, step_s=0.01)
    reloader.install()
    try:
        arming.start()
        arming.cancel()
        arming.join(timeout=DEADLINE_S)
        assert not armed.is_set()
        assert not _watching()
    finally:
        reloader.uninstall()


def test_records_of_loaded_modules_are_made_at_the_first_look(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/first.py", "import pkg.second\n")
    write(root, "pkg/second.py", "X = 1\n")
    importlib.import_module("pkg.first")
    graph = reloader.graph
    records = graph.records
    assert {"pkg", "pkg.first", "pkg.second"} <= set(records)
    pkg, first, second = records["pkg"], records["pkg.first"], records["pkg.second"]
    assert (pkg.is_package, first.is_package, second.is_package) == (True, False, False)
    assert first.path == (root / "pkg" / "first.py").resolve()
    assert graph.by_path[first.path] == "pkg.first"
    assert pkg.order < first.order < second.order  # the order they started executing
    assert first.mtime_ns == first.path.stat().st_mtime_ns
    assert graph.importers("pkg.second") == {"pkg.first"}
    assert graph.holds_modules(str(first.path.parent))


def test_an_edit_of_a_module_not_yet_entered_is_seen_at_arming(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    path = write(root, "early.py", "X = 1\n")
    importlib.import_module("early")
    path.write_text("X = 2  # edited before the watcher armed\n", encoding="utf-8")
    stamp = path.stat().st_mtime_ns + 1_000_000
    os.utime(path, ns=(stamp, stamp))  # a new mtime even on a coarse clock
    graph = reloader.graph
    assert graph._pending, "the record should still be queued"
    assert graph.changed_on_disk() == {path.resolve()}
    assert graph._pending, "changed_on_disk made the records"
