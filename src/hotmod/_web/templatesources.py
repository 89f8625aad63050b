"""The committed text of the served app's templates: Jinja reads those, never the disk.

Jinja reads a template when it is first rendered. A template saved with an
error (or with a Python file that failed) must not be read from disk by a
render that happens later: the transaction refused it. So the served app's
Jinja loader is wrapped in a :class:`PinnedLoader`, which still asks the app's
own loader which file serves a name (the app's folder first, then the
blueprints'), but hands Jinja the text the last committed batch knew for that
file, kept in :class:`TemplateSources`:

* the templates of the app's folders are read when the app is attached, and
  those of a new folder when an app that has it is adopted (a new blueprint);
* a file of those folders first seen later (created since, or beyond
  :data:`MAX_TEMPLATES`) is pinned at its first read; files elsewhere (another
  loader's) are read as Jinja reads them;
* a batch that changes templates replaces their texts at commit, undoably.

Every app the slot serves (each rebuild) shares the same sources.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from jinja2 import BaseLoader

if TYPE_CHECKING:
    from jinja2 import Environment

    from .._engine.undo import UndoLog

logger = logging.getLogger(__name__)

# Pinned when an app is attached: beyond this many, templates are pinned at first read.
MAX_TEMPLATES = 5_000


class TemplateSources:
    """Committed template texts by resolved path (see the module docstring)."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.folders: set[str] = set()  # resolved folders whose templates are pinned

    def pin_folders(self, env: Any, folders: Iterable[str], undo: UndoLog | None = None) -> None:
        """Pin the templates ``env`` serves from ``folders`` not pinned yet (undoably).

        Texts are read through the app's own loader (its encoding, its order
        of folders); a file already pinned keeps its committed text.
        """
        new = {os.path.realpath(f) for f in folders} - self.folders
        if not new:
            return
        self.folders |= new
        loader = disk_loader(env)
        added: list[str] = []
        try:
            names = loader.list_templates()
        except (TypeError, OSError):  # a loader that cannot list: pinned at first read
            names = []
        prefixes = tuple(os.path.join(f, "") for f in new)
        for name in names[:MAX_TEMPLATES]:
            try:
                source, filename, _ = loader.get_source(env, name)
            except Exception:  # unreadable now: pinned at its first read, if ever
                continue
            real = os.path.realpath(filename) if filename else None
            if real is None or real in self.texts or not real.startswith(prefixes):
                continue
            self.texts[real] = source
            added.append(real)
        if undo is not None:
            undo.on_rollback(_forget(self, new, added))

    def text(self, filename: str, disk: str) -> str:
        """What serves ``filename``: its committed text (``disk``, pinned now, if none).

        Files outside the pinned folders (another loader's) are not the
        transactions' business: their text is read as Jinja reads it.
        """
        real = os.path.realpath(filename)
        text = self.texts.get(real)
        if text is not None:
            return text
        if real.startswith(tuple(os.path.join(f, "") for f in self.folders)):
            self.texts[real] = disk  # created since the folder was pinned
        return disk

    def set(self, filename: str, text: str | None, undo: UndoLog) -> None:
        """A batch commits ``text`` for ``filename`` (None: the file is gone)."""
        path = os.path.realpath(filename)
        old = self.texts.get(path)
        undo.on_rollback(lambda: _put(self.texts, path, old))
        _put(self.texts, path, text)


def _put(texts: dict[str, str], path: str, text: str | None) -> None:
    if text is None:
        texts.pop(path, None)
    else:
        texts[path] = text


def _forget(sources: TemplateSources, folders: set[str], added: list[str]) -> Callable[[], None]:
    def forget() -> None:
        sources.folders -= folders
        for path in added:
            sources.texts.pop(path, None)

    return forget


class PinnedLoader(BaseLoader):
    """The app's Jinja loader, serving committed texts (see the module docstring)."""

    def __init__(self, inner: BaseLoader, sources: TemplateSources) -> None:
        self.inner = inner
        self.sources = sources

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        if filename is None:
            return source, filename, uptodate
        return self.sources.text(filename, source), filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def pin(env: Any, sources: TemplateSources) -> None:
    """Make ``env`` read templates through ``sources`` (once)."""
    loader = env.loader
    if loader is not None and not isinstance(loader, PinnedLoader):
        env.loader = PinnedLoader(loader, sources)


def disk_loader(env: Any) -> Any:
    """The loader that reads the disk (what a batch stages from)."""
    loader = env.loader
    return loader.inner if isinstance(loader, PinnedLoader) else loader


def template_folders(app: Any) -> list[str]:
    """``app``'s template folders, its own first, then its blueprints' (absolute)."""
    loaders = [app.jinja_loader, *(bp.jinja_loader for bp in app.iter_blueprints())]
    found: list[str] = []
    for loader in loaders:
        for folder in getattr(loader, "searchpath", ()):
            path = os.path.abspath(folder)
            if path not in found:
                found.append(path)
    return found


def serve_pinned(app: Any, sources: TemplateSources, undo: UndoLog | None = None) -> None:
    """``app`` renders committed template texts only, and Jinja never re-reads the disk."""
    env = app.jinja_env
    env.auto_reload = False  # it would re-read a changed file behind the transaction's back
    pin(env, sources)
    sources.pin_folders(env, template_folders(app), undo)

