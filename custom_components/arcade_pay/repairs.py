"""Repairs: the fix flow of the new QR code reminder, and the repair of unacknowledged credits.

The operator fixes the first by confirming that the new QR code is printed; the second clears
itself once the credits are acknowledged or count as delivered (resend.py).
"""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .core.cabinet import Cabinet
from .core.resend import MAX_SENDS_WITHOUT_ACK

NEW_QR_CODE_PREFIX = "new_qr_code_"


def new_qr_code_issue_id(subentry_id: str) -> str:
    """The issue of one cabinet whose QR code changed."""
    return f"{NEW_QR_CODE_PREFIX}{subentry_id}"


@callback
def async_create_new_qr_code_issue(
    hass: HomeAssistant, entry_id: str, subentry_id: str, cabinet: str
) -> None:
    """Remind the operator that the printed QR code of ``cabinet`` no longer takes payments.

    Persistent: it survives restarts until the operator confirms the new code is printed.
    """
    ir.async_create_issue(
        hass,
        DOMAIN,
        new_qr_code_issue_id(subentry_id),
        data={"entry_id": entry_id},
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="new_qr_code",
        translation_placeholders={"cabinet": cabinet},
    )


@callback
def async_clear_new_qr_code_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Drop the reminders of cabinets that were deleted since (or of a removed entry)."""
    registry = ir.async_get(hass)
    for (domain, issue_id), issue in list(registry.issues.items()):
        if (
            domain == DOMAIN
            and issue_id.startswith(NEW_QR_CODE_PREFIX)
            and (issue.data or {}).get("entry_id") == entry.entry_id
            and issue_id.removeprefix(NEW_QR_CODE_PREFIX) not in entry.subentries
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def sync_unacknowledged_issue(hass: HomeAssistant, cabinet: Cabinet, credits: int) -> None:
    """Raise, update or clear the repair of credits the cabinet never acknowledged (resend.py)."""
    issue_id = f"credits_unacknowledged_{cabinet.machine_id}"
    if not credits:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        is_persistent=False,  # Raised again at start-up: the ledger keeps the count of sends.
        severity=ir.IssueSeverity.WARNING,
        translation_key="credits_unacknowledged",
        translation_placeholders={
            "cabinet": cabinet.config.name,
            "credits": str(credits),
            "sends": str(MAX_SENDS_WITHOUT_ACK),
        },
    )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Every fixable Arcade Pay issue is fixed by the operator confirming it."""
    return ConfirmRepairFlow()
