"""The FastAPI twin of the Flask example: routers, Pydantic models, ``Depends``.

Serve it from ``examples/web`` with ``hotmod serve fastapiapp.main:app`` (or
``make demo-fastapi`` from the repository root), then edit while it runs:

* ``routers/greetings.py``: change the text ``greeting()`` returns; reload ``/``.
* ``routers/books.py``: any endpoint body; the next request runs it.
* ``schemas.py``: a model's fields (say, drop ``year`` from ``BookOut``); the
  API's responses and ``/docs`` follow.
* ``catalog/model.py``'s ``Catalog.search``: the catalog built at start-up
  (kept by ``hotmod.keep``) runs the new method; nothing is built again.
"""
