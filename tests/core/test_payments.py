"""Stripe webhook deliveries → paid sessions, and the money / credit arithmetic."""

from datetime import timedelta
from decimal import Decimal
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.arcade_pay.core.payments import (
    EVENT_CHARGE_REFUNDED,
    EVENT_DISPUTE_CREATED,
    EVENT_SESSION_ASYNC_FAILED,
    EVENT_SESSION_ASYNC_SUCCEEDED,
    EVENT_SESSION_COMPLETED,
    MAX_BODY_BYTES,
    SUBSCRIBED_EVENTS,
    CreditError,
    DisputeNotice,
    IgnoredEvent,
    PaidSession,
    RefundNotice,
    WebhookRejected,
    credits_from_subtotal,
    currency_exponent,
    from_minor_units,
    interpret_event,
    to_minor_units,
    utcnow,
    verify_and_parse,
)
from fake_stripe import sign

SECRET = "whsec_arcadepay_unit_test_5ecret_value"
MACHINE_ID = "arcadeCabinet-123"


def make_session(**overrides: Any) -> dict[str, Any]:
    """A paid checkout session of a payment link, as Stripe sends it (trimmed)."""
    session: dict[str, Any] = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "payment_link": "plink_123",
        "metadata": {"machine_id": MACHINE_ID},
        "amount_subtotal": 600,
        "amount_total": 600,
        "currency": "usd",
        "payment_intent": "pi_123",
        "livemode": False,
    }
    session.update(overrides)
    return session


def make_event(
    session: dict[str, Any] | None = None, event_type: str = EVENT_SESSION_COMPLETED, event_id: str = "evt_1"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1719835200,
        "type": event_type,
        "data": {"object": make_session() if session is None else session},
    }


def deliver(
    body: Any,
    *,
    secret: str = SECRET,
    signing_secret: str | None = None,
    timestamp: int | None = None,
) -> PaidSession | IgnoredEvent:
    """POST ``body`` (a JSON-able object, text or bytes) signed as Stripe would."""
    if isinstance(body, bytes):
        raw = body
        text = body.decode("utf-8", errors="replace")
    else:
        text = body if isinstance(body, str) else json.dumps(body)
        raw = text.encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    header = sign(text, secret if signing_secret is None else signing_secret, stamp)
    return verify_and_parse(raw, header, secret)


EXPECTED_PAID = PaidSession(
    event_id="evt_1",
    event_type=EVENT_SESSION_COMPLETED,
    session_id="cs_test_1",
    payment_link_id="plink_123",
    machine_id=MACHINE_ID,
    amount_subtotal=600,
    amount_total=600,
    currency="usd",
    payment_intent="pi_123",
)


# --- currencies and minor units -----------------------------------------------------------


def test_currency_exponent() -> None:
    exponents = {"usd": 2, "USD": 2, "eur": 2, "gbp": 2, "jpy": 0, "JPY": 0, "krw": 0, "kwd": 3, "bhd": 3}
    assert {currency: currency_exponent(currency) for currency in exponents} == exponents


