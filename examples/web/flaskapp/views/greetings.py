"""The front page. Edit the text in ``greeting()`` and reload ``/``: it changes at once."""

from __future__ import annotations

from flask import Blueprint, render_template

from catalog.model import CATALOG

bp = Blueprint("greetings", __name__)


def greeting() -> str:
    """The front page's headline."""
    return "Hello from hotmod!"


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html", greeting=greeting(), catalog=CATALOG, picks=CATALOG.search("", limit=5)
    )
