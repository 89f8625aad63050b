"""Reconcile: fold re-executed modules into the live ones, identities kept.

After a module ran again into a staging module, :class:`Reconciler` maps every
staged function and class to its live counterpart (``analyze``), telling the
stager which names now mean something else (rebound) or behave differently
(mutated). ``commit`` then patches the live functions and classes from the
staged ones and rebinds the live module's names, every mutation through the
batch's :class:`~hotmod._engine.undo.UndoLog`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import operator
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from .classpatch import FieldDefault
from .patch import LRU_WRAPPER
from .sameness import (
    enum_signature,
    equal,
    is_enum,
    is_layout_descriptor,
    is_submodule,
    same_descriptor,
    same_function,
)
from .undo import UndoLog

logger = logging.getLogger(__name__)

# Module attributes owned by the import system: the live module keeps its own.
IMPORT_DUNDERS = frozenset(
    {"__name__", "__file__", "__cached__", "__loader__", "__spec__", "__package__",
     "__path__", "__builtins__"}
)
# Class attributes that belong to one class object and cannot move to another.
_CLASS_LOCAL = frozenset({"__dict__", "__weakref__"})
# Containers remap walks (frameworks keep registries in defaultdicts); mappings update in place.
_MAPPINGS = (dict, collections.defaultdict, collections.OrderedDict)
_CONTAINERS = (list, tuple, set, frozenset, *_MAPPINGS)
# Container elements walked per batch when remapping; beyond it values are left as made.
_REMAP_BUDGET = 200_000


@dataclass
class ModuleDelta:
    """How a re-executed module's names relate to the live ones."""

    rebound: set[str] = field(default_factory=set)  # now a different object
    mutated: set[str] = field(default_factory=set)  # same object, new behaviour
    notes: list[str] = field(default_factory=list)


