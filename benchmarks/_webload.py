"""Load generators of the web benchmark, each run as its own process.

    python benchmarks/_webload.py steady URL --rate 200 --duration 5
    python benchmarks/_webload.py flood URL --connections 8 --duration 4

``steady`` sends ``rate`` requests a second for ``duration`` seconds on a fixed
schedule (open loop: a slow answer does not delay the next request), each on a
fresh connection, as browsers and API clients that reconnect do, so a refused
connection shows. It prints ``ready <time_ns>`` when it starts, then one JSON
line: every request's start and end (``time.time_ns()``), and its outcome, the
body (status 200) or ``fail:<why>`` (refused, reset, timeout, any other status).

``flood`` is the fallback throughput meter for machines without ``wrk``:
``connections`` threads, each sending requests back to back on one keep-alive
connection; it prints one JSON line with the count of successful responses
and the seconds measured. Python's client costs more CPU per request than
``wrk``, so its numbers are lower; both variants of a comparison use it alike.

Both are bounded in time and in count (``steady``: ``rate * duration``
requests; ``flood``: the duration).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

# Requests still waiting for an answer after this long count as failed.
TIMEOUT_S = 10.0


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"


def fetch(host: str, port: int, path: str, *, timeout: float = TIMEOUT_S) -> str:
    """One GET on a fresh connection: the body, or ``fail:<why>``."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
    except ConnectionRefusedError:
        return "fail:refused"
    except ConnectionResetError:
        return "fail:reset"
    except TimeoutError:
        return "fail:timeout"
    except (OSError, http.client.HTTPException) as exc:
        return f"fail:{type(exc).__name__}"
    finally:
        conn.close()
    if response.status != 200:
        return f"fail:status {response.status}"
    return body


def steady(url: str, *, rate: float, duration: float) -> list[tuple[int, int, str]]:
    """Send the schedule; return (start_ns, end_ns, outcome) for every request."""
    host, port, path = _target(url)
    count = int(rate * duration)
    records: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def one() -> None:
        start = time.time_ns()
        outcome = fetch(host, port, path)
        with lock:
            records.append((start, time.time_ns(), outcome))

    print(f"ready {time.time_ns()}", flush=True)
    began = time.perf_counter()
    # Enough workers that requests held up by a restart never delay the schedule.
    with ThreadPoolExecutor(max_workers=int(rate * TIMEOUT_S / 4) + 8) as pool:
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one)
    return sorted(records)


def flood(url: str, *, connections: int, duration: float) -> tuple[int, float]:
    """Back-to-back keep-alive requests from ``connections`` threads: (answers, seconds)."""
    host, port, path = _target(url)
    stop_at = time.perf_counter() + duration
    counts = [0] * connections

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        while time.perf_counter() < stop_at:
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
                continue
            if response.status == 200:
                counts[slot] += 1
        conn.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + TIMEOUT_S + 5)
    return sum(counts), time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/_webload.py")
    sub = parser.add_subparsers(dest="mode", required=True)
    steady_p = sub.add_parser("steady")
    steady_p.add_argument("url")
    steady_p.add_argument("--rate", type=float, default=200.0)
    steady_p.add_argument("--duration", type=float, default=5.0)
    flood_p = sub.add_parser("flood")
    flood_p.add_argument("url")
    flood_p.add_argument("--connections", type=int, default=8)
    flood_p.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args(argv)
    if args.mode == "steady":
        records = steady(args.url, rate=args.rate, duration=args.duration)
        print(json.dumps({"records": records}), flush=True)
    else:
        answers, seconds = flood(args.url, connections=args.connections, duration=args.duration)
        print(json.dumps({"answers": answers, "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
