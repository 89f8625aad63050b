"""When the program dies of an uncaught exception, ``hotmod run`` waits for the fix.

Each test runs a real ``hotmod run`` subprocess: the traceback is printed as
python prints it, then ``[hotmod] program exited with an error; waiting for a
change``; the next change of a watched file starts the program again in a fresh
process. ``--exit-on-error`` exits with 1 instead, as python does; a
``SystemExit`` always exits; Ctrl-C while waiting exits as python exits on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from oracle import HotProgramFactory, code, write_files
from test_cli import (
    HOTMOD,
    PYTHON,
    Spawned,
    describe,
    hot_and_plain,
    read_events,
    run,
    wait_for_event,
)

pytestmark = pytest.mark.timeout(90)

WAITING = "[hotmod] program exited with an error; waiting for a change"

# Prints the value it imported, then stays up until stdin says stop (or closes).
MAIN = """
    import sys

    import app

    print("value", app.VALUE, flush=True)
    sys.stdin.readline()
"""

TYPO_AT_IMPORT = """
    VALUE = valeu
"""

FIXED = """
    VALUE = 2
"""


def start(tmp_path: Path, *options: str, target: str = "main.py", **kw: Any) -> Spawned:
    """``hotmod run --json-events events.jsonl [options] target`` in ``tmp_path``."""
    events = tmp_path / "events.jsonl"
    return Spawned([*HOTMOD, "run", "--json-events", str(events), *options, target], tmp_path, **kw)


@pytest.mark.smoke
def test_error_at_start_waits_then_runs_the_fixed_program(tmp_path: Path) -> None:
    write_files(tmp_path, {"main.py": MAIN, "app.py": TYPO_AT_IMPORT})
    plain = run([*PYTHON, "main.py"], tmp_path)
    events = tmp_path / "events.jsonl"
    child = start(tmp_path)
    try:
        exited = wait_for_event(events, "exited")
        assert child.proc.poll() is None, "hotmod exited instead of waiting"
        write_files(tmp_path, {"app.py": FIXED})
        child.wait_line("value 2")  # the program came back, on the fixed source
        restart = wait_for_event(events, "reload")
        started = wait_for_event(events, "started", count=2 if _started_before(events) else 1)
        child.send("stop\n")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()
    assert exited["returncode"] == 1
    assert exited["waiting"] is True
    assert exited["error"]["type"] == "NameError"
    assert exited["error"]["path"] == str(tmp_path.resolve() / "app.py")
    assert exited["error"]["line"] == 1
    assert exited["error"]["traceback"] == plain.stderr
    assert restart["outcome"] == "restart"
    assert restart["paths"] == [str(tmp_path.resolve() / "app.py")]
    assert "app.py changed after the program exited with an error" in restart["reason"]
    assert started["restarts"] == 1
    # python's traceback, exactly; then the waiting line; then the restart
    assert child.stderr.startswith(plain.stderr + WAITING + "\n"), describe(plain)
    assert "[hotmod] restarting: app.py changed" in child.stderr


def _started_before(events: Path) -> bool:
    """Whether the first process armed its watcher (and said so) before it died."""
    kinds = [e["event"] for e in read_events(events)]
    return "started" in kinds[: kinds.index("exited")]


def test_syntax_error_in_the_entry_script_prints_like_python_then_waits(tmp_path: Path) -> None:
    write_files(tmp_path, {"main.py": "print('hello'\n"})
    plain = run([*PYTHON, "main.py"], tmp_path)
    assert plain.returncode == 1
    events = tmp_path / "events.jsonl"
    child = start(tmp_path)
    try:
        exited = wait_for_event(events, "exited")
        assert child.wait_stderr(WAITING) == plain.stderr + WAITING + "\n"
        write_files(tmp_path, {"main.py": "print('hello')\n"})
        child.wait_line("hello")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()
    assert "Traceback" not in child.stderr  # python shows no frames for it, nor do we
    assert exited["error"]["type"] == "SyntaxError"
    assert exited["error"]["message"] == "'(' was never closed"
    assert (exited["error"]["path"], exited["error"]["line"]) == (
        str(tmp_path.resolve() / "main.py"),
        1,
    )


# The probe loop of the oracle, without its safety net: an error in app.probe()
# kills the program.
FRAGILE_MAIN = """
    import json
    import sys

    import app

    PREFIX = "@@hotmod-probe "

    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == "ping":
            print(PREFIX + json.dumps({"ok": "pong"}), flush=True)
        elif line.strip() == "probe":
            print(PREFIX + json.dumps({"ok": app.probe()}), flush=True)
"""

APP = """
    def probe():
        return "first"
