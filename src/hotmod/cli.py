"""The ``hotmod`` command line: ``hotmod run``, ``hotmod serve`` and ``hotmod graph``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._errors import HotmodError, UsageError
from ._events import Reporter, TerminalReporter
from ._run.report import RunJsonLinesReporter, RunReporter
from ._run.runner import restart_process, run
from ._run.target import Target, default_roots, locate_script
from ._version import __version__

EXIT_USAGE = 2

# The logger every hotmod module logs under (``logging.getLogger(__name__)``),
# and the name of the handler the CLI puts on it.
_LOGGER = "hotmod"
_LOG_HANDLER = "hotmod-cli"

# Options of ``hotmod run`` that take a value: the program's own arguments start
# at the first word that is neither an option nor such a value.
_VALUE_OPTIONS = frozenset({"--watch", "--exclude", "--debounce-ms", "--json-events"})


def _help_width() -> int:
    """What ``shutil.get_terminal_size()`` gives, without importing shutil.

    argparse imports shutil (and with it zlib, bz2, lzma) for this one number;
    under ``hotmod run`` every module hotmod imports is one the program would
    find already imported, so we compute it ourselves (``$COLUMNS``, then the
    terminal, then 80), as argparse would, minus argparse's margin of 2.
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdecimal() and int(columns) > 0:
        width = int(columns)
    else:
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            width = 0
        width = width or 80
    return width - 2


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the width from :func:`_help_width`."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
        width: int | None = None, **kwargs: Any,
    ) -> None:
        width = _help_width() if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# The sub-commands; only the one being run gets its options (see _parser).
_COMMANDS = ("run", "serve", "graph")


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line parser; with ``command``, only that sub-command's options.

    Every sub-command is listed (``hotmod --help`` shows them all), but the
    options of the others are left out: building ``serve``'s imports the web
    layer, which ``hotmod run`` has no use for in the program's process.
    """
    parser = _Parser(
        prog="hotmod",
        formatter_class=_HelpFormatter,
        description="Hot module replacement for Python: edits go live in the running process.",
    )
    parser.add_argument("--version", action="version", version=f"hotmod {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run_p = sub.add_parser(
        "run",
        formatter_class=_HelpFormatter,
        help="run a program with hot reload",
        usage="hotmod run [options] (script.py | folder | -m module) [args ...]",
        description="Run a program with hot reload. Everything after the script "
        "(or -m module) is passed to the program.",
    )
    if command in (None, "run"):
        _run_options(run_p)
    _serve_parser(sub, with_options=command in (None, "serve"))
    graph_p = sub.add_parser(
        "graph",
        formatter_class=_HelpFormatter,
        help="print the project's module dependency graph",
        usage="hotmod graph [--json] (script.py | -m module)",
    )
    if command in (None, "graph"):
        graph_p.add_argument("--json", action="store_true", help="print JSON")
        graph_p.add_argument("-m", dest="module", metavar="MODULE", help="start from a module")
        graph_p.add_argument("script", nargs="?", help="the entry script")
    return parser


def _run_options(run_p: argparse.ArgumentParser) -> None:
    _reload_options(run_p, watch_default="the script's folder, or the current folder with -m")
    run_p.add_argument("--json-events", metavar="FILE", type=Path,
                       help="append one JSON object per event to FILE")
    run_p.add_argument("--exit-on-error", action="store_true",
                       help="exit with 1 when the program ends with an uncaught exception "
                       "(default: print it, then wait for a change and start it again)")
    run_p.add_argument("-q", "--quiet", action="store_true", help="report failures only")
    run_p.add_argument("-v", "--verbose", action="store_true", help="report more detail")
    run_p.add_argument("-m", dest="module", metavar="MODULE", help="run library module as a script")
    run_p.add_argument("script", nargs="?",
                       help="the program to run (a folder runs its __main__.py)")


def _reload_options(parser: argparse.ArgumentParser, *, watch_default: str) -> None:
    """The reloader's options, shared by ``run`` and ``serve``."""
    parser.add_argument("--watch", action="append", metavar="DIR", default=[],
                        help=f"folder to watch (repeatable; default: {watch_default})")
    parser.add_argument("--exclude", action="append", metavar="GLOB", default=[],
                        help="ignore files matching GLOB (repeatable)")
    parser.add_argument("--debounce-ms", type=int, default=5, metavar="N",
                        help="quiet period before a batch of changes is applied (default: 5)")
    parser.add_argument("--strict", action="store_true",
                        help="restart instead of applying anything not provably equivalent")


