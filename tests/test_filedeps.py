"""Non-Python files read at import time are dependencies (DESIGN §3, issue 5 §2).

The watcher's part: a file of another suffix passes when the consumer tracks it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hotmod._watch.pathfilter import PathFilter
from hotmod._watch.watcher import DEFAULT_IGNORED_DIRS, Watcher

pytestmark = pytest.mark.timeout(120)

DEADLINE_S = 10.0


# --------------------------------------------------------------------------------------
# the watcher passes tracked files of any suffix


def test_path_filter_passes_tracked_files_only(tmp_path: Path) -> None:
    root = str(tmp_path)
    tracked = {f"{root}/config.json", f"{root}/build/x.json", f"{root}/gen/y.json"}
    path_filter = PathFilter(
        [root], suffixes=(".py",), ignored_dirs=DEFAULT_IGNORED_DIRS, exclude=("gen",),
        interesting=tracked.__contains__,
    )
    raw = [(2, f"{root}/config.json"), (2, f"{root}/app.log"), (2, f"{root}/mod.py"),
           (2, f"{root}/build/x.json"), (2, f"{root}/gen/y.json")]
    # ignored folders and excludes apply to tracked files as to modules
    assert path_filter.filter(raw) == {f"{root}/config.json", f"{root}/mod.py"}


def test_watcher_reports_a_tracked_file(tmp_path: Path) -> None:
    tracked: set[str] = set()
    config = tmp_path / "config.json"
    config.write_text("{}")
    with Watcher([tmp_path], interesting=tracked.__contains__) as watcher:
        config.write_text('{"a": 1}')
        for i in range(100):
            (tmp_path / "app.log").write_text(f"line {i}\n")
        sentinel = tmp_path / "sentinel.py"
        sentinel.write_text("X = 1\n")
        assert _drain(watcher, {sentinel.resolve()}) == {sentinel.resolve()}
        tracked.add(str(config.resolve()))  # a module read it meanwhile
        config.write_text('{"a": 2}')
        assert _drain(watcher, {config.resolve()}) == {config.resolve()}


def _drain(watcher: Watcher, expect: set[Path]) -> set[Path]:
    """The union of batches until ``expect`` is covered and then 300 ms pass quietly."""
    seen: set[Path] = set()
    for _ in range(int(DEADLINE_S / 0.3)):
        batch = watcher.poll_once(300)
        if batch is not None:
            seen |= batch
        elif expect <= seen:
            return seen
    pytest.fail(f"expected {sorted(map(str, expect))}, saw {sorted(map(str, seen))}")
