"""One test per row of the edit table (DESIGN §3), each checked by the fresh-start oracle.

Every test runs a real program under ``hotmod run``, edits a file on disk, waits
for the ``reload`` event and compares the running program with a fresh
``python main.py`` on the new sources (``assert_matches_fresh``). Where the
contract says state lives on (instances, runtime-filled dicts, kept values) the
test checks that state explicitly instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from oracle import TRACEBACK_HELPER, HotProgram, HotProgramFactory, code

pytestmark = pytest.mark.timeout(120)


def _mods(event: dict[str, Any], key: str) -> list[str]:
    value = event.get(key, [])
    assert isinstance(value, list)
    return [str(v) for v in value]


def assert_patched_only(prog: HotProgram, event: dict[str, Any], *modules: str) -> None:
    """G5: a body-only edit re-executes no module and patches ``modules``."""
    if _mods(event, "reexecuted") != [] or not set(modules) <= set(_mods(event, "patched")):
        raise prog.fail(f"expected patched {list(modules)} and reexecuted [], got {event}")


def assert_reexecuted(prog: HotProgram, event: dict[str, Any], *modules: str) -> None:
    if not set(modules) <= set(_mods(event, "reexecuted")):
        raise prog.fail(f"expected {list(modules)} among reexecuted, got {event}")


# --------------------------------------------------------------------------------------
# function body, default values, docstring; aliases, callbacks, runtime state

LIB_FUNCS = """
    REGISTRY = {}


    def register(fn):
        REGISTRY[fn.__name__] = fn
        return fn


    def f():
        return 1


    @register
    def g(x):
        return x + 10
"""

APP_FUNCS = """
    import lib
    from lib import f
    from lib import f as f_alias

    CALLBACKS = [lib.f, f_alias]
    TABLE = {"f": f, "g": lib.g}
    RUNTIME = {}


    def local():
        return "local-1"


    def probe():
        # filled at run time, on the first probe (before any edit)
        RUNTIME["calls"] = RUNTIME.get("calls", 0) + 1
        RUNTIME.setdefault("callbacks", [lib.f, lib.g])
        return {
            "calls": RUNTIME["calls"],
            "lib.f": lib.f(),
            "from-import": f(),
            "alias": f_alias(),
            "list": [cb() for cb in CALLBACKS],
            "dict": [TABLE["f"](), TABLE["g"](1)],
            "registry": lib.REGISTRY["g"](1),
            "runtime-callbacks": [RUNTIME["callbacks"][0](), RUNTIME["callbacks"][1](1)],
            "identity": f is lib.f and TABLE["f"] is lib.f,
            "local": local(),
        }
"""


def _without_calls(answer: Any) -> Any:
    assert isinstance(answer, dict), answer
    return {k: v for k, v in answer.items() if k != "calls"}


@pytest.mark.smoke
def test_function_body_edit_reaches_aliases_callbacks_and_registries(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"lib.py": LIB_FUNCS, "app.py": APP_FUNCS})
    before = prog.probe()
    assert before["lib.f"] == 1
    prog.edit("lib.py", code(LIB_FUNCS).replace("return 1", "return 2").replace("+ 10", "+ 20"))
    event = prog.reload_and_expect("applied")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    assert _without_calls(hot) == _without_calls(fresh)
    assert_patched_only(prog, event, "lib")
    assert hot["lib.f"] == 2
    assert hot["runtime-callbacks"] == [2, 21]


def test_runtime_dict_survives_body_edit_in_same_module(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": LIB_FUNCS, "app.py": APP_FUNCS})
    assert prog.probe()["calls"] == 1
    prog.replace("app.py", '"local-1"', '"local-2"')
    event = prog.reload_and_expect("applied")
    hot = prog.probe()
    assert hot["calls"] == 2, "the module-level dict filled at run time must survive"
    assert hot["local"] == "local-2"
    assert _without_calls(hot) == _without_calls(prog.fresh_probe())
    assert_patched_only(prog, event, "app")


DEFAULTS = """
    def d(a, b=1, *, c=2) -> list[int]:
        \"\"\"Old docstring.\"\"\"
        return [a, b, c]


    class K:
        def m(self, x=1):
            \"\"\"Old method doc.\"\"\"
            return x


    def probe():
        return {
            "call": d(0),
            "defaults": list(d.__defaults__),
            "kwdefaults": d.__kwdefaults__,
            "annotations": {k: str(v) for k, v in d.__annotations__.items()},
            "doc": d.__doc__,
            "method": K().m(),
            "method-doc": K.m.__doc__,
        }
