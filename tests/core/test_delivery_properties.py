"""Exactly-once delivery, as a state machine: the real dispatcher and ledger in a simulated world.

The world has a clock, a broker that can go down (with Home Assistant noticing at once or
only later), and two cabinets that can go offline (noticed at once, or only when their
status arrives): "ack-cab" acknowledges every pulse it receives, "older-cab" never does.
Pulses the broker accepts for a cabinet that is offline are lost, like QoS 1 to a
non-persistent session. Acknowledgements can be lost too, the process can crash between a
publish and its ledger write, and Home Assistant can restart at any time.

The world also has acknowledgements of pulses that were never sent (a claim is not proof),
ledger writes that fail after the broker took a pulse (retried, never the publish), webhook
clients that go away after the payment was recorded (Stripe delivers it again) and the bound on
re-sends to a cabinet whose acks are lost (given up on, sent again when it says it is online).

The broker can also go silent (no PUBACK within Home Assistant's wait, so the publish is
unconfirmed): either it hangs and the MQTT client holds the message, sending it when the broker
answers again or MQTT reconnects (gone with the process on a restart), or it takes the message and
only the PUBACK is lost. An older cabinet's pulse is never published twice by one process; a
restart may send an unconfirmed one again (the documented at-least-once boundary).

Automatic refunds of undelivered credits (core/undelivered_refunds.py) run against a model of
Stripe that can be down or lose the refund's answer, and the process can die between Stripe's
refund and its ledger write: a payment marked for a refund is never published, Stripe refunds it
once, and once Stripe answers again every refund left half-way is settled in the ledger.

Safety is checked after every step, liveness (everything paid for gets there, exactly once)
after bringing the whole world back up.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
import shutil
import sqlite3
import tempfile
from typing import Any

from hypothesis import event, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
import pytest

from custom_components.arcade_pay.core.delivery import AckResult, CreditDispatcher, PublishResult, Pulse
from custom_components.arcade_pay.core.delivery_planner import DeliveryPlanner
from custom_components.arcade_pay.core.ledger import (
    Adjustment,
    LedgerError,
    PaymentLedger,
    PaymentState,
)
from custom_components.arcade_pay.core.publish_notes import PublishNotes
from custom_components.arcade_pay.core.resend import BACKOFF_MAX, MAX_SENDS_WITHOUT_ACK, backoff
from custom_components.arcade_pay.core.stripe_gateway import StripeConnectionError, StripeGatewayError
from custom_components.arcade_pay.core.undelivered_refunds import UndeliveredRefunds, refund_key

from .helpers import ACK_CAB, CABINETS, NOON, OLDER_CAB, START, payment, pulse, session

SESSIONS = 8


class SimulatedCrash(Exception):
    """Home Assistant died right after MQTT accepted a pulse (or Stripe a refund), before the
    ledger heard of it."""


@dataclass
class StripeModel:
    """Stripe's refunds, as Arcade Pay can see them: one refund at most refunds what is left."""

    down: bool = False
    lose_next_answer: bool = False
    refunded: dict[str, int] = field(default_factory=dict)  # by payment intent: the total
    ours: Counter[str] = field(default_factory=Counter)  # refunds Arcade Pay created
    by_owner: Counter[str] = field(default_factory=Counter)  # refunds from the dashboard
    answers: dict[str, bool] = field(default_factory=dict)  # idempotency key: refunded (or refused)
    bad_keys: list[str] = field(default_factory=list)
    refunded_now: list[str] = field(default_factory=list)  # for the machine's model

    async def refund(self, payment_intent: str, idempotency_key: str) -> None:
        index = int(payment_intent.removeprefix("pi_"))
        if idempotency_key != refund_key(session(index)[0]):
            self.bad_keys.append(idempotency_key)
        if self.down:
            raise StripeConnectionError("Stripe is down")
        if idempotency_key not in self.answers:  # Else the saved answer of the first request.
            amount = payment(index).amount
            done = self.refunded.get(payment_intent, 0) >= amount
            self.answers[idempotency_key] = not done
            if not done:
                self.refunded[payment_intent] = amount
                self.ours[payment_intent] += 1
                self.refunded_now.append(session(index)[0])
        if self.lose_next_answer:
            self.lose_next_answer = False
            event("refund's answer lost")
            raise StripeConnectionError("answer lost")
        if not self.answers[idempotency_key]:
            raise StripeGatewayError("Charge has already been refunded.")

    async def refunded_amount(self, payment_intent: str) -> int:
        if self.down:
            raise StripeConnectionError("Stripe is down")
        return self.refunded.get(payment_intent, 0)


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
        self.write_failures_armed = 0  # mark_published calls that fail (SQLite write lock held).
        self.disconnect_armed = False  # The next record commits, then its caller is cancelled.
        self.unanswered: set[str] = set()  # Deliveries Stripe got no answer for: it sends them again.
        # Sends of an ack-cab pulse since it was last resumed (resend.py's bound).
        self.sends_this_round: Counter[str] = Counter()
        self.cabinets = {ACK_CAB: Cabinet(ACK_CAB, True), OLDER_CAB: Cabinet(OLDER_CAB, False)}
        # Model of what was paid, refunded and crashed on.
        self.paid: dict[str, tuple[str, int]] = {}
        self.refunded_undelivered: set[str] = set()  # Refunded before it was known delivered.
        self.refunded_delivered: set[str] = set()
        self.crashed: Counter[str] = Counter()  # Publishes MQTT accepted that the ledger never saw.
        # Sends since the ledger last noted one: all of them are sent again after a restart.
        self.unnoted_sends: Counter[str] = Counter()
        # What the broker saw.
        self.accepted: Counter[str] = Counter()
        self.lost_offline: Counter[str] = Counter()
        self.violations: list[str] = []
        self.restarts = 0
        # The broker gives no PUBACK: "holds" (hung: the MQTT client keeps the message) or "took"
        # (it delivered the message, only the PUBACK is lost); None: it answers.
        self.broker_silent: str | None = None
        self.client_holds: list[Pulse] = []  # unconfirmed, in the MQTT client: sent when it can
        self.process_sends: Counter[str] = Counter()  # publishes MQTT took, in this process
        self.handed_to_mqtt: set[str] = set()  # ever (not refused), in any process
        self.ever_unconfirmed: set[str] = set()
        self.delivered_unconfirmed: set[str] = set()  # reached the broker through an unconfirmed publish
        self.resent_unconfirmed: Counter[str] = Counter()  # sent again by a restart, maybe delivered
        self.confirming_payments = 0
        self.stripe = StripeModel()
        self.refund_crash_armed = False  # The next refund's ledger write never happens.
        self.ledger = PaymentLedger(self.directory / "ledger.db")
        self.ledger.open()
        self.dispatcher = self._new_dispatcher()  # Cabinets' status unknown at first: not held.
        self.refunds = self._new_refunds()

    # --- the simulated world ----------------------------------------------------

    def _clock(self) -> float:
        return self.now

    async def _publish(self, pulse: Pulse) -> bool | PublishResult:
        if not self.mqtt_up:
            event("publish refused: MQTT down, not known to be")
            return False
        self.handed_to_mqtt.add(pulse.payment_id)
        self.process_sends[pulse.payment_id] += 1
        if pulse.machine_id == OLDER_CAB and self.process_sends[pulse.payment_id] > 1:
            self.violations.append(f"{pulse.payment_id} published twice by one process")
        if self.broker_silent == "holds":
            event("publish unconfirmed: the MQTT client holds it")
            self.sends_this_round[pulse.payment_id] += 1
            self.unnoted_sends[pulse.payment_id] += 1
            self.ever_unconfirmed.add(pulse.payment_id)
            self.client_holds.append(pulse)
            return self._after_publish(pulse, PublishResult.UNCONFIRMED)
        planner = self.dispatcher.planner
        if not planner.mqtt_connected or planner.cabinet_online(pulse.machine_id) is False:
            self.violations.append(f"published {pulse.payment_id} while it should have been held")
        paid = self.paid.get(pulse.payment_id)
        if paid != (pulse.machine_id, pulse.credits):
            self.violations.append(f"published {pulse} but paid {paid}")
        if pulse.payment_id in self.refunded_undelivered:
            self.violations.append(f"published {pulse.payment_id} after it was refunded and forgotten")
        record = self.ledger.payment(pulse.payment_id)
        if record is not None and record.being_refunded:
            self.violations.append(f"published {pulse.payment_id} while it is being refunded")
        self.sends_this_round[pulse.payment_id] += 1
        self.unnoted_sends[pulse.payment_id] += 1
        self._broker_takes(pulse)
        if self.broker_silent == "took":
            event("publish unconfirmed: the broker took it, its PUBACK is lost")
            self.ever_unconfirmed.add(pulse.payment_id)
            self.delivered_unconfirmed.add(pulse.payment_id)
            return self._after_publish(pulse, PublishResult.UNCONFIRMED)
        return self._after_publish(pulse, PublishResult.CONFIRMED)

    def _after_publish(self, pulse: Pulse, result: PublishResult) -> PublishResult:
        if self.crash_armed:
            event("crash between a publish and its ledger write")
            self.crash_armed = False
            self.crashed[pulse.payment_id] += 1
            raise SimulatedCrash(pulse.payment_id)
        return result

    def _broker_takes(self, pulse: Pulse) -> None:
        self.accepted[pulse.payment_id] += 1
        cabinet = self.cabinets[pulse.machine_id]
        if cabinet.online:
            cabinet.receive(pulse)
        else:
            self.lost_offline[pulse.payment_id] += 1
            event(f"pulse to {pulse.machine_id} lost: cabinet offline, not known to be")

    def _broker_answers(self) -> None:
        """The broker answers again (or MQTT reconnected): the MQTT client sends what it held, first."""
        self.broker_silent = None
        for held in self.client_holds:
            event("the MQTT client sends a message it held")
            self._broker_takes(held)
            self.delivered_unconfirmed.add(held.payment_id)
        self.client_holds.clear()

    async def _run_blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.refund_crash_armed and function == self.ledger.record_refund:
            self.refund_crash_armed = False
            event("crash between Stripe's refund and its ledger write")
            raise SimulatedCrash(args[0])
        if self.write_failures_armed and function == self.ledger.mark_published:
            self.write_failures_armed -= 1
            event("ledger write failed after a publish")
            raise LedgerError("database is locked")
        result = function(*args)
        if function == self.ledger.mark_published:
            self.unnoted_sends[args[0]] = 0
        if self.disconnect_armed and function == self.ledger.record:
            self.disconnect_armed = False
            event("client went away after the record committed")
            raise asyncio.CancelledError
        return result

    def _new_dispatcher(self) -> CreditDispatcher:
        dispatcher = CreditDispatcher(self.ledger, self._publish, self._clock, self._run_blocking)
        # The integration remembers which cabinets acknowledge (ledger cabinet memory).
        dispatcher.planner.set_acknowledges(ACK_CAB, True)
        return dispatcher

    def _new_refunds(self) -> UndeliveredRefunds:
        dispatcher = self.dispatcher

        def applied(adjustment: Adjustment) -> None:  # What the hub does with every adjustment.
            dispatcher.adjust(adjustment.payment.payment_id, adjustment.credits_left)

        return UndeliveredRefunds(
            dispatcher, lambda: self.stripe, self._run_blocking, applied, lambda _: None
        )

    def _stripe_refunds_noted(self) -> None:
        """Refunds Stripe just made: their credits must never be sent from now on."""
        for payment_id in self.stripe.refunded_now:
            self.refunded_undelivered.add(payment_id)
        self.stripe.refunded_now.clear()

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
        # The MQTT client ends with the process: what it held is lost, the ledger sends it again.
        self.client_holds.clear()
        self.process_sends.clear()
        unconfirmed = {u.payment_id for u in self.ledger.undelivered() if u.unconfirmed}
        for payment_id in (unconfirmed | self.dispatcher.unnoted()) & self.delivered_unconfirmed:
            self.resent_unconfirmed[payment_id] += 1  # The at-least-once boundary.
        # Publishes the ledger never noted are sent again after a restart, like one a crash cut
        # off: as many as there were (several, when the ledger write failed several times).
        for payment_id in self.dispatcher.unnoted():
            self.crashed[payment_id] += max(1, self.unnoted_sends[payment_id])
        self.unnoted_sends.clear()
        old = self.dispatcher.planner
        self.ledger.close()
        self.ledger = PaymentLedger(self.directory / "ledger.db")
        self.ledger.open()
        self.dispatcher = self._new_dispatcher()
        self.refunds = self._new_refunds()
        self.dispatcher.planner.set_mqtt_connected(old.mqtt_connected)
        for machine_id in CABINETS:
            self.dispatcher.planner.set_cabinet_online(machine_id, old.cabinet_online(machine_id))
        self._run(self.dispatcher.load(set(CABINETS)))
        # Outstanding pulses are due at once after a restart.
        for outstanding in self.dispatcher.planner.outstanding():
            if outstanding.next_attempt > self.now:
                self.violations.append(f"{outstanding.payment_id} not due at once after restart")
        self._guarded(self.dispatcher.flush)  # What async_start does,
        self._finish_refunds()  # and what its background task does.

    def _deliver_acks(self) -> None:
        cabinet = self.cabinets[ACK_CAB]
        while cabinet.acks:
            payment_id = cabinet.acks.pop(0)
            try:
                result = self._run(self.dispatcher.acknowledge(ACK_CAB, payment_id))
            except SimulatedCrash as crash:
                # Acknowledged (noted first), then the new round of sends it started crashed the
                # process: that round counts (its first send did happen), and the process restarts.
                # Hypothesis finds this when the ack path is not guarded.
                self._resumed(ACK_CAB)
                self.sends_this_round[crash.args[0]] += 1
                self._restart()
                continue
            # Not sent: only by a process that crashed before noting it, since restarted.
            assert result in {AckResult.ACKNOWLEDGED, AckResult.REPEATED, AckResult.NOT_SENT}, result
            if result is AckResult.NOT_SENT:
                assert self.crashed[payment_id], payment_id
            if result is AckResult.ACKNOWLEDGED:  # Its acks get through: a new round for all.
                self._resumed(ACK_CAB)

    def _resumed(self, machine_id: str) -> None:
        for payment_id, (owner, _) in self.paid.items():
            if owner == machine_id:
                self.sends_this_round[payment_id] = 0

    def _says_online(self, machine_id: str) -> None:
        """Its status says online (every connect): what the hub does with that."""
        self.dispatcher.planner.set_cabinet_online(machine_id, True)
        self.dispatcher.planner.hurry(machine_id)
        if self.dispatcher.planner.resume(machine_id):
            event(f"pulses to {machine_id} given up on get another round")
            self._resumed(machine_id)
        self._guarded(self.dispatcher.flush)

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

        try:
            self._guarded(accept)
        except asyncio.CancelledError:
            self.unanswered.add(record.payment_id)
            return
        self.unanswered.discard(record.payment_id)
        if result:  # Not when it crashed.
            assert result == [new]

    @rule(index=st.integers(0, SESSIONS - 1))
    def client_goes_away_mid_record(self, index: int) -> None:
        """The payment is recorded, then the handler is cancelled before it tracks it."""
        self.disconnect_armed = True
        self.pay(index)
        self.disconnect_armed = False

    @rule(failures=st.integers(1, 4))
    def ledger_writes_fail_after_publish(self, failures: int) -> None:
        self.write_failures_armed = failures

    @rule(index=st.integers(0, SESSIONS - 1))
    def ack_of_a_pulse_never_sent(self, index: int) -> None:
        """A cabinet (an older one too) "acknowledges" a payment whose pulse was never sent: a
        claim without an ack changes nothing, and teaches nothing."""
        payment_id, machine_id, _ = session(index)
        if (
            payment_id not in self.paid
            or self.accepted[payment_id]
            or payment_id in self.handed_to_mqtt
            or payment_id in self.refunded_undelivered
        ):
            return
        before = self.ledger.payment(payment_id)
        assert before is not None
        assert before.state is PaymentState.PENDING
        believed = {m: self.dispatcher.planner.acknowledges(m) for m in CABINETS}
        assert self._run(self.dispatcher.acknowledge(machine_id, payment_id)) is AckResult.NOT_SENT
        assert self.ledger.payment(payment_id) == before
        assert {m: self.dispatcher.planner.acknowledges(m) for m in CABINETS} == believed

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
            self.dispatcher.planner.set_mqtt_connected(False)

    @rule()
    def mqtt_noticed_down(self) -> None:
        if not self.mqtt_up:
            self.dispatcher.planner.set_mqtt_connected(False)

    @rule(took=st.booleans())
    def broker_goes_silent(self, took: bool) -> None:
        """No PUBACK within Home Assistant's wait: the broker hangs, or only its PUBACKs are lost."""
        if self.mqtt_up:
            self.broker_silent = "took" if took else "holds"

    @rule(index=st.integers(0, SESSIONS - 1), took=st.booleans())
    def pay_while_the_broker_is_silent(self, index: int, took: bool) -> None:
        self.broker_goes_silent(took)
        self.pay(index)

    @rule()
    def broker_answers_again(self) -> None:
        if self.mqtt_up:
            self._broker_answers()

    @rule()
    def mqtt_back(self) -> None:
        self.mqtt_up = True
        self._broker_answers()  # A new connection: the client sends what it held first.
        self.dispatcher.planner.set_mqtt_connected(True)
        self.dispatcher.planner.hurry()
        self._guarded(self.dispatcher.flush)

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_offline(self, machine_id: str) -> None:
        """The cabinet says goodbye (or its last will arrives at once)."""
        self.cabinets[machine_id].online = False
        self.dispatcher.planner.set_cabinet_online(machine_id, False)

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_drops_off(self, machine_id: str) -> None:
        """The cabinet is gone; Home Assistant hears of it only after the keepalive."""
        self.cabinets[machine_id].online = False

    @rule(machine_id=st.sampled_from(CABINETS))
    def status_arrives(self, machine_id: str) -> None:
        """The retained status (or the last will) reaches Home Assistant."""
        if not self.mqtt_up or self.broker_silent == "holds":
            return
        online = self.cabinets[machine_id].online
        was = self.dispatcher.planner.cabinet_online(machine_id)
        self.dispatcher.planner.set_cabinet_online(machine_id, online)
        if online and was is not True:
            self._says_online(machine_id)

    @rule(machine_id=st.sampled_from(CABINETS))
    def cabinet_online(self, machine_id: str) -> None:
        self.cabinets[machine_id].online = True
        self._says_online(machine_id)

    @rule(lose=st.booleans())
    def deliver_acks(self, lose: bool) -> None:
        cabinet = self.cabinets[ACK_CAB]
        if lose:
            cabinet.acks.clear()
        elif self.mqtt_up and cabinet.online and self.broker_silent != "holds":
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
        if self.stripe.refunded.get(record.payment_intent, 0) < record.amount:  # Else: the event of ours.
            self.stripe.refunded[record.payment_intent] = record.amount
            self.stripe.by_owner[record.payment_intent] += 1
        adjustment = self.ledger.record_refund(record.payment_intent, record.amount, f"evt_refund_{index}")
        if before is None:  # Kept, and applied when the payment comes: never sent.
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

    @rule(
        data=st.data(),
        fault=st.sampled_from(["none", "answer lost", "crash before the ledger write", "stripe down"]),
    )
    def refund_undelivered(self, data: st.DataObject, fault: str) -> None:
        """Housekeeping refunds a payment whose credits are outstanding (overdue, say)."""
        outstanding = sorted(o.payment_id for o in self.dispatcher.planner.outstanding())
        if not outstanding:
            return
        withdrawn = self.dispatcher.withdraw(data.draw(st.sampled_from(outstanding)))
        if withdrawn is None:
            return
        event(f"refund of undelivered credits, fault: {fault}")
        self.stripe.lose_next_answer = fault == "answer lost"
        self.refund_crash_armed = fault == "crash before the ledger write"
        if fault == "stripe down":
            self.stripe.down = True
        try:
            self._guarded(lambda: self.refunds.refund(withdrawn, datetime.fromtimestamp(self.now, UTC)))
        finally:
            self._stripe_refunds_noted()
            self.stripe.lose_next_answer = self.refund_crash_armed = False

    def _finish_refunds(self) -> None:
        async def finish_all() -> None:
            for record in await self.refunds.unfinished():
                await self.refunds.finish(record)

        try:
            self._guarded(finish_all)
        finally:
            self._stripe_refunds_noted()

    @rule()
    def housekeeping_finishes_refunds(self) -> None:
        self._finish_refunds()

    @rule(down=st.booleans())
    def stripe_up_or_down(self, down: bool) -> None:
        self.stripe.down = down

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
        self.write_failures_armed = 0
        self.stripe.down = False
        self._finish_refunds()  # The next housekeeping run, with Stripe answering.
        assert self.ledger.refunds_started() == []
        # Only what is down comes back (and hurries its pulses): pulses to a cabinet that
        # stayed up are retried by their backoff alone, and by another round once given up on,
        # when the cabinet reconnects (it says online again).
        if not (self.mqtt_up and self.dispatcher.planner.mqtt_connected):
            self.mqtt_back()
        self._broker_answers()
        for name, cabinet in self.cabinets.items():
            if (
                not cabinet.online
                or self.dispatcher.planner.cabinet_online(name) is not True
                or self.dispatcher.planner.given_up(name)
            ):
                self.cabinet_online(name)
        for payment_id in sorted(self.unanswered):  # Stripe delivers what it had no answer for.
            self.pay(int(payment_id.removeprefix("cs_")))
        self._run(self.dispatcher.flush())
        if self.dispatcher.awaiting_broker():  # The next payment's confirmed publish proves them.
            event("unconfirmed pulses proven by a later payment")
            self.pay(SESSIONS + self.confirming_payments)
            self.confirming_payments += 1
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
                if payment_id in self.ever_unconfirmed:
                    continue  # Refunded in full while unconfirmed: the money went back instead.
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
            if self.crashed[payment_id] or self.resent_unconfirmed[payment_id]:
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
    def stripe_refunds_each_payment_once_and_the_ledger_no_more(self) -> None:
        assert not self.stripe.bad_keys, self.stripe.bad_keys
        for intent in set(self.stripe.ours) | set(self.stripe.by_owner):
            assert self.stripe.ours[intent] + self.stripe.by_owner[intent] == 1, intent
        marked = {record.payment_id for record in self.ledger.refunds_started()}
        assert not marked & {o.payment_id for o in self.dispatcher.planner.outstanding()}, marked
        for index in range(SESSIONS):
            record = self.ledger.payment(session(index)[0])
            if record is not None:
                assert record.refunded_amount <= self.stripe.refunded.get(f"pi_{index}", 0), record

    @invariant()
    def older_cabinet_pulses_are_sent_once(self) -> None:
        for payment_id, (machine_id, _) in self.paid.items():
            if machine_id == OLDER_CAB:
                limit = 1 + self.crashed[payment_id] + self.resent_unconfirmed[payment_id]
                assert self.accepted[payment_id] <= limit, (payment_id, self.accepted[payment_id])

    @invariant()
    def resends_are_bounded(self) -> None:
        for payment_id, (machine_id, _) in self.paid.items():
            if machine_id == ACK_CAB:
                limit = MAX_SENDS_WITHOUT_ACK + self.crashed[payment_id]
                assert self.sends_this_round[payment_id] <= limit, (payment_id, self.sends_this_round)

    @invariant()
    def older_cabinet_never_counts_as_acknowledging(self) -> None:
        assert not self.dispatcher.planner.acknowledges(OLDER_CAB)

    @invariant()
    def planner_follows_the_ledger(self) -> None:
        outstanding = {o.payment_id for o in self.dispatcher.planner.outstanding()}
        undelivered = {u.payment_id for u in self.ledger.undelivered()}
        assert outstanding <= undelivered
        # Owed per the ledger but not tracked: sent, not noted yet; or cut off after recording,
        # until Stripe delivers it again.
        assert undelivered - outstanding <= self.dispatcher.unnoted() | self.unanswered
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


