"""The served app's slot: a batch that rebuilds the app swaps it at commit, all or nothing.

Framework-independent behaviour, on a real Werkzeug server and a real uvicorn
server (the Flask and ASGI adapters add what their frameworks need).
"""

from __future__ import annotations

from pathlib import Path

from webapp import ServedApp, fresh, write_project

PLAIN_WSGI = {
    "plain/__init__.py": "",
    "plain/words.py": """
        WORD = "one"
        def shout(text):
            return text.upper()
    """,
    "plain/app.py": """
        from plain.words import WORD, shout

        ROUTES = {}

        def route(path):
            def register(view):
                ROUTES[path] = view
                return view
            return register

        @route("/")
        def index():
            return shout(WORD)

        def app(environ, start_response):
            view = ROUTES.get(environ["PATH_INFO"])
            if view is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"missing"]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [view().encode()]
    """,
}

PLAIN_ASGI = {
    "aplain/__init__.py": "",
    "aplain/app.py": """
        VERSION = "one"

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = f"{VERSION}:{scope['path']}".encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
    """,
}


def test_plain_wsgi_app_is_rebuilt_and_swapped(tmp_path: Path) -> None:
    write_project(tmp_path, PLAIN_WSGI)
    with ServedApp(tmp_path, "plain.app:app") as served:
        assert served.get("/").body == "ONE"
        # A constant in another module: the app module runs again, the new app is swapped in.
        served.applied({"plain/words.py": PLAIN_WSGI["plain/words.py"].replace("one", "two")})
        assert served.get("/").body == "TWO"
        # A route added: served from the next request on.
        app_py = PLAIN_WSGI["plain/app.py"] + """
        @route("/new")
        def new():
            return "new " + WORD
        """
        served.applied({"plain/app.py": app_py})
        assert served.get("/new").body == "new two"
        assert served.slot is not None
        swapped = served.slot.app
        # A body edit of a view: patched in place, the app is not rebuilt, and the
        # view registered by the rebuilt app (a staged function) runs the new code.
        served.applied({"plain/app.py": app_py.replace('"new "', '"NEW "')})
        assert served.slot.app is swapped
        assert served.get("/new").body == "NEW two"
        expected = fresh(tmp_path, "plain.app:app", ["/", "/new"])
        assert served.get("/").body == expected["/"].body
        assert served.get("/new").body == expected["/new"].body


def test_failed_batch_leaves_the_served_app(tmp_path: Path) -> None:
    write_project(tmp_path, PLAIN_WSGI)
    with ServedApp(tmp_path, "plain.app:app") as served:
        assert served.slot is not None
        before = served.slot.app
        broken = PLAIN_WSGI["plain/app.py"] + """
        @route("/new")
        def new():
            return "new"
        raise RuntimeError("not today")
        """
        result = served.edit({"plain/app.py": broken})
        assert result.outcome == "failed"
        assert served.slot.app is before
        assert served.get("/new").status == 404
        assert served.get("/").body == "ONE"
        # Fixing the file applies the pending change.
        served.applied({"plain/app.py": broken.replace('raise RuntimeError("not today")', "")})
        assert served.get("/new").body == "new"


def test_plain_asgi_app_is_swapped(tmp_path: Path) -> None:
    write_project(tmp_path, PLAIN_ASGI)
    with ServedApp(tmp_path, "aplain.app:app") as served:
        assert served.get("/x").body == "one:/x"
        served.applied({"aplain/app.py": PLAIN_ASGI["aplain/app.py"].replace('"one"', '"two"')})
        assert served.get("/x").body == "two:/x"