def _serve_parser(sub: Any, *, with_options: bool) -> None:
    p = sub.add_parser(
        "serve",
        formatter_class=_HelpFormatter,
        help="serve a WSGI or ASGI app with hot reload",
        usage="hotmod serve [options] module:app\n       hotmod serve [options] --factory"
        " module:create_app",
        description="Serve a WSGI app (Flask...) on Werkzeug's server or an ASGI app"
        " (FastAPI, Starlette...) on uvicorn. Edits are applied in the running process;"
        " an edit that needs a restart starts a new worker on the same socket before the"
        " old one stops, so no connection is refused.",
    )
    if not with_options:
        return
    from ._gate import DEFAULT_DRAIN_TIMEOUT
    from ._web.options import DEFAULT_HOST, DEFAULT_PORT, LOG_LEVELS

    p.add_argument("target", metavar="module:app",
                   help="the app (default attribute: app), or its factory with --factory")
    p.add_argument("--factory", action="store_true",
                   help="module:create_app is a function returning the app")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"bind to this address (default: {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"bind to this port (default: {DEFAULT_PORT})")
    p.add_argument("--uds", metavar="PATH", help="bind to this unix socket instead")
    _reload_options(p, watch_default="the current folder")
    p.add_argument("--drain-timeout", type=float, default=DEFAULT_DRAIN_TIMEOUT,
                   metavar="SECONDS",
                   help="how long a reload waits for requests in flight, and an old worker"
                   f" for its connections to finish (default: {DEFAULT_DRAIN_TIMEOUT:g})")
    p.add_argument("--live-reload", action="store_true",
                   help="reload the browser's page after each change")
    p.add_argument("--json-events", metavar="FILE", type=Path,
                   help="append one JSON object per event to FILE")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="the server's log level (default: info; the access log is info)")
    p.add_argument("-q", "--quiet", action="store_true", help="report failures only")
    p.add_argument("-v", "--verbose", action="store_true", help="report more detail")


def _split_program_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s arguments into hotmod's and the program's."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "-m":
            return argv[: i + 2], argv[i + 2 :]
        if token in _VALUE_OPTIONS:
            i += 2
            continue
        if not token.startswith("-") or token == "-":
            return argv[: i + 1], argv[i + 1 :]
        i += 1
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotmod`` command; returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(args_in[0] if args_in and args_in[0] in _COMMANDS else None)
    program_args: list[str] = []
    if args_in and args_in[0] == "run":
        own, program_args = _split_program_args(args_in[1:])
        args_in = ["run", *own]
    args = parser.parse_args(args_in)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "serve":
        return _errors_to_exit(_serve, args)
    if (args.script is None) == (args.module is None):
        parser.exit(EXIT_USAGE, f"hotmod {args.command}: error: give a script or -m module\n")
    target = Target(script=args.script, module=args.module, args=program_args)
    if args.command == "graph":
        return _errors_to_exit(lambda: _graph(target, as_json=args.json))
    return _errors_to_exit(_run, target, args)


