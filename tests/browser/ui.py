"""Moves an operator makes in Home Assistant's frontend, by role and label (locators pierce shadow DOM).

Dialog content is slotted into Home Assistant's dialogs, so it is found on the page rather than
inside the ``alertdialog`` element, which holds only the dialog's frame.

What the suite relies on from Arcade Pay (change these and the suite with them):
- field labels starting with "Stripe API key", "Webhook signing secret", "Machine ID", "Name",
  "Price per credit", "Currency", "Payment link ID", "MQTT topic prefix"; the cabinet menu's
  options "Create a new payment link" and "Use an existing payment link";
- a field's error as an alert right above the field (Home Assistant's form layout);
- a button named "Add cabinet" on the entry page where the frontend can show one (else the ⋮
  menu item, which fails step 06/07 there; see ``SUBENTRY_BUTTON``);
- the webhook URL in a ``code`` element of the result; entity names Credits, Game state, Online,
  Revenue, Plays, Last payment, Payment QR code, Insert credit, Game, Accepting payments (a
  switch), Pending credits; Online reading "Connected";
- results that state "1.50" with "USD" or "$" and the limit "10"; a price change result with
  "2.50", "QR" and "old"; create_payment_link answering the link id and ``active: false`` (or
  ``accepting…: false``) while paused.
"""

from __future__ import annotations

import contextlib
import re

from awesomeversion import AwesomeVersion
from playwright.async_api import Locator, Page, TimeoutError as PlaywrightTimeout, expect

from homeassistant.const import __version__ as HA_VERSION

from .journey import Journey

# Home Assistant 2025.4's frontend offers a config entry's subentry flows only in the entry's ⋮
# menu, and no integration string can add a button there; 2026.2's shows "Add cabinet" as a
# button. On 2025.4 the setup result tells the operator where the menu item is instead.
SUBENTRY_BUTTON = AwesomeVersion(HA_VERSION) >= AwesomeVersion("2025.5.0")

ACCOUNT = "Fake Arcade (test mode)"  # The entry's title: the fake Stripe account's name, and a test key.
SUBMIT = re.compile(r"^(submit|next|finish|ok)$", re.IGNORECASE)
DISMISS = re.compile(r"^(close|cancel)$", re.IGNORECASE)  # A flow's Close, a confirmation's Cancel.