def test_to_minor_units() -> None:
    cases: list[tuple[Any, str, int]] = [
        ("2.00", "usd", 200),
        ("2", "usd", 200),
        ("19.99", "usd", 1999),
        ("0.01", "usd", 1),
        (Decimal("12.5"), "eur", 1250),
        (Decimal("2.10"), "USD", 210),
        (2.5, "usd", 250),
        (2.1, "usd", 210),
        (0.3, "usd", 30),
        (5, "usd", 500),
        ("1E+2", "usd", 10000),
        ("500", "jpy", 500),
        ("500.0", "JPY", 500),
        (Decimal(1000), "krw", 1000),
        ("1.230", "kwd", 1230),
        ("1.23", "kwd", 1230),
        ("0.010", "KWD", 10),
        ("7", "bhd", 7000),
    ]
    results = [(amount, currency, to_minor_units(amount, currency)) for amount, currency, _ in cases]
    assert results == cases
    assert all(type(minor) is int for _, _, minor in results)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        pytest.param("2.001", "usd", id="usd-three-decimals"),
        pytest.param(Decimal("19.999"), "usd", id="usd-decimal-rounding"),
        pytest.param(0.1 + 0.2, "usd", id="float-noise"),
        pytest.param(1e-7, "usd", id="tiny-float"),
        pytest.param("0.5", "jpy", id="jpy-decimals"),
        pytest.param("100.01", "JPY", id="jpy-cents"),
        pytest.param("1.234", "kwd", id="kwd-not-multiple-of-ten"),
        pytest.param("0.001", "kwd", id="kwd-one-fils"),
        pytest.param("1.2345", "kwd", id="kwd-four-decimals"),
        pytest.param("0", "usd", id="zero"),
        pytest.param("0.00", "usd", id="zero-with-decimals"),
        pytest.param(0, "jpy", id="int-zero"),
        pytest.param("-1", "usd", id="negative"),
        pytest.param("-0.01", "usd", id="negative-cent"),
        pytest.param("NaN", "usd", id="nan-string"),
        pytest.param("sNaN", "usd", id="signalling-nan"),
        pytest.param(float("nan"), "usd", id="nan-float"),
        pytest.param("Infinity", "usd", id="infinity"),
        pytest.param(float("inf"), "usd", id="inf-float"),
        pytest.param(float("-inf"), "usd", id="minus-inf-float"),
        pytest.param("abc", "usd", id="garbage"),
        pytest.param("", "usd", id="empty"),
        pytest.param("1,00", "eur", id="comma-decimal"),
        pytest.param("$5", "usd", id="currency-sign"),
        pytest.param(None, "usd", id="none"),
        pytest.param(True, "usd", id="bool"),
    ],
)
def test_to_minor_units_refuses(amount: Any, currency: str) -> None:
    with pytest.raises(ValueError):
        to_minor_units(amount, currency)


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [
        (1999, "usd", Decimal("19.99")),
        (1, "usd", Decimal("0.01")),
        (200, "USD", Decimal(2)),
        (500, "jpy", Decimal(500)),
        (1230, "kwd", Decimal("1.23")),
        (10, "kwd", Decimal("0.01")),
    ],
)
def test_from_minor_units(minor: int, currency: str, amount: Decimal) -> None:
    result = from_minor_units(minor, currency)
    assert isinstance(result, Decimal)
    assert result == amount


CURRENCY_EXPONENTS = {"usd": 2, "eur": 2, "jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}


@settings(max_examples=200)
@given(currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)), minor=st.integers(min_value=1, max_value=10**12))
def test_minor_units_round_trip(currency: str, minor: int) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    if exponent == 3:
        minor *= 10
    # The decimal written out by hand, independently of the code under test.
    text = f"{minor // 10**exponent}.{minor % 10**exponent:0{exponent}d}" if exponent else str(minor)
    assert to_minor_units(text, currency) == minor
    assert to_minor_units(text, currency.upper()) == minor
    assert from_minor_units(minor, currency) == Decimal(text)
    assert to_minor_units(from_minor_units(minor, currency), currency) == minor


@settings(max_examples=100)
@given(
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
    whole=st.integers(min_value=0, max_value=10**6),
    extra_digit=st.integers(min_value=1, max_value=9),
)
def test_one_digit_too_many_is_refused(currency: str, whole: int, extra_digit: int) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    # One more decimal than the currency has, and not zero: rounding would be needed.
    text = f"{whole}.{'0' * exponent}{extra_digit}"
    with pytest.raises(ValueError, match="decimals"):
        to_minor_units(text, currency)


# --- credits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtotal", "unit", "credits"),
    [(600, 200, 3), (200, 200, 1), (100, 1, 100), (500, 500, 1), (10_000, 25, 400)],
)
def test_credits_from_subtotal(subtotal: int, unit: int, credits: int) -> None:
    assert credits_from_subtotal(subtotal, unit) == credits


@pytest.mark.parametrize(
    ("subtotal", "unit"),
    [
        pytest.param(601, 200, id="remainder"),
        pytest.param(399, 200, id="remainder-one-short"),
        pytest.param(199, 200, id="less-than-one"),
        pytest.param(0, 200, id="zero-subtotal"),
        pytest.param(-200, 200, id="negative-subtotal"),
        pytest.param(600, 0, id="zero-unit"),
        pytest.param(600, -200, id="negative-unit"),
        pytest.param(-600, -200, id="both-negative"),
    ],
)
def test_credits_from_subtotal_refuses(subtotal: int, unit: int) -> None:
    with pytest.raises(CreditError):
        credits_from_subtotal(subtotal, unit)


@settings(max_examples=200)
@given(unit=st.integers(min_value=1, max_value=10**9), quantity=st.integers(min_value=1, max_value=1000))
def test_credits_from_subtotal_is_the_quantity(unit: int, quantity: int) -> None:
    assert credits_from_subtotal(unit * quantity, unit) == quantity


@pytest.mark.parametrize("quantity", [1001, 10**6, 2**63])
def test_credits_beyond_what_a_pulse_may_carry_are_refused(quantity: int) -> None:
    with pytest.raises(CreditError):
        credits_from_subtotal(200 * quantity, 200)


