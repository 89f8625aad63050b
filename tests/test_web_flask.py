"""The Flask adapter: every edit serves what a fresh start on the new sources serves.

Each test serves a real Flask project in-process under a real Werkzeug server
(:class:`webapp.ServedApp`), applies edits in place (``served.applied``) and
compares the responses with a fresh process started on the same sources
(:func:`webapp.fresh`), status and body.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from webapp import DEADLINE_S, Response, ServedApp, fresh, write_project


def project(files: Mapping[str, str]) -> dict[str, str]:
    """Sources dedented once, so that edits can be written flush left."""
    return {name: textwrap.dedent(text).lstrip() for name, text in files.items()}


CLASSIC = project({
    "fl/__init__.py": "",
    "fl/state.py": """
        TEARDOWNS = []
    """,
    "fl/settings.json": '{"GREETING": "hello"}\n',
    "fl/app.py": """
        import json

        from flask import Flask
        from werkzeug.routing import BaseConverter

        class UpperConverter(BaseConverter):
            def to_python(self, value):
                return value.upper()

        app = Flask(__name__)
        app.config["SECRET_KEY"] = "s3cret"
        app.config["TEMPLATES_AUTO_RELOAD"] = True  # hotmod turns Jinja's own reload off
        app.config.from_file("settings.json", load=json.load)
        app.url_map.strict_slashes = False
        app.url_map.converters["upper"] = UpperConverter

        @app.route("/")
        def index():
            return "index"

        @app.route("/shout/<upper:word>")
        def shout(word):
            return word

        from fl import views  # noqa: E402  (registers on app)
        from fl.admin import admin  # noqa: E402
        app.register_blueprint(admin, url_prefix="/admin")
    """,
    "fl/views.py": """
        from flask import g, render_template, session

        from fl.app import app
        from fl.state import TEARDOWNS

        @app.before_request
        def before():
            g.tag = "b1"

        @app.after_request
        def after(response):
            response.headers["X-After"] = "a1"
            return response

        @app.teardown_request
        def teardown(exc):
            TEARDOWNS.append("t1")

        @app.errorhandler(404)
        def missing(error):
            return "missing v1", 404

        @app.context_processor
        def inject():
            return {"who": "world"}

        @app.template_filter("shout")
        def shout_filter(text):
            return text.upper() + "!"

        @app.url_value_preprocessor
        def pull_lang(endpoint, values):
            g.lang = values.pop("lang", None) if values else None

        @app.url_defaults
        def add_lang(endpoint, values):
            if "lang" in values or not app.url_map.is_endpoint_expecting(endpoint, "lang"):
                return
            values["lang"] = "en"

        @app.cli.command("hello")
        def hello():
            print("hello v1")

        @app.route("/tag")
        def tag():
            return g.tag

        @app.route("/teardowns")
        def teardowns():
            return TEARDOWNS[-1] if TEARDOWNS else "none"

        @app.route("/page")
        def page():
            return render_template("page.html", name="ann")

        @app.route("/<lang>/about")
        def about():
            return f"about {g.lang}"

        @app.route("/link")
        def link():
            from flask import url_for
            return url_for("about")

        @app.route("/session/set")
        def session_set():
            session["user"] = "ann"
            return "set"

        @app.route("/session/get")
        def session_get():
            return session.get("user", "nobody")

        @app.route("/config")
        def config():
            return app.config["GREETING"]

        @app.route("/old")
        def old():
            return "old"
    """,
    "fl/admin.py": """
        from flask import Blueprint

        from fl.reports import reports

        admin = Blueprint("admin", __name__)

        @admin.route("/")
        def home():
            return "admin v1"

        @admin.cli.command("purge")
        def purge():
            print("purge v1")

        admin.register_blueprint(reports, url_prefix="/reports")
    """,
    "fl/reports.py": """
        from flask import Blueprint

        reports = Blueprint("reports", __name__)

        @reports.route("/")
        def listing():
            return "reports v1"
    """,
    "fl/templates/page.html": "{{ who }} {{ name|shout }} v1\n",
})

TARGET = "fl.app:app"
PATHS = ["/", "/shout/abc", "/shout/abc/", "/tag", "/page", "/en/about", "/link", "/config",
         "/old", "/nowhere", "/admin/", "/admin/reports/"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    """The classic project, served."""
    write_project(tmp_path, CLASSIC)
    with ServedApp(tmp_path, TARGET) as app:
        yield app


def assert_fresh(
    served: ServedApp, paths: Iterable[str], *, target: str = TARGET, factory: bool = False
) -> dict[str, Response]:
    """Each path answers (status, body) as a fresh process on the same sources does."""
    paths = list(paths)
    expected = fresh(served.root, target, paths, factory=factory)
    for path in paths:
        got = served.get(path)
        assert (got.status, got.body) == (expected[path].status, expected[path].body), path
    return expected


def rules(app: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted(
        (r.rule, r.endpoint, tuple(sorted(r.methods or ()))) for r in app.url_map.iter_rules()
    )


REGISTRIES = (
    "view_functions", "error_handler_spec", "before_request_funcs", "after_request_funcs",
    "teardown_request_funcs", "template_context_processors", "url_value_preprocessors",
    "url_default_functions", "blueprints", "extensions",
)


def registrations(app: Any) -> dict[str, str]:
    """What the app keeps, by identity (reprs name the objects' addresses)."""
    found = {name: repr(getattr(app, name)) for name in REGISTRIES}
    found["filters"] = repr(app.jinja_env.filters)
    found["commands"] = repr(app.cli.commands)
    for name, blueprint in app.blueprints.items():
        found[f"deferred {name}"] = repr(blueprint.deferred_functions)
    return found


def edited(files: Mapping[str, str], name: str, *pairs: tuple[str, str]) -> str:
    text = files[name]
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_routes_added_changed_and_removed(served: ServedApp) -> None:
    assert served.get("/tag").body == "b1"
    views = edited(
        CLASSIC, "fl/views.py",
        ('@app.route("/old")\ndef old():\n    return "old"\n', ""),  # removed
        ('@app.route("/tag")', '@app.route("/label")'),  # changed
    ) + '\n@app.route("/new")\ndef new():\n    return "new " + g.tag\n'  # added
    served.applied({"fl/views.py": views})
    assert served.get("/new").body == "new b1"
    assert served.get("/old").status == 404
    assert_fresh(served, [*PATHS, "/new", "/label"])
    # A body edit afterwards is patched in place and reaches the rebuilt app.
    assert served.slot is not None
    app = served.slot.app
    served.applied({"fl/views.py": views.replace('"new "', '"NEW "')})
    assert served.slot.app is app
    assert served.get("/new").body == "NEW b1"


def test_blueprints_new_changed_removed_and_nested(served: ServedApp) -> None:
    assert served.get("/admin/reports/").body == "reports v1"
    # Changed: a blueprint's route edited and one added (its module re-executes).
    admin = edited(CLASSIC, "fl/admin.py", ('"admin v1"', '"admin v2"')) + (
        '\n@admin.route("/users")\ndef users():\n    return "users"\n'
    )
    # Nested: the inner blueprint gains a route, in the same batch.
    reports = CLASSIC["fl/reports.py"] + (
        '\n@reports.route("/daily")\ndef daily():\n    return "daily"\n'
    )
    served.applied({"fl/admin.py": admin, "fl/reports.py": reports})
    assert served.get("/admin/users").body == "users"
    assert served.get("/admin/reports/daily").body == "daily"
    paths = [*PATHS, "/admin/users", "/admin/reports/daily", "/extra/"]
    assert_fresh(served, paths)
    # New: a blueprint in a new module, registered by the app's module.
    app_py = CLASSIC["fl/app.py"] + (
        "from fl.extra import extra  # noqa: E402\n"
        'app.register_blueprint(extra, url_prefix="/extra")\n'
    )
    extra = (
        "from flask import Blueprint\n\n"
        'extra = Blueprint("extra", __name__)\n\n'
        '@extra.route("/")\ndef home():\n    return "extra"\n'
    )
    served.applied({"fl/app.py": app_py, "fl/extra.py": extra})
    assert served.get("/extra/").body == "extra"
    # Only the reports module changes: the rest of the app is rebuilt around it.
    served.applied({"fl/reports.py": reports.replace('"daily"', '"daily v2"')})
    assert served.get("/admin/reports/daily").body == "daily v2"
    # Removed: the nested blueprint, then the new one.
    admin = edited({"a": admin}, "a", (
        'admin.register_blueprint(reports, url_prefix="/reports")', ""
    ))
    served.applied({"fl/admin.py": admin})
    assert served.get("/admin/reports/").status == 404
    served.applied({"fl/app.py": CLASSIC["fl/app.py"]})
    assert served.get("/extra/").body == "missing v1"
    assert_fresh(served, paths)


def test_hooks_handlers_processors_filters_and_url_processors(served: ServedApp) -> None:
    paths = ["/tag", "/teardowns", "/page", "/en/about", "/link", "/nowhere", "/config"]
    served.get("/tag")
    # Registrations change: the app is rebuilt from the new sources.
    views = CLASSIC["fl/views.py"] + (
        "\n@app.before_request\ndef second():\n    g.tag += '+2'\n"
        "\n@app.errorhandler(405)\ndef not_allowed(error):\n    return 'nope', 405\n"
        "\n@app.context_processor\ndef more():\n    return {'who': 'everyone'}\n"
    )
    served.applied({"fl/views.py": views})
    assert served.get("/tag").body == "b1+2"
    assert served.get("/page").body == "everyone ANN! v1"
    assert served.get("/tag", method="POST").body == "nope"
    assert_fresh(served, paths)
    # Bodies change: patched in place, and the rebuilt app runs the new code.
    assert served.slot is not None
    app = served.slot.app
    views = edited(
        {"v": views}, "v",
        ('g.tag = "b1"', 'g.tag = "b2"'), ('"a1"', '"a2"'), ('"t1"', '"t2"'),
        ('"missing v1"', '"missing v2"'), ("'everyone'", "'earth'"),
        ('.upper() + "!"', '.upper() + "?"'), ('g.lang = values', 'g.lang = "L-" + values'),
        ('values["lang"] = "en"', 'values["lang"] = "fr"'), ("'nope'", "'no way'"),
    )
    served.applied({"fl/views.py": views})
    assert served.slot.app is app
    assert served.get("/tag").headers["x-after"] == "a2"
    assert served.get("/tag").body == "b2+2"
    assert served.get("/teardowns").body == "t2"
    assert served.get("/page").body == "earth ANN? v1"
    assert served.get("/link").body == "/fr/about"
    expected = assert_fresh(served, [*paths, "/fr/about"])
    assert expected["/nowhere"].body == "missing v2"
    assert expected["/en/about"].body == "about L-en"


FRESH_CLI = """
import json, sys
sys.path.insert(0, sys.argv[1])
module, _, attr = sys.argv[2].partition(":")
app = getattr(__import__(module, fromlist=[attr]), attr)
runner = app.test_cli_runner()
print(json.dumps({c: runner.invoke(args=c.split()).output for c in sys.argv[3:]}))
"""


def cli_outputs(app: Any, commands: list[str]) -> dict[str, str]:
    runner = app.test_cli_runner()
    return {c: runner.invoke(args=c.split()).output for c in commands}


def fresh_cli_outputs(root: Path, target: str, commands: list[str]) -> dict[str, str]:
    import json

    done = subprocess.run(
        [sys.executable, "-c", FRESH_CLI, str(root), target, *commands],
        capture_output=True, text=True, timeout=30, cwd=root, check=True,
    )
    outputs: dict[str, str] = json.loads(done.stdout)
    return outputs


def test_cli_commands(served: ServedApp) -> None:
    commands = ["hello", "admin purge", "bye", "admin report"]
    assert served.slot is not None
    assert cli_outputs(served.slot.app, ["hello"]) == {"hello": "hello v1\n"}
    views = CLASSIC["fl/views.py"] + (
        '\n@app.cli.command("bye")\ndef bye():\n    print("bye v1")\n'
    )
    admin = CLASSIC["fl/admin.py"] + (
        '\n@admin.cli.command("report")\ndef report():\n    print("report v1")\n'
    )
    served.applied({"fl/views.py": views, "fl/admin.py": admin})
    assert cli_outputs(served.slot.app, commands) == fresh_cli_outputs(
        served.root, TARGET, commands
    )
    # Body edits reach the commands of the rebuilt app.
    served.applied({
        "fl/views.py": views.replace('"hello v1"', '"hello v2"'),
        "fl/admin.py": admin.replace('"purge v1"', '"purge v2"'),
    })
    got = cli_outputs(served.slot.app, commands)
    assert got["hello"] == "hello v2\n"
    assert got["admin purge"] == "purge v2\n"
    assert got == fresh_cli_outputs(served.root, TARGET, commands)


def applied_from_outside(served: ServedApp, name: str, text: str) -> None:
    """Write ``name`` from another process, then apply it: a file this process
    writes itself is its data, never a dependency (see filedeps.py)."""
    path = served.root / name
    subprocess.run(
        [sys.executable, "-S", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
         str(path), text], check=True, timeout=30,
    )
    result = served.reloader.apply([path])
    assert result.outcome == "applied", (result.outcome, result.error, result.traceback)


def test_config_converters_url_map_options_and_sessions_survive(served: ServedApp) -> None:
    cookie = served.get("/session/set").headers["set-cookie"].split(";")[0]
    # The config file the app module reads: that module re-executes, the app is rebuilt.
    applied_from_outside(served, "fl/settings.json", '{"GREETING": "howdy"}\n')
    assert served.get("/config").body == "howdy"
    assert served.get("/shout/abc/").body == "ABC"  # converter and strict_slashes
    assert served.get("/session/get", headers={"Cookie": cookie}).body == "ann"
    # A config value set in the module itself.
    app_py = CLASSIC["fl/app.py"].replace(
        "app.url_map.strict_slashes = False", 'app.config["GREETING"] = "hi"\n'
        "app.url_map.strict_slashes = False"
    )
    served.applied({"fl/app.py": app_py})
    assert served.get("/config").body == "hi"
    assert served.get("/session/get", headers={"Cookie": cookie}).body == "ann"
    assert_fresh(served, [*PATHS, "/session/get"])
    # The converter's body edited: the rebuilt app's rules use the live class.
    served.applied({"fl/app.py": app_py.replace("value.upper()", "value.upper() * 2")})
    assert served.get("/shout/abc").body == "ABCABC"
    assert_fresh(served, ["/shout/abc", "/shout/abc/"])


def test_failed_batch_leaves_the_url_map_then_the_fix_applies(served: ServedApp) -> None:
    assert served.slot is not None
    before, app = rules(served.slot.app), served.slot.app
    answers = {p: served.get(p) for p in PATHS}
    kept = registrations(app)
    views = CLASSIC["fl/views.py"] + (
        '\n@app.route("/added")\ndef added():\n    return "added"\n'
        '\nraise RuntimeError("broken views")\n'
    )
    # The blueprint's module changes too: its registrations fail with the batch.
    admin = CLASSIC["fl/admin.py"] + '\n@admin.route("/more")\ndef more():\n    return "m"\n'
    result = served.edit({"fl/views.py": views, "fl/admin.py": admin})
    assert result.outcome == "failed"
    assert result.error is not None
    assert "broken views" in str(result.error)
    assert served.slot.app is app
    assert rules(app) == before
    assert registrations(app) == kept
    assert "added" not in app.view_functions
    for path, answer in answers.items():
        got = served.get(path)
        assert (got.status, got.body) == (answer.status, answer.body), path
    assert served.get("/added").status == 404
    served.applied({"fl/views.py": views.replace('raise RuntimeError("broken views")', "")})
    assert served.get("/added").body == "added"
    assert served.get("/admin/more").body == "m"  # pending with it, applied with the fix
    assert_fresh(served, [*PATHS, "/added", "/admin/more"])


def test_template_edit_is_served_at_once(served: ServedApp) -> None:
    assert served.slot is not None
    app = served.slot.app
    assert served.get("/page").body == "world ANN! v1"
    result = served.applied({"fl/templates/page.html": "{{ name|shout }} v2 {{ who }}\n"})
    assert result.reexecuted == ()
    assert served.slot.app is app
    assert served.get("/page").body == "ANN! v2 world"
    assert_fresh(served, ["/page"])
    # Deleted: rendering it fails from now on, as it would in a fresh process.
    served.applied({"fl/templates/page.html": None})
    assert served.get("/page").status == 500
    assert_fresh(served, ["/page"])


def test_template_syntax_error_fails_the_batch(served: ServedApp) -> None:
    broken = "line one\n{{ name ! }}\nline three\n"
    result = served.edit({"fl/templates/page.html": broken})
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.path == served.root / "fl/templates/page.html"
    assert result.error.lineno == 2
    assert served.get("/page").body == "world ANN! v1"  # its first render: the old text
    served.applied({"fl/templates/page.html": broken.replace(" !", "")})
    assert served.get("/page").body == "line one\nann\nline three"
    assert_fresh(served, ["/page"])


def test_template_and_python_files_apply_together(served: ServedApp) -> None:
    assert served.get("/page").body == "world ANN! v1"
    # A body edit (patched) and a template, one batch.
    views = CLASSIC["fl/views.py"].replace('name="ann"', 'name="bob"')
    template = "{{ who }}: {{ name|shout }} v2\n"
    served.applied({"fl/views.py": views, "fl/templates/page.html": template})
    assert served.get("/page").body == "world: BOB! v2"
    assert_fresh(served, ["/page"])
    # The Python file fails: the template saved with it stays old too.
    broken = views.replace('name="bob"', 'name="cy"') + '\nraise RuntimeError("no")\n'
    result = served.edit({
        "fl/views.py": broken, "fl/templates/page.html": "{{ name }} v3\n",
    })
    assert result.outcome == "failed"
    assert served.get("/page").body == "world: BOB! v2"
    # Fixing the Python file applies the template still pending with it.
    fixed = broken.replace('raise RuntimeError("no")', "")
    served.applied({"fl/views.py": fixed})
    assert served.get("/page").body == "cy v3"
    # A template with a batch that rebuilds the app: the new app serves it.
    served.applied({
        "fl/views.py": fixed + "\nSTAMP = 4\n", "fl/templates/page.html": "{{ who }} v4\n",
    })
    assert served.get("/page").body == "world v4"
    assert_fresh(served, ["/page"])


def test_a_refused_template_is_never_read_from_disk(served: ServedApp) -> None:
    """Templates not rendered yet when their edit is refused still render the old text."""
    views = CLASSIC["fl/views.py"]
    # A Python syntax error (the batch fails while planning) with a template edit.
    result = served.edit({"fl/views.py": views + "\ndef (:\n", "fl/templates/page.html": "x\n"})
    assert result.outcome == "failed"
    assert served.get("/page").body == "world ANN! v1"
    # Fixed: the pending template applies with it.
    served.applied({"fl/views.py": views, "fl/templates/page.html": "{{ who }} v2\n"})
    assert served.get("/page").body == "world v2"
    # A rebuilt app reads templates afresh: still only what was committed.
    served.applied({"fl/views.py": views + "\nSTAMP = 1\n"})
    result = served.edit({"fl/templates/page.html": "{% if %}\n"})
    assert result.outcome == "failed"
    assert served.get("/page").body == "world v2"
    served.applied({"fl/templates/page.html": "{{ who }} v3\n"})
    assert served.get("/page").body == "world v3"
    assert_fresh(served, ["/page"])


def test_the_watcher_reports_template_edits(served: ServedApp) -> None:
    assert served.get("/page").body == "world ANN! v1"
    served.reloader.start()  # watches the roots from a thread, as hotmod serve does
    (served.root / "fl/templates/page.html").write_text("watched\n", encoding="utf-8")
    deadline = time.monotonic() + DEADLINE_S
    while served.get("/page").body != "watched":
        assert time.monotonic() < deadline, "the template edit was never applied"
        time.sleep(0.02)


SPLIT = project({
    "sp/__init__.py": "",
    "sp/app.py": """
        from flask import Flask

        app = Flask(__name__)

        @app.route("/")
        def index():
            return "index"
    """,
    "sp/parts.py": """
        from flask import Blueprint

        parts = Blueprint("parts", __name__)
    """,
    "sp/part_views.py": """
        from sp.parts import parts

        @parts.route("/one")
        def one():
            return "one"
    """,
    "sp/views.py": """
        from sp.app import app

        @app.route("/hello")
        def hello():
            return "hello"
    """,
    "sp/helpers.py": """
        def add_routes(app):
            @app.route("/helped")
            def helped():
                return "helped v1"
    """,
    "sp/late.py": """
        from sp.app import app
        from sp.helpers import add_routes

        def register():
            @app.route("/late")
            def late():
                return "late v1"

        register()
        add_routes(app)
    """,
    "sp/wsgi.py": """
        from sp.app import app
        import sp.late  # noqa: F401
        import sp.views  # noqa: F401
        import sp.part_views  # noqa: F401
        from sp.parts import parts

        app.register_blueprint(parts, url_prefix="/parts")
    """,
})


def test_modules_registering_on_an_app_or_blueprint_defined_elsewhere(tmp_path: Path) -> None:
    """views.py registers on the app of app.py (no import cycle); part_views.py on a
    blueprint of parts.py. Re-executing them alone would register on the live objects."""
    write_project(tmp_path, SPLIT)
    target = "sp.wsgi:app"
    with ServedApp(tmp_path, target) as served:
        assert served.get("/hello").body == "hello"
        assert served.get("/parts/one").body == "one"
        views = SPLIT["sp/views.py"] + '\n@app.route("/added")\ndef added():\n    return "a"\n'
        part_views = SPLIT["sp/part_views.py"] + (
            '\n@parts.route("/two")\ndef two():\n    return "two"\n'
        )
        result = served.applied({"sp/views.py": views, "sp/part_views.py": part_views})
        assert {"sp.app", "sp.parts", "sp.wsgi"} <= set(result.reexecuted)
        assert served.get("/added").body == "a"
        assert served.get("/parts/two").body == "two"
        assert_fresh(served, ["/", "/hello", "/added", "/parts/one", "/parts/two"], target=target)
        # A route removed from the blueprint's other module.
        served.applied({"sp/part_views.py": SPLIT["sp/part_views.py"]})
        assert served.get("/parts/two").status == 404
        assert_fresh(served, ["/parts/one", "/parts/two"], target=target)


def test_body_edits_of_functions_that_register_at_import(tmp_path: Path) -> None:
    """Only a function body changes, but import-time code runs it: the module (or the
    importer calling it) re-executes, onto a new app, and the new routes are served."""
    write_project(tmp_path, SPLIT)
    target = "sp.wsgi:app"
    paths = ["/late", "/later", "/helped", "/helper", "/hello"]
    with ServedApp(tmp_path, target) as served:
        assert served.get("/late").body == "late v1"
        late = edited(SPLIT, "sp/late.py", (
            '        return "late v1"\n',
            '        return "late v2"\n\n    @app.route("/later")\n'
            '    def later():\n        return "later"\n',
        ))
        helpers = edited(SPLIT, "sp/helpers.py", (
            '        return "helped v1"\n',
            '        return "helped v2"\n\n    @app.route("/helper")\n'
            '    def helper():\n        return "helper"\n',
        ))
        served.applied({"sp/late.py": late})
        assert served.get("/later").body == "later"
        served.applied({"sp/helpers.py": helpers})
        assert served.get("/helper").body == "helper"
        assert_fresh(served, paths, target=target)


FACTORY = project({
    "fac/__init__.py": "",
    "fac/bp.py": """
        from flask import Blueprint

        bp = Blueprint("bp", __name__)

        @bp.route("/bp")
        def in_bp():
            return "bp v1"
    """,
    "fac/app.py": """
        from flask import Flask

        def create_app():
            app = Flask(__name__)

            @app.route("/")
            def index():
                return "index v1"

            from fac.bp import bp
            app.register_blueprint(bp)
            return app
    """,
    "fac/wsgi.py": """
        from fac.app import create_app

        app = create_app()
    """,
})


@pytest.mark.parametrize(("target", "factory"), [
    ("fac.app:create_app", True), ("fac.wsgi:app", False),
])
def test_views_inside_an_app_factory(tmp_path: Path, target: str, factory: bool) -> None:
    write_project(tmp_path, FACTORY)
    paths = ["/", "/bp", "/added"]
    with ServedApp(tmp_path, target, factory=factory) as served:
        assert served.get("/").body == "index v1"
        # A view's body inside the factory.
        factory_py = FACTORY["fac/app.py"].replace("index v1", "index v2")
        served.applied({"fac/app.py": factory_py})
        assert served.get("/").body == "index v2"
        # A route added inside the factory.
        served.applied({"fac/app.py": edited({"f": factory_py}, "f", (
            "    return app",
            '    @app.route("/added")\n    def added():\n        return "added"\n\n    return app',
        ))})
        assert served.get("/added").body == "added"
        served.applied({"fac/bp.py": FACTORY["fac/bp.py"].replace("bp v1", "bp v2")})
        assert served.get("/bp").body == "bp v2"
        assert_fresh(served, paths, target=target, factory=factory)


EXTRAS = project({
    "cb/__init__.py": "",
    "cb/ext.py": """
        class Stamp:
            def init_app(self, app):
                app.extensions["stamp"] = self
                app.after_request(self.add_header)

            def add_header(self, response):
                response.headers["X-Stamp"] = "stamp v1"
                return response

        stamp = Stamp()
    """,
    "cb/shop.py": """
        from flask import Blueprint, render_template

        shop = Blueprint("shop", __name__, template_folder="shop_templates")

        @shop.app_template_filter("price")
        def price(value):
            return f"${value}"

        @shop.app_template_global()
        def shop_name():
            return "shop v1"

        @shop.route("/")
        def front():
            return render_template("shop/front.html", cost=3)
    """,
    "cb/shop_templates/shop/front.html": "{{ shop_name() }} {{ cost|price }} v1",
    "cb/app.py": """
        from flask import Flask
        from flask.views import MethodView, View

        from cb.ext import stamp
        from cb.shop import shop

        class Items(MethodView):
            def get(self):
                return "items v1"

        class Hello(View):
            init_every_request = False

            def dispatch_request(self):
                return "hello v1"

        app = Flask(__name__)
        stamp.init_app(app)
        app.add_url_rule("/items", view_func=Items.as_view("items"))
        app.add_url_rule("/hello", view_func=Hello.as_view("hello"))
        app.register_blueprint(shop, url_prefix="/shop")
    """,
})


def test_class_views_extensions_and_blueprint_templates(tmp_path: Path) -> None:
    write_project(tmp_path, EXTRAS)
    target, paths = "cb.app:app", ["/items", "/hello", "/shop/"]
    with ServedApp(tmp_path, target) as served:
        assert served.get("/shop/").body == "shop v1 $3 v1"
        # The app's module re-executes: a new app, the kept extension initialised on it.
        app_py = EXTRAS["cb/app.py"] + "\nVERSION = 2\n"
        served.applied({"cb/app.py": app_py})
        assert served.get("/items").headers["x-stamp"] == "stamp v1"
        # Method bodies, an extension's hook, a blueprint's filter and global: patched,
        # and the rebuilt app runs them; a template of the blueprint's folder with them.
        assert served.slot is not None
        app = served.slot.app
        served.applied({
            "cb/app.py": app_py.replace("items v1", "items v2").replace("hello v1", "hello v2"),
            "cb/ext.py": EXTRAS["cb/ext.py"].replace("stamp v1", "stamp v2"),
            "cb/shop.py": EXTRAS["cb/shop.py"].replace("shop v1", "shop v2").replace(
                'f"${value}"', 'f"{value} EUR"'),
            "cb/shop_templates/shop/front.html": "{{ shop_name() }}: {{ cost|price }} v2",
        })
        assert served.slot.app is app
        assert served.get("/items").body == "items v2"
        assert served.get("/hello").body == "hello v2"
        assert served.get("/shop/").body == "shop v2: 3 EUR v2"
        assert served.get("/hello").headers["x-stamp"] == "stamp v2"
        assert_fresh(served, paths, target=target)
