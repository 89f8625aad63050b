"""The half of the demo you edit while it runs (main.py says how).

Everything here is fair game: change a string, a method, the constant, add a
method. main.py only looks names up in this module when it calls them
(``greeting.Greeter``), so its own code never has to run again.
"""

from __future__ import annotations

import itertools

import hotmod

# Made once, kept when this module is re-executed (e.g. after you change PUNCTUATION),
# so the count keeps going instead of starting again at 1.
ticks = hotmod.keep("ticks", lambda: itertools.count(1))

PUNCTUATION = "!"


def greet(name: str) -> str:
    """Edit this text: the next line printed uses it; nothing re-executes."""
    return f"Hello, {name}{PUNCTUATION}"


class Greeter:
    """main.py makes one Greeter at start-up and keeps it: edits reach it anyway."""

    def __init__(self, name: str) -> None:
        self.name = name

    def line(self) -> str:
        """Edit this method: the existing instance runs the new code."""
        return f"[{next(ticks):>3}] {greet(self.name)}"
