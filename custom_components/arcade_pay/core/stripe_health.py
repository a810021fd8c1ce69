"""Whether Stripe answers: an outage is logged once and its end once; a refused key starts reauth.

Plain Python (no Home Assistant import). The gateway tells this observer about every
call, whoever made it (reconciliation, the switch, refunds, a payment's line items), so
an outage is not logged per cabinet per hour, and any authentication error, not only the
action's, asks the owner for a new key.
"""

from __future__ import annotations

from collections.abc import Callable
import logging

from .stripe_gateway import (
    StripeAuthError,
    StripeConnectionError,
    StripeGatewayError,
    StripeUnavailableError,
)

# Failures that say Stripe (or the way to it, or our key) is down, not that one request was wrong.
OUTAGE_ERRORS = (StripeAuthError, StripeConnectionError, StripeUnavailableError)


class StripeHealth:
    """Observer of one gateway's calls."""

    def __init__(self, logger: logging.Logger, start_reauth: Callable[[], None]) -> None:
        """Log to ``logger``; call ``start_reauth`` when Stripe refuses the key."""
        self._logger = logger
        self._start_reauth = start_reauth
        self.down = False

    def failed(self, err: StripeGatewayError) -> None:
        """A call failed: log the outage once; ask for a new key if it was refused.

        A refused request (a deleted payment link, say) is no outage: its caller logs it.
        """
        if isinstance(err, StripeAuthError):
            self._start_reauth()
        if not isinstance(err, OUTAGE_ERRORS):
            return
        if self.down:
            self._logger.debug("Stripe still failing: %s", err)
            return
        self.down = True
        self._logger.warning(
            "Stripe requests fail (%s); Arcade Pay keeps trying and logs once when Stripe answers again",
            err,
        )

    def answered(self) -> None:
        """A call succeeded: log the end of an outage once."""
        if self.down:
            self.down = False
            self._logger.info("Stripe answers again")