"""


def test_default_values_and_annotations(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": DEFAULTS})
    new = (
        code(DEFAULTS)
        .replace("b=1, *, c=2) -> list[int]", "b=5, *, c=7) -> list[object]")
        .replace("x=1", "x=3")
    )
    prog.edit("app.py", new)
    event = prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert_patched_only(prog, event, "app")
    assert hot["defaults"] == [5]
    assert hot["kwdefaults"] == {"c": 7}


def test_docstring(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": DEFAULTS})
    prog.edit("app.py", code(DEFAULTS).replace("Old", "New"))
    event = prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert_patched_only(prog, event, "app")
    assert hot["doc"] == "New docstring."


def test_comment_only_edit_changes_nothing(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": DEFAULTS})
    prog.edit("app.py", code(DEFAULTS).replace("return [a, b, c]", "return [a, b, c]  # note"))
    event = prog.wait_for_reload(skip_unchanged=False)
    prog.expect(event, "unchanged", "applied")
    assert _mods(event, "reexecuted") == []
    prog.assert_matches_fresh()


# --------------------------------------------------------------------------------------
# line shifts

LINES = (
    TRACEBACK_HELPER
    + """

def above():
    return 1


def boom():
    raise ValueError("boom")


def call_boom():
    return boom()


def probe():
    try:
        call_boom()
    except ValueError as exc:
        return {"above": above(), "tb": [f for f in tb_lines(exc) if f[0] == "app.py"]}
    return None
"""
)


def test_line_shifts_only_keep_tracebacks_right(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": LINES})
    prog.assert_matches_fresh(what="before any edit")
    # an edit above: comment lines only
    prog.edit("app.py", LINES.replace("\ndef above", "\n# one\n# two\n# three\n\ndef above"))
    event = prog.wait_for_reload(skip_unchanged=False)
    prog.expect(event, "unchanged")  # nothing behaves differently: no new version
    assert _mods(event, "reexecuted") == []
    prog.assert_matches_fresh(what="after comment lines were inserted above")
    # an edit above: a function body above grows by two lines
    grown = prog.read("app.py").replace(
        "    return 1\n", "    x = 1\n    y = 0\n    return x + y\n"
    )
    prog.edit("app.py", grown)
    event = prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="after a body above grew")
    assert_patched_only(prog, event, "app")


# --------------------------------------------------------------------------------------
# closures

CLOSURES = """
    def counter_factory():
        base = 10

        def inner():
            return base

        return inner


    def make(k):
        def inner():
            return k

        return inner


    GET = counter_factory()
    GET1 = make(1)


    def probe():
        return {
            "GET": GET(),
            "fresh-closure": counter_factory()(),
            "GET1": GET1(),
            "make": make(2)(),
        }
"""


def test_closure_variables_change(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": CLOSURES})
    new = code(CLOSURES).replace(
        "    base = 10\n\n    def inner():\n        return base\n",
        "    base = 10\n    extra = 5\n\n    def inner():\n        return base + extra\n",
    )
    assert new != code(CLOSURES)
    prog.edit("app.py", new)
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "app")
    hot = prog.assert_matches_fresh()
    assert hot["GET"] == 15


def test_nested_function_body_edit_reaches_closures_made_at_import(
    hot_program: HotProgramFactory,
) -> None:
    """``GET1 = make(1)`` holds a closure over the old inner code: it must run the new."""
    prog = hot_program({"app.py": CLOSURES})
    prog.replace("app.py", "        return k\n", "        return k * 100\n")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["GET1"] == 100


# --------------------------------------------------------------------------------------
# methods

METHODS = """
    import holder


    class Base:
        def greet(self):
            return "base-1"


    class C(Base):
        def greet(self):
            return "c-1+" + super().greet()

        def plain(self):
            return "plain-1"

        @property
        def p(self):
            return "p-1"

        @classmethod
        def cm(cls):
            return cls.__name__ + "-1"

        @staticmethod
        def sm():
            return "sm-1"

        def __repr__(self):
            return "C-1"


    OBJ = C()


    def probe():
        live = holder.LIVE.setdefault("c", C())  # made on the first probe, lives on
        return {
            "live": [live.greet(), live.plain(), live.p, repr(live), isinstance(live, C)],
            "greet": OBJ.greet(),
            "plain": OBJ.plain(),
            "p": OBJ.p,
            "cm": OBJ.cm(),
            "sm": C.sm(),
            "repr": repr(OBJ),
            "isinstance": isinstance(OBJ, C),
            "new": C().greet(),
            "bound-at-start": BOUND(),
        }


    BOUND = OBJ.plain