def _errors_to_exit(command: Callable[..., int], *args: Any) -> int:
    """Run ``command``; hotmod's expected errors become one line on stderr and an exit code."""
    try:
        return command(*args)
    except UsageError as exc:
        print(f"hotmod: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    except HotmodError as exc:
        print(f"hotmod: {exc}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from ._web.options import ServeOptions
    from ._web.slot import Target as AppTarget
    from ._web.supervisor import serve

    AppTarget.parse(args.target, factory=args.factory)  # a malformed target: usage error
    if args.debounce_ms < 0:
        raise UsageError("--debounce-ms must be 0 or more")
    if args.drain_timeout < 0:
        raise UsageError("--drain-timeout must be 0 or more")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    for folder in args.watch:
        if not Path(folder).is_dir():
            raise UsageError(f"--watch {folder}: not a directory")
    options = ServeOptions(
        target=args.target, factory=args.factory, host=args.host, port=args.port,
        uds=None if args.uds is None else os.path.abspath(args.uds),
        watch=tuple(str(Path(w).resolve()) for w in args.watch), exclude=tuple(args.exclude),
        debounce_ms=args.debounce_ms, strict=args.strict, drain_timeout=args.drain_timeout,
        live_reload=args.live_reload,
        json_events=None if args.json_events is None
        else str(_writable(args.json_events, "--json-events")),
        log_level=args.log_level, verbosity=0 if args.quiet else 2 if args.verbose else 1,
        argv=tuple(sys.argv),
    )
    return serve(options)


def _run(target: Target, args: argparse.Namespace) -> int:
    from ._engine.reloader import Reloader

    if target.script is not None:
        locate_script(target.script)  # python's error for a missing script comes first
    verbosity = 0 if args.quiet else 2 if args.verbose else 1
    _log_to_stderr(verbose=args.verbose)
    reporters: list[Reporter] = [TerminalReporter(verbosity=verbosity)]
    if args.json_events is not None:
        reporters.append(RunJsonLinesReporter(_writable(args.json_events, "--json-events")))
    reporter = RunReporter(reporters)
    if args.debounce_ms < 0:
        raise UsageError("--debounce-ms must be 0 or more")
    roots = [Path(w) for w in args.watch] or default_roots(target)
    reloader = Reloader(
        roots, debounce_ms=args.debounce_ms, exclude=args.exclude, strict=args.strict,
        reporter=reporter, on_restart=restart_process,
    )
    return run(target, reloader, reporter, exit_on_error=args.exit_on_error)


def _writable(path: Path, option: str) -> Path:
    """``path`` resolved, once it is known that we can append to it (else a usage error).

    Checked before the program starts: a reporter that fails later only logs,
    once per event, while the program runs on.
    """
    resolved = path.resolve()
    try:
        with open(resolved, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write {option} file {str(path)!r}: {reason}") from exc
    return resolved


def _log_to_stderr(*, verbose: bool) -> None:
    """hotmod's own log (warnings; debug too with ``-v``) on stderr.

    Through the ``hotmod`` logger alone, which does not propagate: the root
    logger belongs to the program, whose ``logging.basicConfig()`` must work
    and whose log lines must look as they do under plain python.
    """
    log = logging.getLogger(_LOGGER)
    for old in [h for h in log.handlers if h.get_name() == _LOG_HANDLER]:
        log.removeHandler(old)  # main() called again in the same process
    handler = logging.StreamHandler()
    handler.set_name(_LOG_HANDLER)
    handler.setFormatter(logging.Formatter("[hotmod] %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False


def _graph(target: Target, *, as_json: bool) -> int:
    # Imported here: ``hotmod run`` needs neither, and the program must not find
    # modules in sys.modules that plain python would not have loaded.
    import json

    from ._run.staticgraph import static_graph

    graph = static_graph(target)
    if as_json:
        print(json.dumps(graph, indent=2, sort_keys=True))
    else:
        for name, node in sorted(graph["modules"].items()):
            print(f"{name}  ({node['path']})")
            for dep in node["imports"]:
                print(f"  -> {dep}")
            for dep in node["lazy_imports"]:
                print(f"  .. {dep}  (imported inside a function)")
    # The graph of what could be read is still printed; a module that could not
    # be parsed is an error (its imports are unknown), reported on stderr.
    errors = [node["error"] for _, node in sorted(graph["modules"].items()) if "error" in node]
    sys.stdout.flush()
    for error in errors:
        print(f"hotmod: {error}", file=sys.stderr)
    return 1 if errors else 0
