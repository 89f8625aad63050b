"""Non-Python files read at import time are dependencies (DESIGN §3, issue 5 §2).

Three layers: the engine in-process, driven through ``Reloader.apply`` (no
threads, no sleeps), the watcher, and real programs under ``hotmod run``
checked by the fresh-start oracle. In-process, a dependency is edited by
*another process* (:func:`edit_outside`): a file the program writes itself is
its data, and stops being a dependency.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from hotmod import Outcome, Reloader
from hotmod._engine import filedeps
from hotmod._watch.pathfilter import PathFilter
from hotmod._watch.watcher import DEFAULT_IGNORED_DIRS, Watcher
from inprocess import Collect, write
from oracle import HotProgramFactory, code

pytestmark = pytest.mark.timeout(120)

DEADLINE_S = 10.0




def edit_outside(path: Path, text: str) -> None:
    """Write ``path`` from another process, as an editor would."""
    subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
         str(path), text],
        check=True, timeout=30,
    )




CONF = """
    import json
    from pathlib import Path

    HERE = Path(__file__).parent
    CONFIG = json.loads((HERE / "config.json").read_text())  # (in-process: no unclosed file)
"""

USER = """
    from {conf} import CONFIG

    GREETING = CONFIG["greeting"] + "!"
"""


# --------------------------------------------------------------------------------------
# in-process: Reloader.apply


@pytest.mark.smoke
def test_changed_file_reexecutes_its_reader_and_importers(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    config = write(root, "config.json", '{"greeting": "hello"}')
    write(root, "fd_conf.py", CONF)
    write(root, "fd_user.py", USER.format(conf="fd_conf"))
    user = importlib.import_module("fd_user")
    conf = sys.modules["fd_conf"]
    assert reloader.file_dependencies.readers(config) == {"fd_conf"}
    assert reloader.file_dependencies.reads("fd_user") == set()
    edit_outside(config, '{"greeting": "bonjour"}')
    result = reloader.apply([config])
    assert result.outcome is Outcome.APPLIED, result
    assert result.reexecuted == ("fd_conf", "fd_user")
    assert conf.CONFIG == {"greeting": "bonjour"}
    assert user.GREETING == "bonjour!"


def test_python_and_data_edits_are_one_transaction(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    config = write(root, "config.json", '{"greeting": "hello"}')
    write(root, "fd_conf2.py", CONF)
    user_path = write(root, "fd_user2.py", USER.format(conf="fd_conf2"))
    user = importlib.import_module("fd_user2")
    edit_outside(config, '{"greeting": "bonjour"}')
    write(root, "fd_user2.py", USER.format(conf="fd_conf2") + "BROKEN = (\n")
    failed = reloader.apply([config, user_path])
    assert failed.outcome is Outcome.FAILED, failed
    assert user.GREETING == "hello!"  # nothing applied
    assert sys.modules["fd_conf2"].CONFIG == {"greeting": "hello"}
    write(root, "fd_user2.py", USER.format(conf="fd_conf2").replace('"!"', '"?"'))
    fixed = reloader.apply([user_path])  # the config edit is still pending
    assert fixed.outcome is Outcome.APPLIED, fixed
    assert set(fixed.paths) == {config, user_path}
    assert user.GREETING == "bonjour?"


def test_a_failing_reader_leaves_the_file_pending(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    config = write(root, "config.json", '{"greeting": "hello"}')
    write(root, "fd_conf3.py", CONF)
    conf = importlib.import_module("fd_conf3")
    edit_outside(config, '{"greeting": ')  # saved half-way
    failed = reloader.apply([config])
    assert failed.outcome is Outcome.FAILED
    assert "JSONDecodeError" in str(failed.error)
    assert conf.CONFIG == {"greeting": "hello"}
    edit_outside(config, '{"greeting": "hi"}')
    assert reloader.apply([]).outcome is Outcome.APPLIED
    assert conf.CONFIG == {"greeting": "hi"}


def test_reads_that_are_not_dependencies(project: tuple[Path, Reloader], tmp_path: Path) -> None:
    root, reloader = project
    outside = write(tmp_path, "outside.json", "{}")
    write(root, "runtime.txt", "read by a function")
    write(root, "cache/x.json", "{}")
    write(root, "fd_misc.py", f"""
        import json, logging, pathlib
        HERE = pathlib.Path(__file__).parent
        OUTSIDE = json.loads(pathlib.Path({str(outside)!r}).read_text())  # not under a root
        LOG = open(HERE / "app.log", "a")  # written, not read
        with open(HERE / "cache" / "x.json", "r+") as f:  # read *and* written: data
            f.read()
        with open(HERE / "lib.py", "w") as f:  # a module of our own making
            f.write("X = 1\\n")
        import lib

        def later():
            return (HERE / "runtime.txt").read_text()  # at run time, not import time
    """)
    misc = importlib.import_module("fd_misc")
    assert misc.later() == "read by a function"
    misc.LOG.close()
    deps = reloader.file_dependencies
    assert deps.reads("fd_misc") == set()
    assert deps.reads("lib") == set()
    assert deps.watched() == frozenset()


def test_the_innermost_executing_module_reads(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    data = write(root, "data.csv", "a,b\n1,2\n")
    write(root, "fd_inner.py", """
        import csv, pathlib
        with open(pathlib.Path(__file__).parent / "data.csv", newline="") as f:
            ROWS = list(csv.reader(f))
    """)
    write(root, "fd_outer.py", """
        import fd_inner
        SIZE = len(fd_inner.ROWS)
    """)
    outer = importlib.import_module("fd_outer")
    deps = reloader.file_dependencies
    assert deps.readers(data) == {"fd_inner"}
    edit_outside(data, "a,b\n1,2\n3,4\n")
    result = reloader.apply([data])
    assert result.outcome is Outcome.APPLIED, result
    assert result.reexecuted == ("fd_inner", "fd_outer")
    assert outer.SIZE == 3


def test_reads_by_other_threads_during_an_import_are_not_its_own(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    other = write(root, "other.json", "{}")
    asked, done = threading.Event(), threading.Event()

    def reader() -> None:  # another thread of the program, busy at run time
        asked.wait(DEADLINE_S)
        other.read_text()
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    write(root, "fd_threads.py", """
        import builtins
        builtins._fd_asked.set()
        assert builtins._fd_done.wait(10), "the reader thread did not run"
    """)
    import builtins

    builtins._fd_asked, builtins._fd_done = asked, done  # type: ignore[attr-defined]
    try:
        importlib.import_module("fd_threads")
    finally:
        del builtins._fd_asked, builtins._fd_done  # type: ignore[attr-defined]
    thread.join(DEADLINE_S)
    assert reloader.file_dependencies.readers(other) == set()


def test_reexecution_records_reads_again(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    first = write(root, "first.json", '"first"')
    second = write(root, "second.json", '"second"')
    source = """
        import json, pathlib
        VALUE = json.loads((pathlib.Path(__file__).parent / "{name}").read_text())
    """
    path = write(root, "fd_switch.py", source.format(name="first.json"))
    module = importlib.import_module("fd_switch")
    deps = reloader.file_dependencies
    assert deps.reads("fd_switch") == {first}
    write(root, "fd_switch.py", source.format(name="second.json"))
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert module.VALUE == "second"
    assert deps.reads("fd_switch") == {second}
    edit_outside(first, '"first, edited"')  # no longer read: nothing to do
    assert reloader.apply([first]).outcome is Outcome.UNCHANGED
    assert module.VALUE == "second"


def test_reads_of_a_batch_that_fails_are_forgotten(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    first = write(root, "first.json", "1")
    write(root, "second.json", "2")
    path = write(root, "fd_fails.py", """
        import pathlib
        HERE = pathlib.Path(__file__).parent
        VALUE = int((HERE / "first.json").read_text())
    """)
    importlib.import_module("fd_fails")
    write(root, "fd_fails.py", """
        import pathlib
        HERE = pathlib.Path(__file__).parent
        VALUE = int((HERE / "second.json").read_text())
        raise RuntimeError("the new version fails")
    """)
    assert reloader.apply([path]).outcome is Outcome.FAILED
    assert reloader.file_dependencies.reads("fd_fails") == {first}
    assert reloader.file_dependencies.watched() == {str(first)}


def test_a_rolled_back_commit_restores_the_dependencies(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    first = write(root, "first.json", "1")
    write(root, "second.json", "2")
    path = write(root, "fd_dispose.py", """
        import hotmod, pathlib
        hot = hotmod.hot(__name__)
        VALUE = int((pathlib.Path(__file__).parent / "first.json").read_text())

        @hot.dispose
        def _fail(data):
            raise RuntimeError("cannot let go")
    """)
    module = importlib.import_module("fd_dispose")
    write(root, "fd_dispose.py", """
        import pathlib
        VALUE = int((pathlib.Path(__file__).parent / "second.json").read_text())
    """)
    result = reloader.apply([path])
    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.phase == "dispose"
    assert module.VALUE == 1
    assert reloader.file_dependencies.reads("fd_dispose") == {first}


def test_a_file_missing_at_import_is_a_dependency(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    local = root / "local.json"
    write(root, "fd_optional.py", """
        import json, pathlib
        try:
            LOCAL = json.loads((pathlib.Path(__file__).parent / "local.json").read_text())
        except FileNotFoundError:
            LOCAL = {}
    """)
    module = importlib.import_module("fd_optional")
    assert module.LOCAL == {}
    edit_outside(local, '{"debug": true}')  # created: a fresh start would read it
    result = reloader.apply([local])
    assert result.outcome is Outcome.APPLIED, result
    assert module.LOCAL == {"debug": True}


def test_files_the_program_writes_stop_being_dependencies(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    state = write(root, "state.json", '{"count": 0}')
    saved = write(root, "saved.json", '{"count": 0}')
    write(root, "fd_state.py", """
        import json, os, pathlib
        HERE = pathlib.Path(__file__).parent
        STATE = json.loads((HERE / "state.json").read_text())
        SAVED = json.loads((HERE / "saved.json").read_text())

        def save():
            (HERE / "state.json").write_text(json.dumps(STATE))  # in place
            (HERE / "saved.tmp").write_text(json.dumps(SAVED))
            os.replace(HERE / "saved.tmp", HERE / "saved.json")  # atomically
    """)
    module = importlib.import_module("fd_state")
    deps = reloader.file_dependencies
    assert deps.reads("fd_state") == {state, saved}
    module.save()
    assert deps.reads("fd_state") == set()
    assert deps.watched() == frozenset()
    result = reloader.apply([state, saved])
    assert result.outcome is Outcome.UNCHANGED


def test_a_file_a_reexecuted_module_writes_is_no_dependency(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    write(root, "cache.json", "0")
    source = """
        import os, pathlib, shutil
        HERE = pathlib.Path(__file__).parent
        RUNS = int((HERE / "cache.json").read_text()) + 1
        (HERE / "cache.json").write_text(str(RUNS))  # a cache it keeps itself
        (HERE / "scratch").mkdir(exist_ok=True)
        shutil.rmtree(HERE / "scratch")  # opens the folder with os.open
        VERSION = {version}
    """
    path = write(root, "fd_cache.py", source.format(version=1))
    module = importlib.import_module("fd_cache")
    deps = reloader.file_dependencies
    assert deps.reads("fd_cache") == set()
    write(root, "fd_cache.py", source.format(version=2))
    assert reloader.apply([path]).outcome is Outcome.APPLIED  # staged: written while staging
    assert module.VERSION == 2
    assert module.RUNS == 2
    assert deps.reads("fd_cache") == set()
    assert deps.watched() == frozenset()


def test_a_declined_reader_needs_a_restart(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    config = write(root, "config.json", '{"greeting": "hello"}')
    write(root, "fd_declined.py", CONF + "    import hotmod\n    hotmod.hot(__name__).decline()\n")
    importlib.import_module("fd_declined")
    edit_outside(config, '{"greeting": "hi"}')
    result = reloader.apply([config])
    assert result.outcome is Outcome.RESTART
    assert "config.json" in str(result.reason)


def test_a_deleted_reader_drops_its_dependencies(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    config = write(root, "config.json", '{"greeting": "hello"}')
    path = write(root, "fd_gone.py", CONF)
    importlib.import_module("fd_gone")
    assert reloader.file_dependencies.readers(config) == {"fd_gone"}
    path.unlink()
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert reloader.file_dependencies.readers(config) == set()
    assert reloader.file_dependencies.watched() == frozenset()




def test_an_edit_before_the_watcher_is_armed_is_applied(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    config = write(root, "config.json", '{"greeting": "hello"}')
    write(root, "fd_early.py", CONF)
    sys.path.insert(0, str(root))
    collect = Collect()
    reloader = Reloader([root], packages=(), reporter=collect)
    reloader.install()
    try:
        module = importlib.import_module("fd_early")
        edit_outside(config, '{"greeting": "early"}')  # saved while the program starts
        reloader.start()
        result = collect.results.get(timeout=DEADLINE_S)
        assert result.outcome is Outcome.APPLIED, result
        assert result.paths == (config,)
        assert module.CONFIG == {"greeting": "early"}
    finally:
        reloader.uninstall()


def test_tracking_stops_with_uninstall(tmp_path: Path) -> None:
    write(tmp_path, "config.json", "{}")
    write(tmp_path, "fd_late.py", CONF)
    sys.path.insert(0, str(tmp_path))
    reloader = Reloader([tmp_path], packages=())
    reloader.install()
    reloader.uninstall()
    assert filedeps._active is None  # the hook stays (it cannot go) and does nothing
    importlib.import_module("fd_late")
    assert reloader.file_dependencies.watched() == frozenset()


def test_importing_hotmod_adds_no_audit_hook() -> None:
    probe = """
        import json, sys
        import hotmod, hotmod.cli
        from hotmod._engine import filedeps
        before = filedeps._hooked
        reloader = hotmod.Reloader(["."], packages=())
        constructed = filedeps._hooked
        reloader.install()
        print(json.dumps([before, constructed, filedeps._hooked]))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True,
        timeout=30, check=True,
    )
    assert json.loads(out.stdout) == [False, False, True]


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