def test_a_pulse_sent_1024_times_is_given_up_on_and_resumes_without_overflow(tmp_path: Path) -> None:
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
        dispatcher.planner.set_acknowledges(ACK_CAB, True)
        asyncio.run(dispatcher.load(set(CABINETS)))
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_1"]  # cs_0 was given up on long ago: not sent again after a restart.
        assert dispatcher.given_up_credits(ACK_CAB) == 1
        assert dispatcher.planner.resume(ACK_CAB)  # The cabinet is back online.
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_1", "cs_0"]  # Before the bound: OverflowError after publishing cs_0.
        now += BACKOFF_MAX
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_1", "cs_0", "cs_0"]
    finally:
        ledger.close()


def test_a_pulse_is_sent_at_most_max_sends_without_ack_in_a_row() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, True)
    planner.add(pulse("cs_0", ACK_CAB))
    now, sends = 0.0, 0
    for _ in range(100):
        for due in planner.take_due(now):
            sends += 1
            planner.published(due.payment_id, now)
        now += BACKOFF_MAX
    assert sends == MAX_SENDS_WITHOUT_ACK
    assert planner.next_wakeup() is None
    assert [o.payment_id for o in planner.given_up(ACK_CAB)] == ["cs_0"]
    planner.hurry()  # MQTT coming back does not change that; the cabinet coming back does.
    assert planner.take_due(now) == []
    assert not planner.resume(OLDER_CAB)
    assert planner.resume(ACK_CAB)
    assert [o.payment_id for o in planner.take_due(now)] == ["cs_0"]
    assert planner.given_up() == []


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
        dispatcher.planner.set_mqtt_connected(False)  # Both wait for MQTT...
        asyncio.run(dispatcher.accept(payment(1)))
        asyncio.run(dispatcher.accept(payment(3)))
        dispatcher.planner.set_mqtt_connected(True)  # ...which comes back.
        if failing == "publish":
            with pytest.raises(RuntimeError):
                asyncio.run(dispatcher.flush())
        else:  # A failed ledger write is the dispatcher's to retry: nothing escapes.
            asyncio.run(dispatcher.flush())
        now += BACKOFF_MAX + 1
        asyncio.run(dispatcher.flush())
        assert "cs_3" in sent  # Not left in flight for good.
        assert not any(o.in_flight for o in dispatcher.planner.outstanding())
        assert sent.count("cs_1") == 1
    finally:
        ledger.close()


