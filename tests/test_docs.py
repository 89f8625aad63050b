"""The documentation's examples and claims, checked against the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hotmod import Outcome, ReloadResult
from hotmod._gate import default_gate

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "usage.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text(encoding="utf-8")):
            if lang == language:
                found.append((doc.name, body))
    return found


def test_every_python_example_is_checked() -> None:
    kinds = [
        any(mark in body for mark in ("Reloader(", "hotmod.hot(", *_GATE_MARKS))
        for _, body in blocks("python")
    ]
    assert kinds
    assert all(kinds), "a python example that no test runs"


_GATE_MARKS = ("hotmod.gate()", "GateMiddleware(")


@pytest.mark.parametrize(
    ("doc", "body"), [b for b in blocks("python") if any(m in b[1] for m in _GATE_MARKS)]
)
def test_gate_example_runs(doc: str, body: str) -> None:
    done: list[object] = []

    def wsgi_app(environ: dict[str, object], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    namespace: dict[str, Any] = {"process": done.append, "app": wsgi_app}
    exec(compile(body, doc, "exec"), namespace)
    if "handle" in namespace:
        namespace["handle"]("job")
        assert done == ["job"]
    else:
        body_iter = namespace["app"]({"PATH_INFO": "/"}, lambda status, headers: None)
        assert list(body_iter) == [b"ok"]
        close = getattr(body_iter, "close", None)  # as a server does (PEP 3333)
        if close is not None:
            close()
        assert default_gate().in_flight == 0


@pytest.mark.parametrize(
    ("doc", "body"), [b for b in blocks("python") if "hotmod.hot(" in b[1]]
)
def test_hot_api_example_runs_under_plain_python(doc: str, body: str) -> None:
    made: list[str] = []

    def create_engine(url: str) -> object:
        made.append(url)
        return object()

    namespace: dict[str, Any] = {
        "__name__": "docs_example",
        "URL": "sqlite://",
        "create_engine": create_engine,
        "Counter": type("Counter", (), {}),
    }
    exec(compile(body, doc, "exec"), namespace)
    assert made == ["sqlite://"]  # keep() just calls the factory without a reloader
    assert namespace["hot"].data == {}


@pytest.mark.parametrize(("doc", "body"), [b for b in blocks("python") if "Reloader(" in b[1]])
def test_reloader_example_runs(
    doc: str, body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "src" / "myapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "views.py").write_text("def index():\n    return 'hi'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    printed: list[tuple[object, ...]] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(args)}
    exec(compile(body, doc, "exec"), namespace)
    assert printed == [(Outcome.APPLIED, ("myapp.views",), ())]  # a body edit: patched


@pytest.mark.parametrize(("doc", "body"), blocks("json"))
def test_json_event_example_has_the_fields_hotmod_writes(doc: str, body: str) -> None:
    documented = json.loads(body)
    written = ReloadResult(Outcome.APPLIED).to_json() | {"time": 0.0}
    assert set(documented) == set(written), doc


def test_readme_options_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    options = set(re.findall(r"^\| `(--?[\w-]+)", readme, re.MULTILINE))
    assert {"--watch", "--strict", "--json-events"} <= options
    help_text = subprocess.run(
        [sys.executable, "-m", "hotmod", "run", "--help"], capture_output=True, text=True,
        timeout=30, check=True,
    ).stdout
    for option in options:
        assert option in help_text, option
    assert textwrap.dedent(help_text).startswith("usage: hotmod run")
