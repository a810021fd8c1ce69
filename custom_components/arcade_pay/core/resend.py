"""How often, and how many times, a pulse for a cabinet that acknowledges is sent again.

Plain Python (no Home Assistant import), used by the delivery planner.

A cabinet counts as acknowledging when its owner says so (its *Reconfigure*) or once it
acknowledged a pulse that was sent to it; what it says about itself in its ``state`` message
is no proof (an older cabinet applies every pulse it gets, and one retained claim on its topic
turned one payment into 9 pulses in 4 minutes).

Such a cabinet gets an unacknowledged pulse again after 2, 4, 8 … up to 60 s, but at most
``MAX_SENDS_WITHOUT_ACK`` times in a row: 6 sends, at 0, 2, 6, 14, 30 and 62 s. A cabinet that
acknowledges answers the first or second send (acks are rarely lost); six unanswered sends over
a minute mean it cannot acknowledge (an older cabinet set to acknowledging by mistake, or acks
its broker user may not publish), and every further send would be one more credit on a cabinet
that applies every pulse. The credits then stay pending (in the ledger, across restarts), a
repair says what to do, and the pulse gets another round of sends only when the cabinet shows
it is back: its ``status`` says ``online`` again, or it acknowledges another pulse.
"""

from __future__ import annotations

from typing import Final

BACKOFF_INITIAL: Final = 2.0
BACKOFF_MAX: Final = 60.0
MAX_SENDS_WITHOUT_ACK: Final = 6


def backoff(attempts: int, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the ``attempts``-th publish before the next one (doubling, capped)."""
    # Cap the exponent first: 2.0 ** 1024 overflows (attempts keep counting across rounds).
    return min(maximum, initial * 2.0 ** min(max(0, attempts - 1), 32))


def gave_up(sends_this_round: int) -> bool:
    """Return whether a pulse sent this many times in a row without an ack is sent no more."""
    return sends_this_round >= MAX_SENDS_WITHOUT_ACK
