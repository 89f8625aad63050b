"""hotmod demo: edit a running program and watch its output change.

Start it from the repository root with ``make demo-script`` (or
``.venv/bin/hotmod run examples/demo/main.py``). It prints one line a second.
While it runs, open examples/demo/greeting.py, make one of these edits, save:

* change the text in ``greet()`` or ``Greeter.line()``: the next line uses it, and
  the Greeter made at start-up (below) runs the new method: patched in place;
* change ``PUNCTUATION``: greeting.py runs again top to bottom, yet the counter
  carries on, because ``hotmod.keep`` hands back the same counter;
* type a syntax error, or ``1 / 0`` at the top level: the reload fails, hotmod
  prints where, and the old code keeps running. Fix it and save: it applies.

Edit this file and the outcome differs: ``main()`` is patched, but it is already
inside its loop, and a running call finishes on the code it started with; an edit
to the top level (a new constant, an import) restarts the program, since hotmod
cannot re-run ``__main__`` in place, and the counter starts over. Ctrl-C stops it.

Without hotmod (``python examples/demo/main.py``) it runs the same, minus the
reloading: the hotmod calls in greeting.py do nothing special.
"""

from __future__ import annotations

import sys
import time

import greeting


def main() -> int:
    greeter = greeting.Greeter("world")
    try:
        while True:
            print(greeter.line(), flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:  # Ctrl-C is how you stop the demo, not an error
        print("\nbye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
