"""Cost follows the change: parse and compile only the statements an edit touched.

A one-function edit in a 5,000-line module should not parse, compile, dump
and scan 5,000 lines. When an edit changes only the *bodies* of top-level
``def``/``class`` statements (their headers — name, decorators, defaults,
annotations, bases — unchanged), or comments and blank lines between
statements, the module's top-level bytecode is the same but for the code
objects of those statements. So:

1. the changed lines are found by comparing the old and new text from both
   ends;
2. the top-level statements covering them are re-parsed alone (padded with
   blank lines, so every line number is the one a full compile gives) and
   compiled with the module's ``__future__`` flags;
3. the new module tree is the old one with those statements swapped, and the
   new module code object is the old one with those code constants swapped
   (``code.replace``).

When the edit added or removed lines, every later definition moved: its code
object is the old one moved (``_compat.moved_code``, equal to what a full
compile makes), and its nodes, shared with the old tree, are not rewritten —
the new tree records per statement how far its nodes moved
(:func:`statement_shifts`, :func:`statement_spans`). The module code's own
line table is then out of date (``stale_lines``): it is compiled in full
before the module body runs again.

Anything else (a top-level statement changed, a header changed, a name
defined twice) returns None and the planner compiles the whole file as
before. A syntax error in the region also returns None: the full compile
then reports it with the usual message (G1).
"""

from __future__ import annotations
import __future__

import ast
import bisect
import functools
import operator
import types
from dataclasses import dataclass
from pathlib import Path

from .. import _compat

# Flags a module's code carries from ``from __future__ import ...`` (compile() takes them).
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, n).compiler_flag for n in __future__.all_feature_names)
)


@dataclass(frozen=True)
class QuickChange:
    """The new tree and code of a module, built from its changed statements only."""

    tree: ast.Module
    code: types.CodeType
    statements: tuple[str, ...]  # names of the top-level statements re-parsed (empty: comments)
    # Names of the module's code constants that only moved to other lines
    # (every definition after an edit that added or removed lines).
    moved: tuple[str, ...] = ()
    # The module's own line table is the old one: statements moved, so the
    # module code must be compiled in full before it runs again (see stage).
    stale_lines: bool = False

    @property
    def code_names(self) -> tuple[str, ...]:
        """Names of the code constants that differ from the old module code's."""
        return self.statements + self.moved


def quick_change(
    old_source: str,
    old_tree: ast.Module,
    old_code: types.CodeType,
    new_source: str,
    path: Path,
) -> QuickChange | None:
    """Build the new module from the changed statements, or None (compile it all)."""
    if old_source == new_source:
        return None
    old_lines = source_lines(old_tree, old_source)
    new_lines, same, tail = _split_change(old_source, old_lines, new_source)
    delta = len(new_lines) - len(old_lines)
    first_line, last_line = same + 1, len(old_lines) - tail  # old lines changed (may be none)
    spans = statement_spans(old_tree)
    body = old_tree.body
    # Statements the change overlaps (or, for lines only inserted, falls inside).
    lo = bisect.bisect_left([end for _, end in spans], first_line)
    hi = bisect.bisect_right([start for start, _ in spans], last_line) - 1
    if lo > hi:  # comments or blank lines between statements
        if not _blank_or_comment(old_lines[first_line - 1 : last_line]) or not _blank_or_comment(
            new_lines[first_line - 1 : last_line + delta]
        ):
            return None
        return _moved_after(old_tree, old_code, lo, delta, last_line, QuickChange(
            old_tree, old_code, (), stale_lines=delta != 0,
        ), set(), (new_source, new_lines))
    old_part = body[lo : hi + 1]
    definitions = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    if not all(isinstance(s, definitions) for s in old_part):
        return None
    start, end = min(spans[lo][0], first_line), max(spans[hi][1], last_line)
    inside = {line for s, e in spans[lo : hi + 1] for line in range(s, e + 1)}
    if not _blank_or_comment(
        [old_lines[line - 1] for line in range(start, end + 1) if line not in inside]
    ):
        return None
    shifts = statement_shifts(old_tree)
    padded = "\n" * (start - 1) + "\n".join(new_lines[start - 1 : end + delta]) + "\n"
    try:
        new_part = ast.parse(padded, str(path)).body
        if len(new_part) != len(old_part):
            return None
        pairs = list(zip(old_part, new_part, strict=True))
        # Same headers in the same places (the common case) or same headers
        # elsewhere (then the module's line table is out of date).
        unmoved = [
            not shifts[lo + i] and _header(a, positions=True) == _header(b, positions=True)
            for i, (a, b) in enumerate(pairs)
        ]
        if any(not kept and _header(a) != _header(b) for kept, (a, b) in zip(
            unmoved, pairs, strict=True
        )):
            return None
        part_code = compile(
            ast.Module(body=new_part, type_ignores=[]), str(path), "exec",
            flags=old_code.co_flags & _FUTURE_FLAGS, dont_inherit=True,
        )
    except (SyntaxError, ValueError):
        return None  # the full compile reports it, located
    names = [s.name for s in old_part]  # type: ignore[attr-defined]
    replacements = {
        c.co_name: c for c in part_code.co_consts if isinstance(c, types.CodeType)
    }
    counts: dict[str, int] = {}
    for const in old_code.co_consts:
        if isinstance(const, types.CodeType):
            counts[const.co_name] = counts.get(const.co_name, 0) + 1
    if any(counts.get(n) != 1 for n in names) or set(replacements) != set(names):
        return None  # a name defined twice at the top level: compile it all
    consts = list(old_code.co_consts)
    replaced: set[int] = set()
    for i, const in enumerate(consts):
        if not isinstance(const, types.CodeType):
            continue
        if const.co_name in replacements:
            consts[i] = replacements[const.co_name]
            replaced.add(i)
        elif start <= const.co_firstlineno <= end:
            return None  # code made by a re-parsed header (a lambda in a decorator)
    tree = ast.Module(body=[*body[:lo], *new_part, *body[hi + 1 :]], type_ignores=[])
    setattr(tree, _LINES, (new_source, new_lines))
    _set_positions(
        tree,
        [*shifts[:lo], *([0] * len(new_part)), *shifts[hi + 1 :]],
        [*spans[:lo], *(_span(s, 0) for s in new_part), *spans[hi + 1 :]],
    )
    moved_header = not all(unmoved)
    quick = QuickChange(
        tree, old_code.replace(co_consts=tuple(consts)), tuple(names),
        stale_lines=delta != 0 or moved_header,
    )
    return _moved_after(
        tree, quick.code, lo + len(new_part), delta, end, quick, replaced, (new_source, new_lines)
    )


