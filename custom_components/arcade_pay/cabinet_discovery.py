"""Cabinets that announce themselves (core/announcement.py): their devices, and new ones offered.

A known cabinet's announcement sets its device's model and software version. An announcement
of a cabinet no entry has yet starts the discovery flow (config_flow.py, ``async_step_mqtt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.mqtt import ReceiveMessage
from homeassistant.config_entries import SOURCE_MQTT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, discovery_flow
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from .const import DOMAIN
from .core.announcement import Announcement
from .core.cabinet import Cabinet
from .core.protocol import (
    TOPIC_INFO,
    TOPIC_STATUS,
    Payload,
    ProtocolError,
    is_valid_new_machine_id,
    is_valid_topic_prefix,
    parse_status,
)


@callback
def show_announcement(hass: HomeAssistant, cabinet: Cabinet, announcement: Announcement) -> None:
    """Show what the cabinet says it is on its device; what it does not say stays as it was."""
    if cabinet.device_id is None:
        return
    changes: dict[str, Any] = {}
    if announcement.model is not None:
        changes["model"] = announcement.model
    if announcement.sw_version is not None:
        changes["sw_version"] = announcement.sw_version
    if changes:
        dr.async_get(hass).async_update_device(cabinet.device_id, **changes)


@dataclass(frozen=True, slots=True)
class FoundCabinet:
    """A cabinet seen on MQTT: its topics' prefix, machine id, and the name it gave (or its id)."""

    prefix: str
    machine_id: str
    name: str
    # From its announcement; else from its retained status (older cabinets), which has no name.
    announced: bool

    @property
    def unique_id(self) -> str:
        """One discovery per cabinet, remembered when ignored: its topics, not any account's."""
        return f"cabinet:{self.prefix}/{self.machine_id}"


def found_cabinet(message_topic: str, payload: Payload) -> FoundCabinet | None:
    """The cabinet an announcement or a status message shows, or None when it shows none."""
    prefix, _, rest = message_topic.rpartition("/")
    prefix, _, machine_id = prefix.rpartition("/")
    if not is_valid_topic_prefix(prefix) or not is_valid_new_machine_id(machine_id) or not payload:
        return None
    try:
        if rest == TOPIC_INFO:
            announcement = Announcement.from_payload(payload, machine_id)
            return FoundCabinet(prefix, machine_id, announcement.name, announced=True)
        if rest == TOPIC_STATUS:
            parse_status(payload)
            return FoundCabinet(prefix, machine_id, machine_id, announced=False)
    except ProtocolError:
        return None
    return None


@callback
def offer_cabinet(hass: HomeAssistant, msg: ReceiveMessage) -> None:
    """Offer an unknown cabinet seen on the entry's own topics, as MQTT discovery does for the manifest's.

    The manifest's topics are the default prefix's; this also finds cabinets under another prefix,
    and those that announced themselves before the Stripe account was added (MQTT discovery does
    not repeat a message it has handled). The flow drops what is ignored, offered or added already.
    """
    discovery_flow.async_create_flow(
        hass,
        DOMAIN,
        {"source": SOURCE_MQTT},
        MqttServiceInfo(
            topic=msg.topic,
            payload=msg.payload,
            qos=msg.qos,
            retain=msg.retain,
            subscribed_topic=msg.subscribed_topic,
            timestamp=msg.timestamp,
        ),
    )


@callback
def withdraw_offer(hass: HomeAssistant, prefix: str, machine_id: str) -> None:
    """A cabinet was added by hand: it is no longer offered as discovered."""
    unique_id = FoundCabinet(prefix, machine_id, machine_id, announced=False).unique_id
    for flow in hass.config_entries.flow.async_progress_by_handler(
        DOMAIN, match_context={"unique_id": unique_id}
    ):
        hass.config_entries.flow.async_abort(flow["flow_id"])
