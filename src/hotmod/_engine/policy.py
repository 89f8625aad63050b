"""Policies: the decisions that differ between hosts of the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """Decisions that differ between hosts of the engine.

    ``strict``: escalate to a restart anything not provably equivalent to a
    fresh start (notes such as "old instances lack a new attribute").
    ``restarts``: whether this host can restart at all (a notebook kernel
    cannot: an edit that needs one fails instead, and stays pending).
    """

    strict: bool = False
    restarts: bool = True
