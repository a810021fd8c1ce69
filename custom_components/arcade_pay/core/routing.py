"""Which cabinet a paid checkout session is for: the one whose payment link was paid.

Plain Python (no Home Assistant import). The rules, in order:

1. The session's payment link is a cabinet's current link: that cabinet, whatever the
   session's ``metadata.machine_id`` says. A link belongs to the cabinet it was configured
   for; metadata is only a hint written when the link was made.
2. Several cabinets claim the same link (an adoption made before the cabinet form refused
   links already owned by another cabinet): the one the link's metadata names, else the one
   for which Arcade Pay created the link. If that still leaves no single owner, nobody:
   the payment is not credited and a repair asks the owner to credit or refund it by hand.
3. The link is no cabinet's current link: a link retired by a price change (Arcade Pay
   wrote the cabinet's machine id into its metadata when it created it, and deactivated it;
   a player who opened the checkout before that can still pay), or a session without a
   payment link (the earlier system's checkout sessions). The metadata's machine id decides.
   No configured cabinet's link was paid, so no cabinet is credited in another's place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .cabinet import Cabinet


class AmbiguousLink(LookupError):
    """Several cabinets claim the paid link and nothing says which one it is for."""


class LinkIndex:
    """Cabinets by payment link, built once per set of cabinets."""

    def __init__(self, cabinets: Iterable[Cabinet]) -> None:
        """Index the cabinets' current links."""
        self._cabinets = {cabinet.machine_id: cabinet for cabinet in cabinets}
        self._by_link: dict[str, list[Cabinet]] = defaultdict(list)
        for cabinet in self._cabinets.values():
            self._by_link[cabinet.config.payment_link_id].append(cabinet)

    def cabinet_for(self, payment_link_id: str | None, machine_id: str | None) -> Cabinet | None:
        """Return the cabinet a session paid for, None if none; raise AmbiguousLink (rule 2)."""
        owners = self._by_link.get(payment_link_id or "", [])
        if len(owners) == 1:
            return owners[0]
        if owners:
            named = [c for c in owners if c.machine_id == machine_id]
            created = [c for c in owners if c.config.managed_link]
            for candidates in (named, created):
                if len(candidates) == 1:
                    return candidates[0]
            raise AmbiguousLink(", ".join(sorted(c.machine_id for c in owners)))
        return self._cabinets.get(machine_id) if machine_id else None
