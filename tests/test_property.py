"""Random edit sequences over a generated project, the oracle checked after each (DESIGN §6).

Hypothesis draws a project of 3-6 modules importing each other as a DAG (module
constants, a constant derived at top level from the imported ones, functions,
``from m import f`` aliases, a class with methods, a nested class and a method
whose decorator comes and goes, a closure the program holds, an instance made
at import and one made at the first probe that lives on), plus a module that
star-imports the first one and an import cycle,, starts it under ``hotmod run``
and applies a random sequence of edits, one save at a time. After each save it
waits for the ``reload`` event and checks: the running program answers like a
fresh ``python main.py`` on the sources last applied; body-only edits
re-executed no module; broken saves (syntax error, exception at import) failed
and left the previous version running, and the next good save applied.

``HOTMOD_PROPERTY_EDITS`` sets the number of edits of the quick run (default
200, a fixed seed so CI is reproducible); the ``slow`` variant runs 2000 edits
with a random seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from oracle import DEFAULT_MAIN, HotProgram, json_diff, snapshot_sources, write_files

STEPS_PER_EXAMPLE = 20
VALUES = st.integers(min_value=0, max_value=999)


@dataclass
class ModSpec:
    """One generated module; :meth:`render` writes its source."""

    index: int
    deps: list[int]
    k: int
    f0: int
    method: int
    extras: dict[int, int] = field(default_factory=dict)  # x_<id>() -> value
    extra_methods: dict[int, int] = field(default_factory=dict)  # C.mx_<id>() -> value
    inner: int = 0  # C.Inner.v(): a nested class
    closure: int = 0  # make()(): a closure the program holds
    decorated: bool = False  # C.dm wrapped by a decorator (added and removed)

    @property
    def name(self) -> str:
        return f"m{self.index}"

    def render(self, *, trailer: str = "") -> str:
        lines: list[str] = []
        for j in self.deps:
            lines += [f"import m{j}", f"from m{j} import f_0 as m{j}_f_0"]
        derived = " + ".join(["K", *(f"m{j}.K" for j in self.deps)])
        calls = ", ".join(
            ["f_0()", "K", *(f"m{j}_f_0()" for j in self.deps), *(f"m{j}.K" for j in self.deps)]
        )
        lines += [
            "",
            f"K = {self.k}",
            f"DERIVED = {derived}",
            "",
            "",
            "def f_0():",
            f"    return {self.f0}",
            "",
            "",
            "def g():",
            f"    return [{calls}]",
        ]
        for ident, value in sorted(self.extras.items()):
            lines += ["", "", f"def x_{ident}():", f"    return {value}"]
        lines += [
            "",
            "",
            "def make():",
            "    def handler():",
            f"        return {self.closure}",
            "    return handler",
            "",
            "",
            "def deco(f):",
            "    def wrapper(self):",
            '        return ["deco", f(self)]',
            "    return wrapper",
            "",
            "",
            "class Base:",
            "    def base(self):",
            f'        return "base-{self.index}"',
            "",
            "",
            "class C(Base):",
            "    class Inner:",
            "        def v(self):",
            f"            return {self.inner}",
            "",
            "    def m(self):",
            f"        return [{self.method}, super().base()]",
            "",
            *(["    @deco"] if self.decorated else []),
            "    def dm(self):",
            f"        return {self.index}",
        ]
        for ident, value in sorted(self.extra_methods.items()):
            lines += ["", f"    def mx_{ident}(self):", f"        return {value}"]
        lines += ["", "", "INST = C()", ""]
        if trailer:
            lines += ["", trailer, ""]
        return "\n".join(lines)


def render_app(n: int) -> str:
    names = [f"m{i}" for i in range(n)]
    imports = "\n".join(f"import {m}\nfrom {m} import f_0 as alias_{m}" for m in names)
    aliases = ", ".join(f'"{m}": alias_{m}' for m in names)
    return f"""\
import sys

import cyca
import holder
import star
{imports}

MODULES = {names!r}
ALIASES = {{{aliases}}}


def methods(obj, cls):
    return {{
        n: getattr(obj, n)() for n in sorted(vars(cls)) if n in ("m", "dm") or n.startswith("mx_")
    }}


def lines(mod):
    # where each function and method starts: an edit above moves them (tracebacks)
    found = {{n: f.__code__.co_firstlineno for n, f in vars(mod).items() if callable(f)
             and hasattr(f, "__code__") and getattr(f, "__module__", None) == mod.__name__}}
    for n, f in vars(mod.C).items():
        if hasattr(f, "__code__"):
            found["C." + n] = f.__code__.co_firstlineno
    return found


