"""Run the hotmod benchmarks (``make bench``).

Generates projects of 10, 100 and 1000 modules, measures save-to-live latency
under ``hotmod run`` and under a full restart (watchfiles), reload cost against
project and heap size, the cost of edits that only closures made at run time
hold, of one edit in a 5,000-line module, start-up overhead and memory over many
reloads, and the web scenario (``web.py``: ``hotmod serve`` against
``flask run --reload``, ``uvicorn --reload`` and ``uvicorn-hmr``); prints a
markdown report, saves the raw results as JSON under ``benchmarks/results/``
and replaces the generated sections of ``docs/benchmarks.md`` (not for
--quick): the main one when every other scenario ran, the web one when
``web`` ran.

    .venv/bin/python benchmarks/run.py            # full run (~10 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # 10/100 modules, few edits
    .venv/bin/python benchmarks/run.py --only latency --no-restart
    .venv/bin/python benchmarks/run.py --only closures bigmodule
    .venv/bin/python benchmarks/run.py --only web
    .venv/bin/python benchmarks/run.py --render benchmarks/results/latest.json --write-docs
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from _bigmodule import big_module
from _procs import BenchError
from _report import render
from _scenarios import (
    BASIC_KINDS,
    Kind,
    Mode,
    Options,
    closure_run,
    latency_run,
    memory_run,
    startup_run,
)
from _webreport import render_web
from genproject import Project, generate
from web import WebConfig
from web import run as web_run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs" / "benchmarks.md"
BEGIN = "<!-- BEGIN GENERATED RESULTS: benchmarks/run.py replaces this section -->"
END = "<!-- END GENERATED RESULTS -->"
WEB_BEGIN = (
    "<!-- BEGIN GENERATED WEB RESULTS: benchmarks/run.py --only web replaces this section -->"
)
WEB_END = "<!-- END GENERATED WEB RESULTS -->"
CORE = ("latency", "heap", "closures", "bigmodule", "startup", "memory")
SCENARIOS = (*CORE, "web")


@dataclass(frozen=True)
class Config:
    quick: bool
    sizes: tuple[int, ...]
    edits: int  # measured edits per kind and session
    warmup: int  # edits per kind done first and not counted
    heap_objects: int
    heap_modules: int
    startup_runs: int
    startup_sizes: tuple[int, ...]  # the target applies to 100 modules
    memory_edits: int
    memory_modules: int
    startup_s: float
    closures: int  # handlers the closure project holds
    closure_heaps: tuple[int, ...]  # extra live objects of the closure-body sessions
    closure_modules: int
    big_lines: int
    big_modules: int
    live_grace_s: float  # closures, bigmodule: how long after its reload event an edit may take

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Config:
        quick = bool(args.quick)
        return cls(
            quick=quick,
            sizes=tuple(args.sizes or ((10, 100) if quick else (10, 100, 1000))),
            edits=args.edits or (5 if quick else 20),
            warmup=1 if quick else 2,
            heap_objects=args.heap_objects,
            heap_modules=100,
            startup_runs=args.startup_runs or (3 if quick else 20),
            startup_sizes=(100,) if quick else (100, 1000),
            memory_edits=args.memory_edits or (100 if quick else 1000),
            memory_modules=100,
            startup_s=1.0,
            closures=100,
            closure_heaps=(0, 1_000_000, args.heap_objects),
            closure_modules=100,
            big_lines=5000,
            big_modules=100,
            live_grace_s=1.0,
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="10/100 modules, few edits")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--no-restart", action="store_true", help="skip the restart baseline")
    parser.add_argument("--sizes", type=int, nargs="+", help="project sizes (modules)")
    parser.add_argument("--edits", type=int, help="measured edits per kind (default 20)")
    parser.add_argument("--startup-runs", type=int, help="runs per mode (default 20)")
    parser.add_argument("--memory-edits", type=int, help="reloads per kind (default 1000)")
    parser.add_argument("--heap-objects", type=int, default=10_000_000)
    parser.add_argument("--save-mode", choices=("rename", "inplace"), default="rename")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--write-docs", action="store_true", help="update the docs even for --quick or --render"
    )
    parser.add_argument("--render", type=Path, help="only render a saved results JSON")
    return parser.parse_args(argv)


def hotmod_run_available() -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hotmod", "run", "--help"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def _load() -> float | None:
    """The 1-minute load average: other work on the machine skews every number."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    """The commit the hotmod sources are at, "+ local changes" if src/ differs (read-only)."""
    root = HERE.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "no commit"
    diff = git("--no-optional-locks", "diff", "HEAD", "--", "src")
    if not diff:
        return commit
    return f"{commit} + local changes {hashlib.sha1(diff.encode()).hexdigest()[:8]}"


def machine_info(argv: Sequence[str], config: Config, save_mode: str) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hotmod": f"{_version('hotmod')} ({_git_revision()})",
        "watchfiles": _version("watchfiles"),
        "load_start": _load(),
        "command": shlex.join(["benchmarks/run.py", *argv]),
        "settings": (
            f"{config.edits} measured edits per kind and session after {config.warmup} "
            f"warm-up edits, saves by {save_mode}"
        ),
    }


def prepare(
    root: Path,
    modules: int,
    *,
    heap_objects: int = 0,
    startup_s: float,
    closures: int = 0,
    big_lines: int = 0,
) -> Project:
    project = generate(
        root,
        modules=modules,
        heap_objects=heap_objects,
        startup_s=startup_s,
        closures=closures,
        big_lines=big_lines,
    )
    # Both modes start from warm bytecode caches, as a developer's project would.
    compileall.compile_dir(str(root), quiet=1)
    return project


class Bench:
    """Runs the selected scenarios into one results dict."""

    def __init__(self, config: Config, opts: Options, tmp: Path, *, restart: bool) -> None:
        self.config = config
        self.opts = opts
        self.tmp = tmp
        self.restart = restart
        self.hotmod = hotmod_run_available()
        self.results: dict[str, Any] = {"errors": []}
        self.web_edits: int | None = None  # --edits, for the web scenario's own default

    def project(
        self, modules: int, *, heap_objects: int = 0, closures: int = 0, big_lines: int = 0
    ) -> Project:
        root = self.tmp / f"p{modules}-h{heap_objects}-c{closures}-b{big_lines}"
        return prepare(
            root,
            modules,
            heap_objects=heap_objects,
            startup_s=self.config.startup_s,
            closures=closures,
            big_lines=big_lines,
        )

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        """Run one measurement; a failure is recorded and the next one still runs."""
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            return action()
        except BenchError as exc:
            print(f"[bench] {name} FAILED: {exc}", file=sys.stderr, flush=True)
            self.results["errors"].append({"step": name, "error": str(exc)})
            return None
        finally:
            print(f"[bench] {name}: {time.monotonic() - started:.1f} s", file=sys.stderr)

    def latency(self) -> None:
        c = self.config
        modes = [m for m, on in ((Mode.HOTMOD, self.hotmod), (Mode.RESTART, self.restart)) if on]
        runs = self.results.setdefault("latency", [])
        for modules in c.sizes:
            project = self.project(modules)
            for mode in modes:
                run = self.step(
                    f"latency {mode} {modules} modules",
                    partial(latency_run, mode, project, self.opts, count=c.edits, warmup=c.warmup),
                )
                if run:
                    runs.append(run)

    def heap(self) -> None:
        c = self.config
        runs: dict[str, Any] = {}
        for key, objects in (("none", 0), ("heap", c.heap_objects)):
            project = self.project(c.heap_modules, heap_objects=objects)
            measure = partial(latency_run, Mode.HOTMOD, project, self.opts, label=f"heap{objects}")
            runs[key] = self.step(
                f"heap {objects} objects", partial(measure, count=c.edits, warmup=c.warmup)
            )
        if all(runs.values()):
            self.results["heap"] = {"objects": c.heap_objects, "modules": c.heap_modules, **runs}

    def closures(self) -> None:
        """Closure-body edits at each heap size, then make()'s sibling at the largest."""
        c = self.config
        heaps = sorted(set(c.closure_heaps))
        sessions = [(Kind.CLOSURE, objects) for objects in heaps]
        sessions.append((Kind.SIBLING, heaps[-1]))
        runs = []
        for kind, objects in sessions:
            project = self.project(c.closure_modules, heap_objects=objects, closures=c.closures)
            run = self.step(
                f"closures {kind} {objects} objects",
                partial(
                    closure_run,
                    project,
                    self.opts,
                    kind,
                    count=c.edits,
                    warmup=c.warmup,
                    grace_s=c.live_grace_s,
                ),
            )
            if run:
                runs.append(run)
        if runs:
            self.results["closures"] = {
                "modules": c.closure_modules,
                "closures": c.closures,
                "runs": runs,
            }

    def bigmodule(self) -> None:
        """Body edits of one function mid-way through a 5,000-line module, then line shifts."""
        c = self.config
        project = self.project(c.big_modules, big_lines=c.big_lines)
        opts = replace(self.opts, live_grace_s=c.live_grace_s)
        run = self.step(
            f"bigmodule {c.big_lines} lines",
            partial(
                latency_run,
                Mode.HOTMOD,
                project,
                opts,
                count=c.edits,
                warmup=c.warmup,
                label="bigmodule",
                kinds=(Kind.BIG, Kind.BIG_SHIFT),
            ),
        )
        if run:
            module = big_module(c.big_lines)
            self.results["bigmodule"] = {
                "modules": c.big_modules,
                "lines": module.lines,
                "functions": module.functions,
                "classes": module.classes,
                "run": run,
            }

    def startup(self) -> None:
        c = self.config
        runs = self.results.setdefault("startup", [])
        for modules in c.startup_sizes:
            project = self.project(modules)
            times = self.step(
                f"startup {modules} modules",
                partial(startup_run, project, self.opts, runs=c.startup_runs),
            )
            if times:
                runs.append({"modules": modules, "startup_s": c.startup_s, "times": times})

    def memory(self) -> None:
        c = self.config
        project = self.project(c.memory_modules)
        runs = self.results.setdefault("memory", [])
        for kind in BASIC_KINDS:
            run = self.step(
                f"memory {kind} x{c.memory_edits}",
                partial(memory_run, project, self.opts, kind, edits=c.memory_edits),
            )
            if run:
                runs.append(run)

    def web(self) -> None:
        """hotmod serve and the peers' reloaders on a generated web app (web.py)."""
        config = WebConfig.make(quick=self.config.quick, edits=self.web_edits)
        self.results["web"] = web_run(
            config, tmp=self.tmp, workdir=self.opts.workdir, save_mode=self.opts.save_mode,
            step=self.step,
        )

    def run(self, scenarios: Sequence[str]) -> dict[str, Any]:
        if not self.hotmod:
            print("[bench] `hotmod run` is not available: hotmod columns pending", file=sys.stderr)
        actions = {
            "latency": self.latency,
            "heap": self.heap,
            "closures": self.closures,
            "bigmodule": self.bigmodule,
            "startup": self.startup,
            "memory": self.memory,
            "web": self.web,
        }
        for name in scenarios:
            # The restart baseline and the web peers need no `hotmod run`.
            if name in ("latency", "web") or self.hotmod:
                actions[name]()
        return self.results


