"""The ASGI adapter: FastAPI and Starlette apps edited while served, compared with a fresh start.

Each case serves a real app from a temporary project under a real uvicorn
server (:class:`webapp.ServedApp`), applies an edit in place
(``served.applied``: a test that accepted a restart would prove nothing),
then asks the same requests of the served app and of a fresh process on the
new sources (:func:`webapp.fresh`) and compares status and body (JSON as
JSON).
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fastapi  # noqa: F401  (imported once: every test's app uses it)
import pytest

from hotmod import ReloadResult
from webapp import Response, ServedApp, fresh, write_project

pytestmark = pytest.mark.timeout(90)

JSON = {"Content-Type": "application/json"}


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def _project(files: Mapping[str, str]) -> dict[str, str]:
    """Sources dedented once, so that edits are written as they appear in the file."""
    return {name: _dedent(text) for name, text in files.items()}


SHOP = _project({
    "shop/__init__.py": "",
    "shop/models.py": """
        from pydantic import BaseModel, field_validator


        class Tag(BaseModel):
            label: str


        class Item(BaseModel):
            name: str
            price: float
            tags: list[Tag] = []

            @field_validator("name")
            @classmethod
            def clean(cls, value: str) -> str:
                return value.strip()


        class Receipt(BaseModel):
            total: float
    """,
    "shop/deps.py": """
        def current_user() -> str:
            return "anon"
    """,
    "shop/items.py": """
        from fastapi import APIRouter

        from shop.models import Item, Receipt

        router = APIRouter(prefix="/items")


        @router.get("/receipt", response_model=Receipt)
        def receipt():
            return {"total": 3, "secret": "hidden"}


        @router.get("/{item_id}", response_model=Item)
        def read_item(item_id: int):
            return {"name": f" item{item_id} ", "price": 2, "tags": [{"label": "a"}], "x": 1}


        @router.post("/")
        def create_item(item: Item) -> Item:
            return item


        @router.post("/check")
        def check_item(item: Item):
            return {"isinstance": isinstance(item, Item), "valid": Item.model_validate(
                {"name": "x", "price": 1}).__class__ is Item, "fields": sorted(Item.model_fields)}
    """,
    "shop/app.py": """
        from fastapi import Depends, FastAPI

        from shop import items
        from shop.deps import current_user

        app = FastAPI()
        app.include_router(items.router)


        @app.get("/")
        def index(user: str = Depends(current_user)):
            return {"hello": user}


        @app.get("/search")
        def search(q: str = "x"):
            return {"q": q}
    """,
})

GOOD_ITEM = json.dumps({"name": " pen ", "price": "2.5", "tags": [{"label": "b"}]}).encode()
BAD_ITEM = json.dumps({"name": 3, "tags": [{}]}).encode()
REQUESTS: dict[str, dict[str, Any]] = {
    "/items/?good": {"method": "POST", "body": GOOD_ITEM, "headers": JSON},
    "/items/?bad": {"method": "POST", "body": BAD_ITEM, "headers": JSON},
    "/items/check": {"method": "POST", "body": GOOD_ITEM, "headers": JSON},
}
PATHS = ["/", "/search", "/search?q=1", "/items/7", "/items/receipt", "/items/?good",
         "/items/?bad", "/items/check", "/openapi.json"]


def _norm(response: Response) -> tuple[int, object]:
    try:
        return response.status, response.json()
    except ValueError:
        return response.status, response.body


def assert_fresh(
    served: ServedApp, paths: list[str] = PATHS,
    requests: Mapping[str, Mapping[str, Any]] = REQUESTS,
) -> dict[str, tuple[int, object]]:
    """What the served app answers equals what a fresh start on the same sources answers."""
    expected = fresh(
        served.root, str(served.target), paths, requests=requests, factory=served.target.factory
    )
    got = {p: _norm(served.get(p, **requests.get(p, {}))) for p in paths}
    want = {p: _norm(r) for p, r in expected.items()}
    for path in paths:
        assert got[path] == want[path], path
    return got


class Project:
    """A served project's current sources; edits are applied to the served app in place."""

    def __init__(self, served: ServedApp, files: Mapping[str, str]) -> None:
        self.served = served
        self.files = dict(files)

    def edits(self, *changes: tuple[str, str, str]) -> dict[str, str | None]:
        """The files after replacing ``old`` by ``new`` in each ``(file, old, new)``."""
        out: dict[str, str | None] = {}
        for name, old, new in changes:
            text = out.get(name) or self.files[name]
            assert old in text, (name, old)
            out[name] = text.replace(old, new, 1)
        return out

    def apply(self, *changes: tuple[str, str, str], add: Mapping[str, str] | None = None,
              ) -> ReloadResult:
        """Apply the changes (and new files) as one batch; it must apply in place."""
        files = {**self.edits(*changes), **{k: _dedent(v) for k, v in (add or {}).items()}}
        result = self.served.applied(files)
        self.files.update({k: v for k, v in files.items() if v is not None})
        return result

    def fail(self, *changes: tuple[str, str, str]) -> ReloadResult:
        """Apply the changes as one batch that must fail (nothing applied).

        Later edits start from the text before it (the failing files stay on
        disk, and pending, until an edit rewrites them).
        """
        result = self.served.edit(self.edits(*changes))
        assert result.outcome == "failed", (result.outcome, result.reason)
        return result


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Project]:
    write_project(tmp_path, SHOP)
    with ServedApp(tmp_path, "shop.app:app") as served:
        yield Project(served, SHOP)


