"""Turn a results dict (as saved in ``benchmarks/results/*.json``) into markdown.

Rendering only reads the results, so ``run.py --render FILE`` can rebuild the
docs section from a saved run without measuring again.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

TARGET_MS = {"body": 10.0, "reexec": 25.0}
KIND_LABEL = {
    "body": "function body (patch)",
    "reexec": "constant, 5 importers (re-exec)",
    "closure": "`handler` body (nested in `make()`)",
    "sibling": "`sibling()` body (top level, beside `make()`)",
    "big": "`order_summary()` body, mid-module",
    "big-shift": "the same + 1 line (later functions shift)",
}
RATIO_TARGET = 1.5
STARTUP_TARGET_PCT = 10.0  # at every size measured (100 and 1000 modules)
MEMORY_TARGET_MB = 5.0
# Engine time (``duration_ms``) of the edits in the 5,000-line module; None: reported.
BIG_ENGINE_TARGET_MS: dict[str, float | None] = {"big": 10.0, "big-shift": None}


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _measured(samples: Iterable[dict[str, Any]], key: str = "latency_ms") -> list[float]:
    return [s[key] for s in samples if not s["warmup"] and s.get(key) is not None]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _ratio(num: float | None, den: float | None) -> str:
    return "-" if num is None or not den else f"{num / den:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _latency_index(results: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["mode"], r["modules"]): r for r in results.get("latency", [])}


def latency_median(run: dict[str, Any] | None, kind: str) -> float | None:
    return _median(_measured(run[kind])) if run else None


def _latency_rows(results: dict[str, Any]) -> list[list[str]]:
    index = _latency_index(results)
    rows = []
    for modules in sorted({m for _, m in index}):
        hot, restart = index.get(("hotmod", modules)), index.get(("restart", modules))
        for kind in ("body", "reexec"):
            hot_lat = _measured(hot[kind]) if hot else []
            restart_lat = _measured(restart[kind]) if restart else []
            engine = _measured(hot[kind], "engine_ms") if hot else []
            detect = _measured(hot[kind], "detect_ms") if hot else []
            hot_med = _median(hot_lat)
            ok = None if hot_med is None else hot_med <= TARGET_MS[kind]
            rows.append(
                [
                    str(modules),
                    KIND_LABEL[kind],
                    f"{len(hot_lat)}" if hot else "pending",
                    _ms(hot_med),
                    _ms(p95(hot_lat)) if hot_lat else "-",
                    _ms(_median(detect)),
                    _ms(_median(engine)),
                    f"≤ {TARGET_MS[kind]:.0f} ({_verdict(ok)})",
                    _ms(_median(restart_lat)),
                    _ms(p95(restart_lat)) if restart_lat else "-",
                    _ratio(_median(restart_lat), hot_med),
                ]
            )
    return rows


def latency_section(results: dict[str, Any]) -> list[str]:
    if not results.get("latency"):
        return []
    header = [
        "modules", "edit", "n", "hotmod median", "hotmod p95", "save → batch start",
        "engine `duration_ms`",
        "target", "restart median", "restart p95", "restart / hotmod",
    ]  # fmt: skip
    return [
        "### Save-to-live latency (ms)",
        "",
        *_table(header, _latency_rows(results)),
    ]


def scaling_section(results: dict[str, Any]) -> list[str]:
    index = _latency_index(results)
    sizes = sorted(m for mode, m in index if mode == "hotmod")
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    rows = []
    for kind in ("body", "reexec"):
        a = latency_median(index[("hotmod", small)], kind)
        b = latency_median(index[("hotmod", large)], kind)
        ok = None if a is None or b is None else b / a <= RATIO_TARGET
        rows.append([KIND_LABEL[kind], _ms(a), _ms(b), _ratio(b, a), _verdict(ok)])
    header = ["edit", f"{small} modules", f"{large} modules", "ratio", f"≤ {RATIO_TARGET}x"]
    return ["### Reload cost vs project size (hotmod median, ms)", "", *_table(header, rows)]


def heap_section(results: dict[str, Any]) -> list[str]:
    heap = results.get("heap")
    if not heap:
        return []
    rows = []
    for kind in ("body", "reexec"):
        a, b = latency_median(heap["none"], kind), latency_median(heap["heap"], kind)
        ok = None if a is None or b is None else b / a <= RATIO_TARGET
        rows.append([KIND_LABEL[kind], _ms(a), _ms(b), _ratio(b, a), _verdict(ok)])
    objects = f"{heap['objects'] / 1e6:g} M live objects"
    header = ["edit", "no extra objects", objects, "ratio", f"≤ {RATIO_TARGET}x"]
    title = f"### Reload cost vs heap size ({heap['modules']} modules, hotmod median, ms)"
    return [title, "", *_table(header, rows)]


def _outcomes(samples: Iterable[dict[str, Any]]) -> str:
    """``applied: 20, not live: 20``: reload outcomes of the edits, then edits never seen live."""
    samples = list(samples)
    counts = Counter(o for s in samples for o in s.get("outcomes", ()))
    text = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no reload event"
    not_live = sum(1 for s in samples if s.get("not_live"))
    return text + (f", not live: {not_live}" if not_live else "")


def _edit_cells(samples: list[dict[str, Any]]) -> list[str]:
    """n, live, save-to-live median and p95, engine median and p95, functions patched."""
    measured = [s for s in samples if not s["warmup"]]
    latency = _measured(samples)
    engine = _measured(samples, "engine_ms")
    functions = [float(s.get("functions", 0)) for s in measured if s.get("outcomes")]
    return [
        str(len(measured)),
        f"{len(latency)}/{len(measured)}",
        _ms(_median(latency)),
        _ms(p95(latency)) if latency else "-",
        _ms(_median(engine)),
        _ms(p95(engine)) if engine else "-",
        f"{_median(functions):g}" if functions else "-",
    ]


def closures_section(results: dict[str, Any]) -> list[str]:
    found = results.get("closures")
    if not found or not found["runs"]:
        return []
    base = next(
        (_median(_measured(r[r["kind"]], "engine_ms")) for r in found["runs"]
         if r["kind"] == "closure" and r["objects"] == 0),
        None,
    )  # fmt: skip
    rows = []
    for run in found["runs"]:
        samples = run[run["kind"]]
        engine = _median(_measured(samples, "engine_ms"))
        rows.append([
            KIND_LABEL[run["kind"]],
            f"{run['objects'] / 1e6:g} M" if run["objects"] else "0",
            *_edit_cells(samples),
            _ratio(engine, base),
            "(reported)",
            _outcomes(s for s in samples if not s["warmup"]),
        ])  # fmt: skip
    header = [
        "edit", "extra live objects", "n", "live", "save-to-live median", "p95",
        "engine `duration_ms`", "engine p95", "functions patched",
        "engine / `handler` edit at 0 objects", "target", "outcomes",
    ]  # fmt: skip
    grace = found["runs"][0].get("grace_s", 1.0)
    title = (
        f"### Closures made at run time: search cost vs heap size ({found['modules']} modules, "
        f"{found['closures']} closures, hotmod, ms)"
    )
    note = (
        f'"live": edits the program saw within {grace:g} s of their reload event '
        "(every closure returning the new value); latency columns cover those only."
    )
    return [title, "", *_table(header, rows), "", note]


def bigmodule_section(results: dict[str, Any]) -> list[str]:
    big = results.get("bigmodule")
    if not big:
        return []
    rows = []
    for kind in ("big", "big-shift"):
        samples = big["run"].get(kind) or []
        engine = _median(_measured(samples, "engine_ms"))
        target = BIG_ENGINE_TARGET_MS[kind]
        ok = None if target is None or engine is None else engine <= target
        rows.append([
            KIND_LABEL[kind],
            *_edit_cells(samples),
            "(reported)" if target is None else f"engine ≤ {target:g} ({_verdict(ok)})",
            _outcomes(s for s in samples if not s["warmup"]),
        ])  # fmt: skip
    header = [
        "edit", "n", "live", "save-to-live median", "p95", "engine `duration_ms`", "engine p95",
        "functions patched", "target", "outcomes",
    ]  # fmt: skip
    title = (
        f"### One function edited in a {big['lines']:,}-line module ({big['functions']} "
        f"functions, {big['classes']} classes; {big['modules']} modules, hotmod, ms)"
    )
    return [title, "", *_table(header, rows)]


def _startup_row(run: dict[str, Any]) -> list[str]:
    plain_runs, hot_runs = run["times"]["plain"], run["times"]["hotmod"]
    plain, hot = _median(plain_runs), _median(hot_runs)
    # Each hotmod start against the plain start next to it (they alternate): a pair
    # shares the machine's state of the moment, which moves single starts by ±15 %.
    diffs = sorted(h - p for p, h in zip(plain_runs, hot_runs, strict=False))
    paired = _median(diffs)
    overhead = None if plain is None or paired is None else paired / plain * 100
    ok = None if overhead is None else overhead <= STARTUP_TARGET_PCT
    spread = "-" if len(diffs) < 4 else (
        f"{_ms(diffs[len(diffs) // 4])} … {_ms(diffs[(3 * len(diffs)) // 4])}"
    )
    return [
        str(run["modules"]),
        str(len(diffs)),
        _ms(plain),
        _ms(hot),
        _ms(paired),
        spread,
        "-" if overhead is None else f"{overhead:+.2f} %",
        f"≤ {STARTUP_TARGET_PCT:.0f} % ({_verdict(ok)})",
    ]


def startup_section(results: dict[str, Any]) -> list[str]:
    runs = results.get("startup") or []
    if not runs:
        return []
    header = [
        "modules", "pairs", "`python main.py`", "`hotmod run main.py`",
        "difference (median of pairs)", "its quartiles", "overhead", "target",
    ]
    title = (
        "### Start-up: spawn to first observed value "
        f"({runs[0]['startup_s']:g} s of simulated heavy import, median ms)"
    )
    return [title, "", *_table(header, map(_startup_row, runs))]


def _memory_row(run: dict[str, Any]) -> list[str]:
    rss = {int(k): v / 1024 for k, v in run["rss_kib"].items()}
    last = max(rss)
    growth = rss[last] - rss[0]
    after10 = rss.get(10)
    ok = growth <= MEMORY_TARGET_MB if run["kind"] == "body" else None
    return [
        KIND_LABEL[run["kind"]],
        str(run["edits"]),
        f"{rss[0]:.1f}",
        "-" if after10 is None else f"{after10:.1f}",
        f"{rss[last]:.1f}",
        f"{growth:+.1f}",
        "-" if after10 is None else f"{rss[last] - after10:+.1f}",
        f"≤ {MEMORY_TARGET_MB:.0f} ({_verdict(ok)})" if ok is not None else "(reported)",
        ", ".join(f"{k}: {v}" for k, v in sorted(run["outcomes"].items())),
    ]


def memory_section(results: dict[str, Any]) -> list[str]:
    runs = results.get("memory") or []
    if not runs:
        return []
    header = [
        "edits of", "reloads", "RSS before", "after 10", "after all", "growth",
        "growth after the 10th", "target (MB)", "outcomes",
    ]  # fmt: skip
    return [
        "### Memory: program RSS under hotmod (MB)",
        "",
        *_table(header, map(_memory_row, runs)),
    ]


def _describe(sample: dict[str, Any]) -> str:
    bits = [f"{sample['kind']} edit"]
    if sample.get("error"):
        bits.append(f"error: {sample['error']}")
    if sample.get("stray"):
        bits.append(f"saw intermediate values {sample['stray'][:3]}")
    if sample.get("outcomes") != ["applied"]:
        bits.append(f"outcomes {sample.get('outcomes')}")
    return "; ".join(bits)


def _anomalies(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    runs = [(f"{r['mode']}, {r['modules']} modules", r) for r in results.get("latency", [])]
    if results.get("heap"):
        heap = results["heap"]
        runs.append((f"hotmod, {heap['modules']} modules, no extra objects", heap["none"]))
        runs.append((f"hotmod, {heap['modules']} modules, {heap['objects']} objects", heap["heap"]))
    for where, run in runs:
        for kind in ("body", "reexec"):
            found += [(where, s) for s in run[kind] if _is_anomalous(s, run["mode"])]
    for where, samples in _new_series(results):
        found += [(where, s) for s in samples if _is_anomalous(s, "hotmod") and not s["not_live"]]
    for mem in results.get("memory") or []:
        found += [(f"memory run, {mem['kind']} edits", s) for s in mem["anomalies"]]
    return found


def _new_series(results: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(where, samples) of the closure and big-module sessions."""
    series = []
    closures = results.get("closures") or {"runs": []}
    for run in closures["runs"]:
        where = f"closures, {run['objects']} extra objects"
        series.append((where, run[run["kind"]]))
    big = results.get("bigmodule")
    if big:
        for kind in ("big", "big-shift"):
            series.append((f"{big['lines']}-line module", big["run"].get(kind) or []))
    return series