@settings(max_examples=200)
@given(
    unit=st.integers(min_value=2, max_value=10**9),
    quantity=st.integers(min_value=0, max_value=10**6),
    data=st.data(),
)
def test_credits_from_subtotal_refuses_non_multiples(unit: int, quantity: int, data: st.DataObject) -> None:
    remainder = data.draw(st.integers(min_value=1, max_value=unit - 1))
    with pytest.raises(CreditError):
        credits_from_subtotal(unit * quantity + remainder, unit)


def test_credit_error_and_webhook_rejected_are_value_errors() -> None:
    assert issubclass(CreditError, ValueError)
    assert issubclass(WebhookRejected, ValueError)


def test_subscribed_events_include_every_event_that_is_acted_on() -> None:
    assert len(set(SUBSCRIBED_EVENTS)) == len(SUBSCRIBED_EVENTS)
    assert {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "charge.refunded",
        "charge.dispute.created",
    } <= set(SUBSCRIBED_EVENTS)


def test_utcnow_is_now_in_utc() -> None:
    before = time.time()
    now = utcnow()
    after = time.time()
    assert now.utcoffset() == timedelta(0)
    assert before - 1 <= now.timestamp() <= after + 1


# --- genuine deliveries ----------------------------------------------------------------------


def test_paid_checkout_session_completed() -> None:
    assert deliver(make_event()) == EXPECTED_PAID


def test_body_is_checked_as_raw_bytes() -> None:
    body = json.dumps(make_event(), indent=2).encode()
    header = sign(body.decode(), SECRET, int(time.time()))
    assert verify_and_parse(body, header, SECRET) == EXPECTED_PAID


def test_non_ascii_body_is_verified_over_its_utf8_bytes() -> None:
    event = make_event(make_session(metadata={"machine_id": MACHINE_ID, "note": "für Spielhalle 🎮"}))
    text = json.dumps(event, ensure_ascii=False)
    header = sign(text, SECRET, int(time.time()))
    assert verify_and_parse(text.encode(), header, SECRET) == EXPECTED_PAID


def test_async_payment_succeeded_is_paid() -> None:
    result = deliver(make_event(event_type=EVENT_SESSION_ASYNC_SUCCEEDED, event_id="evt_2"))
    assert result == PaidSession(
        event_id="evt_2",
        event_type="checkout.session.async_payment_succeeded",
        session_id="cs_test_1",
        payment_link_id="plink_123",
        machine_id=MACHINE_ID,
        amount_subtotal=600,
        amount_total=600,
        currency="usd",
        payment_intent="pi_123",
    )


def test_minimal_session() -> None:
    session = {
        "id": "cs_live_a1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 250,
        "currency": "eur",
    }
    assert deliver(make_event(session, event_id="evt_min")) == PaidSession(
        event_id="evt_min",
        event_type=EVENT_SESSION_COMPLETED,
        session_id="cs_live_a1",
        payment_link_id=None,
        machine_id=None,
        amount_subtotal=None,
        amount_total=250,
        currency="eur",
        payment_intent=None,
    )


def test_null_optional_fields() -> None:
    session = make_session(
        payment_link=None, metadata=None, amount_subtotal=None, payment_intent=None, currency_conversion=None
    )
    result = deliver(make_event(session))
    assert isinstance(result, PaidSession)
    assert (result.payment_link_id, result.machine_id, result.amount_subtotal, result.payment_intent) == (
        None,
        None,
        None,
        None,
    )
    assert (result.amount_total, result.currency) == (600, "usd")


def test_metadata_without_machine_id() -> None:
    result = deliver(make_event(make_session(metadata={"other": "x", "empty": None})))
    assert isinstance(result, PaidSession)
    assert result.machine_id is None


def test_discounted_session_keeps_subtotal_and_total_apart() -> None:
    result = deliver(make_event(make_session(amount_subtotal=1000, amount_total=800)))
    assert isinstance(result, PaidSession)
    assert (result.amount_subtotal, result.amount_total) == (1000, 800)


def test_uppercase_currency_is_lowercased() -> None:
    result = deliver(make_event(make_session(currency="USD")))
    assert result == EXPECTED_PAID


def test_adaptive_pricing_uses_the_source_currency() -> None:
    session = make_session(
        amount_subtotal=553,
        amount_total=553,
        currency="eur",
        currency_conversion={
            "amount_subtotal": 600,
            "amount_total": 600,
            "fx_rate": "0.921666",
            "source_currency": "usd",
        },
    )
    assert deliver(make_event(session)) == EXPECTED_PAID


