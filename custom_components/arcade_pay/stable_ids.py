"""The ids of the stable QR codes: the entry's player webhook and each cabinet's scan token.

Each is made once (a new entry, a new cabinet, or the migration of an older one) and never
changed: the QR codes printed with them must keep working for the life of the cabinet.
"""

from __future__ import annotations

import secrets


def new_player_webhook_id() -> str:
    """The id of the public webhook players' scans reach (one per entry)."""
    return secrets.token_hex(16)


def new_scan_token() -> str:
    """A cabinet's part of its stable URL (``?c=<token>``): unguessable, URL-safe."""
    return secrets.token_urlsafe(12)
