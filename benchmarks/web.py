"""The web benchmark: ``hotmod serve`` against the reloaders web developers use today.

Run it with the others (``make bench``) or alone::

    .venv/bin/python benchmarks/run.py --only web
    .venv/bin/python benchmarks/run.py --only web --quick      # fewer edits and runs
    .venv/bin/python benchmarks/web.py --gate-only             # the gate's cost alone

On a generated project of 50 modules with 1 s of start-up (``_webapp.py``), one
Flask app and one FastAPI app, it measures for ``hotmod serve`` (both apps),
``flask run --reload`` (Flask), ``uvicorn --reload`` and ``uvicorn-hmr``
(FastAPI):

- save-to-live of a view's function body (median and p95 of >= 10 edits);
- failed and mixed-version answers per reload under a steady 200 requests a
  second, when one save changes two modules;
- and the gate's cost: requests a second of a trivial endpoint with and
  without hotmod's gate middleware (WSGI and ASGI), measured with ``wrk``,
  and the middleware's own time per request, in-process.

``uvicorn-hmr`` needs Python >= 3.12: it runs from its own virtual environment,
``benchmarks/.venv-peers`` (git-ignored), made here on first use with Python
3.12 (pyenv's, or ``python3.12``) and ``pip install uvicorn-hmr fastapi``.
``wrk`` is Debian's package, installed with apt-get when missing (as root);
without it the gate runs use ``_webload.py flood`` and say so.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from _procs import EventLog
from _webapp import generate
from _webgaterun import gate_compare, gate_micro
from _websessions import Tool, latency_run, load_run, pinning, start, tools, wrk_path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".venv-peers"
PEER_PACKAGES = ("uvicorn-hmr", "fastapi")
GATE_APPS = ("wsgi", "flask", "asgi", "fastapi")

Step = Callable[[str, Callable[[], Any]], Any]


@dataclass(frozen=True)
class WebConfig:
    modules: int
    startup_s: float
    edits: int  # measured save-to-live edits per server
    warmup: int
    rounds: int  # saves under load per server
    rate: float  # requests a second during a load round
    before_s: float  # load before the save
    after_s: float  # load after the save
    gate_blocks: int  # runs on one connection, paths mixed at random, per app
    gate_rounds: int  # rounds of one run per path (bare, bare again, gated) per app
    gate_seconds: float
    gate_warmup_s: float
    connections: int  # wrk's keep-alive connections

    @classmethod
    def make(cls, *, quick: bool, edits: int | None = None) -> WebConfig:
        return cls(
            modules=50,
            startup_s=1.0,
            edits=edits or (5 if quick else 12),
            warmup=1 if quick else 2,
            rounds=1 if quick else 3,
            rate=200.0,
            before_s=1.0,
            after_s=4.0,
            gate_blocks=6 if quick else 20,
            gate_rounds=3 if quick else 6,
            gate_seconds=1.0,
            gate_warmup_s=1.0,
            connections=8,
        )


def hotmod_serve_available() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "hotmod", "serve", "--help"],
        capture_output=True, timeout=60, check=False,
    )
    return done.returncode == 0


def _python312() -> str | None:
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        candidate = Path(root.stdout.strip()) / "versions" / "3.12.1" / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    return shutil.which("python3.12")


def peers_python() -> tuple[str | None, str]:
    """The peers' interpreter (made on first use), or None and why not."""
    python = PEERS / "bin" / "python"
    if not (PEERS / "bin" / "uvicorn-hmr").exists():
        base = _python312()
        if base is None:
            return None, "no Python 3.12 for uvicorn-hmr"
        print(f"[bench] making {PEERS} (uvicorn-hmr) ...", file=sys.stderr, flush=True)
        steps = (
            [base, "-m", "venv", str(PEERS)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *PEER_PACKAGES],
        )
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                return None, f"{' '.join(argv[:4])} failed: {done.stderr.strip()[-300:]}"
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, sys; print("
         "f\"uvicorn-hmr {m.version('uvicorn-hmr')}, hmr {m.version('hmr')}, "
         "Python {sys.version.split()[0]}\")"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0:
        return None, f"{PEERS} is broken: {done.stderr.strip()[-300:]}"
    return str(python), done.stdout.strip()


def _wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=30, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].partition(" Copyright")[0] if lines else wrk


def _attach_events(samples: list[dict[str, Any]], events: Path) -> None:
    """Give each latency sample hotmod's own view: engine time, and save -> batch start.

    The latency edits come first and each is one batch, so the n-th reload
    event (of ``probe_view.py``) belongs to the n-th edit.
    """
    reloads = [
        e for e in EventLog(events).of("reload")
        if any(p.endswith("probe_view.py") for p in e.get("paths", []))
    ]
    for sample, event in zip(samples, reloads, strict=False):
        sample["outcome"] = event.get("outcome")
        sample["engine_ms"] = event.get("duration_ms")
        if event.get("duration_ms") is not None:
            start_ms = event["time"] * 1e3 - event["duration_ms"]
            sample["batch_start_ms"] = start_ms - sample["saved_ns"] / 1e6


def session(
    tool: Tool, config: WebConfig, tmp: Path, workdir: Path, save_mode: str
) -> dict[str, Any]:
    """One server on a fresh project: save-to-live edits, then saves under load."""
    root = tmp / f"web-{tool.name}"
    project = generate(root, modules=config.modules, startup_s=config.startup_s)
    compileall.compile_dir(str(root), quiet=1)  # warm bytecode, as a developer's project is
    server, port = start(tool, project, workdir, f"web-{tool.name}")
    with server:
        latency = latency_run(
            server, port, project, count=config.edits, warmup=config.warmup, first=1,
            save_mode=save_mode,
        )
        load = load_run(
            server, port, project, workdir, f"web-{tool.name}", rounds=config.rounds,
            rate=config.rate, before_s=config.before_s, after_s=config.after_s, first=1,
            save_mode=save_mode,
        )
    if tool.name.startswith("hotmod"):
        _attach_events(latency, workdir / f"web-{tool.name}.events.jsonl")
    return {
        "tool": tool.name, "label": tool.label, "app": tool.app, "modules": project.modules,
        "latency": latency, "load": load,
    }


