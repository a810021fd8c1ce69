"""The integration's modules import one way: no cycle, and only __init__.py imports the wiring.

* No import cycle among the modules of custom_components/arcade_pay/ (core/ included), counting
  every import: top level, inside functions, under ``if TYPE_CHECKING`` and through importlib.
  A cycle the type checker alone sees still ties the modules together: none can be read alone.
* runtime.py, which builds and starts an entry's collaborators, is imported by __init__.py only;
  the rest reads what it built through data.py.
* What config_flow.py loads (imports under ``TYPE_CHECKING`` load nothing) includes neither the
  running entry's collaborators nor the SQLite ledger.

Each check is first shown a synthetic module graph with the violation, and must report it.
"""

from __future__ import annotations

import pytest

from .import_scan import Graph, integration_sources, module_graph

WIRING = "runtime"
MAY_IMPORT_WIRING = frozenset({"__init__"})
# What a running entry is made of: the config flow has no business loading any of it.
RUNNING_ENTRY = frozenset(
    {WIRING, "courier", "intake", "catch_up", "cabinet_messages", "ledger_setup", "core.ledger"}
)


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (a → … → a) through each group of modules that import each other, if any."""
    found = []
    for group in _strongly_connected(graph):
        start = min(group)
        found.append(_path_back(graph, start, group))
    return sorted(found)


def _strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's groups of more than one module (targets() leaves a module importing itself out)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while (member := stack.pop()) != module:
                group.add(member)
            group.add(module)
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def _path_back(graph: Graph, start: str, group: set[str]) -> list[str]:
    """The shortest way from ``start`` back to itself within ``group``."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for other in sorted(graph.get(module, set()) & group):
                if other == start:
                    return [*paths[module], start]
                if other not in paths:
                    paths[other] = [*paths[module], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{start} is in a cycle it cannot get back from")


def wiring_importers(graph: Graph) -> set[str]:
    """The modules other than __init__ that import runtime.py."""
    return {module for module, reached in graph.items() if WIRING in reached} - MAY_IMPORT_WIRING


def loaded_by(graph: Graph, module: str) -> set[str]:
    """Every module importing ``module`` loads, itself left out (the package's __init__ too: it is Home
    Assistant's to load, and loads everything)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for other in graph.get(todo.pop(), set()) - seen - {"__init__", module}:
            seen.add(other)
            todo.append(other)
    return seen


# --- the checks report what they must -------------------------------------------------------


@pytest.mark.parametrize(
    "sources",
    [
        {"a": "from .b import x", "b": "from .a import y"},
        {
            "a": "from .b import x",
            "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import Y\n",
        },
        {"a": "def later():\n    from .b import x\n", "b": "from . import a"},
        {"a": "from .b import x", "b": "from .c import y", "c": "import custom_components.arcade_pay.a"},
        {
            "a": "import importlib\nimportlib.import_module('custom_components.arcade_pay.b')",
            "b": "from .a import x",
        },
        {"__init__": "from .a import setup", "a": "from . import VERSION"},  # ``VERSION`` is __init__'s
        {"core": "", "core.x": "from .y import z", "core.y": "from . import x"},
        {"a": "from .core.x import y", "core": "", "core.x": "from .. import a"},
    ],
)
def test_the_cycle_check_reports_a_cycle(sources: dict[str, str]) -> None:
    found = cycles(module_graph(sources))
    assert len(found) == 1
    assert found[0][0] == found[0][-1]
    assert set(found[0]) <= set(sources)


def test_the_cycle_check_names_the_modules_in_the_cycle_only() -> None:
    sources = {
        "a": "from .b import x",
        "b": "from .c import y",
        "c": "from .b import z",
        "d": "from .a import w",
    }
    assert cycles(module_graph(sources)) == [["b", "c", "b"]]


def test_the_cycle_check_lets_one_way_imports_through() -> None:
    sources = {
        "__init__": "from .runtime import build\nfrom . import a",
        "runtime": "from .a import x\nfrom .core.c import y\nfrom .core import c",
        "a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .core.c import Z\nimport stripe",
        "core": "",
        "core.c": "from . import d\nimport custom_components.arcade_pay.core.d",
        "core.d": "import sqlite3",
    }
    graph = module_graph(sources)
    assert graph == {
        "__init__": {"runtime", "a"},
        "runtime": {"a", "core.c"},
        "a": {"core.c"},
        "core": set(),
        "core.c": {"core.d"},
        "core.d": set(),
    }
    assert cycles(graph) == []


@pytest.mark.parametrize(
    "source",
    [
        "from .runtime import async_build",
        "from . import runtime",
        "import custom_components.arcade_pay.runtime",
        "from custom_components.arcade_pay import runtime",
        "def later():\n    from .runtime import async_build\n",
        "if TYPE_CHECKING:\n    from .runtime import ArcadePayData\n",
    ],
)
def test_the_wiring_check_reports_another_module_importing_runtime(source: str) -> None:
    sources = {"__init__": "from .runtime import async_build", "runtime": "", "entity": source}
    assert wiring_importers(module_graph(sources)) == {"entity"}


def test_the_wiring_check_lets_init_import_runtime() -> None:
    sources = {
        "__init__": "from .runtime import async_build",
        "runtime": "",
        "entity": "from .data import X",
        "data": "",
    }
    assert wiring_importers(module_graph(sources)) == set()


def test_what_a_module_loads_leaves_type_checking_out() -> None:
    sources = {
        "config_flow": "from .data import Options",
        "data": "if TYPE_CHECKING:\n    from .courier import Courier\nelse:\n    from .const import X\n",
        "courier": "",
        "const": "",
    }
    assert loaded_by(module_graph(sources, type_checking=False), "config_flow") == {"data", "const"}
    assert loaded_by(module_graph(sources), "config_flow") == {"data", "courier", "const"}


# --- the real modules ------------------------------------------------------------------------


GRAPH = module_graph(integration_sources())


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    """A wrong path or a broken resolution would make every check below pass on nothing."""
    assert {"__init__", WIRING, "courier", "data", "config_flow", "core", "core.ledger"} <= GRAPH.keys()
    assert {WIRING, "data"} <= GRAPH["__init__"]
    assert {"courier", "intake", "core.ledger"} <= GRAPH[WIRING]
    assert "courier" in GRAPH["data"]  # Under TYPE_CHECKING.
    assert "core.ledger_records" in GRAPH["core.ledger"]


def test_no_import_cycle_among_the_integration_modules() -> None:
    assert cycles(GRAPH) == []


def test_only_init_imports_the_wiring() -> None:
    assert wiring_importers(GRAPH) == set()


def test_the_config_flow_loads_no_running_entry_and_no_ledger() -> None:
    loaded = loaded_by(module_graph(integration_sources(), type_checking=False), "config_flow")
    assert {"data", "helpers", "connection_flow"} <= loaded  # The scan follows the flow's imports.
    assert loaded & RUNNING_ENTRY == set()