def test_take_due_never_hands_out_a_pulse_in_flight_twice() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, True)
    planner.add(pulse("cs_1", ACK_CAB))
    planner.add(pulse("cs_2", OLDER_CAB))
    assert {o.payment_id for o in planner.take_due(0.0)} == {"cs_1", "cs_2"}
    assert planner.take_due(0.0) == []
    assert planner.take_due(1e9) == []
    assert planner.take_due(1e9, "cs_1") == []
    planner.hurry()
    assert planner.take_due(0.0) == []  # Hurrying does not release what is in flight.
    # Adding again (a retried webhook) neither resets nor releases it.
    planner.add(pulse("cs_1", ACK_CAB))
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
    planner.add(pulse("cs_1", ACK_CAB))
    planner.set_mqtt_connected(False)
    assert planner.take_due(0.0) == []
    planner.set_mqtt_connected(True)
    planner.set_cabinet_online(ACK_CAB, False)
    assert planner.take_due(0.0) == []
    planner.set_cabinet_online(ACK_CAB, None)  # Unknown is not offline.
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]


def test_a_cabinet_without_a_first_sign_of_life_holds_its_pulses() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", ACK_CAB))
    planner.wait_for_first_sign(ACK_CAB)
    assert planner.take_due(0.0) == []
    assert planner.next_wakeup() is None
    planner.first_sign_seen(ACK_CAB)
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]


