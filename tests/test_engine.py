"""The engine in-process, driven through ``Reloader.apply`` (no threads, no sleeps)."""

from __future__ import annotations

import builtins
import contextlib
import dis
import gc
import importlib
import importlib.util
import io
import json
import os
import queue
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

import hotmod
from hotmod import Outcome, Reloader, ReloadResult, TerminalReporter, UsageError, _compat
from hotmod._hot import current
from inprocess import Collect, write


def test_public_surface_is_complete() -> None:
    # Public submodules (imported by other tests, e.g. the docs' gate example) are no names.
    public = {n for n in dir(hotmod) if not n.startswith("_")} - {"cli", "wsgi", "asgi"}
    assert sorted(hotmod.__all__) == hotmod.__all__
    assert set(hotmod.__all__) - {"__version__"} == public


def test_importing_hotmod_changes_nothing() -> None:
    probe = """
        import builtins, json, signal, sys, threading
        def state():
            return [repr(sys.meta_path), repr(sys.path_hooks), repr(builtins.__import__),
                    threading.active_count(), repr(signal.getsignal(signal.SIGINT)),
                    repr(sys.gettrace()), repr(sys.getprofile())]
        before = state()
        import hotmod, hotmod.cli
        print(json.dumps([before, state()]))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True,
        timeout=30, check=True,
    )
    before, after = json.loads(out.stdout)
    assert before == after


def test_install_and_uninstall_restore_the_interpreter(tmp_path: Path) -> None:
    write(tmp_path, "plainmod.py", "X = 1\n")
    sys.path.insert(0, str(tmp_path))
    meta_path, path_hooks, importer = list(sys.meta_path), list(sys.path_hooks), builtins.__import__
    reloader = Reloader([tmp_path])
    reloader.install()
    assert len(sys.meta_path) == len(meta_path) + 1
    importlib.import_module("plainmod")
    assert current() is not None
    reloader.uninstall()
    assert sys.meta_path == meta_path
    assert sys.path_hooks == path_hooks
    assert builtins.__import__ is importer
    assert current() is None
    with Reloader([tmp_path]) as again:  # a second reloader can take over
        assert current() is not None
        assert again.graph.records  # it adopted the module imported before it
    assert current() is None


def test_one_reloader_at_a_time(tmp_path: Path) -> None:
    with Reloader([tmp_path]), pytest.raises(UsageError, match="already installed"):
        Reloader([tmp_path]).install()


def test_apply_needs_install(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="install"):
        Reloader([tmp_path]).apply([tmp_path / "x.py"])


def test_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        Reloader([tmp_path / "nope"])


def test_hot_api_is_inert_without_a_reloader() -> None:
    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    assert hotmod.keep("x", factory) is made[0]
    assert hotmod.keep("x", factory) is made[1]  # no reloader: just the factory
    handle = hotmod.hot("somewhere")
    assert not handle.live
    ran: list[object] = []
    handle.dispose(ran.append)
    handle.accept()
    handle.decline()
    assert ran == []


@pytest.mark.smoke
def test_body_edit_patches_in_place(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    path = write(root, "m1.py", """
        def f():
            return 1
        TABLE = {}
    """)
    m1 = importlib.import_module("m1")
    f = m1.f
    m1.TABLE["k"] = "filled at run time"
    write(root, "m1.py", "def f():\n    return 2\nTABLE = {}\n")
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED, result
    assert result.patched == ("m1",)
    assert result.reexecuted == ()
    assert f is m1.f
    assert f() == 2
    assert m1.TABLE == {"k": "filled at run time"}


def test_edits_never_scan_the_heap(
    project: tuple[Path, Reloader], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, reloader = project
    path = write(root, "m2.py", "C = 1\ndef f():\n    return C\n")
    m2 = importlib.import_module("m2")

    def forbidden(*args: object) -> list[object]:
        raise AssertionError("a reload walked the whole heap")

    for name in ("get_referrers", "get_referents", "get_objects"):
        monkeypatch.setattr(gc, name, forbidden)
    write(root, "m2.py", "C = 1\ndef f():\n    return C + 1\n")
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    write(root, "m2.py", "C = 5\ndef f():\n    return C + 1\n")
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED
    assert result.reexecuted == ("m2",)
    assert m2.f() == 6


def test_keep_survives_reexecution_and_is_remade_when_its_factory_changes(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    source = """
        import hotmod
        hot = hotmod.hot(__name__)
        CONN = hotmod.keep("conn", lambda: {"opened": 1})
        VERSION = 1
        hot.data.setdefault("versions", []).append(VERSION)

        @hot.dispose
        def _close(data):
            data.setdefault("disposed", []).append(VERSION)
    """
    path = write(root, "m3.py", source)
    m3 = importlib.import_module("m3")
    conn = m3.CONN
    write(root, "m3.py", source.replace("VERSION = 1", "VERSION = 2"))
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert m3.CONN is conn
    assert m3.hot.data == {"versions": [1, 2], "disposed": [1]}
    write(root, "m3.py", source.replace('{"opened": 1}', '{"opened": 2}'))
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert m3.CONN == {"opened": 2}


def test_failed_batch_is_rolled_back_and_stays_pending(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    a = write(root, "pa.py", "X = 1\ndef f():\n    return X\n")
    b = write(root, "pb.py", "import pa\nY = pa.X + 1\n")
    pa, pb = importlib.import_module("pa"), importlib.import_module("pb")
    f, code = pa.f, pa.f.__code__
    write(root, "pa.py", "X = 10\ndef f():\n    return X * 2\n")
    write(root, "pb.py", "import pa\nY = pa.X + 1\nraise RuntimeError('at import')\n")
    result = reloader.apply([a, b])
    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.path == b
    assert result.error.lineno == 3
    assert "RuntimeError: at import" in (result.traceback or "")
    assert (pa.X, pb.Y, pa.f.__code__) == (1, 2, code)  # nothing of the batch is live
    write(root, "pb.py", "import pa\nY = pa.X + 1\n")
    result = reloader.apply([b])  # only the fix is new: the pending pa.py comes along
    assert result.outcome is Outcome.APPLIED, result
    assert a in result.paths
    assert (pa.X, pb.Y, pa.f is f, f()) == (10, 11, True, 20)


def test_extension_module_change_restarts(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    spec = importlib.util.find_spec("xxlimited")
    if spec is None or spec.origin is None or "xxlimited" in sys.modules:
        pytest.skip("this Python build has no xxlimited extension to copy")
    copy = root / Path(spec.origin).name
    shutil.copy(spec.origin, copy)
    module = importlib.import_module("xxlimited")
    assert Path(module.__file__ or "") == copy
    result = reloader.apply([copy])
    assert result.outcome is Outcome.RESTART
    assert result.reason is not None
    assert copy.name in result.reason


def test_declined_module_restarts(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    source = "import hotmod\nhotmod.hot(__name__).decline()\ndef f():\n    return 1\n"
    path = write(root, "m4.py", source)
    importlib.import_module("m4")
    write(root, "m4.py", source.replace("return 1", "return 2"))
    result = reloader.apply([path])
    assert result.outcome is Outcome.RESTART
    assert "m4" in (result.reason or "")


def test_terminal_report() -> None:
    stream = io.StringIO()
    reporter = TerminalReporter(stream, verbosity=1)
    reporter.reloaded(
        ReloadResult(Outcome.APPLIED, patched=("a",), reexecuted=("b",), functions=3,
                     version=4, duration_ms=1.25)
    )
    assert stream.getvalue() == "[hotmod] v4: patched a (3 functions); re-executed b in 1.2 ms\n"
    error = hotmod.ReloadError("boom", path=Path("/p/a.py"), lineno=3)
    reporter.reloaded(ReloadResult(Outcome.FAILED, error=error, traceback="Traceback ..."))
    lines = stream.getvalue().splitlines()
    assert lines[1] == "[hotmod] reload failed at /p/a.py:3: boom"
    assert lines[-1] == "[hotmod] rolled back; still running the previous version"


def test_result_json_is_serialisable() -> None:
    error = hotmod.ReloadError("boom", path=Path("/p/a.py"), lineno=3, phase="compile")
    data = ReloadResult(Outcome.FAILED, error=error).to_json()
    assert json.loads(json.dumps(data))["error"]["line"] == 3


def test_module_types_are_untouched_by_reconcile(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    path = write(root, "m5.py", "import json\nLIB = json\nN = 1\n")
    m5 = importlib.import_module("m5")
    write(root, "m5.py", "import json\nLIB = json\nN = 2\n")
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert isinstance(m5.LIB, types.ModuleType)
    assert m5.LIB is sys.modules["json"]
    assert m5.N == 2




def test_edit_before_watching_begins_is_applied(tmp_path: Path) -> None:
    root = tmp_path / "early"
    path = write(root, "early_mod.py", "def f():\n    return 1\n")
    sys.path.insert(0, str(root))
    collect = Collect()
    reloader = Reloader([root], reporter=collect)
    reloader.install()
    try:
        module = importlib.import_module("early_mod")
        write(root, "early_mod.py", "def f():\n    return 22\n")  # nobody is watching yet
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
        reloader.start()
        result = collect.results.get(timeout=20)
        assert result.outcome is Outcome.APPLIED, result
        assert module.f() == 22
    finally:
        reloader.uninstall()
    assert not [t for t in threading.enumerate() if t.name == "hotmod-watch"]


def test_failed_batch_restores_hot_data(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    source = textwrap.dedent("""
        import hotmod
        hot = hotmod.hot(__name__)
        hot.data["runs"] = hot.data.get("runs", 0) + 1
        VALUE = 1
    """)
    path = write(root, "m6.py", source)
    m6 = importlib.import_module("m6")
    write(root, "m6.py", source + "raise ValueError('late')\n")
    failed = reloader.apply([path])
    assert failed.outcome is Outcome.FAILED
    assert failed.error is not None
    assert failed.error.phase == "stage"
    assert m6.hot.data == {"runs": 1}
    write(root, "m6.py", source.replace("VALUE = 1", "VALUE = 2"))
    assert reloader.apply([path]).outcome is Outcome.APPLIED
    assert m6.hot.data == {"runs": 2}


def test_strict_restart_leaves_the_graph_usable(tmp_path: Path) -> None:
    root = tmp_path / "strict"
    path = write(root, "m7.py", "class Base: pass\nclass Other: pass\nclass C(Base): pass\n")
    sys.path.insert(0, str(root))
    with Reloader([root], strict=True) as reloader:
        importlib.import_module("m7")
        write(root, "m7.py", "class Base: pass\nclass Other: pass\nclass C(Other): pass\n")
        result = reloader.apply([path])
        assert result.outcome is Outcome.RESTART
        assert "--strict" in (result.reason or "")
        write(root, "later_mod.py", "X = 1\n")
        importlib.import_module("later_mod")
        assert "later_mod" in reloader.graph.records  # not held back as "staged"


def test_reexport_of_a_patched_class_is_not_a_change(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    a = write(root, "ra.py", "K = 1\nclass Base:\n    def who(self):\n        return 'a'\n")
    write(root, "rb.py", "from ra import Base\nclass Mid(Base):\n    pass\n")
    write(root, "rc.py", "from rb import Base\nSEEN = []\n")
    for name in ("ra", "rb", "rc"):
        importlib.import_module(name)
    rc = sys.modules["rc"]
    rc.SEEN.append("state")
    write(root, "ra.py", "K = 2\nclass Base:\n    def who(self):\n        return 'a2'\n")
    result = reloader.apply([a])
    assert result.outcome is Outcome.APPLIED
    # rb subclasses Base, so it runs again; rc only re-imports the same class.
    assert result.reexecuted == ("ra", "rb")
    assert rc.SEEN == ["state"]
    assert rc.Base().who() == "a2"


def _imports_by_dis(code: types.CodeType) -> list[tuple[str, int, tuple[str, ...] | None]]:
    found = []
    consts: list[object] = []
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_CONST":
            consts.append(ins.argval)
        elif ins.opname == "IMPORT_NAME":
            level, fromlist = consts[-2], consts[-1]
            assert isinstance(level, int)
            found.append((ins.argval, level, fromlist if isinstance(fromlist, tuple) else None))
    return found


@pytest.mark.smoke
@pytest.mark.parametrize("module", ["json", "email.message", "asyncio.base_events", "typing"])
def test_wordcode_import_scan_agrees_with_dis(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    code = compile(Path(spec.origin).read_text(encoding="utf-8"), spec.origin, "exec")
    for nested in _compat.iter_code_tree(code):
        assert list(_compat.code_imports(nested)) == _imports_by_dis(nested), nested.co_qualname


def test_folder_moved_away_drops_its_modules(tmp_path: Path) -> None:
    root = tmp_path / "moving"
    write(root, "pkgmv/__init__.py", "")
    write(root, "pkgmv/leafmv.py", "X = 1\n")
    sys.path.insert(0, str(root))
    collect = Collect()
    reloader = Reloader([root], reporter=collect)
    reloader.install()
    try:
        importlib.import_module("pkgmv.leafmv")
        reloader.start()
        (root / "pkgmv").rename(root / "elsewhere")
        deadline = time.monotonic() + 20
        seen: list[ReloadResult] = []
        while not any(r.removed for r in seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no reload dropped the moved modules; saw {seen}")
            with contextlib.suppress(queue.Empty):
                seen.append(collect.results.get(timeout=remaining))
        result = next(r for r in seen if r.removed)
        assert result.outcome is Outcome.APPLIED
        assert set(result.removed) == {"pkgmv", "pkgmv.leafmv"}
        assert "pkgmv.leafmv" not in sys.modules
    finally:
        reloader.uninstall()


CLASSY = """
    import functools

    CACHE = {}


    class Base:
        def hello(self):
            return "base"


    class Shape(Base):
        SIDES = 0

        def area(self):
            return 0

        def gone(self):
            return "still here"
