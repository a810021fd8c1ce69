"""Every import a module makes, read from its source, and the graph of the integration's modules.

Top level, inside functions, under ``if TYPE_CHECKING`` and through ``importlib`` alike; the
imports under ``TYPE_CHECKING`` can be left out to see only what importing the module loads.
What the layer tests (test_layers.py, test_import_graph.py) check.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "arcade_pay"
PACKAGE = "custom_components.arcade_pay"


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement (or ``import_module`` call)."""

    line: int
    level: int  # 0 absolute, 1 ".", 2 ".."
    module: str  # dotted; "" for ``from . import x``
    names: tuple[str, ...] = ()  # what ``from … import`` takes; () for ``import x``


type Imported = tuple[int, int, str]  # (line, level, dotted module name)
type Graph = dict[str, set[str]]  # module: the modules it imports


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


# --- the integration's modules ------------------------------------------------------------


def integration_sources() -> dict[str, str]:
    """The real modules, named as module_graph expects."""
    sources = {}
    for path in INTEGRATION.rglob("*.py"):
        parts = list(path.relative_to(INTEGRATION).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def _package_of(module: str, modules: set[str]) -> list[str]:
    """The package a module's relative imports start from, as parts ("core.x" → ["core"])."""
    if module == "__init__":
        return []
    if any(other.startswith(f"{module}.") for other in modules):
        return module.split(".")  # A package's own __init__ (core/__init__.py is "core").
    return module.split(".")[:-1]


def _node(dotted: str, modules: set[str]) -> str | None:
    """The module ``dotted`` is, or is inside of (``core.ledger.X`` → ``core.ledger``)."""
    parts = dotted.split(".") if dotted else []
    while parts:
        if (name := ".".join(parts)) in modules:
            return name
        parts.pop()
    return "__init__" if "__init__" in modules else None


def targets(module: str, found: Import, modules: set[str]) -> set[str]:
    """The integration's modules one import of ``module`` reaches (none for other packages)."""
    if found.level == 0:
        if found.module != PACKAGE and not found.module.startswith(f"{PACKAGE}."):
            return set()
        base = found.module.removeprefix(PACKAGE).removeprefix(".").split(".")
        base = [part for part in base if part]
    else:
        package = _package_of(module, modules)
        if found.level - 1 > len(package):
            return set()  # Above the integration: not one of its modules.
        base = package[: len(package) - (found.level - 1)] + ([found.module] if found.module else [])
    dotted = ".".join(base)
    reached = set()
    for name in found.names or ("",):
        candidate = f"{dotted}.{name}" if dotted and name else name or dotted
        if name and candidate in modules:
            reached.add(candidate)  # ``from . import courier``: the module itself.
        elif (node := _node(dotted, modules)) is not None:
            reached.add(node)
    return reached - {module}  # A package's __init__ taking its own names is no cycle.


def module_graph(sources: Mapping[str, str], *, type_checking: bool = True) -> Graph:
    """Which of the modules each one imports.

    ``sources`` by module name: "courier", "core.ledger"; a package by its own name ("core" is
    core/__init__.py), the integration's by "__init__".
    """
    modules = set(sources)
    graph: Graph = {}
    for module, source in sources.items():
        reached: set[str] = set()
        for found in imports(source, type_checking=type_checking):
            reached |= targets(module, found, modules)
        graph[module] = reached
    return graph
