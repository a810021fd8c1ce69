"""One loaded entry: its options, its collaborators, and how they are built, started and stopped.

The collaborators, each a module, each arrow one way:

* webhook.py → intake.py → courier.py → core: a Stripe event is verified, recorded, its
  coin pulse published (catch_up.py feeds intake what the webhook missed);
* cabinet_messages.py → courier.py and link_keeper.py: what cabinets say over MQTT;
* game_over_webhook.py → cabinet_messages.py: the earlier system's game over over HTTP;
* link_keeper.py → payment_links.py: every change of a payment link in Stripe;
* repairs.py: the issues all of them raise, and the webhook's signature watch.

``ArcadePayData`` (the entry's ``runtime_data``) holds them. Entities, actions, diagnostics
and system health read it and call the collaborators' public methods; nothing here reads
them back. ``EntryOptions.of`` is the only place option defaults are applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
import os
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util.dt import utcnow

from .cabinet_messages import CabinetMessages
from .cabinet_roster import EntrySource, async_restore
from .catch_up import CatchUp
from .const import (
    CONF_CREDITS_PER_GAME,
    CONF_OFFLINE_MINUTES,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    DEFAULT_TOPIC_PREFIX,
    DOMAIN,
    LOGGER,
)
from .core.cabinet import Cabinet
from .core.ledger import LedgerError, PaymentLedger
from .core.mqtt_connection import MqttConnection
from .core.stripe_gateway import ENV_API_BASE, StripeGateway
from .core.stripe_health import StripeHealth
from .courier import Courier
from .entry_work import EntryWork
from .errors import ledger_unavailable
from .intake import Intake
from .ledger_setup import async_open_ledger
from .link_keeper import LinkKeeper
from .not_credited import async_raise_repairs as async_raise_not_credited_repairs
from .payment_links import PaymentLinks
from .repairs import SignatureWatch, clear_unknown_cabinet_issues
from .subentries import cabinet_configs, register_devices

RECONCILE_INTERVAL = timedelta(hours=1)
HOUSEKEEPING_INTERVAL = timedelta(seconds=30)

type ArcadePayConfigEntry = ConfigEntry[ArcadePayData]


@dataclass(frozen=True, slots=True)
class EntryOptions:
    """The entry's options, with the defaults of an entry that has none (older entries)."""

    topic_prefix: str = DEFAULT_TOPIC_PREFIX  # The earlier system's (protocol.py).
    credits_per_game: int = 1
    offline_minutes: float = 2  # 0 = never stop taking payments
    refund_undelivered: bool = False
    refund_minutes: float = 30

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> EntryOptions:
        """Read an entry's options; a missing one takes its default."""
        values = cls().as_options() | dict(options)
        return cls(
            topic_prefix=values[CONF_TOPIC_PREFIX],
            credits_per_game=values[CONF_CREDITS_PER_GAME],
            offline_minutes=values[CONF_OFFLINE_MINUTES],
            refund_undelivered=values[CONF_REFUND_UNDELIVERED],
            refund_minutes=values[CONF_REFUND_MINUTES],
        )

    def as_options(self) -> dict[str, Any]:
        """As stored in the entry (a new entry's options are ``EntryOptions().as_options()``)."""
        return {
            CONF_TOPIC_PREFIX: self.topic_prefix,
            CONF_CREDITS_PER_GAME: self.credits_per_game,
            CONF_OFFLINE_MINUTES: self.offline_minutes,
            CONF_REFUND_UNDELIVERED: self.refund_undelivered,
            CONF_REFUND_MINUTES: self.refund_minutes,
        }


def create_gateway(hass: HomeAssistant, api_key: str) -> StripeGateway:
    """Return a Stripe client on Home Assistant's shared session."""
    return StripeGateway(api_key, async_get_clientsession(hass), os.environ.get(ENV_API_BASE))