"""


def test_adding_and_removing_methods_patches_the_class_only(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    path = write(root, "shapes.py", CLASSY)
    shapes = importlib.import_module("shapes")
    shape_cls, area = shapes.Shape, shapes.Shape.area
    before = shapes.Shape()
    shapes.CACHE["filled"] = "at run time"
    gone = """
        def gone(self):
            return "still here"
    """
    added = """
        def greet(self):
            return "shape+" + super().hello()

        @functools.cached_property
        def cached(self):
            return [self.SIDES]

        @property
        def kind(self):
            return "polygon"

        def __init_subclass__(cls, **kwargs):
            cls.registered = True
    """
    source = textwrap.dedent(CLASSY)
    assert textwrap.indent(textwrap.dedent(gone), "    ").strip() in source
    new = source.replace(
        textwrap.indent(textwrap.dedent(gone).strip(), "    "),
        textwrap.indent(textwrap.dedent(added).strip(), "    "),
    ).replace("SIDES = 0", "SIDES = 4")
    assert "greet" in new
    path.write_text(new, encoding="utf-8")
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED, result
    assert result.reexecuted == ()  # the module's top level did not run again
    assert result.patched == ("shapes",)
    assert shapes.Shape is shape_cls
    assert shapes.Shape.area is area
    assert shapes.CACHE == {"filled": "at run time"}
    assert before.greet() == "shape+base"  # zero-argument super() in a new method
    assert before.cached == [4]
    assert before.kind == "polygon"
    assert not hasattr(before, "gone")

    # The new __init_subclass__ is a classmethod, as type() would have made it.
    sub = type("Sub", (shapes.Shape,), {})
    assert getattr(sub, "registered", None) is True


def test_class_statement_changes_still_reexecute(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    path = write(root, "shapes2.py", CLASSY)
    importlib.import_module("shapes2")
    new = textwrap.dedent(CLASSY).replace("class Shape(Base):", "class Shape:")
    path.write_text(new.replace("SIDES = 0", "SIDES = 3"), encoding="utf-8")
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED
    assert result.reexecuted == ("shapes2",)
    assert any("class replaced" in note for note in result.notes)


def test_imports_by_other_threads_during_staging_are_ordinary(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    write(root, "syncpoint.py", """
        import threading
        STAGING = threading.Event()
        GO = threading.Event()
    """)
    path = write(root, "slow_mod.py", "X = 1\n")
    write(root, "bystander.py", "Y = 2\n")
    importlib.import_module("syncpoint")
    importlib.import_module("slow_mod")
    write(root, "slow_mod.py", """
        import syncpoint
        syncpoint.STAGING.set()
        syncpoint.GO.wait(10)
        raise RuntimeError("this batch fails")
    """)
    results: list[ReloadResult] = []
    worker = threading.Thread(target=lambda: results.append(reloader.apply([path])))
    worker.start()
    sync = sys.modules["syncpoint"]
    try:
        assert sync.STAGING.wait(10), "staging never started"
        bystander = importlib.import_module("bystander")  # while the batch is staged
    finally:
        sync.GO.set()
        worker.join(10)
    assert results[0].outcome is Outcome.FAILED
    assert sys.modules.get("bystander") is bystander  # not dropped with the failed batch
    assert "bystander" in reloader.graph.records


def test_installed_packages_changing_needs_a_restart(tmp_path: Path) -> None:
    root, site_dir = tmp_path / "proj_pkgs", tmp_path / "site-packages"
    root.mkdir()
    site_dir.mkdir()
    collect = Collect()
    restarts: list[ReloadResult] = []
    reloader = Reloader(
        [root], packages=[site_dir], reporter=collect, on_restart=restarts.append
    )
    reloader.start()
    try:
        (site_dir / "loose_module.py").write_text("X = 1\n", encoding="utf-8")  # not a marker
        (site_dir / "requests-9.9.dist-info").mkdir()
        result = collect.results.get(timeout=20)
        assert result.outcome is Outcome.RESTART
        assert "requests-9.9.dist-info" in (result.reason or "")
        assert [p.name for p in result.paths] == ["requests-9.9.dist-info"]
        assert restarts == [result]
    finally:
        reloader.uninstall()
    assert not [t for t in threading.enumerate() if t.name.startswith("hotmod-")]


def test_default_package_folders_are_this_interpreters(tmp_path: Path) -> None:
    import site

    reloader = Reloader([tmp_path])
    expected = {Path(p) for p in site.getsitepackages()} | {Path(site.getusersitepackages())}
    assert reloader.packages
    assert set(reloader.packages) <= expected
    spec = importlib.util.find_spec("watchfiles")  # installed by pip, so in one of them
    assert spec is not None
    assert spec.origin is not None
    assert any(Path(spec.origin).is_relative_to(p) for p in reloader.packages)
    assert Reloader([tmp_path], packages=()).packages == []


def test_one_rule_for_project_files(tmp_path: Path) -> None:
    """The import hook tracks a module exactly when the watcher would report its file."""
    from hotmod._engine.graph import ModuleGraph
    from hotmod._watch.pathfilter import DEFAULT_IGNORED_DIRS, PathFilter

    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("", encoding="utf-8")
    exclude = ["gen_*.py", "generated"]
    graph = ModuleGraph([tmp_path], exclude=exclude)
    watched = PathFilter(
        [str(tmp_path.resolve())], suffixes=(".py",), ignored_dirs=DEFAULT_IGNORED_DIRS,
        exclude=exclude,
    )
    samples = {
        "app.py": True,
        "pkg/mod.py": True,
        "build/lib/app.py": False,
        "dist/app.py": False,
        "node_modules/x.py": False,
        "pkg.egg-info/x.py": False,
        "env/lib/x.py": False,
        "gen_models.py": False,
        "generated/models.py": False,
        ".venv/lib/x.py": False,
    }
    for rel, expected in samples.items():
        path = str(tmp_path.resolve() / rel)
        assert graph.is_project_file(path) is expected, rel
        assert watched.accepts(path) is expected, rel


def test_modules_under_build_are_not_tracked(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    write(root, "build/lib/built.py", "X = 1\n")
    write(root, "uses.py", "import sys\nsys.path.insert(0, sys.path[0] + '/build/lib')\n")
    sys.path.insert(0, str(root / "build" / "lib"))
    importlib.import_module("built")
    assert "built" not in reloader.graph.records


class _RegistryAdapter:
    """A participant that keeps a live registry untouched until the commit."""

    name = "registry-adapter"
    order = 100

    def __init__(self) -> None:
        self.recorded: list[object] = []
        self.seen_while_staging: list[object] | None = None

    def prepare(self, batch: Any) -> None:
        self.recorded = []
        batch.stand_in("registry", HANDLERS=self.recorded)

    def stage(self, batch: Any) -> None:
        self.seen_while_staging = list(sys.modules["registry"].HANDLERS)

    def commit(self, batch: Any, undo: Any) -> None:
        live = sys.modules["registry"].HANDLERS
        before = list(live)
        live[:] = [batch.reconciler.remap(h) for h in self.recorded]
        undo.on_rollback(lambda: live.__setitem__(slice(None), before))

    def abandon(self, batch: Any) -> None:
        self.recorded = []


def test_stand_ins_keep_live_objects_untouched_while_staging(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    write(root, "registry.py", "HANDLERS = []\n")
    plugin = write(
        root, "plugin.py",
        """
        from registry import HANDLERS

        VALUE = 1


        def handler():
            return VALUE


        HANDLERS.append(handler)
        """,
    )
    registry = importlib.import_module("registry")
    module = importlib.import_module("plugin")
    adapter = _RegistryAdapter()
    reloader.add_participant(adapter)
    live = registry.HANDLERS
    assert live == [module.handler]

    plugin.write_text(plugin.read_text().replace("VALUE = 1", "VALUE = 2"), encoding="utf-8")
    result = reloader.apply([plugin])
    assert result.outcome is Outcome.APPLIED, result
    assert adapter.seen_while_staging == [module.handler]  # nothing registered while staging
    assert registry.HANDLERS is live
    assert live == [module.handler]  # the recorded registration, mapped to the live function
    assert module.HANDLERS is live  # the staged binding of the stand-in became the live list
    assert live[0]() == 2

    plugin.write_text(
        plugin.read_text().replace("VALUE = 2", "VALUE = 3") + "\nraise RuntimeError('no')\n",
        encoding="utf-8",
    )
    assert reloader.apply([plugin]).outcome is Outcome.FAILED
    assert live == [module.handler]
    assert live[0]() == 2


def test_an_echo_of_a_failed_save_is_not_run_again(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    path = write(root, "echoed.py", "X = 1\n")
    importlib.import_module("echoed")
    collect = Collect()
    reloader.reporter = collect
    path.write_text("X = 2\nraise RuntimeError('broken')\n", encoding="utf-8")
    first = reloader.apply([path])
    assert first.outcome is Outcome.FAILED
    assert reloader.apply([path]) is first  # the editor's second event for the same save
    assert collect.results.qsize() == 1
    path.write_text("X = 3\n", encoding="utf-8")
    assert reloader.apply([path]).outcome is Outcome.APPLIED


def test_a_module_loaded_from_bytecode_reloads_without_its_old_source(
    project: tuple[Path, Reloader],
) -> None:
    """From a valid .pyc the source is never read; a body edit still patches in place."""
    import py_compile

    root, reloader = project
    path = write(root, "frompyc.py", "K = 1\n\n\ndef f():\n    return 1\n")
    py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)))
    module = importlib.import_module("frompyc")
    record = reloader.graph.records["frompyc"]
    assert record._text is None  # not read at start-up
    held = module.f
    path.write_text("K = 1\n\n\ndef f():\n    return 2\n", encoding="utf-8")
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED, result
    assert result.patched == ("frompyc",)
    assert result.reexecuted == ()
    assert held() == 2
    path.write_text("K = 5\n\n\ndef f():\n    return 2\n", encoding="utf-8")
    result = reloader.apply([path])
    assert result.reexecuted == ("frompyc",)
    assert module.K == 5


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ("def f():\n    return 1\n", "def f():\n    return 2\n", True),
        ("def f(x=1):\n    return x\n", "def f(x=2):\n    return x\n", False),
        (
            "class C:\n    def m(self):\n        return 1\n",
            "class C:\n    def m(self):\n        return 9\n",
            True,
        ),
        ("class C:\n    A = 1\n", "class C:\n    A = 2\n", False),
        ("X = [i for i in range(2)]\n", "X = [i * 2 for i in range(2)]\n", False),
        ("def f():\n    return 1\n", "def f():\n    return 1\nY = 2\n", False),
    ],
)
def test_same_shape_tells_body_only_edits(old: str, new: str, same: bool) -> None:
    a = compile(old, "m.py", "exec", dont_inherit=True)
    b = compile(new, "m.py", "exec", dont_inherit=True)
    assert _compat.same_shape(a, b) is same
