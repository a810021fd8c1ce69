"""What cabinets nobody has yet said, kept for a cabinet added while running (core/unclaimed.py)."""

from __future__ import annotations

from custom_components.arcade_pay.core.unclaimed import UnclaimedMessages


def test_newest_of_each_kind_is_handed_over_once_in_the_order_heard() -> None:
    unclaimed: UnclaimedMessages[str] = UnclaimedMessages()
    unclaimed.keep("galaga", "status", "offline")
    unclaimed.keep("galaga", "state", "credits 0")
    unclaimed.keep("galaga", "status", "online")
    unclaimed.keep("tetris", "status", "online")

    assert unclaimed.claim("galaga") == ["credits 0", "online"]
    assert unclaimed.claim("galaga") == []
    assert unclaimed.claim("tetris") == ["online"]


def test_a_cleared_retained_message_is_forgotten() -> None:
    unclaimed: UnclaimedMessages[str] = UnclaimedMessages()
    unclaimed.keep("galaga", "status", "online")
    unclaimed.keep("galaga", "status", "", cleared=True)

    assert unclaimed.claim("galaga") == []
    assert len(unclaimed) == 0


def test_at_most_so_many_machines_the_one_heard_from_longest_ago_goes_first() -> None:
    unclaimed: UnclaimedMessages[str] = UnclaimedMessages(max_machines=2)
    unclaimed.keep("a", "status", "online")
    unclaimed.keep("b", "status", "online")
    unclaimed.keep("a", "state", "credits 1")  # Heard from again: now the newest.
    unclaimed.keep("c", "status", "online")

    assert len(unclaimed) == 2
    assert unclaimed.claim("b") == []
    assert unclaimed.claim("a") == ["online", "credits 1"]
    assert unclaimed.claim("c") == ["online"]
