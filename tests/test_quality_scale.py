"""quality_scale.yaml names every rule of the Integration Quality Scale, and what it claims is there."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
import yaml

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "arcade_pay"

# The 54 rules of https://developers.home-assistant.io/docs/core/integration-quality-scale/checklist
# (hassfest's list in script/hassfest/quality_scale.py). Pinned: a missing rule must fail, not pass unseen.
ALL_RULES = {
    # Bronze
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow",
    "config-flow-test-coverage",
    "dependency-transparency",
    "docs-actions",
    "docs-conditions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "docs-triggers",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    # Silver
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    # Gold
    "devices",
    "diagnostics",
    "discovery-update-info",
    "discovery",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    # Platinum
    "async-dependency",
    "inject-websession",
    "strict-typing",
}


def _rules() -> dict[str, str | dict[str, str]]:
    return yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8"))["rules"]


def test_every_rule_is_listed_with_a_valid_status() -> None:
    rules = _rules()
    assert len(ALL_RULES) == 54
    assert set(rules) == ALL_RULES
    for name, rule in rules.items():
        status = rule if isinstance(rule, str) else rule["status"]
        assert status in {"done", "exempt"}, f"{name} is {status}"
        if status == "exempt":
            assert isinstance(rule, dict), name
            assert rule.get("comment"), f"{name}: an exemption says why"


def test_brand_images() -> None:
    """Home Assistant's sizes: a square icon of 256 and 512 (@2x), a logo 128 to 256 high."""
    brand = INTEGRATION / "brand"
    for name, size in (("icon.png", (256, 256)), ("icon@2x.png", (512, 512))):
        with Image.open(brand / name) as image:
            assert image.format == "PNG"
            assert image.size == size, name
            assert image.mode == "RGBA", f"{name}: transparent corners need an alpha channel"
    with Image.open(brand / "logo.png") as logo:
        assert logo.format == "PNG"
        assert 128 <= logo.height <= 256
        assert logo.width >= logo.height
    # Drawn from vector sources kept in the repository.
    assert (ROOT / "brand-src" / "icon.svg").is_file()
    assert (ROOT / "brand-src" / "logo.svg").is_file()


def test_integration_owner_and_license() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["codeowners"]
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
