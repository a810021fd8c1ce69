"""An arcade operator's journey in Home Assistant's frontend, one test per stage (issue 7, section 4).

Run alone with ``pytest -m browser``. The stages share one stack (see conftest.py) and run in
file order; each saves a screenshot into test-artifacts/browser/. They are written against the
behaviour issue 7 asks for: README "Browser suite" lists which ones fail on code that lacks a fix.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from playwright.async_api import TimeoutError as PlaywrightTimeout, expect
import pytest

from dev import bootstrap
from dev.bootstrap import DEV_PASSWORD, DEV_USERNAME, FAKE_API_KEY

from . import ui
from .journey import PACMAN, Journey, next_to

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_01_log_in(journey: Journey) -> None:
    async with journey.step("log-in"):
        await ui.log_in(journey.page, journey.system.ha.url, DEV_USERNAME, DEV_PASSWORD)
        await expect(journey.page.get_by_role("option", name="Settings").first).to_be_visible()


async def test_02_add_arcade_pay_from_scratch(journey: Journey) -> None:
    page = journey.page
    async with journey.step("add-arcade-pay") as problems:
        await page.get_by_role("option", name="Settings").first.click()
        await page.get_by_text("Devices & services", exact=True).first.click()
        await page.get_by_role("button", name="Add integration").click()
        # Typing before the brand list has loaded trips the frontend ("reading 'domain'").
        await page.locator("ha-integration-list-item").first.wait_for()
        await page.get_by_role("textbox", name="Search for a brand name").fill("Arcade Pay")
        await page.locator("ha-integration-list-item", has_text="Arcade Pay").click()
        # Pasted from Stripe's dashboard with a stray space: stripped, not refused.
        await ui.fill(ui.field(page, "Stripe API key"), f" {FAKE_API_KEY} ")
        await ui.fill(ui.field(page, "Webhook signing secret"), journey.system.fake.webhook_secret + " ")
        await ui.submit(page)
        webhook = page.locator("code", has_text="/api/webhook/")
        with contextlib.suppress(PlaywrightTimeout):
            await webhook.wait_for(timeout=5000)
        if not await webhook.count():
            problems.append("a key pasted with surrounding spaces was refused")
            await journey.screenshot("02-add-arcade-pay-spaces-refused")
            await ui.fill(ui.field(page, "Stripe API key"), FAKE_API_KEY)
            await ui.fill(ui.field(page, "Webhook signing secret"), journey.system.fake.webhook_secret)
            await ui.submit(page)
        await expect(webhook).to_be_visible()
        url = (await webhook.inner_text()).strip()
        await journey.screenshot("02-add-arcade-pay-result")
        await ui.close_dialog(page)
        entries = await journey.entries()
        assert [e["state"] for e in entries] == ["loaded"], entries
        journey.system.entry_id = entries[0]["entry_id"]
        journey.reached("arcade_pay")

    # As in Stripe's dashboard: add the endpoint on the fake Stripe's page.
    async with journey.step("fake-stripe-webhook"):
        stripe = await journey.context.new_page()
        await stripe.goto(journey.system.fake.url)
        await stripe.get_by_placeholder("Webhook URL").fill(url)
        await stripe.get_by_role("button", name="Add endpoint").click()
        await expect(stripe.get_by_text(url)).to_be_visible()
        await stripe.screenshot(path=journey.artifacts / "02-fake-stripe-webhook.png")
        await stripe.close()
        journey.reached("webhook")


async def _try_bad_cabinet(
    journey: Journey, machine_id: str, values: dict[str, str], bad_field: str
) -> list[str]:
    """Submit the new-cabinet form with one bad value; answer what went wrong ([]: refused well)."""
    page = journey.page
    problems: list[str] = []
    before = {s["subentry_id"] for s in await journey.subentries()}
    await ui.open_add_cabinet(journey)
    await ui.choose(page, "Create a new payment link")
    for label, text in {"Machine ID": machine_id, **values}.items():
        await ui.fill(ui.field(page, label), text)
    await ui.submit(page)
    await page.wait_for_timeout(1500)
    try:
        if created := await _created_since(journey, before):
            problems.append(f"{values} created the cabinet {created[0]['title']!r}")
        elif not await ui.field(page, bad_field).is_visible():
            problems.append(f"the form closed on {values} without a word")
        elif not await next_to(page.get_by_role("alert"), ui.field(page, bad_field)):
            problems.append(f"no error shown at the {bad_field} field for {values}")
        if journey.links_of(machine_id) and not created:
            problems.append(f"a payment link was made in Stripe for {machine_id}, which was refused")
    finally:
        await journey.screenshot(f"bad-{machine_id}-result")
        await ui.close_dialog(page)
        await _delete_created(journey, before)
    return problems


async def test_03_price_with_a_comma_is_not_misread(journey: Journey) -> None:
    page = journey.page
    async with journey.step("cabinet-price-comma", needs="arcade_pay") as problems:
        before = {s["subentry_id"] for s in await journey.subentries()}
        await ui.open_add_cabinet(journey)
        await ui.choose(page, "Create a new payment link")
        price = ui.field(page, "Price per credit")
        if value := await price.input_value():
            problems.append(f"the price field starts at {value!r}, a price nobody chose")
        await ui.fill(ui.field(page, "Machine ID"), "galaga-1")
        await ui.fill(ui.field(page, "Name"), "Galaga")
        await ui.fill(price, "1,50")
        await ui.submit(page)
        await page.wait_for_timeout(1500)
        try:
            if await _created_since(journey, before):
                # Accepting is fine when it means 1.50 and says so.
                links = journey.links_of("galaga-1")
                cents = [
                    journey.system.fake.link_items[link["id"]][0]["price"]["unit_amount"] for link in links
                ]
                if cents != [150]:
                    problems.append(f"1,50 became a price of {cents} cents, not 150")
                text = await ui.dialog_text(page)
                if not re.search(r"1\.50\s*USD|\$\s*1\.50", text, re.IGNORECASE):
                    problems.append(f"the result does not state the price in words: {text.strip()!r}")
            elif not await next_to(page.get_by_role("alert"), price):
                problems.append("1,50 was neither accepted as 1.50 nor refused at the price field")
        finally:
            await journey.screenshot("03-cabinet-price-comma-result")
            await ui.close_dialog(page)
            await _delete_created(journey, before)


async def _created_since(journey: Journey, before: set[str]) -> list[dict[str, Any]]:
    return [s for s in await journey.subentries() if s["subentry_id"] not in before]


async def _delete_created(journey: Journey, before: set[str]) -> None:
    """Undo a cabinet that a bad input created, so that the next steps start from the expected state."""
    for subentry in await _created_since(journey, before):
        await journey.system.client.ws(
            {
                "type": "config_entries/subentries/delete",
                "entry_id": journey.system.entry_id,
                "subentry_id": subentry["subentry_id"],
            }
        )
    await bootstrap.wait_for_entry(journey.system.client, "arcade_pay", journey.system.entry_id)


async def test_04_blank_name_is_refused(journey: Journey) -> None:
    async with journey.step("cabinet-blank-name", needs="arcade_pay") as problems:
        problems.extend(
            await _try_bad_cabinet(journey, "blank-1", {"Name": "   ", "Price per credit": "1"}, "Name")
        )


async def test_05_unknown_currency_is_refused(journey: Journey) -> None:
    async with journey.step("cabinet-currency-xyz", needs="arcade_pay") as problems:
        problems.extend(
            await _try_bad_cabinet(
                journey, "xyz-1", {"Name": "Tempest", "Price per credit": "1", "Currency": "xyz"}, "Currency"
            )
        )


async def test_06_add_cabinet(journey: Journey) -> None:
    page = journey.page
    async with journey.step("add-cabinet", needs="arcade_pay") as problems:
        await ui.open_add_cabinet(journey, problems)
        await ui.choose(page, "Create a new payment link")
        form = await ui.dialog_text(page)
        if not re.search(r"\bUSD\b|\$", form):
            problems.append("the form does not show the currency the price is in")
        await ui.fill(ui.field(page, "Machine ID"), PACMAN)
        await ui.fill(ui.field(page, "Name"), "Pac-Man")
        await ui.fill(ui.field(page, "Price per credit"), "1.50")
        await ui.submit(page)
        await expect(page.get_by_role("button", name=re.compile("^finish$", re.IGNORECASE))).to_be_visible()
        result = await ui.dialog_text(page)
        await journey.screenshot("06-add-cabinet-result")
        for words, pattern in (
            ("the price", r"1\.50"),
            ("the currency", r"\bUSD\b|\$"),
            ("the credit limit", r"\b10\b"),
        ):
            if not re.search(pattern, result, re.IGNORECASE):
                problems.append(f"the result does not state {words}: {result.strip()!r}")
        await ui.close_dialog(page)
        links = journey.links_of(PACMAN)
        assert len(links) == 1, links
        assert journey.unit_amount(links[0]["id"]) == 150
        journey.facts["pacman_link"] = links[0]["id"]
        journey.reached("pacman")
        await ui.open_entry_page(journey)
        await expect(page.get_by_text("Pac-Man").first).to_be_visible()


async def test_07_entry_page_speaks_of_cabinets(journey: Journey) -> None:
    page = journey.page
    async with journey.step("entry-page", needs="arcade_pay") as problems:
        await ui.open_entry_page(journey)
        await expect(page.get_by_text("Pac-Man").first).to_be_visible()
        if await page.get_by_text(re.compile(r"\bhubs?\b", re.IGNORECASE)).count():
            problems.append('the entry page speaks of "hubs" (cabinets are cabinets)')
        button = page.get_by_role("button", name=re.compile(r"^add cabinet$", re.IGNORECASE))
        if not (await button.count() and await button.first.is_visible()):
            problems.append('no visible "Add cabinet" button')
