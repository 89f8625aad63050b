"""Builds the FastAPI app: routers and an error handler.

``hotmod serve fastapiapp.main:app`` serves ``app``; when a reload re-executes
modules (say, a changed model), this module runs again and builds a fresh app,
which hotmod swaps in between two requests. The catalog is not built again:
``catalog.model`` keeps it with ``hotmod.keep``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .deps import BookNotFound
from .routers import books, greetings


async def book_not_found(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, BookNotFound):  # registered for BookNotFound only
        raise exc
    return JSONResponse({"error": "Not Found", "detail": f"no book {exc.book_id}"}, 404)


def create_app() -> FastAPI:
    """A new app with every router and handler registered."""
    app = FastAPI(title="hotmod example: books")
    app.include_router(greetings.router)
    app.include_router(books.router, prefix="/api")
    app.add_exception_handler(BookNotFound, book_not_found)
    return app


app = create_app()
