"""The whole system as real processes: mosquitto, fake Stripe, Home Assistant, cabinet agent.

Run alone with ``.venv/bin/pytest -m e2e``. Home Assistant is set up through its REST API
(onboarding, MQTT and Arcade Pay config flows, the cabinet subentry flow); payments are made
on the fake Stripe, which signs them and POSTs them to Home Assistant's webhook like Stripe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any

import pytest

from e2e.system import MACHINE_ID, REPO, ArcadeSystem

pytestmark = pytest.mark.e2e

CREDITS_PER_GAME = 1


class Agent:
    """The cabinet agent (``arcade-cabinet run``) as a process."""

    def __init__(self, workdir: Path, broker_port: int) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.state_file = workdir / "state.json"
        self.coins = workdir / "coins.log"
        self.config = workdir / "cabinet.toml"
        coin = [sys.executable, "-c", f"open({str(self.coins)!r}, 'a').write('coin\\n')"]
        self.config.write_text(
            f'machine_id = "{MACHINE_ID}"\n'
            f"credits_per_game = {CREDITS_PER_GAME}\n"
            f"coin_command = {json.dumps(coin)}\n"
            "coin_gap_ms = 100\n"
            f'state_file = "{self.state_file}"\n'
            f'control_socket = "{workdir / "control.sock"}"\n'
            "[mqtt]\n"
            'host = "127.0.0.1"\n'
            f"port = {broker_port}\n",
            encoding="utf-8",
        )
        self.env = os.environ | {"PYTHONPATH": str(REPO / "cabinet")}
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "arcade_cabinet", *args, "--config", str(self.config)]

    def start(self) -> None:
        log = (self.workdir / "agent.log").open("ab")
        self.process = subprocess.Popen(self.command("run"), env=self.env, stdout=log, stderr=log)

    def kill(self) -> None:
        """Power cut: SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def game_over(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("game-over"), env=self.env, capture_output=True, text=True, timeout=30, check=False
        )

    def balance(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        return dict(json.loads(self.state_file.read_text(encoding="utf-8")))


@pytest.fixture
async def system(tmp_path: Path, socket_enabled: None) -> AsyncIterator[ArcadeSystem]:
    arcade = ArcadeSystem(tmp_path / "system")
    try:
        await arcade.start()
        await arcade.add_cabinet()
        yield arcade
    finally:
        await arcade.stop()


@pytest.fixture
def agent(system: ArcadeSystem, tmp_path: Path) -> Any:
    cabinet = Agent(tmp_path / "agent", system.broker.port)
    cabinet.start()
    yield cabinet
    cabinet.stop()


def credits_on_cabinet(agent: Agent) -> int:
    return int(agent.balance().get("credits", 0))


async def test_payments_reach_the_cabinet_and_game_over_reaches_home_assistant(
    system: ArcadeSystem, agent: Agent
) -> None:
    async def online() -> bool:
        return await system.state("binary_sensor.demo_cabinet_online") == "on"

    await system.wait_for(online)

    paid = [1, 2, 3]
    for quantity in paid:
        assert await system.fake.deliver(system.checkout(quantity)) == [200]

    async def all_credited() -> bool:
        return credits_on_cabinet(agent) == sum(paid)

    await system.wait_for(all_credited)

    async def all_acknowledged() -> bool:
        states = (await system.diagnostics())["ledger"]["payments_by_state"]
        return states == {"acknowledged": len(paid)}

    await system.wait_for(all_acknowledged)
    assert await system.state("sensor.demo_cabinet_credits") == str(sum(paid))
    assert await system.state("sensor.demo_cabinet_game_state") == "playing"
    assert await system.state("sensor.demo_cabinet_revenue") == "12.00"
    # One coin command per credit (they run 100 ms apart, after the credits are stored).

    async def coins_inserted() -> bool:
        return agent.coins.exists() and agent.coins.read_text(encoding="utf-8").count("coin") == sum(paid)

    await system.wait_for(coins_inserted)

    async with system.events("arcade_pay_game_over") as game_overs:
        result = agent.game_over()
        assert result.returncode == 0, result.stderr
        event = await system.wait_for(lambda: _next(game_overs), limit=15)
    assert event["machine_id"] == MACHINE_ID

    async def after_game() -> bool:
        return await system.state("sensor.demo_cabinet_plays") == "1" and await system.state(
            "sensor.demo_cabinet_credits"
        ) == str(sum(paid) - CREDITS_PER_GAME)

    await system.wait_for(after_game)
    assert credits_on_cabinet(agent) == sum(paid) - CREDITS_PER_GAME


async def _next(queue: Any) -> Any:
    return None if queue.empty() else queue.get_nowait()


async def test_broker_and_agent_restarts_in_a_burst_lose_and_double_nothing(
    system: ArcadeSystem, agent: Agent
) -> None:
    async def online() -> bool:
        return await system.state("binary_sensor.demo_cabinet_online") == "on"

    await system.wait_for(online)
    paid: dict[str, int] = {}

    async def pay(quantity: int) -> None:
        delivery = system.checkout(quantity)
        paid[delivery.event["data"]["object"]["id"]] = quantity
        # Stripe retries until it gets a 2xx; the webhook answers 2xx once the payment is recorded.
        assert await system.fake.deliver(delivery) == [200]

    for index in range(8):
        await pay(1 + index % 3)
    system.broker.kill()
    for index in range(6):
        await pay(1 + index % 2)
    agent.kill()
    system.broker.start()
    for _ in range(6):
        await pay(2)
    agent.start()
    for _ in range(6):
        await pay(1)
    agent.kill()
    agent.start()

    async def delivered() -> bool:
        return credits_on_cabinet(agent) == sum(paid.values())

    try:
        await system.wait_for(delivered, limit=90, interval=0.5)
    except TimeoutError:
        diagnostics = await system.diagnostics()
        pytest.fail(
            f"cabinet has {credits_on_cabinet(agent)} of {sum(paid.values())} credits; "
            f"delivery {diagnostics['delivery']}, ledger {diagnostics['ledger']}, "
            f"missing {sorted(set(paid) - set(agent.balance().get('applied_payment_ids', [])))}"
        )

    async def all_acknowledged() -> bool:
        states = (await system.diagnostics())["ledger"]["payments_by_state"]
        return states == {"acknowledged": len(paid)}

    try:
        await system.wait_for(all_acknowledged, limit=60, interval=0.5)
    except TimeoutError:
        diagnostics = await system.diagnostics()
        pytest.fail(
            f"not all acknowledged: delivery {diagnostics['delivery']}, ledger {diagnostics['ledger']}"
        )
    state = agent.balance()
    assert set(state["applied_payment_ids"]) >= set(paid)
    # Nothing doubled: a few more seconds of possible re-sends change nothing.
    await asyncio.sleep(3)
    assert credits_on_cabinet(agent) == sum(paid.values())
