"""Packs as an operator types them, offers as a Checkout Session carries them, credits of a paid session."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.arcade_pay.core.cabinet import Cabinet
from custom_components.arcade_pay.core.cabinet_config import CabinetConfig, QrTarget
from custom_components.arcade_pay.core.currencies import STRIPE_MAX_AMOUNT, smallest_amount
from custom_components.arcade_pay.core.pricing import (
    MAX_PACK_CREDITS,
    MAX_PACKS,
    OFFER_METADATA_KEY,
    CreditError,
    Offer,
    Pack,
    PackError,
    PackSet,
    credits_for_items,
    credits_for_subtotal,
    format_packs,
    offer_from_metadata,
    offer_metadata,
    pack_placeholders,
    parse_packs,
    price_per_credit,
)

# One currency of each kind of minor units: two decimals, none, three (multiples of 10).
CURRENCIES = ("usd", "eur", "jpy", "kwd")


@pytest.mark.parametrize(
    ("text", "currency", "packs"),
    [
        ("3=2.50, 10=7.00", "usd", (Pack(3, 250), Pack(10, 700))),
        ("3=2,50, 10=7,00", "eur", (Pack(3, 250), Pack(10, 700))),  # the decimal comma stays
        ("3=2,50,10=7", "eur", (Pack(3, 250), Pack(10, 700))),
        ("10 = 7 ; 3 = 2.5", "usd", (Pack(3, 250), Pack(10, 700))),  # fewest credits first
        ("3=2.50\n10=7.00\n", "usd", (Pack(3, 250), Pack(10, 700))),
        ("3=500, 10=1500", "jpy", (Pack(3, 500), Pack(10, 1500))),
        ("3=2.500", "kwd", (Pack(3, 2500),)),
        ("", "usd", ()),
        (" , ", "usd", ()),
    ],
)
def test_parse_packs(text: str, currency: str, packs: tuple[Pack, ...]) -> None:
    assert parse_packs(text, currency) == packs


@pytest.mark.parametrize(
    ("text", "currency", "key", "pack"),
    [
        ("3", "usd", "invalid_pack", "3"),
        ("three=2.50", "usd", "invalid_pack", "three=2.50"),
        ("3=2.50, x", "usd", "invalid_pack", "x"),  # the error names the bad pack only
        ("3=2,50, zehn=7", "eur", "invalid_pack", "zehn=7"),
        ("3=2.50=1", "usd", "invalid_pack", "3=2.50=1"),
        ("1=1.00", "usd", "pack_credits", "1=1.00"),  # one credit is the price per credit
        ("0=1.00", "usd", "pack_credits", "0=1.00"),
        (f"{MAX_PACK_CREDITS + 1}=9", "usd", "pack_credits", f"{MAX_PACK_CREDITS + 1}=9"),
        ("3=2.555", "usd", "pack_price", "3=2.555"),
        ("3=2.5", "jpy", "pack_price", "3=2.5"),
        ("3=2.505", "kwd", "pack_price", "3=2.505"),  # three decimals go in tens
        ("3=0", "usd", "pack_price", "3=0"),
        ("3=1,500", "usd", "pack_price", "3=1,500"),  # never read as a thousand
        ("3=1000000", "usd", "pack_price_too_high", "3=1000000"),
        ("3=2.50, 3=2.00", "usd", "pack_twice", "3=2.00"),
        ("3=2.50, 4=2.50", "usd", "pack_twice", "4=2.50"),  # the line items could not tell them apart
    ],
)
def test_parse_packs_refuses(text: str, currency: str, key: str, pack: str) -> None:
    with pytest.raises(PackError) as caught:
        parse_packs(text, currency)
    assert (caught.value.key, caught.value.placeholders) == (key, {"pack": pack})


def test_too_many_packs() -> None:
    text = ", ".join(f"{credits}={credits}" for credits in range(2, MAX_PACKS + 3))
    with pytest.raises(PackError) as caught:
        parse_packs(text, "usd")
    assert caught.value.key == "too_many_packs"
    assert "max_packs" in pack_placeholders("usd")


@pytest.mark.parametrize(
    ("currency", "example"),
    [("usd", "3=2.50, 10=7.00"), ("jpy", "3=250, 10=700"), ("kwd", "3=2.500, 10=7.000")],
)
def test_the_example_is_written_in_the_currency(currency: str, example: str) -> None:
    assert pack_placeholders(currency)["packs_example"] == example
    assert parse_packs(example, currency)  # and it is one the field takes


@st.composite
def packs_in(draw: st.DrawFn, currency: str) -> tuple[Pack, ...]:
    """Packs the field takes: distinct credits and amounts, at most MAX_PACKS, sorted by credits."""
    step = smallest_amount(currency)
    credits = draw(st.lists(st.integers(2, MAX_PACK_CREDITS), unique=True, max_size=MAX_PACKS))
    amounts = draw(
        st.lists(
            st.integers(1, STRIPE_MAX_AMOUNT // step).map(lambda units: units * step),
            unique=True,
            min_size=len(credits),
            max_size=len(credits),
        )
    )
    return tuple(sorted(map(Pack, credits, amounts), key=lambda pack: pack.credits))


@given(st.sampled_from(CURRENCIES).flatmap(lambda c: st.tuples(st.just(c), packs_in(c))))
def test_packs_round_trip(case: tuple[str, tuple[Pack, ...]]) -> None:
    currency, packs = case
    assert parse_packs(format_packs(packs, currency), currency) == packs


@given(st.text(max_size=40), st.sampled_from(CURRENCIES))
def test_any_text_is_packs_or_a_pack_error(text: str, currency: str) -> None:
    """Whatever is typed: packs the field can write back as they were read, or a translatable error."""
    errors = {"invalid_pack", "pack_credits", "pack_price", "pack_price_too_high", "pack_twice"}
    try:
        packs = parse_packs(text, currency)
    except PackError as err:
        error = err.key
    else:
        error = None
        assert parse_packs(format_packs(packs, currency), currency) == packs
    assert error is None or error in errors


def test_format_packs() -> None:
    assert format_packs((Pack(3, 250), Pack(10, 700)), "usd") == "3=2.50, 10=7.00"
    assert format_packs((Pack(3, 500),), "jpy") == "3=500"
    assert format_packs((), "usd") == ""


# --- offers in a session's metadata ----------------------------------------------------------------


def offer(unit_amount: int = 200, packs: tuple[Pack, ...] = ()) -> Offer:
    return Offer("usd", unit_amount, packs, max_quantity=10, allow_promotion_codes=False)


def test_offer_metadata_names_every_line_in_order() -> None:
    sold = offer(200, (Pack(3, 500), Pack(10, 1500)))
    assert offer_metadata(sold) == {OFFER_METADATA_KEY: "1x200,3x500,10x1500"}
    assert (
        offer_from_metadata(offer_metadata(sold))
        == sold.lines
        == (
            Pack(1, 200),
            Pack(3, 500),
            Pack(10, 1500),
        )
    )


@given(st.integers(1, STRIPE_MAX_AMOUNT), packs_in("usd"))
def test_offer_metadata_round_trip(unit_amount: int, packs: tuple[Pack, ...]) -> None:
    sold = offer(unit_amount, packs)
    metadata = offer_metadata(sold)
    assert len(metadata[OFFER_METADATA_KEY]) <= 500  # Stripe's limit for a metadata value
    assert offer_from_metadata({"machine_id": "galaga"} | metadata) == sold.lines


def test_a_session_without_an_offer_has_none() -> None:
    assert offer_from_metadata({"machine_id": "galaga"}) is None
    assert offer_from_metadata(None) is None


@pytest.mark.parametrize(
    "text", ["", "1x200,", "3x500", "1x0", "1x-5", "1x200,3x", "ax200", "1x200;3x500", 200, "1x200," * 8]
)
def test_offer_metadata_that_is_not_an_offer_raises(text: object) -> None:
    with pytest.raises(CreditError):
        offer_from_metadata({OFFER_METADATA_KEY: text})


# --- credits of a paid session ---------------------------------------------------------------------

LINES = (Pack(1, 200), Pack(3, 500), Pack(10, 1500))


@pytest.mark.parametrize(
    ("items", "credits"),
    [
        ([(200, 2)], 2),
        ([(200, 1), (500, 1), (1500, 1)], 14),
        ([(500, 2)], 6),  # the single credits line was removed (quantity 0)
        ([(200, 1), (1500, 3)], 31),
        ([(1500, 1)], 10),
    ],
)
def test_credits_for_items(items: list[tuple[int, int]], credits: int) -> None:
    assert credits_for_items(LINES, items) == credits


@pytest.mark.parametrize(
    "items",
    [
        [],
        [(250, 1)],  # a price the offer never had (today's price, say)
        [(500, 1), (200, 1)],  # out of order
        [(200, 1), (200, 1)],  # one line twice
        [(200, 0)],
        [(200, -1)],
        [(200, 1), (500, 1), (1500, 1), (1500, 1)],  # more items than lines
    ],
)
def test_items_that_do_not_match_the_offer_raise(items: list[tuple[int, int]]) -> None:
    with pytest.raises(CreditError):
        credits_for_items(LINES, items)


def test_items_that_could_be_two_lines_raise() -> None:
    """3 credits for the price of one: an item at that amount is one credit or three."""
    lines = (Pack(1, 200), Pack(3, 200))
    assert credits_for_items(lines, [(200, 1), (200, 2)]) == 7  # both lines there: no doubt
    with pytest.raises(CreditError):
        credits_for_items(lines, [(200, 1)])


@given(packs_in("usd"), st.integers(1, 10_000), st.data())
def test_credits_are_what_the_lines_bought(
    packs: tuple[Pack, ...], unit_amount: int, data: st.DataObject
) -> None:
    """Any quantities the player picks (0 removes a line): the credits are exactly what they bought."""
    lines = offer(unit_amount, packs).lines
    quantities = [data.draw(st.integers(0, 10)) for _ in lines]
    items = [(line.amount, quantity) for line, quantity in zip(lines, quantities, strict=True) if quantity]
    bought = sum(line.credits * quantity for line, quantity in zip(lines, quantities, strict=True))
    amounts = [line.amount for line in lines]
    if not items:
        with pytest.raises(CreditError):
            credits_for_items(lines, items)
    elif len(set(amounts)) == len(amounts):  # distinct amounts: every pick is read one way
        assert credits_for_items(lines, items) == bought
    else:
        try:
            assert credits_for_items(lines, items) == bought
        except CreditError:
            assert len(items) < len(lines)  # doubt only when a line was removed


def test_credits_for_subtotal() -> None:
    assert credits_for_subtotal((Pack(1, 200),), 600) == 3
    for subtotal in (0, 500, -200):
        with pytest.raises(CreditError):
            credits_for_subtotal((Pack(1, 200),), subtotal)
    with pytest.raises(CreditError):
        credits_for_subtotal(LINES, 700)  # packs are credited from the line items


@given(st.integers(1, 99), st.integers(1, 100_000))
def test_single_credits_are_the_subtotal_over_the_unit_price(quantity: int, unit_amount: int) -> None:
    assert credits_for_subtotal((Pack(1, unit_amount),), quantity * unit_amount) == quantity


def test_credits_never_come_from_the_discounted_amount() -> None:
    """3 credits at 2.00 with 25 % off: 4.50 paid, 3 credits. The total is not a number of credits."""
    session = {"amount_subtotal": 600, "amount_total": 450}
    assert credits_for_subtotal((Pack(1, 200),), session["amount_subtotal"]) == 3
    with pytest.raises(CreditError):
        credits_for_subtotal((Pack(1, 200),), session["amount_total"])
    # With packs, the line items say what was bought, whatever was paid.
    assert credits_for_items(LINES, [(500, 1)]) == 3


def test_price_per_credit() -> None:
    assert price_per_credit(200, "usd") == "2.00 USD"
    assert price_per_credit(500, "jpy") == "500 JPY"
    assert price_per_credit(1250, "kwd") == "1.250 KWD"


# --- what a cabinet's next scan sells --------------------------------------------------------------


GALAGA = CabinetConfig(
    subentry_id="sub",
    machine_id="galaga",
    name="Galaga",
    currency="usd",
    max_quantity=10,
    payment_link_id="plink_1",
    payment_link_url="https://buy.stripe.com/test_1",
    managed_link=True,
    unit_amount=200,
    qr_target=QrTarget.HOME_ASSISTANT,
    packs=(Pack(3, 500),),
    happy_hour_packs=(Pack(3, 300), Pack(10, 900)),
    allow_promotion_codes=True,
    scan_token="token",
)


def cabinet(**changes: Any) -> Cabinet:
    return Cabinet(replace(GALAGA, **changes))


def test_the_offer_follows_the_price_and_the_pack_set() -> None:
    galaga = cabinet()
    heard: list[object] = []
    galaga.add_listener(heard.append)
    assert galaga.offer() == Offer("usd", 200, (), 10, True)  # the form's price, no packs

    galaga.set_price(150, PackSet.HAPPY_HOUR_PACKS)
    assert galaga.offer() == Offer("usd", 150, (Pack(3, 300), Pack(10, 900)), 10, True)
    galaga.set_price(150, PackSet.PACKS)
    assert galaga.offer().packs == (Pack(3, 500),)
    assert galaga.unit_amount_now == 150
    assert len(heard) == 2
    galaga.set_price(150, PackSet.PACKS)  # nothing changed: nobody is told
    assert len(heard) == 2


def test_a_payment_link_cabinet_sells_the_links_price() -> None:
    galaga = cabinet(qr_target=QrTarget.PAYMENT_LINK)
    galaga.restore_price(100, "packs", galaga.price_basis)
    assert galaga.unit_amount_now == 200


def test_an_adopted_link_with_several_prices_has_no_offer() -> None:
    with pytest.raises(ValueError, match="no single price"):
        cabinet(unit_amount=None).offer()


def test_a_remembered_price_holds_only_under_what_it_was_set_for() -> None:
    galaga = cabinet()
    basis = galaga.price_basis
    galaga.restore_price(150, "happy_hour_packs", basis)
    assert (galaga.unit_amount_now, galaga.pack_set) == (150, PackSet.HAPPY_HOUR_PACKS)
    # Deleted and added again (a new token), another currency or a new price in its form.
    for changed in (cabinet(scan_token="new"), cabinet(currency="jpy"), cabinet(unit_amount=250)):
        changed.restore_price(150, "happy_hour_packs", basis)
        assert changed.pack_set is PackSet.NONE
        assert changed.unit_amount_now == changed.config.unit_amount
    unknown = cabinet()
    unknown.restore_price(None, "no such set", unknown.price_basis)
    assert (unknown.unit_amount_now, unknown.pack_set) == (200, PackSet.NONE)
