"""Issue 5: edits of real-world Python code the engine gets wrong (plain programs).

One test per failure of the issue (numbered as there, §1.N). Each runs a real
program under ``hotmod run``, edits a file on disk and checks the contract of
DESIGN §2-§3: where it promises an in-place apply, the reload must be
``applied`` (never ``restart`` or ``failed``), and then the program must agree
with a fresh process on the new sources, and state that lives on (instances,
runtime-filled dicts) must run the new code.

Framework code (Flask, FastAPI, Starlette, Pydantic, Jinja, click) is in
``test_frameworks.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from oracle import HotProgramFactory, code

pytestmark = pytest.mark.timeout(120)



HOLDER = """
    LIVE = {}
"""


def _mods(event: dict[str, Any], key: str) -> list[str]:
    value = event.get(key, [])
    assert isinstance(value, list)
    return [str(v) for v in value]


def _notes(event: dict[str, Any]) -> list[str]:
    return _mods(event, "notes")


def _version(event: dict[str, Any]) -> int:
    value = event.get("version")
    assert isinstance(value, int), event
    return value


# --------------------------------------------------------------------------------------
# §1.2 closures made at run time

CLOSURE_LIB = """
    def make():
        def handler():
            return 1

        return handler


    H = make()
"""

CLOSURE_APP = """
    import holder
    import lib

    H_APP = lib.make()


    def probe():
        held = holder.LIVE.setdefault("handler", lib.make())  # made on the first probe
        return {
            "lib.H": lib.H(),
            "app.H_APP": H_APP(),
            "runtime": held(),
            "new": lib.make()(),
        }
