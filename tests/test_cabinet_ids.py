"""One cabinet per topic, and machine ids that start with a letter or digit."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.const import CONF_API_KEY, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.arcade_pay.const import (
    CONF_CREDITS_PER_GAME,
    CONF_MACHINE_ID,
    CONF_NEVER_REPORTS,
    CONF_PAYMENT_LINK_ID,
    CONF_TOPIC_PREFIX,
    DOMAIN,
)
from custom_components.arcade_pay.core.protocol import is_valid_machine_id, is_valid_new_machine_id
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, NEW_CABINET, cabinet_subentry, managed_link, start_cabinet_flow

OPTIONS = {"offline_minutes": 5, "refund_undelivered": False, "refund_minutes": 30, CONF_CREDITS_PER_GAME: 1}


def other_account(fake: FakeStripe, prefix: str, machine_id: str = "galaga-2") -> MockConfigEntry:
    """A second Stripe account's entry with one cabinet (not set up: configured is enough)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Other Arcade",
        unique_id="acct_other",
        data={CONF_API_KEY: "sk_test_other"},
        options={CONF_TOPIC_PREFIX: prefix},
        subentries_data=[cabinet_subentry(managed_link(fake, machine_id), machine_id, "Galaga")],
    )


@pytest.mark.parametrize("machine_id", ["-galaga", "_galaga", "-", "_"])
def test_new_machine_id_starts_with_a_letter_or_digit(machine_id: str) -> None:
    assert is_valid_machine_id(machine_id)  # Cabinets configured before keep working.
    assert not is_valid_new_machine_id(machine_id)


@pytest.mark.parametrize("machine_id", ["galaga-2", "2galaga", "G", "a_-b", "x" * 64])
def test_new_machine_id_accepted(machine_id: str) -> None:
    assert is_valid_new_machine_id(machine_id)


@pytest.mark.parametrize("machine_id", ["", "x" * 65, "a/b", "ä", "a b"])
def test_new_machine_id_is_a_machine_id(machine_id: str) -> None:
    assert not is_valid_new_machine_id(machine_id)


@pytest.mark.parametrize("machine_id", ["-galaga", "_galaga"])
@pytest.mark.parametrize("step", ["new_link", "existing_link"])
async def test_form_refuses_a_machine_id_that_starts_with_a_sign(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, machine_id: str, step: str
) -> None:
    """A machine id like "-galaga" is refused: command-line tools read it as an option."""
    links_before = len(fake_stripe.payment_links)
    earlier = fake_stripe.add_older_link(machine_id, 100)
    result = await start_cabinet_flow(hass, setup_entry, step)
    user_input = (
        NEW_CABINET
        if step == "new_link"
        else {CONF_NAME: "Galaga", CONF_PAYMENT_LINK_ID: earlier["id"], CONF_NEVER_REPORTS: False}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], user_input | {CONF_MACHINE_ID: machine_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MACHINE_ID: "machine_id_first_character"}
    assert len(fake_stripe.payment_links) == links_before + 1  # Only the earlier system's link.
    assert len(setup_entry.subentries) == 1


@pytest.mark.parametrize("step", ["new_link", "existing_link"])
async def test_form_refuses_a_machine_id_another_account_uses_on_the_same_topics(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe, step: str
) -> None:
    """Two entries must never both publish pulses to, and take acks from, the same cabinet topic."""
    other_account(fake_stripe, "arcade/machine").add_to_hass(hass)
    links_before = len(fake_stripe.payment_links)
    earlier = fake_stripe.add_older_link("galaga-2", 100)
    result = await start_cabinet_flow(hass, setup_entry, step)
    assert result["description_placeholders"]["account"] == ""
    user_input = (
        NEW_CABINET
        if step == "new_link"
        else {
            CONF_MACHINE_ID: "galaga-2",
            CONF_NAME: "Galaga",
            CONF_PAYMENT_LINK_ID: earlier["id"],
            CONF_NEVER_REPORTS: False,
        }
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MACHINE_ID: "machine_id_other_account"}
    assert result["description_placeholders"]["account"] == "Other Arcade"
    assert len(fake_stripe.payment_links) == links_before + 1
    assert len(setup_entry.subentries) == 1


async def test_same_machine_id_under_another_prefix_is_fine(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    other_account(fake_stripe, "venue2/arcade").add_to_hass(hass)
    result = await start_cabinet_flow(hass, setup_entry, "new_link")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CABINET)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_options_refuse_a_prefix_where_another_account_has_the_same_machine_id(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_stripe: FakeStripe
) -> None:
    """Moving an entry onto another's topics through the options would make the same clash."""
    other_account(fake_stripe, "venue2/arcade", MACHINE_ID).add_to_hass(hass)
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["description_placeholders"]["account"] == ""
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TOPIC_PREFIX: "venue2/arcade/"} | OPTIONS
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOPIC_PREFIX: "topic_prefix_taken"}
    placeholders: dict[str, Any] = result["description_placeholders"]
    assert (placeholders["account"], placeholders["machine_id"]) == ("Other Arcade", MACHINE_ID)
    assert setup_entry.options[CONF_TOPIC_PREFIX] == "arcade/machine"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TOPIC_PREFIX: "venue1/arcade"} | OPTIONS
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
