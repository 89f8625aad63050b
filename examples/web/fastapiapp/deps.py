"""Dependencies the endpoints take with ``Depends``: the catalog and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from catalog.model import CATALOG, Book, Catalog


class BookNotFound(LookupError):
    """No book has this id (``main.py`` turns it into a JSON 404)."""

    def __init__(self, book_id: int) -> None:
        super().__init__(book_id)
        self.book_id = book_id


def get_catalog() -> Catalog:
    """The catalog built at start-up (kept across reloads by ``hotmod.keep``)."""
    return CATALOG


@dataclass(frozen=True)
class Paging:
    limit: int


def paging(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Paging:
    return Paging(limit)


def get_book(book_id: int, catalog: Annotated[Catalog, Depends(get_catalog)]) -> Book:
    book = catalog.get(book_id)
    if book is None:
        raise BookNotFound(book_id)
    return book


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PagingDep = Annotated[Paging, Depends(paging)]
BookDep = Annotated[Book, Depends(get_book)]
