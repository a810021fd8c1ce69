"""The scan limits: a bot looping over a cabinet's URL opens a bounded number of sessions."""

from __future__ import annotations

from hypothesis import given, strategies as st

from custom_components.arcade_pay.core.rate_limit import (
    MAX_KEYS,
    SESSIONS_PER_CABINET_PER_MINUTE,
    SESSIONS_PER_CLIENT_PER_MINUTE,
    ScanLimits,
    SlidingWindow,
)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_client_is_limited_and_told_when_to_come_back() -> None:
    clock = Clock()
    limits = ScanLimits(clock)
    admitted = [limits.try_admit("galaga", "10.0.0.1") for _ in range(SESSIONS_PER_CLIENT_PER_MINUTE)]
    assert admitted == [0.0] * SESSIONS_PER_CLIENT_PER_MINUTE
    clock.now += 15
    assert limits.try_admit("galaga", "10.0.0.1") == 45.0
    clock.now += 45
    assert limits.try_admit("galaga", "10.0.0.1") == 0.0


def test_many_clients_are_limited_per_cabinet_but_other_cabinets_go_on() -> None:
    clock = Clock()
    limits = ScanLimits(clock)
    results = [limits.try_admit("galaga", f"10.0.0.{n}") for n in range(SESSIONS_PER_CABINET_PER_MINUTE + 5)]
    assert results.count(0.0) == SESSIONS_PER_CABINET_PER_MINUTE
    assert limits.try_admit("pacman", "10.0.0.99") == 0.0


def test_a_refused_scan_uses_up_nothing() -> None:
    clock = Clock()
    limits = ScanLimits(clock)
    for _ in range(SESSIONS_PER_CLIENT_PER_MINUTE):
        limits.try_admit("galaga", "bot")
    for _ in range(100):
        clock.now += 0.1
        assert limits.try_admit("galaga", "bot") > 0
    # The bot's refused tries did not count against the cabinet: honest players still get in.
    assert limits.try_admit("galaga", "player") == 0.0


def test_memory_is_bounded_when_every_scan_comes_from_a_new_address() -> None:
    window = SlidingWindow(1, 60.0, Clock())
    for n in range(MAX_KEYS + 100):
        window.admit(f"client-{n}")
    assert len(window._admitted) <= MAX_KEYS


@given(st.lists(st.tuples(st.floats(0, 200), st.sampled_from(["a", "b", "c"])), max_size=80))
def test_never_more_than_the_limit_in_any_minute(steps: list[tuple[float, str]]) -> None:
    clock = Clock()
    limits = ScanLimits(clock)
    admitted: list[tuple[float, str]] = []
    for advance, client in steps:
        clock.now += advance / 10
        if limits.try_admit("galaga", client) == 0.0:
            admitted.append((clock.now, client))
    for at, _ in admitted:
        in_window = [(t, c) for t, c in admitted if at - 60 < t <= at]
        assert len(in_window) <= SESSIONS_PER_CABINET_PER_MINUTE
        for client in "abc":
            assert sum(1 for _, c in in_window if c == client) <= SESSIONS_PER_CLIENT_PER_MINUTE
