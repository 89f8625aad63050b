"""The program's uncaught exceptions, printed as python would print them.

Under ``hotmod run`` the program's frames sit below hotmod's own (the CLI, the
runner's ``exec``) and, for each import, below hotmod's import hook and the
importlib frames python itself would have hidden. Before the exception is
printed its tracebacks (the chained ones too) are trimmed:

- everything above the runner's last frame (hotmod starting the program);
- importlib's frozen frames and the engine's (the import hook) where a frame
  of the program follows them;
- trailing ones too for a :class:`SyntaxError` or :class:`ImportError`, which
  python reports at the importing line. A hotmod bug (any other exception
  raised inside hotmod) keeps its frames.

The result goes through ``sys.excepthook``, as python's own report does, so a
hook the program installed still formats it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from typing import Final

_RUN_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ENGINE_DIR: Final = os.path.join(os.path.dirname(_RUN_DIR.rstrip(os.sep)), "_engine") + os.sep
# importlib._bootstrap, importlib._bootstrap_external, importlib.util (frozen in 3.11+).
_FROZEN_IMPORTLIB: Final = "<frozen importlib."


def print_program_error(exc: BaseException) -> None:
    """Print ``exc`` (trimmed as the module docstring says) through ``sys.excepthook``."""
    trim(exc)
    hook = sys.excepthook
    try:
        hook(type(exc), exc, exc.__traceback__)
    except Exception as hook_error:  # as python reports a failing hook
        import traceback

        print("Error in sys.excepthook:", file=sys.stderr)
        traceback.print_exception(hook_error)
        print("\nOriginal exception was:", file=sys.stderr)
        traceback.print_exception(exc)
    with contextlib.suppress(OSError, ValueError):  # stderr may be closed
        sys.stderr.flush()


def format_program_error(exc: BaseException) -> str:
    """The text python's default hook prints for ``exc`` (already trimmed)."""
    import traceback

    return "".join(traceback.format_exception(exc))


def location(exc: BaseException) -> tuple[str | None, int | None]:
    """Where ``exc`` happened in the program: ``(path, line)``, either may be unknown."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    tb = exc.__traceback__
    if tb is None:
        return None, None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def trim(exc: BaseException) -> None:
    """Trim the tracebacks of ``exc`` and of the exceptions chained to it, in place."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = _trimmed(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)


def _trimmed(exc: BaseException) -> types.TracebackType | None:
    entries: list[types.TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    files = [t.tb_frame.f_code.co_filename for t in entries]
    starts = [i for i, f in enumerate(files) if f.startswith(_RUN_DIR)]
    first = starts[-1] + 1 if starts else 0
    last_program = max(
        (i for i in range(first, len(files)) if not _machinery(files[i])), default=-1
    )
    drop_trailing = isinstance(exc, SyntaxError | ImportError)
    kept = [
        entries[i]
        for i in range(first, len(entries))
        if not _machinery(files[i]) or (i > last_program and not drop_trailing)
    ]
    if len(kept) == len(entries):
        return exc.__traceback__
    rebuilt: types.TracebackType | None = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def _machinery(filename: str) -> bool:
    """A frame of the import machinery: importlib's, or hotmod's import hook."""
    return filename.startswith((_FROZEN_IMPORTLIB, _ENGINE_DIR))
