"""Translations, icons, services.yaml, manifest and hacs.json agree with the code."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import runpy
from typing import Any

import yaml

from custom_components.arcade_pay.binary_sensor import ONLINE
from custom_components.arcade_pay.button import INSERT_CREDIT
from custom_components.arcade_pay.event import GAME
from custom_components.arcade_pay.image import PAYMENT_QR_CODE
from custom_components.arcade_pay.number import PRICE_PER_CREDIT
from custom_components.arcade_pay.select import PACKS
from custom_components.arcade_pay.sensor import SENSORS
from custom_components.arcade_pay.switch import ACCEPTING_PAYMENTS

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "arcade_pay"


def load(name: str) -> Any:
    return json.loads((INTEGRATION / name).read_text(encoding="utf-8"))


def test_en_json_is_generated_from_strings() -> None:
    resolved = runpy.run_path(str(ROOT / "scripts" / "translations.py"))["resolved"]
    assert load("translations/en.json") == resolved(load("strings.json"))


def test_every_entity_has_a_translated_name_and_icon() -> None:
    strings, icons = load("strings.json")["entity"], load("icons.json")["entity"]
    descriptions = {
        "sensor": SENSORS,
        "binary_sensor": (ONLINE,),
        "button": (INSERT_CREDIT,),
        "event": (GAME,),
        "image": (PAYMENT_QR_CODE,),
        "number": (PRICE_PER_CREDIT,),
        "select": (PACKS,),
        "switch": (ACCEPTING_PAYMENTS,),
    }
    for platform, platform_descriptions in descriptions.items():
        keys = {d.translation_key for d in platform_descriptions}
        assert keys == set(strings[platform]), platform
        assert keys == set(icons[platform]), platform
        for key in keys:
            assert strings[platform][key]["name"]
    assert set(strings["sensor"]["game_state"]["state"]) == {"attract", "playing"}
    assert set(strings["event"]["game"]["state_attributes"]["event_type"]["state"]) == set(
        GAME.event_types or []
    )
    assert set(strings["select"]["packs"]["state"]) == set(PACKS.options or [])


def _translation_keys_in_code() -> set[str]:
    keys = set()
    for path in INTEGRATION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "translation_key"
                and isinstance(node.value, ast.Constant)
            ):
                keys.add(node.value.value)
    return keys


def test_every_raised_exception_is_translated() -> None:
    exceptions = load("strings.json")["exceptions"]
    # Repairs raised outside the hub (async_remove_entry) name their key the same way.
    issue_keys = set(load("strings.json")["issues"])
    entity_keys = {
        d.translation_key
        for d in (
            *SENSORS,
            ONLINE,
            INSERT_CREDIT,
            GAME,
            PAYMENT_QR_CODE,
            PRICE_PER_CREDIT,
            PACKS,
            ACCEPTING_PAYMENTS,
        )
    }
    issue_keys = set(load("strings.json")["issues"])
    used = _translation_keys_in_code() - entity_keys - (issue_keys - set(exceptions))
    assert used
    assert used - issue_keys <= set(exceptions), used - issue_keys - set(exceptions)
    for key in exceptions:
        assert key in used, f"unused exception translation {key}"


def test_form_errors_and_aborts_are_translated() -> None:
    strings = load("strings.json")
    source = "".join(
        (INTEGRATION / name).read_text(encoding="utf-8")
        for name in (
            "config_flow.py",
            "connection_flow.py",
            "reconfigure_flow.py",
            "cabinet_flow.py",
            "cabinet_settings.py",
            "core/pricing.py",  # the packs' errors (PackError)
            "flow_helpers.py",
            "errors.py",
        )
    )
    errors = (
        strings["config"]["error"]
        | strings["config_subentries"]["cabinet"]["error"]
        | strings["options"]["error"]
    )
    for key in errors:
        if key.endswith("_range"):
            # flow_helpers.whole_number names the error after the field.
            assert f"CONF_{key.removesuffix('_range').upper()}" in source, f"unused error {key}"
            continue
        assert f'"{key}"' in source, f"unused error {key}"
    for reason in ("mqtt_not_configured", "wrong_account"):
        assert reason in strings["config"]["abort"]


def test_services_yaml_matches_translations() -> None:
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    strings = load("strings.json")["services"]
    icons = load("icons.json")["services"]
    assert (
        set(services) == set(strings) == set(icons) == {"add_credit", "create_payment_link", "export_ledger"}
    )
    for name, service in services.items():
        assert set(service["fields"]) == set(strings[name]["fields"])


def test_manifest_and_hacs() -> None:
    manifest = load("manifest.json")
    assert manifest["domain"] == "arcade_pay"
    assert manifest["config_flow"] is True
    assert {"mqtt", "webhook", "http"} <= set(manifest["dependencies"])
    assert manifest["version"]
    requirements = {r.split("==")[0] for r in manifest["requirements"]}
    assert requirements == {"stripe", "segno"}
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["homeassistant"] == "2025.4.0"
    # Keys sorted as hassfest wants them (domain, name first).
    assert list(manifest)[:2] == ["domain", "name"]
    assert list(manifest)[2:] == sorted(list(manifest)[2:])
