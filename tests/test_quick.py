"""The quick path: a body edit re-parses and compiles only the statements it touched.

Its result must be exactly what compiling the whole file gives (code objects
compare equal, line numbers included), and it must step aside for every edit
it cannot handle.
"""

from __future__ import annotations

import ast
import copy
import random
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from hotmod import Outcome, Reloader
from hotmod._engine.quick import _split_change, quick_change, statement_shifts, statement_spans

BASE = textwrap.dedent(
    """\
    from __future__ import annotations

    import functools

    LIMIT = 10


    def first(x: int = 1) -> int:
        return x + 1


    @functools.lru_cache
    def cached(n: int) -> int:
        return n * 2


    class Shape:
        sides = 0

        def area(self) -> float:
            return 0.0

        class Inner:
            def v(self) -> int:
                return 1


    def make():
        def handler():
            return "h1"
        return handler


    def last() -> str:
        return "last"
    """
)


def materialize(tree: ast.Module) -> ast.Module:
    """A copy of ``tree`` whose nodes carry their true positions (shifts applied)."""
    found = ast.Module(body=[], type_ignores=[])
    for stmt, shift in zip(tree.body, statement_shifts(tree), strict=True):
        node = copy.deepcopy(stmt)
        if shift:
            ast.increment_lineno(node, shift)
        found.body.append(node)
    return found


def _full(source: str) -> tuple[ast.Module, object]:
    tree = ast.parse(source, "m.py")
    return tree, compile(tree, "m.py", "exec", dont_inherit=True)


def _quick(old: str, new: str) -> tuple[ast.Module, object, tuple[str, ...]] | None:
    tree, code = _full(old)
    found = quick_change(old, tree, code, new, Path("m.py"))  # type: ignore[arg-type]
    return None if found is None else (found.tree, found.code, found.statements)


@pytest.mark.parametrize(
    ("old", "new", "statements"),
    [
        ("return x + 1", "return x + 2", ("first",)),
        ("return n * 2", "return n * 3", ("cached",)),
        ("return 0.0", "return 1.5", ("Shape",)),
        ("            return 1", "            return 2", ("Shape",)),
        ('return "h1"', 'return "h2"', ("make",)),
        ("    sides = 0", "    sides = 4", ("Shape",)),
        ('return "last"', 'return "LAST"', ("last",)),
    ],
)
def test_quick_result_equals_a_full_compile(
    old: str, new: str, statements: tuple[str, ...]
) -> None:
    edited = BASE.replace(old, new)
    assert edited != BASE
    found = _quick(BASE, edited)
    assert found is not None
    tree, code, names = found
    full_tree, full_code = _full(edited)
    assert names == statements
    assert code == full_code
    assert ast.dump(tree, include_attributes=True) == ast.dump(full_tree, include_attributes=True)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("def first(x: int = 1)", "def first(x: int = 2)"),  # a default: runs at top level
        ("@functools.lru_cache\n", "@functools.cache\n"),  # a decorator
        ("class Shape:", "class Shape(object):"),  # bases
        ("LIMIT = 10", "LIMIT = 11"),  # a top-level statement
        ("return x + 1", "return (x +"),  # a syntax error: the full compile reports it
    ],
)
def test_quick_path_steps_aside(old: str, new: str) -> None:
    assert _quick(BASE, BASE.replace(old, new)) is None


