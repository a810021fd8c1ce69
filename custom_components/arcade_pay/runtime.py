"""The wiring of one entry: its collaborators built, restored from the ledger and started.

Only __init__.py imports this module; the rest read what it built through ``ArcadePayData``
(data.py), which imports the collaborators for the type checker only. What each does:

* webhook.py → intake.py → courier.py → core: a Stripe event is verified, recorded, its
  coin pulse published (catch_up.py feeds intake what the webhook missed);
* cabinet_messages.py → courier.py and link_keeper.py: what cabinets say over MQTT;
* game_over_webhook.py → cabinet_messages.py: the earlier system's game over over HTTP;
* link_keeper.py → payment_links.py: every change of a payment link in Stripe;
* issues.py: the repairs all of them raise, and the webhook's signature watch.

Each arrow points one way, and tests/core/test_layers.py fails on a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util.dt import utcnow

from .cabinet_messages import CabinetMessages
from .cabinet_roster import async_restore
from .catch_up import CatchUp
from .const import DOMAIN, HOUSEKEEPING_INTERVAL, LOGGER, RECONCILE_INTERVAL
from .core.cabinet import Cabinet
from .core.ledger import LedgerError
from .core.mqtt_connection import MqttConnection
from .core.stripe_health import StripeHealth
from .courier import Courier
from .data import ArcadePayData, EntryOptions, EntrySource
from .entry_work import EntryWork
from .errors import ledger_unavailable
from .helpers import create_gateway, ledger_path
from .intake import Intake
from .issues import SignatureWatch, clear_unknown_cabinet_issues
from .ledger_setup import async_open_ledger
from .link_keeper import LinkKeeper
from .not_credited import async_raise_repairs as async_raise_not_credited_repairs
from .payment_links import PaymentLinks
from .player_sessions import PlayerSessions
from .subentries import cabinet_configs, register_devices


async def async_build(hass: HomeAssistant, entry: ConfigEntry) -> ArcadePayData:
    """Open the ledger, build the collaborators and restore what the ledger remembers.

    Raises a translated ConfigEntryError when the ledger cannot be opened or read.
    """
    ledger = await async_open_ledger(hass, entry, ledger_path(hass, entry))
    options = EntryOptions.of(entry.options)
    mqtt = MqttConnection()  # Whether MQTT is connected: one answer for the courier and the cabinets.
    cabinets = {config.machine_id: Cabinet(config, mqtt) for config in cabinet_configs(entry)}
    gateway = create_gateway(hass, entry.data[CONF_API_KEY])
    # Any call refused for its key, whoever made it, asks the owner for a new key.
    gateway.observer = StripeHealth(LOGGER, partial(entry.async_start_reauth, hass))
    work = EntryWork(hass)
    courier = Courier(hass, ledger, cabinets, options.topic_prefix, work, mqtt)
    intake = Intake(hass, ledger, gateway, cabinets, courier)
    payment_links = PaymentLinks(gateway, ledger, hass.async_add_executor_job)
    links = LinkKeeper(hass, payment_links, cabinets, 60.0 * options.offline_minutes, work)
    data = ArcadePayData(
        hass=hass,
        options=options,
        ledger=ledger,
        cabinets=cabinets,
        work=work,
        courier=courier,
        intake=intake,
        catch_up=CatchUp(hass, intake, courier, work, 60.0 * options.refund_minutes),
        links=links,
        messages=CabinetMessages(
            hass, cabinets, options.topic_prefix, options.credits_per_game, courier, links, work
        ),
        signatures=SignatureWatch(hass, entry.entry_id),
        player_sessions=PlayerSessions.create(
            hass,
            ledger,
            lambda: intake.gateway,
            cabinets,
            intake,
            work,
            60.0 * options.refund_minutes if options.refund_undelivered else None,
        ),
        source=EntrySource.of(entry),
    )
    try:
        await async_restore(data, entry, cabinets.values())
        await courier.async_load(set(cabinets))
        await data.player_sessions.async_remember_tokens(list(cabinets.values()))
    except LedgerError as err:
        await hass.async_add_executor_job(ledger.close)
        raise ledger_unavailable(err) from err
    courier.refresh_pending()
    register_devices(hass, entry, cabinets.values())
    return data


async def async_start(data: ArcadePayData, entry: ConfigEntry) -> None:
    """Subscribe to what cabinets publish, deliver what is outstanding, sync links, reconcile.

    ``data.async_stop`` undoes it.
    """
    hass = data.hass
    data.unsubscribe.extend(await data.messages.async_subscribe())
    # Held by data.work and cancelled on unload: both may stop anywhere, and run again.
    for work, interval in (
        (partial(_async_housekeeping, data), HOUSEKEEPING_INTERVAL),
        (data.async_reconcile, RECONCILE_INTERVAL),
    ):
        data.unsubscribe.append(async_track_time_interval(hass, partial(_interval_due, data, work), interval))
    # A cabinet that stops taking money closes the checkouts its scans opened.
    data.unsubscribe.extend(data.player_sessions.watch(cabinet) for cabinet in data.cabinets.values())
    clear_unknown_cabinet_issues(hass, data.cabinets)
    await data.courier.async_flush()
    data.links.start()
    # Repairs are not kept across restarts; the ledger knows which payments still need one.
    await async_raise_not_credited_repairs(hass, data.ledger, data.cabinets.values())
    # Refunds the last run left half-way: settled from Stripe now, not in 30 seconds.
    data.work.spawn(data.catch_up.async_finish_refunds(), cancellable=True, background=True)
    # Payments made while Home Assistant was down longer than Stripe retries.
    data.work.hold(
        entry.async_create_background_task(hass, data.async_reconcile(), f"{DOMAIN} reconcile {entry.title}"),
        cancellable=True,
    )


@callback
def _interval_due(data: ArcadePayData, work: Callable[[], Coroutine[Any, Any, Any]], _: object) -> None:
    data.work.spawn(work(), cancellable=True, background=True)


async def _async_housekeeping(data: ArcadePayData) -> None:
    """Raise stuck-credit repairs, refund what could not be delivered in time (if enabled), sync links.

    Refunds a crash left half-way are finished whatever the option says now.
    """
    data.courier.sync_overdue_issues()
    await data.catch_up.async_finish_refunds()
    if data.options.refund_undelivered:
        await data.catch_up.async_refund_overdue(utcnow().timestamp())
    await data.links.async_sync_links()