def test_adaptive_pricing_uppercase_source_currency() -> None:
    session = make_session(
        amount_subtotal=95000,
        amount_total=95000,
        currency="jpy",
        currency_conversion={"amount_subtotal": 600, "amount_total": 500, "source_currency": "USD"},
    )
    result = deliver(make_event(session))
    assert isinstance(result, PaidSession)
    assert (result.amount_subtotal, result.amount_total, result.currency) == (600, 500, "usd")


@pytest.mark.parametrize(
    "conversion",
    [
        pytest.param({"amount_total": 600, "source_currency": "usd"}, id="missing-subtotal"),
        pytest.param({"amount_subtotal": 600, "source_currency": "usd"}, id="missing-total"),
        pytest.param({"amount_subtotal": 600, "amount_total": 600}, id="missing-currency"),
        pytest.param(
            {"amount_subtotal": 600, "amount_total": "600", "source_currency": "usd"}, id="str-amount"
        ),
        pytest.param({"amount_subtotal": -1, "amount_total": 600, "source_currency": "usd"}, id="negative"),
        pytest.param(
            {"amount_subtotal": 600, "amount_total": 600, "source_currency": "us"}, id="bad-currency"
        ),
        pytest.param("usd", id="not-an-object"),
    ],
)
def test_bad_currency_conversion_is_rejected(conversion: Any) -> None:
    with pytest.raises(WebhookRejected):
        deliver(make_event(make_session(currency="eur", currency_conversion=conversion)))


def test_secret_rotation_any_matching_v1_signature_is_enough() -> None:
    text = json.dumps(make_event())
    stamp = int(time.time())
    good = sign(text, SECRET, stamp).split(",")[1]
    old = sign(text, "whsec_the_old_one", stamp).split(",")[1]
    assert verify_and_parse(text.encode(), f"t={stamp},{old},{good}", SECRET) == EXPECTED_PAID


def test_recent_timestamp_within_tolerance_is_accepted() -> None:
    assert deliver(make_event(), timestamp=int(time.time()) - 200) == EXPECTED_PAID


# --- ignored events --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    ["payment_intent.succeeded", "checkout.session.expired", "charge.succeeded", "customer.created"],
)
def test_other_event_types_are_ignored(event_type: str) -> None:
    result = deliver(make_event(event_type=event_type, event_id="evt_other"))
    assert isinstance(result, IgnoredEvent)
    assert (result.event_id, result.event_type) == ("evt_other", event_type)
    assert result.reason


def test_other_event_types_are_ignored_whatever_their_object() -> None:
    event = make_event(event_type="invoice.paid") | {"data": {"object": {"object": "invoice", "id": "in_1"}}}
    result = deliver(event)
    assert isinstance(result, IgnoredEvent)
    assert result.event_type == "invoice.paid"


@pytest.mark.parametrize("payment_status", ["unpaid", "no_payment_required"])
@pytest.mark.parametrize("event_type", [EVENT_SESSION_COMPLETED, EVENT_SESSION_ASYNC_SUCCEEDED])
def test_unpaid_sessions_are_ignored(event_type: str, payment_status: str) -> None:
    result = deliver(make_event(make_session(payment_status=payment_status), event_type=event_type))
    assert isinstance(result, IgnoredEvent)
    assert (result.event_id, result.event_type) == ("evt_1", event_type)
    assert "cs_test_1" in result.reason


@pytest.mark.parametrize("payment_status", ["unpaid", "paid"])
def test_async_payment_failed_is_ignored(payment_status: str) -> None:
    result = deliver(
        make_event(make_session(payment_status=payment_status), event_type=EVENT_SESSION_ASYNC_FAILED)
    )
    assert isinstance(result, IgnoredEvent)
    assert (result.event_id, result.event_type) == ("evt_1", "checkout.session.async_payment_failed")
    assert "cs_test_1" in result.reason


def test_async_payment_failed_with_a_malformed_session_is_rejected() -> None:
    with pytest.raises(WebhookRejected):
        deliver(make_event(make_session(id="pi_1"), event_type=EVENT_SESSION_ASYNC_FAILED))


# --- refunds and disputes ----------------------------------------------------------------------

CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount": 600,
    "amount_refunded": 200,
    "currency": "usd",
    "payment_intent": "pi_123",
    "refunded": False,
}
DISPUTE = {
    "id": "dp_1",
    "object": "dispute",
    "amount": 600,
    "charge": "ch_1",
    "currency": "usd",
    "payment_intent": "pi_123",
    "reason": "fraudulent",
    "status": "needs_response",
}


