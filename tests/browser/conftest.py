"""The browser suite's stack: real Home Assistant, mosquitto, fake Stripe, cabinet agent, Chromium.

One stack per module (starting Home Assistant takes most of a minute): the journey's steps are
ordered tests that share it, so that each stage passes or fails on its own.

The tests under tests/ run an in-process ``hass`` per test; this suite runs real processes
instead, so the harness's per-test fixtures are switched off here (see the overrides below).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import shutil

import pytest
import pytest_asyncio
import pytest_socket

from homeassistant.const import __version__ as HA_VERSION

from e2e.system import REPO

from .journey import Journey

# One folder per Home Assistant version: .ci/run runs the suite on two and keeps both.
ARTIFACTS = REPO / "test-artifacts" / "browser" / HA_VERSION


# --- the unit-test harness does not apply to real processes ------------------------------------


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant here: the real one loads the integration from its config."""


@pytest.fixture(autouse=True)
def isolated_config_dir() -> None:
    """The stack has its own config directory."""


@pytest.fixture(autouse=True)
def verify_cleanup() -> None:
    """The harness checks a per-test event loop; this suite's loop lives for the whole module."""


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Debug mode slows the shared loop that also serves the fake Stripe; not needed here."""


@pytest.fixture(autouse=True)
def sockets_on() -> None:
    """The harness blocks sockets before every test; this suite talks to servers on 127.0.0.1.

    The module's fake Stripe accepts connections in this process, so sockets stay enabled for
    the module, not only inside each test (``socket_enabled`` would turn them off again).
    """
    pytest_socket.enable_socket()


# --- the stack -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def journey(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Journey]:
    """Start everything, log nothing in yet; stop everything after the module's last step."""
    pytest_socket.enable_socket()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    run = Journey(tmp_path_factory.mktemp("browser"), ARTIFACTS)
    try:
        await run.start()
        yield run
    finally:
        await run.stop()