# -- routes, routers, dependencies, middleware, exception handlers ---------------------------
def test_routes_added_changed_removed(shop: Project) -> None:
    shop.apply(
        ("shop/app.py", '@app.get("/")\ndef index', '@app.get("/home")\ndef index'),
        ("shop/app.py", 'return {"q": q}', 'return {"q": q, "v": 2}'),
        ("shop/app.py", "\n\n@app.get(\"/search\")", """

@app.get("/new/{n}")
def new(n: int):
    return {"new": n}


@app.get("/search")"""),
    )
    paths = [*PATHS, "/home", "/new/3", "/new/x"]
    got = assert_fresh(shop.served, paths)
    assert got["/"][0] == 404
    assert got["/new/3"] == (200, {"new": 3})
    # A body edit of the new route is patched in place and reaches the served app.
    app = shop.served.slot.app if shop.served.slot else None
    shop.apply(("shop/app.py", 'return {"new": n}', 'return {"new": n * 2}'))
    assert shop.served.slot is not None
    assert shop.served.slot.app is app
    assert shop.served.get("/new/3").json() == {"new": 6}


def test_router_included_and_prefix_changed(shop: Project) -> None:
    admin = """
        from fastapi import APIRouter

        from shop.models import Item

        router = APIRouter(prefix="/admin", tags=["admin"])


        @router.get("/stock", response_model=list[Item])
        def stock():
            return [{"name": "a", "price": 1, "hidden": True}]
    """
    shop.apply(
        ("shop/app.py", "app.include_router(items.router)\n",
         "app.include_router(items.router)\napp.include_router(admin.router)\n"),
        ("shop/app.py", "from shop import items\n", "from shop import admin, items\n"),
        add={"shop/admin.py": admin},
    )
    assert_fresh(shop.served, [*PATHS, "/admin/stock"])
    shop.apply(("shop/items.py", 'prefix="/items"', 'prefix="/goods"'))
    got = assert_fresh(shop.served, ["/items/7", "/goods/7", "/goods/receipt", "/openapi.json"])
    assert got["/items/7"][0] == 404
    assert got["/goods/7"][0] == 200


def test_body_edit_reaches_routes_of_a_router_made_earlier(shop: Project) -> None:
    # The router's module runs again (its routes hold that batch's functions), then
    # only the app's module: the new app takes the router's routes as they are
    # (older FastAPI versions copy them, as the pinned lower bound 0.110 does).
    shop.apply(("shop/items.py", '"x": 1}', '"x": 2}'),
               ("shop/items.py", "prefix=", "tags=[], prefix="))
    shop.apply(("shop/app.py", 'return {"q": q}', 'return {"q": q, "v": 3}'),
               ("shop/app.py", "app = FastAPI()", "app = FastAPI(title='t')"))
    result = shop.apply(("shop/items.py", '"price": 2,', '"price": 5,'))
    assert result.reexecuted == ()
    assert shop.served.get("/items/7").json()["price"] == 5.0


