"""What a loaded entry holds (its ``runtime_data``) and the options it runs with.

Everyone may import this module: the collaborators' types are imported for the type checker
only, so that a flow, a platform or the webhook reads ``ArcadePayData`` without loading the
courier, the intake or the ledger. runtime.py builds and starts what it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback

from .const import (
    CONF_CREDITS_PER_GAME,
    CONF_OFFLINE_MINUTES,
    CONF_REFUND_MINUTES,
    CONF_REFUND_UNDELIVERED,
    CONF_TOPIC_PREFIX,
    DEFAULT_TOPIC_PREFIX,
    SUBENTRY_CABINET,
)

if TYPE_CHECKING:
    from .cabinet_messages import CabinetMessages
    from .catch_up import CatchUp
    from .core.cabinet import Cabinet
    from .core.ledger import PaymentLedger
    from .core.stripe_gateway import StripeGateway
    from .courier import Courier
    from .entry_work import EntryWork
    from .intake import Intake
    from .issues import SignatureWatch
    from .link_keeper import LinkKeeper
    from .player_sessions import PlayerSessions

type ArcadePayConfigEntry = ConfigEntry[ArcadePayData]


@dataclass(frozen=True, slots=True)
class EntryOptions:
    """The entry's options, with the defaults of an entry that has none (older entries).

    ``EntryOptions.of`` is the only place option defaults are applied.
    """

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


@dataclass(frozen=True, slots=True)
class EntrySource:
    """What a running entry was built from: tells a cabinet added or deleted from any other change."""

    data: dict[str, Any]
    options: dict[str, Any]
    cabinets: dict[str, tuple[str, dict[str, Any]]]  # subentry id: title, data

    @classmethod
    def of(cls, entry: ConfigEntry) -> EntrySource:
        """The entry as it is now."""
        return cls(
            dict(entry.data),
            dict(entry.options),
            {
                subentry_id: (subentry.title, dict(subentry.data))
                for subentry_id, subentry in entry.subentries.items()
                if subentry.subentry_type == SUBENTRY_CABINET
            },
        )


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
    player_sessions: PlayerSessions
    source: EntrySource  # What the running cabinets were built from (cabinet_roster.py).
    roster_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # One cabinet change at a time.
    # The subscriptions and timers runtime.async_start made; async_stop undoes them.
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)

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

    async def async_reconcile(self) -> int:
        """Credit paid sessions the webhook never delivered; return how many were credited."""
        return await self.catch_up.async_reconcile()

    @callback
    def async_stop(self) -> None:
        """Start nothing more, unsubscribe from MQTT and cancel timers."""
        self.work.stop()
        while self.unsubscribe:
            self.unsubscribe.pop()()
        self.courier.stop()
        self.links.stop()

    async def async_drain(self) -> None:
        """Wait for the work in progress (publishes, ledger writes), then write the notes still owed."""
        await self.work.async_wait()
        await self.courier.async_write_notes()
