"""The watcher on a real file system: real files in ``tmp_path``, a real native watcher.

Every wait is ``poll_once`` with a timeout inside a deadline; nothing sleeps to
synchronise. Negative tests (ignored files) end by saving a *sentinel* module
and draining: the union must be exactly the sentinel, which proves both that
the watcher was alive and that the noise before it was filtered out.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmod._errors import UsageError
from hotmod._watch.watcher import DEFAULT_IGNORED_DIRS, Watcher

DEADLINE_S = 10.0  # the longest any expected change may take to show up
SETTLE_MS = 300  # this long without a batch means the file system has gone quiet

MakeWatcher = Callable[..., Watcher]


@pytest.fixture
def make_watcher(tmp_path: Path) -> Iterator[MakeWatcher]:
    """``make_watcher(roots=None, **options)``: a started Watcher, closed at teardown."""
    made: list[Watcher] = []

    def make(roots: list[Path] | None = None, **options: Any) -> Watcher:
        watcher = Watcher(roots if roots is not None else [tmp_path], **options)
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.close()


@pytest.fixture
def watcher(make_watcher: MakeWatcher) -> Watcher:
    return make_watcher()


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def drain(watcher: Watcher, expect: set[Path] | None = None) -> set[Path]:
    """The union of batches until ``expect`` is covered and no batch came for SETTLE_MS."""
    seen: set[Path] = set()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        batch = watcher.poll_once(SETTLE_MS)
        if batch is not None:
            seen |= batch
        elif expect is None or expect <= seen:
            return seen
    pytest.fail(f"within {DEADLINE_S} s expected {sorted(map(str, expect or ()))}, saw {seen}")


def resolved(*paths: Path) -> set[Path]:
    return {p.resolve() for p in paths}


# --- saves ----------------------------------------------------------------------------------


@pytest.mark.smoke
def test_plain_write_is_one_batch(tmp_path: Path, watcher: Watcher) -> None:
    module = write(tmp_path / "mod.py")
    assert drain(watcher, resolved(module)) == resolved(module)


@pytest.mark.smoke
def test_nothing_changed_times_out(watcher: Watcher) -> None:
    started = time.monotonic()
    assert watcher.poll_once(50) is None
    assert watcher.poll_once(0) is None
    assert time.monotonic() - started < DEADLINE_S


def test_save_by_rename_reports_the_target(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    module = write(tmp_path / "mod.py")
    watcher = make_watcher()
    temp = write(tmp_path / ".mod.py.tmp", "x = 2\n")  # how editors save: write, then rename
    os.replace(temp, module)
    assert drain(watcher, resolved(module)) == resolved(module)


@pytest.mark.skipif(shutil.which("sed") is None, reason="needs sed")
def test_sed_in_place_reports_the_target(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    module = write(tmp_path / "mod.py", "x = 1\n")
    watcher = make_watcher()
    # -i.bak is understood by GNU and BSD sed alike; the backup is not a module.
    subprocess.run(["sed", "-i.bak", "s/1/2/", str(module)], check=True, timeout=DEADLINE_S)
    assert module.read_text() == "x = 2\n"
    assert drain(watcher, resolved(module)) == resolved(module)


def test_burst_of_saves_of_one_file(tmp_path: Path, watcher: Watcher) -> None:
    module = tmp_path / "mod.py"
    for i in range(10):
        write(module, f"x = {i}\n")
        time.sleep(0.005)  # pacing: 10 saves spread over ~50 ms, not synchronisation
    assert drain(watcher, resolved(module)) == resolved(module)


def test_burst_of_saves_of_several_files(tmp_path: Path, watcher: Watcher) -> None:
    modules = [tmp_path / f"m{i}.py" for i in range(5)]
    for i in range(10):
        write(modules[i % 5], f"x = {i}\n")
        time.sleep(0.005)  # pacing, not synchronisation
    assert drain(watcher, resolved(*modules)) == resolved(*modules)


def test_quiet_period_groups_a_burst(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    # A generous quiet period makes the grouping deterministic: all ten saves
    # happen well within 500 ms of each other.
    watcher = make_watcher(debounce_ms=500, max_window_ms=5000)
    started = time.monotonic()
    modules = [write(tmp_path / f"m{i}.py") for i in range(10)]
    batch = watcher.poll_once(int(DEADLINE_S * 1000))
    assert batch == resolved(*modules)
    assert time.monotonic() - started >= 0.5  # never before the quiet period
    assert watcher.poll_once(SETTLE_MS) is None


def test_window_bounds_a_long_quiet_period(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    watcher = make_watcher(debounce_ms=30_000, max_window_ms=100)
    module = write(tmp_path / "mod.py")
    started = time.monotonic()
    assert watcher.poll_once(int(DEADLINE_S * 1000)) == resolved(module)
    assert time.monotonic() - started < DEADLINE_S  # the window, not the 30 s quiet period


# --- created, deleted, renamed ----------------------------------------------------------------


def test_created_module(tmp_path: Path, watcher: Watcher) -> None:
    module = write(tmp_path / "pkg" / "new.py")
    assert resolved(module) <= drain(watcher, resolved(module))


def test_deleted_module(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    module = write(tmp_path / "mod.py")
    expected = resolved(module)
    watcher = make_watcher()
    module.unlink()
    assert drain(watcher, expected) == expected


def test_renamed_module_reports_old_and_new(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    old = write(tmp_path / "old.py")
    new = tmp_path / "new.py"
    expected = resolved(old, new)
    watcher = make_watcher()
    old.rename(new)
    assert drain(watcher, expected) == expected


def test_files_of_a_new_directory_tree(tmp_path: Path, watcher: Watcher) -> None:
    # Written right after mkdir: before the native watcher may watch the new folder.
    modules = [
        write(tmp_path / "pkg" / "__init__.py"),
        write(tmp_path / "pkg" / "sub" / "deep" / "mod.py"),
    ]
    assert drain(watcher, resolved(*modules)) == resolved(*modules)


def test_directory_moved_into_the_tree(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    outside, inside = tmp_path / "outside", tmp_path / "inside"
    module = write(outside / "pkg" / "mod.py")
    inside.mkdir()
    watcher = make_watcher([inside])
    (outside / "pkg").rename(inside / "pkg")  # moving a folder raises no event for its files
    expected = resolved(inside / "pkg" / "mod.py")
    assert not module.exists()
    assert drain(watcher, expected) == expected


# --- filtering ----------------------------------------------------------------------------------


def test_other_suffixes_make_no_batch(tmp_path: Path, watcher: Watcher) -> None:
    log = tmp_path / "app.log"
    for i in range(200):
        log.write_text(f"line {i}\n")
    write(tmp_path / "data.json", "{}")
    assert watcher.poll_once(SETTLE_MS) is None
    sentinel = write(tmp_path / "sentinel.py")
    assert drain(watcher, resolved(sentinel)) == resolved(sentinel)


@pytest.mark.parametrize(
    "relative",
    [
        "__pycache__/mod.py",
        ".git/hooks/mod.py",
        ".venv/lib/python3.11/site-packages/dep.py",
        "lib/site-packages/dep.py",
        "build/lib/pkg/mod.py",
        "proj.egg-info/mod.py",
        "pkg/node_modules/mod.py",
        ".#mod.py",
        "flycheck_mod.py",
    ],
)
def test_ignored_places(tmp_path: Path, watcher: Watcher, relative: str) -> None:
    write(tmp_path / relative)
    sentinel = write(tmp_path / "sentinel.py")
    assert drain(watcher, resolved(sentinel)) == resolved(sentinel)


def test_any_virtualenv_is_ignored(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    write(tmp_path / "myenv" / "pyvenv.cfg", "home = /usr/bin\n")
    watcher = make_watcher()
    write(tmp_path / "myenv" / "bin" / "tool.py")
    write(tmp_path / "myenv" / "lib" / "python3.11" / "mod.py")
    sentinel = write(tmp_path / "sentinel.py")
    assert drain(watcher, resolved(sentinel)) == resolved(sentinel)


def test_exclude_globs(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    watcher = make_watcher(exclude=["*_pb2.py", "generated", "scripts/*"])
    write(tmp_path / "pkg" / "api_pb2.py")  # file name
    write(tmp_path / "pkg" / "generated" / "mod.py")  # a directory's name
    write(tmp_path / "scripts" / "tool.py")  # the path relative to the root
    kept = write(tmp_path / "pkg" / "scripts" / "mod.py")  # "scripts/*" is anchored at the root
    assert drain(watcher, resolved(kept)) == resolved(kept)


def test_other_suffixes_can_be_watched(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    watcher = make_watcher(suffixes=[".py", ".toml"])
    config = write(tmp_path / "app.toml", "a = 1\n")
    write(tmp_path / "app.log", "noise\n")
    assert drain(watcher, resolved(config)) == resolved(config)


def test_paths_are_resolved(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    watcher = make_watcher([link])
    module = write(link / "mod.py")
    assert drain(watcher, resolved(module)) == {real.resolve() / "mod.py"}


def test_ignored_names_count_below_the_root_only(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    root = tmp_path / "build" / "proj"  # "build" is ignored inside a project, not above it
    root.mkdir(parents=True)
    watcher = make_watcher([root])
    module = write(root / "mod.py")
    assert drain(watcher, resolved(module)) == resolved(module)


def test_ignored_dirs_can_be_replaced(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    watcher = make_watcher(ignored_dirs={"vendor"})
    write(tmp_path / "vendor" / "lib.py")
    kept = write(tmp_path / "build" / "mod.py")
    assert drain(watcher, resolved(kept)) == resolved(kept)


def test_default_ignored_dirs() -> None:
    assert {"__pycache__", ".git", ".venv", "site-packages", "*.egg-info"} <= DEFAULT_IGNORED_DIRS


# --- lifecycle and errors ---------------------------------------------------------------------


@pytest.mark.smoke
def test_batches_stops_promptly(tmp_path: Path, watcher: Watcher) -> None:
    stop = threading.Event()
    received: queue.Queue[set[Path]] = queue.Queue()

    def consume() -> None:
        for batch in watcher.batches(stop):
            received.put(batch)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    module = write(tmp_path / "mod.py")
    assert resolved(module) <= received.get(timeout=DEADLINE_S)
    stop.set()
    thread.join(timeout=1.0)  # the contract is ~50 ms; 1 s leaves room for a loaded machine
    assert not thread.is_alive()


def test_batches_stops_when_closed(watcher: Watcher) -> None:
    done = threading.Event()

    def consume() -> None:
        for _ in watcher.batches(threading.Event()):
            pass
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    watcher.close()
    assert done.wait(timeout=1.0)


@pytest.mark.smoke
def test_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(UsageError, match="nope"):
        Watcher([missing])


def test_file_root_is_a_usage_error(tmp_path: Path) -> None:
    module = write(tmp_path / "mod.py")
    with pytest.raises(UsageError, match=r"mod\.py.*not a directory"):
        Watcher([module])


@pytest.mark.parametrize(
    ("roots", "options"),
    [
        ([], {}),
        (None, {"debounce_ms": -1}),
        (None, {"suffixes": ["py"]}),
        (None, {"suffixes": ".py"}),
        (None, {"exclude": "*.py"}),
    ],
)
def test_bad_arguments(tmp_path: Path, roots: list[Path] | None, options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        Watcher(roots if roots is not None else [tmp_path], **options)


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    with Watcher([tmp_path]) as watcher:
        assert "open" in repr(watcher)
    watcher.close()
    assert "closed" in repr(watcher)
    with pytest.raises(UsageError, match="closed"):
        watcher.poll_once(0)


def test_nested_roots_are_merged(tmp_path: Path, make_watcher: MakeWatcher) -> None:
    (tmp_path / "sub").mkdir()
    watcher = make_watcher([tmp_path / "sub", tmp_path, tmp_path])
    assert watcher.roots == (tmp_path.resolve(),)
    module = write(tmp_path / "sub" / "mod.py")
    assert drain(watcher, resolved(module)) == resolved(module)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names may be any bytes")
def test_survives_a_file_name_that_is_not_utf8(tmp_path: Path, watcher: Watcher) -> None:
    # watchfiles cannot decode such a name and then fails for good; we restart it.
    with open(os.fsencode(tmp_path) + b"/\xff.log", "w") as bad:
        bad.write("noise")
    module = tmp_path / "mod.py"
    deadline = time.monotonic() + DEADLINE_S
    # Changes made while the backend restarts may be missed, so save until one is seen.
    while time.monotonic() < deadline:
        write(module)
        batch = watcher.poll_once(SETTLE_MS)
        if batch is not None and resolved(module) <= batch:
            return
    pytest.fail("no batch after the backend failed on a non-UTF-8 file name")


# --- folders moved away ---------------------------------------------------------------------


@pytest.mark.parametrize("consumer_knows", [True, False], ids=["known-folder", "unknown-folder"])
def test_folder_moved_away_is_reported_when_the_consumer_knew_it(
    tmp_path: Path, make_watcher: MakeWatcher, consumer_knows: bool
) -> None:
    package = tmp_path / "pkg"
    write(package / "mod.py")
    gone = str(package.resolve())
    watcher = make_watcher(keep_deleted=lambda path: consumer_knows and path == gone)
    package.rename(tmp_path / "pkg2")
    seen = drain(watcher, resolved(tmp_path / "pkg2" / "mod.py"))
    assert (Path(gone) in seen) is consumer_knows
    assert (tmp_path / "pkg2" / "mod.py").resolve() in seen  # the folder moved in is scanned


# --- the native backend alone -----------------------------------------------------------------


NATIVE_ONLY = """
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])  # a watchfiles whose __init__ must not run
from hotmod._watch.watcher import Watcher
with tempfile.TemporaryDirectory() as tmp:
    with Watcher([tmp]) as watcher:
        (Path(tmp) / "mod.py").write_text("x = 1")
        deadline = time.monotonic() + 10
        batch = None
        while batch is None and time.monotonic() < deadline:
            batch = watcher.poll_once(100)
