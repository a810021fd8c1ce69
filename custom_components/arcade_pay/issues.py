"""Every repair issue Arcade Pay raises or deletes, and every issue id: made here and nowhere else.

The collaborators say what happened (a dispute, credits stuck, a link Stripe will not switch
off, a ledger file replaced …); this module turns it into an issue, and back. Most clear
themselves once what they report is over (credits acknowledged or delivered, a dispute
answered in Stripe, a verified webhook delivery). repairs.py holds the fix flows of the
fixable ones: the new QR code reminder and the webhook endpoint's.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .core.cabinet import Cabinet
from .core.early_money import Dispute
from .core.ledger_records import PaymentRecord, PaymentState
from .core.payments import from_minor_units
from .core.resend import MAX_SENDS_WITHOUT_ACK

NEW_QR_CODE_PREFIX = "new_qr_code_"
SIGNATURE_FAILURES_BEFORE_REPAIR = 3
# The webhook endpoint's issues (endpoint_keeper.py); each kind is also its translation key.
ENDPOINT_DISABLED = "webhook_endpoint_disabled"
ENDPOINT_DELETED = "webhook_endpoint_deleted"
ENDPOINT_LEFT_BEHIND = "webhook_endpoint_left"
FIXABLE_ENDPOINT_KINDS = (ENDPOINT_DISABLED, ENDPOINT_DELETED)


@callback
def _create(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
    *,
    persistent: bool = False,
    data: dict[str, str | int | float | None] | None = None,
) -> None:
    """Raise (or update) a repair: fixable when it carries ``data`` for its fix flow."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data=data,
        is_fixable=data is not None,
        is_persistent=persistent,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


@callback
def _delete(hass: HomeAssistant, issue_id: str) -> None:
    ir.async_delete_issue(hass, DOMAIN, issue_id)


