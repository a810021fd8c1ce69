"""Every import a module makes, read from its source: what the layer tests check.

Top level, inside functions, under ``if TYPE_CHECKING`` and through ``importlib`` alike; the
imports under ``TYPE_CHECKING`` can be left out to see only what importing the module loads.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement (or ``import_module`` call)."""

    line: int
    level: int  # 0 absolute, 1 ".", 2 ".."
    module: str  # dotted; "" for ``from . import x``
    names: tuple[str, ...] = ()  # what ``from … import`` takes; () for ``import x``


type Imported = tuple[int, int, str]  # (line, level, dotted module name)


def imports(source: str, *, type_checking: bool = True) -> list[Import]:
    """Every import in a module; without those under ``if TYPE_CHECKING`` when ``type_checking`` is False."""
    found: list[Import] = []
    for node in _walk(ast.parse(source), type_checking):
        if isinstance(node, ast.Import):
            found.extend(Import(node.lineno, 0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # ``from . import x``: the package itself ("") or one of its modules, either way inside it.
            names = tuple(alias.name for alias in node.names)
            found.append(Import(node.lineno, node.level, node.module or "", names))
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
        ):
            found.append(Import(node.lineno, 0, _leading_text(node.args[0])))
    return found


def imports_of(source: str) -> list[Imported]:
    """Every import anywhere in a module: top level, functions, ``if TYPE_CHECKING``, importlib."""
    return [(found.line, found.level, found.module) for found in imports(source)]


def _walk(node: ast.AST, type_checking: bool) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if not type_checking and isinstance(child, ast.If) and _is_type_checking(child.test):
            for branch in child.orelse:  # The else branch runs.
                yield branch
                yield from _walk(branch, type_checking)
            continue
        yield child
        yield from _walk(child, type_checking)


def _is_type_checking(test: ast.expr) -> bool:
    return _called_name(test) == "TYPE_CHECKING"


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _leading_text(argument: ast.Constant | ast.JoinedStr) -> str:
    """The constant start of ``import_module("x.y")`` or ``import_module(f"x.{name}")``."""
    if isinstance(argument, ast.Constant):
        return str(argument.value)
    first = argument.values[0] if argument.values else None
    return str(first.value) if isinstance(first, ast.Constant) else ""
