"""The measurements: edits under a running program, start-up, memory over many reloads.

A *session* is one program run in one *mode*:

- ``hotmod``: ``python -m hotmod run --json-events FILE main.py``
- ``restart``: ``watchfiles --filter python 'python main.py' DIR`` — the full
  restart on every save that users of ``uvicorn --reload`` & co. have today
- ``plain``: ``python main.py`` (start-up reference only)

Latency is always measured from the program's own observation: ``time.time_ns()``
just before the benchmark saves the file, to the ``time.time_ns()`` the program
printed when it first saw the new value.

With ``HOTMOD_BENCH_PROFILE=DIR`` in the environment, ``hotmod`` and ``plain``
programs start under ``_profchild.py``, which writes cProfile statistics of
their start-up (up to the first observation) to ``DIR/<session label>-<n>.*``.
Profiled numbers are slower than real ones: use such a run for the profiles only.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _procs import BenchError, Event, EventLog, Program, rss_kib
from genproject import (
    Project,
    big_source,
    body_source,
    const_source,
    factory_source,
    observed,
    reset,
    save,
)


class Mode(enum.StrEnum):
    HOTMOD = "hotmod"
    RESTART = "restart"
    PLAIN = "plain"


class Kind(enum.StrEnum):
    BODY = "body"  # function body edit: a patch, no module re-executes
    REEXEC = "reexec"  # module constant edit: the leaf and its 5 importers re-execute
    CLOSURE = "closure"  # body of handler(), nested in make(): live only in closures
    SIBLING = "sibling"  # body of sibling(), make()'s top-level neighbour
    BIG = "big"  # body of order_summary(), mid-way through a 5,000-line module
    BIG_SHIFT = "big-shift"  # the same, plus one more line: every later function moves


# What one session of ``latency_run`` edits unless told otherwise.
BASIC_KINDS = (Kind.BODY, Kind.REEXEC)


@dataclass(frozen=True)
class Options:
    """How every scenario edits and waits."""

    workdir: Path  # logs and event files go here
    save_mode: str = "rename"
    edit_timeout_s: float = 30.0
    start_timeout_s: float = 120.0
    settle_s: float = 0.05  # pause between edits (pacing, not synchronisation)
    # If set (hotmod only): an edit waits for its reload event, then at most this
    # long for the program to see the new value; an edit the engine reported but
    # the program never saw is recorded as ``not_live`` instead of stalling the
    # series for ``edit_timeout_s`` (edits that today's engine cannot make live).
    live_grace_s: float | None = None


PROFILE_ENV = "HOTMOD_BENCH_PROFILE"
_PROFILE_COUNT = itertools.count(1)


def _python(label: str) -> list[str]:
    """``python``, or ``python _profchild.py PREFIX`` when start-up profiling is on."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        return [sys.executable]
    Path(folder).mkdir(parents=True, exist_ok=True)
    prefix = Path(folder).resolve() / f"{label}-{next(_PROFILE_COUNT)}"
    return [sys.executable, str(Path(__file__).with_name("_profchild.py")), str(prefix)]


def command(mode: Mode, project: Project, events: Path, label: str = "run") -> list[str]:
    python = sys.executable
    if mode is Mode.HOTMOD:
        return [*_python(label), "-m", "hotmod", "run", "--json-events", str(events), "main.py"]
    if mode is Mode.RESTART:
        target = shlex.join([python, "main.py"])
        return [python, "-m", "watchfiles", "--filter", "python", target, str(project.root)]
    return [*_python(label), "main.py"]


@dataclass
class EditState:
    """The values the edited files hold now; each edit moves one of them on."""

    project: Project
    value: int = 0
    const: int = 0
    closure: int = 0
    sibling: int = 0
    big: int = 0
    big_extra: int = 0  # lines added to order_summary() so far
    edits: int = 0

    def current(self) -> str:
        factory = self.project.closures > 0
        return observed(
            self.value,
            self.const,
            closure=self.closure if factory else None,
            sibling=self.sibling if factory else None,
            big=self.big if self.project.big_lines else None,
        )

    def advance(self, kind: Kind) -> tuple[Path, str, str]:
        """The next edit of ``kind``: (file, new text, the value the program should see)."""
        self.edits += 1
        project, edit = self.project, self.edits
        if kind is Kind.BODY:
            self.value += 1
            path, text = project.body_file, body_source(self.value, edit=edit)
        elif kind is Kind.REEXEC:
            self.const += 1
            path, text = project.const_file, const_source(self.const, edit=edit)
        elif kind in (Kind.CLOSURE, Kind.SIBLING):
            if not project.closures:
                raise BenchError(f"{kind} edits need a project with a factory module")
            if kind is Kind.CLOSURE:
                self.closure += 1
            else:
                self.sibling += 1
            path, text = project.factory_file, factory_source(self.closure, self.sibling, edit=edit)
        else:
            if not project.big_lines:
                raise BenchError(f"{kind} edits need a project with a big module")
            self.big += 1
            self.big_extra += kind is Kind.BIG_SHIFT
            text = big_source(project.big_lines, self.big, extra=self.big_extra, edit=edit)
            path = project.big_file
        return path, text, self.current()


