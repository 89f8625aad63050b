"""Book pages: a search form with results, and one page per book."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from catalog.model import CATALOG

bp = Blueprint("books", __name__)

PAGE_SIZE = 20


@bp.get("/")
def search() -> str:
    query = request.args.get("q", "").strip()
    return render_template(
        "books.html", query=query, books=CATALOG.search(query, limit=PAGE_SIZE)
    )


@bp.get("/<int:book_id>")
def detail(book_id: int) -> str:
    book = CATALOG.get(book_id)
    if book is None:
        abort(404, description=f"There is no book {book_id}.")
    return render_template("book.html", book=book)
