"""The agent as a real process against a real broker: status, pulses, acks, game over."""

from __future__ import annotations

import itertools
import json
import time

from cabinet_harness import MACHINE_ID, PREFIX, pulse_json, retained, wait_until

from arcade_cabinet import __version__
from arcade_cabinet.announcement import Announcement
from arcade_cabinet.config import DEFAULT_MODEL
from arcade_cabinet.protocol import CabinetState, GameOver, GameState


def test_status_online_retained_and_last_will_on_kill(broker, ha, agent):
    status_topic = f"{PREFIX}/{MACHINE_ID}/status"
    agent.start_online(ha)
    assert retained(broker.port, status_topic) == b"online"

    mark = ha.mark()
    agent.kill()
    ha.wait_status("offline", mark)  # The broker published the last will.
    assert retained(broker.port, status_topic) == b"offline"

    agent.start_online(ha)
    assert retained(broker.port, status_topic) == b"online"
    mark = ha.mark()
    assert agent.stop() == 0  # SIGTERM: a clean stop says offline itself.
    ha.wait_status("offline", mark)
    assert retained(broker.port, status_topic) == b"offline"
    assert "Stopped with 0 credit(s)" in agent.log_text()


def test_pulse_is_stored_acknowledged_and_inserted_with_gaps(broker, ha, make_agent):
    agent = make_agent(coin_gap_ms=150)
    agent.start_online(ha)
    mark = ha.mark()

    ha.pulse(3, "cs_test_1")
    ha.wait_ack("cs_test_1", mark)

    state = agent.state()
    assert state is not None
    assert state["credits"] == 3
    assert state["applied_payment_ids"] == ["cs_test_1"]
    ha.wait_for(
        lambda: any(
            CabinetState.from_payload(m.payload) == CabinetState(3, GameState.PLAYING, acknowledges=True)
            for m in ha.of("state", mark)
        ),
        what="state 3 playing",
    )
    assert json.loads(retained(broker.port, ha.topic("state")) or b"0") == {
        "credits": 3,
        "state": "playing",
        "acknowledges": True,
    }

    assert agent.wait_coins_done()["credits"] == 3
    coins = agent.coins()
    assert len(coins) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(coins)]
    assert all(gap >= 0.150 for gap in gaps), gaps
    assert ha.acks(mark) == ["cs_test_1"]


def test_repeated_payment_is_acknowledged_again_but_not_applied(ha, agent):
    agent.start_online(ha)
    mark = ha.mark()
    ha.pulse(2, "cs_dup")
    ha.wait_ack("cs_dup", mark)
    ha.pulse(2, "cs_dup")
    ha.wait_for(lambda: ha.acks(mark).count("cs_dup") == 2, what="second ack")

    ha.pulse(1, "cs_other")
    ha.wait_ack("cs_other", mark)
    state = agent.wait_coins_done()
    assert state["credits"] == 3
    assert state["applied_payment_ids"] == ["cs_dup", "cs_other"]
    assert len(agent.coins()) == 3
    assert "Payment cs_dup was already applied; acknowledging it again" in agent.log_text()


def test_earlier_system_pulse_without_payment_id_is_applied_without_ack(ha, agent):
    agent.start_online(ha)
    mark = ha.mark()
    ha.pulse(2)
    wait_until(lambda: agent.credits() == 2, what="2 credits")
    # No dedupe is possible without an id: the earlier system's pulses are applied every time.
    ha.pulse(1)
    wait_until(lambda: agent.credits() == 3, what="3 credits")
    ha.wait_for(
        lambda: any(
            m.json() == {"credits": 3, "state": "playing", "acknowledges": True} for m in ha.of("state", mark)
        ),
        what="state 3",
    )
    time.sleep(0.3)
    assert ha.of("ack", mark) == []
    assert agent.state()["applied_payment_ids"] == []


def test_malformed_foreign_and_retained_pulses_are_ignored_once_warned(ha, agent):
    # A retained pulse (here without a payment id, as the earlier system's) reaches every new subscription:
    # applying it would credit the cabinet again at every reconnect.
    ha.publish("coinpulse", pulse_json(5), retain=True)
    agent.start_online(ha)
    mark = ha.mark()
    good = json.loads(pulse_json(1, "cs_x"))
    bad: list[str | bytes] = [
        b"not json",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"x" * 5000,
        json.dumps({**good, "credits": 0}),
        json.dumps({**good, "credits": "1"}),
        json.dumps({**good, "credits": True}),
        json.dumps({k: v for k, v in good.items() if k != "timestamp"}),
        json.dumps({**good, "machineId": "someone-else"}),
        json.dumps({**good, "machineId": "someone-else"}),
    ]
    for payload in bad:
        ha.publish("coinpulse", payload)
    ha.pulse(1, "cs_ok")
    ha.wait_ack("cs_ok", mark)

    assert agent.state()["credits"] == 1
    assert agent.state()["applied_payment_ids"] == ["cs_ok"]
    assert ha.acks(mark) == ["cs_ok"]
    assert agent.process is not None
    assert agent.process.poll() is None
    log = agent.log_text()
    assert log.count("WARNING Ignoring coin pulse: message is not JSON") == 1
    assert log.count("WARNING Ignoring coin pulse: machineId 'someone-else' is not this cabinet's") == 1
    assert "WARNING Ignoring coin pulse: it is retained" in log
    assert "Traceback" not in log
    ha.publish("coinpulse", b"", retain=True)  # Clear the retained pulse.


