"""What a scan sells, as typed by the operator and as written into a Checkout Session.

Standard library only (no Home Assistant). A cabinet sells single credits at its price now and,
optionally, packs ("3 credits for 2.50"). The Offer of a session is fixed when the session is
made and travels in its metadata, so the credits of a paid session are what it sold, whatever
the price is by the time it is paid; a promotion code lowers what was paid, never the credits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import re
import string
from typing import Any, Final

from .currencies import PriceError, PriceTooHigh, currency_exponent, format_amount, parse_price

OFFER_METADATA_KEY: Final = "arcade_pay_offer"
# A checkout page with more choices than this is a menu nobody reads.
MAX_PACKS: Final = 5
# As many credits as one payment may buy (Stripe's adjustable quantity stops at 99 as well).
MAX_PACK_CREDITS: Final = 99

# A comma between digits that end the price is a decimal comma ("3=2,50, 10=7,00" is two packs);
# any other comma, a semicolon or a new line ends a pack.
_PACK_SEPARATOR = re.compile(r"[;\n]|,(?!\d+\s*(?:[,;\n]|$))")
_PACK = re.compile(r"^(\d+)\s*=\s*([^=\s]+)$")
_LINE = re.compile(r"^([1-9]\d{0,5})x([1-9]\d{0,11})$")


@dataclass(frozen=True, slots=True)
class Pack:
    """Credits sold together for one amount: ``Pack(3, 250)`` is 3 credits for 2.50."""

    credits: int
    amount: int  # minor units of the offer's currency


@dataclass(frozen=True, slots=True)
class Offer:
    """What one scan sells, fixed when its Checkout Session is made."""

    currency: str
    unit_amount: int  # one credit (the Price per credit number)
    packs: tuple[Pack, ...]  # extra packs on sale now (may be empty)
    max_quantity: int
    allow_promotion_codes: bool

    @property
    def lines(self) -> tuple[Pack, ...]:
        """The session's line items in order: single credits first, then the packs."""
        return (Pack(1, self.unit_amount), *self.packs)


class PackSet(StrEnum):
    """Which of a cabinet's packs are on sale (the Packs select)."""

    NONE = "none"
    PACKS = "packs"
    HAPPY_HOUR_PACKS = "happy_hour_packs"


class PackError(ValueError):
    """Typed packs that cannot be sold; ``key`` and ``placeholders`` are the form's error."""

    def __init__(self, key: str, **placeholders: str) -> None:
        """Keep what the translated error needs."""
        super().__init__(key, placeholders)
        self.key = key
        self.placeholders = placeholders


class CreditError(ValueError):
    """A paid session whose items do not match the offer it was made with: nobody can say its credits."""


def parse_packs(text: str, currency: str) -> tuple[Pack, ...]:
    """Turn "3=2.50, 10=7.00" into packs, fewest credits first; raise PackError.

    Prices are read as the price field reads them (comma or point, the currency's decimals,
    Stripe's largest amount). A pack of one credit, two packs of the same credits or of the
    same price are refused: the player could not tell them apart, nor could the credits be
    told from the session's line items.
    """
    packs: list[Pack] = []
    # A stray comma at either end is a typo, not a pack.
    for piece in (part.strip(f"{string.whitespace},") for part in _PACK_SEPARATOR.split(text)):
        if not piece:
            continue
        match = _PACK.match(piece)
        if match is None:
            raise PackError("invalid_pack", pack=piece)
        credits = int(match[1])
        if not 2 <= credits <= MAX_PACK_CREDITS:
            raise PackError("pack_credits", pack=piece)
        try:
            amount = parse_price(match[2], currency)
        except PriceTooHigh as err:
            raise PackError("pack_price_too_high", pack=piece) from err
        except PriceError as err:
            raise PackError("pack_price", pack=piece) from err
        if any(p.credits == credits or p.amount == amount for p in packs):
            raise PackError("pack_twice", pack=piece)
        packs.append(Pack(credits, amount))
    if len(packs) > MAX_PACKS:
        raise PackError("too_many_packs")
    return tuple(sorted(packs, key=lambda pack: pack.credits))


