"""Exactly-once delivery, as a state machine: the real dispatcher and ledger in a simulated world.

The world has a clock, a broker that can go down (with Home Assistant noticing at once or
only later), and two cabinets that can go offline (noticed at once, or only when their
status arrives): "ack-cab" acknowledges every pulse it receives, "seed-cab" never does.
Pulses the broker accepts for a cabinet that is offline are lost, like QoS 1 to a
non-persistent session. Acknowledgements can be lost too, the process can crash between a
publish and its ledger write, and Home Assistant can restart at any time.

Safety is checked after every step, liveness (everything paid for gets there, exactly once)
after bringing the whole world back up.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
import shutil
import sqlite3
import tempfile
from typing import Any

from hypothesis import event, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
import pytest

from custom_components.arcade_pay.delivery import (
    BACKOFF_MAX,
    AckResult,
    CreditDispatcher,
    DeliveryPlanner,
    Pulse,
    backoff,
)
from custom_components.arcade_pay.ledger import (
    LedgerError,
    Payment,
    PaymentLedger,
    PaymentSource,
    PaymentState,
)

ACK_CAB = "ack-cab"
SEED_CAB = "seed-cab"
CABINETS = (ACK_CAB, SEED_CAB)
SESSIONS = 8
NOON = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
START = NOON.timestamp()


def session(index: int) -> tuple[str, str, int]:
    """payment id, cabinet and credits of a Checkout session: always the same for one index."""
    return f"cs_{index}", (ACK_CAB if index % 2 == 0 else SEED_CAB), 1 + index % 3


def payment(index: int) -> Payment:
    payment_id, machine_id, credits = session(index)
    return Payment(
        payment_id=payment_id,
        machine_id=machine_id,
        credits=credits,
        amount=100 * credits,
        currency="usd",
        source=PaymentSource.STRIPE,
        received_at=NOON + timedelta(seconds=index),
        payment_intent=f"pi_{index}",
        event_id=f"evt_{index}",
        event_type="checkout.session.completed",
    )


class SimulatedCrash(Exception):
    """Home Assistant died right after MQTT accepted a pulse, before the ledger heard of it."""


@dataclass
class Cabinet:
    """A cabinet agent: applies each payment id once, acknowledges if it is that kind."""

    name: str
    acknowledges: bool
    online: bool = True  # The truth; the planner may not know it yet.
    applied: dict[str, int] = field(default_factory=dict)
    applied_count: Counter[str] = field(default_factory=Counter)
    acks: list[str] = field(default_factory=list)  # Queued on the way to Home Assistant.

    def receive(self, pulse: Pulse) -> None:
        if pulse.payment_id not in self.applied:
            self.applied[pulse.payment_id] = pulse.credits
            self.applied_count[pulse.payment_id] += 1
        if self.acknowledges:
            self.acks.append(pulse.payment_id)


class DeliveryMachine(RuleBasedStateMachine):
    """CreditDispatcher + PaymentLedger against brokers, cabinets, clocks and crashes."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="arcade_pay_delivery_"))
        self.loop = asyncio.new_event_loop()
        self.now = START
        self.mqtt_up = True
        self.crash_armed = False
        self.cabinets = {ACK_CAB: Cabinet(ACK_CAB, True), SEED_CAB: Cabinet(SEED_CAB, False)}
        # Model of what was paid, refunded and crashed on.
        self.paid: dict[str, tuple[str, int]] = {}
        self.refunded_undelivered: set[str] = set()  # Refunded before it was known delivered.
        self.refunded_delivered: set[str] = set()
        self.crashed: Counter[str] = Counter()  # Publishes MQTT accepted that the ledger never saw.
        # What the broker saw.
        self.accepted: Counter[str] = Counter()
        self.lost_offline: Counter[str] = Counter()
        self.violations: list[str] = []
        self.restarts = 0
        self.ledger = PaymentLedger(self.directory / "ledger.db")
        self.ledger.open()
        self.dispatcher = self._new_dispatcher()  # Cabinets' status unknown at first: not held.

    # --- the simulated world ----------------------------------------------------

    def _clock(self) -> float:
        return self.now

    async def _publish(self, pulse: Pulse) -> bool:
        if not self.mqtt_up:
            event("publish refused: MQTT down, not known to be")
            return False
        planner = self.dispatcher.planner
        if not planner.connected or planner.online.get(pulse.machine_id) is False:
            self.violations.append(f"published {pulse.payment_id} while it should have been held")
        paid = self.paid.get(pulse.payment_id)
        if paid != (pulse.machine_id, pulse.credits):
            self.violations.append(f"published {pulse} but paid {paid}")
        if pulse.payment_id in self.refunded_undelivered:
            self.violations.append(f"published {pulse.payment_id} after it was refunded and forgotten")
        self.accepted[pulse.payment_id] += 1
        cabinet = self.cabinets[pulse.machine_id]
        if cabinet.online:
            cabinet.receive(pulse)
        else:
            self.lost_offline[pulse.payment_id] += 1
            event(f"pulse to {pulse.machine_id} lost: cabinet offline, not known to be")
        if self.crash_armed:
            event("crash between a publish and its ledger write")
            self.crash_armed = False
            self.crashed[pulse.payment_id] += 1
            raise SimulatedCrash(pulse.payment_id)
        return True

    def _new_dispatcher(self) -> CreditDispatcher:
        dispatcher = CreditDispatcher(self.ledger, self._publish, self._clock)
        # The integration remembers which cabinets acknowledge (ledger cabinet memory).
        dispatcher.planner.acknowledges[ACK_CAB] = True
        return dispatcher

    def _run[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _guarded(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run a dispatcher call; a simulated crash kills the process, which then restarts."""
        try:
            self._run(_await(action))
        except SimulatedCrash:
            self._restart()

    def _restart(self) -> None:
        self.restarts += 1
        old = self.dispatcher.planner
        self.ledger.close()
        self.ledger = PaymentLedger(self.directory / "ledger.db")
        self.ledger.open()
        self.dispatcher = self._new_dispatcher()
        self.dispatcher.planner.connected = old.connected
        self.dispatcher.planner.online = dict(old.online)
        self._run(self.dispatcher.load(set(CABINETS)))
        # Outstanding pulses are due at once after a restart.
        for outstanding in self.dispatcher.planner.outstanding():
            if outstanding.next_attempt > self.now:
                self.violations.append(f"{outstanding.payment_id} not due at once after restart")
        self._guarded(self.dispatcher.flush)  # What async_start does.

    def _deliver_acks(self) -> None:
        cabinet = self.cabinets[ACK_CAB]
        while cabinet.acks:
            payment_id = cabinet.acks.pop(0)
            result = self._run(self.dispatcher.acknowledge(ACK_CAB, payment_id))
            assert result in {AckResult.ACKNOWLEDGED, AckResult.REPEATED}, (payment_id, result)

    # --- rules ----------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self._guarded(self.dispatcher.flush)

    @rule(index=st.integers(0, SESSIONS - 1))
    def pay(self, index: int) -> None:
        record = payment(index)
        new = record.payment_id not in self.paid
        self.paid.setdefault(record.payment_id, (record.machine_id, record.credits))
        result: list[bool] = []

        async def accept() -> None:
            result.append(await self.dispatcher.accept(record))

        self._guarded(accept)
        if result:  # Not when it crashed.
            assert result == [new]

    @rule(seconds=st.one_of(st.sampled_from([1.0, 2.0, 4.0, 30.0, 60.0, 61.0]), st.floats(0, 130)))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def tick(self) -> None:
        self._guarded(self.dispatcher.flush)

    @rule(noticed=st.booleans())
    def mqtt_down(self, noticed: bool) -> None:
        self.mqtt_up = False
        if noticed:
            self.dispatcher.planner.connected = False

    @rule()
    def mqtt_noticed_down(self) -> None:
        if not self.mqtt_up:
            self.dispatcher.planner.connected = False

    @rule()
    def mqtt_back(self) -> None:
        self.mqtt_up = True
        self.dispatcher.planner.connected = True
        self.dispatcher.planner.hurry()
        self._guarded(self.dispatcher.flush)

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_offline(self, machine_id: str) -> None:
        """The cabinet says goodbye (or its last will arrives at once)."""
        self.cabinets[machine_id].online = False
        self.dispatcher.planner.online[machine_id] = False

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_drops_off(self, machine_id: str) -> None:
        """The cabinet is gone; Home Assistant hears of it only after the keepalive."""
        self.cabinets[machine_id].online = False

    @rule(machine_id=st.sampled_from(CABINETS))
    def status_arrives(self, machine_id: str) -> None:
        """The retained status (or the last will) reaches Home Assistant."""
        if not self.mqtt_up:
            return
        online = self.cabinets[machine_id].online
        was = self.dispatcher.planner.online.get(machine_id)
        self.dispatcher.planner.online[machine_id] = online
        if online and was is not True:
            self.dispatcher.planner.hurry(machine_id)
            self._guarded(self.dispatcher.flush)

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_online(self, machine_id: str) -> None:
        self.cabinets[machine_id].online = True
        self.dispatcher.planner.online[machine_id] = True
        self.dispatcher.planner.hurry(machine_id)
        self._guarded(self.dispatcher.flush)

    @rule(lose=st.booleans())
    def deliver_acks(self, lose: bool) -> None:
        cabinet = self.cabinets[ACK_CAB]
        if lose:
            cabinet.acks.clear()
        elif self.mqtt_up and cabinet.online:
            self._deliver_acks()

    @rule(index=st.integers(0, SESSIONS - 1), machine_id=st.sampled_from([*CABINETS, "other-cab"]))
    def spoofed_ack(self, index: int, machine_id: str) -> None:
        """An acknowledgement from a cabinet the payment is not for changes nothing."""
        payment_id, owner, _ = session(index)
        if machine_id == owner:
            return
        before = self.ledger.payment(payment_id)
        assert self._run(self.dispatcher.acknowledge(machine_id, payment_id)) is AckResult.UNKNOWN
        assert self.ledger.payment(payment_id) == before

    @rule(index=st.integers(0, SESSIONS - 1))
    def refund(self, index: int) -> None:
        """Stripe refunds the whole payment; what was not delivered yet must never be sent."""
        record = payment(index)
        before = self.ledger.payment(record.payment_id)
        assert record.payment_intent is not None
        adjustment = self.ledger.record_refund(record.payment_intent, record.amount, f"evt_refund_{index}")
        if before is None:  # Kept, and applied when the payment comes: never sent (issue 8, item 5).
            assert adjustment is None
            self.refunded_undelivered.add(record.payment_id)
            return
        assert adjustment is not None
        self.dispatcher.forget(record.payment_id)  # What the hub does with every adjustment.
        if before.state is PaymentState.REFUNDED:
            return
        if before.state is PaymentState.PENDING or before.awaiting_ack:
            self.refunded_undelivered.add(record.payment_id)
        else:
            self.refunded_delivered.add(record.payment_id)
        assert self.ledger.state_of(record.payment_id) is PaymentState.REFUNDED

    @rule()
    def crash_on_next_publish(self) -> None:
        self.crash_armed = True

    @rule()
    def restart(self) -> None:
        self._restart()

    @rule()
    def check_eventually(self) -> None:
        """Bring everything back; every paid pulse must then get where it can, exactly once."""
        self.crash_armed = False
        # Only what is down comes back (and hurries its pulses): pulses to a cabinet that
        # stayed up are retried by their backoff alone.
        if not (self.mqtt_up and self.dispatcher.planner.connected):
            self.mqtt_back()
        for name, cabinet in self.cabinets.items():
            if not cabinet.online or self.dispatcher.planner.online.get(name) is not True:
                self.cabinet_online(name)
        self._run(self.dispatcher.flush())
        for _ in range(10):
            self._deliver_acks()
            self.now += BACKOFF_MAX + 1
            self._run(self.dispatcher.flush())
            self._deliver_acks()

        event("liveness checked" + (" after a restart" if self.restarts else ""))
        assert len(self.dispatcher.planner) == 0, self.dispatcher.planner.outstanding()
        assert self.ledger.undelivered() == []
        for payment_id, (machine_id, _credits) in self.paid.items():
            cabinet = self.cabinets[machine_id]
            applied = cabinet.applied_count[payment_id]
            state = self.ledger.state_of(payment_id)
            if payment_id in self.refunded_undelivered:
                assert applied <= 1
                assert state is PaymentState.REFUNDED, (payment_id, state)
                continue
            if payment_id in self.refunded_delivered:
                assert state is PaymentState.REFUNDED, (payment_id, state)
            if machine_id == ACK_CAB:
                assert applied == 1, (payment_id, applied)
                if payment_id not in self.refunded_delivered:
                    assert state is PaymentState.ACKNOWLEDGED, (payment_id, state)
                continue
            # A cabinet that never acknowledges: a pulse MQTT accepted while it was offline is
            # lost, and nobody can know. Otherwise it was applied, and sent exactly once.
            if payment_id not in self.refunded_delivered:
                assert state is PaymentState.PUBLISHED, (payment_id, state)
            lost = self.lost_offline[payment_id]
            if self.crashed[payment_id]:
                assert applied == 1 or lost >= 1, (payment_id, applied, lost)
                continue
            assert self.accepted[payment_id] == 1, (payment_id, self.accepted[payment_id])
            assert (applied, lost) in {(1, 0), (0, 1)}, (payment_id, applied, lost)

    # --- safety, after every step ----------------------------------------------

    @invariant()
    def nothing_unpaid_or_doubled(self) -> None:
        assert not self.violations, self.violations
        for name, cabinet in self.cabinets.items():
            for payment_id, credits in cabinet.applied.items():
                assert self.paid.get(payment_id) == (name, credits), (name, payment_id, credits)
            assert all(count == 1 for count in cabinet.applied_count.values()), cabinet.applied_count
            assert sum(cabinet.applied.values()) == sum(self.paid[p][1] for p in cabinet.applied)

    @invariant()
    def seed_pulses_are_sent_once(self) -> None:
        for payment_id, (machine_id, _) in self.paid.items():
            if machine_id == SEED_CAB:
                limit = 1 + self.crashed[payment_id]
                assert self.accepted[payment_id] <= limit, (payment_id, self.accepted[payment_id])

    @invariant()
    def planner_follows_the_ledger(self) -> None:
        outstanding = {o.payment_id for o in self.dispatcher.planner.outstanding()}
        assert outstanding == {u.payment_id for u in self.ledger.undelivered()}
        for payment_id in outstanding:
            assert self.dispatcher.pulse(payment_id) is not None, payment_id
        assert not any(o.in_flight for o in self.dispatcher.planner.outstanding())

    def teardown(self) -> None:
        self.ledger.close()
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)


async def _await(action: Callable[[], Awaitable[object]]) -> None:
    await action()


DeliveryMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_delivery_state_machine = DeliveryMachine.TestCase


# --- the planner, by example ----------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff(0) == 2.0
    assert backoff(1) == 2
    assert backoff(7) == 60
    assert backoff(1000) == BACKOFF_MAX


@given(attempts=st.integers(0, 1000))
def test_backoff_is_monotonic_and_bounded(attempts: int) -> None:
    assert 2.0 <= backoff(attempts) <= BACKOFF_MAX
    assert backoff(attempts) <= backoff(attempts + 1)


def test_backoff_does_not_overflow_after_many_attempts() -> None:
    assert backoff(1025) == BACKOFF_MAX


def test_a_pulse_that_is_never_acknowledged_keeps_being_retried(tmp_path: Path) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        ledger.record(payment(0))
        ledger.record(payment(1))
        # 1024 publishes of cs_0 went unacknowledged (the count survives restarts in the ledger).
        ledger.mark_published("cs_0", NOON, awaiting_ack=True)
        with closing(sqlite3.connect(ledger.path)) as db:
            db.execute("UPDATE payments SET attempts = 1024 WHERE payment_id = 'cs_0'")
            db.commit()
        sent: list[str] = []

        async def publish(pulse: Pulse) -> bool:
            sent.append(pulse.payment_id)
            return True

        now = START
        dispatcher = CreditDispatcher(ledger, publish, lambda: now)
        dispatcher.planner.acknowledges[ACK_CAB] = True
        asyncio.run(dispatcher.load(set(CABINETS)))
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_0", "cs_1"]  # Actual: OverflowError after publishing cs_0.
        now += BACKOFF_MAX
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_0", "cs_1", "cs_0"]
    finally:
        ledger.close()


@pytest.mark.parametrize("failing", ["publish", "ledger"])
def test_an_exception_does_not_strand_the_rest_of_the_batch(tmp_path: Path, failing: str) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        now = START
        sent: list[str] = []
        raised: list[str] = []

        async def publish(pulse: Pulse) -> bool:
            if failing == "publish" and not raised:
                raised.append(pulse.payment_id)
                raise RuntimeError("MQTT client bug")
            sent.append(pulse.payment_id)
            return True

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            if failing == "ledger" and function == ledger.mark_published and not raised:
                raised.append(args[0])
                raise LedgerError("disk full")
            return function(*args)

        dispatcher = CreditDispatcher(ledger, publish, lambda: now, run_blocking)
        dispatcher.planner.connected = False  # Both wait for MQTT...
        asyncio.run(dispatcher.accept(payment(1)))
        asyncio.run(dispatcher.accept(payment(3)))
        dispatcher.planner.connected = True  # ...which comes back.
        with pytest.raises((RuntimeError, LedgerError)):
            asyncio.run(dispatcher.flush())
        now += BACKOFF_MAX + 1
        asyncio.run(dispatcher.flush())
        assert "cs_3" in sent  # Actual: cs_3 is still in flight and never sent.
        assert not any(o.in_flight for o in dispatcher.planner.outstanding())
    finally:
        ledger.close()


def test_take_due_never_hands_out_a_pulse_in_flight_twice() -> None:
    planner = DeliveryPlanner(acknowledges={ACK_CAB: True})
    planner.add("cs_1", ACK_CAB)
    planner.add("cs_2", SEED_CAB)
    assert {o.payment_id for o in planner.take_due(0.0)} == {"cs_1", "cs_2"}
    assert planner.take_due(0.0) == []
    assert planner.take_due(1e9) == []
    assert planner.take_due(1e9, "cs_1") == []
    planner.hurry()
    assert planner.take_due(0.0) == []  # Hurrying does not release what is in flight.
    # Adding again (a retried webhook) neither resets nor releases it.
    planner.add("cs_1", ACK_CAB)
    assert planner.take_due(0.0, "cs_1") == []

    assert not planner.published("cs_1", 10.0)  # Awaits its acknowledgement.
    assert planner.published("cs_2", 10.0)  # Delivered: gone.
    assert "cs_2" not in planner
    assert planner.take_due(11.0) == []
    [again] = planner.take_due(10.0 + backoff(1))
    assert again.payment_id == "cs_1"
    assert planner.take_due(1e9) == []
    planner.failed("cs_1", 20.0)
    assert planner.take_due(20.0) == []
    assert [o.payment_id for o in planner.take_due(20.0 + backoff(1))] == ["cs_1"]


def test_held_pulses_are_not_handed_out() -> None:
    planner = DeliveryPlanner()
    planner.add("cs_1", ACK_CAB)
    planner.connected = False
    assert planner.take_due(0.0) == []
    planner.connected = True
    planner.online[ACK_CAB] = False
    assert planner.take_due(0.0) == []
    planner.online[ACK_CAB] = None  # Unknown is not offline.
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]


def test_next_wakeup_ignores_held_and_in_flight_pulses() -> None:
    planner = DeliveryPlanner(acknowledges={ACK_CAB: True, SEED_CAB: True})
    assert planner.next_wakeup() is None
    planner.add("cs_1", ACK_CAB, due_at=50.0)
    planner.add("cs_2", SEED_CAB, due_at=30.0)
    assert planner.next_wakeup() == 30.0

    planner.online[SEED_CAB] = False
    assert planner.next_wakeup() == 50.0
    planner.connected = False
    assert planner.next_wakeup() is None
    planner.connected = True
    planner.online[SEED_CAB] = True

    [in_flight] = planner.take_due(40.0)
    assert in_flight.payment_id == "cs_2"
    assert planner.next_wakeup() == 50.0  # cs_2 is in flight: not a reason to wake up.
    planner.published("cs_2", 40.0)
    assert planner.next_wakeup() == 40.0 + backoff(1)
    planner.online[ACK_CAB] = False
    planner.online[SEED_CAB] = False
    assert planner.next_wakeup() is None


def test_hurry_makes_one_cabinets_pulses_or_all_due_now() -> None:
    planner = DeliveryPlanner()
    planner.add("cs_1", ACK_CAB, due_at=500.0)
    planner.add("cs_2", SEED_CAB, due_at=500.0)
    planner.hurry(ACK_CAB)
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]
    planner.hurry()
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_2"]


def test_acknowledged_and_forgotten_pulses_are_gone() -> None:
    planner = DeliveryPlanner(acknowledges={ACK_CAB: True})
    planner.add("cs_1", ACK_CAB)
    planner.add("cs_2", ACK_CAB)
    assert planner.acknowledged("cs_1") is not None
    assert planner.acknowledged("cs_1") is None
    planner.forget("cs_2")
    assert len(planner) == 0
    assert planner.take_due(0.0) == []
    assert not planner.published("cs_2", 0.0)


@pytest.mark.parametrize("attempts", [0, 1, 5])
def test_load_makes_pulses_due_at_once(tmp_path: Path, attempts: int) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        ledger.record(payment(0))
        for _ in range(attempts):
            ledger.mark_published("cs_0", NOON, awaiting_ack=True)
        sent: list[Pulse] = []

        async def publish(pulse: Pulse) -> bool:
            sent.append(pulse)
            return True

        dispatcher = CreditDispatcher(ledger, publish, lambda: START)
        dispatcher.planner.acknowledges[ACK_CAB] = True
        asyncio.run(dispatcher.load({ACK_CAB}))
        assert dispatcher.planner.next_wakeup() == 0.0
        asyncio.run(dispatcher.flush())
        assert [p.payment_id for p in sent] == ["cs_0"]
        assert dispatcher.planner.outstanding()[0].attempts == attempts + 1
    finally:
        ledger.close()
