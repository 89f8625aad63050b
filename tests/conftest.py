"""Shared fixtures: interpreter state restored around every test; real hot programs."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from hotmod import Reloader
from oracle import DEFAULT_MAIN, HotProgram, HotProgramFactory, write_files

_PROGRAMS = pytest.StashKey[list[HotProgram]]()


def pytest_configure(config: pytest.Config) -> None:
    # Also declared here so the suite runs under --strict-markers before pyproject has it.
    config.addinivalue_line("markers", "smoke: quick representative tests (run on every Python)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # ``slow`` tests are deselected unless asked for (``-m slow``).
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # A failing test shows what its hot programs printed and reported.
    if report.failed:
        for prog in item.stash.get(_PROGRAMS, []):
            report.sections.append((f"hotmod program {prog.name}", prog.describe()))
    return report


@pytest.fixture(autouse=True)
def _restore_interpreter_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever an in-process test changes in the interpreter is put back."""
    path = list(sys.path)
    meta_path = list(sys.meta_path)
    path_hooks = list(sys.path_hooks)
    modules = dict(sys.modules)
    cwd = os.getcwd()
    environ = dict(os.environ)
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        sys.meta_path[:] = meta_path
        sys.path_hooks[:] = path_hooks
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]
        sys.modules.update(modules)
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)


@pytest.fixture
def hot_program(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HotProgramFactory]:
    """Factory: write a project, start it under ``hotmod run``; stopped at teardown.

    ``files`` maps relative paths to sources (dedented); ``main.py`` defaults to
    :data:`DEFAULT_MAIN` (pass ``main=None`` to write none).
    """
    programs: list[HotProgram] = []
    request.node.stash[_PROGRAMS] = programs

    def factory(
        files: Mapping[str, str],
        *,
        entry: Sequence[str] = ("main.py",),
        hotmod_args: Sequence[str] = (),
        debounce_ms: int | None = None,
        main: str | None = DEFAULT_MAIN,
        start: bool = True,
    ) -> HotProgram:
        n = len(programs)
        root = tmp_path / f"project{n}"
        root.mkdir()
        all_files = dict(files)
        if main is not None:
            all_files.setdefault("main.py", main)
        write_files(root, all_files)
        prog = HotProgram(
            root,
            scratch=tmp_path / f"scratch{n}",
            entry=entry,
            hotmod_args=hotmod_args,
            debounce_ms=debounce_ms,
            name=f"program{n}",
        )
        programs.append(prog)
        if start:
            prog.start()
        return prog

    try:
        yield factory
    finally:
        errors: list[BaseException] = []
        for prog in reversed(programs):
            try:
                prog.stop()
            except BaseException as exc:  # stop every child, report the first error
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Reloader]]:
    """A project folder on ``sys.path`` with a reloader installed over it (in-process)."""
    root = tmp_path / "proj"
    root.mkdir()
    sys.path.insert(0, str(root))
    reloader = Reloader([root], packages=())
    reloader.install()
    try:
        yield root, reloader
    finally:
        reloader.uninstall()
