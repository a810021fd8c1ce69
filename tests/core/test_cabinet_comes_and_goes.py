"""Delivery when a cabinet is added or deleted while the entry runs (cabinet_roster.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from custom_components.arcade_pay.core.delivery import CreditDispatcher, Pulse
from custom_components.arcade_pay.core.delivery_planner import DeliveryPlanner
from custom_components.arcade_pay.core.ledger import PaymentLedger

from .helpers import ACK_CAB, OLDER_CAB, START, payment, pulse


def test_a_deleted_cabinet_is_sent_nothing_more_but_a_pulse_on_its_way() -> None:
    planner = DeliveryPlanner()
    planner.add(pulse("cs_1", OLDER_CAB))
    [on_its_way] = planner.take_due(0.0)
    planner.add(pulse("cs_2", OLDER_CAB))
    planner.add(pulse("cs_3", ACK_CAB))

    planner.drop_cabinet(OLDER_CAB)

    assert [o.payment_id for o in planner.outstanding()] == ["cs_1", "cs_3"]
    assert [o.payment_id for o in planner.take_due(1e9)] == ["cs_3"]
    assert planner.published(on_its_way.payment_id, 1.0)  # It finishes as any other.


def test_loading_one_added_cabinet_tracks_only_what_the_ledger_owes_it(tmp_path: Path) -> None:
    ledger = PaymentLedger(tmp_path / "ledger.db")
    ledger.open()
    try:
        for index in range(4):  # cs_0, cs_2 for ACK_CAB; cs_1, cs_3 for OLDER_CAB
            ledger.record(payment(index))
        sent: list[str] = []

        async def publish(pulse: Pulse) -> bool:
            sent.append(pulse.payment_id)
            return True

        dispatcher = CreditDispatcher(ledger, publish, lambda: START)
        asyncio.run(dispatcher.load({ACK_CAB}))
        assert sorted(o.payment_id for o in dispatcher.planner.outstanding()) == ["cs_0", "cs_2"]

        asyncio.run(dispatcher.load(cabinet=OLDER_CAB))
        asyncio.run(dispatcher.load(cabinet=OLDER_CAB))  # Twice: nothing is tracked twice.

        assert sorted(o.payment_id for o in dispatcher.planner.outstanding()) == [
            "cs_0",
            "cs_1",
            "cs_2",
            "cs_3",
        ]
        asyncio.run(dispatcher.flush())
        assert sorted(sent) == ["cs_0", "cs_1", "cs_2", "cs_3"]
    finally:
        ledger.close()