"""


def test_method_property_classmethod_staticmethod_and_super(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": METHODS})
    prog.probe()
    prog.edit("app.py", code(METHODS).replace("-1", "-2"))
    event = prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert_patched_only(prog, event, "app")
    assert hot["greet"] == "c-2+base-2"
    assert hot["live"] == ["c-2+base-2", "plain-2", "p-2", "C-2", True]
    assert hot["bound-at-start"] == "plain-2"


def test_method_gains_zero_arg_super(hot_program: HotProgramFactory) -> None:
    """The new code needs a ``__class__`` cell the old one did not have."""
    prog = hot_program({"holder.py": HOLDER, "app.py": METHODS})
    prog.probe()
    prog.replace("app.py", 'return "plain-1"', 'return "plain-1+" + super().greet()')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["plain"] == "plain-1+base-1"
    assert hot["live"][1] == "plain-1+base-1"


ADD_REMOVE = """
    import abc


    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self):
            raise NotImplementedError


    class Sq(Shape):
        SIDE = 2


    class K:
        ATTR = 1

        def old(self):
            return "old"


    OBJ = K()


    def probe():
        try:
            area = Sq().area()
        except TypeError as exc:
            area = "TypeError"
        return {
            "has_old": hasattr(OBJ, "old"),
            "has_new": hasattr(OBJ, "new"),
            "new": OBJ.new() if hasattr(OBJ, "new") else None,
            "ATTR": getattr(K, "ATTR", None),
            "ATTR2": getattr(K, "ATTR2", None),
            "abstract": sorted(Sq.__abstractmethods__),
            "area": area,
            "isinstance": isinstance(OBJ, K),
            "members": sorted(n for n in vars(K) if not n.startswith("__")),
        }
"""


def test_add_and_remove_methods_and_class_attributes(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"app.py": ADD_REMOVE})
    prog.assert_matches_fresh(what="before")
    new = (
        code(ADD_REMOVE)
        .replace(
            '    def old(self):\n        return "old"\n',
            '    def new(self):\n        return "new"\n',
        )
        .replace("    ATTR = 1\n", "    ATTR = 1\n    ATTR2 = 22\n")
        .replace("    SIDE = 2\n", "    SIDE = 2\n\n    def area(self):\n        return 4\n")
    )
    prog.edit("app.py", new)
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["abstract"] == []
    assert hot["has_new"] is True
    assert hot["has_old"] is False
    # and back: remove the attribute and the method again
    prog.edit("app.py", code(ADD_REMOVE))
    prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="after removing them again")


# --------------------------------------------------------------------------------------
# decorators

DECORATED = """
    import functools


    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return ["wrapped-1", fn(*args, **kwargs)]

        return wrapper


    def times(n):
        def decorate(fn):
            @functools.wraps(fn)
            def wrapper():
                return fn() * n

            return wrapper

        return decorate


    @deco
    def f():
        return 1


    @times(2)
    def t():
        return 10


    def plain():
        return 5


    @functools.lru_cache(maxsize=None)
    def cached():
        return 100
"""

DECO_APP = """
    import lib
    from lib import cached, f, plain, t


    def probe():
        return {
            "f": f(),
            "inner": f.__wrapped__(),
            "name": f.__name__,
            "lib.f": lib.f(),
            "t": t(),
            "plain": plain(),
            "cached": cached(),
        }
