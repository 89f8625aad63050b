"""Attributes a class's ``__init__`` sets on its instances, read from the syntax tree.

For the reload report: a class whose new ``__init__`` sets an attribute the
old one did not leaves instances made before without it (they fail where a
fresh start would not), which the batch notes unless a ``hot.migrate`` hook
takes care of them.
"""

from __future__ import annotations

import ast


def init_attributes(statements: list[ast.stmt]) -> dict[str, set[str]]:
    """Per class (qualified name, nested classes too): attributes ``__init__`` sets on self.

    ``self.x = ...``, ``self.x: T = ...``, ``self.x += ...`` in ``__init__``'s
    body (the first parameter's name is used, whatever it is called).
    """
    found: dict[str, set[str]] = {}

    def visit_class(node: ast.ClassDef, prefix: str) -> None:
        qualname = f"{prefix}{node.name}"
        for item in node.body:
            if isinstance(item, ast.ClassDef):
                visit_class(item, f"{qualname}.")
            elif (
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name == "__init__"
                and item.args.args
            ):
                me = item.args.args[0].arg
                attrs: set[str] = set()
                for sub in ast.walk(item):
                    targets: list[ast.expr] = []
                    if isinstance(sub, ast.Assign):
                        targets = list(sub.targets)
                    elif isinstance(sub, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
                        targets = [sub.target]
                    elif isinstance(sub, ast.With | ast.AsyncWith):
                        targets = [i.optional_vars for i in sub.items if i.optional_vars]
                    while targets:
                        target = targets.pop()
                        if isinstance(target, ast.Tuple | ast.List):
                            targets.extend(target.elts)
                        elif isinstance(target, ast.Starred):
                            targets.append(target.value)
                        elif (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == me
                        ):
                            attrs.add(target.attr)
                found[qualname] = attrs

    for stmt in statements:
        if isinstance(stmt, ast.ClassDef):
            visit_class(stmt, "")
    return found