def test_charge_refunded_gives_the_cumulative_refund() -> None:
    result = deliver(make_event(CHARGE, event_type=EVENT_CHARGE_REFUNDED, event_id="evt_refund"))
    assert result == RefundNotice(event_id="evt_refund", payment_intent="pi_123", refunded_total=200)


def test_dispute_created() -> None:
    result = deliver(make_event(DISPUTE, event_type=EVENT_DISPUTE_CREATED, event_id="evt_dispute"))
    assert result == DisputeNotice(
        event_id="evt_dispute", dispute_id="dp_1", payment_intent="pi_123", amount=600, reason="fraudulent"
    )


def test_dispute_without_reason() -> None:
    dispute = {key: value for key, value in DISPUTE.items() if key != "reason"}
    result = deliver(make_event(dispute, event_type=EVENT_DISPUTE_CREATED, event_id="evt_dispute"))
    assert result == DisputeNotice("evt_dispute", "dp_1", "pi_123", 600, None)


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        (EVENT_CHARGE_REFUNDED, CHARGE | {"payment_intent": None}),
        (EVENT_DISPUTE_CREATED, DISPUTE | {"payment_intent": None}),
    ],
    ids=["refund", "dispute"],
)
def test_refund_or_dispute_without_payment_intent_is_ignored(event_type: str, obj: dict[str, Any]) -> None:
    result = deliver(make_event(obj, event_type=event_type, event_id="evt_x"))
    assert isinstance(result, IgnoredEvent)
    assert (result.event_id, result.event_type) == ("evt_x", event_type)


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        pytest.param(EVENT_CHARGE_REFUNDED, CHARGE | {"amount_refunded": "200"}, id="refund-amount-string"),
        pytest.param(EVENT_CHARGE_REFUNDED, CHARGE | {"amount_refunded": True}, id="refund-amount-bool"),
        pytest.param(EVENT_CHARGE_REFUNDED, CHARGE | {"amount_refunded": -1}, id="refund-amount-negative"),
        pytest.param(EVENT_CHARGE_REFUNDED, CHARGE | {"object": "refund"}, id="refund-wrong-object"),
        pytest.param(EVENT_CHARGE_REFUNDED, make_session(), id="refund-of-a-session"),
        pytest.param(EVENT_DISPUTE_CREATED, DISPUTE | {"amount": 6.0}, id="dispute-amount-float"),
        pytest.param(EVENT_DISPUTE_CREATED, DISPUTE | {"object": "charge"}, id="dispute-wrong-object"),
        pytest.param(EVENT_DISPUTE_CREATED, DISPUTE | {"payment_intent": ""}, id="dispute-empty-intent"),
        pytest.param(EVENT_DISPUTE_CREATED, DISPUTE | {"reason": 5}, id="dispute-reason-int"),
    ],
)
def test_malformed_refund_or_dispute_is_rejected(event_type: str, obj: dict[str, Any]) -> None:
    with pytest.raises(WebhookRejected):
        deliver(make_event(obj, event_type=event_type))


# --- rejected deliveries ---------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _valid_text() -> str:
    return json.dumps(make_event())


def _header_for(text: str, secret: str = SECRET, stamp: int | None = None) -> str:
    return sign(text, secret, _now() if stamp is None else stamp)


def _padded_event(size: int) -> str:
    """A valid paid event whose JSON text is exactly ``size`` bytes."""
    base = len(json.dumps(make_event(make_session(metadata={"machine_id": MACHINE_ID, "pad": ""}))))
    text = json.dumps(
        make_event(make_session(metadata={"machine_id": MACHINE_ID, "pad": "x" * (size - base)}))
    )
    assert len(text.encode()) == size
    return text


