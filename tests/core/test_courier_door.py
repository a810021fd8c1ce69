"""The courier is the one door to delivery: nothing else reaches its dispatcher or its planner.

Every module of the integration is read (``ast``, not run). An attribute named ``planner`` or
``dispatcher`` (``x.planner``, ``self.dispatcher = …``, ``getattr(x, "planner")``) may appear only
in courier.py and in the core modules that own them (core/delivery.py: the dispatcher and its
planner; core/delivery_queries.py: the dispatcher's read side). A private ``_planner`` or
``_dispatcher`` may be read only on ``self``: a module's own, never another object's.
Everything else tells the courier what happened, through its methods.

The checker is first shown synthetic violations, and must flag them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "custom_components" / "arcade_pay"
DOOR = frozenset({"planner", "dispatcher"})
# The courier, and the core modules whose objects the planner and the dispatcher are.
OWNERS = frozenset({"courier.py", "core/delivery.py", "core/delivery_queries.py"})


def door_violations(source: str) -> list[str]:
    """Where a module reaches into the courier's dispatcher or planner."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name, owner = node.args[1].value, node.args[0]
        else:
            continue
        if name in DOOR:
            problems.append(f"line {node.lineno}: .{name}")
        elif name.lstrip("_") in DOOR and not (isinstance(owner, ast.Name) and owner.id == "self"):
            problems.append(f"line {node.lineno}: .{name} of another object")
    return problems


MODULES = sorted(INTEGRATION.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(INTEGRATION).as_posix()


# --- the checker flags what it must ----------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "self._courier.planner.hurry(cabinet.machine_id)",
        "planner = self._courier.planner\nplanner.set_mqtt_connected(connected)",
        "async def f(data):\n    await data.courier.dispatcher.accept(payment, deliver=False)\n",
        "def f(courier):\n    return courier.dispatcher.withdraw(payment_id)\n",
        "self.dispatcher = courier_dispatcher",  # Holding one is reaching it.
        "courier._dispatcher.adjust(payment_id, 0)",
        "data.courier._dispatcher.planner",
        "getattr(courier, 'dispatcher').flush()",
        "getattr(self._courier, '_planner')",
    ],
)
def test_the_checker_flags_a_reach_past_the_door(source: str) -> None:
    assert door_violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "from homeassistant.helpers.dispatcher import async_dispatcher_send",
        "async_dispatcher_send(hass, cabinet_added_signal(entry.entry_id), cabinet)",
        "self._dispatcher.put_back(withdrawn)",  # A module's own, given by the courier.
        "self._courier.first_sign_of_life(cabinet.machine_id)",
        "withdrawn = self._courier.withdraw_overdue(payment_id, now, after)",
    ],
)
def test_the_checker_lets_the_door_through(source: str) -> None:
    assert door_violations(source) == []


# --- the real modules ------------------------------------------------------------------------


def test_the_scan_sees_the_modules_and_the_owners_reach_the_planner() -> None:
    """A wrong path, or a checker blind to the real code, would make the scan pass on nothing."""
    names = {_name(path) for path in MODULES}
    assert {"cabinet_messages.py", "cabinet_roster.py", "catch_up.py", "intake.py", "runtime.py"} <= names
    assert names >= OWNERS
    for owner in OWNERS:
        assert door_violations((INTEGRATION / owner).read_text(encoding="utf-8")), owner


@pytest.mark.parametrize("path", [p for p in MODULES if _name(p) not in OWNERS], ids=_name)
def test_no_module_but_the_courier_reaches_the_dispatcher_or_the_planner(path: Path) -> None:
    assert door_violations(path.read_text(encoding="utf-8")) == []
