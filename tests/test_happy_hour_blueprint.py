"""The "Arcade Pay happy hour" blueprint: a schedule sets a cabinet's price, and puts it back."""

from __future__ import annotations

from pathlib import Path
import shutil

import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

REPO = Path(__file__).resolve().parent.parent
BLUEPRINT_PATH = "arcade_pay/happy_hour.yaml"
BLUEPRINT_FILE = REPO / "blueprints" / "automation" / BLUEPRINT_PATH
PRICE = "number.pac_man_price_per_credit"
PACKS = "select.pac_man_packs"


@pytest.fixture
async def blueprint_installed(hass: HomeAssistant) -> None:
    folder = Path(hass.config.path("blueprints", "automation", "arcade_pay"))

    def install() -> None:
        folder.mkdir(parents=True)
        shutil.copy(BLUEPRINT_FILE, folder / BLUEPRINT_FILE.name)

    await hass.async_add_executor_job(install)


def test_blueprint_is_valid() -> None:
    blueprint = Blueprint(
        load_yaml_dict(BLUEPRINT_FILE),
        path=BLUEPRINT_PATH,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    assert blueprint.validate() is None
    assert blueprint.metadata["source_url"].endswith("/" + BLUEPRINT_PATH)
    assert set(blueprint.inputs) >= {"schedule", "price", "happy_hour_price", "normal_price", "packs"}


async def start(hass: HomeAssistant, packs: str | None) -> tuple[list[ServiceCall], list[ServiceCall]]:
    prices = async_mock_service(hass, "number", "set_value")
    selects = async_mock_service(hass, "select", "select_option")
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {"happy_hour": {}}})
    inputs = {
        "schedule": "input_boolean.happy_hour",
        "price": PRICE,
        "happy_hour_price": 1.0,
        "normal_price": 2.0,
    }
    if packs is not None:
        inputs["packs"] = packs
    config = {"alias": "Happy hour", "use_blueprint": {"path": BLUEPRINT_PATH, "input": inputs}}
    assert await async_setup_component(hass, "automation", {"automation": [config]})
    await hass.async_block_till_done()
    return prices, selects


@pytest.mark.usefixtures("blueprint_installed")
async def test_the_schedule_sets_the_price_and_the_packs_and_puts_them_back(hass: HomeAssistant) -> None:
    prices, selects = await start(hass, PACKS)
    await hass.services.async_call(
        "input_boolean", "turn_on", {"entity_id": "input_boolean.happy_hour"}, blocking=True
    )
    await hass.async_block_till_done()
    await hass.services.async_call(
        "input_boolean", "turn_off", {"entity_id": "input_boolean.happy_hour"}, blocking=True
    )
    await hass.async_block_till_done()
    assert [(c.data["entity_id"], c.data["value"]) for c in prices] == [([PRICE], 1.0), ([PRICE], 2.0)]
    assert [c.data["option"] for c in selects] == ["happy_hour_packs", "packs"]


@pytest.mark.usefixtures("blueprint_installed")
async def test_without_a_packs_entity_only_the_price_changes(hass: HomeAssistant) -> None:
    prices, selects = await start(hass, None)
    await hass.services.async_call(
        "input_boolean", "turn_on", {"entity_id": "input_boolean.happy_hour"}, blocking=True
    )
    await hass.async_block_till_done()
    assert [c.data["value"] for c in prices] == [1.0]
    assert selects == []
