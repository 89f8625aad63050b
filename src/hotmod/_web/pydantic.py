"""Pydantic models re-executed by a batch: their live classes rebuilt at commit.

A Pydantic model derives its validator and serializer from its fields when
the class is created, and a model's core schema *embeds* the schemas of the
models its fields use. When a batch re-executes a module, the staged model
classes are merged into the live ones (identity kept, G3), but what the
staged class derived — field infos, decorators, schema, validator,
serializer — still points at the *staged* classes: validating would make
instances of the staged class, and another model's schema would keep the
old version of a model it embeds.

:class:`LiveModels` fixes that at commit, in place and undoably:

1. field annotations (``list[Tag]``, ``Tag | None``, ``Annotated[...]``),
   default factories and validator/serializer functions are pointed at the
   live objects (:func:`live_type`);
2. the cached core schemas of every class being rebuilt are dropped first,
   so that no rebuilt schema embeds a stale one (models that refer to each
   other included);
3. each class is rebuilt with Pydantic's own ``model_rebuild(force=True)``,
   the models it uses first.

Other models that only *use* a re-executed model (a field typed with it, a
subclass) are re-executed themselves: the ASGI adapter asks for that while
preparing (:func:`dependents`), so a fresh field collection runs for them.
Models made while staging by framework code (FastAPI's combined body
models) are found through the annotations that use them and rebuilt too.

Classes are recognised by their MRO's module and name (``pydantic.main.BaseModel``);
Pydantic is never imported here.
"""

from __future__ import annotations

import functools
import logging
import operator
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._engine.batch import Batch
    from .._engine.undo import UndoLog

logger = logging.getLogger(__name__)

Live = Callable[[Any], Any]
_MISSING: Any = object()
# The DecoratorInfos collections that hold validators and serializers.
_DECORATOR_KINDS = (
    "validators", "field_validators", "root_validators", "field_serializers",
    "model_serializers", "model_validators", "computed_fields",
)


def is_model(obj: object) -> bool:
    """A Pydantic (v2) model class, recognised by its MRO (Pydantic is not imported)."""
    if not isinstance(obj, type):
        return False
    return any(
        c.__name__ == "BaseModel" and c.__module__ == "pydantic.main" for c in obj.__mro__[1:]
    )


def model_fields(cls: type) -> dict[str, Any]:
    """The class's own field infos (``__pydantic_fields__``; ``model_fields`` before 2.10)."""
    fields = cls.__dict__.get("__pydantic_fields__")
    if not isinstance(fields, dict):
        fields = cls.__dict__.get("model_fields")
    return fields if isinstance(fields, dict) else {}


def type_leaves(tp: Any) -> Iterator[Any]:
    """The classes and values a type expression is built from (``list[A | B]`` -> A, B...)."""
    stack = [tp]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        args = getattr(item, "__args__", None)
        if isinstance(args, tuple) and not isinstance(item, type):
            stack.extend(args)
            origin = getattr(item, "__origin__", None)
            if origin is not None:
                stack.append(origin)
        else:
            yield item


def live_type(tp: Any, live: Live, on_model: Callable[[type], object]) -> Any:
    """``tp`` with staged classes (and enum members) replaced by their live counterparts.

    Generic aliases are rebuilt around the live arguments; ``on_model`` is
    called for every Pydantic model the expression names (after mapping).
    Anything not recognised is returned as it is.
    """
    mapped = live(tp)
    if mapped is not tp:
        if is_model(mapped):
            on_model(mapped)
        return mapped
    if isinstance(tp, type):
        if is_model(tp):
            on_model(tp)
        return tp
    args = getattr(tp, "__args__", None)
    if not isinstance(args, tuple) or not args:
        return tp
    new_args = tuple(live_type(a, live, on_model) for a in args)
    if all(a is b for a, b in zip(new_args, args, strict=True)):
        return tp
    try:
        if isinstance(tp, types.GenericAlias):
            origin: Any = tp.__origin__
            return types.GenericAlias(origin, new_args)
        if isinstance(tp, types.UnionType):
            return functools.reduce(operator.or_, new_args)
        copy_with = getattr(tp, "copy_with", None)  # typing's aliases: Optional, Annotated...
        if copy_with is not None:
            return copy_with(new_args)
    except TypeError:  # an alias that cannot be rebuilt: leave it, it is reported below
        logger.debug("hotmod: cannot rebuild the type %r around live classes", tp)
    return tp


def live_callable(func: Any, live: Live) -> Any:
    """A function or bound method (a validator) pointed at the live function and class."""
    if isinstance(func, types.MethodType):
        inner, owner = live(func.__func__), live(func.__self__)
        if inner is func.__func__ and owner is func.__self__:
            return func
        return types.MethodType(inner, owner)
    return live(func)