def run(
    config: WebConfig, *, tmp: Path, workdir: Path, save_mode: str, step: Step
) -> dict[str, Any]:
    """Every web measurement; a failed one is recorded by ``step`` and the rest go on."""
    results: dict[str, Any] = {"config": asdict(config), "sessions": []}
    peers, peers_note = peers_python()
    results["peers"] = peers_note
    serve = hotmod_serve_available()
    results["hotmod_serve"] = serve
    if not serve:
        print("[bench] `hotmod serve` is not available: its rows pending", file=sys.stderr)
    for tool in tools(sys.executable, peers):
        if tool.name.startswith("hotmod") and not serve:
            continue
        found = step(f"web {tool.name}", partial(session, tool, config, tmp, workdir, save_mode))
        if found:
            results["sessions"].append(found)
    results.update(gate_part(config, workdir, step))
    return results


def gate_part(config: WebConfig, workdir: Path, step: Step) -> dict[str, Any]:
    """The gate's cost: under wrk (CPU per request and throughput), and in-process."""
    part: dict[str, Any] = {"gate": [], "gate_micro": {}}
    wrk = wrk_path()
    part["load_generator"] = _wrk_version(wrk) if wrk else "benchmarks/_webload.py flood"
    if pinning()[0]:
        part["load_generator"] += " on core 1, the server pinned to core 0 (taskset)"
    for app in GATE_APPS:
        found = step(
            f"web gate {app}",
            partial(
                gate_compare, app, workdir, blocks=config.gate_blocks, rounds=config.gate_rounds,
                seconds=config.gate_seconds, warmup_s=config.gate_warmup_s,
                connections=config.connections, wrk=wrk,
            ),
        )
        if found:
            part["gate"].append(found)
    for kind in ("wsgi", "asgi"):
        cost = step(f"web gate in-process {kind}", partial(gate_micro, kind))
        if cost:
            part["gate_micro"][kind] = cost
    return part


def gate_only(argv: list[str]) -> int:
    """``web.py --gate-only [--quick] [--no-docs] [--render FILE]``: the gate's part alone.

    Saved as ``results/gate-STAMP.json``; unless ``--quick`` or ``--no-docs``,
    its tables replace the gate tables of the web section of the docs (the rest
    of that section stays as the last full web run left it). ``--render FILE``
    shows (and puts in the docs) a saved run instead of measuring.
    """
    import datetime
    import json
    import platform
    import time

    import run as runner
    from _procs import BenchError

    if "--render" in argv:  # a saved gate run, again: --render FILE
        results = json.loads(Path(argv[argv.index("--render") + 1]).read_text(encoding="utf-8"))
        return _write_gate(results, docs=runner.DOCS if "--no-docs" not in argv else None,
                           end=runner.WEB_END)
    config = WebConfig.make(quick="--quick" in argv)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = runner.RESULTS / f"logs-gate-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    errors: list[dict[str, str]] = []

    def step(name: str, action: Callable[[], Any]) -> Any:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            return action()
        except BenchError as exc:
            print(f"[bench] {name} FAILED: {exc}", file=sys.stderr, flush=True)
            errors.append({"step": name, "error": str(exc)})
            return None

    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "hotmod": f"{runner._version('hotmod')} ({runner._git_revision()})",
        "command": " ".join(["benchmarks/web.py", *argv]),
        "load_start": runner._load(),
    }
    started, cpu_before = time.monotonic(), _cpu_ticks()
    web = {"config": asdict(config), **gate_part(config, workdir, step)}
    meta.update(elapsed_s=time.monotonic() - started, load_end=runner._load())
    cpu_after = _cpu_ticks()
    if cpu_before and cpu_after:
        spent = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
        meta["steal_pct"] = 100 * spent[7] / (sum(spent[:8]) or 1)
    results = {"web": web, "meta": meta, "errors": errors}
    runner.RESULTS.mkdir(parents=True, exist_ok=True)
    saved = runner.RESULTS / f"gate-{stamp}.json"
    saved.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    print(f"[bench] results saved to {saved}", file=sys.stderr)
    docs = runner.DOCS if "--quick" not in argv and "--no-docs" not in argv else None
    return _write_gate(results, docs=docs, end=runner.WEB_END)


def _cpu_ticks() -> list[int]:
    """The machine's CPU time by kind (``/proc/stat``); the 8th is *steal*: time the
    hypervisor gave this machine's virtual cores to someone else."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(field) for field in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def _write_gate(results: dict[str, Any], *, docs: Path | None, end: str) -> int:
    """Print the gate tables; with ``docs``, put them in place of that page's."""
    from _webreport import render_gate, replace_gate

    markdown = render_gate(results)
    print(markdown)
    if docs is not None:
        text = replace_gate(docs.read_text(encoding="utf-8"), markdown, end=end)
        docs.write_text(text, encoding="utf-8")
        print(f"[bench] updated the gate tables of {docs}", file=sys.stderr)
    return 1 if results["errors"] else 0


def main() -> int:
    """``python benchmarks/web.py ARGS`` is ``run.py --only web ARGS``; with
    ``--gate-only``, the gate's part alone (:func:`gate_only`)."""
    os.chdir(HERE.parent)
    argv = sys.argv[1:]
    if "--gate-only" in argv:
        return gate_only(argv)
    import run as runner

    return runner.main(["--only", "web", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
