"""What of a verified Stripe event Arcade Pay takes as it is: its mode, its account, its machine id.

Plain Python (no Home Assistant import). A genuine signature says the event came through
this entry's webhook endpoint, not that it is about this entry's money:

* A live-mode event for an entry whose key is a test key (or the other way round) is about
  other money than the ledger's: a webhook endpoint of the other mode, given this entry's
  signing secret by mistake. Stripe's keys say their mode (``sk_test_``/``rk_test_``,
  ``sk_live_``/``rk_live_``); a key that does not is not checked.
* An event that carries ``account`` happened on a connected account (Stripe Connect): its
  payment links are not this account's, whatever their metadata says.

Both are refused (HTTP 400), so that Stripe's dashboard shows the deliveries failing.

A link made elsewhere can carry any ``metadata.machine_id``: only one that could be a
cabinet's (letters, digits, ``-``, ``_``, at most 64) is read; any other is treated as
absent, so it never reaches a log line, a repair id or a topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .protocol import is_valid_machine_id


def key_livemode(api_key: str) -> bool | None:
    """Whether a Stripe key is a live-mode key (True), a test-mode one (False), or does not say."""
    for prefix in ("sk_", "rk_"):
        if api_key.startswith(prefix + "live_"):
            return True
        if api_key.startswith(prefix + "test_"):
            return False
    return None


def refusal(event: Any, livemode: bool | None) -> str | None:
    """Why a verified event is not this entry's to act on, or None; the same text for the same cause."""
    if not isinstance(event, Mapping):
        return None  # Not an event at all: the parser says so.
    if livemode is not None:
        mode = event.get("livemode")
        if not isinstance(mode, bool):
            return "the event has no livemode, so its mode is unknown"
        if mode != livemode:
            key, other = ("live", "test") if livemode else ("test", "live")
            return (
                f"a {other} mode event, and this entry's API key is a {key} mode key: the webhook "
                f"endpoint in Stripe and the key must belong to the same mode"
            )
    account = event.get("account")
    if account is not None:
        shown = account if isinstance(account, str) and is_valid_machine_id(account) else "(unreadable)"
        return f"an event of connected account {shown} (Stripe Connect), not of this account"
    return None


def metadata_machine_id(value: Any) -> str | None:
    """The machine id a link's or session's metadata names, if it could be a cabinet's; else None."""
    return value if isinstance(value, str) and is_valid_machine_id(value) else None