def format_packs(packs: Iterable[Pack], currency: str) -> str:
    """Write packs as parse_packs reads them: "3=2.50, 10=7.00"."""
    return ", ".join(f"{pack.credits}={format_amount(pack.amount, currency)}" for pack in packs)


def pack_placeholders(currency: str) -> dict[str, str]:
    """What the packs fields and their errors say (the failing pack goes in ``pack``)."""
    whole = currency_exponent(currency) == 0  # "3=250, 10=700" yen, "3=2.50, 10=7.00" dollars
    example = (
        Pack(3, parse_price("250" if whole else "2.5", currency)),
        Pack(10, parse_price("700" if whole else "7", currency)),
    )
    return {
        "pack": "",
        "packs_example": format_packs(example, currency),
        "max_packs": str(MAX_PACKS),
        "max_pack_credits": str(MAX_PACK_CREDITS),
    }


def offer_metadata(offer: Offer) -> dict[str, str]:
    """The offer as a session's metadata: "1x200,3x500" (credits x amount, in line-item order)."""
    return {OFFER_METADATA_KEY: ",".join(f"{line.credits}x{line.amount}" for line in offer.lines)}


def offer_from_metadata(metadata: Mapping[str, Any] | None) -> tuple[Pack, ...] | None:
    """The lines a session was made with; None for a session made without an offer (a payment link).

    Raise CreditError when the metadata is there but is not an offer Arcade Pay writes.
    """
    text = (metadata or {}).get(OFFER_METADATA_KEY)
    if text is None:
        return None
    if not isinstance(text, str):
        raise CreditError(f"offer metadata is not text: {text!r}")
    matches = [_LINE.match(part) for part in text.split(",")]
    lines = tuple(Pack(int(m[1]), int(m[2])) for m in matches if m is not None)
    if len(lines) != len(matches) or len(lines) > MAX_PACKS + 1 or lines[0].credits != 1:
        raise CreditError(f"not an offer: {text!r}")
    return lines


def credits_for_subtotal(lines: tuple[Pack, ...], amount_subtotal: int) -> int:
    """Credits of a paid session that sold single credits only, from its subtotal.

    The subtotal is before discounts: a promotion code lowers the total, not the credits.
    """
    if len(lines) != 1:
        raise CreditError("a session with packs is credited from its line items")
    unit_amount = lines[0].amount
    credits, rest = divmod(amount_subtotal, unit_amount)
    if rest or credits < 1:
        raise CreditError(f"subtotal {amount_subtotal} is not a number of credits at {unit_amount}")
    return credits


def credits_for_items(lines: tuple[Pack, ...], items: list[tuple[int, int]]) -> int:
    """Credits of a paid session from its line items: (unit_amount, quantity) of each, in order.

    Stripe leaves out a line the player set to 0, so the items are matched to the offer's lines
    in order, each by its amount; raise CreditError when they do not match, or when they could
    match lines of different credits (two lines of one amount, one of them left out).
    """
    if not items or any(quantity < 1 for _, quantity in items):
        raise CreditError(f"line items {items!r} buy nothing")
    totals = _credit_totals(lines, tuple(items))
    if len(totals) != 1:
        problem = "do not match" if not totals else "could be read two ways against"
        raise CreditError(f"line items {items!r} {problem} the offer {lines!r}")
    return totals.pop()


def _credit_totals(lines: tuple[Pack, ...], items: tuple[tuple[int, int], ...]) -> set[int]:
    """Every credit total an in-order matching of ``items`` to ``lines`` gives (at most 6 lines)."""
    if not items:
        return {0}
    if len(items) > len(lines):
        return set()
    (amount, quantity), rest = items[0], items[1:]
    totals: set[int] = set()
    for index, line in enumerate(lines):
        if line.amount == amount:
            totals |= {line.credits * quantity + t for t in _credit_totals(lines[index + 1 :], rest)}
    return totals


def price_per_credit(unit_amount: int, currency: str) -> str:
    """One credit's price as people read it: "2.00 USD", "500 JPY"."""
    return f"{format_amount(unit_amount, currency)} {currency.upper()}"
