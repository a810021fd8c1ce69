"""A link follows its cabinet through restarts and Stripe errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from custom_components.arcade_pay.const import DOMAIN
from custom_components.arcade_pay.core.stripe_gateway import StripeConnectionError, StripeGateway
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, PREFIX, advance, failing_ledger

SWITCH = "switch.pac_man_accepting_payments"
PAYMENTS = "sensor.pac_man_payments"
LINK_ISSUE = f"link_still_on_{MACHINE_ID}"


# --- the ledger, Stripe and the switch agree across restarts -------------------------------


async def test_link_off_that_the_ledger_missed_is_turned_on_when_the_cabinet_is_back(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The offline rule switched the link off in Stripe, then could not write that down: the
    switch shows off, and the cabinet coming back turns the link on again."""
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    failing_ledger(monkeypatch, "set_cabinet_link", "disk I/O error")
    await advance(hass, freezer, 121)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"  # What Stripe has, whatever the disk did.

    monkeypatch.undo()
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(SWITCH).state == "on"
    assert hass.states.get(PAYMENTS).state == "accepting"


async def test_start_up_reads_each_links_active_from_stripe(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    """Home Assistant stopped between the offline rule's call to Stripe and the ledger write: after
    the restart the ledger says "on", Stripe "off". The start-up reads Stripe, and the cabinet,
    back online, gets its link back."""
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    fake_stripe.payment_links[cabinet_link["id"]]["active"] = False  # The rule's call, just before.
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")  # The cabinet's retained status.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
    assert hass.states.get(SWITCH).state == "on"
    assert hass.states.get(PAYMENTS).state == "accepting"


async def test_start_up_turns_off_a_paused_link_that_stripe_has_on(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
) -> None:
    """The other way round: activated in Stripe's dashboard while Home Assistant was down."""
    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    fake_stripe.payment_links[cabinet_link["id"]]["active"] = True
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert hass.states.get(SWITCH).state == "off"
    assert hass.states.get(PAYMENTS).state == "paused"


# --- the offline rule when Stripe fails ----------------------------------------------------


class FlakyStripe:
    """Stands in for StripeGateway.set_link_active: fails while ``down``, noting when it was asked."""

    def __init__(self, real: Callable[[StripeGateway, str, bool], Awaitable[None]]) -> None:
        self.real = real
        self.down = True
        self.asked: list[float] = []

    async def set_link_active(self, gateway: StripeGateway, link_id: str, active: bool) -> None:
        self.asked.append(dt_util.utcnow().timestamp())
        if self.down:
            raise StripeConnectionError("Stripe is unreachable")
        await self.real(gateway, link_id, active)


@pytest.fixture
async def offline_with_stripe_down(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> FlakyStripe:
    """The cabinet went offline; when the offline rule fires, Stripe does not answer."""
    flaky = FlakyStripe(StripeGateway.set_link_active)

    async def set_link_active(gateway: StripeGateway, link_id: str, active: bool) -> None:
        await flaky.set_link_active(gateway, link_id, active)

    monkeypatch.setattr(StripeGateway, "set_link_active", set_link_active)
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "offline")
    await hass.async_block_till_done()
    await advance(hass, freezer, 121)
    return flaky


async def test_offline_rule_retries_with_backoff(
    hass: HomeAssistant, offline_with_stripe_down: FlakyStripe, freezer: FrozenDateTimeFactory
) -> None:
    """After a Stripe error the offline rule tries again soon, then less and less often (10 s,
    doubling, up to every 5 minutes) while the link still takes money for the offline cabinet."""
    flaky = offline_with_stripe_down
    for _ in range(1000):
        await advance(hass, freezer, 1)
    gaps = [round(later - earlier) for earlier, later in zip(flaky.asked, flaky.asked[1:], strict=False)]
    assert gaps[:5] == [10, 20, 40, 80, 160]
    assert len(gaps) > 5
    assert set(gaps[5:]) == {300}
    assert hass.states.get(PAYMENTS).state == "stripe_pending"


async def test_link_that_cannot_be_switched_off_is_a_repair_until_it_is(
    hass: HomeAssistant,
    offline_with_stripe_down: FlakyStripe,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A repair tells the owner that an offline cabinet's link still takes money."""
    flaky = offline_with_stripe_down
    issues = ir.async_get(hass)
    assert len(flaky.asked) == 1
    await advance(hass, freezer, 10)
    assert len(flaky.asked) == 2
    assert issues.async_get_issue(DOMAIN, LINK_ISSUE) is None  # One blip is no alarm.
    await advance(hass, freezer, 20)
    assert len(flaky.asked) == 3
    issue = issues.async_get_issue(DOMAIN, LINK_ISSUE)
    assert issue is not None
    assert issue.translation_key == "link_still_on"
    assert issue.translation_placeholders == {"cabinet": "Pac-Man", "payment_link": cabinet_link["id"]}
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True

    flaky.down = False
    await advance(hass, freezer, 40)
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is False
    assert issues.async_get_issue(DOMAIN, LINK_ISSUE) is None
    assert hass.states.get(PAYMENTS).state == "offline"
    asked = len(flaky.asked)
    await advance(hass, freezer, 600)
    assert len(flaky.asked) == asked  # Done: no more calls.


async def test_cabinet_back_while_retrying_clears_the_repair(
    hass: HomeAssistant,
    offline_with_stripe_down: FlakyStripe,
    fake_stripe: FakeStripe,
    cabinet_link: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """The link need not be switched off any more once the cabinet is back."""
    await advance(hass, freezer, 10)
    await advance(hass, freezer, 20)
    assert ir.async_get(hass).async_get_issue(DOMAIN, LINK_ISSUE) is not None
    async_fire_mqtt_message(hass, f"{PREFIX}/status", "online")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, LINK_ISSUE) is None
    assert hass.states.get(PAYMENTS).state == "accepting"
    asked = len(offline_with_stripe_down.asked)
    await advance(hass, freezer, 600)
    assert len(offline_with_stripe_down.asked) == asked
    assert fake_stripe.payment_links[cabinet_link["id"]]["active"] is True
