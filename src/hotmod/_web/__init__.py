"""Serving web apps under hot reload: the served app's slot, framework adapters,
``hotmod serve`` (server, supervisor) and live browser reload. Private: the
public surface is ``hotmod.wsgi``, ``hotmod.asgi`` and the CLI."""
