"""Helpers of the platform tests: one snapshot set for both Home Assistant versions we test.

Home Assistant's own syrupy extension serializes registry entries field by field, and the
fields are not the same in 2025.4.4 and 2026.2.3. Keeping two snapshot sets would let them drift
apart, so the fields only one version has are dropped here. Each is a registry detail
Home Assistant sets, not something Arcade Pay decides:

- entity registry, 2026.2 only: ``object_id_base`` (the name the entity id was made from,
  already visible as ``original_name``) and ``suggested_object_id`` (None: we suggest none).
- device registry, 2025.4 only: ``suggested_area`` (None: we suggest none; 2026.2's serializer
  drops its private successor ``_suggested_area``) and ``is_new`` (whether the registry
  created the device during this run, always True in a test).

Everything else is compared in full; a test whose state holds a random value (an image's
access token) replaces that value with a matcher.
"""

from __future__ import annotations

from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)
from syrupy.types import SerializableData

from homeassistant.helpers import device_registry as dr, entity_registry as er

from custom_components.arcade_pay.const import DOMAIN
from fake_stripe import ACCOUNT_ID

from .helpers import MACHINE_ID

ENTITY_FIELDS_OF_ONE_VERSION = ("object_id_base", "suggested_object_id")
DEVICE_FIELDS_OF_ONE_VERSION = ("suggested_area", "is_new")


class ArcadePaySnapshotSerializer(HomeAssistantSnapshotSerializer):
    """Home Assistant's serializer without the registry fields only one version has."""

    @classmethod
    def _serializable_entity_registry_entry(cls, data: er.RegistryEntry) -> SerializableData:
        serialized = super()._serializable_entity_registry_entry(data)
        assert isinstance(serialized, dict)
        for field in ENTITY_FIELDS_OF_ONE_VERSION:
            serialized.pop(field, None)
        return serialized

    @classmethod
    def _serializable_device_registry_entry(cls, data: dr.DeviceEntry) -> SerializableData:
        serialized = super()._serializable_device_registry_entry(data)
        assert isinstance(serialized, dict)
        for field in DEVICE_FIELDS_OF_ONE_VERSION:
            serialized.pop(field, None)
        return serialized


class ArcadePaySnapshotExtension(HomeAssistantSnapshotExtension):
    """Snapshots in ``tests/snapshots/``, serialized alike on both Home Assistant versions."""

    serializer_class = ArcadePaySnapshotSerializer


def assert_on_cabinet_device(
    device_registry: dr.DeviceRegistry, entity_registry: er.EntityRegistry, entry_id: str, subentry_id: str
) -> None:
    """Every entity of the entry belongs to the cabinet's device and to the cabinet's subentry.

    The snapshots show these ids as ANY (they change each run); this checks what they point at.
    """
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device is not None
    entities = er.async_entries_for_config_entry(entity_registry, entry_id)
    assert entities
    for entity in entities:
        assert (entity.device_id, entity.config_subentry_id) == (device.id, subentry_id), entity.entity_id
