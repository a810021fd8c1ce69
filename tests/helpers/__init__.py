"""Helpers the tests share: the test account, the ledger file, MQTT, payments, time and flows.

Fixtures are in ``tests/conftest.py``; these are the plain functions and constants the tests
call. Tests observe through states, the registries, services, MQTT, time passing and the
ledger's file, never through ``entry.runtime_data``.
"""

from .clock import advance, housekeeping, reconcile, run_timers
from .entry import (
    API_KEY,
    MACHINE_ID,
    PREFIX,
    UNIT_AMOUNT,
    WEBHOOK_ID,
    cabinet_device_id,
    cabinet_subentry,
    managed_link,
)
from .flows import NEW_CABINET, start_cabinet_flow, start_reconfigure
from .ledger_file import (
    failing_ledger,
    ledger_uses_after_close,
    on_ledger_file,
    patch_ledger,
    payment_record,
    payment_state,
    record_then_wait,
    remember_seen,
    remembers_acknowledging,
    wait_for,
)
from .mqtt import clean_mqtt_client, published, pulses, set_connected
from .payments import pay, post_delivery, refund_undelivered_of_an_offline_cabinet, settle

__all__ = [
    "API_KEY",
    "MACHINE_ID",
    "NEW_CABINET",
    "PREFIX",
    "UNIT_AMOUNT",
    "WEBHOOK_ID",
    "advance",
    "cabinet_device_id",
    "cabinet_subentry",
    "clean_mqtt_client",
    "failing_ledger",
    "housekeeping",
    "ledger_uses_after_close",
    "managed_link",
    "on_ledger_file",
    "patch_ledger",
    "pay",
    "payment_record",
    "payment_state",
    "post_delivery",
    "published",
    "pulses",
    "reconcile",
    "record_then_wait",
    "refund_undelivered_of_an_offline_cabinet",
    "remember_seen",
    "remembers_acknowledging",
    "run_timers",
    "set_connected",
    "settle",
    "start_cabinet_flow",
    "start_reconfigure",
    "wait_for",
]
