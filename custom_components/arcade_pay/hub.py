"""The running integration for one Stripe account: payments in, coin pulses out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import uuid

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .cabinet import Cabinet, CabinetConfig, CabinetEvent
from .const import (
    ATTR_CREDITS,
    ATTR_MACHINE_ID,
    ATTR_PAYMENT_ID,
    ATTR_SOURCE,
    EVENT_CREDIT_ADDED,
    EVENT_GAME_OVER,
    EVENT_TYPE_CREDIT_ADDED,
    EVENT_TYPE_GAME_OVER,
    LOGGER,
)
from .ledger import Payment, PaymentLedger, PaymentSource
from .payments import CreditError, PaidSession, credits_from_subtotal, utcnow
from .protocol import (
    TOPIC_COIN_PULSE,
    TOPIC_GAME_OVER,
    TOPIC_STATE,
    TOPIC_STATUS,
    CabinetState,
    CoinPulse,
    GameOver,
    ProtocolError,
    machine_id_from_topic,
    parse_status,
    subscription,
    topic,
)
from .stripe_gateway import StripeGateway


class Outcome(StrEnum):
    """What the webhook did with a paid session."""

    CREDITED = "credited"
    DUPLICATE = "duplicate"
    UNKNOWN_CABINET = "unknown_cabinet"
    NOT_CREDITABLE = "not_creditable"


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
        topic_prefix: str,
        credits_per_game: int,
    ) -> None:
        """Index the cabinets; nothing is subscribed until ``async_start``."""
        self.hass = hass
        self.entry_id = entry_id
        self.gateway = gateway
        self.ledger = ledger
        self.topic_prefix = topic_prefix
        self.credits_per_game = credits_per_game
        self.cabinets: dict[str, Cabinet] = {c.machine_id: Cabinet(c) for c in cabinets}
        self._by_link = {c.config.payment_link_id: c for c in self.cabinets.values()}
        self._learned_prices: dict[str, LearnedPrice] = {}
        self._warned_topics: set[str] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    # --- lifecycle -------------------------------------------------------------

    async def async_load_totals(self) -> None:
        """Read revenue and last payment per cabinet from the ledger."""
        for totals in await self.hass.async_add_executor_job(self.ledger.totals):
            cabinet = self.cabinets.get(totals.machine_id)
            if cabinet is not None and totals.currency == cabinet.config.currency:
                cabinet.revenue = totals.revenue
                cabinet.payments = totals.payments
                cabinet.last_payment = totals.last_payment_at

    async def async_start(self) -> None:
        """Subscribe to what cabinets publish."""
        for kind, handler in (
            (TOPIC_GAME_OVER, self._on_game_over),
            (TOPIC_STATUS, self._on_status),
            (TOPIC_STATE, self._on_state),
        ):
            self._unsubscribe.append(
                await mqtt.async_subscribe(
                    self.hass, subscription(self.topic_prefix, kind), handler, qos=1, encoding=None
                )
            )

    @callback
    def async_stop(self) -> None:
        """Unsubscribe from MQTT."""
        while self._unsubscribe:
            self._unsubscribe.pop()()

    # --- lookups -----------------------------------------------------------------

    def cabinet_for_session(self, session: PaidSession) -> Cabinet | None:
        """Find the cabinet a session paid for: by payment link, then by metadata."""
        if session.payment_link_id and (cabinet := self._by_link.get(session.payment_link_id)):
            return cabinet
        if session.machine_id:
            return self.cabinets.get(session.machine_id)
        return None

    def cabinet_for_device(self, device_id: str) -> Cabinet | None:
        """Find a cabinet by its Home Assistant device id."""
        return next((c for c in self.cabinets.values() if c.device_id == device_id), None)

    # --- payments ------------------------------------------------------------------

    async def async_handle_paid_session(self, session: PaidSession) -> Outcome:
        """Credit a paid checkout session exactly once.

        Raises StripeGatewayError or LedgerError when the session could not be
        handled now; the webhook answers 500 so that Stripe delivers it again.
        """
        cabinet = self.cabinet_for_session(session)
        if cabinet is None:
            LOGGER.warning(
                "Payment %s is for an unknown cabinet (payment link %s, machine_id %s); no credit sent",
                session.session_id,
                session.payment_link_id,
                session.machine_id,
            )
            return Outcome.UNKNOWN_CABINET
        if session.currency != cabinet.config.currency:
            LOGGER.error(
                "Payment %s for %s is in %s but the cabinet charges %s; no credit sent",
                session.session_id,
                cabinet.machine_id,
                session.currency.upper(),
                cabinet.config.currency.upper(),
            )
            return Outcome.NOT_CREDITABLE
        try:
            credits = await self._async_credits_for(cabinet, session)
        except CreditError as err:
            LOGGER.error(
                "Payment %s for %s: cannot tell how many credits it bought (%s); no credit sent",
                session.session_id,
                cabinet.machine_id,
                err,
            )
            return Outcome.NOT_CREDITABLE
        payment = Payment(
            payment_id=session.session_id,
            machine_id=cabinet.machine_id,
            credits=credits,
            amount=session.amount_total,
            currency=session.currency,
            source=PaymentSource.STRIPE,
            received_at=utcnow(),
            payment_intent=session.payment_intent,
            event_id=session.event_id,
            event_type=session.event_type,
        )
        if not await self.hass.async_add_executor_job(self.ledger.record, payment):
            LOGGER.info(
                "Payment %s for %s was already credited; ignoring this delivery (event %s)",
                session.session_id,
                cabinet.machine_id,
                session.event_id,
            )
            return Outcome.DUPLICATE
        await self._async_deliver(cabinet, payment)
        return Outcome.CREDITED

    async def _async_credits_for(self, cabinet: Cabinet, session: PaidSession) -> int:
        """Credits bought, from the event when the price is known, else from Stripe."""
        link = session.payment_link_id
        known: LearnedPrice | None = None
        if (
            cabinet.config.managed_link
            and link == cabinet.config.payment_link_id
            and cabinet.config.unit_amount
        ):
            known = LearnedPrice(cabinet.config.unit_amount, cabinet.config.currency)
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
        if items.quantity < 1:
            raise CreditError(f"Stripe lists a quantity of {items.quantity}")
        return items.quantity

    async def async_add_manual_credit(self, cabinet: Cabinet, credits: int) -> str:
        """Give free credits (button or action); return the payment id used."""
        payment = Payment(
            payment_id=f"manual_{uuid.uuid4().hex}",
            machine_id=cabinet.machine_id,
            credits=credits,
            amount=0,
            currency=cabinet.config.currency,
            source=PaymentSource.MANUAL,
            received_at=utcnow(),
        )
        await self.hass.async_add_executor_job(self.ledger.record, payment)
        await self._async_deliver(cabinet, payment, raise_on_failure=True)
        return payment.payment_id

    async def _async_deliver(
        self, cabinet: Cabinet, payment: Payment, raise_on_failure: bool = False
    ) -> None:
        """Publish the coin pulse, then tell the entities and the bus."""
        pulse = CoinPulse(cabinet.machine_id, payment.credits, payment.received_at, payment.payment_id)
        try:
            await mqtt.async_publish(
                self.hass,
                topic(self.topic_prefix, cabinet.machine_id, TOPIC_COIN_PULSE),
                pulse.to_json(),
                qos=1,
                retain=False,
            )
        except HomeAssistantError as err:
            # The payment stays 'pending' in the ledger, where it can be found and re-sent.
            LOGGER.error(
                "Could not send %d credit(s) of %s to %s: %s",
                payment.credits,
                payment.payment_id,
                cabinet.machine_id,
                err,
            )
            if raise_on_failure:
                raise
            return
        await self.hass.async_add_executor_job(self.ledger.mark_published, payment.payment_id, utcnow())
        attributes = {
            ATTR_CREDITS: payment.credits,
            ATTR_PAYMENT_ID: payment.payment_id,
            ATTR_SOURCE: payment.source.value,
        }
        paid = payment.source is PaymentSource.STRIPE
        cabinet.credit(
            payment.credits,
            CabinetEvent(EVENT_TYPE_CREDIT_ADDED, attributes),
            paid_amount=payment.amount if paid else 0,
            paid_at=payment.received_at if paid else None,
        )
        self.hass.bus.async_fire(EVENT_CREDIT_ADDED, self._event_data(cabinet) | attributes)

    # --- MQTT messages from cabinets -------------------------------------------------------

    def _event_data(self, cabinet: Cabinet) -> dict[str, str | None]:
        return {ATTR_MACHINE_ID: cabinet.machine_id, "device_id": cabinet.device_id}

    def _cabinet_for_topic(self, message_topic: str) -> Cabinet | None:
        machine_id = machine_id_from_topic(self.topic_prefix, message_topic)
        return None if machine_id is None else self.cabinets.get(machine_id)

    def _warn_once(self, message_topic: str, err: ProtocolError) -> None:
        """Warn once per topic about malformed messages; a chatty cabinet must not flood the log."""
        if message_topic in self._warned_topics:
            LOGGER.debug("Ignoring malformed message on %s: %s", message_topic, err)
            return
        self._warned_topics.add(message_topic)
        LOGGER.warning(
            "Ignoring malformed message on %s: %s (further ones on this topic are logged at debug level)",
            message_topic,
            err,
        )

    @callback
    def _on_game_over(self, msg: mqtt.ReceiveMessage) -> None:
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        try:
            game_over = GameOver.from_payload(msg.payload)
            if game_over.machine_id != cabinet.machine_id:
                raise ProtocolError(f"machineId {game_over.machine_id!r} does not match the topic")
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        cabinet.game_over(self.credits_per_game, CabinetEvent(EVENT_TYPE_GAME_OVER))
        self.hass.bus.async_fire(EVENT_GAME_OVER, self._event_data(cabinet))

    @callback
    def _on_status(self, msg: mqtt.ReceiveMessage) -> None:
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        if not msg.payload:
            return  # A cleared retained status says nothing.
        try:
            online = parse_status(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        cabinet.set_online(online)

    @callback
    def _on_state(self, msg: mqtt.ReceiveMessage) -> None:
        if (cabinet := self._cabinet_for_topic(msg.topic)) is None:
            return
        if not msg.payload:
            return
        try:
            state = CabinetState.from_payload(msg.payload)
        except ProtocolError as err:
            self._warn_once(msg.topic, err)
            return
        cabinet.report_state(state)


__all__ = ["ArcadePayHub", "Outcome"]
