"""Participants: the one way code outside the core takes part in a transaction.

A participant (the file-dependency tracker, the gate, the Flask and ASGI
adapters, later the plugin manager and config files) implements some of these
steps, called by :class:`Participants` in a fixed order for every batch:

``prepare(batch)``
    Before anything runs. May claim changed files that are not Python
    modules (``batch.claim``), ask for modules to be re-executed
    (``batch.require``), or veto the batch by raising
    :class:`~hotmod._errors.RestartRequired` (restart) or
    :class:`~hotmod._errors.ReloadError` (fail, nothing applied).
``stage(batch)``
    After the modules have been re-executed into staging modules: build the
    participant's new version *without touching live objects* (e.g. a new URL
    map from the staged modules' registrations). May fail the batch.
``commit(batch, undo)``
    Make the new version live, registering every mutation's undo with
    ``undo``. If a later participant (or the core) fails, the undo log unwinds
    everything, in reverse.
``hold(batch)``
    A context manager entered around the commit *and* any rollback of it,
    in participant order (the gate drains in-flight requests and holds new
    ones here). Entering may veto like ``stage``.
``committed(batch)``
    The batch is live and every hold was released: retire what the old
    version still runs (an old ASGI app's lifespan shutdown). Cannot fail
    the batch; errors are logged.
``interesting(path)``
    Optional: whether a changed file of a suffix the watcher does not
    follow (not ``.py``) concerns the participant, so the watcher reports
    it (templates, files read at import time). Asked for every such
    change: answer with a lookup.
``abandon(batch)``
    The batch will not be committed (failed, rolled back or escalated):
    forget what ``prepare``/``stage`` built. Always called for every
    participant that was prepared, even if an earlier ``abandon`` raised.
    When a commit fails, the undo log (every participant's undo steps
    included) is rolled back first, then ``abandon`` runs: an undo step may
    still use what the participant staged.

The loop mirrors pluggy's call loop: steps run in registration order (``order``
first, lower first), ``abandon`` runs in reverse and every one of them runs;
the first error is kept and raised once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .batch import Batch
    from .undo import UndoLog

logger = logging.getLogger(__name__)


@runtime_checkable
class Participant(Protocol):
    """Something outside the core that takes part in every transaction.

    Implement the steps you need; :class:`BaseParticipant` provides no-op
    defaults. ``hold`` and ``committed`` are optional (looked up by name).
    ``order`` places a participant in the loop (lower runs first; the core's
    own participants use 0-99, adapters 100 and up).
    """

    name: str
    order: int

    def prepare(self, batch: Batch) -> None: ...

    def stage(self, batch: Batch) -> None: ...

    def commit(self, batch: Batch, undo: UndoLog) -> None: ...

    def abandon(self, batch: Batch) -> None: ...


class BaseParticipant:
    """No-op steps: subclass and override what you need."""

    name = "participant"
    order = 100

    def prepare(self, batch: Batch) -> None:
        """Claim files, require re-executions, or veto (see the module docstring)."""

    def stage(self, batch: Batch) -> None:
        """Build the new version from the staged modules, touching nothing live."""

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        """Make the new version live; register every mutation's undo."""

    def hold(self, batch: Batch) -> contextlib.AbstractContextManager[object]:
        """Around the commit and its rollback: nothing to hold by default."""
        return contextlib.nullcontext()

    def committed(self, batch: Batch) -> None:
        """The batch is live and released: retire what the old version still runs."""

    def abandon(self, batch: Batch) -> None:
        """Forget what prepare and stage built: the batch is not committed."""


class Participants:
    """The registry and the call loop, in a fixed order."""

    def __init__(self) -> None:
        self._items: list[Participant] = []

    def __iter__(self) -> Iterator[Participant]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, participant: Participant) -> None:
        """Register ``participant`` (once); it takes part from the next batch on."""
        if any(p is participant for p in self._items):
            return
        self._items.append(participant)
        self._items.sort(key=lambda p: p.order)  # stable: registration order within an order

    def remove(self, participant: Participant) -> None:
        self._items = [p for p in self._items if p is not participant]

    def prepare(self, batch: Batch) -> None:
        for participant in list(self._items):
            batch.prepared.append(participant)
            participant.prepare(batch)

    def stage(self, batch: Batch) -> None:
        for participant in batch.prepared:
            participant.stage(batch)

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        for participant in batch.prepared:
            participant.commit(batch, undo)

    @contextlib.contextmanager
    def holding(self, batch: Batch) -> Iterator[None]:
        """Every prepared participant's ``hold``, entered in order, left in reverse."""
        with contextlib.ExitStack() as stack:
            for participant in batch.prepared:
                hold = getattr(participant, "hold", None)
                if hold is not None:
                    stack.enter_context(hold(batch))
            yield

    def committed(self, batch: Batch) -> None:
        """Every prepared participant's ``committed``; errors are logged, never raised."""
        for participant in batch.prepared:
            try:
                committed = getattr(participant, "committed", None)
                if committed is not None:
                    committed(batch)
            except Exception:
                logger.exception("hotmod: %s failed after a commit", participant.name)
        batch.prepared.clear()

    def abandon(self, batch: Batch) -> None:
        """Every prepared participant's ``abandon``, in reverse; the first error raised once."""
        first: BaseException | None = None
        for participant in reversed(batch.prepared):
            try:
                participant.abandon(batch)
            except BaseException as exc:  # every participant gets its chance
                logger.exception("hotmod: %s failed to abandon a batch", participant.name)
                if first is None:
                    first = exc
        batch.prepared.clear()
        if first is not None:
            raise first
