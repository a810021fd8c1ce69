"""Automatic refunds, by example: what each answer of Stripe and each ledger failure leaves behind
(core/undelivered_refunds.py; the state machine in test_delivery_properties.py runs them together)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from custom_components.arcade_pay.core.delivery import CreditDispatcher, Pulse, Withdrawn
from custom_components.arcade_pay.core.ledger import Adjustment, LedgerError, PaymentLedger, PaymentState
from custom_components.arcade_pay.core.stripe_gateway import StripeConnectionError, StripeGatewayError
from custom_components.arcade_pay.core.undelivered_refunds import UndeliveredRefunds, refund_key

from .helpers import OLDER_CAB, START, payment

NOW = datetime.fromtimestamp(START, UTC)


class Gateway:
    """Stripe's two refund calls, each answering as told."""

    def __init__(self) -> None:
        self.refunded: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.refund_error: StripeGatewayError | None = None
        self.amount_error: StripeGatewayError | None = None

    async def refund(self, payment_intent: str, idempotency_key: str) -> None:
        self.calls.append(("refund", idempotency_key))
        if self.refund_error is not None:
            raise self.refund_error
        self.refunded[payment_intent] = 200

    async def refunded_amount(self, payment_intent: str) -> int:
        self.calls.append(("refunded_amount", payment_intent))
        if self.amount_error is not None:
            raise self.amount_error
        return self.refunded.get(payment_intent, 0)


class World:
    """A ledger with one undelivered payment (cs_1: 2 credits for 2.00), its dispatcher and refunds."""

    def __init__(self, path: Path) -> None:
        self.ledger = PaymentLedger(path)
        self.ledger.open()
        self.gateway = Gateway()
        self.failing: set[str] = set()  # ledger methods that raise LedgerError
        self.applied: list[Adjustment] = []
        self.changed: list[str] = []
        self.sent: list[str] = []
        self.dispatcher = CreditDispatcher(self.ledger, self._publish, lambda: START, self._run)
        self.dispatcher.planner.set_mqtt_connected(False)  # Held: owed, never in flight.
        self.refunds = UndeliveredRefunds(
            self.dispatcher, lambda: self.gateway, self._run, self.applied.append, self.changed.append
        )
        asyncio.run(self.dispatcher.accept(payment(1)))

    async def _publish(self, pulse: Pulse) -> bool:
        self.sent.append(pulse.payment_id)
        return True

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        if function.__name__ in self.failing:
            raise LedgerError(f"{function.__name__} failed")
        return function(*args)

    def withdraw(self) -> Withdrawn:
        withdrawn = self.dispatcher.withdraw("cs_1")
        assert withdrawn is not None
        return withdrawn

    def refund(self) -> None:
        asyncio.run(self.refunds.refund(self.withdraw(), NOW))

    def finish_all(self) -> None:
        async def finish() -> None:
            for record in await self.refunds.unfinished():
                await self.refunds.finish(record)

        asyncio.run(finish())

    @property
    def owed(self) -> bool:
        return "cs_1" in self.dispatcher.planner

    def marked(self) -> bool:
        return [r.payment_id for r in self.ledger.refunds_started()] == ["cs_1"]

    def state(self) -> PaymentState | None:
        return self.ledger.state_of("cs_1")


@pytest.fixture
def world(tmp_path: Path) -> Generator[World]:
    world = World(tmp_path / "ledger.db")
    yield world
    world.ledger.close()


def test_refunded_and_recorded_with_the_payments_key(world: World) -> None:
    world.refund()
    assert world.gateway.calls == [("refund", refund_key("cs_1"))]
    assert (world.state(), world.marked(), world.owed) == (PaymentState.REFUNDED, False, False)
    assert [a.revenue_delta for a in world.applied] == [200]


def test_a_payment_the_ledger_cannot_mark_is_not_refunded_and_owed_again(world: World) -> None:
    world.failing.add("start_refund")
    world.refund()
    assert world.gateway.calls == []  # Stripe is not asked for what the ledger could not mark.
    assert (world.state(), world.owed, set(world.changed)) == (PaymentState.PENDING, True, {OLDER_CAB})


def test_a_lost_answer_keeps_the_mark_and_the_next_run_records_the_refund(world: World) -> None:
    world.gateway.refund_error = StripeConnectionError("timed out")
    world.refund()
    assert world.gateway.refunded == {}  # This Stripe did not refund; the next run asks.
    assert (world.state(), world.marked(), world.owed) == (PaymentState.PENDING, True, False)
    world.gateway.refund_error = None
    world.finish_all()  # Not refunded: refunded with the same key.
    assert world.gateway.calls[-2:] == [("refunded_amount", "pi_1"), ("refund", refund_key("cs_1"))]
    assert (world.state(), world.marked(), world.owed) == (PaymentState.REFUNDED, False, False)


def test_a_refund_stripe_refuses_records_what_stripe_refunded_and_owes_the_rest(world: World) -> None:
    world.gateway.refund_error = StripeGatewayError("Charge has been disputed.")
    world.gateway.refunded["pi_1"] = 100  # Half of it, from the dashboard.
    world.refund()
    record = world.ledger.payment("cs_1")
    assert record is not None
    assert (record.state, record.refunded_amount, record.being_refunded) == (PaymentState.PENDING, 100, False)
    pulse = world.dispatcher.pulse("cs_1")
    assert pulse is not None
    assert pulse.credits == 1  # Owed again: what is still paid for.


