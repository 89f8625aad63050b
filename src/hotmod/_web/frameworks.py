"""Which framework adapter an app gets, and wiring it into a reloader.

``attach(reloader, slot)`` registers what serving ``slot`` needs: the
:class:`~hotmod._web.slot.TargetParticipant` with the app's
:class:`~hotmod._web.slot.Framework`, and the framework's own participants
(templates, say). Frameworks are recognised by their classes' module names,
never by importing them: an app that does not use Flask never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .slot import Framework, PlainFramework, TargetParticipant

if TYPE_CHECKING:
    from .._engine.reloader import Reloader
    from .slot import AppSlot


def framework_for(app: Any) -> Framework:
    """The adapter for ``app``'s framework (plain swapping if none is known)."""
    for cls in type(app).__mro__:
        root = cls.__module__.partition(".")[0]
        if root == "flask":
            from .flaskapp import FlaskFramework

            return FlaskFramework(app)
        elif root in ("starlette", "fastapi"):
            from .asgiapp import AsgiFramework

            return AsgiFramework()
    return PlainFramework()


def attach(reloader: Reloader, slot: AppSlot) -> TargetParticipant:
    """Let ``reloader``'s batches rebuild and swap the app ``slot`` serves."""
    framework = framework_for(slot.app)
    participant = TargetParticipant(slot, framework)
    reloader.add_participant(participant)
    for extra in getattr(framework, "participants", lambda _slot: [])(slot):
        reloader.add_participant(extra)
    return participant
