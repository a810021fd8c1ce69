"""The quality scale's runtime rules: action exceptions, outages, reauthentication.

The platforms' own cases (button, switch, unavailability without MQTT) are in their test_<platform>.py.
"""

from __future__ import annotations

import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr

from custom_components.arcade_pay.const import DOMAIN
from fake_stripe import ACCOUNT_ID, FakeStripe

from .helpers import MACHINE_ID, failing_ledger, reconcile


def device_id(hass: HomeAssistant) -> str:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{ACCOUNT_ID}_{MACHINE_ID}")})
    assert device is not None
    return device.id


async def test_ledger_error_in_add_credit_is_translated(
    hass: HomeAssistant, setup_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """action-exceptions: a ledger failure is a translated HomeAssistantError, not a raw LedgerError."""
    failing_ledger(monkeypatch, "record", "disk I/O error")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "add_credit", {"device_id": device_id(hass), "credits": 1}, blocking=True
        )
    assert err.value.translation_key == "ledger_failed"


async def test_stripe_outage_is_logged_once_and_its_end_once(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """log-when-unavailable: not once per cabinet per hour.

    Reconciliation is called through runtime_data, not by the hourly timer: a server error makes
    Stripe's SDK retry after a sleep, which a frozen clock never ends; and a reload (start-up
    reconciliation) would start a new gateway that has not seen the outage.
    """
    data = setup_entry.runtime_data
    caplog.clear()
    fake_stripe.fail_next = 1000
    for _ in range(3):
        await data.async_reconcile()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "arcade_pay" in r.name]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    fake_stripe.fail_next = 0
    for _ in range(2):
        await data.async_reconcile()
    assert caplog.text.count("Stripe answers again") == 1


@pytest.mark.parametrize("call", ["reconcile", "switch"])
async def test_any_stripe_auth_error_starts_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    call: str,
) -> None:
    """reauthentication-flow: not only the create_payment_link action."""
    fake_stripe.fail_status = 401
    fake_stripe.fail_next = 1000
    if call == "reconcile":
        await reconcile(hass, freezer)
    else:
        with pytest.raises(HomeAssistantError):
            await hass.services.async_call(
                "switch", "turn_off", {"entity_id": "switch.pac_man_accepting_payments"}, blocking=True
            )
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_a_refused_request_is_not_an_outage(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """log-when-unavailable: a link deleted in Stripe is that cabinet's problem, said each time;
    it must not make every other call log "Stripe answers again"."""
    del fake_stripe.payment_links[cabinet_link["id"]]
    fake_stripe.fail_status = 404
    fake_stripe.fail_next = 1
    caplog.clear()
    await reconcile(hass, freezer)
    await reconcile(hass, freezer)
    assert caplog.text.count("Could not check Stripe for missed payments") == 1
    assert "Stripe requests fail" not in caplog.text
    assert "Stripe answers again" not in caplog.text
