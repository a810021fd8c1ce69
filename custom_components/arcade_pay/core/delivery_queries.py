"""What the dispatcher answers about pulses still owed, without changing anything.

Plain Python (no Home Assistant import): the read-only side of CreditDispatcher (delivery.py),
for the courier's entities and repairs and for the refunds of credits overdue.
"""

from __future__ import annotations

from .delivery_planner import DeliveryPlanner
from .delivery_records import Pulse
from .publish_notes import PublishNotes


class DeliveryQueries:
    """Reads of the planner's outstanding pulses."""

    planner: DeliveryPlanner
    _notes: PublishNotes

    def outstanding_credits(self, machine_id: str) -> int:
        """Credits recorded for a cabinet but not yet known to be delivered."""
        return sum(o.pulse.credits for o in self.planner.outstanding(machine_id))

    def given_up_credits(self, machine_id: str) -> int:
        """Credits a cabinet never acknowledged, not sent again for now (resend.py)."""
        return sum(o.pulse.credits for o in self.planner.given_up(machine_id))

    def oldest_outstanding(self, machine_id: str | None = None) -> Pulse | None:
        """Return the oldest pulse still outstanding."""
        pulses = [o.pulse for o in self.planner.outstanding(machine_id)]
        return min(pulses, key=lambda p: p.timestamp, default=None)

    def pulse(self, payment_id: str) -> Pulse | None:
        """Return an outstanding pulse."""
        return self.planner.pulse(payment_id)

    def published_once(self, payment_id: str) -> bool:
        """Return whether a pulse has reached MQTT at least once (or is no longer outstanding)."""
        outstanding = self.planner.get(payment_id)
        return outstanding is None or outstanding.attempts > 0

    def awaiting_broker(self) -> list[Pulse]:
        """The pulses waiting for the broker's confirmation, held by the MQTT client (delivery_planner.py)."""
        return [o.pulse for o in self.planner.outstanding() if self.planner.awaiting_broker(o)]

    def next_wakeup(self) -> float | None:
        """Return when a pulse falls due or a failed ledger write is tried again, or None."""
        times = (self.planner.next_wakeup(), self._notes.retry_at)
        return min((t for t in times if t is not None), default=None)

    def unnoted(self) -> set[str]:
        """Payments whose publish the ledger has not noted yet."""
        return self._notes.payment_ids()