def test_dependency_added_and_its_signature_changed(shop: Project) -> None:
    shop.apply(
        ("shop/deps.py", "def current_user", """class Pager:
    def __init__(self, size: int = 10, page: int = 1) -> None:
        self.size, self.page = size, page


def current_user"""),
        ("shop/app.py", "import current_user", "import Pager, current_user"),
        ("shop/items.py", "import APIRouter", "import APIRouter, Depends"),
        ("shop/items.py", "import Item, Receipt",
         "import Item, Receipt\nfrom shop.deps import current_user"),
        ("shop/items.py", '@router.get("/{item_id}"', """@router.get("/owner")
def owner(user: str = Depends(current_user)):
    return {"owner": user}


@router.get(\"/{item_id}\""""),
        ("shop/app.py", 'def search(q: str = "x"):\n    return {"q": q}',
         'def search(q: str = "x", pager: Pager = Depends()):\n'
         '    return {"q": q, "size": pager.size, "page": pager.page}'),
    )
    paths = ["/search", "/search?size=3&page=2", "/search?size=x", "/openapi.json"]
    assert_fresh(shop.served, [*PATHS, *paths])
    # A class dependency's __init__ signature, edited alone (a body-only edit for the engine).
    result = shop.apply(("shop/deps.py", "size: int = 10", "size: int = 20"))
    assert "shop.app" in result.reexecuted
    got = assert_fresh(shop.served, paths)
    assert got["/search"] == (200, {"q": "x", "size": 20, "page": 1})
    # A parameter added to a dependency: its module re-executes, and so do the
    # modules whose routes were made from it (it keeps its identity: they would not).
    shop.apply(("shop/deps.py", 'def current_user() -> str:\n    return "anon"',
                'def current_user(token: str = "anon") -> str:\n    return str(token).upper()'))
    got = assert_fresh(shop.served, ["/", "/?token=bo", "/openapi.json"])
    assert got["/?token=bo"] == (200, {"hello": "BO"})
    # A body-only edit of its signature (a default, an annotation): FastAPI must read it again.
    # The routes made from it are made again: in the app's module and in a router's.
    result = shop.apply(("shop/deps.py", 'token: str = "anon"', "token: int = 7"))
    assert {"shop.app", "shop.items"} <= set(result.reexecuted)
    got = assert_fresh(shop.served, ["/", "/?token=3", "/?token=bo", "/items/owner",
                                     "/items/owner?token=3", "/openapi.json"])
    assert got["/"] == (200, {"hello": "7"})
    assert got["/items/owner?token=3"] == (200, {"owner": "3"})


def test_middleware_and_exception_handler_added(shop: Project) -> None:
    shop.apply(("shop/app.py", "\n\n@app.get(\"/\")", """


class Teapot(Exception):
    pass


@app.exception_handler(Teapot)
async def teapot(request, exc):
    return JSONResponse({"teapot": str(exc)}, status_code=418)


@app.middleware("http")
async def stamp(request, call_next):
    response = await call_next(request)
    response.headers["x-stamp"] = "one"
    return response


@app.get("/brew")
def brew():
    raise Teapot("short and stout")


@app.get("/")"""), ("shop/app.py", "from fastapi import Depends, FastAPI\n",
                    "from fastapi import Depends, FastAPI\n"
                    "from fastapi.responses import JSONResponse\n"))
    got = assert_fresh(shop.served, [*PATHS, "/brew"])
    assert got["/brew"] == (418, {"teapot": "short and stout"})
    assert shop.served.get("/").headers["x-stamp"] == "one"
    # Edited again: the exception class and the middleware keep their live identity.
    shop.apply(("shop/app.py", '"x-stamp"] = "one"', '"x-stamp"] = "two"'),
               ("shop/app.py", "short and stout", "tall"))
    assert shop.served.get("/brew").json() == {"teapot": "tall"}
    assert shop.served.get("/brew").status == 418
    assert shop.served.get("/").headers["x-stamp"] == "two"
    assert fresh(shop.served.root, "shop.app:app", ["/"])["/"].headers["x-stamp"] == "two"