"""


def test_decorated_body_only_change_patched_behind_wrapped(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": DECORATED, "app.py": DECO_APP})
    assert prog.probe()["cached"] == 100  # fills the cache (at run time, not at import)
    new = code(DECORATED).replace("return 1\n", "return 2\n").replace("return 100", "return 200")
    prog.edit("lib.py", new)
    event = prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert_patched_only(prog, event, "lib")
    assert hot["f"] == ["wrapped-1", 2]
    assert hot["cached"] == 200, "an lru_cache wrapper's cache must be cleared"


def test_decorator_wrapper_body_edit_reaches_existing_wrappers(
    hot_program: HotProgramFactory,
) -> None:
    """Wrappers made at import (closures over ``fn``) must run the decorator's new body."""
    prog = hot_program({"lib.py": DECORATED, "app.py": DECO_APP})
    prog.replace("lib.py", '"wrapped-1"', '"wrapped-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["f"] == ["wrapped-2", 1]


def test_decorator_expression_changed(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": DECORATED, "app.py": DECO_APP})
    prog.replace("lib.py", "@times(2)", "@times(3)")
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "lib", "app")
    hot = prog.assert_matches_fresh()
    assert hot["t"] == 30
    # a new decorator on a function that had none
    prog.replace("lib.py", "def plain():", "@times(4)\ndef plain():")
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "lib", "app")
    hot = prog.assert_matches_fresh()
    assert hot["plain"] == 20


# --------------------------------------------------------------------------------------
# module constants

CONFIG = """
    C = 1
    NAMES = ["a", "b"]
"""


@pytest.mark.smoke
def test_constant_imported_by_name_reexecutes_importer(hot_program: HotProgramFactory) -> None:
    app = """
        from config import C, NAMES

        DOUBLE = C * 2


        def probe():
            return {"C": C, "NAMES": NAMES, "DOUBLE": DOUBLE}
    """
    prog = hot_program({"config.py": CONFIG, "app.py": app})
    prog.edit("config.py", code(CONFIG).replace("C = 1", "C = 2"))
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "config", "app")
    hot = prog.assert_matches_fresh()
    assert hot["DOUBLE"] == 4


def test_constant_read_as_attribute_in_function_needs_no_importer_reexec(
    hot_program: HotProgramFactory,
) -> None:
    app = """
        import config
        import config as cfg


        def probe():
            return {"C": config.C, "NAMES": cfg.NAMES}
    """
    prog = hot_program({"config.py": CONFIG, "app.py": app})
    prog.edit("config.py", code(CONFIG).replace("C = 1", "C = 2"))
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "config")
    if "app" in _mods(event, "reexecuted"):
        raise prog.fail(f"G5: app reads config.C only at call time, need not re-run: {event}")
    prog.assert_matches_fresh()


def test_constant_read_as_attribute_at_top_level_reexecutes_importer(
    hot_program: HotProgramFactory,
) -> None:
    app = """
        import config

        DOUBLE = config.C * 2
        TABLE = {name: config.C for name in config.NAMES}


        def probe():
            return {"DOUBLE": DOUBLE, "TABLE": TABLE}
    """
    prog = hot_program({"config.py": CONFIG, "app.py": app})
    prog.edit("config.py", code(CONFIG).replace("C = 1", "C = 5"))
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "config", "app")
    hot = prog.assert_matches_fresh()
    assert hot["DOUBLE"] == 10


# --------------------------------------------------------------------------------------
# adding and removing names and modules

ADD_LIB = """
    def f():
        return 1
"""

ADD_APP = """
    import lib
    from lib import f


    def probe():
        return {"f": f(), "g": lib.g() if hasattr(lib, "g") else None}
"""


def test_add_function_and_retry_failed_importer(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"lib.py": ADD_LIB, "app.py": ADD_APP})
    before = prog.probe()
    # add a function: re-exec, visible to an attribute reader
    prog.edit("lib.py", code(ADD_LIB) + "\n\ndef g():\n    return 'g'\n")
    prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="after adding lib.g")
    # an importer that needs a name not there yet fails...
    app2 = code(ADD_APP).replace("from lib import f", "from lib import f, h") + (
        "\n\ndef probe():\n    return {'f': f(), 'h': h()}\n"
    )
    prog.edit("app.py", app2)
    event = prog.reload_and_expect("failed")
    assert "error" in event, event
    assert prog.probe() == {**before, "g": "g"}, "a failed batch must leave the old version"
    # ...and is retried once the name exists
    prog.edit("lib.py", prog.read("lib.py") + "\n\ndef h():\n    return 'h'\n")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after adding lib.h: pending app.py applied")
    assert hot == {"f": 1, "h": "h"}


