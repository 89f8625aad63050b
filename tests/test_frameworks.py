"""Issue 5: edits of real framework code (Flask, FastAPI, Starlette, Pydantic, Jinja, click).

Each program's ``app.py`` builds a real app. Its entry script starts that app
on a real server bound to 127.0.0.1 (port 0) in a daemon thread before it
serves probes (Werkzeug's server for WSGI, uvicorn for ASGI), and ``probe()``
fetches pages over HTTP with ``urllib.request`` (bounded timeouts). The server
holds the app object made at start-up, as a real deployment does: an edit must
reach the running app, not just the module.

Numbers (§1.N) are the failures of issue 5; see also ``test_realcode.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from oracle import DEFAULT_MAIN, HotProgramFactory, code

pytestmark = pytest.mark.timeout(120)



HOLDER = """
    LIVE = {}
"""

#: Serves ``app.app`` on 127.0.0.1 and fetches from it. Not edited by the tests.
WEB = """
    \"\"\"A real server for the program's app, in a daemon thread; fetches with deadlines.\"\"\"
    import logging
    import socket
    import sys
    import threading
    import urllib.error
    import urllib.request

    TIMEOUT = 10.0
    BASE = {}


    def start(module_name):
        # Looked up by name, so the entry script's top level reads no name of app.py.
        app = sys.modules[module_name].app
        if hasattr(app, "wsgi_app"):
            return _serve_wsgi(app)
        return _serve_asgi(app)


    def _serve_wsgi(app):
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, name="wsgi", daemon=True).start()
        BASE["url"] = f"http://127.0.0.1:{server.server_port}"
        return BASE["url"]


    def _serve_asgi(app):
        import uvicorn

        # Bound and listening before uvicorn runs: a request made early waits in the backlog.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="asgi", daemon=True
        ).start()
        BASE["url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return BASE["url"]


    def get(path):
        try:
            with urllib.request.urlopen(BASE["url"] + path, timeout=TIMEOUT) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}: {exc.read().decode()[:300]}"
"""


def _server_main() -> str:
    """DEFAULT_MAIN, starting ``app.app`` on a real server before it serves probes."""
    main = DEFAULT_MAIN.replace("import app\n", "import app\nimport web\n", 1)
    main = main.replace(
        'if __name__ == "__main__":\n    serve()',
        'if __name__ == "__main__":\n    web.start("app")\n    serve()',
    )
    assert "web.start" in main, "DEFAULT_MAIN changed: update _server_main"
    assert "import web" in main, "DEFAULT_MAIN changed: update _server_main"
    return main


SERVER_MAIN = _server_main()


def _files(app: str, **more: str) -> dict[str, str]:
    return {"web.py": WEB, "main.py": SERVER_MAIN, "app.py": app, **more}


def _error(event: dict[str, Any]) -> str:
    error = event.get("error") or {}
    assert isinstance(error, dict)
    return str(error.get("message", ""))


# --------------------------------------------------------------------------------------
# §1.1 Flask modules that import the request globals

FLASK_APP = """
    from flask import Flask, current_app, g, request, session

    import lib
    import web

    app = Flask(__name__)
    app.secret_key = "not-a-secret"


    @app.route("/hello")
    def hello():
        g.who = request.args.get("who", "nobody")
        session["seen"] = True
        return "hello-1 " + g.who + " " + lib.suffix() + " from " + current_app.name


    def probe():
        return {"hello": web.get("/hello?who=ann")}
"""

FLASK_LIB = """
    def suffix():
        return "lib-1"
"""


# issue 5 §1.1: 'Working outside of application context' on body edit (fixed)
def test_flask_view_body_edit_in_module_importing_request(
    hot_program: HotProgramFactory,
) -> None:
    prog = hot_program(_files(FLASK_APP, **{"lib.py": FLASK_LIB}))
    assert prog.probe() == {"hello": "hello-1 ann lib-1 from app"}
    prog.replace("app.py", "hello-1", "hello-2")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"hello": "hello-2 ann lib-1 from app"}


# issue 5 §1.1: the failed Flask module stays pending, later edits fail (fixed)
def test_flask_later_edit_applies_after_a_failed_one(hot_program: HotProgramFactory) -> None:
    """Whatever happens to a body edit of a Flask module, the next save must apply."""
    prog = hot_program(_files(FLASK_APP, **{"lib.py": FLASK_LIB}))
    prog.replace("app.py", "hello-1", "hello-2")
    first = prog.reload_and_expect("applied")
    prog.replace("lib.py", "lib-1", "lib-2")
    event = prog.wait_for_reload()
    if event.get("outcome") != "applied":
        raise prog.fail(
            f"after a {first.get('outcome')} reload ({_error(first)!r}) an edit of another"
            f" module must apply, got {event.get('outcome')}: {_error(event)!r}"
        )
    hot = prog.assert_matches_fresh()
    assert hot == {"hello": "hello-2 ann lib-2 from app"}


# --------------------------------------------------------------------------------------
# §1.2 a Flask app factory: views are closures made at run time

FACTORY_APP = """
    from flask import Flask

    import web


    def create_app():
        app = Flask(__name__)

        @app.route("/view")
        def view():
            return "view-1"

        @app.route("/other")
        def other():
            return "other-1"

        return app


    app = create_app()


    def probe():
        return {"view": web.get("/view"), "other": web.get("/other")}