print(sorted(p.name for p in batch or ()))
print(sorted(m for m in sys.modules if "watchfiles" in m or "rust_notify" in m))
"""


def test_watcher_loads_only_the_native_extension(tmp_path: Path) -> None:
    """``watchfiles/__init__.py`` (and all it imports) never runs: only ``_rust_notify``."""
    import importlib.util

    spec = importlib.util.find_spec("watchfiles")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    real = Path(next(iter(spec.submodule_search_locations)))
    fake = tmp_path / "site" / "watchfiles"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('watchfiles/__init__.py ran')\n")
    for extension in real.glob("_rust_notify*"):
        if extension.suffix in {".so", ".pyd"}:
            (fake / extension.name).symlink_to(extension)
    result = subprocess.run(
        [sys.executable, "-c", NATIVE_ONLY, str(tmp_path / "site")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['mod.py']", "[]"], result.stdout + result.stderr


AFTER_HOTMOD = """
import sys, tempfile
from hotmod._watch.watcher import Watcher
with tempfile.TemporaryDirectory() as tmp:
    Watcher([tmp]).close()  # hotmod's copy of the extension is loaded
    import watchfiles  # then the program imports watchfiles itself
    from watchfiles._rust_notify import RustNotify
    RustNotify([tmp], False, False, 300, True, True).close()
    print(watchfiles.VERSION == watchfiles._rust_notify.__version__)
"""


def test_program_may_import_watchfiles_after_hotmod() -> None:
    result = subprocess.run(
        [sys.executable, "-c", AFTER_HOTMOD], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True", result.stdout + result.stderr


def test_non_recursive_watch_sees_only_the_roots_entries(
    tmp_path: Path, make_watcher: MakeWatcher
) -> None:
    (tmp_path / "sub").mkdir()
    watcher = make_watcher(recursive=False, step_ms=20)
    write(tmp_path / "sub" / "deep.py")
    top = write(tmp_path / "top.py")
    assert drain(watcher, resolved(top)) == resolved(top)
