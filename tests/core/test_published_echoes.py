"""Messages Arcade Pay published, told apart from cabinets' when its subscription brings them back."""

from __future__ import annotations

from custom_components.arcade_pay.core.published_echoes import ECHO_SECONDS, PublishedEchoes

TOPIC = "arcade/machine/pacman-1/gameover"
MESSAGE = b'{"machineId":"pacman-1","status":"game_over","timestamp":"2024-07-01T12:30:00Z"}'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_published_copy_is_recognised_once() -> None:
    echoes = PublishedEchoes(Clock())
    assert not echoes.is_echo(TOPIC, MESSAGE)  # Nothing published: a cabinet's message.
    echoes.expect(TOPIC, MESSAGE)
    echoes.expect(TOPIC, MESSAGE)
    assert echoes.is_echo(TOPIC, bytearray(MESSAGE))
    assert echoes.is_echo(TOPIC, MESSAGE.decode())  # Text, as a subscription with an encoding has it.
    assert not echoes.is_echo(TOPIC, MESSAGE)


def test_only_the_same_bytes_on_the_same_topic() -> None:
    echoes = PublishedEchoes(Clock())
    echoes.expect(TOPIC, MESSAGE)
    assert not echoes.is_echo("arcade/machine/pacman-2/gameover", MESSAGE)
    assert not echoes.is_echo(TOPIC, MESSAGE.replace(b":30:00Z", b":30:01Z"))
    assert not echoes.is_echo(TOPIC, MESSAGE.replace(b",", b", "))  # Same JSON, other bytes: a cabinet's.
    assert echoes.is_echo(TOPIC, MESSAGE)


def test_a_copy_not_back_in_time_is_forgotten() -> None:
    clock = Clock()
    echoes = PublishedEchoes(clock)
    echoes.expect(TOPIC, MESSAGE)
    clock.now += ECHO_SECONDS / 2
    echoes.expect(TOPIC, MESSAGE)
    clock.now += ECHO_SECONDS / 2  # The first one is now too old, the second is not.
    assert echoes.is_echo(TOPIC, MESSAGE)
    assert not echoes.is_echo(TOPIC, MESSAGE)

    echoes.expect("other/topic", MESSAGE)
    clock.now += ECHO_SECONDS
    assert not echoes.is_echo(TOPIC, MESSAGE)  # Checking any message lets go of stale ones.
    assert not echoes.is_echo("other/topic", MESSAGE)