class Reconciler:
    """Maps staged objects to live ones for a batch and applies the result.

    ``analyze`` runs right after a module is staged (no live state changes);
    ``commit`` then mutates live objects through the transaction.
    """

    def __init__(self) -> None:
        self.idmap: dict[int, Any] = {}
        self._keepalive: list[object] = []  # ids in idmap stay unique while the batch lives
        self._function_updates: list[tuple[types.FunctionType, types.FunctionType]] = []
        self._clones: list[types.FunctionType] = []
        self._class_updates: list[tuple[type, type]] = []
        self._adopted_classes: list[type] = []
        self._ns_map: dict[int, dict[str, Any]] = {}  # staged globals -> live globals
        self._new_modules: list[types.ModuleType] = []
        self._field_defaults: list[tuple[type, str, FieldDefault]] = []
        self.updated_functions = 0
        self._modules: list[tuple[types.ModuleType, types.ModuleType]] = []
        self._budget = _REMAP_BUDGET
        self._bindings: list[tuple[types.ModuleType, dict[str, Any]]] = []

    def _map(self, staged: object, live: object) -> None:
        self._keepalive.append(staged)
        self.idmap[id(staged)] = live

    def stand_in(
        self, view: types.ModuleType, live: types.ModuleType, attrs: Mapping[str, object]
    ) -> None:
        """Staged code saw ``view`` (with ``attrs``) for ``live``: both map back at commit."""
        self._map(view, live)
        for name, value in attrs.items():
            if name in live.__dict__:
                self._map(value, live.__dict__[name])

    def map_back(self, staged: object, live: object) -> None:
        """Wherever staged code put ``staged``, the live program gets ``live``."""
        self._map(staged, live)

    # -- analysis ---------------------------------------------------------------------
    def analyze(self, staged: types.ModuleType, live: types.ModuleType) -> ModuleDelta:
        """Map the staged module's objects onto the live ones; report what changed."""
        delta = ModuleDelta()
        self._map(staged, live)
        self._modules.append((staged, live))
        new_ns, old_ns = staged.__dict__, live.__dict__
        self._ns_map[id(new_ns)] = old_ns
        name = live.__name__
        for key, new in new_ns.items():
            if key in IMPORT_DUNDERS:
                continue
            old = old_ns.get(key, _MISSING)
            if old is not _MISSING and (new is old or self.idmap.get(id(new), _MISSING) is old):
                continue  # the same object, or a staged one that maps back onto it
            if isinstance(new, types.FunctionType):
                if self._map_function(new, old, new_ns, old_ns):
                    if not same_function(new, old):
                        delta.mutated.add(key)
                    continue
            elif isinstance(new, type) and new.__module__ == name:
                if isinstance(old, type) and self._map_class(new, old, new_ns, old_ns):
                    delta.notes.extend(self._migrate_fields(new, old))
                    if not self._same_class(new, old):
                        delta.mutated.add(key)
                    continue
                self._adopt_class(new, new_ns, old_ns)
                if isinstance(old, type):
                    delta.notes.append(
                        f"{name}.{key}: class replaced (bases, metaclass, slots or members"
                        " changed); existing instances keep the old class"
                    )
            elif old is not _MISSING and equal(old, new):
                self._map(new, old)
                continue
            delta.rebound.add(key)
        removed = {
            k for k in old_ns
            if k not in new_ns and k not in IMPORT_DUNDERS and not is_submodule(live, k)
        }
        delta.rebound |= removed
        return delta

    def _map_function(
        self, new: types.FunctionType, old: object, new_ns: dict[str, Any], old_ns: dict[str, Any]
    ) -> bool:
        """Map a staged function; True if it keeps the identity of ``old``.

        A function of the staged module patches the live function it replaces
        (or becomes a clone reading the live globals). A wrapper made by another
        module's decorator keeps the live wrapper when the wrapper code is the
        same, and the functions inside it are paired the same way.
        """
        if id(new) in self.idmap:
            return self.idmap[id(new)] is old
        if new.__globals__ is new_ns:
            if (
                isinstance(old, types.FunctionType)
                and old.__globals__ is old_ns
                and _compat.can_swap_code(old, new.__code__)
            ):
                self._map(new, old)
                self._function_updates.append((old, new))
                return True
            self._clone(new, old_ns)
            return False
        if not isinstance(old, types.FunctionType) or new.__code__ is not old.__code__:
            return False  # an imported or foreign function: left as it is
        self._map(new, old)
        self._function_updates.append((old, new))
        pairs: list[tuple[object, object]] = [
            (new.__dict__.get("__wrapped__"), old.__dict__.get("__wrapped__"))
        ]
        for new_cell, old_cell in zip(new.__closure__ or (), old.__closure__ or (), strict=False):
            pairs.append((_compat.cell_value(new_cell)[1], _compat.cell_value(old_cell)[1]))
        for inner_new, inner_old in pairs:
            if isinstance(inner_new, types.FunctionType):
                self._map_function(inner_new, inner_old, new_ns, old_ns)
        return True

    def _clone(self, new: types.FunctionType, old_ns: dict[str, Any]) -> types.FunctionType:
        clone = _compat.clone_function(new, old_ns)
        self._map(new, clone)
        self._clones.append(clone)
        return clone

    def _map_member(
        self, new: object, old: object, new_ns: dict[str, Any], old_ns: dict[str, Any], owner: str
    ) -> None:
        if isinstance(new, staticmethod | classmethod):
            self._map_member(new.__func__, getattr(old, "__func__", None), new_ns, old_ns, owner)
        elif isinstance(new, property):
            for part in ("fget", "fset", "fdel"):
                self._map_member(
                    getattr(new, part), getattr(old, part, None), new_ns, old_ns, owner
                )
        elif isinstance(new, types.FunctionType):
            self._map_function(new, old, new_ns, old_ns)
        elif (
            isinstance(new, type)
            and new.__module__ == owner
            and id(new) not in self.idmap
            and not (isinstance(old, type) and self._map_class(new, old, new_ns, old_ns))
        ):
            self._adopt_class(new, new_ns, old_ns)

    def _map_class(
        self, new: type, old: type, new_ns: dict[str, Any], old_ns: dict[str, Any]
    ) -> bool:
        """Map a staged class onto the live one if it can be patched in place."""
        if self.remap(type(new)) is not type(old):
            return False
        if tuple(self.remap(b) for b in new.__bases__) != old.__bases__:
            return False
        if new.__dict__.get("__slots__") != old.__dict__.get("__slots__"):
            return False
        if is_enum(new):
            # Members may be added; existing ones must keep their values, and
            # then keep their identity (``is`` and ``==`` with values held elsewhere).
            now = dict(enum_signature(new))
            if any(name not in now or now[name] != value for name, value in enum_signature(old)):
                return False
            old_members = old.__members__  # type: ignore[attr-defined]
            for member_name, member in new.__members__.items():  # type: ignore[attr-defined]
                if member_name in old_members:
                    self._map(member, old_members[member_name])
        self._map(new, old)
        for attr, value in new.__dict__.items():
            self._map_member(value, old.__dict__.get(attr), new_ns, old_ns, old.__module__)
        self._class_updates.append((old, new))
        return True

    def _migrate_fields(self, new: type, old: type) -> list[str]:
        """Dataclass fields added: old instances get their defaults, or are reported."""
        new_fields: dict[str, Any] = new.__dict__.get("__dataclass_fields__", {})
        old_fields: dict[str, Any] = old.__dict__.get("__dataclass_fields__", {})
        notes = []
        for field_name, spec in new_fields.items():
            if field_name in old_fields:
                continue
            if spec.default_factory is not dataclasses.MISSING:
                self._field_defaults.append(
                    (old, field_name, FieldDefault(field_name, spec.default_factory))
                )
            elif spec.default is dataclasses.MISSING:
                notes.append(
                    f"{old.__module__}.{old.__qualname__}.{field_name}: new dataclass field"
                    " without a default; existing instances do not have it"
                )
        return notes

    def _adopt_class(self, new: type, new_ns: dict[str, Any], old_ns: dict[str, Any]) -> None:
        """A class that replaces the old one: its methods must read the live globals."""
        self._map(new, new)
        for value in new.__dict__.values():
            self._map_member(value, None, new_ns, old_ns, new.__module__)
        self._adopted_classes.append(new)

    def _same_class(self, new: type, old: type) -> bool:
        if set(new.__dict__) != set(old.__dict__):
            return False
        for attr, value in new.__dict__.items():
            if attr in _CLASS_LOCAL or is_layout_descriptor(value):
                continue
            previous = old.__dict__[attr]
            if isinstance(value, types.FunctionType):
                if not same_function(value, previous):
                    return False
            elif isinstance(value, staticmethod | classmethod | property | type):
                if not same_descriptor(value, previous, same_function):
                    return False
            elif is_enum(new) and attr in new.__members__:  # type: ignore[attr-defined]
                continue
            elif not equal(previous, value):
                return False
        return True

    def adopt_new(self, module: types.ModuleType) -> None:
        """A module first imported by staged code: its values may hold staged objects."""
        self._new_modules.append(module)

    # -- remapping values ---------------------------------------------------------------
    def remap(self, obj: Any, _seen: set[int] | None = None) -> Any:
        """``obj`` with staged functions, classes and modules replaced by live ones.

        Containers made by staged code are updated in place (tuples and
        frozensets rebuilt); a budget bounds the walk over large data.
        """
        mapped = self.idmap.get(id(obj), _MISSING)
        if mapped is not _MISSING:
            return mapped
        kind = type(obj)
        if kind is types.FunctionType:
            live_ns = self._ns_map.get(id(obj.__globals__))
            if live_ns is not None:
                return self._clone(obj, live_ns)
            self._remap_wrapper(obj)
            return obj
        if kind is LRU_WRAPPER:
            return self._remap_cache(obj)
        live_class = self.idmap.get(id(kind))
        if live_class is not None and live_class is not kind:
            # Made by staged code from a class that keeps its live identity:
            # the layouts match (checked by _map_class), so it can move over.
            obj.__class__ = live_class
            return obj
        if kind not in _CONTAINERS or not self.idmap:
            return obj
        seen = _seen if _seen is not None else set()
        if id(obj) in seen or self._budget <= 0:
            return obj
        seen.add(id(obj))
        self._budget -= len(obj)
        if kind is list:
            for i, item in enumerate(obj):
                new = self.remap(item, seen)
                if new is not item:
                    obj[i] = new
            return obj
        if kind in _MAPPINGS:
            for key, item in obj.items():
                new = self.remap(item, seen)
                if new is not item:
                    obj[key] = new
            return obj
        items = [self.remap(item, seen) for item in obj]
        if all(a is b for a, b in zip(items, obj, strict=False)):
            return obj
        return kind(items)

    def _remap_wrapper(self, wrapper: types.FunctionType) -> None:
        """A decorator's wrapper (another module's function) around staged functions.

        ``@contextmanager``, ``functools.wraps`` wrappers: made while staging,
        they hold the staged function in a closure cell and ``__wrapped__``.
        Point them at the live version (a clone reading the live globals), so
        every function reachable from a live module reads the live globals.
        """
        self._map(wrapper, wrapper)  # visited: wrappers may refer to each other
        for cell in wrapper.__closure__ or ():
            filled, value = _compat.cell_value(cell)
            if filled and type(value) in (types.FunctionType, LRU_WRAPPER):
                mapped = self.remap(value)
                if mapped is not value:
                    _compat.set_cell(cell, mapped)
        inner = wrapper.__dict__.get("__wrapped__")
        if inner is not None:
            mapped = self.remap(inner)
            if mapped is not inner:
                wrapper.__dict__["__wrapped__"] = mapped

    def _remap_cache(self, cache: Any) -> Any:
        """An ``lru_cache`` made while staging: rebuilt around the live function.

        The C wrapper's function cannot be replaced; a new cache is made (it
        was new anyway, and empty).
        """
        inner = cache.__dict__.get("__wrapped__")
        mapped = self.remap(inner) if inner is not None else inner
        if mapped is inner:
            self._map(cache, cache)
            return cache
        params = cache.cache_parameters()
        rebuilt = functools.lru_cache(maxsize=params["maxsize"], typed=params["typed"])(mapped)
        rebuilt.__dict__.update({k: v for k, v in cache.__dict__.items() if k != "__wrapped__"})
        self._map(cache, rebuilt)
        return rebuilt

    # -- commit ---------------------------------------------------------------------------
    def commit(self, undo: UndoLog) -> None:
        """Patch live functions and classes; compute the live modules' new bindings.

        Everything here may fail (a class that refuses an attribute, an instance
        that cannot change class) and is undone by ``undo``. Rebinding the
        names themselves is :meth:`rebind`, which cannot fail.
        """
        for old_fn, new_fn in self._function_updates:
            self._update_function(old_fn, new_fn, undo)
        for clone in self._clones:
            for cell in clone.__closure__ or ():  # shared with the discarded staged function
                filled, value = _compat.cell_value(cell)
                if filled:
                    _compat.set_cell(cell, self.remap(value))
        for cls in self._adopted_classes:
            self._rebase(cls, undo)
            for attr, value in list(cls.__dict__.items()):
                if attr in _CLASS_LOCAL or is_layout_descriptor(value):
                    continue
                mapped = self._remap_attr(value)
                if mapped is not value:
                    setattr(cls, attr, mapped)  # a new class: nothing live to undo
        for old, new in self._class_updates:
            self._update_class(old, new, undo)
        for cls, attr, default in self._field_defaults:
            if attr not in cls.__dict__:
                undo.setattr(cls, attr, default)
        self._bindings = [
            (live, self._new_namespace(staged, live)) for staged, live in self._modules
        ]
        for module in self._new_modules:
            namespace = module.__dict__
            for key, value in list(namespace.items()):
                mapped = self.remap(value)
                if mapped is not value:
                    undo.setitem(namespace, key, mapped)
        self.updated_functions = len(self._function_updates)

    def rebind(self, undo: UndoLog) -> None:
        """Give each live module the new version's names, in the new version's order."""
        for live, namespace in self._bindings:
            before = dict(live.__dict__)
            undo.on_rollback(functools.partial(_compat.replace_dict, live.__dict__, before))
            _compat.replace_dict(live.__dict__, namespace)

    def _rebase(self, cls: type, undo: UndoLog) -> None:
        """A new class made from staged bases: point it at the live ones (G3)."""
        bases = tuple(self.remap(b) for b in cls.__bases__)
        if bases != cls.__bases__:
            cls.__bases__ = bases  # a new class: nothing live to undo

    def _update_function(
        self, old: types.FunctionType, new: types.FunctionType, undo: UndoLog
    ) -> None:
        state = _compat.function_state(old)
        cells = [(c, _compat.cell_value(c)) for c in old.__closure__ or ()]
        undo.on_rollback(lambda: _compat.restore_function(old, state, cells))
        _compat.update_function(old, new)
        if old.__defaults__:
            old.__defaults__ = tuple(self.remap(v) for v in old.__defaults__)
        fdict = {k: self.remap(v) for k, v in new.__dict__.items()}
        old.__dict__.clear()
        old.__dict__.update(fdict)
        for old_cell, new_cell in zip(old.__closure__ or (), new.__closure__ or (), strict=True):
            filled, value = _compat.cell_value(new_cell)
            if filled:
                _compat.set_cell(old_cell, self.remap(value))

    def _remap_attr(self, value: Any) -> Any:
        if isinstance(value, staticmethod | classmethod):
            inner = self.remap(value.__func__)
            return value if inner is value.__func__ else type(value)(inner)
        if isinstance(value, property):
            names = ("fget", "fset", "fdel")
            parts = [self.remap(getattr(value, p)) for p in names]
            if all(a is getattr(value, p) for a, p in zip(parts, names, strict=True)):
                return value
            maker: Any = type(value)
            return maker(*parts, value.__doc__)
        return self.remap(value)

    def _update_class(self, old: type, new: type, undo: UndoLog) -> None:
        raw = is_enum(new)  # EnumType guards member names: go around it, undoably
        for attr, value in new.__dict__.items():
            if attr in _CLASS_LOCAL or is_layout_descriptor(value):
                continue
            mapped = self._remap_attr(value)
            current = old.__dict__.get(attr, _MISSING)
            if current is mapped:
                continue
            if not raw and isinstance(
                current, staticmethod | classmethod | property
            ) and same_descriptor(current, mapped, operator.is_):
                continue  # its functions were patched in place
            undo.setattr(old, attr, mapped, raw=raw)
        for attr in [a for a in old.__dict__ if a not in new.__dict__]:
            if attr in _CLASS_LOCAL or is_layout_descriptor(old.__dict__[attr]):
                continue
            undo.delattr(old, attr, raw=raw)

    def _new_namespace(
        self, staged: types.ModuleType, live: types.ModuleType
    ) -> dict[str, Any]:
        """The live module's next namespace: the staged one's names and order, live objects.

        Import-system attributes and submodules stay as the live module has them.
        """
        old_ns = live.__dict__
        namespace: dict[str, Any] = {}
        for key, value in staged.__dict__.items():
            if key in IMPORT_DUNDERS:
                if key in old_ns:
                    namespace[key] = old_ns[key]
                continue
            namespace[key] = self.remap(value)
        for key, value in old_ns.items():
            if key not in namespace and (key in IMPORT_DUNDERS or is_submodule(live, key)):
                namespace[key] = value
        return namespace


_MISSING: Any = object()
