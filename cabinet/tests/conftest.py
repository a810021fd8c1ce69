"""Fixtures for the cabinet agent's tests: a real mosquitto, the agent as a real process, and a
paho client playing Home Assistant. Plain pytest: no Home Assistant here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
import os
from pathlib import Path
import sys
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
# The source tree (not an installed copy) and the harness; the agent's processes get PYTHONPATH.
for directory in (TESTS_DIR.parent, TESTS_DIR):
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))

from cabinet_harness import Agent, HomeAssistant  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402  (the repository's helper, on pytest's pythonpath)


@pytest.fixture(autouse=True)
def _sockets(request: pytest.FixtureRequest) -> None:
    """Allow the broker on 127.0.0.1 and the agent's Unix socket.

    Home Assistant's test plugin (loaded for the whole run) blocks sockets with pytest-socket,
    except connections to 127.0.0.1, and also blocks Unix socket connections.
    """
    if request.config.pluginmanager.has_plugin("socket"):
        import pytest_socket  # noqa: PLC0415  (only when installed)

        request.getfixturevalue("socket_enabled")
        pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture
def broker(tmp_path: Path) -> Generator[Mosquitto]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    mosquitto = Mosquitto(workdir, persistence=True)
    if os.geteuid() == 0:
        # Started as root, mosquitto drops to the "mosquitto" user, which cannot write its
        # database into pytest's 0700 tmp_path ("Error saving in-memory database").
        with mosquitto.config.open("a", encoding="utf-8") as config:
            config.write("user root\n")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def ha(broker: Mosquitto) -> Generator[HomeAssistant]:
    client = HomeAssistant(broker.port)
    yield client
    client.close()


@pytest.fixture
def make_agent(tmp_path: Path, broker: Mosquitto) -> Generator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def make(**settings: Any) -> Agent:
        agent = Agent(tmp_path / f"cabinet{len(agents)}", broker.port, **settings)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.kill()
        # Shown by pytest only when the test failed.
        print(f"--- {agent.log}\n{agent.log_text()}")


@pytest.fixture
def agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent()
