"""The JSON API: search, one book, and the server's status."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import BookDep, CatalogDep, PagingDep
from ..schemas import BookOut, SearchOut, StatusOut

router = APIRouter(tags=["books"])


@router.get("/books")
def search(catalog: CatalogDep, paging: PagingDep, q: str = "") -> SearchOut:
    books = catalog.search(q, limit=paging.limit)
    return SearchOut(query=q, count=len(books), books=[BookOut.of(b) for b in books])


@router.get("/books/{book_id}")
def book(found: BookDep) -> BookOut:
    return BookOut.of(found)


@router.get("/status")
def status(catalog: CatalogDep) -> StatusOut:
    """How big the catalog is, how long it took to build, and when (it survives reloads)."""
    return StatusOut(
        books=len(catalog), built_ms=round(catalog.built_ms), built_at=catalog.built_at
    )