def _moved_after(
    tree: ast.Module,
    code: types.CodeType,
    index: int,
    delta: int,
    after: int,
    change: QuickChange,
    replaced: set[int],
    text: tuple[str, list[str]],
) -> QuickChange | None:
    """``change`` with the statements from ``index`` on (old lines past ``after``) moved."""
    if delta == 0:
        return change
    if tree is change.tree:  # comments only: a tree of its own, with new positions
        tree = ast.Module(body=list(tree.body), type_ignores=[])
        setattr(tree, _LINES, text)
        _set_positions(tree, list(statement_shifts(change.tree)), list(statement_spans(
            change.tree
        )))
    shifts, spans = statement_shifts(tree), statement_spans(tree)
    for i in range(index, len(tree.body)):
        shifts[i] += delta
        spans[i] = (spans[i][0] + delta, spans[i][1] + delta)
    consts = list(code.co_consts)
    moved: list[str] = []
    for i, const in enumerate(consts):
        if isinstance(const, types.CodeType) and i not in replaced and (
            const.co_firstlineno > after
        ):
            moved_const = _compat.moved_code(const, delta)
            if moved_const is None:
                return None
            consts[i] = moved_const
            moved.append(const.co_name)
    return QuickChange(
        tree, code.replace(co_consts=tuple(consts)), change.statements,
        tuple(dict.fromkeys(moved)), stale_lines=True,
    )


# -- where the statements of a tree are -----------------------------------------------------
# A quick change shares the untouched statements' nodes between the old and
# the new tree. Those after an edit that added or removed lines sit elsewhere
# in the new text than their nodes say: each tree records, per top-level
# statement, how many lines to add to its nodes' positions, and the true
# first and last line of each statement.
_SHIFTS = "_hotmod_shifts"
_SPANS = "_hotmod_spans"


def statement_shifts(tree: ast.Module) -> list[int]:
    """Per top-level statement: lines to add to its nodes' recorded positions."""
    found: list[int] | None = getattr(tree, _SHIFTS, None)
    if found is None:
        found = [0] * len(tree.body)
        setattr(tree, _SHIFTS, found)
    return found


def statement_spans(tree: ast.Module) -> list[tuple[int, int]]:
    """Per top-level statement: its true first line (first decorator) and last line."""
    found: list[tuple[int, int]] | None = getattr(tree, _SPANS, None)
    if found is None:
        shifts = statement_shifts(tree)
        found = [_span(stmt, shift) for stmt, shift in zip(tree.body, shifts, strict=True)]
        setattr(tree, _SPANS, found)
    return found


