"""The whole system as real processes: mosquitto, fake Stripe, Home Assistant, cabinet agent.

Run alone with ``.venv/bin/pytest -m e2e``. Home Assistant is set up through its REST API
(onboarding, MQTT and Arcade Pay config flows, the cabinet subentry flow); payments are made
on the fake Stripe, which signs them and POSTs them to Home Assistant's webhook like Stripe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.system import MACHINE_ID, Agent, ArcadeSystem

pytestmark = pytest.mark.e2e

CREDITS_PER_GAME = 1  # Agent's default, and the integration's


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
    cabinet = Agent(tmp_path / "agent", system.broker.port, login=system.cabinet_login())
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

    # Every payment is delivered: acknowledged, or sent once before Home Assistant learned that
    # this cabinet acknowledges. Learning needs an ack of a pulse actually sent (a claim is no proof),
    # and the acks of the pulses sent at once on reconnecting reach the broker before Home
    # Assistant has subscribed again (2026.2 resubscribes about 0.1 s later), so the broker drops
    # them; none of the payments is pending.
    async def all_delivered() -> bool:
        states = (await system.diagnostics())["ledger"]["payments_by_state"]
        return set(states) <= {"acknowledged", "published"} and sum(states.values()) == len(paid)

    try:
        await system.wait_for(all_delivered, limit=60, interval=0.5)
    except TimeoutError:
        diagnostics = await system.diagnostics()
        pytest.fail(f"not all delivered: delivery {diagnostics['delivery']}, ledger {diagnostics['ledger']}")
    # Once Home Assistant has restored its subscriptions (it resubscribes a moment after it
    # reconnects), the next payment's ack arrives: it is acknowledged, and the cabinet is now
    # known to acknowledge.
    await asyncio.sleep(2)
    await pay(1)

    async def learned() -> bool:
        diagnostics = await system.diagnostics()
        return (
            diagnostics["ledger"]["payments_by_state"].get("acknowledged", 0) >= 1
            and diagnostics["delivery"]["acknowledging_cabinets"] != []
        )

    try:
        await system.wait_for(learned, limit=60, interval=0.5)
    except TimeoutError:
        diagnostics = await system.diagnostics()
        pytest.fail(f"ack not learned: delivery {diagnostics['delivery']}, ledger {diagnostics['ledger']}")
    await system.wait_for(delivered, limit=30, interval=0.5)
    state = agent.balance()
    assert set(state["applied_payment_ids"]) >= set(paid)
    # Nothing doubled: a few more seconds of possible re-sends change nothing.
    await asyncio.sleep(3)
    assert credits_on_cabinet(agent) == sum(paid.values())
