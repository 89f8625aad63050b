"""watchfiles' native watcher, loaded without the rest of watchfiles.

``import watchfiles`` (even ``from watchfiles._rust_notify import ...``) runs
``watchfiles/__init__.py``, which imports its async API and with it anyio,
sniffio, idna, ``multiprocessing``, ``subprocess``... Under ``hotmod run`` those
would appear in the *program's* ``sys.modules``, where plain ``python`` has
none of them: a program that checks its modules, or turns warnings into errors
before importing them itself, would behave differently under hotmod. And the
import would run on hotmod's watch thread under whatever warning filters the
program has set by then.

All hotmod needs is ``RustNotify``, from the compiled ``_rust_notify``
extension. We find the watchfiles folder without importing it and load that
one file with :class:`~importlib.machinery.ExtensionFileLoader`, under a name
of our own whose last component is ``_rust_notify`` (its init function is
``PyInit__rust_notify``). The module is kept here, not in ``sys.modules``: the
program sees only ``hotmod`` modules. If the program imports watchfiles itself,
both share the same ``RustNotify`` type (the extension initialises once).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify

__all__ = ["load_rust_notify"]

PACKAGE: Final = "watchfiles"
EXTENSION: Final = "_rust_notify"
# Our name for the module: the last component must stay ``_rust_notify``.
MODULE_NAME: Final = f"{__name__.rpartition('.')[0]}.{EXTENSION}"

_lock = threading.Lock()
_loaded: type[RustNotify] | None = None


def load_rust_notify() -> type[RustNotify]:
    """The ``RustNotify`` class, loaded once (thread-safe).

    Reuses watchfiles' own module when the program has imported watchfiles;
    else loads the extension file alone. Raises :class:`ImportError` (naming
    the package to install) when watchfiles or its extension is missing.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            module = sys.modules.get(f"{PACKAGE}.{EXTENSION}") or _load_extension()
            _loaded = module.RustNotify
        return _loaded


def _load_extension() -> types.ModuleType:
    path = _extension_path()
    loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, path)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
    if spec is None:  # pragma: no cover - a path with a loader always gives a spec
        raise ImportError(f"cannot load {path}", name=MODULE_NAME, path=path)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    # Single-phase extensions may register themselves under the spec's name.
    sys.modules.pop(MODULE_NAME, None)
    return module


def _extension_path() -> str:
    """The path of ``watchfiles/_rust_notify*.so``, found without importing watchfiles."""
    # A top-level name: find_spec locates the package without running it.
    spec = importlib.util.find_spec(PACKAGE)
    locations = [] if spec is None else list(spec.submodule_search_locations or ())
    for folder in locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = os.path.join(folder, EXTENSION + suffix)
            if os.path.isfile(candidate):
                return candidate
    where = ", ".join(locations) or "sys.path"
    raise ImportError(
        f"hotmod needs watchfiles' native extension ({PACKAGE}/{EXTENSION}*), not found"
        f" in {where}: reinstall it with `pip install --force-reinstall watchfiles`",
        name=f"{PACKAGE}.{EXTENSION}",
    )