def _not_live(results: dict[str, Any]) -> list[str]:
    """One line per session with edits that were reloaded but never seen live."""
    lines = []
    for where, samples in _new_series(results):
        unseen = [s for s in samples if s.get("not_live")]
        if unseen:
            kind = unseen[0]["kind"]
            lines.append(
                f"- {where}: {len(unseen)} of {len(samples)} {kind} edits (warm-up included) "
                f"reloaded ({_outcomes(unseen).rsplit(', not live', 1)[0]}) "
                "but never seen live by the program"
            )
    return lines


def _is_anomalous(sample: dict[str, Any], mode: str) -> bool:
    wrong_outcome = mode == "hotmod" and sample.get("outcomes") != ["applied"]
    return bool(sample.get("error") or sample.get("stray") or wrong_outcome)


def anomalies_section(results: dict[str, Any]) -> list[str]:
    found = _anomalies(results)
    not_live = _not_live(results)
    if not found and not not_live:
        what = "every reload `applied`" if results["meta"].get("hotmod_run") else "no hotmod run"
        return ["### Anomalies", "", f"None: every edit was observed; {what}."]
    lines = ["### Anomalies", "", *not_live]
    for where, sample in found[:15]:
        lines.append(f"- {where}: {_describe(sample)}")
        for event in sample.get("events", [])[:1]:
            brief = {k: v for k, v in event.items() if k != "error"}
            if "error" in event:
                err = dict(event["error"])
                err["traceback"] = (err.get("traceback") or "")[-400:]
                brief["error"] = err
            lines.append(f"  `{json.dumps(brief, sort_keys=True)}`")
    if len(found) > 15:
        lines.append(f"- … and {len(found) - 15} more (see the JSON results)")
    return lines