# -- signatures: what FastAPI derived from an endpoint's parameters ----------------------------
def test_query_parameters_added_to_an_endpoint(shop: Project) -> None:
    shop.apply(("shop/app.py", 'def search(q: str = "x"):\n    return {"q": q}',
                'def search(q: str = "x", limit: int = 5, exact: bool = False):\n'
                '    return {"q": q, "limit": limit, "exact": exact}'))
    paths = ["/search", "/search?limit=2&exact=true", "/search?limit=z", "/openapi.json"]
    assert_fresh(shop.served, paths)
    shop.apply(("shop/app.py", 'def search(q: str = "x", limit', "def search(q: str, limit"))
    got = assert_fresh(shop.served, paths)
    assert got["/search"][0] == 422


def test_signature_changed_by_a_body_only_edit(shop: Project) -> None:
    # Annotations and defaults only: the engine patches the function in place.
    result = shop.apply(("shop/app.py", 'def search(q: str = "x"):', "def search(q: int = 3):"))
    assert "shop.app" in result.reexecuted  # the routes were made again
    got = assert_fresh(shop.served, ["/search", "/search?q=1", "/search?q=z", "/openapi.json"])
    assert got["/search"] == (200, {"q": 3})
    shop.apply(("shop/items.py", "def read_item(item_id: int):", "def read_item(item_id: str):"))
    assert_fresh(shop.served, ["/items/7", "/items/x", "/openapi.json"])


def test_body_model_of_an_endpoint_changed(shop: Project) -> None:
    shop.apply(
        ("shop/models.py", "class Receipt(BaseModel):", """class Order(BaseModel):
    item: Item
    quantity: int = 1


class Receipt(BaseModel):"""),
        ("shop/items.py", "import Item, Receipt", "import Item, Order, Receipt"),
        ("shop/items.py", "def create_item(item: Item) -> Item:\n    return item",
         "def create_item(order: Order) -> Order:\n    return order"),
    )
    order = json.dumps({"item": {"name": " o ", "price": 1}, "quantity": "2"}).encode()
    requests = {**REQUESTS, "/items/?order": {"method": "POST", "body": order, "headers": JSON}}
    got = assert_fresh(shop.served, [*PATHS, "/items/?order"], requests)
    assert got["/items/?order"] == (200, {"item": {"name": "o", "price": 1.0, "tags": []},
                                          "quantity": 2})


# -- Pydantic models edited in place --------------------------------------------------------------
def test_model_field_added_response_and_request(shop: Project) -> None:
    shop.apply(("shop/models.py", "    price: float\n", "    price: float\n    stock: int = 5\n"),
               ("shop/models.py", "total: float\n", 'total: float\n    currency: str = "EUR"\n'))
    got = assert_fresh(shop.served)
    assert got["/items/7"][1]["stock"] == 5  # type: ignore[index]
    assert got["/items/receipt"] == (200, {"total": 3.0, "currency": "EUR"})  # response_model only
    assert got["/items/check"][1]["isinstance"] is True  # type: ignore[index]


def test_model_fields_removed_retyped_and_nested(shop: Project) -> None:
    shop.apply(("shop/models.py", "    price: float\n", "    price: int\n"),
               ("shop/models.py", "    label: str\n", "    label: str\n    weight: int = 1\n"))
    got = assert_fresh(shop.served)
    assert got["/items/7"][1]["tags"] == [{"label": "a", "weight": 1}]  # type: ignore[index]
    shop.apply(("shop/models.py", "    tags: list[Tag] = []\n", ""))
    got = assert_fresh(shop.served)
    assert "tags" not in got["/items/7"][1]  # type: ignore[operator]


def test_model_validators_changed(shop: Project) -> None:
    # A validator's body: patched in place.
    shop.apply(("shop/models.py", "return value.strip()", "return value.strip().title()"))
    assert_fresh(shop.served, ["/items/7", "/items/?good", "/items/check"])
    # A validator added: the class is rebuilt.
    shop.apply(("shop/models.py", "\n\nclass Receipt", """

    @field_validator("price")
    @classmethod
    def positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("price must be positive")
        return value


class Receipt"""))
    negative = json.dumps({"name": "x", "price": -1}).encode()
    requests = {**REQUESTS, "/items/?neg": {"method": "POST", "body": negative, "headers": JSON}}
    got = assert_fresh(shop.served, [*PATHS, "/items/?neg"], requests)
    assert got["/items/?neg"][0] == 422


