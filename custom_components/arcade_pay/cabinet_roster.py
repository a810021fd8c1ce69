"""Which cabinets an entry runs: restored from the ledger at start, added and deleted while it runs.

Adding or deleting a cabinet does not reload the entry, so the other cabinets' entities never
go unavailable and back (their logbooks stay quiet) and their deliveries go on. Any other change
(options, the API key, a cabinet's settings or price) still reloads it: every collaborator was
built with those.

A cabinet added while running gets what a start would give it, in the same order: its memory
and outstanding pulses from the ledger while no payment can reach it yet (it is not routable),
then, in one step, the routing, its device and entities, what it said on MQTT before
(cabinet_messages.py keeps that), its link checked in Stripe, and its pulses sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util.dt import utcnow
from homeassistant.util.hass_dict import HassKey

from .const import CONF_MACHINE_ID, DOMAIN, cabinet_added_signal
from .core.cabinet import Cabinet
from .data import ArcadePayData, EntrySource
from .issues import clear_unknown_cabinet_issues
from .not_credited import async_raise_repairs as async_raise_not_credited_repairs
from .subentries import cabinet_config, explicit_acks, register_devices

OFFLINE_AT_UNLOAD: HassKey[dict[str, dict[str, float]]] = HassKey(f"{DOMAIN}_offline_at_unload")


@dataclass(frozen=True, slots=True)
class RosterChange:
    """Cabinets added or deleted, and nothing else changed."""

    added: list[ConfigSubentry]
    deleted: set[str]  # subentry ids
    source: EntrySource  # The entry once they are applied (a later change is measured from it).


def roster_change(entry: ConfigEntry, source: EntrySource) -> RosterChange | None:
    """What changed since ``source``, if only cabinets came or went; None when the entry must reload."""
    now = EntrySource.of(entry)
    if now.data != source.data or now.options != source.options:
        return None
    if any(now.cabinets[kept] != source.cabinets[kept] for kept in now.cabinets.keys() & source.cabinets):
        return None
    added = [entry.subentries[added] for added in now.cabinets.keys() - source.cabinets.keys()]
    deleted = source.cabinets.keys() - now.cabinets.keys()
    running = {
        data[CONF_MACHINE_ID]
        for subentry_id, (_, data) in source.cabinets.items()
        if subentry_id not in deleted
    }
    if any(subentry.data[CONF_MACHINE_ID] in running for subentry in added):
        return None  # Two cabinets with one machine ID (the forms refuse it): the start sorts it out.
    return RosterChange(added, deleted, now)


@callback
def remember_offline(hass: HomeAssistant, entry_id: str, data: ArcadePayData) -> None:
    """The entry unloads: which cabinets were offline, and since when, for the next start (a reload).

    The link keeper knows exactly those: it notes a cabinet when its status says offline and
    forgets it when it says online (or the cabinet is deleted).
    """
    hass.data.setdefault(OFFLINE_AT_UNLOAD, {})[entry_id] = dict(data.links.offline_since)


async def async_restore(data: ArcadePayData, entry: ConfigEntry, cabinets: Iterable[Cabinet]) -> None:
    """Read these cabinets' totals and memory from the ledger; raise LedgerError."""
    hass, ledger = data.hass, data.ledger
    # Offline before this reload, or long enough before this restart for the offline rule.
    offline_at_unload = hass.data.get(OFFLINE_AT_UNLOAD, {}).pop(entry.entry_id, {})
    restoring = {cabinet.machine_id: cabinet for cabinet in cabinets}
    for totals in await hass.async_add_executor_job(ledger.totals):
        cabinet = restoring.get(totals.machine_id)
        if cabinet is not None and totals.currency == cabinet.config.currency:
            cabinet.restore_totals(totals.revenue, totals.payments, totals.last_payment_at)
    memory = await hass.async_add_executor_job(
        ledger.cabinet_memory, list(restoring), int(utcnow().timestamp())
    )
    owner_says = explicit_acks(entry)
    for machine_id, cabinet in restoring.items():
        remembered = memory.get(machine_id)
        if remembered is not None:
            cabinet.restore_price(remembered.unit_amount_now, remembered.pack_set, remembered.price_basis)
            cabinet.restore_memory(
                paused=remembered.paused, seen=remembered.seen, offline_stopped=remembered.offline_stopped
            )
            # Not told about this link yet (new link, or memory from before schema 3):
            # unknown, so the start's sync tells Stripe what the cabinet wants.
            told = remembered.link_active
            if remembered.link_id == cabinet.config.payment_link_id and told is not None:
                cabinet.set_accepting_payments(told)
        explicit = owner_says.get(machine_id)
        data.courier.cabinet_restored(
            machine_id,
            acknowledges=bool(remembered and remembered.acknowledges) if explicit is None else explicit,
            by_owner=explicit is not None,
            unseen=cabinet.awaiting_first_sign,
            was_offline=machine_id in offline_at_unload or cabinet.offline_stopped,
        )
        if machine_id in offline_at_unload:  # The offline rule's wait goes on where it was.
            data.links.offline_since[machine_id] = offline_at_unload[machine_id]


async def async_add_cabinets(
    hass: HomeAssistant, entry: ConfigEntry, data: ArcadePayData, subentries: list[ConfigSubentry]
) -> None:
    """Run cabinets added while the entry runs; raise LedgerError (the caller reloads)."""
    for subentry in subentries:
        cabinet = Cabinet(cabinet_config(subentry), data.courier.mqtt)
        await async_restore(data, entry, [cabinet])
        await data.courier.async_load_cabinet(cabinet.machine_id)
        await data.player_sessions.async_remember_tokens([cabinet])
        # From here on payments reach it: no await until it is fully there.
        data.cabinets[cabinet.machine_id] = cabinet
        data.intake.cabinets_changed()
        register_devices(hass, entry, [cabinet])
        async_dispatcher_send(hass, cabinet_added_signal(entry.entry_id), cabinet)
        data.links.add(cabinet)
        data.unsubscribe.append(data.player_sessions.watch(cabinet))
        data.messages.cabinet_added(cabinet)
        clear_unknown_cabinet_issues(hass, [cabinet.machine_id])
        data.courier.after_delivery_change(cabinet.machine_id)
        data.courier.flush_soon()
    # Its payments made before it was added stay uncredited: their repairs now name it.
    await async_raise_not_credited_repairs(hass, data.ledger, data.cabinets.values())


def remove_cabinets(data: ArcadePayData, subentry_ids: set[str]) -> list[Cabinet]:
    """Stop running deleted cabinets (their links are retired next); return them."""
    deleted = [c for c in data.cabinets.values() if c.config.subentry_id in subentry_ids]
    for cabinet in deleted:
        cabinet.removed = True  # Its link never takes money again, whatever is on its way.
        del data.cabinets[cabinet.machine_id]
        data.links.remove(cabinet)
        data.courier.cabinet_removed(cabinet)
    data.intake.cabinets_changed()
    return deleted