@pytest.mark.parametrize(
    ("edits", "statements", "moved"),
    [
        # a body grows by a line: every later definition moves down
        ([("return x + 1", "y = x\n    return y + 1")], ("first",),
         ("cached", "Shape", "make", "last")),
        # a class body loses a line (the nested class moves up with it)
        ([("    sides = 0\n\n", "    sides = 0\n")], ("Shape",), ("make", "last")),
        # comment lines between statements
        ([("LIMIT = 10\n", "LIMIT = 10\n# a\n# b\n")], (),
         ("first", "cached", "Shape", "make", "last")),
        # a blank line removed between two functions
        ([("    return handler\n\n\n", "    return handler\n\n")], (), ("last",)),
        # two definitions edited, the first growing: the second moves inside the region
        ([("return n * 2", "m = n\n    return m * 2"), ("return 0.0", "return 2.0")],
         ("cached", "Shape"), ("make", "last")),
    ],
)
def test_moving_edits_equal_a_full_compile(
    edits: list[tuple[str, str]], statements: tuple[str, ...], moved: tuple[str, ...]
) -> None:
    edited = BASE
    for old, new in edits:
        edited = edited.replace(old, new)
    assert edited != BASE
    tree, code = _full(BASE)
    found = quick_change(BASE, tree, code, edited, Path("m.py"))  # type: ignore[arg-type]
    assert found is not None
    full_tree, full_code = _full(edited)
    assert found.statements == statements
    assert found.moved == moved
    assert found.stale_lines  # the module's own line table is left for a full compile
    assert found.code.co_consts == full_code.co_consts  # type: ignore[attr-defined]
    assert found.code.co_code == full_code.co_code  # type: ignore[attr-defined]
    assert statement_spans(found.tree) == statement_spans(full_tree)
    assert ast.dump(materialize(found.tree), include_attributes=True) == ast.dump(
        full_tree, include_attributes=True
    )
    # ... and the next edit starts from the moved tree: a later function's body
    again = edited.replace('return "last"', 'x = "last"\n    return x')
    second = quick_change(edited, found.tree, found.code, again, Path("m.py"))
    assert second is not None
    assert second.statements == ("last",)
    again_tree, again_code = _full(again)
    assert second.code.co_consts == again_code.co_consts  # type: ignore[attr-defined]
    assert ast.dump(materialize(second.tree), include_attributes=True) == ast.dump(
        again_tree, include_attributes=True
    )


def test_a_name_defined_twice_is_compiled_in_full() -> None:
    twice = BASE + "\n\ndef first(x: int = 1) -> int:\n    return 0\n"
    assert _quick(twice, twice.replace("return x + 1", "return x + 5")) is None


def test_comments_between_statements_change_nothing() -> None:
    edited = BASE.replace("LIMIT = 10\n\n", "LIMIT = 10\n# a note\n", 1)
    found = _quick(BASE, edited)
    assert found is not None
    assert found[2] == ()


def test_large_module_body_edits_go_live_through_the_quick_path(tmp_path: Path) -> None:
    body = "    total = x\n    for k in range(3):\n        total += k * {i}\n    return total\n"
    functions = "".join(f"\n\ndef f{i}(x):\n" + body.format(i=i) for i in range(400))
    path = tmp_path / "bigmod.py"
    path.write_text("import os\n" + functions, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    with Reloader([tmp_path], packages=()) as reloader:
        import bigmod  # type: ignore[import-not-found]

        old_f200 = bigmod.f200
        reloader.graph.warm_large(lines=100)
        for value in (7, 8, 9):
            source = path.read_text(encoding="utf-8")
            target = "total += k * 200\n" if value == 7 else f"total += k * {value - 1} + 200\n"
            path.write_text(
                source.replace(target, f"total += k * {value} + 200\n"), encoding="utf-8"
            )
            result = reloader.apply([path])
            assert result.outcome is Outcome.APPLIED, result
            assert result.patched == ("bigmod",)
            assert result.functions == 1
            assert old_f200(0) == sum(k * value + 200 for k in range(3))
        record = reloader.graph.records["bigmod"]
        full = compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
        assert record.code == full  # the quick path's code is what a full compile makes
        # A line added (everything below moves): still the quick path, one function changed.
        source = path.read_text(encoding="utf-8")
        moved = source.replace("    total = x\n", "    total = x\n    total += 0\n", 1)
        path.write_text(moved, encoding="utf-8")
        result = reloader.apply([path])
        assert result.outcome is Outcome.APPLIED, result
        assert result.functions == 1  # the others only moved
        assert bigmod.f0(1) == 1
        full = compile(moved, str(path), "exec", dont_inherit=True)
        assert record.code.co_consts == full.co_consts
        assert old_f200.__code__ == _const(full, "f200")  # its new line numbers are live


def _const(code: types.CodeType, name: str) -> types.CodeType:
    return next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name)


