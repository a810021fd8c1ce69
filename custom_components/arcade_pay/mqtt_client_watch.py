"""Which of Home Assistant's MQTT clients holds the coin pulses the broker did not confirm.

Home Assistant's MQTT client keeps a QoS 1 message the broker did not confirm and sends it again
when it reconnects (core/delivery.py): such a pulse is not published again while that client
lives. A client lives from the MQTT integration's setup to its unload; reloading the MQTT
integration makes a new one, which never had those messages, so they must be sent again.

Telling clients apart reaches into the MQTT integration (``hass.data["mqtt"].client``, the same
in Home Assistant 2025.4 and 2026.2). Should that move, no client is found, every publish seems
to go through the same one, and what stays is core's rule: a later confirmed publish, or a
restart of Home Assistant, settles an unconfirmed pulse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
import weakref

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN


def mqtt_client(hass: HomeAssistant) -> Any:
    """Home Assistant's MQTT client object now, or None if it cannot be found."""
    return getattr(hass.data.get("mqtt"), "client", None)


class ClientWatch:
    """Tells when the MQTT client differs from the one of the last publish."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Watch ``hass``'s MQTT client; the first publish sets what is compared."""
        self._hass = hass
        self._last: weakref.ref[Any] | None = None

    def replaced(self) -> bool:
        """Return whether the client changed since the last call (not on the first)."""
        client = mqtt_client(self._hass)
        before = None if self._last is None else self._last()
        changed = self._last is not None and before is not client
        self._last = None if client is None else weakref.ref(client)
        return changed


@dataclass
class _Held:
    client: weakref.ref[Any] | None
    payment_ids: set[str] = field(default_factory=set)


# Kept in hass.data across entry reloads, gone with the process (as the client's messages are).
_HELD: HassKey[_Held] = HassKey(f"{DOMAIN}_held_by_mqtt_client")


def remember_held(hass: HomeAssistant, payment_ids: Iterable[str]) -> None:
    """The entry stops while the MQTT client holds these pulses unconfirmed."""
    client = mqtt_client(hass)
    held = hass.data.get(_HELD)
    if held is None or held.client is None or held.client() is not client:
        held = hass.data[_HELD] = _Held(None if client is None else weakref.ref(client))
    held.payment_ids.update(payment_ids)


def take_held(hass: HomeAssistant) -> set[str]:
    """The pulses the MQTT client still holds unconfirmed (none if it is another client now)."""
    held = hass.data.pop(_HELD, None)
    if held is None or held.client is None or held.client() is not mqtt_client(hass):
        return set()
    return held.payment_ids
