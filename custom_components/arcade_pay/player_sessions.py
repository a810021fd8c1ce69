"""Checkout Sessions Arcade Pay opens for a scan, what their players see, and closing them.

player_webhook.py answers the HTTP; this module decides. A scan opens a session only when
the cabinet takes money now and the scan limits allow (core/rate_limit.py); the session sells
the cabinet's offer of this moment (core/pricing.py), written into its metadata and the
ledger, so a price changed before payment never changes what the player was promised.

When a player's page asks about a session the ledger has no payment for yet, Stripe is asked
directly and a paid session goes through intake's one idempotent path: the credit does not wait
for Stripe's webhook, which then arrives as a duplicate. When a cabinet stops taking money,
its open sessions are expired in Stripe: a checkout opened before cannot be paid after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import time
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from homeassistant.core import HomeAssistant

from .const import LOGGER
from .core.cabinet import Cabinet, PaymentsState
from .core.cabinet_config import QrTarget
from .core.ledger import LedgerError, PaymentLedger
from .core.ledger_checkout import CheckoutOffer, CheckoutStatus, PlayerView
from .core.payments import IgnoredEvent, WebhookRejected, paid_session
from .core.pricing import OFFER_METADATA_KEY, offer_metadata
from .core.rate_limit import ScanLimits
from .core.stripe_gateway import StripeGateway, StripeGatewayError
from .entry_work import EntryWork
from .intake import Intake
from .player import pages

# Stripe's shortest allowed lifetime of a Checkout Session is 30 minutes from when it receives the
# request: one minute more, so that the time the request takes cannot make it too short.
SESSION_LIFETIME_SECONDS: Final = 31 * 60
# A page polled every second asks Stripe about its session at most this often.
STRIPE_LOOKUP_INTERVAL: Final = 3.0
# A scan of a cabinet in one of these states is refused with this page text.
_REFUSALS: Final = {
    PaymentsState.PAUSED: "refused_paused",
    PaymentsState.OFFLINE: "refused_offline",
    PaymentsState.WAITING: "refused_waiting",
}


class ScanRefused(Exception):
    """No session for this scan; ``reason`` is the player page's text key."""

    def __init__(self, reason: str, retry_after: int = 0) -> None:
        """Refused for ``reason``; a rate limit says when to try again."""
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(slots=True)
class PlayerSessions:
    """One entry's scans and player pages."""

    hass: HomeAssistant
    ledger: PaymentLedger
    gateway: Callable[[], StripeGateway]
    cabinets: Mapping[str, Cabinet]
    intake: Intake
    work: EntryWork
    limits: ScanLimits
    refund_after: float | None  # seconds; None: the owner did not turn automatic refunds on
    _looked_up: dict[str, float]

    @classmethod
    def create(
        cls,
        hass: HomeAssistant,
        ledger: PaymentLedger,
        gateway: Callable[[], StripeGateway],
        cabinets: Mapping[str, Cabinet],
        intake: Intake,
        work: EntryWork,
        refund_after: float | None,
    ) -> PlayerSessions:
        """Scans for ``cabinets``, recorded in ``ledger``, sessions through ``gateway``."""
        return cls(hass, ledger, gateway, cabinets, intake, work, ScanLimits(), refund_after, {})

    async def async_cabinet_for_token(self, token: str) -> Cabinet:
        """The running cabinet a QR code's token belongs to.

        Raises LookupError("retired") for a deleted cabinet's token, LookupError("unknown") else.
        """
        for cabinet in self.cabinets.values():
            # A code on its payment link is not published: its token opens nothing.
            if cabinet.config.scan_token == token and not cabinet.removed:
                if cabinet.config.qr_target is QrTarget.HOME_ASSISTANT:
                    return cabinet
                raise LookupError("unknown")
        state = await self.hass.async_add_executor_job(self.ledger.scan_token_state, token)
        raise LookupError("retired" if state is not None and state[0] == "retired" else "unknown")

    def refusal(self, cabinet: Cabinet) -> str | None:
        """Why the cabinet takes no money now (a page text key), or None when it does."""
        if cabinet.wants_payments:
            return None
        return _REFUSALS.get(cabinet.payments_state, "refused_unavailable")

    async def async_scan(self, cabinet: Cabinet, client: str, scan_url: str, language: str) -> str:
        """Open a Checkout Session for a scan and return its URL; raise ScanRefused."""
        if (reason := self.refusal(cabinet)) is not None:
            raise ScanRefused(reason)
        if wait := self.limits.try_admit(cabinet.machine_id, client):
            LOGGER.info("Scan of %s from %s refused: too many sessions", cabinet.machine_id, client)
            raise ScanRefused("too_many", max(1, round(wait)))
        offer = cabinet.offer()
        now = int(time.time())
        metadata = offer_metadata(offer)
        names = [
            f"{cabinet.config.name}: {pages.credits_text(language, line.credits)}" for line in offer.lines
        ]
        try:
            session = await self.gateway().create_checkout_session(
                machine_id=cabinet.machine_id,
                currency=offer.currency,
                lines=[(line.amount, name) for line, name in zip(offer.lines, names, strict=True)],
                max_quantity=offer.max_quantity,
                metadata=metadata,
                allow_promotion_codes=offer.allow_promotion_codes,
                client_reference_id=f"arcade_pay-{cabinet.machine_id}",
                success_url=_with_query(scan_url, s="{CHECKOUT_SESSION_ID}"),
                cancel_url=_with_query(scan_url, cancelled="1"),
                expires_at=now + SESSION_LIFETIME_SECONDS,
            )
        except StripeGatewayError as err:
            LOGGER.warning("Could not open a checkout for %s: %s", cabinet.machine_id, err)
            raise ScanRefused("refused_unavailable") from err
        record = CheckoutOffer(
            session.id,
            cabinet.machine_id,
            now,
            session.expires_at,
            metadata[OFFER_METADATA_KEY],
            offer.unit_amount,
            offer.currency,
            offer.allow_promotion_codes,
        )
        await self.hass.async_add_executor_job(self.ledger.record_checkout_offer, record)
        if not cabinet.wants_payments:  # It stopped while Stripe answered: close what we opened.
            await self.async_expire_open(cabinet)
            raise ScanRefused(self.refusal(cabinet) or "refused_unavailable")
        return session.url

    async def async_view(self, cabinet: Cabinet, session_id: str) -> PlayerView | None:
        """What the player page of ``session_id`` shows; None when it is not this cabinet's."""
        view = await self._async_view(session_id)
        if view is None or view.machine_id != cabinet.machine_id:
            return None
        if view.state == "unpaid" and self._may_look_up(session_id):
            await self._async_credit_from_stripe(session_id)
            view = await self._async_view(session_id)
        return view

    async def _async_view(self, session_id: str) -> PlayerView | None:
        return await self.hass.async_add_executor_job(
            self.ledger.player_view, session_id, time.time(), self.refund_after
        )

    def _may_look_up(self, session_id: str) -> bool:
        now = time.monotonic()
        if now - self._looked_up.get(session_id, -STRIPE_LOOKUP_INTERVAL) < STRIPE_LOOKUP_INTERVAL:
            return False
        self._looked_up[session_id] = now
        if len(self._looked_up) > 1024:  # Old lookups need no memory: their pages stopped polling.
            self._looked_up = {k: v for k, v in self._looked_up.items() if now - v < 60}
        return True

    async def _async_credit_from_stripe(self, session_id: str) -> None:
        """The player came back before the webhook: ask Stripe, and credit a paid session now."""
        try:
            raw = await self.gateway().checkout_session(session_id)
        except StripeGatewayError as err:
            LOGGER.debug("Could not look up %s for its player: %s", session_id, err)
            return
        if raw.get("status") == "expired":
            await self.hass.async_add_executor_job(
                self.ledger.set_checkout_status, session_id, CheckoutStatus.EXPIRED
            )
            return
        try:
            notice = paid_session(raw, f"player_page:{session_id}", "checkout.session.completed")
        except WebhookRejected as err:
            LOGGER.warning("Stripe's answer for %s is not a checkout session: %s", session_id, err)
            return
        if isinstance(notice, IgnoredEvent):
            return
        try:
            await self.work.run(self.intake.async_handle_paid_session(notice))
        except Exception as err:
            LOGGER.warning(
                "Could not credit %s from its player page now (%s); the webhook will", session_id, err
            )

    def watch(self, cabinet: Cabinet) -> Callable[[], None]:
        """Expire the cabinet's open sessions whenever it stops taking money; return the undo."""
        taking = [cabinet.wants_payments]

        def changed(_: object) -> None:
            was, taking[0] = taking[0], cabinet.wants_payments
            if was and not taking[0] and cabinet.config.scan_token is not None:
                self.work.spawn(self.async_expire_open(cabinet), cancellable=True, background=True)

        return cabinet.add_listener(changed)

    async def async_remember_tokens(self, cabinets: list[Cabinet]) -> None:
        """The ledger knows every token it served, so a deleted cabinet's code can say it is gone."""
        tokens = [(c.config.scan_token, c.machine_id, c.config.name) for c in cabinets if c.config.scan_token]
        await self.hass.async_add_executor_job(self.ledger.remember_scan_tokens, tokens)

    async def async_close_deleted(self, cabinets: list[Cabinet]) -> None:
        """Deleted cabinets: their open checkouts expire, their codes answer "gone" from now on."""
        for cabinet in cabinets:
            if not cabinet.config.scan_token:
                continue
            await self.async_expire_open(cabinet)
            try:
                await self.hass.async_add_executor_job(
                    self.ledger.retire_scan_token, cabinet.config.scan_token, int(time.time())
                )
            except LedgerError as err:  # Its code then answers "not found" instead of "gone".
                LOGGER.warning("Could not note that %s was deleted: %s", cabinet.machine_id, err)

    async def async_expire_open(self, cabinet: Cabinet) -> None:
        """Expire the cabinet's open sessions in Stripe: it takes no money now."""
        now = int(time.time())
        for checkout in await self.hass.async_add_executor_job(
            self.ledger.open_checkout_offers, cabinet.machine_id, now
        ):
            session_id = checkout.session_id
            try:
                closed = await self.gateway().expire_checkout_session(session_id)
            except StripeGatewayError as err:
                LOGGER.warning(
                    "Could not expire checkout %s of %s, which takes no money now (%s); a payment on "
                    "it is credited when the cabinet takes money again, or refunded by the usual rules",
                    session_id,
                    cabinet.machine_id,
                    err,
                )
                continue
            status = CheckoutStatus.COMPLETE if closed.get("status") == "complete" else CheckoutStatus.EXPIRED
            await self.hass.async_add_executor_job(self.ledger.set_checkout_status, session_id, status)


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added; ``{CHECKOUT_SESSION_ID}`` stays unescaped for Stripe."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params, safe="{}")]))
    return urlunsplit(parts._replace(query=query))
