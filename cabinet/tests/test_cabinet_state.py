"""The ledger and its file, in-process."""

from __future__ import annotations

import json
import stat

from hypothesis import given, settings, strategies as st
import pytest

from arcade_cabinet.protocol import GameState
from arcade_cabinet.state import MAX_APPLIED_IDS, Ledger, StateFile, StateFileError


def test_ledger_operations():
    ledger = Ledger().with_pulse(3, "cs_a")
    assert (ledger.credits, ledger.pending_coins, list(ledger.applied)) == (3, 3, ["cs_a"])
    assert ledger.state is GameState.PLAYING
    assert ledger.has_applied("cs_a")
    assert not ledger.has_applied("cs_b")
    unkeyed = ledger.with_pulse(1, None)
    assert (unkeyed.credits, list(unkeyed.applied)) == (4, ["cs_a"])
    assert unkeyed.with_coin_inserted().pending_coins == 3
    assert Ledger().with_coin_inserted().pending_coins == 0
    over = unkeyed.with_game_over(3)
    assert (over.credits, over.pending_coins, over.state) == (1, 4, GameState.PLAYING)
    assert over.with_game_over(3).credits == 0
    assert over.with_game_over(3).state is GameState.ATTRACT
    assert list(ledger.applied) == ["cs_a"], "the ledgers it came from are unchanged"


def test_applied_ids_are_bounded_oldest_first():
    ledger = Ledger()
    for n in range(5):
        ledger = ledger.with_pulse(1, f"cs_{n}", keep=3)
    assert list(ledger.applied) == ["cs_2", "cs_3", "cs_4"]
    assert ledger.credits == 5
    assert MAX_APPLIED_IDS == 10_000


def test_save_and_load(tmp_path):
    store = StateFile(tmp_path / "deep" / "cab.json", "cab")
    assert store.load() == Ledger()
    store.lock()
    try:
        ledger = Ledger().with_pulse(2, "cs_1").with_pulse(1, "cs_2").with_coin_inserted()
        store.save(ledger)
        assert store.load() == ledger
        assert json.loads(store.path.read_text()) == {
            "version": 1,
            "machine_id": "cab",
            "credits": 3,
            "pending_coins": 2,
            "applied_payment_ids": ["cs_1", "cs_2"],
        }
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert sorted(p.name for p in store.path.parent.iterdir()) == ["cab.json", "cab.json.lock"]
    finally:
        store.unlock()


def test_one_agent_per_state_file(tmp_path):
    first, second = StateFile(tmp_path / "cab.json", "cab"), StateFile(tmp_path / "cab.json", "cab")
    first.lock()
    with pytest.raises(StateFileError, match="another arcade-cabinet agent is running"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def _document(**changes: object) -> str:
    document = {
        "version": 1,
        "machine_id": "cab",
        "credits": 1,
        "pending_coins": 0,
        "applied_payment_ids": [],
    }
    return json.dumps(document | changes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is damaged"),
        ("[]", "not a version 1"),
        (_document(version=2), "not a version 1"),
        (_document(machine_id="other"), "belongs to machine 'other'"),
        (_document(credits=-1), "credits must be"),
        (_document(pending_coins=True), "pending_coins must be"),
        (_document(applied_payment_ids=[1]), "list of strings"),
        (_document(applied_payment_ids="cs_1"), "list of strings"),
    ],
)
def test_damaged_file_is_refused(tmp_path, content, message):
    path = tmp_path / "cab.json"
    path.write_text(content)
    with pytest.raises(StateFileError, match=message):
        StateFile(path, "cab").load()


def test_failed_write_raises_and_keeps_the_old_file(tmp_path):
    store = StateFile(tmp_path / "cab.json", "cab")
    store.save(Ledger().with_pulse(1, "cs_1"))
    (tmp_path / ".cab.json.tmp").mkdir()  # The temporary file cannot be created.
    with pytest.raises(StateFileError, match="cannot write"):
        store.save(Ledger().with_pulse(5, "cs_2"))
    assert store.load().credits == 1


operations = st.lists(
    st.one_of(
        st.tuples(st.just("pulse"), st.integers(1, 5), st.one_of(st.none(), st.sampled_from("abcdefgh"))),
        st.tuples(st.just("game_over"), st.integers(0, 3), st.none()),
        st.tuples(st.just("coin"), st.just(0), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_ledger_model(tmp_path_factory, ops):
    """Whatever happens, a payment id is applied once and the file says what memory says."""
    store = StateFile(tmp_path_factory.mktemp("model") / "cab.json", "cab")
    ledger, credits, pending, applied = Ledger(), 0, 0, []
    for kind, amount, payment_id in ops:
        if kind == "pulse":
            if payment_id is not None and ledger.has_applied(payment_id):
                continue  # What the agent does: acknowledge, do not apply.
            ledger = ledger.with_pulse(amount, payment_id)
            credits, pending = credits + amount, pending + amount
            if payment_id is not None:
                applied.append(payment_id)
        elif kind == "game_over":
            ledger = ledger.with_game_over(amount)
            credits = max(0, credits - amount)
        else:
            ledger = ledger.with_coin_inserted()
            pending = max(0, pending - 1)
        store.save(ledger)
        assert store.load() == ledger
    assert (ledger.credits, ledger.pending_coins, list(ledger.applied)) == (credits, pending, applied)
    assert len(set(applied)) == len(applied)
    assert ledger.state is (GameState.PLAYING if credits else GameState.ATTRACT)
