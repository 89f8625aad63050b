"""Cost follows the change: parse and compile only the statements an edit touched.

A one-function edit in a 5,000-line module should not parse, compile, dump
and scan 5,000 lines. When an edit keeps the file's line count and changes
only the *bodies* of top-level ``def``/``class`` statements (their headers —
name, decorators, defaults, annotations, bases — unchanged), the module's
top-level bytecode is the same but for the code objects of those
statements. So:

1. the changed lines are found by comparing the old and new text;
2. the top-level statements covering them are re-parsed alone (padded with
   blank lines, so every line number is the one a full compile gives) and
   compiled with the module's ``__future__`` flags;
3. the new module tree is the old one with those statements swapped, and the
   new module code object is the old one with those code constants swapped
   (``code.replace``) — equal to what a full compile makes.

Anything else (a top-level statement changed, lines added or removed, a
header changed, a name defined twice) returns None and the planner compiles
the whole file as before. A syntax error in the region also returns None:
the full compile then reports it with the usual message (G1).
"""

from __future__ import annotations
import __future__

import ast
import functools
import operator
import types
from dataclasses import dataclass
from pathlib import Path

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


def quick_change(
    old_source: str,
    old_tree: ast.Module,
    old_code: types.CodeType,
    new_source: str,
    path: Path,
) -> QuickChange | None:
    """Build the new module from the changed statements, or None (compile it all)."""
    old_lines = old_source.splitlines(keepends=True)
    new_lines = new_source.splitlines(keepends=True)
    if len(old_lines) != len(new_lines):
        return None
    changed = [i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    if not changed:
        return None
    body = old_tree.body
    spans = [(_start(stmt), stmt.end_lineno or stmt.lineno) for stmt in body]
    touched = [
        i for i, (start, end) in enumerate(spans) if any(start <= line <= end for line in changed)
    ]
    outside = [line for line in changed if not any(s <= line <= e for s, e in spans)]
    if any(not _blank_or_comment(new_lines[line - 1]) for line in outside) or any(
        not _blank_or_comment(old_lines[line - 1]) for line in outside
    ):
        return None
    if not touched:  # comments or blank lines between statements
        return QuickChange(old_tree, old_code, ())
    first, last = touched[0], touched[-1]
    old_part = body[first : last + 1]
    definitions = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    if not all(isinstance(s, definitions) for s in old_part):
        return None
    start, end = spans[first][0], spans[last][1]
    padded = "\n" * (start - 1) + "".join(new_lines[start - 1 : end])
    try:
        new_part = ast.parse(padded, str(path)).body
        if len(new_part) != len(old_part) or any(
            _header(a) != _header(b) for a, b in zip(old_part, new_part, strict=True)
        ):
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
    consts = tuple(
        replacements[c.co_name] if isinstance(c, types.CodeType) and c.co_name in replacements
        else c
        for c in old_code.co_consts
    )
    tree = ast.Module(body=[*body[:first], *new_part, *body[last + 1 :]], type_ignores=[])
    return QuickChange(tree, old_code.replace(co_consts=consts), tuple(names))


def _start(stmt: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _header(stmt: ast.stmt) -> str:
    """The part of a def/class statement that runs at the module's top level."""
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
        return ast.dump(stmt)
    return repr([_dump(p) for p in parts])


def _dump(part: object) -> object:
    if isinstance(part, ast.AST):
        return ast.dump(part)
    if isinstance(part, list):
        return [_dump(p) for p in part]
    return part