"""


def test_error_while_running_waits_then_restarts(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": APP}, main=FRAGILE_MAIN)
    assert prog.probe() == "first"
    prog.edit("app.py", APP.replace('"first"', "frist"))  # a typo, applied as a body patch
    prog.reload_and_expect("applied")
    assert prog.proc is not None
    assert prog.proc.stdin is not None
    prog.proc.stdin.write("probe\n")  # the program dies answering it
    prog.proc.stdin.flush()
    exited = prog.wait_for_event("exited")
    assert exited["error"]["type"] == "NameError"
    assert prog.alive
    prog.edit("app.py", APP.replace('"first"', '"fixed"'))
    prog.reload_and_expect("restart")  # waits for the new process to serve
    assert prog.probe() == prog.fresh_probe() == "fixed"
    stderr = prog.stderr_text()
    assert "NameError: name 'frist' is not defined" in stderr
    assert WAITING in stderr


# --------------------------------------------------------------------------------------
# --exit-on-error, and tracebacks shaped as python's


IN_A_FUNCTION = """
    def main():
        helper()


    def helper():
        raise ValueError(1)


    main()
"""

CHAINED = """
    try:
        import app
    except NameError as e:
        raise RuntimeError("wrapped") from e
"""

PROGRAM_EXCEPTHOOK = """
    import sys


    def hook(kind, value, tb):
        print("HOOK", kind.__name__, tb.tb_frame.f_code.co_filename, file=sys.stderr)


    sys.excepthook = hook
    import app
"""


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"main.py": MAIN, "app.py": TYPO_AT_IMPORT}, id="error-in-import"),
        pytest.param({"main.py": "x = (\n"}, id="syntax-error-in-entry"),
        pytest.param({"main.py": MAIN, "app.py": "def f(:\n    pass\n"}, id="syntax-in-import"),
        pytest.param({"main.py": MAIN, "app.py": "import no_such_module\n"}, id="import-error"),
        pytest.param({"main.py": IN_A_FUNCTION}, id="in-a-function"),
        pytest.param({"main.py": CHAINED, "app.py": TYPO_AT_IMPORT}, id="chained"),
        pytest.param({"main.py": PROGRAM_EXCEPTHOOK, "app.py": TYPO_AT_IMPORT}, id="excepthook"),
    ],
)
def test_exit_on_error_exits_1_with_pythons_output(tmp_path: Path, files: dict[str, str]) -> None:
    write_files(tmp_path, files)
    events = tmp_path / "events.jsonl"
    options = ["--exit-on-error", "--json-events", str(events)]
    hot = run([*HOTMOD, "run", *options, "main.py"], tmp_path)
    plain = run([*PYTHON, "main.py"], tmp_path)
    assert hot.returncode == plain.returncode == 1, describe(hot, plain)
    assert hot.stdout == plain.stdout, describe(hot, plain)
    assert hot.stderr == plain.stderr, describe(hot, plain)
    exited = [e for e in read_events(events) if e["event"] == "exited"]
    assert len(exited) == 1, read_events(events)
    assert exited[0]["waiting"] is False
    assert exited[0]["returncode"] == 1


def test_error_in_the_package_of_dash_m_waits_too(tmp_path: Path) -> None:
    write_files(tmp_path, {"pkg/__init__.py": TYPO_AT_IMPORT, "pkg/main.py": MAIN, "app.py": FIXED})
    plain = run([*PYTHON, "-m", "pkg.main"], tmp_path)
    events = tmp_path / "events.jsonl"
    child = start(tmp_path, "-m", target="pkg.main")
    try:
        wait_for_event(events, "exited")
        stderr = child.wait_stderr(WAITING)
        last = plain.stderr.strip().splitlines()[-1]
        assert stderr.endswith(f"{last}\n{WAITING}\n")
        assert "hotmod" not in stderr.replace(WAITING, "")  # no frame of ours
        write_files(tmp_path, {"pkg/__init__.py": ""})
        child.wait_line("value 2")
        child.send("stop\n")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("import sys\nsys.exit(3)\n", id="sys.exit(3)"),
        pytest.param("raise SystemExit('fatal: bad config')\n", id="SystemExit(str)"),
    ],
)
def test_system_exit_is_a_deliberate_exit(tmp_path: Path, body: str) -> None:
    write_files(tmp_path, {"main.py": body})
    hot, plain = hot_and_plain(tmp_path, ["main.py"])  # no --exit-on-error
    assert hot.returncode == plain.returncode != 0, describe(hot, plain)
    assert hot.stderr == plain.stderr, describe(hot, plain)


# --------------------------------------------------------------------------------------
# Ctrl-C while waiting


@pytest.mark.parametrize(
    "prelude",
    [
        pytest.param("", id="python-handlers"),
        # the program's own SIGINT handler must not keep a dead program's hotmod alive
        pytest.param(
            "import signal\n\nsignal.signal(signal.SIGINT, lambda *_: None)\n", id="program-handler"
        ),
    ],
)
def test_ctrl_c_while_waiting_exits_like_python(tmp_path: Path, prelude: str) -> None:
    write_files(tmp_path, {"main.py": prelude + code(MAIN), "app.py": TYPO_AT_IMPORT})
    events = tmp_path / "events.jsonl"
    # No stdin at all (as in CI): still waits.
    child = start(tmp_path, stdin=subprocess.DEVNULL)
    try:
        wait_for_event(events, "exited")
        assert child.proc.poll() is None, "hotmod exited instead of waiting"
        child.proc.send_signal(signal.SIGINT)
        rc = child.finish()
    finally:
        child.kill()
    assert rc == -signal.SIGINT, child.stderr  # killed by SIGINT: shells report 130
