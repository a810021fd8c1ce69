"""The running integration for one Stripe account: payments in, coin pulses out."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
import uuid

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.util import dt as dt_util

from .cabinet_messages import CabinetMessages
from .const import (
    ATTR_CREDITS,
    ATTR_PAYMENT_ID,
    ATTR_SOURCE,
    DOMAIN,
    EVENT_CREDIT_ADDED,
    EVENT_TYPE_CREDIT_ADDED,
    LOGGER,
)
from .core.cabinet import Cabinet, CabinetConfig, CabinetEvent
from .core.delivery import CreditDispatcher, Pulse
from .core.ledger import Adjustment, LedgerError, Payment, PaymentLedger, PaymentSource
from .core.payments import (
    CreditError,
    PaidSession,
    checked_credits,
    credits_from_subtotal,
    from_minor_units,
    utcnow,
)
from .core.protocol import (
    TOPIC_ACK,
    TOPIC_COIN_PULSE,
    TOPIC_GAME_OVER,
    TOPIC_STATE,
    TOPIC_STATUS,
    CoinPulse,
    subscription,
    topic,
)
from .core.routing import AmbiguousLink, LinkIndex
from .core.stripe_gateway import StripeGateway, StripeGatewayError
from .entry_work import EntryWork
from .link_retry import LinkRetries
from .money_events import MoneyEvents, Outcome
from .not_credited import NO_CABINET
from .payment_links import PaymentLinks
from .repairs import sync_unacknowledged_issue

RECONCILE_INTERVAL = timedelta(hours=1)
HOUSEKEEPING_INTERVAL = timedelta(seconds=30)
SIGNATURE_FAILURES_BEFORE_REPAIR = 3


@dataclass(frozen=True, slots=True)
class HubOptions:
    """The entry's options, resolved."""

    topic_prefix: str
    credits_per_game: int = 1
    offline_grace: float = 120.0  # seconds; 0 = never stop taking payments
    refund_undelivered: bool = False
    refund_after: float = 1800.0
    alert_after: float = 600.0


@dataclass(frozen=True, slots=True)
class LearnedPrice:
    """The one price a payment link sells, learned from Stripe."""

    unit_amount: int
    currency: str


