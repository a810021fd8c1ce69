"""A cabinet's announcement of itself: the retained ``<prefix>/<id>/info`` message.

Standard library only, like protocol.py (the agent runs this file through its symlink
cabinet/arcade_cabinet/announcement.py). Cabinets that speak it publish it retained on every
connect; older cabinets do not, and keep working without it. Home Assistant uses it to offer the
cabinet as discovered, and to show the cabinet's model and software version on its device.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any, Final

from .protocol import Payload, ProtocolError, _boolean, _field, _json_object, _machine_id

# A name, model or version is a label on a screen, not a document.
MAX_LABEL_LENGTH: Final = 100


def label(value: Any) -> str:
    """Printable text of 1 to MAX_LABEL_LENGTH characters, spaces at either end removed."""
    if not isinstance(value, str):
        raise ProtocolError("expected text")
    text = value.strip()
    if not 1 <= len(text) <= MAX_LABEL_LENGTH or not text.isprintable():
        raise ProtocolError(f"expected printable text of 1 to {MAX_LABEL_LENGTH} characters")
    return text


def _optional_label(data: dict[str, Any], key: str) -> str | None:
    """An optional label; ``null`` or an absent key mean "not said"."""
    return None if data.get(key) is None else _field(data, key, label)


@dataclass(frozen=True, slots=True)
class Announcement:
    """Who a cabinet is: its machine id, name, model and software version."""

    machine_id: str
    name: str
    model: str | None = None
    sw_version: str | None = None
    acknowledges: bool = False

    def to_json(self) -> str:
        """Serialize for the retained info topic."""
        message: dict[str, Any] = {"machineId": self.machine_id, "name": self.name}
        if self.model is not None:
            message["model"] = self.model
        if self.sw_version is not None:
            message["swVersion"] = self.sw_version
        if self.acknowledges:
            message["acknowledges"] = True
        return json.dumps(message, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: Payload, machine_id: str | None = None) -> Announcement:
        """Parse an announcement, raising ProtocolError when it is not one.

        ``machine_id`` is the topic's: an announcement naming another cabinet is refused, since
        offering or labelling the wrong cabinet would credit the wrong one.
        """
        data = _json_object(payload)
        announced = _field(data, "machineId", _machine_id)
        if machine_id is not None and announced != machine_id:
            raise ProtocolError(f"machineId {announced!r} does not match the topic")
        acknowledges = data.get("acknowledges")
        return cls(
            announced,
            _field(data, "name", label),
            _optional_label(data, "model"),
            _optional_label(data, "swVersion"),
            False if acknowledges is None else _field(data, "acknowledges", _boolean),
        )