def test_what_a_cabinet_does_never_changes_its_owners_setting() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, False, by_owner=True)
    planner.set_acknowledges(OLDER_CAB, False)  # Remembered: it never acknowledged.
    assert not planner.learn_acknowledges(ACK_CAB)
    assert planner.learn_acknowledges(OLDER_CAB)  # News, to remember.
    assert not planner.learn_acknowledges(OLDER_CAB)
    assert not planner.acknowledges(ACK_CAB)
    assert planner.acknowledging_cabinets() == [OLDER_CAB]


def test_next_wakeup_ignores_held_and_in_flight_pulses() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, True)
    planner.set_acknowledges(OLDER_CAB, True)
    assert planner.next_wakeup() is None
    planner.add(pulse("cs_1", ACK_CAB), due_at=50.0)
    planner.add(pulse("cs_2", OLDER_CAB), due_at=30.0)
    assert planner.next_wakeup() == 30.0

    planner.set_cabinet_online(OLDER_CAB, False)
    assert planner.next_wakeup() == 50.0
    planner.set_mqtt_connected(False)
    assert planner.next_wakeup() is None
    planner.set_mqtt_connected(True)
    planner.set_cabinet_online(OLDER_CAB, True)

    [in_flight] = planner.take_due(40.0)
    assert in_flight.payment_id == "cs_2"
    assert planner.next_wakeup() == 50.0  # cs_2 is in flight: not a reason to wake up.
    planner.published("cs_2", 40.0)
    assert planner.next_wakeup() == 40.0 + backoff(1)
    planner.set_cabinet_online(ACK_CAB, False)
    planner.set_cabinet_online(OLDER_CAB, False)
    assert planner.next_wakeup() is None


