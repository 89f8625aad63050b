"""End to end: ``hotmod run`` behaves like ``python`` for the program it runs.

``sys.argv``, ``__name__``, ``-m``, exit codes, Ctrl-C and non-daemon threads are
compared with a plain ``python`` run of the same program; ``hotmod graph`` and the
command line's own errors are checked on their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from oracle import START_TIMEOUT, OracleError, code, wait_until, write_files

pytestmark = pytest.mark.timeout(90)

HOTMOD = [sys.executable, "-m", "hotmod"]
PYTHON = [sys.executable]


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.pop("PYTHONPATH", None)
    out["PYTHONDONTWRITEBYTECODE"] = "1"
    return out


def run(
    argv: Sequence[str], cwd: Path, *, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        check=False,
    )


def hot_and_plain(
    cwd: Path, target: Sequence[str], *, stdin: str = ""
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same program under ``hotmod run`` and under plain ``python``."""
    hot = run([*HOTMOD, "run", *target], cwd, stdin=stdin)
    plain = run([*PYTHON, *target], cwd, stdin=stdin)
    return hot, plain


def describe(*results: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(
        f"$ {r.args}\nrc={r.returncode}\n--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"
        for r in results
    )


class Spawned:
    """A child with stdout read line by line into a queue (every wait has a deadline)."""

    def __init__(self, argv: Sequence[str], cwd: Path, *, stdin: int = subprocess.PIPE) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr = ""
        self._stderr_parts: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr_parts.append(line)

    def wait_line(self, expected: str, *, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                # Gone, and every line it wrote is queued (its stdout pump read EOF).
                ended = self.proc.poll() is not None and not self._pumps[0].is_alive()
                if time.monotonic() > deadline or ended:
                    raise OracleError(
                        f"{self.argv}: no line {expected!r} (seen {self.seen}, "
                        f"rc={self.proc.poll()})"
                    ) from None
                continue
            self.seen.append(line)
            if line == expected:
                return

    def stderr_so_far(self) -> str:
        return "".join(self._stderr_parts)

    def wait_stderr(self, expected: str, *, timeout: float = START_TIMEOUT) -> str:
        """Wait until stderr holds ``expected``; all of stderr so far."""
        wait_until(
            lambda: expected in self.stderr_so_far(),
            timeout=timeout,
            message=lambda: f"{self.argv}: no {expected!r} on stderr: {self.stderr_so_far()!r}",
        )
        return self.stderr_so_far()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self, *, timeout: float = 20) -> int:
        """Wait for the exit (killing it past the deadline); collect what is left."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
            raise OracleError(f"{self.argv} did not exit within {timeout}s") from None
        for pump in self._pumps:
            pump.join(timeout=timeout)
        self.stderr = "".join(self._stderr_parts)
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a ``--json-events`` file so far."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def wait_for_event(path: Path, kind: str, *, count: int = 1) -> dict[str, Any]:
    """The ``count``-th event of ``kind`` in ``path`` (waited for, with a deadline)."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [e for e in read_events(path) if e.get("event") == kind]
        return len(found) >= count

    wait_until(seen, timeout=START_TIMEOUT, message=lambda: f"no {kind!r} #{count} in {path}: "
               f"{read_events(path)}")
    return found[count - 1]


# --------------------------------------------------------------------------------------
# sys.argv, __name__, -m


SCRIPT_INFO = '''
    """The script's docstring."""
    import json
    import os
    import pickle
    import sys


    class Thing:
        pass


    print(
        json.dumps(
            {
                "argv": sys.argv,
                "name": __name__,
                "file": __file__,
                "path0": sys.path[0],
                "spec-is-none": __spec__ is None,
                "doc": __doc__,
                "main-is-me": sys.modules["__main__"].__dict__ is globals(),
                "pickle": type(pickle.loads(pickle.dumps(Thing()))).__name__,
                "cwd": os.getcwd(),
            }
        )
    )
'''


@pytest.mark.smoke
def test_argv_and_name_as_under_python(tmp_path: Path) -> None:
    write_files(tmp_path, {"main.py": SCRIPT_INFO})
    hot, plain = hot_and_plain(tmp_path, ["main.py", "a", "--flag", "-x", "b c"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert json.loads(hot.stdout) == json.loads(plain.stdout), describe(hot, plain)
    assert json.loads(hot.stdout)["argv"] == ["main.py", "a", "--flag", "-x", "b c"]


def test_script_in_subfolder(tmp_path: Path) -> None:
    write_files(tmp_path, {"sub/main.py": SCRIPT_INFO})
    hot, plain = hot_and_plain(tmp_path, ["sub/main.py", "arg"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert json.loads(hot.stdout) == json.loads(plain.stdout), describe(hot, plain)


def test_dash_m_package_module(tmp_path: Path) -> None:
    mod = """
        import json
        import sys

        print(
            json.dumps(
                {
                    "argv": sys.argv,
                    "name": __name__,
                    "package": __package__,
                    "spec": __spec__.name,
                    "file": __file__,
                    "path0": sys.path[0],
                    "main-is-me": sys.modules["__main__"].__dict__ is globals(),
                    "relative": helper.VALUE,
                }
            )
        )
    """
    write_files(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/helper.py": "VALUE = 'helper'\n",
            "pkg/mod.py": "from . import helper\n" + code(mod),
        },
    )
    hot, plain = hot_and_plain(tmp_path, ["-m", "pkg.mod", "x", "--y"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert json.loads(hot.stdout) == json.loads(plain.stdout), describe(hot, plain)


def test_source_encoding_declaration_honoured(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\nprint(ascii('caf\u00e9'))\n"
    (tmp_path / "main.py").write_bytes(source.encode("latin-1"))
    hot, plain = hot_and_plain(tmp_path, ["main.py"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert hot.stdout == plain.stdout == "'caf\\xe9'\n", describe(hot, plain)


# --------------------------------------------------------------------------------------
# exit codes


@pytest.mark.parametrize(
    ("body", "expected_rc"),
    [
        pytest.param("import sys\nsys.exit(3)\n", 3, id="sys.exit(3)"),
        pytest.param("print('done')\n", 0, id="normal"),
        pytest.param("raise SystemExit('fatal: bad config')\n", 1, id="SystemExit(str)"),
        pytest.param("def f():\n    raise ValueError('bad')\n\n\nf()\n", 1, id="uncaught"),
    ],
)
def test_exit_code_propagated(tmp_path: Path, body: str, expected_rc: int) -> None:
    write_files(tmp_path, {"main.py": body})
    # (without --exit-on-error, an uncaught exception waits for a change: test_runner_crash)
    hot = run([*HOTMOD, "run", "--exit-on-error", "main.py"], tmp_path)
    plain = run([*PYTHON, "main.py"], tmp_path)
    assert hot.returncode == plain.returncode == expected_rc, describe(hot, plain)
    assert hot.stdout == plain.stdout, describe(hot, plain)
    # the program's own error output is there (a traceback's last line, the message)
    last = plain.stderr.strip().splitlines()[-1] if plain.stderr.strip() else ""
    assert last in hot.stderr, describe(hot, plain)


# --------------------------------------------------------------------------------------
# Ctrl-C and threads

WAIT_FOR_CTRL_C = """
    import time

    print("ready", flush=True)
    while True:
        time.sleep(0.01)
"""

CATCH_CTRL_C = """
    import sys
    import time

    try:
        # "ready" inside the try: a SIGINT sent as soon as it is read must land
        # in the handler, not in print() still returning outside the try.
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    except KeyboardInterrupt:
        print("bye", flush=True)
        sys.exit(0)
"""


def interrupt(argv: Sequence[str], cwd: Path) -> tuple[int, list[str], str]:
    child = Spawned(argv, cwd)
    try:
        child.wait_line("ready")
        child.proc.send_signal(signal.SIGINT)
        rc = child.finish()
        return rc, child.seen, child.stderr
    finally:
        child.kill()


@pytest.mark.parametrize("program", [WAIT_FOR_CTRL_C, CATCH_CTRL_C], ids=["uncaught", "caught"])
def test_ctrl_c_like_python(tmp_path: Path, program: str) -> None:
    write_files(tmp_path, {"main.py": program})
    plain = interrupt([*PYTHON, "main.py"], tmp_path)
    hot = interrupt([*HOTMOD, "run", "main.py"], tmp_path)
    assert hot[0] == plain[0], f"exit code: hot {hot} vs python {plain}"
    assert hot[1] == plain[1], f"stdout: hot {hot} vs python {plain}"
    assert ("KeyboardInterrupt" in hot[2]) == ("KeyboardInterrupt" in plain[2]), (hot, plain)


def test_non_daemon_thread_keeps_program_alive(tmp_path: Path) -> None:
    program = """
        import sys
        import threading


        def worker():
            sys.stdin.readline()  # until the test says stop
            print("thread done", flush=True)


        threading.Thread(target=worker).start()
        print("main done", flush=True)
    """
    write_files(tmp_path, {"main.py": program})
    child = Spawned([*HOTMOD, "run", "main.py"], tmp_path)
    try:
        child.wait_line("main done")
        # the main code has returned; the process lives while the thread does
        observe_until = time.monotonic() + 0.5
        while time.monotonic() < observe_until:
            assert child.proc.poll() is None, f"exited with the thread still running: {child.seen}"
            time.sleep(0.02)
        assert child.proc.stdin is not None
        child.proc.stdin.write("stop\n")
        child.proc.stdin.flush()
        child.wait_line("thread done")
        rc = child.finish()
        assert rc == 0, child.stderr
    finally:
        child.kill()


# --------------------------------------------------------------------------------------
# hotmod graph, help, usage errors

GRAPH_PROJECT = {
    "main.py": "import app\n\napp.run()\n",
    "app.py": "import lib\nfrom util import helper\n\n\ndef run():\n    return lib.f()\n",
    "lib.py": "import util\n\n\ndef f():\n    return util.helper()\n",
    "util.py": "def helper():\n    return 1\n",
}


def test_graph_prints_edges(tmp_path: Path) -> None:
    write_files(tmp_path, GRAPH_PROJECT)
    result = run([*HOTMOD, "graph", "main.py"], tmp_path)
    assert result.returncode == 0, describe(result)
    # one line per module, then its imports indented as "-> name"
    edges: set[tuple[str, str]] = set()
    current = ""
    for line in result.stdout.splitlines():
        if line.strip().startswith("->"):
            edges.add((current, line.strip()[2:].strip()))
        elif line.strip():
            current = line.split()[0]
    expected = {("__main__", "app"), ("app", "lib"), ("app", "util"), ("lib", "util")}
    assert expected <= edges, describe(result)


def test_graph_json_parses(tmp_path: Path) -> None:
    write_files(tmp_path, GRAPH_PROJECT)
    result = run([*HOTMOD, "graph", "--json", "main.py"], tmp_path)
    assert result.returncode == 0, describe(result)
    data: Any = json.loads(result.stdout)
    modules = data["modules"]
    assert sorted(modules["app"]["imports"]) == ["lib", "util"], data
    assert modules["lib"]["imports"] == ["util"], data
    assert modules["util"]["imports"] == [], data
    assert modules["__main__"]["path"] == str(tmp_path.resolve() / "main.py"), data


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_graph_reports_a_file_that_does_not_parse(tmp_path: Path, as_json: bool) -> None:
    write_files(tmp_path, {"main.py": "import app\n", "app.py": "import lib\n\nx = (\n"})
    result = run([*HOTMOD, "graph", *(["--json"] if as_json else []), "main.py"], tmp_path)
    assert result.returncode == 1, describe(result)
    where = f"{tmp_path.resolve() / 'app.py'}:3: SyntaxError: '(' was never closed"
    assert result.stderr == f"hotmod: {where}\n", describe(result)
    if as_json:  # what could be read is still there, the error with its module
        modules = json.loads(result.stdout)["modules"]
        assert modules["__main__"]["imports"] == ["app"]
        assert modules["app"]["error"] == where
    else:
        assert "-> app" in result.stdout, describe(result)


def test_help(tmp_path: Path) -> None:
    result = run([*HOTMOD, "--help"], tmp_path)
    assert result.returncode == 0, describe(result)
    assert "run" in result.stdout
    assert "graph" in result.stdout
    result = run([*HOTMOD, "run", "--help"], tmp_path)
    assert result.returncode == 0, describe(result)
    for option in ("--watch", "--json-events", "--debounce-ms", "--strict", "--exit-on-error"):
        assert option in result.stdout, describe(result)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--bogus"], id="unknown-option"),
        pytest.param(["bogus-command"], id="unknown-command"),
        pytest.param(["run", "--bogus", "main.py"], id="unknown-run-option"),
        pytest.param(["run", "--debounce-ms", "soon", "main.py"], id="bad-value"),
        pytest.param(["run"], id="no-target"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    write_files(tmp_path, {"main.py": "print('should not run')\n"})
    result = run([*HOTMOD, *argv], tmp_path)
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error:\n{describe(result)}"
    assert "should not run" not in result.stdout


@pytest.mark.parametrize(
    "events",
    [
        pytest.param("adir", id="a-directory"),
        pytest.param("no/such/dir/ev.jsonl", id="missing-folder"),
    ],
)
def test_unwritable_json_events_is_a_usage_error(tmp_path: Path, events: str) -> None:
    write_files(tmp_path, {"main.py": "print('should not run')\n"})
    (tmp_path / "adir").mkdir()
    result = run([*HOTMOD, "run", "--json-events", events, "main.py"], tmp_path)
    assert result.returncode == 2, describe(result)
    assert result.stdout == "", describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("hotmod: error: cannot write --json-events file"), describe(result)
    assert events in lines[0], describe(result)


def same_message(hot: str, plain: str, marker: str) -> bool:
    """Both one line, saying the same from ``marker`` on (python starts with its own path)."""
    return (
        len(hot.splitlines()) == len(plain.splitlines()) == 1
        and marker in plain
        and hot.startswith("hotmod: error: ")
        and hot[hot.index(marker) :] == plain[plain.index(marker) :]
    )


@pytest.mark.parametrize("script", ["missing.py", "missing/main.py"])
def test_missing_script_like_python(tmp_path: Path, script: str) -> None:
    hot, plain = hot_and_plain(tmp_path, [script])
    assert hot.returncode == plain.returncode == 2, describe(hot, plain)
    assert "Traceback" not in hot.stderr, describe(hot)
    assert same_message(hot.stderr, plain.stderr, "can't open file"), describe(hot, plain)
    assert "[Errno 2] No such file or directory" in hot.stderr, describe(hot)


def test_folder_without_main_like_python(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    hot, plain = hot_and_plain(tmp_path, ["app"])
    assert hot.returncode == plain.returncode, describe(hot, plain)
    assert same_message(hot.stderr, plain.stderr, "can't find '__main__' module"), describe(
        hot, plain
    )


MAIN_ATTRIBUTES = """
    import importlib.machinery
    import json
    import sys

    print(
        json.dumps(
            {
                "argv": sys.argv,
                "path0": sys.path[0],
                "file": __file__,
                "globals": sorted(globals()),
                "package": __package__,
                "spec": None if __spec__ is None else __spec__.name,
                "cached": __cached__,
                "annotations": __annotations__,
                "loader": isinstance(__loader__, importlib.machinery.SourceFileLoader),
                "source": __loader__.get_source(__spec__.name if __spec__ else "__main__") != "",
            }
        )
    )
"""


@pytest.mark.parametrize(
    ("files", "target"),
    [
        pytest.param({"main.py": MAIN_ATTRIBUTES}, ["main.py", "x"], id="script"),
        pytest.param({"app/__main__.py": MAIN_ATTRIBUTES}, ["app", "x"], id="folder"),
        pytest.param(
            {"pkg/__init__.py": "", "pkg/__main__.py": MAIN_ATTRIBUTES}, ["-m", "pkg", "x"], id="-m"
        ),
    ],
)
def test_main_module_as_under_python(
    tmp_path: Path, files: dict[str, str], target: list[str]
) -> None:
    write_files(tmp_path, files)
    hot, plain = hot_and_plain(tmp_path, target)
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert json.loads(hot.stdout) == json.loads(plain.stdout), describe(hot, plain)


def test_program_args_after_script_are_not_hotmod_options(tmp_path: Path) -> None:
    write_files(tmp_path, {"main.py": "import sys\nprint(sys.argv[1:])\n"})
    hot, plain = hot_and_plain(tmp_path, ["main.py", "--strict", "--help", "-v"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert hot.stdout == plain.stdout, describe(hot, plain)


def test_wait_until_reports_its_message() -> None:
    with pytest.raises(OracleError, match="never true"):
        wait_until(lambda: False, timeout=0.05, message="never true")


# --------------------------------------------------------------------------------------
# logging: the root logger is the program's


def test_program_logging_config_is_its_own(tmp_path: Path) -> None:
    program = """
        import logging

        logging.basicConfig(format="app %(levelname)s %(name)s: %(message)s")
        logging.warning("hello")
        logging.getLogger("app.db").warning("connected")
        root = logging.getLogger()
        print(len(root.handlers), logging.getLevelName(root.level))
    """
    write_files(tmp_path, {"main.py": program})
    hot, plain = hot_and_plain(tmp_path, ["main.py"])
    assert hot.returncode == plain.returncode == 0, describe(hot, plain)
    assert hot.stdout == plain.stdout, describe(hot, plain)
    assert hot.stderr == plain.stderr == "app WARNING root: hello\napp WARNING app.db: connected\n"


def test_verbose_logs_hotmod_debug_lines_apart_from_the_program(tmp_path: Path) -> None:
    program = """
        import logging
        import sys

        logging.warning("from the program")
        sys.stdin.readline()  # until hotmod has armed its watcher (the "started" event)
    """
    write_files(tmp_path, {"main.py": program})
    events = tmp_path / "events.jsonl"
    child = Spawned([*HOTMOD, "run", "-v", "--json-events", str(events), "main.py"], tmp_path)
    try:
        wait_for_event(events, "started")
        child.send("\n")
        assert child.finish() == 0, child.stderr
    finally:
        child.kill()
    lines = child.stderr.splitlines()
    assert "WARNING:root:from the program" in lines, child.stderr  # python's default format
    assert any(line.startswith("[hotmod] DEBUG hotmod.") for line in lines), child.stderr
    assert not any(line.startswith("[hotmod] WARNING root") for line in lines), child.stderr
