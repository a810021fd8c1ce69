"""What Arcade Pay knows about one cabinet, and who wants to hear when it changes.

Plain Python (no Home Assistant import): the entities listen to a ``Cabinet``; the
integration changes it as payments, pulses and the cabinet's messages come and go. Credits
and game state are an estimate from the pulses we sent and the game overs we heard, unless
the cabinet reports its own state, which then wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .cabinet_config import CabinetConfig
from .cabinet_price import LivePrice
from .currencies import from_minor_units
from .mqtt_connection import MqttConnection
from .pricing import PackSet
from .protocol import CabinetState, GameState


class PaymentsState(StrEnum):
    """Whether a cabinet's link takes money, and if not, why (the "Payments" sensor)."""

    ACCEPTING = "accepting"
    PAUSED = "paused"  # by the operator (switch)
    WAITING = "waiting"  # for the cabinet's first sign of life
    OFFLINE = "offline"  # the offline rule stopped it
    STRIPE_PENDING = "stripe_pending"  # Stripe does not have the wanted state yet


@dataclass(frozen=True, slots=True)
class CabinetEvent:
    """Something that happened on a cabinet (for the event entity)."""

    event_type: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


CabinetListener = Callable[[CabinetEvent | None], None]


class Cabinet(LivePrice):
    """Live state of one cabinet."""

    def __init__(self, config: CabinetConfig, mqtt: MqttConnection | None = None) -> None:
        """Start with nothing known; ``mqtt`` is the entry's (a cabinet on its own: connected)."""
        self.config = config
        self.device_id: str | None = None
        self.credits = 0
        self.game_state = GameState.ATTRACT
        self.online: bool | None = None
        self.revenue = 0  # minor units, in config.currency
        self.payments = 0
        self.plays = 0
        self.last_payment: datetime | None = None
        self.pending_credits = 0
        # Set by the first state message: from then on its own count wins over our estimate.
        self.reports_state = False
        # What Stripe has, as far as we know (a link starts active in Stripe).
        self.accepting_payments = True
        self.link_state_known = False
        # Why it should not take money: the operator paused it, it never showed a sign of
        # life, or it has been offline too long.
        self.paused = False
        self.seen = False
        self.offline_stopped = False
        # Deleted while the entry runs: its link must never take money again.
        self.removed = False
        self._mqtt = MqttConnection() if mqtt is None else mqtt
        # What a scan sells now (Home Assistant QR code): set by the entities, kept by the ledger.
        self._live_unit_amount = config.unit_amount
        self.pack_set = PackSet.NONE
        self._listeners: list[CabinetListener] = []

    @property
    def machine_id(self) -> str:
        """The cabinet's id in MQTT topics and Stripe metadata."""
        return self.config.machine_id

    @property
    def mqtt_connected(self) -> bool:
        """Whether MQTT is connected (the entry's one answer, which the courier keeps)."""
        return self._mqtt.connected

    @property
    def awaiting_first_sign(self) -> bool:
        """Nobody knows the cabinet is there: nothing published, no payments taken."""
        return not self.seen and not self.config.never_reports

    @property
    def wants_payments(self) -> bool:
        """Whether the cabinet's link should take money now."""
        return not (self.removed or self.paused or self.awaiting_first_sign or self.offline_stopped)

    @property
    def payments_state(self) -> PaymentsState:
        """What the link does and why; a link Stripe was not told about yet says so."""
        if self.accepting_payments and self.wants_payments:
            return PaymentsState.ACCEPTING
        if self.accepting_payments:
            return PaymentsState.STRIPE_PENDING  # It should stop, and still takes money.
        if self.paused:
            return PaymentsState.PAUSED
        if self.awaiting_first_sign:
            return PaymentsState.WAITING
        if self.offline_stopped:
            return PaymentsState.OFFLINE
        return PaymentsState.STRIPE_PENDING

    def changed(self) -> None:
        """Tell the listeners that something they show changed."""
        self._changed()

    @property
    def revenue_amount(self) -> Decimal:
        """Revenue in the currency's major unit."""
        return from_minor_units(self.revenue, self.config.currency)

    def add_listener(self, listener: CabinetListener) -> Callable[[], None]:
        """Call ``listener`` on every change; return a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self, event: CabinetEvent | None = None) -> None:
        for listener in list(self._listeners):
            listener(event)

    def paid(self, amount: int, at: datetime) -> None:
        """A payment was recorded: count the money (credits follow when delivered)."""
        self.revenue += amount
        self.payments += 1
        self.last_payment = at
        self._changed()

    def refunded(self, amount: int) -> None:
        """Money went back to a player (refund or dispute)."""
        self.revenue -= amount
        self._changed()

    def credit(self, credits: int, event: CabinetEvent) -> None:
        """Credits were sent to the cabinet: a game is about to be played.

        A cabinet that reports its state is believed alone: its count may already hold these
        credits (it can answer before the broker confirms the pulse to us), so adding them
        again would count them twice.
        """
        if not self.reports_state:
            self.credits += credits
            self.game_state = GameState.PLAYING
        self._changed(event)

    def set_pending_credits(self, credits: int) -> None:
        """Credits recorded but not yet known to be on the cabinet."""
        if credits != self.pending_credits:
            self.pending_credits = credits
            self._changed()

    def set_accepting_payments(self, accepting: bool) -> None:
        """What Stripe now has for the cabinet's payment link."""
        self.link_state_known = True
        if accepting != self.accepting_payments:
            self.accepting_payments = accepting
        self._changed()

    def game_over(self, credits_per_game: int, event: CabinetEvent) -> None:
        """A game ended: one more play, its credits used.

        Back to the attract screen only when no credits are left: with credits left the next
        game starts at once, and a passing ``attract`` would fire automations for nothing.
        """
        self.plays += 1
        self.credits = max(0, self.credits - credits_per_game)
        self.game_state = GameState.PLAYING if self.credits else GameState.ATTRACT
        self._changed(event)

    def report_state(self, state: CabinetState) -> None:
        """The cabinet told us what it has; believe it over our estimate."""
        self.reports_state = True
        self.credits = state.credits
        self.game_state = state.state
        self._changed()

    def mqtt_changed(self) -> None:
        """MQTT connected or lost its broker: what needs it shows so."""
        self._changed()

    def note_sign_of_life(self) -> bool:
        """The cabinet published something; return True the first time (it exists: money may flow)."""
        if self.seen:
            return False
        self.seen = True
        self._changed()
        return True

    def set_offline_stopped(self, stopped: bool) -> None:
        """The offline rule stopped its link taking money (it was offline too long), or lifted that."""
        self.offline_stopped = stopped
        self._changed()

    def set_online(self, online: bool) -> None:
        """The cabinet's retained status (its MQTT last will) changed."""
        if self.online != online:
            self.online = online
            self._changed()

    def restore_totals(self, revenue: int, payments: int, last_payment: datetime | None) -> None:
        """Take back its revenue, payment count and last payment from the ledger (before its entities)."""
        self.revenue, self.payments, self.last_payment = revenue, payments, last_payment

    def restore_memory(self, *, paused: bool, seen: bool, offline_stopped: bool) -> None:
        """Take back from the ledger what stops its link: the operator's pause, no sign yet, the offline rule.

        Like the totals, read before its entities exist (a start, or a cabinet added): nobody to tell.
        """
        self.paused, self.seen, self.offline_stopped = paused, seen, offline_stopped

    def restore(
        self, *, credits: int | None = None, plays: int | None = None, game_state: GameState | None = None
    ) -> None:
        """Take back what the entities remembered from before a restart."""
        if credits is not None:
            self.credits = credits
        if plays is not None:
            self.plays = plays
        if game_state is not None:
            self.game_state = game_state