class LiveModels:
    """Rebuilds the live model classes a batch touched (see the module docstring).

    One per batch commit: ``live`` is the batch's remapping, ``undo`` its log.
    """

    def __init__(self, live: Live, undo: UndoLog) -> None:
        self.live = live
        self.undo = undo
        self._state: dict[type, bool] = {}  # class -> needs a rebuild (decided)
        self._order: list[type] = []  # to rebuild, the models they use first
        self.rebuilt: list[type] = []

    def add(self, cls: type, *, force: bool = False) -> bool:
        """Point ``cls``'s fields at live classes; True if it must be rebuilt.

        ``force``: the class was merged from a staged class (its schema is the
        staged one's). Classes that use a rebuilt model are rebuilt as well.
        """
        known = self._state.get(cls)
        if known is not None:
            return known
        self._state[cls] = force  # provisional, for models that refer back to it
        used: list[type] = []
        needs = force
        for info in model_fields(cls).values():
            annotation = getattr(info, "annotation", None)
            new = live_type(annotation, self.live, used.append)
            if new is not annotation:
                self.undo.setattr(info, "annotation", new)
                needs = True
            factory = getattr(info, "default_factory", None)
            if factory is not None and (mapped := self.live(factory)) is not factory:
                self.undo.setattr(info, "default_factory", mapped)
        for model in used:
            needs = self.add(model) or needs
        needs = self._relink_decorators(cls) or needs
        self._state[cls] = needs
        if needs:
            self._order.append(cls)
        return needs

    def _close(self) -> None:
        """Models that refer back to one found wanting after they were looked at
        (a cycle) are rebuilt too."""
        grew = True
        while grew:
            wanting = {c for c, needs in self._state.items() if needs}
            grew = False
            for cls, needs in list(self._state.items()):
                if not needs and _uses(cls, wanting):
                    self._state[cls] = True
                    self._order.append(cls)
                    grew = True

    def _relink_decorators(self, cls: type) -> bool:
        infos = cls.__dict__.get("__pydantic_decorators__")
        changed = False
        for kind in _DECORATOR_KINDS:
            decorators = getattr(infos, kind, None)
            if not isinstance(decorators, dict):
                continue
            for decorator in decorators.values():
                func = getattr(decorator, "func", None)
                new = live_callable(func, self.live)
                if new is not func:
                    self.undo.setattr(decorator, "func", new)
                    changed = True
        return changed

    def rebuild(self, namespaces: dict[str, dict[str, Any]]) -> None:
        """Rebuild every class :meth:`add` found wanting, with Pydantic's ``model_rebuild``.

        ``namespaces`` maps a module name to the names its live module will
        have (forward references in annotations resolve there). A rebuild
        that fails raises (the batch rolls back); an annotation naming
        something not defined yet leaves the model incomplete, as Pydantic does
        when the class is made.
        """
        self._close()
        order = [c for c in self._order if c not in self.rebuilt]
        if not order:
            return
        before = {cls: dict(cls.__dict__) for cls in order}
        for cls in order:
            self.undo.on_rollback(functools.partial(_restore_class, cls, before[cls]))
        # Dropped first: a rebuilt schema must not embed another's stale one.
        for cls in order:
            if "__pydantic_core_schema__" in cls.__dict__:
                type.__delattr__(cls, "__pydantic_core_schema__")
        for cls in order:
            namespace = dict(namespaces.get(cls.__module__, {}))
            module = sys.modules.get(cls.__module__)
            if module is not None and not namespace:
                namespace = dict(module.__dict__)
            rebuild: Any = cls.model_rebuild  # type: ignore[attr-defined]
            # As at class creation, a name not defined yet leaves the model incomplete.
            rebuild(force=True, raise_errors=False, _types_namespace=namespace)
            self.rebuilt.append(cls)


def _restore_class(cls: type, state: dict[str, Any]) -> None:
    """Put back the class attributes a rebuild changed (added, replaced or dropped)."""
    now = dict(cls.__dict__)
    for name in now.keys() - state.keys():
        if name not in ("__dict__", "__weakref__"):
            type.__delattr__(cls, name)
    for name, value in state.items():
        if name in ("__dict__", "__weakref__"):
            continue
        if now.get(name, _MISSING) is not value:
            type.__setattr__(cls, name, value)


def staged_models(batch: Batch) -> Iterator[tuple[type, Any]]:
    """(staged, live) for every model class defined by a module this batch re-executed."""
    modules = {**batch.staged.new, **batch.staged.modules}
    for name, module in modules.items():
        for value in list(module.__dict__.values()):
            if is_model(value) and value.__module__ == name:
                yield value, batch.live(value)


def future_namespaces(batch: Batch) -> dict[str, dict[str, Any]]:
    """The classes each re-executed module will bind, live (forward references resolve there)."""
    modules = {**batch.staged.new, **batch.staged.modules}
    found: dict[str, dict[str, Any]] = {}
    for name, module in modules.items():
        live = sys.modules.get(name)
        namespace = dict(live.__dict__) if live is not None else {}
        for key, value in module.__dict__.items():
            if isinstance(value, type):
                namespace[key] = batch.live(value)
        found[name] = namespace
    return found


def dependents(
    affected: set[type], modules: Iterable[types.ModuleType]
) -> dict[str, set[type]]:
    """Models in ``modules`` that use an ``affected`` model (as a base or in a field).

    Found to a fixed point: a model using a dependent is a dependent. Maps the
    module name to its dependent classes. Reads live classes only.
    """
    candidates: list[tuple[str, type]] = []
    for module in modules:
        for value in list(module.__dict__.values()):
            if is_model(value) and value.__module__ == module.__name__ and value not in affected:
                candidates.append((module.__name__, value))
    found: dict[str, set[type]] = {}
    grew = True
    while grew:
        grew = False
        for name, cls in candidates:
            if cls in affected:
                continue
            if _uses(cls, affected):
                affected.add(cls)
                found.setdefault(name, set()).add(cls)
                grew = True
    return found


def _uses(cls: type, models: set[type]) -> bool:
    if any(base in models for base in cls.__mro__[1:]):
        return True
    for info in model_fields(cls).values():
        for leaf in type_leaves(getattr(info, "annotation", None)):
            if isinstance(leaf, type) and leaf in models:
                return True
    return False

