"""Builds the Flask app: blueprints, the template filter, error pages.

``hotmod serve flaskapp.app:app`` serves ``app``; when a reload re-executes
modules (say, a new route), this module runs again and builds a fresh app,
which hotmod swaps in between two requests. The catalog is not built again:
``catalog.model`` keeps it with ``hotmod.keep``.
"""

from __future__ import annotations

from flask import Flask

from . import api, errors, filters
from .views import books, greetings


def create_app() -> Flask:
    """A new app with every blueprint, filter and error handler registered."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(greetings.bp)
    app.register_blueprint(books.bp, url_prefix="/books")
    app.register_blueprint(api.bp, url_prefix="/api")
    filters.register(app)
    errors.register(app)
    return app


app = create_app()
