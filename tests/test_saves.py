"""How files reach the disk: saves by rename, ``sed -i``, bursts, same-size edits,
created/deleted/renamed modules, import cycles, and churn that must be ignored (DESIGN §7).
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from oracle import HotProgramFactory, code, wait_until

pytestmark = pytest.mark.timeout(120)

LIB = """
    def f():
        return 1


    def g():
        return "g-1"
"""

APP = """
    import lib
    from lib import f


    def probe():
        return {"f": f(), "g": lib.g()}
"""


@pytest.mark.smoke
def test_save_by_rename(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB, "app.py": APP})
    prog.save_by_rename("lib.py", code(LIB).replace("return 1", "return 2"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["f"] == 2
    # twice in a row: the watch must survive the file being replaced
    prog.save_by_rename("lib.py", code(LIB).replace("return 1", "return 3"))
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh()["f"] == 3


@pytest.mark.skipif(shutil.which("sed") is None, reason="needs sed")
def test_sed_in_place(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB, "app.py": APP})
    prog.sed("lib.py", "s/g-1/g-2/")
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh()["g"] == "g-2"
    prog.sed("lib.py", "s/return 1/return 11/")
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh()["f"] == 11


def test_burst_of_saves_ends_consistent(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB, "app.py": APP})
    prog.mark()
    started = time.monotonic()
    for i in range(10):
        (prog.path("lib.py")).write_text(code(LIB).replace("return 1", f"return {100 + i}"))
        time.sleep(0.008)  # the workload: ten saves spread over ~100 ms
    assert time.monotonic() - started < 0.5
    prog.wait_for_reload()  # at least one batch happened

    def consistent() -> bool:
        return bool(prog.probe() == {"f": 109, "g": "g-1"})

    wait_until(consistent, timeout=15, message=lambda: prog.describe())
    assert prog.probe() == prog.fresh_probe()
    last = prog.reload_events()[-1]
    prog.expect(last, "applied", "unchanged")


def test_created_deleted_renamed_modules(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB, "app.py": APP}, debounce_ms=200)
    # the importer first (fails: no such module), then the module is created
    prog.edit(
        "app.py",
        code(APP) + "\n\nimport plugin\n\n\ndef probe():\n    return {'p': plugin.P, 'f': f()}\n",
    )
    prog.reload_and_expect("failed")
    prog.edit("plugin.py", "P = 'plugin-1'\n")
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh(what="created") == {"p": "plugin-1", "f": 1}
    # renamed (and the importer follows, in the same save)
    with prog.together():
        os.rename(prog.path("plugin.py"), prog.path("plugin2.py"))
        prog.edit("app.py", prog.read("app.py").replace("plugin", "plugin2"))
    event = prog.reload_and_expect("applied")
    assert "plugin" in event.get("removed", []), event
    assert prog.assert_matches_fresh(what="renamed") == {"p": "plugin-1", "f": 1}
    # deleted (the importer no longer needs it)
    with prog.together():
        prog.edit("app.py", APP)
        prog.path("plugin2.py").unlink()
    event = prog.reload_and_expect("applied")
    assert "plugin2" in event.get("removed", []), event
    prog.assert_matches_fresh(what="deleted")


def test_circular_imports_edit(hot_program: HotProgramFactory) -> None:
    a = """
        import b

        A = "a-1"


        def fa():
            return "fa:" + b.B
    """
    b = """
        import a

        B = "b-1"


        def fb():
            return "fb:" + a.A
    """
    app = """
        import a
        import b
        from a import fa


        def probe():
            return {"fa": fa(), "fb": b.fb(), "A": a.A, "B": b.B}
    """
    prog = hot_program({"a.py": a, "b.py": b, "app.py": app})
    prog.replace("a.py", '"fa:"', '"FA:"')
    prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="body edit inside a cycle")
    prog.replace("a.py", 'A = "a-1"', 'A = "a-2"')
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh(what="constant inside a cycle")["fb"] == "fb:a-2"
    prog.replace("b.py", 'B = "b-1"', 'B = "b-2"')
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh(what="the other side")["fa"] == "FA:b-2"


def test_same_size_edits_within_the_same_second(hot_program: HotProgramFactory) -> None:
    """Bytecode caches are never trusted: a same-size, same-mtime edit still applies."""
    prog = hot_program({"lib.py": LIB, "app.py": APP})
    path = prog.path("lib.py")
    for i in range(2, 8):
        stat = path.stat()
        new = code(LIB).replace("return 1", f"return {i}")
        assert len(new) == stat.st_size
        prog.edit("lib.py", new)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same mtime as before
        prog.reload_and_expect("applied")
        assert prog.assert_matches_fresh(what=f"same-size edit {i}")["f"] == i


def test_same_size_edit_then_restart_uses_new_source(hot_program: HotProgramFactory) -> None:
    """After a restart the new process must not import a stale ``.pyc`` either."""
    main = """
        import json
        import sys

        import app

        PREFIX = "@@hotmod-probe "
        TOP = 1

        while True:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "ping":
                print(PREFIX + json.dumps({"ok": "pong"}), flush=True)
            if line.strip() == "probe":
                print(PREFIX + json.dumps({"ok": [app.probe(), TOP]}), flush=True)
    """
    prog = hot_program({"lib.py": LIB, "app.py": APP, "main.py": main}, main=None)
    path = prog.path("lib.py")
    stat = path.stat()
    prog.edit("lib.py", code(LIB).replace("return 1", "return 7"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh(what="same-size edit")[0]["f"] == 7
    prog.replace("main.py", "TOP = 1", "TOP = 2")
    prog.reload_and_expect("restart")
    hot = prog.assert_matches_fresh(what="after the restart")
    assert hot == [{"f": 7, "g": "g-1"}, 2]


def test_churning_log_file_triggers_no_reload(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB, "app.py": APP})
    prog.mark()
    before = len(prog.reload_events())
    stop = threading.Event()
    writes = [0]

    def churn() -> None:
        log = prog.path("app.log")
        data = prog.path("data.json")
        while not stop.is_set():
            log.write_text(f"line {writes[0]}\n")
            data.write_text(f'{{"n": {writes[0]}}}')
            writes[0] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # the observation window; the program keeps serving
            assert prog.probe() == {"f": 1, "g": "g-1"}
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert writes[0] > 100
    reloads = prog.reload_events()[before:]
    if reloads:
        raise prog.fail(f"non-Python churn produced reload events: {reloads[:3]}")
    # and a real edit still goes through
    prog.replace("lib.py", "return 1", "return 5")
    prog.reload_and_expect("applied")
    assert prog.assert_matches_fresh()["f"] == 5
