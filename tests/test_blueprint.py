"""The "Arcade cabinet game over" blueprint, loaded and run by Home Assistant's own machinery."""

from __future__ import annotations

from pathlib import Path
import re
import shutil
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
import yaml

from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    async_validate_config_item,
)
from homeassistant.components.blueprint.errors import MissingInput
from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

from custom_components.arcade_pay.const import DOMAIN, EVENT_GAME_OVER
from fake_stripe import FakeStripe

from .helpers import MACHINE_ID, cabinet_subentry, managed_link

REPO = Path(__file__).resolve().parent.parent
BLUEPRINT_PATH = "arcade_pay/arcade_cabinet_game_over.yaml"
BLUEPRINT_FILE = REPO / "blueprints" / "automation" / BLUEPRINT_PATH
EXAMPLES_FILE = REPO / "docs" / "cabinets.md"
EXAMPLES_SECTION = "## Automations"


def load_blueprint() -> Blueprint:
    """Load the file as Home Assistant does (``!input`` tags and all)."""
    return Blueprint(
        load_yaml_dict(BLUEPRINT_FILE),
        path=BLUEPRINT_PATH,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def use_blueprint(cabinet: str | None, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An automation's configuration that uses the blueprint (entity automation.pac_man_game_over)."""
    inputs: dict[str, Any] = {}
    if cabinet is not None:
        inputs["cabinet"] = cabinet
    if actions is not None:
        inputs["actions"] = actions
    return {"alias": "Pac-Man game over", "use_blueprint": {"path": BLUEPRINT_PATH, "input": inputs}}


@pytest.fixture
async def blueprint_installed(hass: HomeAssistant) -> None:
    """The blueprint in this test's config directory, where an imported one would be."""
    folder = Path(hass.config.path("blueprints", "automation", "arcade_pay"))

    def install() -> None:
        folder.mkdir(parents=True)
        shutil.copy(BLUEPRINT_FILE, folder / BLUEPRINT_FILE.name)

    await hass.async_add_executor_job(install)


def cabinet_device(hass: HomeAssistant, machine_id: str = MACHINE_ID) -> str:
    """Register an Arcade Pay cabinet device, as the integration does, and return its id."""
    entry = MockConfigEntry(domain=DOMAIN, title="Fake Arcade")
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, machine_id)}, name=machine_id
    )
    return device.id


def test_blueprint_metadata() -> None:
    blueprint = load_blueprint()

    assert blueprint.name == "Arcade cabinet game over"
    assert blueprint.domain == "automation"
    assert blueprint.metadata["description"]
    assert blueprint.metadata["source_url"].endswith("/" + BLUEPRINT_PATH)
    # Supported from the oldest Home Assistant this integration supports (hacs.json).
    assert blueprint.validate() is None
    assert blueprint.metadata["homeassistant"]["min_version"] == "2025.4.0"
    assert set(blueprint.inputs) == {"cabinet", "actions"}
    assert blueprint.inputs["cabinet"]["selector"]["device"]["filter"] == [{"integration": DOMAIN}]
    assert blueprint.inputs["actions"]["selector"] == {"action": {}}
    assert blueprint.inputs["actions"]["default"] == []
    assert blueprint.data["mode"] == "queued"


def test_blueprint_substitutes_inputs() -> None:
    actions = [{"action": "test.automation", "data": {"machine": "{{ trigger.event.data.machine_id }}"}}]
    inputs = BlueprintInputs(load_blueprint(), use_blueprint("device-1", actions))
    inputs.validate()

    config = inputs.async_substitute()

    assert config["triggers"] == [
        {"trigger": "event", "event_type": EVENT_GAME_OVER, "event_data": {"device_id": "device-1"}}
    ]
    assert config["actions"] == actions
    assert config["mode"] == "queued"


def test_blueprint_needs_a_cabinet() -> None:
    with pytest.raises(MissingInput):
        BlueprintInputs(load_blueprint(), use_blueprint(None)).validate()


@pytest.mark.usefixtures("blueprint_installed")
async def test_automation_runs_actions_on_its_cabinets_game_over(hass: HomeAssistant) -> None:
    calls = async_mock_service(hass, "test", "automation")
    cabinet = cabinet_device(hass)
    other_cabinet = dr.async_get(hass).async_get_or_create(
        config_entry_id=hass.config_entries.async_entries(DOMAIN)[0].entry_id,
        identifiers={(DOMAIN, "pinball-7")},
        name="pinball-7",
    )
    actions = [{"action": "test.automation", "data": {"machine": "{{ trigger.event.data.machine_id }}"}}]
    assert await async_setup_component(
        hass, "automation", {"automation": [use_blueprint(cabinet, actions) | {"id": "game_over"}]}
    )
    await hass.async_block_till_done()
    assert hass.states.get("automation.pac_man_game_over") is not None

    hass.bus.async_fire(EVENT_GAME_OVER, {"machine_id": MACHINE_ID, "device_id": cabinet})
    await hass.async_block_till_done()
    assert [call.data for call in calls] == [{"machine": MACHINE_ID}]

    # Another cabinet's game over does not start this automation.
    hass.bus.async_fire(EVENT_GAME_OVER, {"machine_id": "pinball-7", "device_id": other_cabinet.id})
    await hass.async_block_till_done()
    assert len(calls) == 1

    # Game overs in quick succession all run, in order (mode: queued).
    for _ in range(3):
        hass.bus.async_fire(EVENT_GAME_OVER, {"machine_id": MACHINE_ID, "device_id": cabinet})
    await hass.async_block_till_done()
    assert len(calls) == 4