def machine_lines(meta: dict[str, Any]) -> list[str]:
    return [
        f"- Date: {meta['date']}",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gb']:.0f} GB RAM, "
        f"{meta['platform']}",
        f"- Python {meta['python']}; hotmod {meta['hotmod']}; watchfiles {meta['watchfiles']}",
        f"- Command: `{meta['command']}` ({meta['elapsed_s']:.0f} s)",
        f"- Settings: {meta['settings']}",
        *_load_line(meta),
    ]


def _load_line(meta: dict[str, Any]) -> list[str]:
    start, end = meta.get("load_start"), meta.get("load_end")
    if start is None or end is None:
        return []
    cores = meta.get("cores") or 1
    # A run loads the machine by about one core itself: judge the end more leniently.
    shared = start > cores / 2 or end > cores
    busy = " (other work shared the machine: expect noise)" if shared else ""
    return [f"- Load average (1 min) at start / end: {start:.2f} / {end:.2f}{busy}"]


def render(results: dict[str, Any]) -> str:
    """The generated part of ``docs/benchmarks.md``."""
    lines = ["## Results", "", *machine_lines(results["meta"]), ""]
    if not results["meta"].get("hotmod_run"):
        lines += ["**hotmod columns pending:** `hotmod run` was not available for this run.", ""]
    for section in (
        latency_section,
        scaling_section,
        heap_section,
        closures_section,
        bigmodule_section,
        startup_section,
        memory_section,
        anomalies_section,
    ):
        part = section(results)
        if part:
            lines += [*part, ""]
    return "\n".join(lines)