def test_hurry_makes_one_cabinets_pulses_or_all_due_now() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", ACK_CAB), due_at=500.0)
    planner.add(pulse("cs_2", OLDER_CAB), due_at=500.0)
    planner.hurry(ACK_CAB)
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_1"]
    planner.hurry()
    assert [o.payment_id for o in planner.take_due(0.0)] == ["cs_2"]


def test_adjust_changes_what_the_one_record_of_a_pulse_sends() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", ACK_CAB, credits=3))
    planner.adjust("cs_1", 1)  # A partial refund left one credit.
    planner.adjust("cs_unknown", 1)  # Not outstanding: nothing to change.
    assert planner.pulse("cs_1") == pulse("cs_1", ACK_CAB, credits=1)
    assert planner.pulse("cs_unknown") is None
    [due] = planner.take_due(0.0)
    assert due.pulse.credits == 1


def test_acknowledged_and_forgotten_pulses_are_gone() -> None:
    planner = DeliveryPlanner()
    planner.set_acknowledges(ACK_CAB, True)
    planner.add(pulse("cs_1", ACK_CAB))
    planner.add(pulse("cs_2", ACK_CAB))
    assert planner.forget("cs_1") is not None
    assert planner.forget("cs_1") is None
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
        dispatcher.planner.set_acknowledges(ACK_CAB, True)
        asyncio.run(dispatcher.load({ACK_CAB}))
        assert dispatcher.planner.next_wakeup() == 0.0
        asyncio.run(dispatcher.flush())
        assert [p.payment_id for p in sent] == ["cs_0"]
        assert dispatcher.planner.outstanding()[0].attempts == attempts + 1
    finally:
        ledger.close()


