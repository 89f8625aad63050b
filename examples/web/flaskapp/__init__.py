"""The Flask example: pages from Jinja templates, a JSON API, blueprints in several modules.

Serve it from ``examples/web`` with ``hotmod serve flaskapp.app:app`` (or
``make demo`` from the repository root), then edit while it runs:

* ``views/greetings.py``: change the text ``greeting()`` returns; reload ``/``.
* ``views/books.py`` or ``api.py``: any view body; the next request runs it.
* ``filters.py``: change how ``stars`` draws a score; book pages change.
* ``templates/*.html``: the next page uses the new template.
* ``catalog/model.py``'s ``Catalog.search``: the catalog built at start-up
  (kept by ``hotmod.keep``) runs the new method; nothing is built again.
"""