# (body bytes, header) pairs; every one must be refused.
REJECTED_DELIVERIES: dict[str, Any] = {
    "missing-header": lambda: (_valid_text().encode(), None),
    "empty-header": lambda: (_valid_text().encode(), ""),
    "garbled-header": lambda: (_valid_text().encode(), "garbage"),
    "non-numeric-timestamp": lambda: (_valid_text().encode(), "t=abc,v1=" + "0" * 64),
    "no-timestamp": lambda: (_valid_text().encode(), _header_for(_valid_text()).split(",")[1]),
    "no-signature": lambda: (_valid_text().encode(), f"t={_now()}"),
    "wrong-scheme": lambda: (
        _valid_text().encode(),
        _header_for(_valid_text()).replace("v1=", "v0="),
    ),
    "wrong-secret": lambda: (_valid_text().encode(), _header_for(_valid_text(), "whsec_someone_else")),
    "secret-as-signature": lambda: (_valid_text().encode(), f"t={_now()},v1={SECRET}"),
    "stale-301s": lambda: (_valid_text().encode(), _header_for(_valid_text(), stamp=_now() - 301)),
    "stale-1h": lambda: (_valid_text().encode(), _header_for(_valid_text(), stamp=_now() - 3600)),
    "tampered-body": lambda: (
        json.dumps(make_event(make_session(amount_total=60000))).encode(),
        _header_for(_valid_text()),
    ),
    "signed-for-other-timestamp": lambda: (
        _valid_text().encode(),
        f"t={_now()},{_header_for(_valid_text(), stamp=_now() - 60).split(',')[1]}",
    ),
    "body-too-large": lambda: (
        _padded_event(MAX_BODY_BYTES + 1).encode(),
        _header_for(_padded_event(MAX_BODY_BYTES + 1)),
    ),
    "non-utf8-body": lambda: (b'{"id": "evt_\xff"}', _header_for('{"id": "evt_\ufffd"}')),
    "latin-1-body": lambda: (
        _valid_text().replace("plink_123", "plink_\u00e9").encode("latin-1"),
        _header_for(_valid_text().replace("plink_123", "plink_\u00e9")),
    ),
    "not-json": lambda: (b"hello stripe", _header_for("hello stripe")),
    "empty-body": lambda: (b"", _header_for("")),
    "json-array": lambda: (b"[1, 2]", _header_for("[1, 2]")),
    "json-array-of-event": lambda: (f"[{_valid_text()}]".encode(), _header_for(f"[{_valid_text()}]")),
    "json-string": lambda: (b'"evt_1"', _header_for('"evt_1"')),
    "json-null": lambda: (b"null", _header_for("null")),
    "deep-nesting": lambda: (b"[" * 30000 + b"]" * 30000, _header_for("[" * 30000 + "]" * 30000)),
}


@pytest.mark.parametrize("case", list(REJECTED_DELIVERIES))
def test_bad_deliveries_are_rejected_without_leaking_the_secret(case: str) -> None:
    body, header = REJECTED_DELIVERIES[case]()
    with pytest.raises(WebhookRejected) as caught:
        verify_and_parse(body, header, SECRET)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.args)
    assert "5ecret" not in str(caught.value)


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    with pytest.raises(WebhookRejected, match="signature"):
        verify_and_parse(b"not json at all", _header_for("something else"), SECRET)


def test_body_of_exactly_the_maximum_size_is_accepted() -> None:
    text = _padded_event(MAX_BODY_BYTES)
    result = verify_and_parse(text.encode(), _header_for(text), SECRET)
    assert isinstance(result, PaidSession)
    assert result.session_id == "cs_test_1"


def test_empty_secret_rejects_even_a_body_signed_with_it() -> None:
    text = _valid_text()
    with pytest.raises(WebhookRejected):
        verify_and_parse(text.encode(), sign(text, "", _now()), "")


def _set(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = make_event()
    node: Any = event
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


SESSION = ("data", "object")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param((*SESSION, "amount_total"), "600", id="amount-total-string"),
        pytest.param((*SESSION, "amount_total"), True, id="amount-total-true"),
        pytest.param((*SESSION, "amount_total"), 600.0, id="amount-total-float"),
        pytest.param((*SESSION, "amount_total"), -1, id="amount-total-negative"),
        pytest.param((*SESSION, "amount_total"), None, id="amount-total-null"),
        pytest.param((*SESSION, "amount_total"), KeyError, id="amount-total-missing"),
        pytest.param((*SESSION, "amount_subtotal"), "600", id="amount-subtotal-string"),
        pytest.param((*SESSION, "amount_subtotal"), False, id="amount-subtotal-false"),
        pytest.param((*SESSION, "amount_subtotal"), -600, id="amount-subtotal-negative"),
        pytest.param((*SESSION, "id"), "pi_123", id="session-id-not-cs"),
        pytest.param((*SESSION, "id"), "xcs_123", id="session-id-cs-inside"),
        pytest.param((*SESSION, "id"), "", id="session-id-empty"),
        pytest.param((*SESSION, "id"), 123, id="session-id-int"),
        pytest.param((*SESSION, "id"), "cs_" + "x" * 253, id="session-id-too-long"),
        pytest.param((*SESSION, "id"), KeyError, id="session-id-missing"),
        pytest.param((*SESSION, "object"), "payment_intent", id="wrong-object"),
        pytest.param((*SESSION, "object"), KeyError, id="object-missing"),
        pytest.param((*SESSION, "payment_status"), KeyError, id="payment-status-missing"),
        pytest.param((*SESSION, "payment_status"), True, id="payment-status-bool"),
        pytest.param((*SESSION, "currency"), "us", id="currency-short"),
        pytest.param((*SESSION, "currency"), "usdd", id="currency-long"),
        pytest.param((*SESSION, "currency"), 840, id="currency-number"),
        pytest.param((*SESSION, "currency"), KeyError, id="currency-missing"),
        pytest.param((*SESSION, "metadata"), {"machine_id": 5}, id="metadata-int-value"),
        pytest.param((*SESSION, "metadata"), "machine", id="metadata-string"),
        pytest.param((*SESSION, "payment_link"), "", id="payment-link-empty"),
        pytest.param((*SESSION, "payment_link"), 7, id="payment-link-int"),
        pytest.param((*SESSION, "payment_intent"), {"id": "pi_1"}, id="payment-intent-expanded"),
        pytest.param(SESSION, ["cs_test_1"], id="session-is-a-list"),
        pytest.param(SESSION, "cs_test_1", id="session-is-a-string"),
        pytest.param(SESSION, None, id="session-is-null"),
        pytest.param(("data",), None, id="data-null"),
        pytest.param(("data",), KeyError, id="data-missing"),
        pytest.param(SESSION, KeyError, id="data-object-missing"),
        pytest.param(("id",), KeyError, id="event-id-missing"),
        pytest.param(("id",), "", id="event-id-empty"),
        pytest.param(("id",), 1, id="event-id-int"),
        pytest.param(("type",), KeyError, id="event-type-missing"),
        pytest.param(("type",), ["checkout.session.completed"], id="event-type-list"),
    ],
)
def test_malformed_events_are_rejected(path: tuple[str, ...], value: Any) -> None:
    event = _set(path, value)
    with pytest.raises(WebhookRejected) as caught:
        deliver(event)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("raw", [[], "evt", None, 1, [make_event()]])