# --- a ledger write that fails after the broker took the pulse ---------------------------------


def test_a_ledger_write_that_fails_after_a_publish_is_retried_not_the_publish(tmp_path: Path) -> None:
    """Another program holding the SQLite write lock makes mark_published fail: the write is
    retried, never the publish, which a cabinet that applies every pulse it gets would count twice."""
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        now = START
        sent: list[str] = []
        failing = [True]

        async def publish(pulse: Pulse) -> bool:
            sent.append(pulse.payment_id)
            return True

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            if function == ledger.mark_published and failing[0]:
                raise LedgerError("database is locked")
            return function(*args)

        dispatcher = CreditDispatcher(ledger, publish, lambda: now, run_blocking)
        asyncio.run(dispatcher.accept(payment(1)))  # For the older cabinet: sent once, never again.
        for _ in range(5):
            now += BACKOFF_MAX + 1
            asyncio.run(dispatcher.flush())
        assert sent == ["cs_1"]  # Not once per flush.
        assert ledger.state_of("cs_1") is PaymentState.PENDING
        failing[0] = False  # The lock is released: the next wake-up writes what it owes.
        assert dispatcher.next_wakeup() is not None
        now += BACKOFF_MAX + 1
        asyncio.run(dispatcher.flush())
        assert sent == ["cs_1"]
        assert ledger.state_of("cs_1") is PaymentState.PUBLISHED
        assert ledger.undelivered() == []
        assert dispatcher.next_wakeup() is None
    finally:
        ledger.close()


