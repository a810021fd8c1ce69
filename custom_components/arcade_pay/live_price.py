"""The price a Home Assistant QR code sells at now, changed without a reload (number.py, select.py).

The ledger remembers it first, then the cabinet takes it: the next scan's offer (Cabinet.offer)
follows at once, a restart keeps it, and a ledger that cannot be written changes nothing. One
change at a time per cabinet: the price and the pack set are written together, so two changes at
once must not each write back the other's old value.
"""

from __future__ import annotations

import asyncio
from weakref import WeakKeyDictionary

from homeassistant.core import HomeAssistant

from .core.cabinet import Cabinet
from .core.cabinet_config import QrTarget
from .core.ledger import PaymentLedger
from .core.pricing import PackSet
from .errors import translated_errors

_CHANGING: WeakKeyDictionary[Cabinet, asyncio.Lock] = WeakKeyDictionary()


def sells_live_price(cabinet: Cabinet) -> bool:
    """Whether the cabinet's price can change without a reload: its QR code is Home Assistant's."""
    return cabinet.config.qr_target is QrTarget.HOME_ASSISTANT and cabinet.unit_amount_now is not None


async def async_set_price(
    hass: HomeAssistant,
    ledger: PaymentLedger,
    cabinet: Cabinet,
    *,
    unit_amount: int | None = None,
    pack_set: PackSet | None = None,
) -> None:
    """Sell at ``unit_amount`` per credit and/or with ``pack_set`` from the next scan on.

    Raise a translated HomeAssistantError when the ledger cannot be written (nothing changed).
    """
    async with _CHANGING.setdefault(cabinet, asyncio.Lock()):
        unit = cabinet.unit_amount_now if unit_amount is None else unit_amount
        packs = cabinet.pack_set if pack_set is None else pack_set
        assert unit is not None  # sells_live_price: only such cabinets have the entities.
        with translated_errors():
            await hass.async_add_executor_job(
                ledger.set_cabinet_price, cabinet.machine_id, unit, packs.value, cabinet.price_basis
            )
        cabinet.set_price(unit, packs)