# --- money ---------------------------------------------------------------------------------
@callback
def raise_dispute_issue(
    hass: HomeAssistant, cabinet_name: str, payment: PaymentRecord, dispute: Dispute
) -> None:
    """Tell the owner to respond to a dispute in Stripe."""
    _create(
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
def sync_not_credited_issue(hass: HomeAssistant, record: PaymentRecord, cabinet: str | None) -> None:
    """Raise the repair of an uncreditable payment, or delete it once the payment is settled.

    What it says follows from the record and ``cabinet``: the name of the cabinet it was paid
    for, the names of the cabinets that share its link, or None when no cabinet claims it.
    """
    session = record.payment_id
    if record.state is not PaymentState.UNCREDITABLE:
        _delete(hass, f"not_credited_{session}")
        return
    if cabinet is None:
        placeholders = {
            "session": session,
            "machine_id": record.machine_id or "-",
            "payment_link": record.payment_link or "-",
        }
        _create(
            hass,
            f"unknown_cabinet_{record.machine_id or record.payment_link}",
            "unknown_cabinet",
            placeholders,
        )
        return
    placeholders = {"session": session, "cabinet": cabinet, "reason": record.note or "-"}
    _create(hass, f"not_credited_{session}", "payment_not_credited", placeholders)


@callback
def clear_unknown_cabinet_issues(hass: HomeAssistant, machine_ids: Iterable[str]) -> None:
    """These cabinets exist now: payments for them are no longer for an unknown cabinet."""
    for machine_id in machine_ids:
        _delete(hass, f"unknown_cabinet_{machine_id}")


# --- credits on their way ------------------------------------------------------------------
@callback
def sync_undelivered_issue(hass: HomeAssistant, cabinet: Cabinet, overdue: bool) -> None:
    """Raise (or clear) the repair of credits that did not reach the cabinet in time."""
    issue_id = f"credits_undelivered_{cabinet.machine_id}"
    if overdue:
        placeholders = {"cabinet": cabinet.config.name, "credits": str(cabinet.pending_credits)}
        _create(hass, issue_id, "credits_undelivered", placeholders)
    else:
        _delete(hass, issue_id)


@callback
def sync_unacknowledged_issue(hass: HomeAssistant, cabinet: Cabinet, credits: int) -> None:
    """Raise, update or clear the repair of credits the cabinet never acknowledged (resend.py)."""
    issue_id = f"credits_unacknowledged_{cabinet.machine_id}"
    if not credits:
        _delete(hass, issue_id)
        return
    placeholders = {
        "cabinet": cabinet.config.name,
        "credits": str(credits),
        "sends": str(MAX_SENDS_WITHOUT_ACK),
    }
    # Not persistent: raised again at start-up, the ledger keeps the count of sends.
    _create(hass, issue_id, "credits_unacknowledged", placeholders)


# --- payment links -------------------------------------------------------------------------
@callback
def raise_link_still_on(hass: HomeAssistant, cabinet: Cabinet) -> None:
    """Stripe keeps refusing to switch off a link that should not take money (link_retry.py)."""
    placeholders = {"cabinet": cabinet.config.name, "payment_link": cabinet.config.payment_link_id}
    _create(
        hass, f"link_still_on_{cabinet.machine_id}", "link_still_on", placeholders, ir.IssueSeverity.ERROR
    )


@callback
def delete_link_still_on(hass: HomeAssistant, machine_id: str) -> None:
    """The cabinet's link is in line again, or the cabinet is gone."""
    _delete(hass, f"link_still_on_{machine_id}")


@callback
def raise_links_left_active(hass: HomeAssistant, entry: ConfigEntry, link_ids: Iterable[str]) -> None:
    """The entry was removed but these links still take money: the owner deactivates them by hand."""
    placeholders = {"account": entry.title, "links": ", ".join(link_ids)}
    _create(
        hass,
        f"links_left_active_{entry.entry_id}",
        "links_left_active",
        placeholders,
        ir.IssueSeverity.ERROR,
        persistent=True,
    )


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
    issue_id = new_qr_code_issue_id(subentry_id)
    _create(hass, issue_id, "new_qr_code", {"cabinet": cabinet}, persistent=True, data={"entry_id": entry_id})


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
            _delete(hass, issue_id)


# --- the entry: its ledger, its webhook and its endpoint -------------------------------------
def _ledger_issue_id(entry_id: str) -> str:
    return f"ledger_replaced_{entry_id}"


def ledger_lost(hass: HomeAssistant, entry_id: str) -> bool:
    """Whether the repair of a ledger file deleted or replaced is up (ledger_setup.py)."""
    return ir.async_get(hass).async_get_issue(DOMAIN, _ledger_issue_id(entry_id)) is not None


@callback
def raise_ledger_replaced(hass: HomeAssistant, entry: ConfigEntry, path: str) -> None:
    """The ledger's file was deleted or replaced: stays, across restarts, until the file is back."""
    placeholders = {"account": entry.title, "path": path}
    _create(
        hass,
        _ledger_issue_id(entry.entry_id),
        "ledger_replaced",
        placeholders,
        ir.IssueSeverity.ERROR,
        persistent=True,
    )


@callback
def delete_ledger_replaced(hass: HomeAssistant, entry_id: str) -> None:
    """The ledger opened (or its entry was removed)."""
    _delete(hass, _ledger_issue_id(entry_id))


def endpoint_issue_id(kind: str, entry_id: str) -> str:
    """The repair of one entry's webhook endpoint."""
    return f"{kind}_{entry_id}"


def fixable_endpoint_kind(issue_id: str) -> str | None:
    """ENDPOINT_DISABLED or ENDPOINT_DELETED when ``issue_id`` is such a repair (repairs.py fixes it)."""
    return next((kind for kind in FIXABLE_ENDPOINT_KINDS if issue_id.startswith(f"{kind}_")), None)


@callback
def raise_endpoint_issue(hass: HomeAssistant, entry: ConfigEntry, kind: str, endpoint_id: str) -> None:
    """The endpoint was disabled or deleted in Stripe (fixable), or could not be deleted (by hand)."""
    placeholders = {"account": entry.title, "endpoint": endpoint_id}
    issue_id = endpoint_issue_id(kind, entry.entry_id)
    if kind == ENDPOINT_LEFT_BEHIND:
        _create(hass, issue_id, kind, placeholders, persistent=True)
        return
    _create(hass, issue_id, kind, placeholders, ir.IssueSeverity.ERROR, data={"entry_id": entry.entry_id})


@callback
def delete_endpoint_issue(hass: HomeAssistant, kind: str, entry_id: str) -> None:
    """What the repair reported is over."""
    _delete(hass, endpoint_issue_id(kind, entry_id))


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
            placeholders = {"failures": str(self._failures)}
            _create(
                self._hass, self._issue_id, "webhook_signature_failing", placeholders, ir.IssueSeverity.ERROR
            )

    @callback
    def note_verified(self) -> None:
        """A delivery passed the signature check: the secret is right, whatever a repair says.

        The repair may have been raised before a reload (Reconfigure reloads the entry), when
        this watch was not yet counting, so it is deleted on the first verified delivery after
        every start, not only after failures this watch saw.
        """
        if self._failures or not self._verified_once:
            _delete(self._hass, self._issue_id)
        self._verified_once = True
        self._failures = 0
