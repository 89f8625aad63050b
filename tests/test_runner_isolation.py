"""The program run by ``hotmod run`` sees the interpreter plain ``python`` would give it.

hotmod's own dependencies (watchfiles and what it imports: anyio, idna...) must
not show up in the program's ``sys.modules``, and hotmod must leave the root
logger and the warning filters to the program. Each test runs the same program
under ``hotmod run`` (after the watcher is armed and a reload was applied, so
everything hotmod loads lazily is loaded) and under plain ``python``.
"""

from __future__ import annotations

import pytest

from oracle import HotProgramFactory, code

pytestmark = pytest.mark.timeout(90)

MODULES_APP = """
    import sys
    import warnings

    SEEN = 1


    def probe():
        return {
            "seen": SEEN,
            "third-party": sorted(
                m for m in sys.modules if m.split(".")[0] not in sys.stdlib_module_names
            ),
            "filters": [repr(f) for f in warnings.filters],
        }
"""


def without_hotmod(modules: list[str]) -> list[str]:
    return [m for m in modules if m != "hotmod" and not m.startswith("hotmod.")]


@pytest.mark.smoke
def test_program_sees_no_third_party_module_python_would_not_load(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program({"app.py": MODULES_APP})
    prog.replace("app.py", "SEEN = 1", "SEEN = 2")  # a reload: its lazy imports happen too
    prog.reload_and_expect("applied")
    hot, fresh = prog.probe(), prog.fresh_probe()
    assert hot["seen"] == fresh["seen"] == 2
    assert "watchfiles" not in hot["third-party"], hot
    assert without_hotmod(hot["third-party"]) == fresh["third-party"]
    assert "hotmod" in hot["third-party"]  # sanity: the probe sees hotmod's own modules


def test_warnings_as_errors_behave_as_under_python(
    hot_program: HotProgramFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``-W error`` for hotmod and the program alike (the fresh run inherits it too),
    # and the program itself turns every warning into an error before it imports.
    monkeypatch.setenv("PYTHONWARNINGS", "error")
    app = 'import warnings\nwarnings.simplefilter("error")\n' + code(MODULES_APP)
    prog = hot_program({"app.py": app})
    prog.replace("app.py", "SEEN = 1", "SEEN = 2")
    prog.reload_and_expect("applied")
    hot, fresh = prog.probe(), prog.fresh_probe()
    assert hot["filters"] == fresh["filters"]
    assert without_hotmod(hot["third-party"]) == fresh["third-party"]
    assert "Warning" not in prog.stderr_text(), prog.describe()
