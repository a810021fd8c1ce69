"""What a cabinet's next scan sells: its live price and packs (the Price per credit and Packs entities).

Plain Python; mixed into Cabinet (cabinet.py), whose configuration and listeners it uses. The
live price applies only while the QR code points to Home Assistant: a payment link's price is
the link's, which Stripe cannot change.
"""

from __future__ import annotations

from collections.abc import Callable

from .cabinet_config import CabinetConfig, QrTarget
from .pricing import Offer, PackSet


class LivePrice:
    """The price and pack set of the next scan, and what they were set under."""

    config: CabinetConfig
    _live_unit_amount: int | None
    pack_set: PackSet
    _changed: Callable[[], None]

    @property
    def unit_amount_now(self) -> int | None:
        """What one credit costs now; None for an adopted link that sells several prices.

        With the QR code on Home Assistant, the Price per credit the entity set; on the payment
        link, the link's price (Stripe cannot change it).
        """
        if self.config.qr_target is QrTarget.HOME_ASSISTANT:
            return self._live_unit_amount
        return self.config.unit_amount

    @property
    def price_basis(self) -> str:
        """What a remembered live price was set under: the cabinet (its token), currency, form price.

        A cabinet deleted and added again, or a new price in its form, starts from the form's price.
        """
        return f"{self.config.scan_token} {self.config.currency} {self.config.unit_amount}"

    def offer(self) -> Offer:
        """What the next scan sells; ValueError when the cabinet has no single price."""
        unit_amount = self.unit_amount_now
        if unit_amount is None:
            raise ValueError(f"{self.config.machine_id} sells no single price")
        packs = {
            PackSet.NONE: (),
            PackSet.PACKS: self.config.packs,
            PackSet.HAPPY_HOUR_PACKS: self.config.happy_hour_packs,
        }[self.pack_set]
        return Offer(
            self.config.currency,
            unit_amount,
            packs,
            self.config.max_quantity,
            self.config.allow_promotion_codes,
        )

    def set_price(self, unit_amount: int, pack_set: PackSet) -> None:
        """The live price or pack set changed (the ledger has it already)."""
        if (unit_amount, pack_set) != (self._live_unit_amount, self.pack_set):
            self._live_unit_amount, self.pack_set = unit_amount, pack_set
            self._changed()

    def restore_price(self, unit_amount: int | None, pack_set: str | None, basis: str | None) -> None:
        """Take back the live price the ledger remembers, if it was set under this price_basis."""
        if basis != self.price_basis or self.config.scan_token is None:
            return
        if unit_amount is not None:
            self._live_unit_amount = unit_amount
        if pack_set in set(PackSet):
            self.pack_set = PackSet(pack_set)