def test_model_used_by_a_model_in_another_module(shop: Project) -> None:
    orders = """
        from pydantic import BaseModel

        from shop.models import Item


        class Basket(BaseModel):
            items: list[Item]


        class Shelf(BaseModel):  # used by no route
            items: list[Item] = []
    """
    shop.apply(
        ("shop/items.py", "from shop.models import Item, Receipt",
         "from shop.models import Item, Receipt\nfrom shop.orders import Basket"),
        ("shop/items.py", '@router.get("/{item_id}"', """
@router.get("/basket", response_model=Basket)
def basket():
    return {"items": [{"name": "b", "price": 2, "extra": 1}]}


@router.get(\"/{item_id}\""""),
        add={"shop/orders.py": orders},
    )
    # A field added to the model Basket uses: Basket's module runs again too.
    shop.apply(("shop/models.py", "price: float\n", "price: float\n    stock: int = STOCK\n"),
               ("shop/models.py", "from pydantic", "from shop.consts import STOCK\nfrom pydantic"),
               add={"shop/consts.py": "STOCK = 5\n"})
    got = assert_fresh(shop.served, [*PATHS, "/items/basket"])
    basket = {"items": [{"name": "b", "price": 2.0, "tags": [], "stock": 5}]}
    assert got["/items/basket"] == (200, basket)
    # A constant the model reads: its module re-executes as an importer while staging
    # (unknown beforehand); Basket, which embeds Item's schema, is rebuilt at commit.
    result = shop.apply(("shop/consts.py", "STOCK = 5", "STOCK = 7"))
    assert "shop.orders" not in result.reexecuted
    got = assert_fresh(shop.served, ["/items/basket", "/items/7", "/openapi.json"])
    assert got["/items/basket"][1]["items"][0]["stock"] == 7  # type: ignore[index]
    shelf = sys.modules["shop.orders"].Shelf.model_validate({"items": [{"name": "s", "price": 1}]})
    assert shelf.items[0].stock == 7
    assert type(shelf.items[0]) is sys.modules["shop.models"].Item


def test_recursive_models(shop: Project) -> None:
    shop.apply(
        ("shop/models.py", "\n\nclass Receipt", """


class Node(BaseModel):
    name: str
    children: list["Node"] = []
    parent: "Branch | None" = None


class Branch(BaseModel):
    node: Node
    depth: int = 0


Node.model_rebuild()


class Receipt"""),
        ("shop/items.py", "import Item, Receipt", "import Branch, Item, Node, Receipt"),
        ("shop/items.py", '@router.post("/check")', """@router.post("/tree", response_model=Node)
def tree(node: Node):
    return Node(name=node.name, children=[*node.children, Node(name="leaf")], parent=node.parent)


@router.post("/check")"""),
    )
    tree = json.dumps({"name": "root", "children": [{"name": "a", "children": []}],
                       "parent": {"node": {"name": "up"}, "depth": "2"}}).encode()
    requests = {**REQUESTS, "/items/tree": {"method": "POST", "body": tree, "headers": JSON}}
    assert_fresh(shop.served, ["/items/tree", "/openapi.json"], requests)
    shop.apply(("shop/models.py", "name: str\n    children", "name: str\n    weight: int = 1\n"
                "    children"),
               ("shop/models.py", "depth: int = 0\n", 'depth: int = 0\n    label: str = "b"\n'))
    got = assert_fresh(shop.served, ["/items/tree", "/openapi.json"], requests)
    body = got["/items/tree"][1]
    assert body["children"][1] == {  # type: ignore[index]
        "name": "leaf", "weight": 1, "children": [], "parent": None}
    assert body["parent"]["label"] == "b"  # type: ignore[index]