def test_add_class_and_module(hot_program: HotProgramFactory) -> None:
    app = """
        import lib


        def probe():
            out = {"f": lib.f()}
            if hasattr(lib, "New"):
                out["New"] = lib.New().hello()
            return out
    """
    prog = hot_program({"lib.py": ADD_LIB, "app.py": app}, debounce_ms=200)
    prog.edit(
        "lib.py", code(ADD_LIB) + "\n\nclass New:\n    def hello(self):\n        return 'hi'\n"
    )
    prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="after adding a class")
    with prog.together():
        prog.edit("newmod.py", "VALUE = 'new module'\n")
        prog.edit(
            "app.py",
            "import lib\nimport newmod\n\n\ndef probe():\n    return [lib.f(), newmod.VALUE]\n",
        )
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after adding a module")
    assert hot == [1, "new module"]


def test_remove_name_still_imported_fails_and_rolls_back(hot_program: HotProgramFactory) -> None:
    lib = """
        def f():
            return 1


        def g():
            return 2
    """
    app = """
        from lib import f, g


        def probe():
            return {"f": f(), "g": g()}
    """
    prog = hot_program({"lib.py": lib, "app.py": app})
    before = prog.probe()
    prog.edit("lib.py", "def f():\n    return 10\n")
    event = prog.reload_and_expect("failed")
    assert "error" in event, event
    assert prog.probe() == before, "rolled back whole: f's new body must not be live either"
    assert prog.fresh_run().returncode != 0, "sanity: a fresh start on these sources fails"
    # put g back (with a new body): the pending change applies whole
    prog.edit("lib.py", "def f():\n    return 10\n\n\ndef g():\n    return 20\n")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"f": 10, "g": 20}


# --------------------------------------------------------------------------------------
# classes: bases, dataclasses, enums

HOLDER = """
    LIVE = {}
"""

BASES = """
    import holder


    class A:
        def who(self):
            return "A"


    class B:
        def who(self):
            return "B"


    class C(A):
        pass


    def probe():
        old = holder.LIVE.setdefault("c", C())  # made on the first probe, lives on
        return {
            "new": {"mro": [k.__name__ for k in C.__mro__], "who": C().who()},
            "old-type-name": type(old).__name__,
        }
"""


def test_class_bases_change_reexecutes_and_reports_old_instances(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": BASES})
    prog.probe()
    prog.replace("app.py", "class C(A):", "class C(B):")
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "app")
    if not event.get("notes"):
        raise prog.fail(f"old instances keep the old class: that must be reported: {event}")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    assert hot["new"] == fresh["new"]
    assert hot["new"]["who"] == "B"


