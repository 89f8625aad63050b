"""G1 all or nothing, G6 never dies: a batch of saves applies whole or not at all.

The files of one batch are written back to back with a 200 ms debounce so they
arrive together; a failed batch leaves every module as it was, and fixing the
broken file applies the whole pending change, the other files' edits included.
"""

from __future__ import annotations

import pytest

from oracle import HotProgram, HotProgramFactory, code

pytestmark = pytest.mark.timeout(120)

DEBOUNCE_MS = 200

# ``a`` is only patched by its edit (function body), ``b`` re-executed (constant),
# ``c`` is where things break.
A = """
    def fa():
        return "a-1"
"""

B = """
    VALUE = "b-1"
    TABLE = {"k": "b-1"}


    def fb():
        return VALUE
"""

C = """
    def fc():
        return "c-1"
"""

APP = """
    import a
    import b
    import c
    from b import VALUE


    def probe():
        return {
            "a": a.fa(),
            "b": b.fb(),
            "b.VALUE": VALUE,
            "b.TABLE": b.TABLE,
            "c": c.fc(),
        }
"""

OLD = {"a": "a-1", "b": "b-1", "b.VALUE": "b-1", "b.TABLE": {"k": "b-1"}, "c": "c-1"}


def start(hot_program: HotProgramFactory) -> HotProgram:
    prog = hot_program({"a.py": A, "b.py": B, "c.py": C, "app.py": APP}, debounce_ms=DEBOUNCE_MS)
    assert prog.probe() == OLD
    return prog


def save_all(prog: HotProgram, *, c_source: str) -> None:
    """One save touching a (body), b (constant) and c (``c_source``)."""
    with prog.together():
        prog.edit("a.py", code(A).replace("a-1", "a-2"))
        prog.edit("b.py", code(B).replace("b-1", "b-2"))
        prog.edit("c.py", c_source)


def assert_good_edit_still_applies(prog: HotProgram) -> None:
    """G6: the watcher survived; a later good save applies."""
    prog.edit("a.py", code(A).replace("a-1", "a-3"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="a later good edit")
    assert hot["a"] == "a-3"


@pytest.mark.smoke
def test_syntax_error_in_one_file_applies_nothing(hot_program: HotProgramFactory) -> None:
    prog = start(hot_program)
    broken = code(C).replace('return "c-1"', 'return "c-2" +')
    save_all(prog, c_source=broken)
    event = prog.reload_and_expect("failed")
    error = event.get("error")
    assert isinstance(error, dict), event
    assert str(error.get("path", "")).endswith("c.py"), error
    assert error.get("line") == 2, error
    assert prog.probe() == OLD, "one syntax error anywhere: nothing applied"
    # fixing c applies the whole pending change, a's and b's edits included
    prog.edit("c.py", code(C).replace("c-1", "c-2"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after fixing c.py")
    assert hot == {"a": "a-2", "b": "b-2", "b.VALUE": "b-2", "b.TABLE": {"k": "b-2"}, "c": "c-2"}
    assert_good_edit_still_applies(prog)


def test_exception_at_import_rolls_back_whole_batch(hot_program: HotProgramFactory) -> None:
    prog = start(hot_program)
    raising = code(C) + '\n\nraise RuntimeError("boom at import")\n'
    save_all(prog, c_source=raising)
    event = prog.reload_and_expect("failed")
    error = event.get("error")
    assert isinstance(error, dict), event
    assert error.get("type") == "RuntimeError", error
    assert str(error.get("path", "")).endswith("c.py"), error
    assert error.get("line") == 5, error
    assert "boom at import" in str(error.get("traceback", "")) + str(error.get("message")), error
    assert prog.probe() == OLD, "rolled back whole: a's patch and b's re-exec undone too"
    prog.edit("c.py", code(C).replace("c-1", "c-2"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after fixing c.py")
    assert hot["a"] == "a-2"
    assert hot["b.TABLE"] == {"k": "b-2"}
    assert_good_edit_still_applies(prog)


def test_importer_failing_on_new_value_rolls_back(hot_program: HotProgramFactory) -> None:
    """The failing module is not in the batch: it is an importer re-executed for it."""
    config = """
        INDEX = 0
    """
    table = """
        from config import INDEX

        ITEM = ["x", "y"][INDEX]
    """
    app = """
        import config
        import table


        def probe():
            return {"INDEX": config.INDEX, "ITEM": table.ITEM}
    """
    prog = hot_program(
        {"config.py": config, "table.py": table, "app.py": app}, debounce_ms=DEBOUNCE_MS
    )
    before = prog.probe()
    prog.edit("config.py", "INDEX = 5\n")
    event = prog.reload_and_expect("failed")
    error = event.get("error")
    assert isinstance(error, dict), event
    assert error.get("type") == "IndexError", error
    assert str(error.get("path", "")).endswith("table.py"), error
    assert prog.probe() == before
    prog.edit("config.py", "INDEX = 1\n")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"INDEX": 1, "ITEM": "y"}


def test_failing_dispose_hook_rolls_back(hot_program: HotProgramFactory) -> None:
    res = """
        import os

        import hotmod

        hot = hotmod.hot(__name__)
        VALUE = "r-1"


        @hot.dispose
        def _dispose(data):
            if os.path.exists("fail-dispose.flag"):
                raise RuntimeError("dispose failed")
    """
    app = """
        import a
        import res


        def probe():
            return {"a": a.fa(), "res": res.VALUE}
    """
    prog = hot_program({"a.py": A, "res.py": res, "app.py": app}, debounce_ms=DEBOUNCE_MS)
    before = prog.probe()
    prog.path("fail-dispose.flag").write_text("")
    with prog.together():
        prog.edit("a.py", code(A).replace("a-1", "a-2"))
        prog.edit("res.py", code(res).replace("r-1", "r-2"))
    event = prog.reload_and_expect("failed")
    assert "dispose failed" in str(event.get("error")), event
    assert prog.probe() == before
    prog.path("fail-dispose.flag").unlink()
    # saving res.py again (a new value) retries the whole pending batch
    prog.edit("res.py", code(res).replace("r-1", "r-3"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"a": "a-2", "res": "r-3"}


def test_many_failures_in_a_row_never_kill_the_watcher(hot_program: HotProgramFactory) -> None:
    prog = start(hot_program)
    for i in range(5):
        prog.edit("c.py", f"def fc(:\n    return {i}\n")
        prog.reload_and_expect("failed")
        prog.edit("c.py", f"def fc():\n    raise_now = 1 / 0\n\n\nX = {i} / 0\n")
        prog.reload_and_expect("failed")
        assert prog.probe() == OLD
    prog.edit("c.py", code(C).replace("c-1", "c-9"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["c"] == "c-9"
