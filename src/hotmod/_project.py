"""Which files belong to the project: one rule for the watcher, the hook and ``hotmod graph``.

A file is a project file when it lies under one of the roots, in no ignored
folder (caches, version control, virtual environments, installed packages,
build output, editor metadata — :data:`IGNORED_DIRS`), in no folder that is a
virtual environment whatever its name (it holds ``pyvenv.cfg`` or
``conda-meta``), and matches no ``--exclude`` glob. The watcher asks it about
changed paths, the import hook about imported modules: a module is tracked
exactly when its file is watched.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from typing import Final

IGNORED_DIRS: Final[frozenset[str]] = frozenset(
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


ENV_MARKERS: Final = ("pyvenv.cfg", "conda-meta")
# Bound on the per-directory virtualenv cache (cleared when exceeded).
_ENV_CACHE_MAX: Final = 4096


class ProjectFiles:
    """The rule, for a set of roots and ``exclude`` globs (see the module docstring).

    Decided from path strings where possible; the virtualenv test looks at the
    file system once per folder (cached; :meth:`forget_envs` clears it).
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        exclude: Sequence[str] = (),
        ignored_dirs: Iterable[str] = IGNORED_DIRS,
        extra_excludes: Sequence[str] = (),
    ) -> None:
        stripped = {r.rstrip(os.sep) or os.sep for r in roots}
        self.roots = tuple(sorted(stripped, key=len, reverse=True))
        self._prefixes = tuple(os.path.join(r, "") for r in self.roots)
        names = set(ignored_dirs)
        globs = {n for n in names if any(c in n for c in "*?[")}
        self._ignored_names = frozenset(names - globs)
        self._ignored_glob = compile_globs(globs)
        self._exclude = compile_globs((*exclude, *extra_excludes))
        #: Whether any ``exclude`` glob applies (else a file's folder decides alone).
        self.has_excludes = self._exclude is not None
        self._env_cache: dict[str, bool] = {}

    def locate(self, path: str) -> tuple[str, list[str]] | None:
        """``(root, parts below it)`` for a path under a root (longest root first)."""
        for root, prefix in zip(self.roots, self._prefixes, strict=True):
            if path.startswith(prefix):
                return root, path[len(prefix) :].split(os.sep)
        return None

    def allowed(self, path: str, *, is_file: bool = True) -> bool:
        """Under a root, in no ignored folder or virtualenv, matching no exclude."""
        located = self.locate(path)
        if located is None:
            return False
        root, parts = located
        dirs = parts[:-1] if is_file else parts
        return (
            not any(self.ignored_dir(d) for d in dirs)
            and not self._excluded(parts)
            and not self._in_env(root, dirs)
        )

    def allowed_folder(self, folder: str) -> bool:
        """Whether files directly in ``folder`` pass the rule, ``exclude`` globs aside.

        The part of :meth:`allowed` that depends on the folder alone (under a
        root, in no ignored folder or virtualenv): the import hook asks it
        once per folder instead of once per module. With no exclude glob
        (:attr:`has_excludes`) it is the whole answer for every file in it.
        """
        located = self.locate(os.path.join(folder, ""))
        if located is None:
            return False
        root, parts = located
        dirs = parts[:-1]
        return not any(self.ignored_dir(d) for d in dirs) and not self._in_env(root, dirs)

    def ignored_dir(self, name: str) -> bool:
        return name in self._ignored_names or (
            self._ignored_glob is not None and self._ignored_glob.match(name) is not None
        )

    def forget_envs(self) -> None:
        """A virtualenv appeared or vanished: look at the folders again."""
        self._env_cache.clear()

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
                is_env = any(os.path.exists(os.path.join(current, m)) for m in ENV_MARKERS)
                cache[current] = is_env
            if is_env:
                return True
        return False


def compile_globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    translated = [fnmatch.translate(p) for p in sorted(set(patterns))]
    return re.compile("|".join(translated)) if translated else None