# -- all or nothing -------------------------------------------------------------------------------
def test_failed_batch_leaves_routes_and_models(shop: Project) -> None:
    before = {p: _norm(shop.served.get(p, **REQUESTS.get(p, {}))) for p in PATHS}
    assert shop.served.slot is not None
    app = shop.served.slot.app
    shop.fail(("shop/models.py", "    price: float\n", "    price: float\n    stock: int = 5\n"),
              ("shop/app.py", "app.include_router(items.router)\n",
               "app.include_router(items.router)\nraise RuntimeError('no')\n"))
    assert shop.served.slot.app is app
    after = {p: _norm(shop.served.get(p, **REQUESTS.get(p, {}))) for p in PATHS}
    assert after == before


# -- lifespan -------------------------------------------------------------------------------------
LIFE = _project({
    "life/__init__.py": "",
    "life/log.py": """
        EVENTS: list[str] = []
    """,
    "life/app.py": """
        from contextlib import asynccontextmanager

        from fastapi import FastAPI, Request

        from life.log import EVENTS

        VERSION = 1


        @asynccontextmanager
        async def lifespan(app):
            EVENTS.append(f"start {VERSION}")
            if VERSION < 0:
                raise RuntimeError("cannot start")
            app.state.version = VERSION
            yield {"started": VERSION}
            EVENTS.append(f"stop {app.state.version}")


        app = FastAPI(lifespan=lifespan)


        @app.get("/")
        def index(request: Request):
            return {"app": request.app.state.version, "state": request.state.started}


        @app.get("/events")
        def events():
            return EVENTS
    """,
})


def test_lifespan_of_a_replaced_app(tmp_path: Path) -> None:
    write_project(tmp_path, LIFE)
    served = ServedApp(tmp_path, "life.app:app").start()
    try:
        life = Project(served, LIFE)
        assert served.get("/").json() == {"app": 1, "state": 1}
        life.apply(("life/app.py", "VERSION = 1", "VERSION = 2"))
        # The new app started before it served (its state is there), the old one stopped after.
        assert served.get("/events").json() == ["start 1", "start 2", "stop 1"]
        assert_fresh(served, ["/"], {})
        assert served.get("/").json() == {"app": 2, "state": 2}
        # A startup that fails fails the batch: the old app serves on, still started.
        life.fail(("life/app.py", "VERSION = 2", "VERSION = -3"))
        assert served.get("/").json() == {"app": 2, "state": 2}
        assert served.get("/events").json() == ["start 1", "start 2", "stop 1", "start -3"]
        life.apply(("life/app.py", "VERSION = 2", "VERSION = 4"))
        assert served.get("/").json() == {"app": 4, "state": 4}
        # A body edit of the lifespan: the app is made and started again, as a fresh start would.
        life.apply(("life/app.py", "version = VERSION", "version = VERSION * 10"))
        assert served.get("/").json() == {"app": 40, "state": 4}
        assert_fresh(served, ["/"], {})
    finally:
        served.stop()
    # The server's shutdown stops the app it serves then.
    events = sys.modules["life.log"].EVENTS
    assert events[-5:] == ["start 4", "stop 2", "start 4", "stop 4", "stop 40"]


# -- Starlette ------------------------------------------------------------------------------------
STAR = _project({
    "star/__init__.py": "",
    "star/api.py": """
        from starlette.responses import JSONResponse
        from starlette.routing import Route


        async def ping(request):
            return JSONResponse({"pong": 1})


        ROUTES = [Route("/ping", ping)]
    """,
    "star/app.py": """
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, PlainTextResponse
        from starlette.routing import Mount, Route

        from star import api


        def home(request):
            return PlainTextResponse("home")


        async def user(request):
            return JSONResponse({"user": request.path_params["name"]})


        app = Starlette(routes=[
            Route("/", home),
            Route("/users/{name}", user),
            Mount("/api", routes=api.ROUTES),
        ])
    """,
})
STAR_PATHS = ["/", "/users/bo", "/api/ping", "/v1/ping", "/v1/pong", "/new"]


