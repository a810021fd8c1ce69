"""strings.json passes the checks hassfest runs on every translation string.

Mirrors script/hassfest/translations.py (validate_translation_value) of Home Assistant
core: no HTML-like tags (the frontend's ICU parser turns ``<prefix>`` into "Translation
error: INVALID_TAG"), no placeholders in single quotes, placeholders that are plain
identifiers (which also rules out ICU plurals), no combined references, no leading or
trailing spaces, no URLs (they belong in description placeholders).
"""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
import string
from typing import Any

import pytest
import voluptuous as vol

from homeassistant.helpers import config_validation as cv

STRINGS = Path(__file__).resolve().parent.parent / "custom_components" / "arcade_pay" / "strings.json"

# The same expressions as hassfest.
RE_COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")
RE_URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)


def validate_translation_value(value: Any) -> str:
    """hassfest's check of one translation string."""
    string_value = cv.string_with_no_html(value)
    if RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(string_value):
        raise vol.Invalid("the string should not contain placeholders inside single quotes")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(string_value) if field]
    except ValueError as err:
        raise vol.Invalid(f"placeholders cannot be parsed: {err}") from err
    for field in fields:
        if not field.isidentifier():
            raise vol.Invalid("placeholders must be valid identifiers ([a-zA-Z_][a-zA-Z0-9_]*)")
    if RE_COMBINED_REFERENCE.search(string_value):
        raise vol.Invalid("the string should not contain combined translations")
    if string_value != string_value.strip():
        raise vol.Invalid("the string should not contain leading or trailing spaces")
    if RE_URL.search(string_value):
        raise vol.Invalid("the string should not contain URLs, please use description placeholders instead")
    return string_value


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


STRING_VALUES = list(leaves(json.loads(STRINGS.read_text(encoding="utf-8"))))


@pytest.mark.parametrize(("path", "value"), STRING_VALUES, ids=[path for path, _ in STRING_VALUES])
def test_string_passes_hassfest(path: str, value: str) -> None:
    validate_translation_value(value)


@pytest.mark.parametrize(
    "bad",
    [
        "Cabinets publish under <prefix>/<machine ID>/…",
        "Price is '{price}'",
        "up to {max_quantity, plural, one {# credit} other {# credits}}",
        " leading space",
        "See https://docs.stripe.com/currencies",
    ],
)
def test_the_check_catches_what_hassfest_refuses(bad: str) -> None:
    with pytest.raises(vol.Invalid):
        validate_translation_value(bad)


def _frontend_strings() -> dict[str, Any]:
    """The English strings of the installed Home Assistant frontend (the one the browser shows)."""
    import hass_frontend  # noqa: PLC0415 - only this test reads the frontend package

    folder = Path(hass_frontend.where()) / "static" / "translations" / "config"
    [english] = [path for path in folder.glob("en-*.json") if not path.name.startswith("en-GB")]
    return json.loads(english.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_entry_page_speaks_of_stripe_accounts_and_cabinets() -> None:
    """The integration page titled the Stripe account "Hubs" with an "ADD HUB" button.

    Home Assistant's frontend picks both from the manifest's integration_type; the cabinet
    rows and the "Add cabinet" menu item come from config_subentries.cabinet.
    """
    manifest = json.loads((STRINGS.parent / "manifest.json").read_text(encoding="utf-8"))
    frontend = _frontend_strings()  # Flat: "ui.panel.config.integrations.integration_page.add_hub": …
    page = "ui.panel.config.integrations.integration_page"
    kind = manifest["integration_type"]
    heading, button = frontend[f"{page}.entries_{kind}"], frontend[f"{page}.add_{kind}"]
    assert "hub" not in f"{heading} {button}".lower()
    assert (heading, button) == ("Services", "Add service")  # A Stripe account is a service.
    cabinet = json.loads(STRINGS.read_text(encoding="utf-8"))["config_subentries"]["cabinet"]
    assert cabinet["entry_type"] == "Cabinet"
    assert cabinet["initiate_flow"]["user"] == "Add cabinet"


def test_every_field_help_has_a_field() -> None:
    """hassfest's data_description_validator: a help text needs the field it helps with."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    flows = [strings["config"], strings["options"], *strings["config_subentries"].values()]
    for flow in flows:
        for step_id, step in flow["step"].items():
            assert set(step.get("data_description", {})) <= set(step.get("data", {})), step_id


def _steps(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every flow step of strings.json (config, options, subentries, repairs' fix flows), by its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "step" and isinstance(value, dict):
                for step_id, step in value.items():
                    yield f"{here}.{step_id}", step
            else:
                yield from _steps(value, here)


MENU_STEPS = [
    (path, step)
    for path, step in _steps(json.loads(STRINGS.read_text(encoding="utf-8")))
    if "menu_options" in step
]


@pytest.mark.parametrize(("path", "step"), MENU_STEPS, ids=[path for path, _ in MENU_STEPS])
def test_menu_title_has_no_placeholder(path: str, step: dict[str, Any]) -> None:
    """Home Assistant 2025.4's frontend fills no placeholder into a menu's title.

    One there makes Entry ⋮ → Reconfigure show 'Translation Error: The intl string context
    variable "account" was not provided'. Its description gets them; the title must do without.
    """
    fields = [field for _, field, _, _ in string.Formatter().parse(step.get("title", "")) if field]
    assert fields == [], f"{path}.title has placeholders {fields}"


def test_every_menu_says_what_its_choices_do() -> None:
    """A menu without a description shows only a title above bare choices."""
    assert MENU_STEPS
    for path, step in MENU_STEPS:
        assert step.get("description"), path


@pytest.mark.parametrize("jargon", ["Flask"])
def test_no_developer_jargon(jargon: str) -> None:
    """ "Cabinets set up with the earlier Flask system" meant nothing to an arcade owner."""
    assert [path for path, value in STRING_VALUES if jargon in value] == []
