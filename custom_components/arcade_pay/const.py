"""Constants for Arcade Pay."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.util.signal_type import SignalType

from .core.protocol import DEFAULT_TOPIC_PREFIX

if TYPE_CHECKING:
    from .core.cabinet import Cabinet

DOMAIN: Final = "arcade_pay"
LOGGER = logging.getLogger(__package__)

# Reconciliation with Stripe, and the webhook endpoint's check, run this often.
RECONCILE_INTERVAL: Final = timedelta(hours=1)
# Stuck-credit repairs, overdue refunds and the payment links' sync.
HOUSEKEEPING_INTERVAL: Final = timedelta(seconds=30)

# Entry data.
CONF_WEBHOOK_SECRET: Final = "webhook_secret"
CONF_CLOUDHOOK_URL: Final = "cloudhook_url"
# The endpoint Arcade Pay made in Stripe (one-step setup); absent when the operator made it by hand.
CONF_WEBHOOK_ENDPOINT_ID: Final = "webhook_endpoint_id"
CONF_ACCOUNT_NAME: Final = "account_name"
CONF_DEFAULT_CURRENCY: Final = "default_currency"
# The webhook of the earlier system's HTTP game over (game_over_webhook.py).
CONF_GAME_OVER_WEBHOOK_ID: Final = "game_over_webhook_id"
# The public webhook players' scans reach (stable QR codes); made once, never changed.
CONF_PLAYER_WEBHOOK_ID: Final = "player_webhook_id"
CONF_PLAYER_CLOUDHOOK_URL: Final = "player_cloudhook_url"

# Entry options (their defaults: data.EntryOptions).
CONF_TOPIC_PREFIX: Final = "topic_prefix"
CONF_CREDITS_PER_GAME: Final = "credits_per_game"
CONF_OFFLINE_MINUTES: Final = "offline_minutes"
CONF_REFUND_UNDELIVERED: Final = "refund_undelivered"
CONF_REFUND_MINUTES: Final = "refund_minutes"

# Cabinet subentries.
SUBENTRY_CABINET: Final = "cabinet"
CONF_MACHINE_ID: Final = "machine_id"
CONF_PRICE: Final = "price"
CONF_CURRENCY: Final = "currency"
CONF_MAX_QUANTITY: Final = "max_quantity"
CONF_PAYMENT_LINK_ID: Final = "payment_link_id"
CONF_PAYMENT_LINK_URL: Final = "payment_link_url"
CONF_PRICE_ID: Final = "price_id"
CONF_PRODUCT_ID: Final = "product_id"
CONF_UNIT_AMOUNT: Final = "unit_amount"
# True when Arcade Pay created the link (and so knows it sells exactly one price).
CONF_MANAGED_LINK: Final = "managed_link"
DEFAULT_MAX_QUANTITY: Final = 10
# Whether the cabinet acknowledges pulses; absent: learned from the first acknowledgement.
CONF_ACKNOWLEDGES: Final = "acknowledges"
# The cabinet never publishes anything (the earlier system's): its link takes payments without a sign of life.
CONF_NEVER_REPORTS: Final = "never_reports"
# Where the QR code points (core.cabinet.QrTarget); what a scan of a Home Assistant QR code sells.
CONF_QR_TARGET: Final = "qr_target"
CONF_PACKS: Final = "packs"  # stored as [[credits, amount], …] in minor units
CONF_HAPPY_HOUR_PACKS: Final = "happy_hour_packs"
CONF_ALLOW_PROMOTION_CODES: Final = "allow_promotion_codes"
# The cabinet's part of its stable URL: made with the cabinet, never shown, never changed.
CONF_SCAN_TOKEN: Final = "scan_token"

# Bus events for automations.
EVENT_GAME_OVER: Final = "arcade_pay_game_over"
EVENT_CREDIT_ADDED: Final = "arcade_pay_credit_added"

# Event entity event types.
EVENT_TYPE_GAME_OVER: Final = "game_over"
EVENT_TYPE_CREDIT_ADDED: Final = "credit_added"

ATTR_MACHINE_ID: Final = "machine_id"
ATTR_CREDITS: Final = "credits"
ATTR_PAYMENT_ID: Final = "payment_id"
ATTR_SOURCE: Final = "source"


def cabinet_added_signal(entry_id: str) -> SignalType[Cabinet]:
    """Sent with the Cabinet when one is added while the entry runs (cabinet_roster.py)."""
    return SignalType(f"{DOMAIN}_cabinet_added_{entry_id}")


__all__ = ["DEFAULT_TOPIC_PREFIX"]
