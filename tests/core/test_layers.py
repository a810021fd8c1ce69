"""The layers the imports draw, enforced: a core without Home Assistant, an agent without either.

* Every module under custom_components/arcade_pay/core/ imports neither Home Assistant (not even
  inside a function, under ``TYPE_CHECKING`` or through ``importlib``) nor anything of the
  integration outside core/ (``from .. import``, ``custom_components.arcade_pay.<not core>``);
  of third-party packages only those its money path needs (``CORE_THIRD_PARTY``).
* Every module of the cabinet agent (cabinet/arcade_cabinet/, including the symlinked
  protocol.py) imports only the standard library, ``paho`` (MQTT) and its own modules:
  nothing of Stripe, Home Assistant or voluptuous reaches a cabinet PC (cabinet/README.md,
  "Dependencies").
* The modules the agent could share (STDLIB_ONLY) import only the standard library.

Each checker is first shown a synthetic module with the forbidden import, and must flag it.
The integration's own modules import one way: test_import_graph.py.
"""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

from .import_scan import imports_of

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "custom_components" / "arcade_pay" / "core"
AGENT = REPO / "cabinet" / "arcade_cabinet"
CORE_PACKAGE = "custom_components.arcade_pay.core"

CORE_THIRD_PARTY = frozenset({"stripe", "aiohttp", "voluptuous"})
AGENT_THIRD_PARTY = frozenset({"paho"})
# Standard library only: the wire protocol (the agent's, through its symlink) and money arithmetic.
STDLIB_ONLY = ("protocol.py", "currencies.py")


def _top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def core_violations(source: str, core_modules: set[str]) -> list[str]:
    """What a core module imports that it must not."""
    problems = []
    for line, level, module in imports_of(source):
        where = f"line {line}: {'.' * level}{module}"
        if level == 0 and _top(module) == "homeassistant":
            problems.append(f"{where} is Home Assistant")
        elif level >= 2:
            problems.append(f"{where} is outside core/")
        elif level == 1 and module and _top(module) not in core_modules:
            problems.append(f"{where} is not a module of core/")
        elif level == 0 and _top(module) == "custom_components":
            if module != CORE_PACKAGE and not module.startswith(CORE_PACKAGE + "."):
                problems.append(f"{where} is outside core/")
        elif level == 0 and _top(module) not in sys.stdlib_module_names | CORE_THIRD_PARTY:
            problems.append(f"{where} is a third-party package core does not use")
    return problems


def agent_violations(source: str, agent_modules: set[str], third_party: frozenset[str]) -> list[str]:
    """What a module of the cabinet agent imports beyond the standard library, ``third_party`` and itself."""
    problems = []
    for line, level, module in imports_of(source):
        where = f"line {line}: {'.' * level}{module}"
        if level >= 2 or (level == 1 and module and _top(module) not in agent_modules):
            problems.append(f"{where} is not a module of the agent")
        elif level == 0 and _top(module) not in sys.stdlib_module_names | third_party:
            problems.append(f"{where} is neither the standard library nor {sorted(third_party)}")
    return problems


def _modules(directory: Path) -> set[str]:
    return {path.stem for path in directory.glob("*.py")}


CORE_FILES = sorted(CORE.glob("*.py"))
AGENT_FILES = sorted(AGENT.glob("*.py"))


# --- the checkers flag what they must --------------------------------------------------------

CORE_KNOWN = {"ledger", "resend", "protocol"}


@pytest.mark.parametrize(
    "source",
    [
        "import homeassistant",
        "from homeassistant.core import HomeAssistant",
        "import homeassistant.util.dt as dt_util",
        "def now():\n    from homeassistant.util import dt\n    return dt.utcnow()\n",
        "if TYPE_CHECKING:\n    from homeassistant.core import HomeAssistant\n",
        "import importlib\nimportlib.import_module('homeassistant.const')\n",
        "__import__('homeassistant')",
        "from .. import const",
        "from ..hub import ArcadePayHub",
        "from ...other import thing",
        "from custom_components.arcade_pay import const",
        "import custom_components.arcade_pay.hub",
        "from .courier import Courier",  # not a module of core/
        "import requests",
    ],
)
def test_the_core_checker_flags_a_forbidden_import(source: str) -> None:
    assert core_violations(source, CORE_KNOWN)


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations\nimport sqlite3",
        "from . import resend",
        "from .ledger import PaymentLedger",
        "from custom_components.arcade_pay.core.protocol import topic",
        "import stripe\nimport voluptuous as vol",
        "import importlib\nimportlib.import_module(f'stripe.{name}')\n",
    ],
)
def test_the_core_checker_lets_core_imports_through(source: str) -> None:
    assert core_violations(source, CORE_KNOWN) == []


@pytest.mark.parametrize(
    "source",
    [
        "import voluptuous as vol",
        "import stripe",
        "from homeassistant.core import HomeAssistant",
        "def parse():\n    import voluptuous\n",
        "from .ledger import PaymentLedger",  # core's, not the agent's
        "from .. import anything",
        "import yaml",
    ],
)
def test_the_agent_checker_flags_a_forbidden_import(source: str) -> None:
    assert agent_violations(source, {"protocol", "config"}, AGENT_THIRD_PARTY)


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations\nimport json\nfrom pathlib import Path",
        "from paho.mqtt.client import Client",
        "from .protocol import GameState",
        "from . import config, __version__",
    ],
)
def test_the_agent_checker_lets_its_imports_through(source: str) -> None:
    assert agent_violations(source, {"protocol", "config"}, AGENT_THIRD_PARTY) == []


def test_the_stdlib_checker_flags_paho_too() -> None:
    assert agent_violations("import paho.mqtt.client", {"protocol"}, frozenset())


# --- the real modules ------------------------------------------------------------------------


def test_the_scans_see_the_modules() -> None:
    """A wrong path would make every scan below pass on nothing."""
    assert len(CORE_FILES) > 10
    assert {"ledger.py", "delivery.py", "payments.py", "protocol.py"} <= {p.name for p in CORE_FILES}
    shared = AGENT / "protocol.py"
    assert shared in AGENT_FILES
    assert shared.is_symlink()
    assert shared.resolve() == (CORE / "protocol.py").resolve()
    announcement = AGENT / "announcement.py"
    assert announcement in AGENT_FILES
    assert announcement.resolve() == (CORE / "announcement.py").resolve()


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda path: path.name)
def test_core_imports_no_home_assistant_and_nothing_outside_core(path: Path) -> None:
    assert core_violations(path.read_text(encoding="utf-8"), _modules(CORE)) == []


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda path: path.name)
def test_the_agent_imports_only_the_standard_library_paho_and_itself(path: Path) -> None:
    assert agent_violations(path.read_text(encoding="utf-8"), _modules(AGENT), AGENT_THIRD_PARTY) == []


@pytest.mark.parametrize("name", STDLIB_ONLY)
def test_what_the_agent_could_share_imports_only_the_standard_library(name: str) -> None:
    # No relative import either: in the agent, ``.x`` would be arcade_cabinet.x.
    assert agent_violations((CORE / name).read_text(encoding="utf-8"), set(), frozenset()) == []


def test_the_announcement_imports_only_the_standard_library_and_the_protocol() -> None:
    # Its one relative import, ``.protocol``, exists in both packages (the agent's is the symlink).
    source = (CORE / "announcement.py").read_text(encoding="utf-8")
    assert agent_violations(source, {"protocol"}, frozenset()) == []
    assert agent_violations(source, set(), frozenset())  # The check sees that import at all.