# --------------------------------------------------------------------------------------
# end to end: hotmod run, real files, the fresh-start oracle

APP_CONF = """
    import json
    from pathlib import Path

    HERE = Path(__file__).parent
    CONFIG = json.load(open(HERE / "config.json"))
"""

APP = """
    from conf import CONFIG
    from pathlib import Path

    LIMIT = CONFIG["limit"] * 2
    LOG = Path(__file__).parent / "app.log"


    def greet():
        return CONFIG["greeting"] + " world"


    def probe():
        with open(LOG, "a") as log:  # the program writes a log at run time
            log.write("probed\\n")
        notes = (Path(__file__).parent / "notes.txt").read_text()  # read at run time
        return {"limit": LIMIT, "greet": greet(), "config": CONFIG, "notes": notes}
"""

CONFIG_JSON = '{"greeting": "hello", "limit": 1}\n'
FILES = {"conf.py": APP_CONF, "app.py": APP, "config.json": CONFIG_JSON, "notes.txt": "a"}


def _config(**values: Any) -> str:
    return json.dumps(json.loads(CONFIG_JSON) | values) + "\n"


@pytest.mark.smoke
def test_e2e_config_edit_reexecutes_the_reader_and_its_importer(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program(FILES, debounce_ms=50)  # a save in two writes is one batch
    assert prog.probe()["limit"] == 2
    prog.edit("config.json", _config(greeting="bonjour", limit=5))
    event = prog.reload_and_expect("applied")
    assert {"conf", "app"} <= set(event["reexecuted"]), event
    hot = prog.assert_matches_fresh()
    assert hot["greet"] == "bonjour world"
    assert hot["limit"] == 10


def test_e2e_python_and_config_saved_together_are_one_batch(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program(FILES, debounce_ms=200)
    with prog.together():
        prog.edit("config.json", _config(greeting="hej"))
        prog.edit("app.py", code(APP).replace('" world"', '" verden"'))
    event = prog.reload_and_expect("applied")
    assert {Path(p).name for p in event["paths"]} == {"config.json", "app.py"}, event
    hot = prog.assert_matches_fresh()
    assert hot["greet"] == "hej verden"


def test_e2e_a_syntax_error_holds_back_the_config_too(hot_program: HotProgramFactory) -> None:
    prog = hot_program(FILES, debounce_ms=200)
    before = prog.probe()
    with prog.together():
        prog.edit("config.json", _config(greeting="ciao", limit=7))
        prog.edit("app.py", code(APP).replace("def greet():", "def greet(:"))
    event = prog.reload_and_expect("failed")
    assert {Path(p).name for p in event["paths"]} == {"config.json", "app.py"}, event
    assert prog.probe() == before  # nothing applied, the config neither
    prog.edit("app.py", code(APP).replace('" world"', '" mondo"'))
    event = prog.reload_and_expect("applied")
    assert {Path(p).name for p in event["paths"]} == {"config.json", "app.py"}, event
    hot = prog.assert_matches_fresh()
    assert hot["greet"] == "ciao mondo"
    assert hot["limit"] == 14


def test_e2e_a_log_the_program_writes_triggers_nothing(hot_program: HotProgramFactory) -> None:
    prog = hot_program(FILES, debounce_ms=50)
    for _ in range(20):
        prog.probe()  # each appends to app.log in the project folder
    prog.edit("notes.txt", "b")  # read at run time only: not a dependency
    # A save after those, as a sentinel: once it is applied, the others were seen.
    prog.edit("app.py", code(APP).replace('" world"', '" there"'))
    event = prog.reload_and_expect("applied")
    assert "app.py" in {Path(p).name for p in event["paths"]}, event
    seen = {Path(p).name for e in prog.reload_events() for p in e["paths"]}
    assert seen == {"app.py"}, prog.reload_events()
    assert prog.assert_matches_fresh()["notes"] == "b"


VIEWS = """
    from pathlib import Path

    PAGE = (Path(__file__).parent / "templates" / "page.html").read_text()


    def render(name):
        return PAGE.replace("{{name}}", name)
"""


def test_e2e_template_saved_by_rename_in_a_package(hot_program: HotProgramFactory) -> None:
    prog = hot_program({
        "site_pkg/__init__.py": "",
        "site_pkg/views.py": VIEWS,
        "site_pkg/templates/page.html": "<p>Hello {{name}}</p>\n",
        "app.py": "from site_pkg import views\n\n\ndef probe():\n    return views.render('x')\n",
    })
    assert prog.probe() == "<p>Hello x</p>\n"
    prog.save_by_rename("site_pkg/templates/page.html", "<h1>Hi {{name}}</h1>\n")
    event = prog.reload_and_expect("applied")
    assert event["reexecuted"] == ["site_pkg.views"], event
    assert prog.assert_matches_fresh() == "<h1>Hi x</h1>\n"