@pytest.mark.parametrize("meanwhile", ["nothing", "refunded", "ledger unreadable"])
def test_a_withdrawn_pulse_is_put_back_unless_the_ledger_settled_it(tmp_path: Path, meanwhile: str) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:

        async def publish(pulse: Pulse) -> bool:
            return True

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            if meanwhile == "ledger unreadable" and function == ledger.payment:
                raise LedgerError("disk I/O error")
            return function(*args)

        dispatcher = CreditDispatcher(ledger, publish, lambda: START, run_blocking)
        dispatcher.planner.set_mqtt_connected(False)  # Held: owed, not in flight.
        asyncio.run(dispatcher.accept(payment(1)))
        withdrawn = dispatcher.withdraw("cs_1")
        assert withdrawn is not None
        assert dispatcher.withdraw("cs_1") is None  # Out of delivery: an overlapping run skips it.
        assert "cs_1" not in dispatcher.planner
        if meanwhile == "refunded":  # Stripe's own refund event arrived during the call.
            ledger.record_refund("pi_1", 200, "evt_refund")
        asyncio.run(dispatcher.put_back(withdrawn))
        assert ("cs_1" in dispatcher.planner) is (meanwhile != "refunded")
    finally:
        ledger.close()


def test_a_pulse_in_flight_is_not_withdrawn(tmp_path: Path) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        dispatcher = CreditDispatcher(ledger, _never_called, lambda: START)
        ledger.record(payment(1))
        asyncio.run(dispatcher.load(set(CABINETS)))
        assert dispatcher.planner.take_due(START)  # Handed to a publish that is under way.
        assert dispatcher.withdraw("cs_1") is None
        assert dispatcher.withdraw("cs_unknown") is None
    finally:
        ledger.close()