def test_class_bases_change_restarts_in_strict_mode(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": BASES}, hotmod_args=["--strict"])
    prog.probe()
    prog.replace("app.py", "class C(A):", "class C(B):")
    event = prog.reload_and_expect("restart")
    assert event.get("reason"), event
    assert prog.restarts == 1
    prog.assert_matches_fresh()


DATACLASS = """
    from dataclasses import asdict, dataclass, field, fields

    import holder


    @dataclass
    class P:
        x: int = 1


    def probe():
        old = holder.LIVE.setdefault("p", P())  # made on the first probe, lives on
        return {
            "old": asdict(old),
            "old-repr": repr(old),
            "old-isinstance": isinstance(old, P),
            "old-eq-new": old == P(),
            "new": asdict(P()),
            "fields": [f.name for f in fields(P)],
        }
"""


def test_dataclass_fields_added(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": DATACLASS})
    prog.probe()
    prog.replace(
        "app.py",
        "    x: int = 1\n",
        "    x: int = 1\n    y: int = 5\n    tags: list = field(default_factory=list)\n",
    )
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["old"] == {"x": 1, "y": 5, "tags": []}


def test_dataclass_field_without_default_is_reported(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": DATACLASS})
    prog.probe()
    new = (
        prog.read("app.py")
        .replace("    x: int = 1\n", "    label: str\n    x: int = 1\n")
        .replace("P()", "P('L')")
        # The old instance cannot have the new field (that is what the note says):
        # the probe stops reading its fields and keeps checking its class.
        .replace('"old": asdict(old),', "")
        .replace('"old-repr": repr(old),', "")
        .replace("\"old-eq-new\": old == P('L'),", "")
    )
    prog.edit("app.py", new)
    event = prog.reload_and_expect("applied")
    if not any("label" in n for n in event.get("notes", [])):
        raise prog.fail(f"a field without default cannot be migrated: must be a note: {event}")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    assert hot["new"] == fresh["new"]
    assert hot["fields"] == fresh["fields"] == ["label", "x"]


ENUMS = """
    import enum


    class Color(enum.Enum):
        RED = 1
        GREEN = 2
"""

ENUM_APP = """
    import holder
    from colors import Color


    def probe():
        red = holder.LIVE.setdefault("red", Color.RED)  # captured on the first probe
        return {
            "members": [m.name for m in Color],
            "is": red is Color.RED,
            "eq": red == Color.RED,
            "lookup": Color(1) is red,
            "isinstance": isinstance(red, Color),
        }
"""


def test_enum_members_added(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "colors.py": ENUMS, "app.py": ENUM_APP})
    prog.probe()
    prog.replace("colors.py", "    GREEN = 2\n", "    GREEN = 2\n    BLUE = 3\n")
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "colors")
    hot = prog.assert_matches_fresh()
    assert hot["members"] == ["RED", "GREEN", "BLUE"]


# --------------------------------------------------------------------------------------
# side effects at import: keep, hot.data, dispose

SIDE_HOLDER = """
    OPENED = []
    HANDLERS = []
    LOG = []


    def open_connection(tag=1):
        OPENED.append(tag)
        return {"conn": len(OPENED), "tag": tag}
"""

SIDE = """
    import hotmod

    import holder

    hot = hotmod.hot(__name__)
    CONN = hotmod.keep("conn", lambda: holder.open_connection(1))
    GEN = hot.data.get("gen", 0) + 1
    hot.data["gen"] = GEN


    def handler():
        return "handler-1"


    holder.HANDLERS.append(handler)


    @hot.dispose
    def _dispose(data):
        holder.HANDLERS.remove(handler)
        holder.LOG.append("disposed")


    VALUE = 1
"""

SIDE_APP = """
    import holder
    import res


    def probe():
        return {
            "value": res.VALUE,
            "handlers": [h() for h in holder.HANDLERS],
            "conn": res.CONN,
            "opened": list(holder.OPENED),
            "gen": res.GEN,
            "log": list(holder.LOG),
        }
"""


def test_side_effects_kept_and_disposed(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": SIDE_HOLDER, "res.py": SIDE, "app.py": SIDE_APP})
    prog.assert_matches_fresh(what="before")
    prog.edit("res.py", code(SIDE).replace("VALUE = 1", "VALUE = 2").replace("-1", "-2"))
    event = prog.reload_and_expect("applied")
    assert_reexecuted(prog, event, "res")
    hot = prog.probe()
    fresh = prog.fresh_probe()
    same = ("value", "handlers", "conn", "opened")
    assert {k: hot[k] for k in same} == {k: fresh[k] for k in same}
    assert hot["handlers"] == ["handler-2"], "dispose undid the old registration"
    assert hot["opened"] == [1], "keep: the connection was not opened again"
    assert hot["gen"] == 2, "hot.data carried from the previous version"
    assert hot["log"] == ["disposed"]
    # keep re-creates its value when the factory's own source changes
    prog.replace("res.py", "open_connection(1)", "open_connection(2)")
    prog.reload_and_expect("applied")
    hot = prog.probe()
    assert hot["conn"] == {"conn": 2, "tag": 2}
    assert hot["opened"] == [1, 2]
    assert hot["handlers"] == ["handler-2"]
    assert hot["gen"] == 3


# --------------------------------------------------------------------------------------
# modules deleted or renamed

EXTRA = """
    VALUE = "extra"
"""

USES_EXTRA = """
    import extra


    def probe():
        return {"extra": extra.VALUE}
"""

NO_EXTRA = """
    import sys


    def probe():
        return {"loaded": sorted(m for m in ("extra", "extra2") if m in sys.modules)}
"""


def test_module_deleted_while_imported_fails(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"extra.py": EXTRA, "app.py": USES_EXTRA})
    before = prog.probe()
    prog.delete("extra.py")
    prog.reload_and_expect("failed")
    assert prog.probe() == before
    # the importer stops needing it: now it can go
    prog.edit("app.py", NO_EXTRA)
    event = prog.reload_and_expect("applied")
    assert "extra" in _mods(event, "removed"), event
    prog.assert_matches_fresh()


def test_module_deleted_with_its_importer_edited(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"extra.py": EXTRA, "app.py": USES_EXTRA}, debounce_ms=200)
    with prog.together():
        prog.edit("app.py", NO_EXTRA)
        prog.delete("extra.py")
    event = prog.reload_and_expect("applied")
    assert "extra" in _mods(event, "removed"), event
    hot = prog.assert_matches_fresh()
    assert hot == {"loaded": []}