async def log_in(page: Page, url: str, username: str, password: str) -> None:
    """Home Assistant's login page, then the default dashboard (2025.4: /lovelace; 2026.2: /home)."""
    await page.goto(url + "/")
    await page.get_by_role("textbox", name="Username").fill(username)
    await page.get_by_role("textbox", name="Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(r"/(lovelace|home)\b"))


def sidebar_item(page: Page, name: str) -> Locator:
    """An entry of the sidebar: a listbox ``option`` on 2025.4, a ``listitem`` (no name) on 2026.2."""
    return page.locator("ha-sidebar").get_by_text(name, exact=True).first


# Home Assistant's own in-app navigation (its ``navigate()``): no page load. 2026.2's frontend
# often reports an unhandled "AbortError: Transition was skipped" on a page load (it removes its
# launch screen with a view transition twice, home-assistant/frontend#28185), which would fail
# the step for a console error that is not Arcade Pay's; an operator clicking around never
# reloads, and neither does the suite after logging in.
NAVIGATE = """path => {
  history.pushState(null, "", path);
  window.dispatchEvent(new CustomEvent("location-changed", {detail: {replace: false}}));
}"""


async def navigate(journey: Journey, path: str) -> None:
    """Show a page of the logged-in frontend, as a link inside it does."""
    page = journey.page
    if not (page.url.startswith(journey.system.ha.url) and await page.locator("home-assistant").count()):
        await page.goto(journey.system.ha.url + path)
        return
    # A step that failed may have left a dialog open, which a page load does not close. One that
    # is still closing (a confirmation just answered) goes away by itself.
    for _ in range(3):
        try:
            await expect(open_dialogs(page)).to_have_count(0, timeout=1000)
            break
        except AssertionError:
            with contextlib.suppress(PlaywrightTimeout):
                await page.get_by_role("button", name=DISMISS).last.click(timeout=2000)
    await page.evaluate(NAVIGATE, path)


def open_dialogs(page: Page) -> Locator:
    """Dialogs on screen: flows are ``alertdialog``; confirmations too on 2025.4, ``dialog`` on 2026.2."""
    return page.get_by_role("alertdialog").or_(page.get_by_role("dialog"))


async def open_entry_page(journey: Journey) -> None:
    """Settings → Devices & services → Arcade Pay."""
    await navigate(journey, "/config/integrations/integration/arcade_pay")
    await entry_row(journey.page, ACCOUNT).wait_for()


async def open_add_cabinet(journey: Journey, problems: list[str] | None = None) -> None:
    """Start the cabinet flow: the visible "Add cabinet" button, else the entry's ⋮ menu.

    Steps that check the button pass ``problems``: its absence is then one of theirs; the others
    go on through the menu so that they test what they are about.
    """
    page = journey.page
    await open_entry_page(journey)
    button = page.get_by_role("button", name=re.compile(r"^add cabinet$", re.IGNORECASE))
    if await button.count() and await button.first.is_visible():
        await button.first.click()
    else:
        if problems is not None and SUBENTRY_BUTTON:
            problems.append('no visible "Add cabinet" button on the entry page (only in the ⋮ menu)')
        await row_menu(page, ACCOUNT, "add cabinet")


async def choose(page: Page, option: str) -> None:
    """Pick an option of a flow's menu step (not its name in bold in the menu's description)."""
    await page.get_by_text(option, exact=True).and_(page.locator(":not(strong)")).click()


async def fill(field: Locator, text: str) -> None:
    """Type into a field as a person does: select what is there, then type (number fields too)."""
    await field.click()
    await field.press("Control+a")
    await field.press("Backspace")
    if text:
        await field.press_sequentially(text)


def field(page: Page, label: str) -> Locator:
    """A text or number field of the open form, by its label."""
    name = re.compile(rf"^{re.escape(label)}\b", re.IGNORECASE)
    return page.get_by_role("textbox", name=name).or_(page.get_by_role("spinbutton", name=name)).first


async def submit(page: Page) -> None:
    """The form's Submit button."""
    await page.get_by_role("button", name=SUBMIT).last.click()


# Text of an element and everything inside it, shadow roots included (innerText stops at them).
DEEP_TEXT = """root => {
  const parts = [];
  const visit = (element) => {
    if (element.shadowRoot) walk(element.shadowRoot);
    walk(element);  // Light children: what the shadow root shows through its slots.
  };
  const walk = (node) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent);
      else if (child.nodeType === Node.ELEMENT_NODE && !["STYLE", "SCRIPT"].includes(child.tagName)) {
        visit(child);
      }
    }
  };
  visit(root);
  return parts.join(" ").replace(/\\s+/g, " ");
}"""


async def dialog_text(page: Page) -> str:
    """The open flow dialog's text: title, description, errors, result."""
    dialog = page.locator("dialog-data-entry-flow")
    await dialog.wait_for(state="attached")
    return str(await dialog.evaluate(DEEP_TEXT))


async def close_dialog(page: Page) -> None:
    """Close whatever dialog is open (Finish on a result, the × otherwise)."""
    finish = page.get_by_role("button", name=re.compile(r"^finish$", re.IGNORECASE))
    if await finish.count() and await finish.last.is_visible():
        await finish.last.click()
    else:
        await page.get_by_role("button", name="Close").last.click()


async def open_device(journey: Journey, name: str) -> None:
    """Settings → Devices & services → Devices → the cabinet's device page."""
    page = journey.page
    await navigate(journey, "/config/devices/dashboard")
    await page.get_by_role("textbox", name="Search").fill(name)
    await page.get_by_role("row").filter(has_text=name).first.click()
    await page.wait_for_url(re.compile(r"/config/devices/device/"))
    await entity_row(page, "Credits").wait_for()


def entity_row(page: Page, name: str) -> Locator:
    """An entity's row on a device page (name first, then its state or control)."""
    return page.locator("hui-generic-entity-row").filter(has=page.get_by_text(name, exact=True)).first


def card(page: Page, heading: str) -> Locator:
    """A card of the device page by its heading (Controls, Sensors, Diagnostic, ...)."""
    return page.locator("ha-card").filter(has=page.get_by_role("heading", name=heading, exact=True))


async def page_text(page: Page) -> str:
    """Everything the page says, shadow roots included."""
    return str(await page.locator("body").evaluate(DEEP_TEXT))


def entry_row(page: Page, title: str) -> Locator:
    """A row of the integration page: the Stripe account's entry or one of its cabinets."""
    return page.locator("ha-md-list-item").filter(has=page.get_by_text(title, exact=True)).first


async def row_menu(page: Page, title: str, item: str) -> None:
    """Pick an item of a row's ⋮ menu on the integration page."""
    await entry_row(page, title).get_by_role("button", name="Menu").click()
    await page.get_by_role("menuitem", name=re.compile(item, re.IGNORECASE)).click()


async def confirm(page: Page, button: str) -> None:
    """Answer a confirmation dialog."""
    await (
        page.get_by_role("alertdialog")
        .get_by_role("button", name=re.compile(f"^{button}$", re.IGNORECASE))
        .or_(page.get_by_role("button", name=re.compile(f"^{button}$", re.IGNORECASE)))
        .last.click()
    )