@pytest.mark.usefixtures("blueprint_installed")
async def test_automation_without_actions_does_nothing(hass: HomeAssistant) -> None:
    calls = async_mock_service(hass, "test", "automation")
    cabinet = cabinet_device(hass)
    assert await async_setup_component(hass, "automation", {"automation": [use_blueprint(cabinet)]})
    await hass.async_block_till_done()

    hass.bus.async_fire(EVENT_GAME_OVER, {"machine_id": MACHINE_ID, "device_id": cabinet})
    await hass.async_block_till_done()

    state = hass.states.get("automation.pac_man_game_over")
    assert state is not None
    assert state.attributes["last_triggered"] is not None
    assert calls == []


@pytest.mark.usefixtures("blueprint_installed")
async def test_automation_editor_validates_the_blueprint(hass: HomeAssistant) -> None:
    """What the automation editor does when saving an automation made from the blueprint."""
    assert await async_setup_component(hass, "automation", {})
    cabinet = cabinet_device(hass)

    validated = await async_validate_config_item(hass, "game_over", use_blueprint(cabinet))
    assert validated is not None
    assert validated["triggers"][0]["event_data"] == {"device_id": cabinet}

    with pytest.raises(MissingInput):
        await async_validate_config_item(hass, "game_over", use_blueprint(None))


def readme_automation(containing: str) -> dict[str, Any]:
    """The first automation of the documented YAML examples (in our section) that contains a text."""
    section = EXAMPLES_FILE.read_text().split(EXAMPLES_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL) if containing in block]
    assert blocks, f"no YAML example with {containing!r} in {EXAMPLES_FILE.name}'s {EXAMPLES_SECTION!r}"
    automation: dict[str, Any] = yaml.safe_load(blocks[0])["automation"][0]
    return automation


def test_readme_blueprint_example_uses_the_blueprint() -> None:
    automation = readme_automation("use_blueprint")
    inputs = BlueprintInputs(load_blueprint(), automation)
    inputs.validate()
    assert inputs.async_substitute()["actions"] == automation["use_blueprint"]["input"]["actions"]


@pytest.fixture
def config_entry(
    config_entry: MockConfigEntry, cabinet_link: dict[str, Any], fake_stripe: FakeStripe
) -> MockConfigEntry:
    """Two cabinets, Pac-Man (conftest's) and Galaga, for the revenue example."""
    galaga = cabinet_subentry(managed_link(fake_stripe, "galaga-1"), machine_id="galaga-1", title="Galaga")
    return MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=config_entry.data,
        options=config_entry.options,
        subentries_data=[cabinet_subentry(cabinet_link), galaga],
    )


@pytest.mark.usefixtures("setup_entry")
async def test_readme_daily_revenue_notification(hass: HomeAssistant) -> None:
    """The documented revenue automation sums the Revenue sensors of Arcade Pay, and only those."""
    calls = async_mock_service(hass, "notify", "notify")
    for entity_id, revenue in (("sensor.pac_man_revenue", "10.5"), ("sensor.galaga_revenue", "2.0")):
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        assert state.attributes["unit_of_measurement"] == "USD"
        hass.states.async_set(entity_id, revenue, state.attributes)
    assert hass.states.get("sensor.pac_man_plays") is not None  # Arcade Pay's, but not a revenue
    hass.states.async_set("sensor.shop_revenue", "100", {"unit_of_measurement": "USD"})  # not Arcade Pay's

    automation = readme_automation("integration_entities")
    assert automation["triggers"] == [{"trigger": "time", "at": "23:59:00"}]
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    target = {"entity_id": "automation.arcade_revenue_at_closing_time"}
    await hass.services.async_call("automation", "trigger", target, blocking=True)
    await hass.async_block_till_done()
    # Detach the 23:59 trigger: Home Assistant 2025.4's harness fails on its lingering timer.
    await hass.services.async_call("automation", "turn_off", target, blocking=True)

    [call] = calls
    assert call.data["title"] == "Arcade revenue"
    assert " ".join(call.data["message"].split()) == (
        "Total 12.50 USD (Pac-Man Revenue: 10.5, Galaga Revenue: 2.0)"
    )
