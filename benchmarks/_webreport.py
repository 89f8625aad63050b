"""Markdown for the web benchmark's results (``results["web"]``), its own section of the docs.

Like ``_report.py`` it only reads the results, so ``run.py --render FILE``
rebuilds it from a saved run.
"""

from __future__ import annotations

from typing import Any

from _report import _measured, _median, _ms, _table, _verdict, machine_lines, p95

HOTMOD_TARGET_MS = 20.0
# How much faster than each peer hotmod should be, and which hotmod row it is compared with.
SPEEDUP_TARGET = {"flask-reload": 50.0, "uvicorn-reload": 50.0, "uvicorn-hmr": 3.0}
HOTMOD_TWIN = {
    "flask-reload": "hotmod-flask",
    "uvicorn-reload": "hotmod-fastapi",
    "uvicorn-hmr": "hotmod-fastapi",
}
GATE_TARGET_PCT = 2.0
GATE_KIND = {"wsgi": "wsgi", "flask": "wsgi", "asgi": "asgi", "fastapi": "asgi"}
GATE_LABEL = {
    "wsgi": "bare WSGI callable (Werkzeug, threaded)",
    "flask": "Flask route (Werkzeug, threaded)",
    "asgi": "bare ASGI callable (uvicorn)",
    "fastapi": "FastAPI route (uvicorn)",
}


def _sessions(web: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["tool"]: s for s in web.get("sessions", [])}


def _latency_row(session: dict[str, Any], index: dict[str, dict[str, Any]]) -> list[str]:
    values = _measured(session["latency"])
    median = _median(values)
    tool = session["tool"]
    if tool.startswith("hotmod"):
        ok = None if median is None else median <= HOTMOD_TARGET_MS
        target, ratio = f"≤ {HOTMOD_TARGET_MS:.0f} ms ({_verdict(ok)})", "-"
    else:
        twin = index.get(HOTMOD_TWIN[tool])
        hot = _median(_measured(twin["latency"])) if twin else None
        want = SPEEDUP_TARGET[tool]
        speedup = median / hot if median is not None and hot else None
        ok = None if speedup is None else speedup >= want
        target = f"hotmod ≥ {want:.0f}x faster ({_verdict(ok)})"
        ratio = "-" if speedup is None else f"{speedup:.1f}x"
    edits = [s for s in session["latency"] if not s["warmup"]]
    batch_start = _median(_measured(session["latency"], "batch_start_ms"))
    engine = _median(_measured(session["latency"], "engine_ms"))
    return [
        session["label"], session["app"], str(len(edits)), f"{len(values)}/{len(edits)}",
        _ms(median),
        _ms(p95(values)) if values else "-", _ms(batch_start), _ms(engine), ratio, target,
    ]


def latency_section(web: dict[str, Any]) -> list[str]:
    index = _sessions(web)
    if not index:
        return []
    config = web["config"]
    rows = [_latency_row(s, index) for s in index.values()]
    return [
        f"### Web: save-to-live of a view's body edit ({config['modules']} modules, "
        f"{config['startup_s']:g} s start-up, ms)",
        "",
        *_table(
            ["server", "app", "edits", "live", "median", "p95", "save → batch start",
             "engine `duration_ms`", "its median / hotmod's", "target"],
            rows,
        ),
        "",
        "From just before the save to the first answer of `/probe` with the new text "
        "(polled on a keep-alive connection). *Live*: edits answered within 30 s; a "
        "server that misses one is not asked again (the series ends there). For hotmod, "
        "from its event file (medians): *save → batch start*, the watcher and its quiet "
        "period; *engine*, the reload itself; the rest of the median is the hand-over "
        "to the serving thread and the answer.",
    ]


def _load_row(session: dict[str, Any]) -> list[str]:
    rounds = session["load"]
    total = {k: sum(r[k] for r in rounds) for k in ("requests", "failed", "mixed", "other")}
    why: dict[str, int] = {}
    for r in rounds:
        for reason, count in r["failures"].items():
            why[reason] = why.get(reason, 0) + count
    per = len(rounds) or 1
    slowest = max((r["slowest_ms"] for r in rounds), default=None)
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(why.items())) or "-"
    live = sum(bool(r.get("live", True)) for r in rounds)
    return [
        session["label"], f"{live}/{len(rounds)}", str(total["requests"]),
        f"{total['failed'] / per:.1f}", f"{total['mixed'] / per:.1f}", _ms(slowest), reasons,
    ]


