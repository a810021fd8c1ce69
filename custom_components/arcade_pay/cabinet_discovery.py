"""Cabinets that announce themselves (core/announcement.py): their devices, and new ones offered.

A known cabinet's announcement sets its device's model and software version. An announcement
of a cabinet no entry has yet starts the discovery flow (config_flow.py, ``async_step_mqtt``).
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .core.announcement import Announcement
from .core.cabinet import Cabinet


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