_LINES = "_hotmod_lines"


def source_lines(tree: ast.Module, source: str) -> list[str]:
    """``source`` split into lines, kept with its tree: the next edit's old text."""
    cached: tuple[str, list[str]] | None = getattr(tree, _LINES, None)
    if cached is not None and cached[0] is source:
        return cached[1]
    lines = source.split("\n")  # decoded sources have universal newlines
    setattr(tree, _LINES, (source, lines))
    return lines


def _split_change(old: str, old_lines: list[str], new: str) -> tuple[list[str], int, int]:
    """``new`` in lines, and how many leading and trailing lines it shares with ``old``.

    Found on the characters (block by block, at C speed), then only the
    changed middle of ``new`` is split: the shared lines are ``old``'s.
    The shared ends may be a line shorter than they could be (still a valid
    alignment: the text outside the middle is the same).
    """
    limit = min(len(old), len(new))
    prefix = _common_prefix(old, new, limit)
    line_start = old.rfind("\n", 0, prefix) + 1  # start of the first line that differs
    suffix = _common_suffix(old, new, limit - line_start)
    same = old.count("\n", 0, line_start)
    # Trailing lines wholly in the shared end: every line of it when it starts
    # a line in both texts, else those after its first newline.
    end_new, end_old = len(new) - suffix, len(old) - suffix
    shared_end = new[end_new:]
    if _line_starts(new, end_new) and _line_starts(old, end_old):
        tail, stop = shared_end.count("\n") + 1, end_new - 1
    else:
        first_newline = shared_end.find("\n")
        tail = 0 if first_newline < 0 else shared_end.count("\n")
        stop = len(new) if first_newline < 0 else end_new + first_newline
    middle = new[line_start:stop].split("\n") if stop >= line_start else []
    return [*old_lines[:same], *middle, *old_lines[len(old_lines) - tail :]], same, tail


def _line_starts(text: str, offset: int) -> bool:
    return offset == 0 or text[offset - 1] == "\n"


_BLOCK = 4096


def _common_prefix(a: str, b: str, limit: int) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (at most ``limit``)."""
    low = 0
    while low < limit:
        high = min(low + _BLOCK, limit)
        if not a.startswith(b[low:high], low):
            break
        low = high
    high = min(low + _BLOCK, limit)
    while low < high:  # the first differing character is in [low, high)
        middle = (low + high) // 2
        if a.startswith(b[low : middle + 1], low):
            low = middle + 1
        else:
            high = middle
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the longest common suffix of ``a`` and ``b`` (at most ``limit``)."""
    la, lb = len(a), len(b)
    low = 0
    while low < limit:
        high = min(low + _BLOCK, limit)
        if not a.endswith(b[lb - high : lb - low], 0, la - low):
            break
        low = high
    high = min(low + _BLOCK, limit)
    while low < high:
        middle = (low + high) // 2
        if a.endswith(b[lb - middle - 1 : lb - low], 0, la - low):
            low = middle + 1
        else:
            high = middle
    return low


def _set_positions(
    tree: ast.Module, shifts: list[int], spans: list[tuple[int, int]]
) -> None:
    setattr(tree, _SHIFTS, shifts)
    setattr(tree, _SPANS, spans)


def _span(stmt: ast.stmt, shift: int) -> tuple[int, int]:
    return _start(stmt) + shift, (stmt.end_lineno or stmt.lineno) + shift


def _start(stmt: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def _blank_or_comment(lines: list[str]) -> bool:
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return False
    return True


def _header(stmt: ast.stmt, *, positions: bool = False) -> str:
    """The part of a def/class statement that runs at the module's top level.

    With ``positions``, where each of its parts is too (the module code's
    line table records them).
    """
    if isinstance(stmt, ast.ClassDef):
        parts: list[object] = [
            "class", stmt.name, stmt.bases, stmt.keywords, stmt.decorator_list,
            getattr(stmt, "type_params", None),
        ]
    elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
        parts = [
            type(stmt).__name__, stmt.name, stmt.args, stmt.returns, stmt.decorator_list,
            getattr(stmt, "type_params", None),
        ]
    else:
        return ast.dump(stmt, include_attributes=positions)
    if positions:
        parts += [stmt.lineno, stmt.col_offset]
    return repr([_dump(p, positions) for p in parts])


def _dump(part: object, positions: bool) -> object:
    if isinstance(part, ast.AST):
        return ast.dump(part, include_attributes=positions)
    if isinstance(part, list):
        return [_dump(p, positions) for p in part]
    return part
