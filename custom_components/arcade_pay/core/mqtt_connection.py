"""Whether MQTT is connected: one answer for an entry's delivery and its cabinets' entities.

Plain Python (no Home Assistant import). The courier says when it changes; the delivery planner
holds pulses while it is down, and a cabinet's entities that need MQTT are unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class MqttConnection:
    """Whether MQTT takes messages now (assumed until Home Assistant's MQTT says otherwise)."""

    connected: bool = True