def test_module_renamed(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"extra.py": EXTRA, "app.py": USES_EXTRA}, debounce_ms=200)
    with prog.together():
        prog.rename("extra.py", "extra2.py")
        prog.edit("app.py", code(USES_EXTRA).replace("extra", "extra2"))
    event = prog.reload_and_expect("applied")
    assert "extra" in _mods(event, "removed"), event
    hot = prog.assert_matches_fresh()
    assert hot == {"extra2": "extra"}


# --------------------------------------------------------------------------------------
# __main__ and declined modules: restart

CUSTOM_MAIN = """
    import json
    import sys

    import app

    PREFIX = "@@hotmod-probe "
    TOP = "top-1"


    def local():
        return "local-1"


    def serve():
        while True:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "ping":
                print(PREFIX + json.dumps({"ok": "pong"}), flush=True)
            if line.strip() == "probe":
                answer = {"app": app.probe(), "local": local(), "top": TOP}
                print(PREFIX + json.dumps({"ok": answer}, sort_keys=True), flush=True)


    if __name__ == "__main__":
        serve()
"""


@pytest.mark.smoke
def test_main_function_body_patched_top_level_restarts(hot_program: HotProgramFactory) -> None:
    app = """
        def probe():
            return "app-1"
    """
    prog = hot_program({"app.py": app, "main.py": CUSTOM_MAIN}, main=None)
    prog.replace("main.py", '"local-1"', '"local-2"')
    event = prog.reload_and_expect("applied")
    assert "__main__" in _mods(event, "patched"), event
    assert _mods(event, "reexecuted") == [], event
    hot = prog.assert_matches_fresh(what="main.py function body")
    assert hot["local"] == "local-2"
    assert prog.restarts == 0
    # a top-level change in the entry script: restart, announced with a reason
    prog.replace("main.py", 'TOP = "top-1"', 'TOP = "top-2"')
    event = prog.reload_and_expect("restart")
    assert event.get("reason"), event
    assert prog.restarts == 1
    hot = prog.assert_matches_fresh(what="after the restart")
    assert hot["top"] == "top-2"
    # and it keeps going: a later body edit of a project module is patched
    prog.edit("app.py", code(app).replace("app-1", "app-2"))
    prog.reload_and_expect("applied")
    prog.assert_matches_fresh(what="edit after the restart")


def test_declined_module_restarts(hot_program: HotProgramFactory) -> None:
    lib = """
        import hotmod

        hotmod.hot(__name__).decline()


        def f():
            return 1
    """
    app = """
        import lib


        def probe():
            return {"f": lib.f()}
    """
    prog = hot_program({"lib.py": lib, "app.py": app})
    prog.replace("lib.py", "return 1", "return 2")
    event = prog.reload_and_expect("restart")
    assert event.get("reason"), event
    assert prog.restarts == 1
    hot = prog.assert_matches_fresh()
    assert hot == {"f": 2}
