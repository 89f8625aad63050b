"""The front page. Edit the text in ``greeting()`` and reload ``/``: it changes at once."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..deps import CatalogDep

router = APIRouter()


def greeting() -> str:
    """The front page's headline."""
    return "Hello from hotmod!"


@router.get("/", response_class=HTMLResponse)
def index(catalog: CatalogDep) -> str:
    picks = "".join(
        f'<li><a href="/api/books/{b.id}">{escape(b.label())}</a></li>'
        for b in catalog.search("", limit=5)
    )
    return (
        f"<!doctype html><title>Books</title><h1>{escape(greeting())}</h1>"
        f"<p>{len(catalog)} books, built in {catalog.built_ms:.0f} ms at start-up"
        f" and kept across reloads.</p><h2>Top picks</h2><ul>{picks}</ul>"
        '<p><a href="/docs">API docs</a></p>'
    )
