"""What the API sends: Pydantic models (FastAPI validates and documents them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from catalog.model import Book


class BookOut(BaseModel):
    id: int
    title: str
    author: str
    year: int
    score: float = Field(ge=0, le=5)
    label: str

    @classmethod
    def of(cls, book: Book) -> BookOut:
        return cls(
            id=book.id, title=book.title, author=book.author, year=book.year,
            score=book.score, label=book.label(),
        )


class SearchOut(BaseModel):
    query: str
    count: int
    books: list[BookOut]


class StatusOut(BaseModel):
    books: int
    built_ms: int
    built_at: float
