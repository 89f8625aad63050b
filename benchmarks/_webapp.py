"""The web benchmark's generated project: one Flask app and one FastAPI app over ~50 modules.

``generate(root)`` writes package ``webapp``:

- ``heavy.py`` spends ``startup_s`` (1 s) of busy CPU at import, the stand-in for
  an ORM, pandas or a model (as ``genproject.py``'s ``main.py`` does);
- ``parts/p00.py`` … filler modules (a dataclass, a few functions, an import of
  the one before), imported at start-up, so a restart pays for importing them;
- ``probe_view.py``: ``text()``, the function whose **body** the save-to-live
  edits change (``edit-<n>``);
- ``token_a.py`` and ``token_b.py``: ``token()`` each; one save edits both, and
  ``/version`` answers ``a=<token> b=<token>``: a response whose two tokens
  differ saw a mix of two versions;
- ``routes.py``: the framework-free handlers (``from … import`` the functions
  above, as application code does; the apps import the handlers the same way:
  with ``import webapp.routes`` and ``routes.probe_text()`` at request time,
  ``uvicorn-hmr`` never re-executes anything, so an edit never goes live);
- ``flask_app.py`` / ``fastapi_app.py``: ``app`` with ``/probe``, ``/version``
  and ``/ping``, plain-text responses.

Both apps import the same modules, so ``hotmod serve``, ``flask run --reload``,
``uvicorn --reload`` and ``uvicorn-hmr`` all face the same start-up and edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genproject import save

PACKAGE = "webapp"
FLASK_TARGET = f"{PACKAGE}.flask_app:app"
FASTAPI_TARGET = f"{PACKAGE}.fastapi_app:app"


@dataclass(frozen=True)
class WebProject:
    root: Path
    modules: int  # Python files written (package __init__ files count)

    @property
    def probe_file(self) -> Path:
        return self.root / PACKAGE / "probe_view.py"

    @property
    def token_files(self) -> tuple[Path, Path]:
        return (self.root / PACKAGE / "token_a.py", self.root / PACKAGE / "token_b.py")


def probe_source(n: int) -> str:
    return (
        '"""The body edited by the save-to-live runs."""\n\n\n'
        f'def text() -> str:\n    return "edit-{n}"\n'
    )


def token_source(letter: str, n: int) -> str:
    return (
        f'"""Half of /version\'s answer; edited together with the other half."""\n\n\n'
        f'def token() -> str:\n    return "{letter}{n}"\n'
    )


def version_text(n: int) -> str:
    """What ``/version`` answers when both token modules are at version ``n``."""
    return f"a=a{n} b=b{n}"


HEAVY = '''\
"""Start-up cost: busy CPU holding the GIL for STARTUP_S (a heavy import's stand-in)."""

import time

STARTUP_S = {startup_s!r}


def _spin(seconds: float) -> int:
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += sum(range(100))
    return n


CHECKSUM = _spin(STARTUP_S)
'''

PART = '''\
"""Filler module {i}: what a real app's models and helpers look like to an importer."""

from dataclasses import dataclass
{import_prev}

@dataclass
class Record{i}:
    key: str
    count: int = 0

    def bump(self, by: int = 1) -> "Record{i}":
        return Record{i}(self.key, self.count + by)


def describe{i}(record: Record{i}) -> str:
    return f"{{record.key}}:{{record.count}}"


def total{i}(records: list[Record{i}]) -> int:
    return sum(r.count for r in records){chain}
'''

ROUTES = '''\
"""Framework-free handlers the two apps share."""

from webapp import heavy, parts
from webapp.probe_view import text
from webapp.token_a import token as token_a
from webapp.token_b import token as token_b

WARM = (heavy.CHECKSUM, parts.LAST)


def probe_text() -> str:
    return text()


def version_text() -> str:
    return f"a={token_a()} b={token_b()}"
'''

FLASK_APP = '''\
"""The Flask app of the web benchmark."""

from flask import Flask

from webapp.routes import probe_text, version_text

app = Flask(__name__)


@app.get("/probe")
def probe() -> str:
    return probe_text()


@app.get("/version")
def version() -> str:
    return version_text()


@app.get("/ping")
def ping() -> str:
    return "pong"
'''

FASTAPI_APP = '''\
"""The FastAPI app of the web benchmark."""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from webapp.routes import probe_text, version_text

app = FastAPI()


@app.get("/probe", response_class=PlainTextResponse)
def probe() -> str:
    return probe_text()


@app.get("/version", response_class=PlainTextResponse)
def version() -> str:
    return version_text()


@app.get("/ping", response_class=PlainTextResponse)
def ping() -> str:
    return "pong"
'''


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def generate(root: Path, *, modules: int = 50, startup_s: float = 1.0) -> WebProject:
    """Write the project under ``root`` (``modules`` Python files in all) and describe it."""
    pkg = root / PACKAGE
    fixed = {
        pkg / "__init__.py": '"""The web benchmark\'s app."""\n',
        pkg / "heavy.py": HEAVY.format(startup_s=startup_s),
        pkg / "probe_view.py": probe_source(0),
        pkg / "token_a.py": token_source("a", 0),
        pkg / "token_b.py": token_source("b", 0),
        pkg / "routes.py": ROUTES,
        pkg / "flask_app.py": FLASK_APP,
        pkg / "fastapi_app.py": FASTAPI_APP,
    }
    parts = max(1, modules - len(fixed) - 1)  # minus parts/__init__.py
    for path, text in fixed.items():
        _write(path, text)
    for i in range(parts):
        prev = f"from webapp.parts.p{i - 1:02d} import total{i - 1}\n" if i else ""
        chain = f"\n\n\nCHAIN = total{i - 1}([])\n" if i else "\n"
        _write(
            pkg / "parts" / f"p{i:02d}.py",
            PART.format(i=i, import_prev=prev, chain=chain),
        )
    _write(
        pkg / "parts" / "__init__.py",
        f'"""Filler modules, imported in a chain."""\n\nfrom webapp.parts.p{parts - 1:02d} '
        f"import describe{parts - 1} as LAST\n",
    )
    return WebProject(root, len(fixed) + parts + 1)


def edit_probe(project: WebProject, n: int, *, mode: str = "rename") -> None:
    save(project.probe_file, probe_source(n), mode=mode)


def edit_tokens(project: WebProject, n: int, *, mode: str = "rename") -> None:
    """One save of two files: both token modules move to version ``n``, back to back."""
    a, b = project.token_files
    save(a, token_source("a", n), mode=mode)
    save(b, token_source("b", n), mode=mode)


def reset(project: WebProject) -> None:
    edit_probe(project, 0)
    edit_tokens(project, 0)

