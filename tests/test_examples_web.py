"""The web examples (``examples/web``) under ``hotmod serve``, as ``make demo`` runs them.

Each test copies the example folder into ``tmp_path``, serves one app from the
copy with ``python -m hotmod serve`` on a free port of 127.0.0.1, fetches its
pages and API over HTTP, then edits what the demo tells users to edit:

* the front page's ``greeting()`` body (a view module): the new text is served;
* ``LABEL``, a constant of ``catalog/model.py``, the module that keeps the
  catalog with ``hotmod.keep``: it and its importers re-execute, the app is
  rebuilt, the API's labels change, and the catalog, built once at start-up,
  is the same object (``built_at`` unchanged);

and restores both files, after which the original text is served again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle import wait_until
from servehelp import fetch, free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "web"
GREETING = "Hello from hotmod!"
START_TIMEOUT = 45.0
RELOAD_TIMEOUT = 15.0

# (target, the greeting's file, pages fetched: path -> (status, text it contains))
APPS = {
    "flask": (
        "flaskapp.app:app",
        "flaskapp/views/greetings.py",
        {
            "/books/?q=silent+river": (200, "The Silent River"),
            "/books/3": (200, "★"),
            "/books/99999": (404, "There is no book 99999."),
            "/api/books?q=golden&limit=2": (200, '"count":2'),
            "/api/books/99999": (404, '"detail":"no book 99999"'),
        },
    ),
    "fastapi": (
        "fastapiapp.main:app",
        "fastapiapp/routers/greetings.py",
        {
            "/api/books?q=golden&limit=2": (200, '"count":2'),
            "/api/books/3": (200, '"label":"The Silent River Empire (Alan Turing, 1928)"'),
            "/api/books/99999": (404, '"detail":"no book 99999"'),
            "/api/books?limit=1000": (422, "less than or equal to 100"),
            "/openapi.json": (200, '"/api/books/{book_id}"'),
        },
    ),
}


def _save(path: Path, text: str) -> None:
    """Save as editors do: a sibling file renamed over the original."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Example:
    """One example app served by ``hotmod serve`` from a copy of examples/web."""

    def __init__(self, root: Path, target: str, log: Path) -> None:
        self.root = root
        self.port = free_port()
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotmod", "serve", target, "--port", str(self.port)],
                cwd=root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def get(self, path: str) -> tuple[int, str]:
        """``(status, body)``; ``(0, why)`` while nothing answers."""
        try:
            return fetch(path, port=self.port)
        except OSError as exc:
            return 0, repr(exc)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_for(self, path: str, text: str, *, timeout: float) -> str:
        found: list[str] = []

        def ready() -> bool:
            status, body = self.get(path)
            found[:] = [body]
            return status == 200 and text in body

        wait_until(
            ready, timeout=timeout,
            message=lambda: f"{path} never showed {text!r}; last: {found[:1]!r}\n{self.output()}",
        )
        return found[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
        self.proc.wait(timeout=20)


@pytest.fixture(params=sorted(APPS))
def example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Example, str]]:
    target = APPS[request.param][0]
    root = tmp_path / "web"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    served = Example(root, target, tmp_path / "serve.log")
    try:
        yield served, request.param
    finally:
        served.stop()


@pytest.mark.timeout(120)
def test_example_serves_pages_and_applies_edits(example: tuple[Example, str]) -> None:
    served, name = example
    _, greeting_file, pages = APPS[name]
    served.wait_for("/", GREETING, timeout=START_TIMEOUT)
    for path, (status, text) in pages.items():
        got = served.get(path)
        assert got[0] == status, (path, got, served.output())
        assert text in got[1], (path, got)
    status, body = served.get("/api/status")
    assert status == 200, body
    before = json.loads(body)
    assert before["books"] == 20_000

    view = served.root / greeting_file
    original = view.read_text(encoding="utf-8")
    _save(view, original.replace(GREETING, "Edited while serving"))
    served.wait_for("/", "Edited while serving", timeout=RELOAD_TIMEOUT)

    model = served.root / "catalog" / "model.py"
    model_source = model.read_text(encoding="utf-8")
    _save(model, model_source.replace('"{title} ({author}, {year})"', '"{title} by {author}"'))
    served.wait_for("/api/books/3", "Silent River Empire by Alan Turing", timeout=RELOAD_TIMEOUT)
    after = json.loads(served.wait_for("/api/status", '"books"', timeout=RELOAD_TIMEOUT))
    # The catalog module ran again, yet hotmod.keep handed back the catalog made at start-up.
    assert after["built_at"] == before["built_at"], served.output()

    _save(view, original)
    _save(model, model_source)
    served.wait_for("/", GREETING, timeout=RELOAD_TIMEOUT)
    served.wait_for("/api/books/3", "Silent River Empire (Alan Turing", timeout=RELOAD_TIMEOUT)
    assert served.proc.poll() is None, served.output()
