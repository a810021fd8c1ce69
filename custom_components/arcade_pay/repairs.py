"""Repairs: raising issues, the signature watch, and the fix flow of the new QR code reminder.

Every collaborator raises its repairs through these helpers, so issue ids and severities live
in one place. The operator fixes the new QR code reminder by confirming that the new code is
printed; the others clear themselves once what they report is over (credits acknowledged or
delivered, a dispute answered in Stripe, a verified webhook delivery).
"""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .core.cabinet import Cabinet
from .core.early_money import Dispute
from .core.ledger import PaymentRecord
from .core.payments import from_minor_units
from .core.resend import MAX_SENDS_WITHOUT_ACK

NEW_QR_CODE_PREFIX = "new_qr_code_"
SIGNATURE_FAILURES_BEFORE_REPAIR = 3


@callback
def raise_issue(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
) -> None:
    """Raise (or update) a repair the owner has to act on."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        is_persistent=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


@callback
def raise_dispute_issue(
    hass: HomeAssistant, cabinet_name: str, payment: PaymentRecord, dispute: Dispute
) -> None:
    """Tell the owner to respond to a dispute in Stripe."""
    raise_issue(
        hass,
        f"dispute_{dispute.dispute_id}",
        "payment_disputed",
        {
            "cabinet": cabinet_name,
            "amount": f"{from_minor_units(dispute.amount, payment.currency)} {payment.currency.upper()}",
            "session": payment.payment_id,
            "reason": dispute.reason or "unknown",
            "url": f"https://dashboard.stripe.com/disputes/{dispute.dispute_id}",
        },
        severity=ir.IssueSeverity.ERROR,
    )


@callback
def sync_undelivered_issue(hass: HomeAssistant, cabinet: Cabinet, overdue: bool) -> None:
    """Raise (or clear) the repair of credits that did not reach the cabinet in time."""
    issue_id = f"credits_undelivered_{cabinet.machine_id}"
    if overdue:
        placeholders = {"cabinet": cabinet.config.name, "credits": str(cabinet.pending_credits)}
        raise_issue(hass, issue_id, "credits_undelivered", placeholders)
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def clear_unknown_cabinet_issues(hass: HomeAssistant, machine_ids: Iterable[str]) -> None:
    """These cabinets exist now: payments for them are no longer for an unknown cabinet."""
    for machine_id in machine_ids:
        ir.async_delete_issue(hass, DOMAIN, f"unknown_cabinet_{machine_id}")


@callback
def raise_links_left_active(hass: HomeAssistant, entry: ConfigEntry, link_ids: Iterable[str]) -> None:
    """The entry was removed but these links still take money: the owner deactivates them by hand."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"links_left_active_{entry.entry_id}",
        is_fixable=False,
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key="links_left_active",
        translation_placeholders={"account": entry.title, "links": ", ".join(link_ids)},
    )


class SignatureWatch:
    """Several deliveries in a row failing the signature check mean a wrong webhook secret."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Watch the webhook of entry ``entry_id``."""
        self._hass = hass
        self._issue_id = f"webhook_signature_{entry_id}"
        self._failures = 0
        self._verified_once = False

    @callback
    def note_failure(self) -> None:
        """A delivery failed the signature check."""
        self._failures += 1
        if self._failures == SIGNATURE_FAILURES_BEFORE_REPAIR:
            raise_issue(
                self._hass,
                self._issue_id,
                "webhook_signature_failing",
                {"failures": str(self._failures)},
                severity=ir.IssueSeverity.ERROR,
            )

    @callback
    def note_verified(self) -> None:
        """A delivery passed the signature check: the secret is right, whatever a repair says.

        The repair may have been raised before a reload (Reconfigure reloads the entry), when
        this watch was not yet counting, so it is deleted on the first verified delivery after
        every start, not only after failures this watch saw.
        """
        if self._failures or not self._verified_once:
            ir.async_delete_issue(self._hass, DOMAIN, self._issue_id)
        self._verified_once = True
        self._failures = 0


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
    """The webhook endpoint's repairs fix it; the others are fixed by the operator confirming them."""
    from .endpoint_keeper import DELETED, DISABLED, EndpointRepairFlow  # noqa: PLC0415 (imports runtime)

    for kind in (DISABLED, DELETED):
        if issue_id.startswith(f"{kind}_") and data and isinstance(data.get("entry_id"), str):
            return EndpointRepairFlow(kind, str(data["entry_id"]))
    return ConfirmRepairFlow()