def probe():
    out = {{}}
    for name in MODULES:
        mod = sys.modules[name]
        live = holder.LIVE.setdefault(name, mod.C())  # made on the first probe, lives on
        inner = holder.LIVE.setdefault(name + ".Inner", mod.C.Inner())
        held = holder.LIVE.setdefault(name + ".handler", mod.make())  # a closure made once
        out[name] = {{
            "K": mod.K,
            "DERIVED": mod.DERIVED,
            "g": mod.g(),
            "alias": ALIASES[name](),
            "funcs": {{n: getattr(mod, n)() for n in sorted(vars(mod)) if n[:2] in ("f_", "x_")}},
            "inst": methods(mod.INST, mod.C),
            "live": methods(live, mod.C),
            "live-isinstance": isinstance(live, mod.C),
            "inst-isinstance": isinstance(mod.INST, mod.C),
            "inner": [inner.v(), isinstance(inner, mod.C.Inner)],
            "closure": held(),
            "lines": lines(mod),
        }}
    out["star"] = {{n: getattr(star, n)() for n in sorted(vars(star)) if n[:2] in ("f_", "x_")}}
    out["cycle"] = [cyca.ONE, cyca.TWO]
    return out
"""


def cycle_b(value: int) -> str:
    return f"from cyca import ONE\n\nTWO = ONE + {value}\n"


CYCLE_START = 0  # cycb.py's value at start
CYCLE_A = "ONE = 1\nfrom cycb import TWO  # noqa: E402\n"


def total_edits(default: int) -> int:
    return int(os.environ.get("HOTMOD_PROPERTY_EDITS", default))


class Session:
    """One generated project running under hotmod, and the edits applied to it."""

    def __init__(self, prog: HotProgram, mods: list[ModSpec], g5: list[str]) -> None:
        self.prog = prog
        self.g5 = g5  # body-only edits that re-executed a module (reported at the end)
        self.mods = mods
        self.applied = snapshot_sources(prog.root)  # the sources of the version running
        self.log: list[str] = []
        self.next_id = 0
        self.edits = 0
        self.cycle = CYCLE_START  # the value cycb.py holds

    def fail(self, message: str) -> AssertionError:
        return self.prog.fail(f"{message}\nsteps:\n  " + "\n  ".join(self.log))

    def save(self, spec: ModSpec, *, trailer: str = "") -> dict[str, Any]:
        self.edits += 1
        self.prog.edit(f"{spec.name}.py", spec.render(trailer=trailer))
        return self.prog.wait_for_reload()

    def check_oracle(self, what: str) -> None:
        hot = self.prog.probe()
        fresh = self.prog.fresh_probe(self.applied)
        if hot != fresh:
            raise self.fail(
                f"oracle mismatch after {what}:\n"
                + "".join(f"  {line}\n" for line in json_diff(hot, fresh))
                + f"  hot:   {json.dumps(hot, sort_keys=True)}\n"
                f"  fresh: {json.dumps(fresh, sort_keys=True)}"
            )

    def expect(self, event: dict[str, Any], outcome: str, what: str) -> None:
        if event.get("outcome") != outcome:
            raise self.fail(f"{what}: expected {outcome}, got {json.dumps(event, sort_keys=True)}")
        if outcome == "applied":
            self.applied = snapshot_sources(self.prog.root)

    def step(self, data: st.DataObject) -> None:
        spec = data.draw(st.sampled_from(self.mods), label="module")
        kinds = ["body", "method", "const", "add-func", "add-method", "syntax", "raise",
                 "inner", "closure", "decorate", "cycle"]
        if spec.extras:
            kinds += ["extra-body", "remove-func"]
        if spec.extra_methods:
            kinds.append("remove-method")
        kind = data.draw(st.sampled_from(kinds), label="edit")
        value = data.draw(VALUES, label="value")
        what = f"{kind} in {spec.name} ({value})"
        self.log.append(what)
        body_only = False
        if kind == "body":
            spec.f0 = value if value != spec.f0 else value + 1000
            body_only = True
        elif kind == "method":
            spec.method = value if value != spec.method else value + 1000
            body_only = True
        elif kind == "extra-body":
            ident = data.draw(st.sampled_from(sorted(spec.extras)), label="function")
            spec.extras[ident] = value if value != spec.extras[ident] else value + 1000
            body_only = True
        elif kind == "const":
            spec.k = value if value != spec.k else value + 1000
        elif kind == "inner":
            spec.inner = value if value != spec.inner else value + 1000
            body_only = True
        elif kind == "closure":
            spec.closure = value if value != spec.closure else value + 1000
            body_only = True
        elif kind == "decorate":
            spec.decorated = not spec.decorated
        elif kind == "cycle":  # an import cycle: re-executed in a fresh start's order
            self.edits += 1
            self.cycle = value if value != self.cycle else value + 1000  # never the same text
            self.prog.edit("cycb.py", cycle_b(self.cycle))
            event = self.prog.wait_for_reload()
            self.expect(event, "applied", what)
            self.check_oracle(what)
            return
        elif kind == "add-func":
            spec.extras[self.next_id] = value
            self.next_id += 1
        elif kind == "remove-func":
            del spec.extras[data.draw(st.sampled_from(sorted(spec.extras)), label="function")]
        elif kind == "add-method":
            spec.extra_methods[self.next_id] = value
            self.next_id += 1
        elif kind == "remove-method":
            ident = data.draw(st.sampled_from(sorted(spec.extra_methods)), label="method")
            del spec.extra_methods[ident]
        else:  # a broken save, then a good one
            trailer = "def broken(:" if kind == "syntax" else 'raise RuntimeError("generated")'
            event = self.save(spec, trailer=trailer)
            self.expect(event, "failed", what)
            self.check_oracle(f"{what}: the failed save")
            spec.f0 = value if value != spec.f0 else value + 1000
            self.log.append(f"fix {spec.name}, f_0 -> {spec.f0}")
        event = self.save(spec)
        self.expect(event, "applied", what)
        self.check_oracle(what)
        if body_only and event.get("reexecuted") != []:
            self.g5.append(f"{what}: reexecuted {event.get('reexecuted')}")


def run_property(
    total: int, tmp_path_factory: pytest.TempPathFactory, *, derandomize: bool
) -> None:
    examples = max(1, total // STEPS_PER_EXAMPLE)
    counted: list[int] = []
    g5: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every run costs a process
        suppress_health_check=list(HealthCheck),
        derandomize=derandomize,
    )
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        n = data.draw(st.integers(min_value=3, max_value=6), label="modules")
        mods = []
        for i in range(n):
            deps = data.draw(
                st.lists(st.integers(0, i - 1), unique=True, max_size=2) if i else st.just([]),
                label=f"m{i} imports",
            )
            mods.append(
                ModSpec(i, sorted(deps), data.draw(VALUES), data.draw(VALUES), data.draw(VALUES))
            )
        root = tmp_path_factory.mktemp("property")
        project = root / "project"
        files = {f"{m.name}.py": m.render() for m in mods}
        files["holder.py"] = "LIVE = {}\n"
        files["star.py"] = "from m0 import *\n"
        files["cyca.py"] = CYCLE_A
        files["cycb.py"] = cycle_b(CYCLE_START)
        files["app.py"] = render_app(n)
        files["main.py"] = DEFAULT_MAIN
        write_files(project, files)
        prog = HotProgram(project, scratch=root / "scratch", name="property")
        prog.start()
        session = Session(prog, mods, g5)
        try:
            session.check_oracle("start")
            while session.edits < STEPS_PER_EXAMPLE:
                session.step(data)
        finally:
            counted.append(session.edits)
            prog.stop()

    example()
    assert sum(counted) >= total, f"only {sum(counted)} edits ran, wanted {total}"
    # G5, checked once the oracle held over the whole run
    assert not g5, f"{len(g5)} body-only edits re-executed modules:\n" + "\n".join(g5[:20])


@pytest.mark.timeout(900)
def test_random_edit_sequences_match_a_fresh_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_property(total_edits(200), tmp_path_factory, derandomize=True)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_random_edit_sequences_long(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_property(total_edits(2000), tmp_path_factory, derandomize=False)


def test_generated_sources_compile(tmp_path: Path) -> None:
    """The generator itself: a fresh run of a generated project answers the probe."""
    mods = [ModSpec(0, [], 1, 2, 3, {5: 6}, {7: 8}), ModSpec(1, [0], 4, 5, 6)]
    files = {f"{m.name}.py": m.render() for m in mods}
    files["holder.py"] = "LIVE = {}\n"
    files["star.py"] = "from m0 import *\n"
    files["cyca.py"] = CYCLE_A
    files["cycb.py"] = cycle_b(CYCLE_START)
    files["app.py"] = render_app(2)
    write_files(tmp_path / "p", files)
    for text in files.values():
        compile(text, "<generated>", "exec")
    write_files(tmp_path / "p", {"main.py": DEFAULT_MAIN})
    prog = HotProgram(tmp_path / "p", scratch=tmp_path / "s", name="gen")
    answer = prog.fresh_probe()
    assert answer["m1"]["g"] == [5, 4, 2, 1]
    assert answer["m0"]["funcs"] == {"f_0": 2, "x_5": 6}
    assert answer["star"] == {"f_0": 2, "x_5": 6}
    assert answer["cycle"] == [1, 1]
    assert answer["m0"]["live"] == {"dm": 0, "m": [3, "base-0"], "mx_7": 8}