async def _never_called(pulse: Pulse) -> bool:
    raise AssertionError(pulse)


def test_publish_notes_retry_a_failed_write_after_a_backoff(tmp_path: Path) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        ledger.record(payment(1))
        now = START
        failing = [True]

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            if failing[0]:
                raise LedgerError("database is locked")
            return function(*args)

        notes = PublishNotes(ledger, run_blocking, lambda: now)
        assert asyncio.run(notes.write("cs_unknown"))  # Nothing to note.
        notes.add("cs_1", awaiting_ack=False, attempts=1)
        assert not asyncio.run(notes.write("cs_1"))
        assert notes.retry_at == START + backoff(1)
        assert not notes.due()
        notes.add("cs_1", awaiting_ack=False, attempts=2)  # Published again meanwhile: latest wins.
        now += backoff(1)
        failing[0] = False
        assert notes.due()
        asyncio.run(notes.write_all())
        assert notes.payment_ids() == set()
        assert notes.retry_at is None
        record = ledger.payment("cs_1")
        assert record is not None
        assert (record.state, record.attempts) == (PaymentState.PUBLISHED, 2)
        asyncio.run(notes.write_all())  # Written twice would count nothing twice either.
        notes.add("cs_1", awaiting_ack=False, attempts=2)
        asyncio.run(notes.write_all())
        assert ledger.payment("cs_1") == record
    finally:
        ledger.close()


def test_a_duplicate_delivery_read_while_the_first_is_sent_does_not_send_it_again(tmp_path: Path) -> None:
    """A duplicate delivery reads the payment as pending, and the first delivery publishes it and
    writes its note meanwhile: the duplicate must not take it for stranded and publish it again (a
    doubled credit on a cabinet that cannot tell). The webhook fuzz test found this race."""
    ledger = PaymentLedger(tmp_path / "ledger.sqlite3")
    ledger.open()
    sent: list[str] = []

    async def publish(pulse: Pulse) -> bool:
        sent.append(pulse.payment_id)
        return True

    async def scenario() -> None:
        release = asyncio.Event()
        read = asyncio.Event()

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            result = function(*args)
            if function == ledger.payment:  # The duplicate's look at the ledger: answered late.
                read.set()
                await release.wait()
            return result

        dispatcher = CreditDispatcher(ledger, publish, lambda: START, run_blocking)
        first = payment(1)  # A cabinet that does not acknowledge.
        assert await dispatcher.accept(first, deliver=False)
        duplicate = asyncio.ensure_future(dispatcher.accept(first))
        await read.wait()
        await dispatcher.deliver(first.payment_id)  # Published, and its note written.
        release.set()
        assert await duplicate is False

    try:
        asyncio.run(scenario())
        assert sent == ["cs_1"]
    finally:
        ledger.close()


def test_a_duplicate_delivery_answered_before_the_first_does_not_send_it_twice(tmp_path: Path) -> None:
    """A duplicate sees the record while the first delivery's write is still being committed and
    takes the payment for stranded and sends it: the first must then not track and send it once
    more. The webhook fuzz test found this race."""
    ledger = PaymentLedger(tmp_path / "ledger.sqlite3")
    ledger.open()
    sent: list[str] = []

    async def publish(pulse: Pulse) -> bool:
        sent.append(pulse.payment_id)
        return True

    async def scenario() -> None:
        release = asyncio.Event()
        recorded = asyncio.Event()

        async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
            result = function(*args)
            if function == ledger.record and result is True:  # The first: answered late.
                recorded.set()
                await release.wait()
            return result

        dispatcher = CreditDispatcher(ledger, publish, lambda: START, run_blocking)
        first_payment = payment(1)  # A cabinet that does not acknowledge.
        first = asyncio.ensure_future(dispatcher.accept(first_payment))
        await recorded.wait()
        assert await dispatcher.accept(first_payment) is False  # Seen as stranded: sent.
        release.set()
        assert await first is True

    try:
        asyncio.run(scenario())
        assert sent == ["cs_1"]
    finally:
        ledger.close()
