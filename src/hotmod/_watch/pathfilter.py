"""Which changed paths matter to the watcher: cheap string tests first.

Split from :mod:`hotmod._watch`, which runs the native watcher; this module
only decides, for each ``(change, path)`` it reports, whether hotmod cares.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from .._project import ENV_MARKERS, IGNORED_DIRS, ProjectFiles

# The project rule lives in hotmod._project (shared with the import hook).
DEFAULT_IGNORED_DIRS: Final[frozenset[str]] = IGNORED_DIRS

# Lock files and scratch copies editors write next to the real file with a
# matching suffix: Emacs' ``.#mod.py`` lock symlink, flycheck's ``flycheck_mod.py``.
_EDITOR_NAMES: Final = (".#*", "flycheck_*")
_ENV_MARKERS: Final = ENV_MARKERS

_ADDED: Final = 1  # watchfiles.Change.added
_DELETED: Final = 3  # watchfiles.Change.deleted


class PathFilter:
    """Decides, from a path string alone where possible, whether a change matters.

    Order is cheapest first: the suffix test rejects almost all noise with one
    ``str.endswith``; the directory and glob tests run only on source files.
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        suffixes: tuple[str, ...],
        ignored_dirs: Iterable[str],
        exclude: Sequence[str],
        keep_deleted: Callable[[str], bool] | None = None,
        recursive: bool = True,
        interesting: Callable[[str], bool] | None = None,
    ) -> None:
        self.keep_deleted = keep_deleted
        self.interesting = interesting
        self.recursive = recursive
        self.suffixes = suffixes
        self.rule = ProjectFiles(
            roots, exclude=exclude, ignored_dirs=ignored_dirs, extra_excludes=_EDITOR_NAMES
        )

    def filter(self, raw: Iterable[tuple[int, str]]) -> set[str]:
        """The paths of ``raw`` (watchfiles ``(change, path)`` pairs) that matter."""
        accepted: set[str] = set()
        for change, path in raw:
            if path.endswith(self.suffixes):
                if self.accepts(path):
                    accepted.add(path)
            elif self.interesting is not None and self.interesting(path):
                # A file of another kind the consumer tracks (hotmod: one a
                # module read at import time); anything else costs this lookup.
                if self.accepts(path):
                    accepted.add(path)
            elif path.endswith(_ENV_MARKERS):
                # a virtualenv appeared (or vanished): re-check directories.
                self.rule.forget_envs()
            elif (
                change == _ADDED
                and self.recursive
                and os.path.isdir(path)
                and self._dir_accepted(path)
            ):
                # A directory created or moved in: notify starts watching it only
                # after it appears, so files written into it at once (git
                # checkout, mkdir && write, mv pkg here) may raise no event.
                accepted |= self.scan(path)
            elif change == _DELETED and self.keep_deleted is not None and self.keep_deleted(path):
                # A directory moved or deleted: its files cannot be listed any
                # more, so the path itself is reported when the consumer says
                # it held something it tracks (hotmod: modules below it).
                accepted.add(path)
        return accepted

    def accepts(self, path: str) -> bool:
        """Whether a changed file at ``path`` (with a watched suffix) matters."""
        return self._allowed(path, is_file=True)

    def scan(self, directory: str) -> set[str]:
        """Every accepted file below ``directory`` (itself accepted)."""
        found: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames[:] = [d for d in dirnames if self._dir_accepted(os.path.join(dirpath, d))]
            for name in filenames:
                path = os.path.join(dirpath, name)
                wanted = name.endswith(self.suffixes) or (
                    self.interesting is not None and self.interesting(path)
                )
                if wanted and self.accepts(path):
                    found.add(path)
        return found

    def _dir_accepted(self, path: str) -> bool:
        return self.rule.allowed(path, is_file=False)

    def _allowed(self, path: str, *, is_file: bool) -> bool:
        return self.rule.allowed(path, is_file=is_file)
