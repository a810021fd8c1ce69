"""Payments in, as a state machine: Stripe's events in any order, lost, repeated; reconciliation.

The real ledger, dispatcher and reconciliation cursor, in a simulated world: players open
checkouts, pay at once or by a delayed method (paid days later) or never; the owner refunds
(partly) and players dispute, also after a refund and before one; Stripe's events reach the
webhook in any order, twice, or never; reconciliation runs now and then; the cabinet goes
offline (pulses wait); Home Assistant restarts. The glue between them is the integration's, in a
few lines (intake.py and catch_up.py: applying an adjustment, reconciling one link).

Safety after every step and at every pulse: no session is applied twice; a pulse carries exactly
the credits still paid for by what the ledger was told (money_rules.py), never any for a payment
fully refunded or disputed before it was delivered; revenue counts each amount out once.
Liveness (``everything_settles``): once every event is in (or lost for good) and reconciliation
ran, every paid session is recorded and applied exactly once, unless nothing of it is owed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
import itertools
from pathlib import Path
import tempfile
from typing import Any

from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from custom_components.arcade_pay.core.delivery import CreditDispatcher, Pulse
from custom_components.arcade_pay.core.ledger import Adjustment, Payment, PaymentLedger, PaymentSource
from custom_components.arcade_pay.core.reconciliation import DELAYED_PAYMENT_WINDOW, OPEN_WINDOW, move

CABINET = "cab"
LINK = "plink_cab"
START = 1_720_000_000


@dataclass
class Session:
    """A checkout session as Stripe knows it."""

    session_id: str
    intent: str
    credits: int
    amount: int
    created: int
    status: str = "open"
    payment_status: str = "unpaid"
    refunded: int = 0
    disputed: int | None = None

    def listed(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "created": self.created,
            "status": self.status,
            "payment_status": self.payment_status,
        }


@dataclass(frozen=True)
class Event:
    """A webhook delivery: a paid session, a cumulative refund total, or a dispute."""

    event_id: str
    kind: str
    session_id: str
    value: int = 0


def kept(credits: int, amount: int, refunded: int, disputed: int | None) -> int:
    """Credits still paid for, written out here independently of money_rules.py."""
    if disputed is not None:
        return 0
    out = min(amount, refunded)
    return credits * (amount - out) // amount


class MoneyInMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        self.loop = asyncio.new_event_loop()
        self.now = START
        self.ids = itertools.count()
        self.stripe: dict[str, Session] = {}
        self.queue: list[Event] = []
        self.known_refund: dict[str, int] = {}  # what the ledger was told, by payment intent
        self.known_dispute: dict[str, int] = {}
        self.recorded: set[str] = set()
        self.applied: dict[str, int] = {}  # what the cabinet got, by session
        self.ledger = PaymentLedger(Path(self.directory.name) / "ledger.db")
        self.ledger.open()
        self.ledger.cabinet_memory([CABINET], START)
        self.offline = False
        self.webhook_down = False  # a wrong secret, Home Assistant down longer than Stripe retries
        self.dispatcher = self._new_dispatcher()

    def _new_dispatcher(self) -> CreditDispatcher:
        dispatcher = CreditDispatcher(self.ledger, self._publish, clock=lambda: float(self.now))
        dispatcher.planner.set_cabinet_online(CABINET, False if self.offline else None)
        return dispatcher

    def _run[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def _publish(self, pulse: Pulse) -> bool:
        session = self.stripe[pulse.payment_id]
        assert pulse.payment_id not in self.applied, "a session applied twice"
        expected = kept(
            session.credits,
            session.amount,
            self.known_refund.get(session.intent, 0),
            self.known_dispute.get(session.intent),
        )
        assert expected > 0, "credits sent for a payment refunded or disputed before delivery"
        assert pulse.credits == expected, (pulse.credits, expected)
        self.applied[pulse.payment_id] = pulse.credits
        if pulse.credits < session.credits:
            event("pulse reduced by a partial refund")
        return True

    # --- the hub's glue ---------------------------------------------------------------------------

    def _apply(self, adjustment: Adjustment | None) -> None:
        if adjustment is not None:
            self.dispatcher.adjust(adjustment.payment.payment_id, adjustment.credits_left)

    def _paid(self, session: Session, event_id: str) -> None:
        payment = Payment(
            session.session_id,
            CABINET,
            session.credits,
            session.amount,
            "usd",
            PaymentSource.STRIPE,
            datetime.fromtimestamp(self.now, UTC),
            session.intent,
            event_id,
            "checkout.session.completed",
            LINK,
        )
        if not self._run(self.dispatcher.accept(payment, recorded=self._recorded, deliver=False)):
            return
        self.recorded.add(session.session_id)
        if self.dispatcher.pulse(session.session_id) is not None:
            self._run(self.dispatcher.deliver(session.session_id))

    def _recorded(self, applied: Adjustment | None) -> None:
        if applied is not None:
            event("refund or dispute applied as the payment was recorded")

    def _refund(self, intent: str, total: int, event_id: str) -> None:
        if intent in self.known_dispute and total:
            event("refund after a dispute")
        self.known_refund[intent] = max(self.known_refund.get(intent, 0), total)
        self._apply(self.ledger.record_refund(intent, total, event_id))

    def _dispute(self, intent: str, amount: int, event_id: str) -> None:
        self.known_dispute.setdefault(intent, amount)
        self._apply(self.ledger.record_dispute(intent, amount, event_id, f"dp_{intent}", "fraudulent"))

    # --- Stripe ---------------------------------------------------------------------------------------

    @rule(
        credits=st.integers(1, 5),
        unit=st.sampled_from([100, 250, 333]),
        then=st.sampled_from(["pays", "pays", "pays by bank debit", "leaves the page open"]),
    )
    def checkout(self, credits: int, unit: int, then: str) -> None:
        n = next(self.ids)
        session = Session(f"cs_{n}", f"pi_{n}", credits, credits * unit, self.now)
        self.stripe[session.session_id] = session
        if then != "leaves the page open":
            self._complete(session, delayed=then == "pays by bank debit")

    def _complete(self, session: Session, delayed: bool) -> None:
        session.status = "complete"
        session.payment_status = "unpaid" if delayed else "paid"
        if not delayed:
            self._send(Event(f"evt_{next(self.ids)}", "paid", session.session_id))

    def _send(self, event: Event) -> None:
        if not self.webhook_down:
            self.queue.append(event)

    @rule(data=st.data(), delayed=st.booleans())
    def player_pays(self, data: st.DataObject, delayed: bool) -> None:
        waiting = [
            s for s in self.stripe.values() if s.status == "open" and self.now - s.created < OPEN_WINDOW
        ]
        if not waiting:
            return
        self._complete(data.draw(st.sampled_from(waiting)), delayed)

    @rule(data=st.data())
    def delayed_payment_succeeds(self, data: st.DataObject) -> None:
        waiting = [
            s
            for s in self.stripe.values()
            if s.payment_status == "unpaid"
            and s.status == "complete"
            and self.now - s.created < DELAYED_PAYMENT_WINDOW
        ]
        if waiting:
            session = data.draw(st.sampled_from(waiting))
            session.payment_status = "paid"
            self._send(Event(f"evt_{next(self.ids)}", "paid", session.session_id))

    @rule(data=st.data(), part=st.sampled_from([1, 2, 3, 100]))
    def owner_refunds(self, data: st.DataObject, part: int) -> None:
        paid = [s for s in self.stripe.values() if s.payment_status == "paid" and s.refunded < s.amount]
        if paid:
            session = data.draw(st.sampled_from(paid))
            session.refunded = min(session.amount, session.refunded + max(1, session.amount * part // 100))
            self._send(Event(f"evt_{next(self.ids)}", "refund", session.session_id, session.refunded))

    @rule(data=st.data())
    def player_disputes(self, data: st.DataObject) -> None:
        paid = [s for s in self.stripe.values() if s.payment_status == "paid" and s.disputed is None]
        if paid:
            session = data.draw(st.sampled_from(paid))
            session.disputed = session.amount - session.refunded
            self._send(Event(f"evt_{next(self.ids)}", "dispute", session.session_id, session.disputed))

    @rule(seconds=st.sampled_from([60, 3600, 6 * 3600, 2 * 86400]))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds
        for session in self.stripe.values():
            if session.status == "open" and self.now - session.created >= OPEN_WINDOW:
                session.status = "expired"

    # --- the webhook, reconciliation, the cabinet, restarts --------------------------------------------

    @precondition(lambda self: bool(self.queue))
    @rule(data=st.data(), again=st.booleans())
    def webhook_delivers(self, data: st.DataObject, again: bool) -> None:
        """Any pending event, in any order; ``again``: Stripe will deliver it once more."""
        delivery = data.draw(st.sampled_from(self.queue))
        if not again:
            self.queue.remove(delivery)
        self._deliver(delivery)

    def _deliver(self, delivery: Event) -> None:
        session = self.stripe[delivery.session_id]
        if delivery.kind == "paid":
            self._paid(session, delivery.event_id)
        elif delivery.kind == "refund":
            self._refund(session.intent, delivery.value, delivery.event_id)
        else:
            self._dispute(session.intent, delivery.value, delivery.event_id)

    @precondition(lambda self: bool(self.queue))
    @rule(data=st.data())
    def event_is_lost(self, data: st.DataObject) -> None:
        self.queue.remove(data.draw(st.sampled_from(self.queue)))

    @rule(down=st.booleans())
    def webhook(self, down: bool) -> None:
        self.webhook_down = down

    @rule()
    def reconcile(self) -> None:
        """catch_up.py's reconciliation of one link, against the simulated Stripe."""
        for cursor in self.ledger.links_to_reconcile({CABINET: LINK}, self.now):
            listed = [s for s in self.stripe.values() if s.created >= cursor.since]
            paid = [s for s in listed if s.payment_status == "paid"]
            known = self.ledger.known_payments([s.session_id for s in paid])
            for session in paid:
                if session.session_id not in known:
                    if session.refunded:  # Stripe is asked for refunds before crediting
                        self._refund(session.intent, session.refunded, f"reconcile_refund:{session.intent}")
                    late = any(s.created > session.created for s in paid if s.session_id in known)
                    event("reconciliation found a payment" + (" paid after a newer one" if late else ""))
                    self._paid(session, f"reconcile:{session.session_id}")
            moved = move(cursor, [s.listed() for s in listed], self.now)
            self.ledger.move_reconcile_cursor(cursor.link_id, moved.since, moved.done)

    @rule(offline=st.booleans())
    def cabinet(self, offline: bool) -> None:
        self.offline = offline
        self.dispatcher.planner.set_cabinet_online(CABINET, not offline)
        self._run(self.dispatcher.flush())

    @rule()
    def restart(self) -> None:
        self.ledger.close()
        self.ledger = PaymentLedger(self.ledger.path)
        self.ledger.open()
        self.dispatcher = self._new_dispatcher()
        self._run(self.dispatcher.load({CABINET}))
        self._run(self.dispatcher.flush())

    @rule()
    def everything_settles(self) -> None:
        """Stripe delivers what it still retries, the cabinet is back, reconciliation runs."""
        while self.queue:
            self._deliver(self.queue.pop(0))
        self.cabinet(offline=False)
        self.now += 3600
        self.reconcile()
        self._run(self.dispatcher.flush())
        for session in self.stripe.values():
            if session.payment_status != "paid":
                continue
            assert session.session_id in self.recorded, f"{session.session_id} was never credited"
            if session.session_id not in self.applied:
                owed = kept(
                    session.credits,
                    session.amount,
                    self.known_refund.get(session.intent, 0),
                    self.known_dispute.get(session.intent),
                )
                assert owed == 0, f"{session.session_id} never got its {owed} credit(s)"

    # --- safety -------------------------------------------------------------------------------------------

    @invariant()
    def revenue_counts_each_amount_once(self) -> None:
        expected = 0
        for session_id in self.recorded:
            session = self.stripe[session_id]
            out = self.known_refund.get(session.intent, 0) + self.known_dispute.get(session.intent, 0)
            expected += session.amount - min(session.amount, out)
        revenue = sum(t.revenue for t in self.ledger.totals())
        assert revenue == expected, (revenue, expected)
        assert revenue >= 0

    @invariant()
    def undelivered_credits_follow_the_rule(self) -> None:
        for pending in self.ledger.undelivered():
            session = self.stripe[pending.payment_id]
            expected = kept(
                session.credits,
                session.amount,
                self.known_refund.get(session.intent, 0),
                self.known_dispute.get(session.intent),
            )
            assert pending.credits == expected > 0, (pending, expected)

    def teardown(self) -> None:
        self.ledger.close()
        self.loop.close()
        self.directory.cleanup()


MoneyInMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
test_money_in_state_machine = MoneyInMachine.TestCase
