"""What tracking files read at import time costs each ``open`` (and other audit events).

Each case runs in a fresh interpreter, so "no hook" really means no audit hook
was ever added. Prints nanoseconds per operation (best of several repeats)::

    .venv/bin/python benchmarks/filedeps_cost.py

Cases: ``baseline`` (hotmod imported, no Reloader ever installed),
``active`` (a Reloader installed over the folder; the program at run time:
no module is importing), ``inactive`` (installed, then uninstalled: the hook
stays and returns at once), ``active+deps`` (active, and one file is a
dependency: writes are checked against it). Operations: open/close of a file
for reading, for writing, and ``sys._getframe()`` (audited: the cost of the
hook on events other than ``open``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, os, sys, timeit
    from pathlib import Path

    case, folder = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, str(folder))
    data = folder / "data.txt"
    out = folder / "out.log"
    data.write_text("x")
    reloader = None
    if case != "baseline":
        from hotmod import Reloader

        reloader = Reloader([folder], packages=())
        reloader.install()
        if case in ("active+deps", "import-time"):
            import reads_config  # noqa: F401  (reads config.json at import time)
        if case == "inactive":
            reloader.uninstall()

    RDONLY, APPEND = os.O_RDONLY | os.O_CLOEXEC, os.O_WRONLY | os.O_APPEND | os.O_CREAT
    stdlib = os.__file__.replace("os.py", "json/decoder.py")
    under_root = str(folder / "config.json")
    if case == "import-time":  # as if a project module's top level were running
        reloader.graph._executing.append("reads_config")

    ops = {
        # the event alone, as open() raises it (no system call: the hook's own cost)
        "open event, read": lambda: sys.audit("open", str(data), "r", RDONLY),
        "open event, write": lambda: sys.audit("open", str(out), "a", APPEND),
        "other event": lambda: sys.audit("time.sleep", 0),
        # real calls, system calls included
        "open()+close() read": lambda: open(data, "rb").close(),
        "open()+close() write": lambda: open(out, "ab").close(),
    }
    if case == "import-time":
        ops = {
            "read outside roots": lambda: sys.audit("open", stdlib, "r", RDONLY),
            "read a .pyc": lambda: sys.audit("open", stdlib + "c", "r", RDONLY),
            "read under a root": lambda: sys.audit("open", under_root, "r", RDONLY),
        }
    results = {}
    for name, fn in ops.items():
        number = 2000 if "()" in name else 50000
        best = min(timeit.repeat(fn, number=number, repeat=15))
        results[name] = best / number * 1e9
    print(json.dumps(results))
    """
)


def main() -> int:
    cases = ("baseline", "inactive", "active", "active+deps", "import-time")
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text("{}")
        (folder / "reads_config.py").write_text(
            "import json, pathlib\n"
            "CONFIG = json.loads((pathlib.Path(__file__).parent / 'config.json').read_text())\n"
        )
        for case in cases:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, case, str(folder)],
                capture_output=True, text=True, timeout=120, check=True,
            )
            rows[case] = json.loads(out.stdout)
    base = rows["baseline"]
    width = max(len(op) for row in rows.values() for op in row)
    for case, row in rows.items():
        print(f"{case}:")
        for op, ns in row.items():
            delta = f" ({ns - base[op]:+.0f} vs baseline)" if op in base else ""
            print(f"  {op:<{width}} {ns:8.0f} ns{delta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