class ArcadePayHub:
    """Cabinets of one Stripe account, their ledger and their MQTT topics."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        gateway: StripeGateway,
        ledger: PaymentLedger,
        cabinets: list[CabinetConfig],
        options: HubOptions,
    ) -> None:
        """Index the cabinets; nothing is subscribed until ``async_start``."""
        self.hass = hass
        self.entry_id = entry_id
        self.ledger = ledger
        self.options = options
        self.cabinets: dict[str, Cabinet] = {c.machine_id: Cabinet(c) for c in cabinets}
        self._links = LinkIndex(self.cabinets.values())
        self.dispatcher = CreditDispatcher(
            ledger,
            self._async_publish_pulse,
            clock=lambda: dt_util.utcnow().timestamp(),
            run_blocking=hass.async_add_executor_job,
            delivered=self._on_first_delivery,
        )
        self._learned_prices: dict[str, LearnedPrice] = {}
        self.links = PaymentLinks(gateway, ledger, hass.async_add_executor_job)
        self.link_retries = LinkRetries(hass, self._async_sync_link)
        self.money = MoneyEvents(self)
        self.gateway = gateway
        self.work = EntryWork(hass)
        self._offline_timers: dict[str, CALLBACK_TYPE] = {}
        self.messages = CabinetMessages(self)
        self._unsubscribe: list[Callable[[], None]] = []
        self._wakeup: CALLBACK_TYPE | None = None
        self._signature_failures = 0
        self._verified_once = False
        self._publish_failing = False

    @property
    def gateway(self) -> StripeGateway:
        """The Stripe client; payment_links.py uses the same one."""
        return self._gateway

    @gateway.setter
    def gateway(self, gateway: StripeGateway) -> None:
        self._gateway = gateway
        self.links.gateway = gateway

    @property
    def topic_prefix(self) -> str:
        """The MQTT topic prefix cabinets use."""
        return self.options.topic_prefix

    # --- lifecycle -------------------------------------------------------------

    async def async_load(self, explicit_acks: dict[str, bool] | None = None) -> None:
        """Read totals, cabinet memory and outstanding pulses from the ledger."""
        for totals in await self.hass.async_add_executor_job(self.ledger.totals):
            cabinet = self.cabinets.get(totals.machine_id)
            if cabinet is not None and totals.currency == cabinet.config.currency:
                cabinet.revenue = totals.revenue
                cabinet.payments = totals.payments
                cabinet.last_payment = totals.last_payment_at
        memory = await self.hass.async_add_executor_job(
            self.ledger.cabinet_memory, list(self.cabinets), int(utcnow().timestamp())
        )
        planner = self.dispatcher.planner
        planner.explicit = set(explicit_acks or {})
        for machine_id, cabinet in self.cabinets.items():
            remembered = memory.get(machine_id)
            explicit = (explicit_acks or {}).get(machine_id)
            planner.acknowledges[machine_id] = (
                explicit if explicit is not None else bool(remembered and remembered.acknowledges)
            )
            if remembered is not None:
                cabinet.paused = remembered.paused
                cabinet.seen = remembered.seen
                cabinet.offline_stopped = remembered.offline_stopped
                # Not told about this link yet (new link, or memory from before schema 3):
                # unknown, so async_start's sync tells Stripe what the cabinet wants.
                told = remembered.link_active
                if remembered.link_id == cabinet.config.payment_link_id and told is not None:
                    cabinet.set_accepting_payments(told)
            if cabinet.awaiting_first_sign:
                planner.waiting_first_sign.add(machine_id)
        await self.dispatcher.load(set(self.cabinets))
        self._refresh_pending()

    async def async_start(self) -> None:
        """Subscribe to what cabinets publish, then deliver what is outstanding."""
        for kind, handler, qos in (
            (TOPIC_GAME_OVER, self.messages.on_game_over, 1),
            (TOPIC_STATUS, self.messages.on_status, 1),
            (TOPIC_STATE, self.messages.on_state, 1),
            # QoS 0: a lost ack only costs a re-sent pulse (which the cabinet acks again), while
            # answering each ack with a PUBACK stalls the next coin pulse behind Nagle's algorithm
            # (Home Assistant's MQTT socket does not set TCP_NODELAY): 40 ms per payment.
            (TOPIC_ACK, self.messages.on_ack, 0),
        ):
            self._unsubscribe.append(
                await mqtt.async_subscribe(
                    self.hass, subscription(self.topic_prefix, kind), handler, qos=qos, encoding=None
                )
            )
        self._unsubscribe.append(
            mqtt.async_subscribe_connection_status(self.hass, self.messages.on_mqtt_connection)
        )
        self.dispatcher.planner.connected = mqtt.is_connected(self.hass)
        for cabinet in self.cabinets.values():
            cabinet.mqtt_connected = self.dispatcher.planner.connected
        # Held by self.work and cancelled on unload: both may stop anywhere, and run again.
        for work, interval in (
            (self._async_housekeeping, HOUSEKEEPING_INTERVAL),
            (self.async_reconcile, RECONCILE_INTERVAL),
        ):
            self._unsubscribe.append(
                async_track_time_interval(self.hass, partial(self._interval_due, work), interval)
            )
        self._clear_issues_for_known_cabinets()
        await self.async_flush()
        self.links.read_from_stripe_first(self.cabinets.values())
        # A Stripe call per cabinet: in the background, since Home Assistant's start waits for
        # ordinary tasks (with hundreds of cabinets that would hold it up).
        self.work.spawn(self.async_sync_links(), cancellable=True, background=True)

    @callback
    def _interval_due(self, work: Callable[[], Coroutine[Any, Any, Any]], _: object) -> None:
        self.work.spawn(work(), cancellable=True, background=True)

    async def async_reconcile(self) -> int:
        """Credit paid sessions the webhook never delivered; return how many were credited."""
        return await self.money.async_reconcile()

    async def async_drain(self) -> None:
        """Wait for the work in progress (publishes, ledger writes), then write the notes still owed."""
        await self.work.async_wait()
        await self.dispatcher.write_notes()

    @callback
    def async_stop(self) -> None:
        """Start nothing more, unsubscribe from MQTT and cancel timers."""
        self.work.stop()
        while self._unsubscribe:
            self._unsubscribe.pop()()
        if self._wakeup is not None:
            self._wakeup()
            self._wakeup = None
        for cancel in self._offline_timers.values():
            cancel()
        self._offline_timers.clear()
        self.link_retries.cancel()

    # --- lookups -----------------------------------------------------------------

    def cabinet_for_session(self, session: PaidSession) -> Cabinet | None:
        """Find the cabinet whose payment link was paid (rules in routing.py).

        Raises AmbiguousLink when several cabinets claim the link and nothing tells them apart.
        """
        return self._links.cabinet_for(session.payment_link_id, session.machine_id)

    def cabinet_for_device(self, device_id: str) -> Cabinet | None:
        """Find a cabinet by its Home Assistant device id."""
        return next((c for c in self.cabinets.values() if c.device_id == device_id), None)

    # --- payments ------------------------------------------------------------------

    async def async_handle_paid_session(self, session: PaidSession) -> Outcome:
        """Credit a paid checkout session exactly once.

        Raises StripeGatewayError or LedgerError when the session could not be
        handled now; the webhook answers 500 so that Stripe delivers it again.
        """
        try:
            cabinet = self.cabinet_for_session(session)
        except AmbiguousLink:  # The repair names the cabinets (not_credited.py).
            reason = f"payment link {session.payment_link_id} is used by several cabinets"
            return await self.money.async_not_creditable(session, session.machine_id, reason)
        if cabinet is None:
            return await self.money.async_not_creditable(session, session.machine_id, NO_CABINET)
        if session.currency != cabinet.config.currency:
            reason = f"paid in {session.currency.upper()}, priced in {cabinet.config.currency.upper()}"
            return await self.money.async_not_creditable(session, cabinet.machine_id, reason)
        try:
            credits = await self._async_credits_for(cabinet, session)
        except CreditError as err:
            return await self.money.async_not_creditable(session, cabinet.machine_id, str(err))
        payment = Payment.of_session(session, cabinet.machine_id, credits, utcnow())
        came_before: list[Adjustment | None] = []

        def recorded(applied: Adjustment | None) -> None:
            came_before.append(applied)
            self.money.after_record(cabinet, payment, applied)

        if not await self.dispatcher.accept(payment, recorded=recorded, deliver=False):
            # It may have been cut off before it was tracked (accept tracks it now): send it.
            self.work.spawn(self._async_deliver(payment.payment_id, cabinet.machine_id))
            LOGGER.info(
                "Payment %s for %s was already credited; ignoring this delivery (event %s)",
                session.session_id,
                cabinet.machine_id,
                session.event_id,
            )
            return Outcome.DUPLICATE
        early = came_before[0] if came_before else None
        if early is not None and early.credits_left <= 0:  # Refunded or disputed before it came.
            return Outcome.RECORDED
        # (A retry that saw the record first may have sent it already: still this delivery's credit.)
        # Recorded durably: Stripe can have its answer now. Eagerly started, the pulse is on its
        # way before the answer; waiting for the broker's PUBACK is not the webhook's business.
        self.work.spawn(self._async_deliver(payment.payment_id, cabinet.machine_id))
        LOGGER.info(
            "Payment %s: %d credit(s) for %s (%s %s)",
            session.session_id,
            credits,
            cabinet.machine_id,
            from_minor_units(session.amount_total, session.currency),
            session.currency.upper(),
        )
        return Outcome.CREDITED

    async def _async_credits_for(self, cabinet: Cabinet, session: PaidSession) -> int:
        """Credits bought, from the event when the price is known, else from Stripe."""
        link = session.payment_link_id
        config = cabinet.config
        known: LearnedPrice | None = None
        if config.managed_link and link == config.payment_link_id and config.unit_amount:
            known = LearnedPrice(config.unit_amount, config.currency)
        elif link is not None:
            known = self._learned_prices.get(link)
        if known is not None and known.currency == session.currency and session.amount_subtotal is not None:
            try:
                return credits_from_subtotal(session.amount_subtotal, known.unit_amount)
            except CreditError:
                LOGGER.debug("Subtotal of %s does not fit the known price; asking Stripe", session.session_id)
        items = await self.gateway.session_items(session.session_id)
        if link is not None and items.unit_amount and items.currency:
            self._learned_prices[link] = LearnedPrice(items.unit_amount, items.currency)
        return checked_credits(items.quantity)

    def apply_adjustment(
        self, payment_id: str, machine_id: str, revenue_delta: int, credits_left: int = 0
    ) -> None:
        """Money given back: send only the undelivered credits still paid for, lower revenue."""
        self.dispatcher.adjust(payment_id, credits_left)
        if (cabinet := self.cabinets.get(machine_id)) is not None and revenue_delta:
            cabinet.refunded(revenue_delta)
        self._after_delivery_change(machine_id)

    async def async_add_manual_credit(self, cabinet: Cabinet, credits: int) -> str:
        """Give free credits (button or action); return the payment id used.

        Raises HomeAssistantError when MQTT could not take the pulse now; it stays in the
        ledger and is delivered when MQTT is back.
        """
        payment = Payment(
            payment_id=f"manual_{uuid.uuid4().hex}",
            machine_id=cabinet.machine_id,
            credits=credits,
            amount=0,
            currency=cabinet.config.currency,
            source=PaymentSource.MANUAL,
            received_at=utcnow(),
        )
        await self.dispatcher.accept(payment)
        self._after_delivery_change(cabinet.machine_id)
        if cabinet.awaiting_first_sign and not self.dispatcher.published_once(payment.payment_id):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="credit_waits_for_cabinet",
                translation_placeholders={"cabinet": cabinet.config.name, "credits": str(credits)},
            )
        if not self.dispatcher.published_once(payment.payment_id):
            raise HomeAssistantError(f"MQTT did not take the coin pulse; {credits} credit(s) will follow")
        return payment.payment_id

    async def _async_publish_pulse(self, pulse: Pulse) -> bool:
        """Publish one coin pulse; False when MQTT refused it, or the entry is unloading."""
        if self.work.stopping:  # The next hub sends it, after reading the ledger.
            return False
        message = CoinPulse(pulse.machine_id, pulse.credits, pulse.timestamp, pulse.payment_id)
        try:
            await mqtt.async_publish(
                self.hass,
                topic(self.topic_prefix, pulse.machine_id, TOPIC_COIN_PULSE),
                message.to_json(),
                qos=1,
                retain=False,
            )
        except HomeAssistantError as err:
            if not self._publish_failing:
                LOGGER.warning(
                    "Coin pulses cannot be sent (%s); they wait and are sent when MQTT is back", err
                )
                self._publish_failing = True
            return False
        if self._publish_failing:
            LOGGER.info("Coin pulses are being sent again")
            self._publish_failing = False
        return True

    @callback
    def _on_first_delivery(self, pulse: Pulse) -> None:
        """A pulse reached MQTT for the first time: tell the entities and the bus."""
        cabinet = self.cabinets.get(pulse.machine_id)
        if cabinet is None:
            return
        attributes = {
            ATTR_CREDITS: pulse.credits,
            ATTR_PAYMENT_ID: pulse.payment_id,
            ATTR_SOURCE: pulse.source.value,
        }
        cabinet.credit(pulse.credits, CabinetEvent(EVENT_TYPE_CREDIT_ADDED, attributes))
        self.hass.bus.async_fire(EVENT_CREDIT_ADDED, self.messages.event_data(cabinet) | attributes)

    async def _async_deliver(self, payment_id: str, machine_id: str) -> None:
        try:
            await self.dispatcher.deliver(payment_id)
        finally:
            self._after_delivery_change(machine_id)

    async def async_flush(self) -> None:
        """Publish what is due, then sleep until the next pulse falls due (whatever went wrong)."""
        try:
            await self.dispatcher.flush()
        finally:
            self._after_delivery_change()

    @callback
    def _after_delivery_change(self, machine_id: str | None = None) -> None:
        """Update pending credits (of one cabinet, or all) and the next wake-up."""
        self._refresh_pending(machine_id)
        self._schedule_wakeup()

    @callback
    def _refresh_pending(self, machine_id: str | None = None) -> None:
        # One cabinet on the payment path: with 500 cabinets, all of them per payment adds up.
        if machine_id is None:
            cabinets = self.cabinets
        else:  # A refund may be for a cabinet that was deleted since.
            cabinets = {machine_id: c} if (c := self.cabinets.get(machine_id)) else {}
        for machine, cabinet in cabinets.items():
            cabinet.set_pending_credits(self.dispatcher.outstanding_credits(machine))
            sync_unacknowledged_issue(self.hass, cabinet, self.dispatcher.given_up_credits(machine))

    @callback
    def _schedule_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup()
            self._wakeup = None
        wake_at = self.dispatcher.next_wakeup()
        if wake_at is None or self.work.stopping:
            return
        delay = max(0.0, wake_at - dt_util.utcnow().timestamp())
        self._wakeup = async_call_later(self.hass, delay, HassJob(self._wakeup_due, cancel_on_shutdown=True))

    @callback
    def _wakeup_due(self, _: object) -> None:
        self._wakeup = None
        self.work.spawn(self.async_flush())

    async def _async_housekeeping(self, _: object = None) -> None:
        """Refund what could not be delivered in time (if enabled) and raise stuck-credit repairs."""
        now = utcnow()
        for machine_id, cabinet in self.cabinets.items():
            oldest = self.dispatcher.oldest_outstanding(machine_id)
            age = (now - oldest.timestamp).total_seconds() if oldest else 0.0
            issue_id = f"credits_undelivered_{machine_id}"
            if oldest is not None and age >= self.options.alert_after:
                self.raise_issue(
                    issue_id,
                    "credits_undelivered",
                    {"cabinet": cabinet.config.name, "credits": str(cabinet.pending_credits)},
                )
            else:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        if self.options.refund_undelivered:
            await self.money.async_refund_overdue(now.timestamp())
        await self.async_sync_links()

    # --- accepting payments (payment_links.py decides; this only wires it to events) ----

    async def async_sync_links(self) -> None:
        """Put every cabinet's link in Stripe in line with why it should (not) take money."""
        for cabinet in self.cabinets.values():
            # A cabinet waiting for its retry (link_retry.py) is left alone until then: backoff.
            if self.links.out_of_line(cabinet) and not self.link_retries.waiting(cabinet):
                await self._async_sync_link(cabinet)

    async def _async_sync_link(self, cabinet: Cabinet) -> None:
        await self._async_link_change(cabinet, self.links.async_sync(cabinet))

    async def _async_link_change(self, cabinet: Cabinet, change: Coroutine[Any, Any, None]) -> None:
        """Run a change of a cabinet's link in the background; Stripe refusing it is retried."""
        was = cabinet.accepting_payments
        try:
            await change
        except StripeGatewayError as err:  # Logged once per outage by StripeHealth.
            LOGGER.debug("Payment link of %s not updated yet: %s", cabinet.machine_id, err)
            self.link_retries.failed(cabinet)
            return
        except LedgerError as err:
            LOGGER.warning("Could not remember the payment link state of %s: %s", cabinet.machine_id, err)
            return
        self.link_retries.succeeded(cabinet)
        if cabinet.accepting_payments != was:
            LOGGER.info("Payment link of cabinet %s: %s", cabinet.machine_id, cabinet.payments_state.value)

    async def _async_offline_too_long(self, machine_id: str) -> None:
        self._offline_timers.pop(machine_id, None)
        cabinet = self.cabinets[machine_id]
        if cabinet.online is not False:
            return
        LOGGER.warning("Cabinet %s is offline: its payment link stops taking payments", machine_id)
        await self._async_link_change(cabinet, self.links.async_offline_rule(cabinet, True))

    async def _async_back_online(self, cabinet: Cabinet) -> None:
        if cabinet.offline_stopped:
            LOGGER.info("Cabinet %s is back: its payment link may take payments again", cabinet.machine_id)
        await self._async_link_change(cabinet, self.links.async_offline_rule(cabinet, False))

    @callback
    def _note_sign_of_life(self, cabinet: Cabinet) -> None:
        """The cabinet published on its topics: it exists, so credits and payments can flow."""
        if cabinet.seen:
            return
        cabinet.seen = True
        cabinet.changed()
        LOGGER.info("Cabinet %s showed its first sign of life", cabinet.machine_id)
        self.dispatcher.planner.waiting_first_sign.discard(cabinet.machine_id)
        self.dispatcher.planner.hurry(cabinet.machine_id)
        change = self.links.async_first_sign_of_life(cabinet)
        self.work.spawn(self._async_link_change(cabinet, change), cancellable=True)
        self.work.spawn(self.async_flush())

    # --- repairs ---------------------------------------------------------------------

    def raise_issue(
        self,
        issue_id: str,
        translation_key: str,
        placeholders: dict[str, str],
        severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
    ) -> None:
        """Raise (or update) a repair the owner has to act on."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=severity,
            translation_key=translation_key,
            translation_placeholders=placeholders,
        )

    def _clear_issues_for_known_cabinets(self) -> None:
        for machine_id in self.cabinets:
            ir.async_delete_issue(self.hass, DOMAIN, f"unknown_cabinet_{machine_id}")

    @callback
    def note_signature_failure(self) -> None:
        """A delivery failed the signature check; several in a row mean a wrong secret."""
        self._signature_failures += 1
        if self._signature_failures == SIGNATURE_FAILURES_BEFORE_REPAIR:
            self.raise_issue(
                f"webhook_signature_{self.entry_id}",
                "webhook_signature_failing",
                {"failures": str(self._signature_failures)},
                severity=ir.IssueSeverity.ERROR,
            )

    @callback
    def note_verified_delivery(self) -> None:
        """A delivery passed the signature check: the secret is right, whatever a repair says.

        The repair may have been raised before a reload (Reconfigure reloads the entry), when
        this hub's counter was not yet counting, so it is deleted on the first verified
        delivery of every hub, not only after failures this hub saw.
        """
        if self._signature_failures or not self._verified_once:
            ir.async_delete_issue(self.hass, DOMAIN, f"webhook_signature_{self.entry_id}")
        self._verified_once = True
        self._signature_failures = 0


__all__ = ["ArcadePayHub", "HubOptions", "Outcome"]