def update_docs(
    markdown: str, path: Path = DOCS, *, begin: str = BEGIN, end: str = END
) -> None:
    """Replace the text between the markers of ``path`` (appended if missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{begin}\n\n{markdown.rstrip()}\n\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def save_results(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench-{stamp}.json"
    data = json.dumps(results, indent=1, sort_keys=True)
    path.write_text(data, encoding="utf-8")
    (RESULTS / "latest.json").write_text(data, encoding="utf-8")
    return path


def measure(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    config = Config.from_args(args)
    # Taken before measuring: the revision measured is the one at the start.
    meta = machine_info(argv, config, args.save_mode)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"logs-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    opts = Options(workdir=workdir, save_mode=args.save_mode)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="hotmod-bench-"))
    try:
        bench = Bench(config, opts, tmp, restart=not args.no_restart)
        bench.web_edits = args.edits
        results = bench.run(args.only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if _git_revision() not in meta["hotmod"]:
        meta["hotmod"] += f"; sources changed during the run, now {_git_revision()}"
    meta.update(
        load_end=_load(),
        elapsed_s=time.monotonic() - started,
        hotmod_run=bench.hotmod,
        quick=bool(args.quick),
        scenarios=list(args.only),
        logs=str(workdir.relative_to(HERE.parent)),
    )
    results["meta"] = meta
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Started in the background by a shell (``make bench &``, nohup), we inherit
    # SIGINT ignored, and so would every program we start: the restart baseline's
    # watchfiles then waits out its 5 s SIGINT timeout on every restart. With a
    # handler here, our children start with the default action again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text(encoding="utf-8"))
    else:
        results = measure(args, argv)
        print(f"[bench] results saved to {save_results(results)}", file=sys.stderr)
    # Runs saved before the web scenario existed ran the core ones only.
    ran = set(results["meta"].get("scenarios", CORE))
    allowed = args.write_docs or not (args.quick or args.no_docs or args.render)
    if ran & set(CORE):
        markdown = render(results)
        print(markdown)
        # A partial run (--only some scenarios) would drop the others' tables: like
        # --quick, it leaves the page alone unless told otherwise.
        if allowed and (args.write_docs or ran >= set(CORE)):
            update_docs(markdown)
            print(f"[bench] updated {DOCS}", file=sys.stderr)
    if "web" in results:
        # The web section is its own: a run of the web scenario alone is a complete one.
        markdown = render_web(results)
        print(markdown)
        if allowed:
            update_docs(markdown, begin=WEB_BEGIN, end=WEB_END)
            print(f"[bench] updated the web section of {DOCS}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