def test_starlette_routes_and_mount(tmp_path: Path) -> None:
    write_project(tmp_path, STAR)
    with ServedApp(tmp_path, "star.app:app") as served:
        star = Project(served, STAR)
        star.apply(("star/app.py", '    Route("/", home),\n',
                    '    Route("/", home),\n    Route("/new", new, methods=["GET", "POST"]),\n'),
                   ("star/app.py", "\n\nasync def user", "\n\nasync def new(request):\n"
                    "    return JSONResponse({\"new\": request.method})\n\n\nasync def user"))
        assert_fresh(served, STAR_PATHS, {})
        # Body edits after the rebuild reach the served app (a sync endpoint included).
        star.apply(("star/app.py", 'PlainTextResponse("home")', 'PlainTextResponse("home 2")'),
                   ("star/app.py", '{"new": request.method}', '{"new": request.method * 2}'))
        got = assert_fresh(served, STAR_PATHS, {})
        assert got["/"] == (200, "home 2")
        star.apply(("star/app.py", 'Mount("/api"', 'Mount("/v1"'),
                   ("star/api.py", 'ROUTES = [Route("/ping", ping)]',
                    'ROUTES = [Route("/ping", ping), Route("/pong", ping)]'))
        got = assert_fresh(served, STAR_PATHS, {})
        assert got["/v1/pong"] == (200, {"pong": 1})


def test_rollback_at_commit_restores_models_and_app(shop: Project) -> None:
    # The app module's dispose hook refuses while a marker file exists: it runs at
    # commit, after the models were rebuilt and the new app adopted.
    shop.apply(("shop/app.py", "app = FastAPI()\n", """app = FastAPI()
hot = hotmod.hot(__name__)


@hot.dispose
def _refuse(data):
    if (pathlib.Path(__file__).parent / "refuse").exists():
        raise RuntimeError("not now")
"""), ("shop/app.py", "from fastapi import",
        "import pathlib\n\nimport hotmod\nfrom fastapi import"))
    assert shop.served.slot is not None
    app = shop.served.slot.app
    before = {p: _norm(shop.served.get(p, **REQUESTS.get(p, {}))) for p in PATHS}
    models = sys.modules["shop.models"]
    schema = models.Item.__pydantic_core_schema__
    (shop.served.root / "shop" / "refuse").write_text("")
    result = shop.fail(
        ("shop/models.py", "    price: float\n", "    price: float\n    stock: int = 5\n"),
        ("shop/items.py", 'prefix="/items"', 'prefix="/goods"'),
    )
    assert result.error is not None
    assert "not now" in str(result.error)
    assert shop.served.slot.app is app
    assert models.Item.__pydantic_core_schema__ is schema
    assert sorted(models.Item.model_fields) == ["name", "price", "tags"]
    assert {p: _norm(shop.served.get(p, **REQUESTS.get(p, {}))) for p in PATHS} == before
    (shop.served.root / "shop" / "refuse").unlink()
    shop.apply(("shop/models.py", "    price: float\n", "    price: float\n    stock: int = 5\n"),
               ("shop/items.py", 'prefix="/items"', 'prefix="/goods"'))
    assert_fresh(shop.served, ["/goods/7", "/items/7", "/goods/check", "/openapi.json"],
                 {"/goods/check": REQUESTS["/items/check"]})


def test_factory_app(tmp_path: Path) -> None:
    files = {**SHOP, "shop/app.py": SHOP["shop/app.py"].replace(
        "app = FastAPI()\napp.include_router(items.router)\n", ""
    ).replace("@app.get", "@router.get").replace(
        "from shop.deps import current_user\n",
        "from shop.deps import current_user\n\nrouter = APIRouter()\n",
    ).replace("import Depends, FastAPI", "import APIRouter, Depends, FastAPI") + """

def create_app():
    app = FastAPI(title="factory")
    app.include_router(items.router)
    app.include_router(router)
    return app
"""}
    write_project(tmp_path, files)
    with ServedApp(tmp_path, "shop.app:create_app", factory=True) as served:
        shop = Project(served, files)
        shop.apply(("shop/models.py", "price: float\n", "price: float\n    stock: int = 5\n"),
                   ("shop/app.py", 'return {"q": q}', 'return {"q": q * 2}'))
        got = assert_fresh(served)
        assert got["/search"] == (200, {"q": "xx"})
        assert got["/items/7"][1]["stock"] == 5  # type: ignore[index]
