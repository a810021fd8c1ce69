"""Which pulses are due, and when to look again: the delivery rules (delivery.py), without any I/O.

Plain Python (no Home Assistant import), driven by the dispatcher and the property tests. One
record per outstanding pulse (``Outstanding``, delivery_records.py: the pulse to send and
how its delivery goes) in the planner's one dict. Only the planner's methods change a record,
so what is sent and what is owed cannot drift apart. What it knows of the cabinets (online,
acknowledges, waiting for a first sign of life) is private too, and MQTT's state is the
entry's one MqttConnection: the courier tells it through methods named for what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from . import resend
from .delivery_records import Outstanding, Pulse
from .mqtt_connection import MqttConnection

# Seconds a new subscription waits for the retained status of a cabinet last known offline.
STATUS_GRACE: Final = 3.0


@dataclass
class DeliveryPlanner:
    """Which pulses are due, and when to look again."""

    mqtt: MqttConnection = field(default_factory=MqttConnection)  # Shared with the cabinets.
    _online: dict[str, bool | None] = field(default_factory=dict, init=False)
    _acknowledges: dict[str, bool] = field(default_factory=dict, init=False)
    # Cabinets whose owner set "acknowledges credits": what they do does not change it.
    _by_owner: set[str] = field(default_factory=set, init=False)
    # Cabinets that never showed a sign of life: a pulse sent there would reach nobody.
    _waiting_first_sign: set[str] = field(default_factory=set, init=False)
    _outstanding: dict[str, Outstanding] = field(default_factory=dict, init=False)
    # Publishes started by this process: orders them, to tell which confirms which.
    _publishes_started: int = field(default=0, init=False)
    # Last known offline (before a reload or restart): their status is awaited before sending.
    _was_offline: set[str] = field(default_factory=set, init=False)
    _statuses_due_until: float = field(default=0.0, init=False)

    # --- what the planner knows about MQTT and the cabinets --------------------------------

    @property
    def mqtt_connected(self) -> bool:
        """Whether MQTT takes pulses now (while it does not, every pulse is held)."""
        return self.mqtt.connected

    def set_mqtt_connected(self, connected: bool) -> None:
        """MQTT connected, or lost its broker."""
        self.mqtt.connected = connected

    def cabinet_online(self, machine_id: str) -> bool | None:
        """What the cabinet's status last said: online, offline, or None when unknown."""
        return self._online.get(machine_id)

    def set_cabinet_online(self, machine_id: str, online: bool | None) -> None:
        """The cabinet's status said online or offline (None: unknown, which does not hold pulses)."""
        self._online[machine_id] = online

    def was_offline(self, machine_id: str) -> None:
        """The cabinet was last known offline (before a reload or a restart)."""
        self._was_offline.add(machine_id)

    def expect_statuses(self, now: float) -> None:
        """Just subscribed: a cabinet last known offline waits for its retained status (STATUS_GRACE)."""
        self._statuses_due_until = now + STATUS_GRACE

    def _status_due(self, machine_id: str) -> float:
        """Until when the cabinet's pulses wait for its retained status (0: they do not)."""
        unknown = machine_id in self._was_offline and self._online.get(machine_id) is None
        return self._statuses_due_until if unknown else 0.0

    def acknowledges(self, machine_id: str) -> bool:
        """Whether the cabinet acknowledges its pulses (so they are resent until it does)."""
        return self._acknowledges.get(machine_id, False)

    def acknowledging_cabinets(self) -> list[str]:
        """The machine ids of the cabinets that acknowledge, sorted."""
        return sorted(m for m, on in self._acknowledges.items() if on)

    def set_acknowledges(self, machine_id: str, acknowledges: bool, *, by_owner: bool = False) -> None:
        """Whether the cabinet acknowledges, as remembered or as its owner set it (``by_owner``).

        What a cabinet does never changes its owner's setting (see ``learn_acknowledges``).
        """
        self._acknowledges[machine_id] = acknowledges
        if by_owner:
            self._by_owner.add(machine_id)
        else:
            self._by_owner.discard(machine_id)

    def learn_acknowledges(self, machine_id: str) -> bool:
        """A cabinet acknowledged a pulse sent to it; return True if that is news to remember."""
        if machine_id in self._by_owner or self._acknowledges.get(machine_id, False):
            return False
        self._acknowledges[machine_id] = True
        return True

    def wait_for_first_sign(self, machine_id: str) -> None:
        """The cabinet never showed a sign of life: hold its pulses, they would reach nobody."""
        self._waiting_first_sign.add(machine_id)

    def first_sign_seen(self, machine_id: str) -> None:
        """The cabinet showed its first sign of life: its pulses are no longer held for it."""
        self._waiting_first_sign.discard(machine_id)

    # --- outstanding pulses ------------------------------------------------------------------

    def add(
        self, pulse: Pulse, attempts: int = 0, due_at: float = 0.0, awaiting_broker: bool = False
    ) -> None:
        """Track a pulse to deliver (unless it is already); ``attempts`` counts earlier publishes.

        ``awaiting_broker``: published unconfirmed before, still held by the MQTT client.
        """
        if pulse.payment_id not in self._outstanding:
            unconfirmed_at = self._publishes_started if awaiting_broker else None
            self._outstanding[pulse.payment_id] = Outstanding(
                pulse, attempts, due_at, unconfirmed_at=unconfirmed_at
            )

    def get(self, payment_id: str) -> Outstanding | None:
        """Return an outstanding pulse's record, or None."""
        return self._outstanding.get(payment_id)

    def pulse(self, payment_id: str) -> Pulse | None:
        """Return an outstanding pulse, or None."""
        outstanding = self._outstanding.get(payment_id)
        return None if outstanding is None else outstanding.pulse

    def __contains__(self, payment_id: object) -> bool:
        """Return whether a pulse is still outstanding."""
        return payment_id in self._outstanding

    def __len__(self) -> int:
        """Return the number of outstanding pulses."""
        return len(self._outstanding)

    def outstanding(self, machine_id: str | None = None) -> list[Outstanding]:
        """Return the outstanding pulses, of one cabinet or all, oldest first."""
        return [o for o in self._outstanding.values() if machine_id in (None, o.machine_id)]

    def adjust(self, payment_id: str, credits: int) -> None:
        """A refund or dispute left ``credits`` (> 0) of an outstanding pulse to send."""
        if (outstanding := self._outstanding.get(payment_id)) is not None:
            outstanding.pulse = replace(outstanding.pulse, credits=credits)

    def _held(self, machine_id: str) -> bool:
        return (
            not self.mqtt.connected
            or self._online.get(machine_id) is False
            or machine_id in self._waiting_first_sign
        )

    def _gave_up(self, pulse: Outstanding) -> bool:
        """Whether a pulse for a cabinet that acknowledges was sent too often unacknowledged."""
        sends = pulse.attempts - pulse.round_start
        return self.acknowledges(pulse.machine_id) and resend.gave_up(sends)

    def given_up(self, machine_id: str | None = None) -> list[Outstanding]:
        """Return the pulses (of one cabinet, or all) that are not sent again for now."""
        return [o for o in self.outstanding(machine_id) if self._gave_up(o)]

    def resume(self, machine_id: str) -> bool:
        """The cabinet showed it is back: its pulses given up on get another round, now."""
        given_up = self.given_up(machine_id)
        for pulse in given_up:
            pulse.round_start = pulse.attempts
            pulse.next_attempt = 0.0
        return bool(given_up)

    def awaiting_broker(self, pulse: Outstanding) -> bool:
        """Whether a pulse for a cabinet that does not acknowledge waits for the broker's confirmation.

        The MQTT client holds it and sends it again when it reconnects: publishing it again
        too would double the credit on a cabinet that applies every pulse it gets.
        """
        return pulse.unconfirmed_at is not None and not self.acknowledges(pulse.machine_id)

    def _sendable(self, pulse: Outstanding) -> bool:
        return not (
            pulse.in_flight
            or self._held(pulse.machine_id)
            or self._gave_up(pulse)
            or self.awaiting_broker(pulse)
        )

    def take_due(self, now: float, payment_id: str | None = None) -> list[Outstanding]:
        """Return the pulses to publish now (or just ``payment_id``), marking them in flight.

        In flight, it is not handed out again until ``published`` or ``failed``: never twice at once.
        """
        candidates = (
            self._outstanding.values()
            if payment_id is None
            else [p for p in (self._outstanding.get(payment_id),) if p is not None]
        )
        due = [
            o
            for o in candidates
            if max(o.next_attempt, self._status_due(o.machine_id)) <= now and self._sendable(o)
        ]
        for pulse in due:
            pulse.in_flight = True
        return due

    def publish_starting(self) -> int:
        """A publish is handed to MQTT now: return its number (each later publish gets a higher one)."""
        self._publishes_started += 1
        return self._publishes_started

    def published(self, payment_id: str, now: float, confirmed: bool = True) -> bool:
        """Note a publish MQTT took; return True when the pulse counts as delivered.

        ``confirmed``: the broker acknowledged it (PUBACK). An unconfirmed one to a cabinet that
        does not acknowledge stays owed, not sent again (``awaiting_broker``), until ``confirmed_by``.
        """
        pulse = self._outstanding.get(payment_id)
        if pulse is None:
            return False
        pulse.in_flight = False
        pulse.unconfirmed_at = None if confirmed else self._publishes_started
        if not self.acknowledges(pulse.machine_id):
            if confirmed:
                del self._outstanding[payment_id]
                return True
            pulse.attempts += 1
            return False
        pulse.attempts += 1
        pulse.next_attempt = now + resend.backoff(pulse.attempts)
        return False

    def mqtt_client_replaced(self) -> bool:
        """The MQTT client that held the unconfirmed pulses is gone: due again now; return if any."""
        gone = [o for o in self._outstanding.values() if o.unconfirmed_at is not None]
        for pulse in gone:
            pulse.unconfirmed_at = None
            pulse.next_attempt = 0.0
        return bool(gone)

    def confirmed_by(self, publish_number: int) -> list[Outstanding]:
        """The broker confirmed publish ``publish_number``: return the pulses that proves, delivered.

        Those waiting for the broker whose publish returned before it started: the MQTT client
        sent them first (one connection's messages are handled in order, and the client sends its
        unconfirmed messages again first when it reconnects).
        """
        proven = [
            o
            for o in self._outstanding.values()
            if o.unconfirmed_at is not None and o.unconfirmed_at < publish_number and self.awaiting_broker(o)
        ]
        for pulse in proven:
            del self._outstanding[pulse.payment_id]
        return proven

    def failed(self, payment_id: str, now: float) -> None:
        """A publish failed (MQTT refused it): try again after the backoff."""
        if (pulse := self._outstanding.get(payment_id)) is not None:
            pulse.in_flight = False
            pulse.next_attempt = now + resend.backoff(max(1, pulse.attempts))

    def put_back(self, outstanding: Outstanding, credits: int | None = None) -> None:
        """Deliver a pulse taken out with ``forget`` again, due now (``credits``: fewer, if refunded)."""
        pulse = outstanding.pulse if credits is None else replace(outstanding.pulse, credits=credits)
        again = replace(outstanding, pulse=pulse, in_flight=False, next_attempt=0.0)
        self._outstanding.setdefault(pulse.payment_id, again)

    def forget(self, payment_id: str) -> Outstanding | None:
        """Stop delivering a pulse (acknowledged, refunded, withdrawn); return it, if it was owed."""
        return self._outstanding.pop(payment_id, None)

    def drop_cabinet(self, machine_id: str) -> None:
        """A cabinet was deleted: stop delivering to it (the ledger still owes it, as at a restart).

        A pulse on its way, or held unconfirmed by the MQTT client, is left to finish (paid for it).
        """
        for outstanding in self.outstanding(machine_id):
            if not outstanding.in_flight and not self.awaiting_broker(outstanding):
                self.forget(outstanding.payment_id)

    def hurry(self, machine_id: str | None = None) -> None:
        """Make pulses due now: the cabinet (or MQTT) just came back."""
        for pulse in self._outstanding.values():
            if machine_id in (None, pulse.machine_id):
                pulse.next_attempt = 0.0

    def next_wakeup(self) -> float | None:
        """Return when the earliest pulse that is not held falls due, or None."""
        return min(
            (
                max(o.next_attempt, self._status_due(o.machine_id))
                for o in self._outstanding.values()
                if self._sendable(o)
            ),
            default=None,
        )
