"""Error handlers: HTML pages for browsers, JSON under ``/api``."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    if request.path.startswith("/api/"):
        return jsonify(error=error.name, detail=error.description), code
    return render_template("error.html", error=error), code


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