def test_interpret_event_rejects_non_objects(raw: Any) -> None:
    with pytest.raises(WebhookRejected):
        interpret_event(raw)


def test_interpret_event_of_a_parsed_event() -> None:
    assert interpret_event(make_event()) == EXPECTED_PAID


@pytest.mark.parametrize(
    "text",
    ["1" * 5000, '{"id": "evt_1", "created": ' + "9" * 4301 + "}"],
    ids=["bare-5000-digits", "field-4301-digits"],
)
def test_huge_integer_literal_is_rejected(text: str) -> None:
    """json.loads raises a plain ValueError past int_max_str_digits: refused, not a 500."""
    with pytest.raises(WebhookRejected):
        verify_and_parse(text.encode(), _header_for(text), SECRET)


# --- fuzzing ----------------------------------------------------------------------------------


def _is_paid_session_event(raw: Any) -> bool:
    """Independent oracle: could ``raw`` at all be a paid checkout session event?"""
    if not isinstance(raw, dict) or raw.get("type") not in SUBSCRIBED_EVENTS:
        return False
    data = raw.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    return (
        isinstance(session, dict)
        and session.get("object") == "checkout.session"
        and session.get("payment_status") == "paid"
        and isinstance(session.get("id"), str)
        and session["id"].startswith("cs_")
    )


def _check_outcome(body: bytes, header: str) -> None:
    try:
        result = verify_and_parse(body, header, SECRET)
    except WebhookRejected:
        return
    raw = json.loads(body)
    assert isinstance(result, PaidSession | RefundNotice | DisputeNotice | IgnoredEvent)
    assert result.event_id == raw["id"]
    if isinstance(result, PaidSession | IgnoredEvent):
        assert result.event_type == raw["type"]
    if isinstance(result, RefundNotice):
        charge = raw["data"]["object"]
        assert (raw["type"], charge["object"]) == ("charge.refunded", "charge")
        assert (result.payment_intent, result.refunded_total) == (
            charge["payment_intent"],
            charge["amount_refunded"],
        )
        assert type(result.refunded_total) is int
        assert result.refunded_total >= 0
    if isinstance(result, DisputeNotice):
        dispute = raw["data"]["object"]
        assert (raw["type"], dispute["object"]) == ("charge.dispute.created", "dispute")
        assert (result.dispute_id, result.payment_intent, result.amount) == (
            dispute["id"],
            dispute["payment_intent"],
            dispute["amount"],
        )
        assert type(result.amount) is int
        assert result.amount >= 0
    if isinstance(result, PaidSession):
        assert _is_paid_session_event(raw)
        session = raw["data"]["object"]
        assert result.session_id == session["id"]
        assert type(result.amount_total) is int
        assert result.amount_total >= 0
        assert result.currency == result.currency.lower()
        assert len(result.currency) == 3


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=1024))
def test_fuzz_arbitrary_bytes(body: bytes) -> None:
    _check_outcome(body, _header_for(body.decode("utf-8", errors="replace")))


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "checkout.session",
            "paid",
            "unpaid",
            "usd",
            "USD",
            "cs_test_9",
            "evt_9",
            EVENT_SESSION_COMPLETED,
            EVENT_SESSION_ASYNC_SUCCEEDED,
            EVENT_SESSION_ASYNC_FAILED,
            "charge.refunded",
            "charge.dispute.created",
            "charge",
            "dispute",
            "pi_1",
        ]
    )
)
json_keys = st.sampled_from(
    [
        "id",
        "type",
        "data",
        "object",
        "payment_status",
        "amount_total",
        "amount_subtotal",
        "currency",
        "metadata",
        "currency_conversion",
        "source_currency",
        "payment_intent",
        "amount_refunded",
        "amount",
        "reason",
    ]
) | st.text(max_size=6)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=8),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    text = json.dumps(value)
    _check_outcome(text.encode(), _header_for(text))