def load_section(web: dict[str, Any]) -> list[str]:
    sessions = [s for s in web.get("sessions", []) if s.get("load")]
    if not sessions:
        return []
    config = web["config"]
    return [
        f"### Web: failed and mixed answers per reload under {config['rate']:.0f} requests/s",
        "",
        *_table(
            ["server", "saves live", "requests", "failed per reload", "mixed per reload",
             "slowest answer (ms)", "failures"],
            [_load_row(s) for s in sessions],
        ),
        "",
        f"Each reload: {config['before_s']:g} s of load, one save of two modules "
        f"(`token_a.py`, `token_b.py`), {config['after_s']:g} s more load; every request on "
        "a fresh connection. *Failed*: refused, reset, timed out or not 200. *Mixed*: "
        "`/version` answered one token of each version. *Saves live*: `/version` "
        "answered both new tokens within 30 s of the load's end.",
    ]


def _implied(web: dict[str, Any], app: str, rate: float | None) -> str:
    """The overhead the in-process cost implies at ``rate`` requests a second."""
    cost = web.get("gate_micro", {}).get(GATE_KIND.get(app, ""))
    if not cost or not rate:
        return "-"
    pct = (cost["gate_us"] - cost["plain_us"]) * rate / 1e4
    return f"{pct:+.1f} % ({_verdict(pct <= GATE_TARGET_PCT)})"


def micro_section(web: dict[str, Any]) -> list[str]:
    costs = web.get("gate_micro", {})
    if not costs:
        return []
    rows = [
        [kind.upper(), f"{c['plain_us']:.2f}", f"{c['gate_us']:.2f}",
         f"{c['gate_us'] - c['plain_us']:.2f}"]
        for kind, c in sorted(costs.items(), reverse=True)
    ]
    return [
        "### Web: the gate middleware's own time per request (in-process, µs)",
        "",
        *_table(["interface", "bare app", "through the gate", "gate's cost"], rows),
        "",
        "The bare app called directly and through `GateMiddleware` (app read through a "
        "getter, as `hotmod serve` does) in a loop, no server and no sockets: median of 7 "
        "batches of 20,000 calls. It does not depend on the machine's other load the way "
        "the throughput runs do; *implied* above is this cost times the request rate.",
    ]


def gate_section(web: dict[str, Any]) -> list[str]:
    runs = web.get("gate", [])
    if not runs:
        return []
    rows = []
    for run in runs:
        plain, gated = _median(run["plain"]), _median(run["gate"])
        # Each pair's own overhead: the two runs of a pair share the machine's state.
        pairs = [(p - g) / p * 100 for p, g in zip(run["plain"], run["gate"], strict=True) if p]
        overhead = _median(pairs)
        ok = None if overhead is None else overhead <= GATE_TARGET_PCT
        rows.append([
            GATE_LABEL.get(run["app"], run["app"]), str(len(pairs)),
            f"{plain:.0f}" if plain else "-", f"{gated:.0f}" if gated else "-",
            "-" if overhead is None else f"{overhead:+.1f} %",
            "-" if not pairs else f"{min(pairs):+.1f} … {max(pairs):+.1f} %",
            f"≤ {GATE_TARGET_PCT:.0f} % ({_verdict(ok)})", _implied(web, run["app"], plain),
        ])
    config = web["config"]
    return [
        "### Web: the gate's cost per request (requests/s, median of runs)",
        "",
        *_table(
            ["endpoint", "pairs", "without gate", "with gate", "overhead (median of pairs)",
             "range of pairs", "target", "implied by the in-process cost"],
            rows,
        ),
        "",
        f"Load generator: {web.get('load_generator', '?')}, 1 thread, "
        f"{config['connections']} keep-alive connections, {config['gate_seconds']:g} s per "
        f"run after {config['gate_warmup_s']:g} s of warm-up of each server. Both servers "
        "run side by side; a pair is one run without and one with the gate, back to back, "
        "alternating which goes first; the overhead is the median of the pairs' own "
        "overheads. Request rates are medians of the runs.",
    ]


def render_web(results: dict[str, Any]) -> str:
    """The generated web part of ``docs/benchmarks.md``."""
    web = results["web"]
    config = web["config"]
    settings = (
        f"{config['edits']} measured edits per server after {config['warmup']} warm-up edits; "
        f"{config['rounds']} saves under load per server; {config['gate_runs']} gate runs "
        "per variant"
    )
    lines = ["## Web results", "", *machine_lines({**results["meta"], "settings": settings})]
    lines.append(f"- Peers: {web.get('peers', '?')}")
    lines.append("")
    if not web.get("hotmod_serve"):
        lines += ["**hotmod rows pending:** `hotmod serve` was not available for this run.", ""]
    for section in (latency_section, load_section, gate_section, micro_section):
        part = section(web)
        if part:
            lines += [*part, ""]
    return "\n".join(lines)

