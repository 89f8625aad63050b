"""The JSON API: search, one book, and the server's status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, abort, request

from catalog.model import CATALOG

bp = Blueprint("api", __name__)

MAX_LIMIT = 100


@bp.get("/books")
def search() -> dict[str, Any]:
    query = request.args.get("q", "")
    limit = min(request.args.get("limit", 10, type=int) or 10, MAX_LIMIT)
    books = CATALOG.search(query, limit=limit)
    return {"query": query, "count": len(books), "books": [asdict(b) for b in books]}


@bp.get("/books/<int:book_id>")
def book(book_id: int) -> dict[str, Any]:
    found = CATALOG.get(book_id)
    if found is None:
        abort(404, description=f"no book {book_id}")
    return {**asdict(found), "label": found.label()}


@bp.get("/status")
def status() -> dict[str, Any]:
    """How big the catalog is, how long it took to build, and when (it survives reloads)."""
    return {
        "books": len(CATALOG),
        "built_ms": round(CATALOG.built_ms),
        "built_at": CATALOG.built_at,
    }