@dataclass
class EditSample:
    """One edit: what the program saw, and what hotmod said it did."""

    kind: str
    warmup: bool
    latency_ms: float | None = None
    engine_ms: float | None = None  # hotmod's own duration_ms (sum over this edit's batches)
    detect_ms: float | None = None  # save to the start of the first batch (watch + debounce)
    outcomes: list[str] = field(default_factory=list)  # one per reload event
    patched: int = 0
    reexecuted: int = 0
    functions: int = 0  # function objects whose code hotmod replaced (its ``functions``)
    not_live: bool = False  # reloaded, but the program never saw the new value (grace passed)
    stray: list[str] = field(default_factory=list)  # values seen that were neither old nor new
    error: str | None = None
    events: list[Event] = field(default_factory=list)  # kept only when something was off

    @property
    def anomalous(self) -> bool:
        return bool(self.error or self.stray or self.outcomes != ["applied"])


class Session:
    """One program started in one mode on one project; stopped on exit."""

    def __init__(self, mode: Mode, project: Project, opts: Options, label: str) -> None:
        self.mode = mode
        self.project = project
        self.opts = opts
        events_path = opts.workdir / f"{label}.events.jsonl"
        events_path.unlink(missing_ok=True)
        self.events = EventLog(events_path)
        self.state = EditState(project)
        reset(project)  # an earlier session left its edits in the files
        self.program = Program(
            command(mode, project, events_path, label),
            cwd=project.root,
            log=opts.workdir / f"{label}.log",
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.program.stop()

    def wait_ready(self) -> float:
        """Wait for the first observation; return the time from spawn to it in ms."""
        obs = self.program.wait_for(None, timeout=self.opts.start_timeout_s)
        if obs.value != self.state.current():
            raise BenchError(f"program started on {obs.value!r}, expected {self.state.current()!r}")
        if self.mode is Mode.HOTMOD:
            self.events.wait_count("started", 1, timeout=self.opts.edit_timeout_s)
        return (obs.time_ns - self.program.spawned_ns) / 1e6

    def program_pid(self) -> int:
        """The pid that runs the user's code (hotmod's ``started`` event says which)."""
        if self.mode is Mode.HOTMOD:
            return int(self.events.of("started")[-1]["pid"])
        if self.mode is Mode.PLAIN:
            return self.program.proc.pid
        raise BenchError("the restart loop's program changes pid on every edit")

    def edit(self, kind: Kind, *, warmup: bool = False) -> EditSample:
        """Save one edit and wait until the program runs it."""
        old = self.state.current()
        path, text, expected = self.state.advance(kind)
        sample = EditSample(kind=kind.value, warmup=warmup)
        mark = self.program.count()
        reloads_before = len(self.events.of("reload"))
        grace = self.opts.live_grace_s if self.mode is Mode.HOTMOD else None
        t0 = time.time_ns()
        save(path, text, mode=self.opts.save_mode)
        try:
            if grace is not None:
                self.events.wait_count(
                    "reload", reloads_before + 1, timeout=self.opts.edit_timeout_s
                )
                try:
                    seen = self.program.wait_for(expected, since=mark, timeout=grace)
                except BenchError as exc:
                    sample.not_live = not self.program.exited
                    raise BenchError(
                        f"reloaded, not live {grace:g} s after the reload event: {exc}"
                    ) from exc
            else:
                seen = self.program.wait_for(expected, since=mark, timeout=self.opts.edit_timeout_s)
            sample.latency_ms = (seen.time_ns - t0) / 1e6
            sample.stray = [
                o.value
                for o in self.program.since(mark)
                if o.time_ns <= seen.time_ns and o.value not in (old, expected)
            ]
            if self.mode is Mode.HOTMOD:
                self.events.wait_count("reload", reloads_before + 1, timeout=5.0)
        except BenchError as exc:
            sample.error = str(exc)
        time.sleep(self.opts.settle_s)
        self._record_reloads(sample, self.events.of("reload")[reloads_before:], saved_ns=t0)
        return sample

    def _record_reloads(self, sample: EditSample, reloads: list[Event], *, saved_ns: int) -> None:
        if self.mode is not Mode.HOTMOD:
            sample.outcomes = ["applied"] if sample.latency_ms is not None else []
            return
        if reloads:
            # The event's time is written when the batch ends (time.time(), same clock).
            first = reloads[0]
            started_ms = float(first["time"]) * 1e3 - float(first.get("duration_ms", 0.0))
            sample.detect_ms = started_ms - saved_ns / 1e6
        sample.outcomes = [str(e.get("outcome")) for e in reloads]
        sample.engine_ms = sum(float(e.get("duration_ms", 0.0)) for e in reloads) or None
        sample.patched = sum(len(e.get("patched", ())) for e in reloads)
        sample.reexecuted = sum(len(e.get("reexecuted", ())) for e in reloads)
        sample.functions = sum(int(e.get("functions", 0)) for e in reloads)
        if sample.anomalous:
            sample.events = reloads


def edit_series(session: Session, kind: Kind, *, count: int, warmup: int) -> list[EditSample]:
    """``warmup`` + ``count`` edits of one kind; stops early after 3 failures in a row.

    An edit that was reloaded but did not go live (``not_live``) is an outcome
    to record, not a failure of the benchmark: the series goes on.
    """
    samples: list[EditSample] = []
    failures = 0
    for i in range(warmup + count):
        sample = session.edit(kind, warmup=i < warmup)
        samples.append(sample)
        failures = failures + 1 if sample.error and not sample.not_live else 0
        if failures >= 3:
            print(f"    giving up on {kind} edits: {sample.error}", file=sys.stderr)
            break
    return samples


def latency_run(
    mode: Mode,
    project: Project,
    opts: Options,
    *,
    count: int,
    warmup: int,
    label: str = "latency",
    kinds: Sequence[Kind] = BASIC_KINDS,
) -> dict[str, Any]:
    """Each of ``kinds`` in turn, ``warmup`` + ``count`` edits each, in one session of ``mode``."""
    label = f"{label}-{mode}-{project.modules}"
    with Session(mode, project, opts, label) as session:
        startup_ms = session.wait_ready()
        series = {
            kind.value: [asdict(s) for s in edit_series(session, kind, count=count, warmup=warmup)]
            for kind in kinds
        }
    return {"mode": mode.value, "modules": project.modules, "startup_ms": startup_ms, **series}


def closure_run(
    project: Project, opts: Options, kind: Kind, *, count: int, warmup: int, grace_s: float
) -> dict[str, Any]:
    """``kind`` edits of ``app/factory.py`` under hotmod; unseen edits recorded, not waited out."""
    live = dataclasses.replace(opts, live_grace_s=grace_s)
    run = latency_run(
        Mode.HOTMOD, project, live, count=count, warmup=warmup,
        label=f"closures-{kind}-h{project.heap_objects}", kinds=(kind,),
    )  # fmt: skip
    return {"kind": kind.value, "objects": project.heap_objects, "grace_s": grace_s, **run}


def startup_run(project: Project, opts: Options, *, runs: int) -> dict[str, list[float]]:
    """Time from spawn to first observed value, ``plain`` and ``hotmod`` alternating."""
    times: dict[str, list[float]] = {Mode.PLAIN.value: [], Mode.HOTMOD.value: []}
    for mode in (Mode.PLAIN, Mode.HOTMOD):  # unmeasured: fills the bytecode caches
        with Session(mode, project, opts, f"startup-warmup-{mode}-{project.modules}") as session:
            session.wait_ready()
    for i in range(runs):
        for mode in (Mode.PLAIN, Mode.HOTMOD) if i % 2 == 0 else (Mode.HOTMOD, Mode.PLAIN):
            with Session(mode, project, opts, f"startup-{mode}-{project.modules}") as session:
                times[mode.value].append(session.wait_ready())
    return times


def memory_run(project: Project, opts: Options, kind: Kind, *, edits: int) -> dict[str, Any]:
    """RSS of the program under hotmod before and after ``edits`` reloads of ``kind``."""
    with Session(Mode.HOTMOD, project, opts, f"memory-{kind}") as session:
        session.wait_ready()
        pid = session.program_pid()
        rss = {"0": rss_kib(pid)}  # edits done -> KiB (str keys: JSON)
        samples: list[EditSample] = []
        checkpoints = {10, 100, edits // 2, edits}
        for i in range(1, edits + 1):
            samples.append(session.edit(kind))
            if i in checkpoints:
                rss[str(i)] = rss_kib(session.program_pid())
            if sum(1 for s in samples[-3:] if s.error) == 3:
                break
        restarted = len(session.events.of("started")) - 1
    latencies = [s.latency_ms for s in samples if s.latency_ms is not None]
    return {
        "kind": kind.value,
        "edits": len(samples),
        "rss_kib": rss,
        "restarts": restarted,
        "failed_edits": sum(1 for s in samples if s.error),
        "outcomes": dict(Counter(o for s in samples for o in s.outcomes)),
        "latency_median_ms": statistics.median(latencies) if latencies else None,
        "anomalies": [asdict(s) for s in samples if s.anomalous][:10],
    }
