"""Focused unit tests: the undo log, the participant loop, the usage scan, cycle order.

Everything runs in-process (no subprocesses, no sleeps); a real :class:`Reloader`
appears only where the behaviour under test is the engine's (the ``project``
fixture, as in ``test_engine.py``; ``conftest.py`` restores ``sys.path`` and
``sys.modules``).
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from hotmod import Outcome, Reloader, RollbackError
from hotmod._engine.attributes import init_attributes
from hotmod._engine.graph import ModuleGraph
from hotmod._engine.participants import BaseParticipant, Participant, Participants
from hotmod._engine.record import ModuleRecord
from hotmod._engine.scan import ModuleInfo, scan, top_level_use
from hotmod._engine.undo import UndoLog
from inprocess import write

if TYPE_CHECKING:
    from hotmod._engine.batch import Batch






# -- 1. the undo log ------------------------------------------------------------------------


class Obj:
    """A plain object whose instance attributes the undo log sets and deletes."""

    shared = "class value"


def test_undo_setitem_restores_an_existing_value_and_removes_a_new_key() -> None:
    mapping: dict[str, Any] = {"old": 1}
    undo = UndoLog()
    undo.setitem(mapping, "old", 2)
    undo.setitem(mapping, "new", 3)
    undo.setitem(mapping, "new", 4)  # the second step's "old" value is the first's new one
    assert mapping == {"old": 2, "new": 4}
    undo.rollback()
    assert mapping == {"old": 1}


def test_undo_delitem_restores_the_value_and_a_missing_key_registers_nothing() -> None:
    mapping: dict[str, Any] = {"k": "v"}
    undo = UndoLog()
    undo.delitem(mapping, "missing")
    assert len(undo) == 0
    undo.delitem(mapping, "k")
    assert mapping == {}
    undo.rollback()
    assert mapping == {"k": "v"}


def test_undo_setattr_restores_an_existing_attribute_and_deletes_a_new_one() -> None:
    obj, cls = Obj(), type("C", (), {"a": 1})
    obj.__dict__["present"] = "before"
    undo = UndoLog()
    undo.setattr(obj, "present", "after")
    undo.setattr(obj, "added", "new")
    undo.setattr(obj, "shared", "shadowed")  # only on the class: the instance had none
    undo.setattr(cls, "a", 2)
    undo.setattr(cls, "b", 3)
    assert obj.__dict__ == {"present": "after", "added": "new", "shared": "shadowed"}
    assert cls.__dict__["a"] == 2
    undo.rollback()
    assert obj.__dict__ == {"present": "before"}
    assert obj.shared == "class value"
    assert (cls.__dict__["a"], "b" in cls.__dict__) == (1, False)


def test_undo_delattr_restores_the_attribute_and_a_missing_one_registers_nothing() -> None:
    obj = Obj()
    obj.__dict__["x"] = 1
    undo = UndoLog()
    undo.delattr(obj, "shared")  # inherited from the class: the instance has none of its own
    undo.delattr(obj, "nope")
    assert len(undo) == 0
    undo.delattr(obj, "x")
    assert "x" not in obj.__dict__
    undo.rollback()
    assert obj.__dict__ == {"x": 1}


def test_undo_steps_run_in_reverse_order() -> None:
    ran: list[int] = []
    mapping: dict[str, Any] = {"k": 0}
    undo = UndoLog()
    for i in range(3):
        undo.on_rollback(functools.partial(ran.append, i))
    undo.setitem(mapping, "k", 1)  # three steps on one key unwind only in reverse
    undo.delitem(mapping, "k")
    undo.setitem(mapping, "k", 2)
    assert len(undo) == 6
    undo.rollback()
    assert (ran, mapping) == ([2, 1, 0], {"k": 0})


def test_undo_failing_steps_do_not_stop_the_others_and_the_first_is_raised_once() -> None:
    ran: list[str] = []
    first, second = ValueError("first to fail"), KeyError("second to fail")

    def step(label: str, exc: BaseException | None = None) -> Callable[[], None]:
        def run() -> None:
            ran.append(label)
            if exc is not None:
                raise exc

        return run

    undo = UndoLog()
    for label, exc in (("a", None), ("b", second), ("c", None), ("d", first)):
        undo.on_rollback(step(label, exc))
    with pytest.raises(RollbackError) as info:
        undo.rollback()
    assert ran == ["d", "c", "b", "a"]  # "d" failed first: reverse order
    assert info.value.__cause__ is first
    assert info.value.phase == "rollback"
    assert "first to fail" in str(info.value)
    assert len(undo) == 0
    undo.rollback()  # nothing left: raised once, not again


def test_undo_discard_forgets_every_step() -> None:
    mapping: dict[str, Any] = {}
    undo = UndoLog()
    undo.setitem(mapping, "k", 1)
    undo.on_rollback(mapping.clear)
    undo.discard()
    assert len(undo) == 0
    undo.rollback()
    assert mapping == {"k": 1}


def test_undo_rollback_twice_is_a_no_op() -> None:
    ran: list[int] = []
    undo = UndoLog()
    undo.on_rollback(lambda: ran.append(1))
    undo.rollback()
    undo.rollback()
    assert ran == [1]


# -- 2. the participant loop ----------------------------------------------------------------


@dataclass
class FakeBatch:
    """The loop only uses ``prepared``."""

    prepared: list[Participant] = field(default_factory=list)


class Recorder(BaseParticipant):
    """Records each step in a shared log; raises ``error`` in the step named ``fail``."""

    def __init__(
        self, name: str, log: list[tuple[str, str]], *, order: int = 100, fail: str | None = None
    ) -> None:
        self.name, self.order, self.log, self.fail = name, order, log, fail
        self.error = RuntimeError(f"{name}.{fail}")

    def _step(self, step: str) -> None:
        self.log.append((self.name, step))
        if step == self.fail:
            raise self.error

    def prepare(self, batch: Batch) -> None:
        self._step("prepare")

    def stage(self, batch: Batch) -> None:
        self._step("stage")

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        self._step("commit")

    def abandon(self, batch: Batch) -> None:
        self._step("abandon")


def as_batch(fake: FakeBatch) -> Batch:
    return cast("Batch", fake)


def test_participants_run_by_order_then_registration() -> None:
    log: list[tuple[str, str]] = []
    loop = Participants()
    for name, order in (("late", 200), ("first100", 100), ("second100", 100), ("early", 5)):
        loop.add(Recorder(name, log, order=order))
    assert [p.name for p in loop] == ["early", "first100", "second100", "late"]
    batch = FakeBatch()
    loop.prepare(as_batch(batch))
    loop.stage(as_batch(batch))
    loop.commit(as_batch(batch), UndoLog())
    names = ["early", "first100", "second100", "late"]
    assert log == [(n, s) for s in ("prepare", "stage", "commit") for n in names]


def test_participants_add_is_idempotent_and_remove_forgets() -> None:
    log: list[tuple[str, str]] = []
    loop = Participants()
    one = Recorder("one", log)
    loop.add(one)
    loop.add(one)
    assert len(loop) == 1
    loop.prepare(as_batch(FakeBatch()))
    assert log == [("one", "prepare")]
    loop.remove(one)
    assert len(loop) == 0


def test_participants_abandon_runs_every_one_and_reraises_the_first_error_once() -> None:
    log: list[tuple[str, str]] = []
    loop = Participants()
    a, c = Recorder("a", log, fail="abandon"), Recorder("c", log, fail="abandon")
    for p in (a, Recorder("b", log), c):
        loop.add(p)
    batch = FakeBatch()
    loop.prepare(as_batch(batch))
    log.clear()
    with pytest.raises(RuntimeError) as info:
        loop.abandon(as_batch(batch))
    assert info.value is c.error  # c abandons first: its error is the first
    assert log == [("c", "abandon"), ("b", "abandon"), ("a", "abandon")]
    assert batch.prepared == []
    loop.abandon(as_batch(batch))  # nothing prepared any more: nothing raised again


def test_participant_raising_in_prepare_is_abandoned_and_unprepared_ones_are_not() -> None:
    log: list[tuple[str, str]] = []
    loop = Participants()
    for p in (Recorder("a", log), Recorder("b", log, fail="prepare"), Recorder("c", log)):
        loop.add(p)
    batch = FakeBatch()
    with pytest.raises(RuntimeError, match=r"b\.prepare"):
        loop.prepare(as_batch(batch))
    assert [p.name for p in batch.prepared] == ["a", "b"]
    loop.abandon(as_batch(batch))
    assert log == [("a", "prepare"), ("b", "prepare"), ("b", "abandon"), ("a", "abandon")]


@pytest.mark.parametrize(
    ("fail", "outcome", "expected", "runs"),
    [
        pytest.param(None, Outcome.APPLIED, ["prepare", "stage", "commit"], 2, id="applied"),
        pytest.param("stage", Outcome.FAILED, ["prepare", "stage", "abandon"], 1,
                     id="stage-raises"),
        pytest.param("commit", Outcome.FAILED, ["prepare", "stage", "commit", "abandon"], 1,
                     id="commit-raises-patch-undone"),
    ],
)
def test_reloader_runs_participant_steps_around_a_body_edit(
    project: tuple[Path, Reloader], fail: str | None, outcome: Outcome, expected: list[str],
    runs: int,
) -> None:
    root, reloader = project
    path = write(root, "pbody.py", "def f():\n    return 1\n")
    mod = importlib.import_module("pbody")
    f = mod.f
    log: list[tuple[str, str]] = []
    reloader.add_participant(Recorder("rec", log, fail=fail))
    write(root, "pbody.py", "def f():\n    return 2\n")
    result = reloader.apply([path])
    assert result.outcome is outcome, result
    assert [step for _, step in log] == expected
    assert result.patched == (("pbody",) if fail is None else ())
    if fail is not None:
        assert result.error is not None
        assert result.error.phase == fail
    assert (mod.f is f, f()) == (True, runs)


class ConfigParticipant(BaseParticipant):
    """Claims changed ``.txt`` files and re-executes the module that reads them."""

    name = "config"

    def __init__(self, module: str) -> None:
        self.module = module
        self.seen: list[Path] = []
        self.left: list[Path] = []

    def prepare(self, batch: Batch) -> None:
        for path in batch.unclaimed:
            if path.suffix == ".txt":
                self.seen.append(path)
                batch.claim(path, self.name)
                batch.require(self.module, f"{path.name} changed")
        self.left = batch.unclaimed


def test_reloader_participant_claims_a_file_and_requires_a_reexecution(
    project: tuple[Path, Reloader],
) -> None:
    root, reloader = project
    config = write(root, "settings.txt", "one")
    write(root, "pconf.py", """
        from pathlib import Path
        VALUE = (Path(__file__).parent / "settings.txt").read_text()
    """)
    mod = importlib.import_module("pconf")
    participant = ConfigParticipant("pconf")
    reloader.add_participant(participant)
    config.write_text("two", encoding="utf-8")
    result = reloader.apply([config])
    assert result.outcome is Outcome.APPLIED, result
    assert result.reexecuted == ("pconf",)
    assert participant.seen == [config]
    assert participant.left == []  # claimed: no longer unclaimed
    assert mod.VALUE == "two"


# -- 3. the usage analysis behind G5 --------------------------------------------------------


def info_of(source: str, name: str = "importer", *, is_package: bool = False) -> ModuleInfo:
    return scan(ast.parse(textwrap.dedent(source)), name, is_package=is_package)


C_INIT = "import m\nclass C:\n    def __init__(self):\n"
USES = [
    # id, importer source, changed module, rebound names, mutated names, expected
    ("from-import-rebound", "from m import x\n", "m", "x", "", True),
    ("from-import-as-rebound", "from m import x as y\n", "m", "x", "", True),
    ("from-import-other-name", "from m import x\n", "m", "z", "", False),
    ("from-mutated-in-function", "from m import x\ndef f():\n    return x()\n", "m", "", "x",
     False),
    ("from-mutated-called-at-top", "from m import x\nY = x()\n", "m", "", "x", True),
    ("from-mutated-as-base", "from m import x\nclass C(x):\n    pass\n", "m", "", "x", True),
    ("from-mutated-as-decorator", "from m import x\n@x\ndef f():\n    pass\n", "m", "", "x",
     True),
    ("chain-at-top", "import m\nY = m.x\n", "m", "x", "", True),
    ("chain-in-function", "import m\ndef f():\n    return m.x\n", "m", "x", "", False),
    ("chain-in-called-function", "import m\ndef f():\n    return m.x\nY = f()\n", "m", "x", "",
     True),
    ("chain-reached-transitively",
     "import m\ndef g():\n    return m.x\ndef f():\n    return g()\nY = f()\n", "m", "x", "",
     True),
    ("chain-mutated-read-not-called", "import m\nY = m.f\n", "m", "", "f", False),
    ("chain-mutated-called", "import m\nY = m.f()\n", "m", "", "f", True),
    ("module-object-escapes", "import m\nY = [m]\n", "m", "x", "", True),
    ("pkg-sub-chain", "import pkg.sub\nY = pkg.sub.x\n", "pkg.sub", "x", "", True),
    ("pkg-sub-other-chain", "import pkg.sub\nY = pkg.other.x\n", "pkg.sub", "x", "", False),
    ("pkg-sub-as", "import pkg.sub as s\nY = s.x\n", "pkg.sub", "x", "", True),
    ("from-pkg-import-sub", "from pkg import sub\nY = sub.x\n", "pkg.sub", "x", "", True),
    ("relative-from-import", "from .m import x\n", "pkg.m", "x", "", True),
    ("star-public-rebound", "from m import *\n", "m", "x", "", True),
    ("star-private-rebound", "from m import *\n", "m", "_x", "", False),
    ("star-mutated-called", "from m import *\nY = f()\n", "m", "", "f", True),
    ("getattr-and-any-read", "import m\nY = m.anything\n", "m", "__getattr__", "", True),
    ("getattr-read-in-function", "import m\ndef f():\n    return m.anything\n", "m",
     "__getattr__", "", False),
    ("instantiation-reaches-init", C_INIT + "        self.v = m.x\nC()\n", "m", "x", "", True),
    ("class-never-instantiated", C_INIT + "        self.v = m.x\n", "m", "x", "", False),
    ("init-calls-self-helper",
     C_INIT + "        self.h()\n    def h(self):\n        return m.x\nC()\n", "m", "x", "", True),
    ("other-method-not-reached",
     C_INIT + "        pass\n    def h(self):\n        return m.x\nC()\n", "m", "x", "", False),
    ("classmethod-called-at-top",
     "import m\nclass C:\n    @classmethod\n    def make(cls):\n        return m.x\nY = C.make()\n",
     "m", "x", "", True),
    ("nothing-changed", "from m import x\nY = x()\n", "m", "", "", False),
]


@pytest.mark.parametrize(
    ("source", "module", "rebound", "mutated", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in USES],
)
def test_uses_decides_whether_import_time_code_depends_on_a_change(
    source: str, module: str, rebound: str, mutated: str, expected: bool
) -> None:
    name = "pkg.importer" if module.startswith("pkg.") else "importer"
    info = info_of(source, name)
    assert info.uses(module, set(rebound.split()), set(mutated.split())) is expected


def test_uses_toplevel_only_ignores_reads_in_functions_called_at_top_level() -> None:
    info = info_of("import m\ndef f():\n    return m.x\nY = f()\n")
    assert info.uses("m", {"x"}, set())
    assert not info.uses("m", {"x"}, set(), toplevel_only=True)
    direct = info_of("import m\nY = m.x\n")
    assert direct.uses("m", {"x"}, set(), toplevel_only=True)


def test_top_level_use_finds_the_first_top_level_line_and_ignores_functions() -> None:
    source = textwrap.dedent("""
        import m
        def f():
            return m.LIMIT
        X = m.OTHER
        Y = m.LIMIT
    """).lstrip()
    tree = ast.parse(source)
    info = scan(tree, "importer", is_package=False)
    assert top_level_use(tree, info, "m", {"LIMIT"}) == ("LIMIT", 5)
    assert top_level_use(tree, info, "m", {"LIMIT", "OTHER"}) == ("OTHER", 4)
    assert top_level_use(tree, info, "m", {"ABSENT"}) is None
    tree = ast.parse("f = lambda: LIMIT\nfrom m import LIMIT as L\nZ = L\n")
    info = scan(tree, "importer", is_package=False)
    assert top_level_use(tree, info, "m", {"LIMIT"}) == ("LIMIT", 2)  # the import is a use


def test_init_attributes_finds_assignments_to_self_in_init() -> None:
    tree = ast.parse(textwrap.dedent("""
        class A:
            def __init__(this, v):
                this.plain = v
                this.annotated: int = 0
                this.augmented += 1
                if v:
                    this.nested_in_if = 1
                self.other_name = 2
                other.attr = 3
                local = 4
            def method(self):
                self.not_init = 5
            class B:
                def __init__(self):
                    self.inner = 1
                class C:
                    def __init__(self):
                        self.deepest = 1
        class NoInit:
            x = 1
    """))
    assert init_attributes(tree.body) == {
        "A": {"plain", "annotated", "augmented", "nested_in_if"},
        "A.B": {"inner"},
        "A.B.C": {"deepest"},
    }


# -- 4. cycle ordering ----------------------------------------------------------------------


def write_cycle(root: Path) -> tuple[Path, Path]:
    a = write(root, "a.py", "one = 1\nfrom b import two\n")
    b = write(root, "b.py", "from a import one\ntwo = 2\n")
    return a, b


def test_cycle_records_load_order_and_cycle_membership(project: tuple[Path, Reloader]) -> None:
    root, reloader = project
    write_cycle(root)
    importlib.import_module("a")
    records = reloader.graph.records
    assert records["a"].order < records["b"].order
    assert sorted(reloader.graph.cycle_of("b")) == ["a", "b"]
    assert sorted(reloader.graph.cycle_of("a")) == ["a", "b"]


@pytest.mark.parametrize(
    ("edited", "source", "expected"),
    [
        pytest.param("b.py", "from a import one\ntwo = 3\n", (1, 3, 1), id="edit-in-b"),
        pytest.param("a.py", "one = 10\nfrom b import two\n", (10, 2, 10), id="edit-in-a"),
    ],
)
def test_cycle_edit_reexecutes_the_cycle_in_first_run_order(
    project: tuple[Path, Reloader], edited: str, source: str, expected: tuple[int, int, int],
) -> None:
    root, reloader = project
    write_cycle(root)
    a = importlib.import_module("a")
    b = sys.modules["b"]
    path = write(root, edited, source)
    result = reloader.apply([path])
    assert result.outcome is Outcome.APPLIED, result
    assert result.reexecuted == ("a", "b")  # the order the cycle first ran in
    assert (a.one, a.two, b.one) == expected
    assert (sys.modules["a"], sys.modules["b"]) == (a, b)
    assert reloader.graph.records["a"].order < reloader.graph.records["b"].order


def graph_of(root: Path, sources: dict[str, str]) -> ModuleGraph:
    """A graph with records compiled from ``sources`` (nothing imported or executed)."""
    graph = ModuleGraph([root])
    for name, source in sources.items():
        path = root / f"{name}.py"
        code = compile(source, str(path), "exec", dont_inherit=True)
        graph.add(ModuleRecord(name, path, source, code, False))
    return graph


def test_graph_order_puts_dependencies_first_and_groups_a_cycle(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, {
        "app": "import x\nimport mid\n",
        "mid": "import base\n",
        "base": "import os\n",
        "x": "import y\nimport base\n",
        "y": "import x\n",
    })
    groups = graph.order(["app", "mid", "base", "x", "y"])
    assert sorted(map(sorted, groups)) == [["app"], ["base"], ["mid"], ["x", "y"]]
    position = {name: i for i, group in enumerate(groups) for name in group}
    assert position["base"] < position["mid"] < position["app"]
    assert position["base"] < position["x"] == position["y"] < position["app"]
    assert sorted(graph.cycle_of("x")) == ["x", "y"]
    assert graph.cycle_of("app") == ["app"]
    assert graph.order(["app", "mid"]) == [["mid"], ["app"]]  # only the names asked for
    assert graph.dependencies("x") == {"y", "base"}
    assert graph.importers("base") == {"mid", "x"}


# --------------------------------------------------------------------------------------
# Regressions for what writing these tests found


def test_undo_setattr_on_slots_and_properties_restores_the_value() -> None:
    class Slotted:
        __slots__ = ("a",)

    class WithProperty:
        def __init__(self) -> None:
            self._v = 1

        @property
        def v(self) -> int:
            return self._v

        @v.setter
        def v(self, value: int) -> None:
            self._v = value

    slotted, prop = Slotted(), WithProperty()
    undo = UndoLog()
    undo.setattr(slotted, "a", 1)
    undo.setattr(prop, "v", 2)
    undo.rollback()
    assert not hasattr(slotted, "a")
    assert prop.v == 1


def _info(source: str, name: str = "imp") -> ModuleInfo:
    return scan(ast.parse(textwrap.dedent(source)), name, is_package=False)


def test_function_defined_in_a_top_level_block_is_followed() -> None:
    for block in ("if True:", "try:"):
        tail = "\nexcept Exception:\n    pass\n" if block == "try:" else "\n"
        source = f"import lib\n{block}\n    def f():\n        return lib.x\n{tail}Y = f()\n"
        assert _info(source).uses("lib", {"x"}, set())


def test_method_of_a_from_imported_class_called_at_import_time() -> None:
    info = _info("from lib import F\nY = F.make()\n")
    assert info.uses("lib", set(), {"F"})


def test_init_attributes_through_unpacking_for_and_with() -> None:
    tree = ast.parse(
        textwrap.dedent(
            """
            class A:
                def __init__(self):
                    self.a, (self.b, *self.c) = 1, (2, 3)
                    for self.d in range(2):
                        pass
                    with open(__file__) as self.e:
                        pass
            """
        )
    )
    assert init_attributes(tree.body) == {"A": {"a", "b", "c", "d", "e"}}


def test_top_level_use_sees_decorators_and_defaults() -> None:
    source = "import m\n\n\n@m.deco\ndef f(x=m.DEFAULT):\n    return m.LATER\n"
    tree = ast.parse(source)
    info = scan(tree, "__main__", is_package=False)
    assert top_level_use(tree, info, "m", {"deco", "DEFAULT", "LATER"}) == ("deco", 4)
    assert top_level_use(tree, info, "m", {"LATER"}) is None
