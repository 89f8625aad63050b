"""Jinja filters the templates use."""

from __future__ import annotations

from flask import Flask


def stars(score: float) -> str:
    """A 0-5 score drawn as five stars: ``3.6`` is ``★★★★☆``."""
    full = round(score)
    return "★" * full + "☆" * (5 - full)


def register(app: Flask) -> None:
    app.add_template_filter(stars, "stars")