def test_game_over_publishes_and_uses_credits(broker, ha, make_agent):
    agent = make_agent(credits_per_game=2)
    agent.start_online(ha)
    mark = ha.mark()
    ha.pulse(3, "cs_game")
    ha.wait_ack("cs_game", mark)

    result = agent.cli("game-over")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Game over: 1 credit(s) left (playing)"
    assert agent.credits() == 1
    result = agent.cli("game-over")
    assert result.stdout.strip() == "Game over: 0 credit(s) left (attract)"
    result = agent.cli("game-over")  # Never below 0; the game over is still reported.
    assert result.returncode == 0
    assert agent.credits() == 0

    game_overs = ha.wait_for(lambda: len(ha.of("gameover", mark)) == 3 and ha.of("gameover", mark))
    for message in game_overs:
        assert set(message.json()) == {"machineId", "status", "timestamp"}
        parsed = GameOver.from_payload(message.payload)
        assert parsed.machine_id == MACHINE_ID
        assert parsed.timestamp is not None
    ha.wait_for(
        lambda: ha.of("state", mark)[-1].json() == {"credits": 0, "state": "attract", "acknowledges": True}
    )
    assert json.loads(retained(broker.port, ha.topic("state")) or b"0") == {
        "credits": 0,
        "state": "attract",
        "acknowledges": True,
    }

    status = agent.cli("status", "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout) == {
        "running": True,
        "machine_id": MACHINE_ID,
        "credits": 0,
        "state": "attract",
        "pending_coins": 0,
        "connected": True,
    }


def test_game_over_and_status_fail_cleanly_when_the_agent_is_not_running(ha, agent):
    agent.start_online(ha)
    mark = ha.mark()
    ha.pulse(2, "cs_status")
    ha.wait_ack("cs_status", mark)
    assert "cab-1: 2 credit(s), playing" in agent.cli("status").stdout
    agent.wait_coins_done()
    assert agent.stop() == 0

    result = agent.cli("game-over")
    assert result.returncode == 1
    assert "game over not recorded" in result.stderr
    assert "not running" in result.stderr
    assert "Traceback" not in result.stderr
    assert agent.credits() == 2

    status = agent.cli("status")
    assert status.returncode == 1
    assert status.stdout.strip() == (
        "cab-1: 2 credit(s), playing, 0 coin(s) to insert; the agent is not running"
    )


def test_second_agent_for_the_same_state_file_refuses_to_start(ha, agent):
    agent.start_online(ha)
    second = agent.cli("run")
    assert second.returncode == 1
    assert "another arcade-cabinet agent is running" in second.stderr


def test_damaged_state_file_stops_the_agent_with_a_clear_message(agent):
    agent.state_file.write_text("{not json")
    result = agent.cli("run")
    assert result.returncode == 1
    assert "is damaged" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cabinet_announces_itself_retained_on_connect(broker, ha, make_agent):
    agent = make_agent(name="Galaga", model="Galaga upright")
    agent.start_online(ha)
    # Published just after the status: wait until the broker holds it.
    info = wait_until(lambda: retained(broker.port, f"{PREFIX}/{MACHINE_ID}/info"), what="announcement")
    assert json.loads(info) == {
        "machineId": MACHINE_ID,
        "name": "Galaga",
        "model": "Galaga upright",
        "swVersion": __version__,
        "acknowledges": True,
    }
    assert Announcement.from_payload(info, MACHINE_ID).name == "Galaga"
    assert agent.stop() == 0


def test_an_unnamed_cabinet_announces_its_machine_id_and_the_agent_as_model(broker, ha, agent):
    agent.start_online(ha)
    # Published just after the status: wait until the broker holds it.
    info = wait_until(lambda: retained(broker.port, f"{PREFIX}/{MACHINE_ID}/info"), what="announcement")
    announced = Announcement.from_payload(info, MACHINE_ID)
    assert (announced.name, announced.model, announced.sw_version) == (MACHINE_ID, DEFAULT_MODEL, __version__)
    assert agent.stop() == 0
