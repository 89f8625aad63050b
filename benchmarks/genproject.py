"""Generate a synthetic project for the hotmod benchmarks.

The project has ``modules`` Python files in total (every ``.py`` counts, package
``__init__`` files included)::

    main.py              the entry script: ~1 s of deterministic start-up work (an
                         ORM / pandas stand-in), imports the tree, loops on probe()
    app/__init__.py
    app/probe.py         probe(): what the running program observes
    app/leaf_body.py     value(): the function whose *body* the benchmark edits
    app/leaf_const.py    CONST: the module constant the benchmark edits
    app/user1..5.py      `from app.leaf_const import CONST; DERIVED = CONST + i`
    app/mNNNN.py         filler modules (the rest): a tree, module k imports modules
                         4k+1..4k+4; past 50 of them they are grouped in packages
                         app/gNN/ of 50 modules each (each __init__ counts too)

Optional, for the scenarios that need them (each counts as one of the modules):

    app/factory.py       ``--closures N``: make() returns a closure ``handler``;
                         probe.py holds N handlers made from it at import time;
                         sibling() is make()'s plain top-level neighbour
    app/big.py           ``--big-lines N``: one module of about N lines (functions,
                         dataclasses, classes with methods); ``order_summary()``,
                         near the middle, is the function the benchmark edits

Editing ``value()``'s body is a patch (no module re-executes); editing ``CONST``
re-executes ``leaf_const`` and its five importers (``user1..5``), nothing else:
``probe`` reads ``userN.DERIVED`` through the module object at call time, so it
does not depend on the changed name.

``main.py`` calls ``probe()`` every ~0.2 ms and prints ``"<observed> <time_ns>"``
on stdout each time the observed value changes, so the benchmark measures
save-to-live latency from the program's own point of view.

Usage: ``python benchmarks/genproject.py DIR --modules 100 [--heap-objects N]
[--closures N] [--big-lines N]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _bigmodule import big_source

USERS = 5  # importers of CONST that re-execute when it changes
BRANCHING = 4  # filler module k imports modules 4k+1 .. 4k+4
GROUP_SIZE = 50  # filler modules per package
SPECIAL_FILES = 5 + USERS  # main, app/__init__, probe, leaf_body, leaf_const, users
BODY_MODULE = "app/leaf_body.py"
CONST_MODULE = "app/leaf_const.py"
FACTORY_MODULE = "app/factory.py"
BIG_MODULE = "app/big.py"


@dataclass(frozen=True)
class Project:
    """A generated project and the files the benchmark edits."""

    root: Path
    modules: int
    heap_objects: int
    closures: int = 0  # handlers made from app/factory.py's make(); 0: no factory module
    big_lines: int = 0  # requested size of app/big.py; 0: no big module

    @property
    def main(self) -> Path:
        return self.root / "main.py"

    @property
    def factory_file(self) -> Path:
        return self.root / FACTORY_MODULE

    @property
    def big_file(self) -> Path:
        return self.root / BIG_MODULE

    @property
    def body_file(self) -> Path:
        return self.root / BODY_MODULE

    @property
    def const_file(self) -> Path:
        return self.root / CONST_MODULE


def observed(
    value: int,
    const: int,
    *,
    closure: int | None = None,
    sibling: int | None = None,
    big: int | None = None,
) -> str:
    """What ``probe()`` returns when ``value()`` returns ``value`` and ``CONST == const``.

    A project with a factory module appends ``|c<values>|s<sibling>``, where
    ``<values>`` are the distinct values its handlers return (sorted, comma
    separated: ``c3`` once all of them run the new code); one with a big module
    appends ``|b<big>``.
    """
    derived = ",".join(str(const + i) for i in range(1, USERS + 1))
    text = f"{value}|{derived}"
    if closure is not None:
        text += f"|c{closure}|s{sibling}"
    if big is not None:
        text += f"|b{big}"
    return text


def _pad(edit: int) -> str:
    # Consecutive edits differ in file size. A restarted CPython trusts a .pyc whose
    # source has the same size and mtime second, which would hide the edit from the
    # restart baseline (hotmod compiles from source text and does not care).
    return "-" * (edit % 3)


def body_source(value: int, *, edit: int = 0) -> str:
    """Source of ``app/leaf_body.py`` with ``value()`` returning ``value``."""
    return (
        '"""The function whose body the benchmark edits."""\n'
        "\n"
        "\n"
        "def value() -> int:\n"
        f"    return {value}  # edit {edit} {_pad(edit)}\n"
    )


def const_source(const: int, *, edit: int = 0) -> str:
    """Source of ``app/leaf_const.py`` with ``CONST = const``."""
    return (
        '"""The module constant the benchmark edits: its importers re-execute."""\n'
        "\n"
        f"CONST = {const}  # edit {edit} {_pad(edit)}\n"
    )


def factory_source(closure: int, sibling: int, *, edit: int = 0) -> str:
    """Source of ``app/factory.py``: ``handler`` returns ``closure``, ``sibling()`` ``sibling``."""
    return (
        '"""A factory of closures: the program holds handlers that make() returned."""\n'
        "\n"
        "\n"
        "def make():\n"
        "    def handler() -> int:\n"
        f"        return {closure}  # edit {edit} {_pad(edit)}\n"
        "\n"
        "    return handler\n"
        "\n"
        "\n"
        "def sibling() -> int:\n"
        f"    return {sibling}\n"
    )


def _user_source(index: int) -> str:
    return (
        f'"""Importer {index} of CONST: uses it at its top level."""\n'
        "\n"
        "from app.leaf_const import CONST\n"
        "\n"
        f"DERIVED = CONST + {index}\n"
        "\n"
        "\n"
        "def describe() -> str:\n"
        f'    return f"user{index}: {{DERIVED}}"\n'
    )


def _probe_source(*, closures: int = 0, big: bool = False) -> str:
    users = ", ".join(f"user{i}" for i in range(1, USERS + 1))
    derived = ", ".join(f"user{i}.DERIVED" for i in range(1, USERS + 1))
    extra_imports = "".join(
        f"from app import {name}\n" for name, on in (("factory", closures), ("big", big)) if on
    )
    # Made at run time, by the first probe() (no import-time code calls make()),
    # and held in a list: no module namespace reaches them, only the heap does.
    handlers = "HANDLERS: list = []\n" if closures else ""
    tail = ""
    if closures:
        tail += (
            "    if not HANDLERS:\n"
            f"        HANDLERS.extend(factory.make() for _ in range({closures}))\n"
            '    seen = ",".join(sorted({str(h()) for h in HANDLERS}, key=int))\n'
            '    text += f"|c{seen}|s{factory.sibling()}"\n'
        )
    if big:
        tail += '    text += f"|b{big.order_summary()}"\n'
    return (
        '"""What the running program observes."""\n'
        "\n"
        f"from app import leaf_body, {users}\n"
        f"{extra_imports}"
        "\n"
        f"{handlers}"
        "\n"
        "\n"
        "def probe() -> str:\n"
        f"    derived = ({derived})\n"
        '    text = f"{leaf_body.value()}|" + ",".join(map(str, derived))\n'
        f"{tail}"
        "    return text\n"
    )


def _main_source(*, heap_objects: int, startup_s: float, tree_root: str | None) -> str:
    tree_import = f"import {tree_root}  # noqa: F401  (the module tree)\n" if tree_root else ""
    return f'''"""Benchmark entry point: heavy start-up, then observe probe() forever."""

import sys
import time

{tree_import}from app.probe import probe

STARTUP_S = {startup_s!r}
HEAP_OBJECTS = {heap_objects}


def _spin(seconds: float) -> int:
    # Stands in for a heavy import (an ORM, pandas, a model): a fixed duration of
    # busy CPU holding the GIL, not a sleep, since real imports compete with
    # hotmod's threads for the interpreter.
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += sum(range(100))
    return n


STARTUP_CHECKSUM = _spin(STARTUP_S)
# Live, gc-tracked objects (lists are always tracked; tuples of ints would be
# untracked by the first collection), so a reloader that walks the heap pays for it.
HEAP = [[] for _ in range(HEAP_OBJECTS)]


def main() -> None:
    last = None
    out = sys.stdout
    try:
        while True:
            seen = probe()
            if seen != last:
                out.write(f"{{seen}} {{time.time_ns()}}\\n")
                out.flush()
                last = seen
            time.sleep(0.0002)
    except (KeyboardInterrupt, BrokenPipeError):
        pass


if __name__ == "__main__":
    main()
'''


@dataclass(frozen=True)
class _Layout:
    """Where the filler modules go: flat in ``app/`` or in packages ``app/gNN/``."""

    fillers: int

    @property
    def groups(self) -> int:
        return 0 if self.fillers <= GROUP_SIZE else -(-self.fillers // GROUP_SIZE)

    def dotted(self, k: int) -> str:
        if self.groups:
            return f"app.g{k // GROUP_SIZE:02d}.m{k:04d}"
        return f"app.m{k:04d}"

    def path(self, k: int) -> str:
        return self.dotted(k).replace(".", "/") + ".py"


def _layout(modules: int, extra: int = 0) -> _Layout:
    budget = modules - SPECIAL_FILES - extra
    if budget < 0:
        raise ValueError(f"need at least {SPECIAL_FILES} modules, got {modules}")
    layout = _Layout(budget)
    # Every package __init__ counts as a module: shrink the fillers until it adds up.
    while layout.fillers + layout.groups > budget:
        layout = _Layout(layout.fillers - 1)
    return layout


def _filler_source(k: int, layout: _Layout) -> str:
    first = BRANCHING * k + 1
    children = [c for c in range(first, first + BRANCHING) if c < layout.fillers]
    imports = "".join(f"import {layout.dotted(c)}\n" for c in children)
    calls = " + ".join(f"{layout.dotted(c)}.compute(x)" for c in children) or "0"
    uses_leaf = "from app.leaf_body import value\n" if k % 10 == 0 else ""
    leaf_call = " + value()" if uses_leaf else ""
    return f'''"""Generated filler module {k}."""

from __future__ import annotations

import dataclasses

{imports}{uses_leaf}
NAME = "m{k:04d}"
WEIGHTS = tuple(range(16))


@dataclasses.dataclass
class Record{k}:
    key: str
    count: int = 0

    def bump(self, by: int = 1) -> int:
        self.count += by
        return self.count

    def describe(self) -> str:
        return f"{{self.key}}:{{self.count}}"


def compute(x: int) -> int:
    total = 0
    for w in WEIGHTS:
        total += (x * w) % 7
    return total{leaf_call}


def children_total(x: int) -> int:
    return compute(x) + {calls}
'''


def _files(
    modules: int, heap_objects: int, startup_s: float, closures: int = 0, big_lines: int = 0
) -> dict[str, str]:
    layout = _layout(modules, extra=bool(closures) + bool(big_lines))
    tree_root = layout.dotted(0) if layout.fillers else None
    files = {
        "main.py": _main_source(
            heap_objects=heap_objects, startup_s=startup_s, tree_root=tree_root
        ),
        "app/__init__.py": '"""Benchmark application package."""\n',
        "app/probe.py": _probe_source(closures=closures, big=bool(big_lines)),
        BODY_MODULE: body_source(0),
        CONST_MODULE: const_source(0),
    }
    if closures:
        files[FACTORY_MODULE] = factory_source(0, 0)
    if big_lines:
        files[BIG_MODULE] = big_source(big_lines, 0)
    for i in range(1, USERS + 1):
        files[f"app/user{i}.py"] = _user_source(i)
    for group in range(layout.groups):
        files[f"app/g{group:02d}/__init__.py"] = f'"""Filler package {group}."""\n'
    for k in range(layout.fillers):
        files[layout.path(k)] = _filler_source(k, layout)
    return files


def generate(
    root: Path,
    *,
    modules: int,
    heap_objects: int = 0,
    startup_s: float = 1.0,
    closures: int = 0,
    big_lines: int = 0,
) -> Project:
    """Write the project under ``root`` (created if missing) and return it.

    ``modules`` is the total number of ``.py`` files (at least 10). ``heap_objects``
    gc-tracked lists are allocated by ``main.py`` before its loop (default 0).
    ``startup_s`` is the duration of ``heavy.py``'s import-time work (default 1.0).
    ``closures`` > 0 adds ``app/factory.py`` and that many handlers made from it;
    ``big_lines`` > 0 adds ``app/big.py`` of about that many lines.
    """
    for rel, text in _files(modules, heap_objects, startup_s, closures, big_lines).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Project(
        root=root,
        modules=modules,
        heap_objects=heap_objects,
        closures=closures,
        big_lines=big_lines,
    )


def save(path: Path, text: str, *, mode: str = "rename") -> None:
    """Save ``text`` to ``path`` the way an editor would.

    ``rename``: write a sibling temporary file, then ``os.replace`` it (atomic;
    JetBrains "safe write", vim's default). ``inplace``: truncate and write
    (VS Code).
    """
    if mode == "inplace":
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    tmp = path.with_name(f".{path.name}.bench-tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def reset(project: Project) -> None:
    """Restore the edited files to their generated state."""
    save(project.body_file, body_source(0))
    save(project.const_file, const_source(0))
    if project.closures:
        save(project.factory_file, factory_source(0, 0))
    if project.big_lines:
        save(project.big_file, big_source(project.big_lines, 0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("root", type=Path)
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--heap-objects", type=int, default=0)
    parser.add_argument("--startup-s", type=float, default=1.0)
    parser.add_argument("--closures", type=int, default=0)
    parser.add_argument("--big-lines", type=int, default=0)
    args = parser.parse_args(argv)
    project = generate(
        args.root,
        modules=args.modules,
        heap_objects=args.heap_objects,
        startup_s=args.startup_s,
        closures=args.closures,
        big_lines=args.big_lines,
    )
    count = sum(1 for _ in project.root.rglob("*.py"))
    print(f"generated {count} modules in {project.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