MOVING = textwrap.dedent(
    """\
    import sys

    from dep import LIMIT

    def make():
        def inner():
            return "inner-1"
        return inner


    HELD = {"inner": None}  # filled by the test: a closure nothing else reaches
    """
) + "".join(
    f"\n\ndef f{i}(x):\n    total = x\n    return total + {i}\n" for i in range(150)
) + textwrap.dedent(
    """\


    def boom():
        raise ValueError("boom")


    def scaled(x, factor=2):
        return x * factor


    AT_IMPORT = (LIMIT, sys._getframe().f_lineno)
    """
)


def test_moved_module_runs_its_fresh_line_table_and_keeps_closures(tmp_path: Path) -> None:
    """After an edit moved its statements, a re-execution runs what a fresh start runs."""
    (tmp_path / "dep.py").write_text("LIMIT = 1\n", encoding="utf-8")
    path = tmp_path / "moving.py"
    path.write_text(MOVING, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        with Reloader([tmp_path], packages=()) as reloader:
            import moving  # type: ignore[import-not-found]

            held = moving.make()  # made at run time: only the heap reaches it
            reloader.graph.warm_large(lines=100)
            # 1. lines added at the top of a body: everything below moves
            source = MOVING.replace("    total = x\n", "    total = x\n    total += 0\n\n", 1)
            path.write_text(source, encoding="utf-8")
            result = reloader.apply([path])
            assert result.outcome is Outcome.APPLIED, result
            assert result.reexecuted == ()
            assert result.functions == 1
            assert reloader.graph.records["moving"].stale_lines
            with pytest.raises(ValueError, match="boom") as caught:
                moving.boom()
            fresh = source.splitlines().index('    raise ValueError("boom")') + 1
            assert caught.traceback[-1].lineno + 1 == fresh  # pytest's lineno is 0-based
            # 2. a moved function's default changes (a full compile against the moved tree)
            source = source.replace("factor=2", "factor=3")
            path.write_text(source, encoding="utf-8")
            result = reloader.apply([path])
            assert result.outcome is Outcome.APPLIED, result
            assert result.reexecuted == ()
            assert moving.scaled(1) == 3
            # 3. the closure made before the move still takes a real edit of its code
            source = source.replace('"inner-1"', '"inner-2"')
            path.write_text(source, encoding="utf-8")
            assert reloader.apply([path]).outcome is Outcome.APPLIED
            assert held() == "inner-2"
            # 4. a dependency changes a name it uses at import: it runs again, fully compiled
            (tmp_path / "dep.py").write_text("LIMIT = 2\n", encoding="utf-8")
            result = reloader.apply([tmp_path / "dep.py"])
            assert result.outcome is Outcome.APPLIED, result
            assert "moving" in result.reexecuted
            line = source.splitlines().index("AT_IMPORT = (LIMIT, sys._getframe().f_lineno)") + 1
            at_import = moving.AT_IMPORT
            assert at_import == (2, line)
            record = reloader.graph.records["moving"]
            assert not record.stale_lines
            assert record.code == compile(source, str(path), "exec", dont_inherit=True)
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("moving", "dep"):
            sys.modules.pop(name, None)


CLASSY = textwrap.dedent(
    """\
    def helper():
        return 1


    @staticmethod
    def _unused():
        pass


    class Outer:
        \"\"\"A class below the edit.\"\"\"

        def method(self):
            return "m"

        class Inner:
            value = 1


    @dataclass_like
    class Decorated:
        x = 1
    """
)


@pytest.mark.parametrize("also", ["nothing", "a body"])
def test_moved_classes_give_their_source_where_it_now_is(tmp_path: Path, also: str) -> None:
    """A class moved by lines added above it (alone: unchanged; with a real edit: applied)
    gives ``inspect.getsource`` its text where it now is, as a fresh start does (3.13 reads
    ``__firstlineno__``, which only the class's first line sets; earlier versions search
    the file by name)."""
    import inspect

    prelude = "def dataclass_like(cls):\n    return cls\n\n\n"
    path = tmp_path / "classy.py"
    path.write_text(prelude + CLASSY, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        with Reloader([tmp_path], packages=()) as reloader:
            import classy  # type: ignore[import-not-found]

            outer, inner = classy.Outer, classy.Outer.Inner
            source = prelude + "# one\n# two\n\n" + CLASSY
            if also == "a body":
                source = source.replace("return 1", "return 2")
            path.write_text(source, encoding="utf-8")
            result = reloader.apply([path])
            expected = Outcome.UNCHANGED if also == "nothing" else Outcome.APPLIED
            assert result.outcome is expected, result
            assert classy.Outer is outer  # identity kept: moved, not rebuilt
            assert classy.Outer.Inner is inner
            fresh: dict[str, Any] = {"__name__": "classy"}
            exec(compile(source, str(path), "exec", dont_inherit=True), fresh)
            lines = source.splitlines(keepends=True)
            tree = ast.parse(source)
            outer_node = next(n for n in tree.body if getattr(n, "name", "") == "Outer")
            for cls, made, node in (
                (classy.Outer, fresh["Outer"], outer_node),
                (classy.Decorated, fresh["Decorated"],
                 next(n for n in tree.body if getattr(n, "name", "") == "Decorated")),
                (inner, vars(fresh["Outer"])["Inner"],
                 next(n for n in ast.walk(outer_node) if getattr(n, "name", "") == "Inner")),
            ):
                assert isinstance(node, ast.ClassDef)
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                text = "".join(lines[first - 1:node.end_lineno])
                assert inspect.getsource(cls) == textwrap.dedent(text) or (
                    inspect.getsource(cls) == text
                ), cls
                assert cls.__dict__.get("__firstlineno__") == vars(made).get("__firstlineno__")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("classy", None)


def test_derived_code_index_equals_a_fresh_one() -> None:
    from hotmod._engine import patch

    edited = BASE.replace("return 0.0", "return 1.5").replace('return "h1"', 'return "h2"')
    tree, old = _full(BASE)
    assert isinstance(old, types.CodeType)
    found = quick_change(BASE, tree, old, edited, Path("m.py"))
    assert found is not None
    code = found.code
    patch.derive_code_index(code, old, found.statements)
    derived = patch.code_index(code)
    patch._INDEX_CACHE.clear()
    assert derived == patch.code_index(code)


def test_changed_lines_are_found_by_characters() -> None:
    """The shared ends found on characters are a valid line alignment, the new lines exact."""
    rng = random.Random(5)
    pieces = ["a", "b", "\n", "x", "\n\n", "abc\n"]

    def check(old: str, new: str) -> None:
        old_lines = old.split("\n")
        lines, same, tail = _split_change(old, old_lines, new)
        assert lines == new.split("\n")
        assert old_lines[:same] == lines[:same]
        assert tail == 0 or old_lines[-tail:] == lines[-tail:]
        assert same + tail <= min(len(old_lines), len(lines))

    for _ in range(5000):
        old = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        new = list(old)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(new))
            if rng.random() < 0.4 or not new:
                new.insert(at, rng.choice(pieces))
            elif rng.random() < 0.5:
                del new[min(at, len(new) - 1)]
            else:
                new[min(at, len(new) - 1)] = rng.choice(pieces)
        check(old, "".join(new))
    big = "".join(f"line {i}\n" for i in range(3000))  # longer than a block: the block scan
    for _ in range(200):
        start = rng.randint(0, len(big))
        stop = rng.randint(start, min(len(big), start + 50))
        check(big, big[:start] + rng.choice(["", "Z", "\n", "q\nq"]) + big[stop:])
