"""Which changed paths matter to the watcher: cheap string tests first.

Split from :mod:`hotmod._watch`, which runs the native watcher; this module
only decides, for each ``(change, path)`` it reports, whether hotmod cares.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

DEFAULT_IGNORED_DIRS: Final[frozenset[str]] = frozenset(
    {
        # bytecode and tool caches
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        # version control
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        # environments and installed code: stable, and huge
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "site-packages",
        "dist-packages",
        "node_modules",
        # build output: copies of the sources, not the sources
        "build",
        "dist",
        ".eggs",
        "*.egg-info",
        # editor metadata
        ".idea",
        ".vscode",
    }
)
"""Directory names never descended into (relative to a root). Entries with
glob characters (``*.egg-info``) are matched with :func:`fnmatch.fnmatchcase`.
Besides these, any directory holding ``pyvenv.cfg`` or ``conda-meta`` (a
virtual environment or conda env, whatever it is called) is ignored."""

# Lock files and scratch copies editors write next to the real file with a
# matching suffix: Emacs' ``.#mod.py`` lock symlink, flycheck's ``flycheck_mod.py``.
_EDITOR_NAMES: Final = (".#*", "flycheck_*")
_ENV_MARKERS: Final = ("pyvenv.cfg", "conda-meta")
# Bound on the per-directory virtualenv cache (cleared when exceeded).
_ENV_CACHE_MAX: Final = 4096

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
    ) -> None:
        self.keep_deleted = keep_deleted
        self.recursive = recursive
        self._roots = tuple(sorted(roots, key=len, reverse=True))
        self._prefixes = tuple(r.rstrip(os.sep) + os.sep for r in self._roots)
        self.suffixes = suffixes
        names = set(ignored_dirs)
        globs = {n for n in names if any(c in n for c in "*?[")}
        self._ignored_names = frozenset(names - globs)
        self._ignored_glob = _compile_globs(globs)
        self._exclude = _compile_globs((*exclude, *_EDITOR_NAMES))
        self._env_cache: dict[str, bool] = {}

    def filter(self, raw: Iterable[tuple[int, str]]) -> set[str]:
        """The paths of ``raw`` (watchfiles ``(change, path)`` pairs) that matter."""
        accepted: set[str] = set()
        for change, path in raw:
            if path.endswith(self.suffixes):
                if self.accepts(path):
                    accepted.add(path)
            elif path.endswith(_ENV_MARKERS):
                # a virtualenv appeared (or vanished): re-check directories.
                self._env_cache.clear()
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
                if name.endswith(self.suffixes):
                    path = os.path.join(dirpath, name)
                    if self.accepts(path):
                        found.add(path)
        return found

    def _dir_accepted(self, path: str) -> bool:
        return self._allowed(path, is_file=False)

    def _allowed(self, path: str, *, is_file: bool) -> bool:
        """Under a root, in no ignored folder or virtualenv, matching no exclude."""
        located = self._split(path)
        if located is None:
            return False
        root, parts = located
        dirs = parts[:-1] if is_file else parts
        return (
            not any(self._ignored_dir(d) for d in dirs)
            and not self._excluded(parts)
            and not self._in_env(root, dirs)
        )

    def _split(self, path: str) -> tuple[str, list[str]] | None:
        # Roots are disjoint (nested ones are dropped), longest first.
        for root, prefix in zip(self._roots, self._prefixes, strict=True):
            if path.startswith(prefix):
                return root, path[len(prefix) :].split(os.sep)
        return None

    def _ignored_dir(self, name: str) -> bool:
        return name in self._ignored_names or (
            self._ignored_glob is not None and self._ignored_glob.match(name) is not None
        )

    def _excluded(self, parts: list[str]) -> bool:
        # A glob excludes a file when it matches the path relative to its root
        # (``pkg/generated/*``), the file name (``*_pb2.py``) or the name of a
        # directory on the way (``generated``).
        pattern = self._exclude
        if pattern is None:
            return False
        return pattern.match("/".join(parts)) is not None or any(
            pattern.match(p) is not None for p in parts
        )

    def _in_env(self, root: str, dirs: list[str]) -> bool:
        cache = self._env_cache
        current = root
        for name in dirs:
            current = os.path.join(current, name)
            is_env = cache.get(current)
            if is_env is None:
                if len(cache) >= _ENV_CACHE_MAX:
                    cache.clear()
                is_env = any(os.path.exists(os.path.join(current, m)) for m in _ENV_MARKERS)
                cache[current] = is_env
            if is_env:
                return True
        return False


def _compile_globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    translated = [fnmatch.translate(p) for p in sorted(set(patterns))]
    return re.compile("|".join(translated)) if translated else None