"""


# issue 5 §1.2: view inside create_app() keeps old code (fixed)
def test_flask_factory_view_body_edit(hot_program: HotProgramFactory) -> None:
    prog = hot_program(_files(FACTORY_APP))
    assert prog.probe() == {"view": "view-1", "other": "other-1"}
    prog.replace("app.py", '"view-1"', '"view-2"')
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"view": "view-2", "other": "other-1"}


# --------------------------------------------------------------------------------------
# §1.4 a click command: the decorator returns a Command object, not a function

CLICK_APP = """
    import click
    from click.testing import CliRunner

    import holder


    @click.command()
    @click.option("--n", default=1)
    def cli(n):
        click.echo(f"cli-1 {n}")


    @click.group()
    def group():
        pass


    @group.command()
    def sub():
        click.echo("sub-1")


    def run(command, args):
        result = CliRunner().invoke(command, args)
        return [result.exit_code, result.output]


    def probe():
        old = holder.LIVE.setdefault("cli", cli)  # the command object as it was at start
        return {
            "cli": run(cli, ["--n", "2"]),
            "old-object": run(old, ["--n", "3"]),
            "sub": run(group, ["sub"]),
        }
"""


# issue 5 §1.4: click command callback not patched (fixed)
def test_click_command_body_edit(hot_program: HotProgramFactory) -> None:
    prog = hot_program({"holder.py": HOLDER, "app.py": CLICK_APP})
    assert prog.probe()["cli"] == [0, "cli-1 2\n"]
    prog.edit("app.py", code(CLICK_APP).replace("cli-1", "cli-2").replace("sub-1", "sub-2"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot["old-object"] == [0, "cli-2 3\n"]
    assert hot["sub"] == [0, "sub-2\n"]


# --------------------------------------------------------------------------------------
# FastAPI with a Pydantic model, Starlette

FASTAPI_APP = """
    from fastapi import FastAPI
    from pydantic import BaseModel, field_validator

    import web


    class Item(BaseModel):
        name: str
        price: float = 1.0

        @field_validator("name")
        @classmethod
        def clean(cls, value: str) -> str:
            return value.strip()


    app = FastAPI()


    @app.get("/items/{name}")
    def read_item(name: str) -> Item:
        return Item(name=name + "-1", price=2.0)


    @app.get("/async")
    async def read_async() -> dict[str, str]:
        return {"async": "async-1"}


    def probe():
        return {"item": web.get("/items/x"), "async": web.get("/async")}
"""


def test_fastapi_endpoint_body_edit_with_pydantic_model(hot_program: HotProgramFactory) -> None:
    prog = hot_program(_files(FASTAPI_APP))
    assert prog.probe() == {
        "item": '{"name":"x-1","price":2.0}',
        "async": '{"async":"async-1"}',
    }
    prog.edit(
        "app.py",
        code(FASTAPI_APP).replace('"-1"', '"-2"').replace("async-1", "async-2"),
    )
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"item": '{"name":"x-2","price":2.0}', "async": '{"async":"async-2"}'}
    # a validator's body: the model class is built by Pydantic's metaclass
    prog.replace("app.py", "return value.strip()", "return value.strip().upper()")
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh(what="after a validator body edit")
    assert hot["item"] == '{"name":"X-2","price":2.0}'


STARLETTE_APP = """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    import web


    async def homepage(request):
        return PlainTextResponse("home-1")


    async def user(request):
        return JSONResponse({"user": request.path_params["name"], "v": 1})


    app = Starlette(routes=[Route("/", homepage), Route("/users/{name}", user)])


    def probe():
        return {"home": web.get("/"), "user": web.get("/users/bo")}
"""


def test_starlette_endpoint_body_edit(hot_program: HotProgramFactory) -> None:
    prog = hot_program(_files(STARLETTE_APP))
    assert prog.probe() == {"home": "home-1", "user": '{"user":"bo","v":1}'}
    prog.edit("app.py", code(STARLETTE_APP).replace("home-1", "home-2").replace('"v": 1', '"v": 2'))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"home": "home-2", "user": '{"user":"bo","v":2}'}


# --------------------------------------------------------------------------------------
# Jinja: templates written in Python

JINJA_APP = """
    from flask import Flask, render_template_string
    from jinja2 import Environment

    import web

    PAGE = "<p>{{ name }} page-1</p>"
    COMPILED = Environment(autoescape=True).from_string("<b>{{ name }} compiled-1</b>")

    app = Flask(__name__)


    @app.route("/page/<name>")
    def page(name):
        return render_template_string(PAGE, name=name)


    @app.route("/compiled/<name>")
    def compiled(name):
        return COMPILED.render(name=name)


    def probe():
        return {"page": web.get("/page/%3Cann%3E"), "compiled": web.get("/compiled/bob")}
"""


def test_jinja_template_defined_in_python(hot_program: HotProgramFactory) -> None:
    prog = hot_program(_files(JINJA_APP))
    before = {"page": "<p>&lt;ann&gt; page-1</p>", "compiled": "<b>bob compiled-1</b>"}
    assert prog.probe() == before
    prog.edit("app.py", code(JINJA_APP).replace("page-1", "page-2").replace("compiled-1", "c-2"))
    prog.reload_and_expect("applied")
    hot = prog.assert_matches_fresh()
    assert hot == {"page": "<p>&lt;ann&gt; page-2</p>", "compiled": "<b>bob c-2</b>"}
