"""The cabinet's QR code, to print or to show on the attract screen.

With the QR code on Home Assistant it holds the cabinet's stable URL (player_webhook.py), which
no price, link or secret change alters; else the Stripe payment link, as before.
"""

from __future__ import annotations

import io

import segno

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity
from homeassistant.util import dt as dt_util

from .core.cabinet import Cabinet
from .core.cabinet_config import QrTarget
from .core.pricing import price_per_credit
from .data import ArcadePayConfigEntry
from .entity import ArcadePayEntity, add_cabinet_entities
from .helpers import player_url

PARALLEL_UPDATES = 0

PAYMENT_QR_CODE = ImageEntityDescription(key="payment_qr_code", translation_key="payment_qr_code")


def qr_code_png(url: str) -> bytes:
    """Render ``url`` as a PNG QR code big enough to scan from across a cabinet."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=10, border=4)
    return buffer.getvalue()


def qr_url(hass: HomeAssistant, entry: ArcadePayConfigEntry, cabinet: Cabinet) -> str:
    """What the cabinet's QR code holds: its stable URL, or its payment link."""
    config = cabinet.config
    if config.qr_target is QrTarget.HOME_ASSISTANT and config.scan_token:
        return player_url(hass, entry.data, config.scan_token)
    return config.payment_link_url


def link_attributes(cabinet: Cabinet, url: str) -> dict[str, str]:
    """The link the QR code holds (public: players open it) and what it sells, to copy and check."""
    config = cabinet.config
    attributes = {"url": url}
    if unit_amount := cabinet.unit_amount_now:  # Unknown for an adopted link that sells several prices.
        attributes["price_per_credit"] = price_per_credit(unit_amount, config.currency)
    return attributes


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ArcadePayConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one QR code per cabinet."""
    add_cabinet_entities(
        entry,
        async_add_entities,
        lambda account, _, cabinet: [ArcadePayQrCode(hass, account, cabinet, qr_url(hass, entry, cabinet))],
    )


class ArcadePayQrCode(ArcadePayEntity, ImageEntity, RestoreEntity):
    """QR code of the cabinet's payment link (changes only when the link does).

    Its state is the time the image last changed: kept across restarts and reloads
    while the link stays the same, so the logbook and history show only real changes.
    """

    _attr_content_type = "image/png"

    def __init__(self, hass: HomeAssistant, account_id: str, cabinet: Cabinet, url: str) -> None:
        """Render once; the link of a cabinet only changes through a reload."""
        ArcadePayEntity.__init__(self, account_id, cabinet, PAYMENT_QR_CODE)
        ImageEntity.__init__(self, hass)
        self._png: bytes | None = None
        self._attr_image_last_updated = dt_util.utcnow()
        self._url = url
        self._attr_extra_state_attributes = link_attributes(cabinet, url)

    async def async_added_to_hass(self) -> None:
        """Keep the time of the last change when the link is the one shown before."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is None or last.attributes.get("url") != self._url:
            return
        if (since := dt_util.parse_datetime(last.state)) is not None:
            self._attr_image_last_updated = since

    def _handle_cabinet_change(self, event: object) -> None:
        """The QR code does not follow credits or game state; its price follows the live price."""
        if (attributes := link_attributes(self.cabinet, self._url)) != self._attr_extra_state_attributes:
            self._attr_extra_state_attributes = attributes
            self.async_write_ha_state()

    async def async_image(self) -> bytes | None:
        """Return the PNG, rendered in the executor on first request."""
        if self._png is None:
            self._png = await self.hass.async_add_executor_job(qr_code_png, self._url)
        return self._png