"""


def test_closures_held_at_module_level_run_new_code(hot_program: HotProgramFactory) -> None:
    """``H = make()`` at the top level of the module and of an importer."""
    app = code(CLOSURE_APP).replace('        "runtime": held(),\n', "")
    prog = hot_program({"holder.py": HOLDER, "lib.py": CLOSURE_LIB, "app.py": app})
    assert prog.probe() == {"lib.H": 1, "app.H_APP": 1, "new": 1}
    prog.replace("lib.py", "return 1", "return 2")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"lib.H": 2, "app.H_APP": 2, "new": 2}


# issue 5 §1.2: closure held in a runtime dict keeps old code (fixed)
def test_closure_held_in_runtime_dict_runs_new_code(hot_program: HotProgramFactory) -> None:
    """A closure made on the first probe and held only in a runtime dict."""
    prog = hot_program({"holder.py": HOLDER, "lib.py": CLOSURE_LIB, "app.py": CLOSURE_APP})
    assert prog.probe()["runtime"] == 1
    prog.replace("lib.py", "return 1", "return 2")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["runtime"] == 2


# --------------------------------------------------------------------------------------
# §1.3 a decorator added to / removed from a method

METHOD_DECO_HELPERS = """
    import functools


    def loud(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return "LOUD " + str(fn(*args, **kwargs))

        return wrapper
"""

# ``m`` reports what it receives, so each decorator gives a different answer:
# plain method ["K"], classmethod ["type"], staticmethod [], deco.loud "LOUD [...]",
# property: reading ``obj.m`` gives the list itself (not a bound method).
METHOD_DECO_APP = """
    import deco
    import holder


    class K:
        DECORATOR
        def m(*args):
            return [type(a).__name__ for a in args]

        def other(self):
            return "other"


    def describe(obj):
        value = obj.m
        return {
            "m": value if not callable(value) else value(),
            "other": obj.other(),
            "isinstance": isinstance(obj, K),
        }


    def probe():
        old = holder.LIVE.setdefault("k", K())  # made on the first probe, lives on
        return {"old": describe(old), "new": describe(K())}
"""

DECORATORS = {
    "plain": "@deco.loud",
    "classmethod": "@classmethod",
    "staticmethod": "@staticmethod",
    "property": "@property",
}


def _method_deco_app(decorator: str | None) -> str:
    source = code(METHOD_DECO_APP)
    if decorator is None:
        return source.replace("    DECORATOR\n", "")
    return source.replace("DECORATOR", decorator)


def _kinds(what: str) -> list[Any]:
    """Every decorator kind. Only the plain decorator is lost today: classmethod,
    staticmethod and property added or removed already apply like a fresh start."""
    return list(DECORATORS)


@pytest.mark.parametrize("kind", _kinds("plain decorator added to a method dropped"))
def test_decorator_added_to_method(hot_program: HotProgramFactory, kind: str) -> None:
    prog = hot_program(
        {"holder.py": HOLDER, "deco.py": METHOD_DECO_HELPERS, "app.py": _method_deco_app(None)}
    )
    assert prog.probe()["old"]["m"] == ["K"]
    prog.edit("app.py", _method_deco_app(DECORATORS[kind]))
    prog.reload_and_expect("applied")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    if hot["new"] != fresh["new"] or hot["old"] != fresh["new"]:
        raise prog.fail(f"decorator {kind!r} added: hot {hot} != fresh {fresh}")


@pytest.mark.parametrize("kind", _kinds("plain decorator removed from a method kept"))
def test_decorator_removed_from_method(hot_program: HotProgramFactory, kind: str) -> None:
    prog = hot_program(
        {
            "holder.py": HOLDER,
            "deco.py": METHOD_DECO_HELPERS,
            "app.py": _method_deco_app(DECORATORS[kind]),
        }
    )
    prog.probe()
    prog.edit("app.py", _method_deco_app(None))
    prog.reload_and_expect("applied")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    assert fresh["new"]["m"] == ["K"]
    if hot["new"] != fresh["new"] or hot["old"] != fresh["new"]:
        raise prog.fail(f"decorator {kind!r} removed: hot {hot} != fresh {fresh}")


# --------------------------------------------------------------------------------------
# §1.4 functions behind decorators that return something other than a function

REGISTRY = """
    class Entry:
        def __init__(self, fn):
            self.fn = fn

        def run(self, *args):
            return self.fn(*args)


    class Registry:
        def __init__(self):
            self.entries = {}

        def register(self, fn):
            entry = Entry(fn)
            self.entries[fn.__name__] = entry
            return entry


    class Traced:
        def __init__(self, fn):
            self.fn = fn
            self.calls = 0

        def __call__(self, *args):
            self.calls += 1
            return self.fn(*args)


    REG = Registry()
"""

REGISTERED_APP = """
    import registry
    from registry import REG, Traced


    @REG.register
    def job(x):
        return ["job-1", x]


    @Traced
    def traced(x):
        return ["traced-1", x]


    def probe():
        return {
            "entry": job.run(1),
            "registry": registry.REG.entries["job"].run(2),
            "same-entry": registry.REG.entries["job"] is job,
            "traced": traced(3),
        }
"""


# issue 5 §1.4: function inside a registry object not patched (fixed)
def test_function_behind_registry_object_runs_new_code(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"registry.py": REGISTRY, "app.py": REGISTERED_APP})
    assert prog.probe()["entry"] == ["job-1", 1]
    prog.replace("app.py", '"job-1"', '"job-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["entry"] == ["job-2", 1]
    assert hot["registry"] == ["job-2", 2]


# issue 5 §1.4: function inside a __call__ wrapper not patched (fixed)
def test_function_behind_callable_instance_runs_new_code(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"registry.py": REGISTRY, "app.py": REGISTERED_APP})
    assert prog.probe()["traced"] == ["traced-1", 3]
    prog.replace("app.py", '"traced-1"', '"traced-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["traced"] == ["traced-2", 3]


# --------------------------------------------------------------------------------------
# §1.5 nested classes keep their identity

NESTED = """
    import holder


    class Outer:
        class Inner:
            def method(self):
                return "inner-1"

        def a(self):
            return "a"


    def probe():
        old = holder.LIVE.setdefault("inner", Outer.Inner())  # made on the first probe
        return {
            "isinstance": isinstance(old, Outer.Inner),
            "old": old.method(),
            "new": Outer.Inner().method(),
            "outer": sorted(n for n in vars(Outer) if not n.startswith("__")),
        }
"""


# issue 5 §1.5: nested class replaced when outer body re-runs (fixed)
def test_nested_class_keeps_identity_when_outer_class_changes(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": NESTED})
    assert prog.probe()["isinstance"] is True
    # a method added to the outer class: its body runs again
    added = '        return "a"\n\n    def b(self):\n        return "b"\n'
    prog.replace("app.py", '        return "a"\n', added)
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after a method was added to Outer")
    assert hot["isinstance"] is True, "an Inner made before the edit must still be an Outer.Inner"
    # then a body edit of the nested class's method reaches the old instance
    prog.replace("app.py", '"inner-1"', '"inner-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after Inner.method's body changed")
    assert hot["old"] == "inner-2"


# --------------------------------------------------------------------------------------
# §1.6 a value computed at import time by a function whose body changes

COMPUTE_LIB = """
    def compute():
        return 1
"""

COMPUTE_B = """
    import lib

    X = lib.compute()
"""

COMPUTE_APP = """
    import b
    import lib


    def probe():
        return {"b.X": b.X, "compute": lib.compute()}
"""


# issue 5 §1.6: importer re-executed before the patch commits (fixed)
def test_value_computed_at_import_follows_body_edit(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": COMPUTE_LIB, "b.py": COMPUTE_B, "app.py": COMPUTE_APP})
    prog.replace("lib.py", "return 1", "return 2")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"b.X": 2, "compute": 2}


# --------------------------------------------------------------------------------------
# §1.7 import cycles

CYCLE_A = """
    one = 1
    from b import two
"""

CYCLE_B = """
    from a import one

    two = 2
"""

CYCLE_APP = """
    import a
    import b


    def probe():
        return {"a.one": a.one, "a.two": a.two, "b.one": b.one, "b.two": b.two}
"""


# issue 5 §1.7: cycle re-exec: 'partially initialized module' (fixed)
def test_import_cycle_reexecutes(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"a.py": CYCLE_A, "b.py": CYCLE_B, "app.py": CYCLE_APP})
    prog.assert_matches_fresh(what="before")
    prog.replace("b.py", "two = 2", "two = 22")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["a.two"] == 22


# --------------------------------------------------------------------------------------
# §1.8 names added to a module others import from

STAR_INIT = """
    from .sub import *
"""

STAR_SUB = """
    def old_function():
        return "old"
"""

STAR_APP = """
    import pkg


    def probe():
        return {
            "public": sorted(n for n in vars(pkg) if not n.startswith("_")),
            "new_function": pkg.new_function() if hasattr(pkg, "new_function") else None,
            "hidden": hasattr(pkg, "hidden"),
        }
"""

NEW_FUNCTION = '\n\ndef new_function():\n    return "new"\n'


# issue 5 §1.8: name added to a star-imported module (fixed)
def test_name_added_to_star_imported_module(hot_program: HotProgramFactory) -> None:
    prog = hot_program(
        {"pkg/__init__.py": STAR_INIT, "pkg/sub.py": STAR_SUB, "app.py": STAR_APP}
    )
    prog.edit("pkg/sub.py", code(STAR_SUB) + NEW_FUNCTION)
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["new_function"] == "new"


# issue 5 §1.8: name added to __all__ of a star-imported module (fixed)
def test_star_import_honours_all(hot_program: HotProgramFactory) -> None:
    sub = code(STAR_SUB) + '\n\n__all__ = ["old_function"]\n'
    prog = hot_program({"pkg/__init__.py": STAR_INIT, "pkg/sub.py": sub, "app.py": STAR_APP})
    # a name added but not in __all__: not exported, as in a fresh start
    prog.edit("pkg/sub.py", sub + '\n\ndef hidden():\n    return "hidden"\n')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="a name added outside __all__")
    assert hot["hidden"] is False
    # now exported: added to __all__ together with a new function
    exported = (
        prog.read("pkg/sub.py").replace('["old_function"]', '["old_function", "new_function"]')
        + NEW_FUNCTION
    )
    prog.edit("pkg/sub.py", exported)
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="a name added to __all__")
    assert hot["new_function"] == "new"
    assert hot["hidden"] is False


def test_from_import_of_a_name_added_in_the_same_save(hot_program: HotProgramFactory) -> None:
    lib = """
        def f():
            return "f"
    """
    app = """
        from lib import f


        def probe():
            return {"f": f()}
    """
    prog = hot_program({"lib.py": lib, "app.py": app}, debounce_ms=200)
    with prog.together():
        prog.edit("lib.py", code(lib) + '\n\nNEW = "new"\n')
        prog.edit(
            "app.py",
            code(app).replace("from lib import f", "from lib import NEW, f").replace(
                '{"f": f()}', '{"f": f(), "NEW": NEW}'
            ),
        )
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"f": "f", "NEW": "new"}


# --------------------------------------------------------------------------------------
# §1.9 module __getattr__ (PEP 562)

GETATTR_LIB = """
    def __getattr__(name):
        if name == "THING":
            return "thing-1"
        raise AttributeError(name)
"""

GETATTR_B = """
    import lib

    CONST = lib.THING
"""

GETATTR_APP = """
    import b
    import lib


    def probe():
        return {"b.CONST": b.CONST, "lib.THING": lib.THING}
"""


# issue 5 §1.9: importer reading through __getattr__ stale (fixed)
def test_module_getattr_change_reaches_import_time_readers(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"lib.py": GETATTR_LIB, "b.py": GETATTR_B, "app.py": GETATTR_APP})
    prog.replace("lib.py", '"thing-1"', '"thing-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"b.CONST": "thing-2", "lib.THING": "thing-2"}


# --------------------------------------------------------------------------------------
# §1.10 the entry script

ENTRY_LIB = """
    LIMIT = 10
"""

ENTRY_MAIN = """
    import json
    import sys

    import lib

    PREFIX = "@@hotmod-probe "
    STATE = {"probes": 0}


    def limit():
        return lib.LIMIT


    def main():
        while True:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "ping":
                print(PREFIX + json.dumps({"ok": "pong"}), flush=True)
            if line.strip() == "probe":
                STATE["probes"] += 1
                answer = {"limit": limit(), "probes": STATE["probes"]}
                print(PREFIX + json.dumps({"ok": answer}, sort_keys=True), flush=True)


    if __name__ == "__main__":
        main()
"""


# issue 5 §1.10: name read only in main's functions restarts (fixed)
def test_entry_script_reading_a_name_at_call_time_is_not_restarted(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"lib.py": ENTRY_LIB, "main.py": ENTRY_MAIN}, main=None)
    assert prog.probe() == {"limit": 10, "probes": 1}
    prog.replace("lib.py", "LIMIT = 10", "LIMIT = 20")
    prog.reload_and_expect("applied")
    hot = prog.probe()
    assert hot == {"limit": 20, "probes": 2}, "the new value, and main's counter survives"
    assert hot["limit"] == prog.fresh_probe()["limit"]
    assert prog.restarts == 0


# issue 5 §1.10: restart reason does not name LIMIT and line (fixed)
def test_entry_script_top_level_use_restarts_naming_name_and_line(
    hot_program: HotProgramFactory,
) -> None:
    main = code(ENTRY_MAIN).replace(
        'STATE = {"probes": 0}\n', 'STATE = {"probes": 0}\nLIMIT_AT_START = lib.LIMIT\n'
    ).replace('"limit": limit(),', '"limit": limit(), "at_start": LIMIT_AT_START,')
    line = next(i for i, t in enumerate(main.splitlines(), 1) if t.startswith("LIMIT_AT_START"))
    prog = hot_program({"lib.py": ENTRY_LIB, "main.py": main}, main=None)
    prog.replace("lib.py", "LIMIT = 10", "LIMIT = 20")
    event = prog.reload_and_expect("restart")
    hot = prog.assert_matches_fresh(what="after the restart")
    assert hot["at_start"] == 20
    reason = str(event.get("reason", ""))
    if "LIMIT" not in reason or not re.search(rf"\b{line}\b", reason):
        raise prog.fail(f"the restart reason must name LIMIT and line {line}: {reason!r}")


# --------------------------------------------------------------------------------------
# §1.12 __init__ gains an attribute

INIT_APP = """
    import holder


    class Account:
        def __init__(self):
            self.balance = 0

        def describe(self):
            return {"balance": self.balance, "extra": getattr(self, "extra", None)}


    def probe():
        old = holder.LIVE.setdefault("account", Account())  # made on the first probe
        return {"old": old.describe(), "new": Account().describe()}
"""

WITH_EXTRA = ("        self.balance = 0\n", "        self.balance = 0\n        self.extra = 5\n")


# issue 5 §1.12: no note names the class and new attribute (fixed)
def test_init_gains_attribute_is_reported(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": INIT_APP})
    prog.probe()
    prog.replace("app.py", *WITH_EXTRA)
    event = prog.reload_and_expect("applied")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    assert hot["new"] == fresh["new"] == {"balance": 0, "extra": 5}
    if not any("Account" in n and "extra" in n for n in _notes(event)):
        raise prog.fail(f"old instances lack Account.extra: a note must say so: {event}")


# issue 5 §1.12: --strict applies instead of restarting (fixed)
def test_init_gains_attribute_restarts_in_strict_mode(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": INIT_APP}, hotmod_args=["--strict"])
    prog.probe()
    prog.replace("app.py", *WITH_EXTRA)
    event = prog.reload_and_expect("restart")
    assert event.get("reason"), event
    assert prog.restarts == 1
    prog.assert_matches_fresh()


# --------------------------------------------------------------------------------------
# §1.13 staging must not leak into the program's other threads

SLOW = """
    import os
    import time

    VERSION = 1

    # Under test, the staged re-execution pauses here until another thread of the
    # program has imported this module (deadline: a blocked import shows up as stale).
    if os.path.exists("pause.marker"):
        with open("staging.flag", "w") as fh:
            fh.write(str(VERSION))
        deadline = time.monotonic() + 4.0
        while not os.path.exists("go.flag") and time.monotonic() < deadline:
            time.sleep(0.01)
        if os.path.exists("raise.marker"):
            raise RuntimeError("the staged version fails")
"""

OBSERVER = """
    import os
    import sys
    import threading
    import time

    LIVE = {}
    SEEN = {}
    DONE = threading.Event()


    def _other_thread():
        deadline = time.monotonic() + 60.0
        while not os.path.exists("staging.flag"):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        import slow  # what the program's other threads get while a batch is staged

        SEEN["same_as_live"] = id(slow) == LIVE["id"]
        SEEN["version"] = getattr(slow, "VERSION", None)
        with open("go.flag", "w") as fh:
            fh.write("go")
        DONE.set()


    def start():
        LIVE["id"] = id(sys.modules["slow"])
        threading.Thread(target=_other_thread, name="other", daemon=True).start()
"""

# app's import-time code does not use slow's names: slow alone is re-executed.
SLOW_APP = """
    import sys

    import observer
    import slow

    observer.start()


    def probe():
        observer.DONE.wait(timeout=15.0)
        live = sys.modules["slow"]
        return {
            "seen": dict(observer.SEEN),
            "live_id_kept": id(live) == observer.LIVE["id"],
            "version": live.VERSION,
        }
"""


# issue 5 §1.13: another thread's import gets the staged module (fixed)
@pytest.mark.parametrize("batch", ["applies", "fails"])
def test_staged_module_not_seen_by_other_threads(
    hot_program: HotProgramFactory, batch: str
) -> None:
    """While slow's new top level runs staged, another thread of the program imports it.

    Synchronised by files: the staged top level writes ``staging.flag`` and waits
    for ``go.flag``, which the other thread writes once its ``import slow``
    returned. It must get the live module (VERSION 1) at once, whether the batch
    then applies or fails. Today that import blocks on the module's import lock
    until the staged top level gives up waiting (4 s), then returns the staged
    module.
    """
    prog = hot_program({"slow.py": SLOW, "observer.py": OBSERVER, "app.py": SLOW_APP})
    (prog.root / "pause.marker").write_text("")
    if batch == "fails":
        (prog.root / "raise.marker").write_text("")
    # Saved by rename: one atomic change (a truncate-then-write save can be seen
    # half-way, as an empty module, which would be a batch of its own).
    prog.save_by_rename("slow.py", prog.read("slow.py").replace("VERSION = 1", "VERSION = 2"))
    event = prog.reload_and_expect("applied" if batch == "applies" else "failed")
    if batch == "applies":
        assert _mods(event, "reexecuted") == ["slow"], event
    hot = prog.probe()
    assert hot["live_id_kept"] is True
    assert hot["version"] == (2 if batch == "applies" else 1)
    if hot["seen"] != {"same_as_live": True, "version": 1}:
        raise prog.fail(
            f"during staging, another thread's `import slow` must get the live module "
            f"(VERSION 1): got {hot['seen']}"
        )


# --------------------------------------------------------------------------------------
# §1.14 dispose hooks run only once nothing can fail any more

DISPOSE_HOLDER = """
    RESOURCES = []


    class Resource:
        def __init__(self, tag):
            self.tag = tag
            self.closed = False
            RESOURCES.append(self)

        def close(self):
            self.closed = True
"""

DISPOSE_RES = """
    import hotmod

    import holder

    hot = hotmod.hot(__name__)
    RESOURCE = holder.Resource("res")
    VALUE = 1


    @hot.dispose
    def _close(data):
        RESOURCE.close()
"""

DISPOSE_SHAPES = """
    class Refuses:
        def __set_name__(self, owner, name):
            raise RuntimeError("refuses to be set on " + owner.__name__)


    class Shape:
        def area(self):
            return 1
"""

DISPOSE_APP = """
    import holder
    import res
    import shapes


    def probe():
        return {
            "value": res.VALUE,
            "closed": [r.closed for r in holder.RESOURCES],
            "current_closed": res.RESOURCE.closed,
            "area": shapes.Shape().area(),
        }
"""


# issue 5 §1.14: dispose ran although the commit then failed (fixed)
def test_dispose_not_run_when_commit_fails(hot_program: HotProgramFactory) -> None:
    prog = hot_program(
        {
            "holder.py": DISPOSE_HOLDER,
            "res.py": DISPOSE_RES,
            "shapes.py": DISPOSE_SHAPES,
            "app.py": DISPOSE_APP,
        },
        debounce_ms=200,
    )
    before = prog.probe()
    assert before == {"value": 1, "closed": [False], "current_closed": False, "area": 1}
    with prog.together():
        # re-executes res (its dispose hook closes the resource) ...
        prog.replace("res.py", "VALUE = 1", "VALUE = 2")
        # ... and patches a class body whose new descriptor fails at commit
        prog.replace("shapes.py", "class Shape:\n", "class Shape:\n    guard = Refuses()\n\n")
    event = prog.reload_and_expect("failed")
    assert "error" in event, event
    assert prog.fresh_run().returncode != 0, "sanity: a fresh start on these sources fails too"
    after = prog.probe()
    # (the staged version made a resource of its own: ``closed`` has two entries)
    if after["value"] != 1 or after["current_closed"] or after["closed"][0]:
        raise prog.fail(f"a failed batch must leave the old version, resource open: {after}")
    assert after["area"] == 1


# --------------------------------------------------------------------------------------
# §1.15 comment-only edits

COMMENTS = """
    def f():
        return 1


    def probe():
        return {"f": f(), "line": f.__code__.co_firstlineno}
"""


# issue 5 §1.15: comment-only edit reported as applied (fixed)
def test_comment_only_edit_is_unchanged(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": COMMENTS})
    prog.replace("app.py", "return 1", "return 2")
    version = _version(prog.reload_and_expect("applied"))
    # a trailing comment on a line, and one at the end: no line moves
    prog.edit("app.py", prog.read("app.py").replace("return 2", "return 2  # two") + "# end\n")
    event = prog.wait_for_reload(skip_unchanged=False)
    prog.expect(event, "unchanged")
    assert _version(event) == version, "nothing was applied: the version must not move"
    assert _mods(event, "patched") == [], event
    assert _mods(event, "reexecuted") == [], event
    prog.assert_matches_fresh()
    # comment lines inserted above every function: they move, nothing else changes
    prog.edit("app.py", "# one\n# two\n\n" + prog.read("app.py"))
    event = prog.wait_for_reload(skip_unchanged=False)
    prog.expect(event, "unchanged")
    assert _version(event) == version, "a comment is not a new version"
    assert prog.probe()["line"] == prog.fresh_probe()["line"], "tracebacks name the new lines"


# --------------------------------------------------------------------------------------
# §1.16 namespace order after a re-exec

ORDER = """
    import sys


    def first():
        return 1


    def last():
        return 3


    def probe():
        module = sys.modules[__name__]
        return {"names": [n for n in vars(module) if not n.startswith("_")]}
"""


# issue 5 §1.16: new names appended at the end of the module (fixed)
def test_namespace_order_after_reexec(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": ORDER})
    prog.replace(
        "app.py", "def last():", "def middle():\n    return 2\n\n\ndef last():"
    )
    event = prog.reload_and_expect("applied")
    assert "app" in _mods(event, "reexecuted"), event
    hot = prog.assert_matches_fresh()
    assert hot["names"] == ["sys", "first", "middle", "last", "probe"]


# --------------------------------------------------------------------------------------
# §1.17 one save patching a package's submodule and re-executing its sibling

PKG_INIT = """
    from . import a, b
"""

PKG_A = """
    def helper():
        return "helper-1"
"""

PKG_B = """
    from . import a

    SUFFIX = "b-1"
    VALUE = a.helper() + "+" + SUFFIX
"""

PKG_APP = """
    import pkg
    from pkg import a, b


    def probe():
        return {"VALUE": b.VALUE, "helper": a.helper(), "pkg.b.VALUE": pkg.b.VALUE}
"""


# issue 5 §1.17: sibling staged against the unpatched helper (fixed)
def test_submodule_body_edit_and_sibling_constant_in_one_save(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program(
        {"pkg/__init__.py": PKG_INIT, "pkg/a.py": PKG_A, "pkg/b.py": PKG_B, "app.py": PKG_APP},
        debounce_ms=200,
    )
    with prog.together():
        prog.replace("pkg/a.py", "helper-1", "helper-2")
        prog.replace("pkg/b.py", '"b-1"', '"b-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["VALUE"] == "helper-2+b-2"


# --------------------------------------------------------------------------------------
# §1.18 decorator wrappers made during a re-exec read the live globals

WRAPPERS = """
    import contextlib
    import functools

    FACTOR = 1
    VERSION = 1


    def traced(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper


    @contextlib.contextmanager
    def scaled():
        yield FACTOR * 2


    @functools.lru_cache(maxsize=None)
    def cached():
        return FACTOR * 3


    @traced
    def wrapped():
        return FACTOR * 4
"""

NEW_WRAPPERS = """

@contextlib.contextmanager
def scaled_new():
    yield FACTOR * 5


@functools.lru_cache(maxsize=None)
def cached_new():
    return FACTOR * 6


@traced
def wrapped_new():
    return FACTOR * 7
"""

WRAPPERS_APP = """
    import lib


    def calls():
        out = {}
        for name in ("scaled", "scaled_new"):
            if hasattr(lib, name):
                with getattr(lib, name)() as value:
                    out[name] = value
        for name in ("cached", "cached_new"):
            if hasattr(lib, name):
                getattr(lib, name).cache_clear()
                out[name] = getattr(lib, name)()
        for name in ("wrapped", "wrapped_new"):
            if hasattr(lib, name):
                out[name] = getattr(lib, name)()
        return out


    def probe():
        plain = calls()
        saved = lib.FACTOR
        setattr(lib, "FACTOR", 100)  # a monkeypatch of the module global
        try:
            patched = calls()
        finally:
            setattr(lib, "FACTOR", saved)
        return {"plain": plain, "monkeypatched": patched, "version": lib.VERSION}
"""


# issue 5 §1.18: wrappers made by re-exec read staged globals (fixed)
def test_decorator_wrappers_after_reexec_read_live_globals(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"lib.py": WRAPPERS, "app.py": WRAPPERS_APP})
    prog.assert_matches_fresh(what="before")
    prog.edit("lib.py", code(WRAPPERS).replace("VERSION = 1", "VERSION = 2") + NEW_WRAPPERS)
    event = prog.reload_and_expect("applied")
    assert "lib" in _mods(event, "reexecuted"), event
    hot = prog.assert_matches_fresh()
    assert hot["monkeypatched"] == {
        "scaled": 200, "cached": 300, "wrapped": 400,
        "scaled_new": 500, "cached_new": 600, "wrapped_new": 700,
    }


# --------------------------------------------------------------------------------------
# §1.19 new or replaced classes derive from the live base classes

BASES_LIB = """
    VERSION = 1


    class Base:
        def who(self):
            return "base"


    class BaseError(Exception):
        pass


    class Mixin:
        pass


    class Derived(Base):
        pass
"""

NEW_SUBCLASSES = """

class Sub(Base):
    pass


class SubError(BaseError):
    pass
"""

BASES_APP = """
    import holder
    import lib


    def probe():
        old = holder.LIVE.setdefault("derived", lib.Derived())  # made on the first probe
        out = {
            "old-isinstance-Base": isinstance(old, lib.Base),
            "old-who": old.who(),
            "Derived-bases": [b.__name__ for b in lib.Derived.__mro__],
            "Derived-subclass": issubclass(lib.Derived, lib.Base),
        }
        if hasattr(lib, "Sub"):
            out["Sub-subclass"] = issubclass(lib.Sub, lib.Base)
            out["Sub-isinstance"] = isinstance(lib.Sub(), lib.Base)
            try:
                raise lib.SubError("x")
            except lib.BaseError:
                out["caught"] = True
            except Exception:
                out["caught"] = False
        return out
"""


# issue 5 §1.19: new subclass derives from the staged Base (fixed)
def test_new_subclasses_derive_from_live_base(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "lib.py": BASES_LIB, "app.py": BASES_APP})
    prog.probe()
    prog.edit("lib.py", code(BASES_LIB).replace("VERSION = 1", "VERSION = 2") + NEW_SUBCLASSES)
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["Sub-subclass"] is True
    assert hot["caught"] is True


# issue 5 §1.19: replaced class derives from the staged Base (fixed)
def test_replaced_class_old_instance_still_isinstance_of_live_base(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"holder.py": HOLDER, "lib.py": BASES_LIB, "app.py": BASES_APP})
    prog.probe()
    # new bases: Derived is replaced; the old instance keeps the old class (reported)
    prog.replace("lib.py", "class Derived(Base):", "class Derived(Mixin, Base):")
    event = prog.reload_and_expect("applied")
    assert _notes(event), event
    hot = prog.assert_matches_fresh()
    assert hot["old-isinstance-Base"] is True
    assert hot["Derived-subclass"] is True