def ledger_path(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The ledger belongs to the Stripe account, so it survives removing and re-adding the entry."""
    return hass.config.path(DOMAIN, f"ledger_{entry.unique_id}.sqlite3")


@dataclass(slots=True, repr=False, eq=False)
class ArcadePayData:
    """What one loaded entry runs; entities and actions read it."""

    hass: HomeAssistant
    options: EntryOptions
    ledger: PaymentLedger
    cabinets: dict[str, Cabinet]
    work: EntryWork
    courier: Courier
    intake: Intake
    catch_up: CatchUp
    links: LinkKeeper
    messages: CabinetMessages
    signatures: SignatureWatch
    source: EntrySource  # What the entry was built from (cabinet_roster.py).
    roster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # One cabinet change at a time.
    _unsubscribe: list[Callable[[], None]] = field(default_factory=list)

    @property
    def gateway(self) -> StripeGateway:
        """The Stripe client the intake and the payment links share."""
        return self.intake.gateway

    @gateway.setter
    def gateway(self, gateway: StripeGateway) -> None:
        self.intake.gateway = gateway
        self.links.payment_links.gateway = gateway

    def cabinet_for_device(self, device_id: str) -> Cabinet | None:
        """Find a cabinet by its Home Assistant device id."""
        return next((c for c in self.cabinets.values() if c.device_id == device_id), None)

    async def async_start(self, entry: ConfigEntry) -> None:
        """Subscribe to what cabinets publish, deliver what is outstanding, sync links, reconcile."""
        self._unsubscribe.extend(await self.messages.async_subscribe())
        # Held by self.work and cancelled on unload: both may stop anywhere, and run again.
        for work, interval in (
            (self._async_housekeeping, HOUSEKEEPING_INTERVAL),
            (self.async_reconcile, RECONCILE_INTERVAL),
        ):
            self._unsubscribe.append(
                async_track_time_interval(self.hass, partial(self._interval_due, work), interval)
            )
        clear_unknown_cabinet_issues(self.hass, self.cabinets)
        await self.courier.async_flush()
        self.links.start()
        # Repairs are not kept across restarts; the ledger knows which payments still need one.
        await async_raise_not_credited_repairs(self.intake)
        # Refunds the last run left half-way: settled from Stripe now, not in 30 seconds.
        self.work.spawn(self.catch_up.async_finish_refunds(), cancellable=True, background=True)
        # Payments made while Home Assistant was down longer than Stripe retries.
        self.work.hold(
            entry.async_create_background_task(
                self.hass, self.async_reconcile(), f"{DOMAIN} reconcile {entry.title}"
            ),
            cancellable=True,
        )

    @callback
    def _interval_due(self, work: Callable[[], Coroutine[Any, Any, Any]], _: object) -> None:
        self.work.spawn(work(), cancellable=True, background=True)

    async def async_reconcile(self) -> int:
        """Credit paid sessions the webhook never delivered; return how many were credited."""
        return await self.catch_up.async_reconcile()

    async def _async_housekeeping(self, _: object = None) -> None:
        """Raise stuck-credit repairs, refund what could not be delivered in time (if enabled), sync links.

        Refunds a crash left half-way are finished whatever the option says now.
        """
        self.courier.sync_overdue_issues()
        await self.catch_up.async_finish_refunds()
        if self.options.refund_undelivered:
            await self.catch_up.async_refund_overdue(utcnow().timestamp())
        await self.links.async_sync_links()

    @callback
    def async_stop(self) -> None:
        """Start nothing more, unsubscribe from MQTT and cancel timers."""
        self.work.stop()
        while self._unsubscribe:
            self._unsubscribe.pop()()
        self.courier.stop()
        self.links.stop()

    async def async_drain(self) -> None:
        """Wait for the work in progress (publishes, ledger writes), then write the notes still owed."""
        await self.work.async_wait()
        await self.courier.async_write_notes()


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
        source=EntrySource.of(entry),
    )
    try:
        await async_restore(data, entry, cabinets.values())
        await courier.async_load(set(cabinets))
    except LedgerError as err:
        await hass.async_add_executor_job(ledger.close)
        raise ledger_unavailable(err) from err
    courier.refresh_pending()
    register_devices(hass, entry, cabinets.values())
    return data
