"""Power cuts and broker outages: no credit is lost, none is applied twice.

``ARCADE_CABINET_CRASH_AT`` makes the agent die (``os._exit(137)``, nothing flushed) at a
chosen point; SIGKILL at random moments covers the rest. The test client re-sends every
unacknowledged pulse every 0.5 s, as the integration does.
"""

from __future__ import annotations

import os
import random
import time

from cabinet_harness import CRASH_EXIT, Resender, publish_once, pulse_json, wait_until
import pytest

from arcade_cabinet.control import request


@pytest.mark.parametrize("crash_at", ["before_write", "after_write"])
def test_power_cut_between_receiving_and_acknowledging(ha, agent, crash_at):
    agent.start_online(ha, crash_at=crash_at)
    mark = ha.mark()
    ha.pulse(2, "cs_cut")
    with Resender(ha, {"cs_cut": 2}):
        assert agent.wait_exit() == CRASH_EXIT
        state = agent.state()
        if crash_at == "before_write":
            assert state is None
        else:
            assert state is not None
            assert state["credits"] == 2
            assert state["applied_payment_ids"] == ["cs_cut"]
        assert ha.acks(mark) == []  # Never acknowledged before it is on disk.

        agent.start()
        ha.wait_ack("cs_cut", mark)

    state = agent.wait_coins_done()
    assert state["credits"] == 2
    assert state["applied_payment_ids"] == ["cs_cut"]
    assert len(agent.coins()) == 2
    assert agent.log_text().count("+2 credit(s) (cs_cut)") == (1 if crash_at == "before_write" else 0)


@pytest.mark.parametrize(
    ("crash_at", "coins_after_restart"),
    [
        ("during_coins", 3),  # The first coin was recorded: the other two follow.
        ("coin_not_recorded", 4),  # The first coin ran but was not recorded: it runs again.
    ],
)
def test_power_cut_while_inserting_coins(ha, agent, crash_at, coins_after_restart):
    agent.start_online(ha, crash_at=crash_at)
    mark = ha.mark()
    ha.pulse(3, "cs_coins")
    ha.wait_ack("cs_coins", mark)
    assert agent.wait_exit() == CRASH_EXIT
    assert len(agent.coins()) == 1
    state = agent.state()
    assert state is not None
    assert state["credits"] == 3
    assert state["pending_coins"] == (2 if crash_at == "during_coins" else 3)

    agent.start()
    state = agent.wait_coins_done()
    assert state["credits"] == 3
    assert len(agent.coins()) == coins_after_restart
    assert ha.acks(mark) == ["cs_coins"]


def test_pulse_published_while_the_agent_is_down_arrives_once(ha, agent):
    agent.start_online(ha)
    assert agent.stop() == 0
    mark = ha.mark()
    ha.pulse(2, "cs_queued")  # Queued by the broker for the agent's persistent session.
    agent.start()
    ha.wait_ack("cs_queued", mark)
    state = agent.wait_coins_done()
    assert state["credits"] == 2
    assert len(agent.coins()) == 2
    time.sleep(0.3)
    assert ha.acks(mark) == ["cs_queued"]
    assert "session resumed" in agent.log_text()


def test_broker_restart_agent_reconnects_and_gets_the_pulse_sent_meanwhile_once(broker, ha, agent):
    agent.start_online(ha)
    mark = ha.mark()
    broker.stop()
    # Keep the broker down past the agent's first reconnect attempt (after 1 s), so that
    # its next one comes 2 s later: the pulse below is published while it is disconnected.
    wait_until(lambda: not request(agent.socket, "status")["connected"], what="agent disconnected")
    time.sleep(1.3)
    broker.start()
    publish_once(broker.port, ha.topic("coinpulse"), pulse_json(3, "cs_restart"))
    assert not request(agent.socket, "status")["connected"], "the agent reconnected too early for this test"

    ha.wait_ack("cs_restart", mark, timeout=15)
    state = agent.wait_coins_done()
    assert state["credits"] == 3
    assert state["applied_payment_ids"] == ["cs_restart"]
    assert len(agent.coins()) == 3
    time.sleep(0.3)
    assert ha.acks(mark) == ["cs_restart"]
    log = agent.log_text()
    assert "Disconnected from the broker" in log
    assert "session resumed" in log


KILLS = 10


def test_random_power_cuts_during_a_burst_apply_each_payment_exactly_once(ha, agent):
    seed = int(os.environ.get("ARCADE_CABINET_TEST_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    pulses = {f"cs_burst_{n:02d}": rng.randint(1, 2) for n in range(20)}
    unsent = list(pulses)
    kills = 0
    agent.start_online(ha)
    with Resender(ha, pulses) as resender:
        for _ in range(KILLS):
            # A few new pulses, then a kill: at once (while they are being applied) or later
            # (while coins go in). About half the restarts are killed again before they are online.
            for _ in range(rng.randint(1, 4)):
                if unsent:
                    payment_id = unsent.pop(0)
                    ha.client.publish(
                        ha.topic("coinpulse"), pulse_json(pulses[payment_id], payment_id), qos=1
                    )
            time.sleep(rng.uniform(0, 0.01) if rng.random() < 0.6 else rng.uniform(0.1, 0.4))
            agent.kill()
            kills += 1
            if rng.random() < 0.5:
                agent.start()
                time.sleep(rng.uniform(0, 0.4))
                agent.kill()
                kills += 1
            agent.start_online(ha)
        for payment_id in unsent:
            ha.client.publish(ha.topic("coinpulse"), pulse_json(pulses[payment_id], payment_id), qos=1)
        ha.wait_for(lambda: not resender.unacked(), timeout=20, what=f"every ack (seed {seed})")

    state = agent.wait_coins_done(timeout=20)
    total = sum(pulses.values())
    assert state["credits"] == total, f"seed {seed}"
    assert sorted(state["applied_payment_ids"]) == sorted(pulses), f"seed {seed}"
    # A coin that ran just before a kill, and was not recorded yet, runs again: at most one per kill.
    assert total <= len(agent.coins()) <= total + kills, f"seed {seed}"
