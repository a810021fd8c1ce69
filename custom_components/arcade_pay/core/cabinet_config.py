"""A cabinet as the owner configured it (a config subentry), and where its QR code points.

Plain Python, a leaf: the cabinet (cabinet.py), its live price (cabinet_price.py) and the forms
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .pricing import Pack


class QrTarget(StrEnum):
    """Where a cabinet's QR code points: Home Assistant's stable URL, or its Stripe payment link."""

    HOME_ASSISTANT = "home_assistant"
    PAYMENT_LINK = "payment_link"


@dataclass(frozen=True, slots=True)
class CabinetConfig:
    """A cabinet as the user configured it (a config subentry)."""

    subentry_id: str
    machine_id: str
    name: str
    currency: str
    max_quantity: int
    payment_link_id: str
    payment_link_url: str
    managed_link: bool
    unit_amount: int | None = None
    price_id: str | None = None
    product_id: str | None = None
    # The earlier system's cabinets publish nothing: the owner vouches that they are there.
    never_reports: bool = False
    qr_target: QrTarget = QrTarget.PAYMENT_LINK
    packs: tuple[Pack, ...] = ()
    happy_hour_packs: tuple[Pack, ...] = ()
    allow_promotion_codes: bool = False
    scan_token: str | None = None  # the cabinet's part of its stable URL, for its whole life