# For each field of a checkout session: values that are valid, and values that are not.
# ABSENT leaves the field out of the session.
ABSENT = object()
VALID_FIELDS: dict[str, list[Any]] = {
    "id": ["cs_test_fz", "cs_", "cs_live_" + "a" * 247],
    "object": ["checkout.session"],
    "amount_total": [0, 1999, 10**12],
    "amount_subtotal": [2500, None, ABSENT],
    "currency": ["usd", "JPY", "Eur"],
    "payment_link": ["plink_1", None, ABSENT],
    "metadata": [{"machine_id": "cab_7"}, {"machine_id": None}, {}, None, ABSENT],
    "payment_intent": ["pi_9", None, ABSENT],
}
INVALID_FIELDS: dict[str, list[Any]] = {
    "id": ["pi_1", "", 5, None, "CS_upper", "cs_" + "a" * 253, ABSENT],
    "object": ["payment_intent", "Checkout.Session", None, ABSENT],
    "amount_total": [-5, "1999", True, False, 19.99, 1999.0, None, ABSENT],
    "amount_subtotal": [-1, False, "2500", 25.5],
    "currency": ["us", "usdd", "", None, 840, ABSENT],
    "payment_link": ["", 3, ["plink_1"]],
    "metadata": [{"machine_id": 7}, {"machine_id": {"id": "x"}}, [], "cab_7"],
    "payment_intent": [{"id": "pi_9"}, "", 9],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(
        [
            EVENT_SESSION_COMPLETED,
            EVENT_SESSION_ASYNC_SUCCEEDED,
            EVENT_SESSION_ASYNC_FAILED,
            "customer.created",
        ]
    ),
    payment_status=st.sampled_from(["paid", "unpaid", "no_payment_required", "PAID"]),
    data=st.data(),
)
def test_fuzz_near_valid_events(event_type: str, payment_status: str, data: st.DataObject) -> None:
    fields = {name: data.draw(st.sampled_from(options), label=name) for name, options in VALID_FIELDS.items()}
    broken = data.draw(
        st.lists(st.sampled_from(sorted(INVALID_FIELDS)), max_size=2, unique=True), label="broken"
    )
    for name in broken:
        fields[name] = data.draw(st.sampled_from(INVALID_FIELDS[name]), label=f"invalid {name}")
    valid = not broken
    session: dict[str, Any] = {"payment_status": payment_status}
    session |= {name: value for name, value in fields.items() if value is not ABSENT}
    event = make_event(session, event_type=event_type, event_id="evt_fz")
    text = json.dumps(event)

    if event_type == "customer.created":
        expected: Any = IgnoredEvent
    elif not valid:
        expected = WebhookRejected
    elif event_type == EVENT_SESSION_ASYNC_FAILED or payment_status != "paid":
        expected = IgnoredEvent
    else:
        expected = PaidSession

    if expected is WebhookRejected:
        with pytest.raises(WebhookRejected):
            verify_and_parse(text.encode(), _header_for(text), SECRET)
        return
    result = verify_and_parse(text.encode(), _header_for(text), SECRET)
    assert type(result) is expected
    assert (result.event_id, result.event_type) == ("evt_fz", event_type)
    if isinstance(result, PaidSession):
        metadata = session.get("metadata") or {}
        assert result == PaidSession(
            event_id="evt_fz",
            event_type=event_type,
            session_id=session["id"],
            payment_link_id=session.get("payment_link"),
            machine_id=metadata.get("machine_id"),
            amount_subtotal=session.get("amount_subtotal"),
            amount_total=session["amount_total"],
            currency=session["currency"].lower(),
            payment_intent=session.get("payment_intent"),
        )