def test_while_stripe_or_the_ledger_cannot_say_the_mark_stays(world: World) -> None:
    world.gateway.refund_error = StripeGatewayError("refused")
    world.gateway.amount_error = StripeConnectionError("down")
    world.refund()
    assert (world.marked(), world.owed) == (True, False)
    world.gateway.amount_error = None
    world.failing.add("end_refund")
    world.finish_all()  # Refused again; the mark cannot be removed now.
    assert (world.marked(), world.owed) == (True, False)
    world.failing.clear()
    world.finish_all()
    assert (world.state(), world.marked(), world.owed) == (PaymentState.PENDING, False, True)


def test_a_refund_the_ledger_cannot_record_is_recorded_by_the_next_run_without_refunding_again(
    world: World,
) -> None:
    world.failing.add("record_refund")
    world.refund()
    assert (world.gateway.refunded, world.marked(), world.owed) == ({"pi_1": 200}, True, False)
    world.failing.clear()
    world.finish_all()
    assert [call for call, _ in world.gateway.calls] == ["refund", "refunded_amount"]
    assert (world.state(), world.marked()) == (PaymentState.REFUNDED, False)


def test_a_payment_acknowledged_meanwhile_is_not_refunded(world: World) -> None:
    world.ledger.mark_published("cs_1", NOW, awaiting_ack=True)
    world.gateway.refund_error = StripeConnectionError("down")
    world.refund()
    assert world.ledger.mark_acknowledged("cs_1", OLDER_CAB, NOW)  # Its ack came in the end.
    world.gateway.refund_error = None
    world.finish_all()
    assert ("refund", refund_key("cs_1")) in world.gateway.calls[:1]  # The first, unanswered.
    assert world.gateway.calls[1:] == [("refunded_amount", "pi_1")]  # Not refunded again.
    assert (world.state(), world.marked(), world.owed) == (PaymentState.ACKNOWLEDGED, False, False)


def test_a_refund_under_way_is_left_to_its_run(world: World) -> None:
    async def scenario() -> None:
        answer = asyncio.Event()
        real = world.gateway.refund

        async def slow(payment_intent: str, idempotency_key: str) -> None:
            await answer.wait()
            await real(payment_intent, idempotency_key)

        world.gateway.refund = slow  # type: ignore[method-assign]
        refund = asyncio.ensure_future(world.refunds.refund(world.withdraw(), NOW))
        for _ in range(10):
            await asyncio.sleep(0)
        assert world.marked()
        assert await world.refunds.unfinished() == []  # Housekeeping leaves it to the first run.
        [record] = world.ledger.refunds_started()
        await world.refunds.finish(record)
        answer.set()
        await refund

    asyncio.run(scenario())
    # The first run's one call (``slow`` goes on to the noting one); finish asked Stripe nothing.
    assert world.gateway.calls == [("refund", refund_key("cs_1"))]
    assert world.gateway.refunded == {"pi_1": 200}
    assert (world.state(), world.marked()) == (PaymentState.REFUNDED, False)


def test_a_payment_without_a_payment_intent_is_never_refunded(world: World) -> None:
    """A session paid in full by a coupon has no payment intent: nothing to give back."""
    free = payment(3)
    world.ledger.record(replace(free, payment_intent=None))
    withdrawn = world.dispatcher.withdraw("cs_3")
    assert withdrawn is None  # Not tracked yet: the dispatcher learns of it at its next load.
    asyncio.run(world.dispatcher.load())
    withdrawn = world.dispatcher.withdraw("cs_3")
    assert withdrawn is not None
    asyncio.run(world.refunds.refund(withdrawn, NOW))
    assert world.gateway.calls == []
    assert "cs_3" in world.dispatcher.planner
    # Marked by hand (or by a release that did): finishing it owes the credits again.
    world.dispatcher.withdraw("cs_3")
    assert world.ledger.start_refund("cs_3", NOW) is not None
    world.finish_all()
    assert world.gateway.calls == []
    assert world.ledger.refunds_started() == []
    assert "cs_3" in world.dispatcher.planner


def test_finishing_reads_the_payment_again(world: World) -> None:
    """Listed, then settled before its turn (an ack, a dispute, another run): left as it is."""
    world.gateway.refund_error = StripeConnectionError("down")
    world.refund()
    [listed] = world.ledger.refunds_started()
    world.failing.add("payment")
    asyncio.run(world.refunds.finish(listed))  # The ledger cannot say now: left marked.
    assert world.marked()
    world.failing.clear()
    world.ledger.record_refund("pi_1", 200, "auto_refund:cs_1", True)  # Another run finished it.
    calls = list(world.gateway.calls)
    asyncio.run(world.refunds.finish(listed))
    assert world.gateway.calls == calls  # Stripe is not asked again.
    assert (world.state(), world.marked()) == (PaymentState.REFUNDED, False)
