"""What the browser suite drives: the stack of ``scripts/develop`` on free ports, and Chromium.

``Journey.start`` starts mosquitto, the fake Stripe (in this process), a real Home Assistant
(``e2e.system.ArcadeSystem``: onboarded through Home Assistant's API as user dev/dev, since
onboarding is Home Assistant's own screen, not Arcade Pay's; MQTT set up) and the cabinet agent
for Pac-Man, then Debian's Chromium through Playwright. Everything an operator does after that
goes through the browser; the API is only read, to check what the screens claim.

Each step runs in ``Journey.step``: it saves a screenshot, and fails on "Translation error" text
on the page or on a console error of the Home Assistant tab, besides its own checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
from pathlib import Path
import shutil
import time
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error as PlaywrightError,
    Locator,
    Page,
    Playwright,
    Route,
    async_playwright,
)
import pytest

from dev import bootstrap
from e2e.system import Agent, ArcadeSystem

CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/setup); `playwright install` would download one.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A 1x1 transparent PNG: the frontend loads brand icons from the internet, which tests never reach.
BLANK_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
TIMEOUT_MS = 15_000

PACMAN = "pacman-1"  # The cabinet with a running agent.
LEGACY = "legacy-1"  # A cabinet of the earlier system: its link exists before Arcade Pay.
FROGGER = "frogger-1"  # A cabinet that announces itself and is added from Discovered.


class Journey:
    """The running stack, the browser page, and what the steps learned along the way."""

    def __init__(self, workdir: Path, artifacts: Path) -> None:
        self.workdir = workdir
        self.artifacts = artifacts
        # As scripts/develop: the frontend asks the recorder (through history) on several pages.
        self.system = ArcadeSystem(workdir / "system", components=["history", "logbook"])
        self.agent = Agent(workdir / "agent", 0, machine_id=PACMAN)
        self.facts: dict[str, Any] = {}  # What one step found and a later one needs.
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.context: BrowserContext
        self.page: Page
        self._console: list[str] = []
        self._steps = 0
        self._reached: set[str] = set()
        self._more_agents: list[Agent] = []

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the services, the agent and the browser."""
        started = time.monotonic()
        await self.system.start_services()
        await bootstrap.remove_failed_onboarding_extras(self.system.client)
        self.agent = Agent(
            self.workdir / "agent",
            self.system.broker.port,
            machine_id=PACMAN,
            login=self.system.cabinet_login(PACMAN),
        )
        self.agent.start()
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        self.context = await self._browser.new_context(
            viewport={"width": 1280, "height": 1500}, locale="en-US", timezone_id="UTC"
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        await self.context.route("**/*", self._offline)
        # A rejected promise carrying a plain object reaches Playwright as "Object": say what it was.
        await self.context.add_init_script(
            "window.addEventListener('unhandledrejection', e => console.error("
            "'unhandled rejection: ' + JSON.stringify(e.reason)))"
        )
        self.page = await self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)
        print(f"browser suite: stack up in {time.monotonic() - started:.0f} s")

    def start_agent(self, machine_id: str, name: str) -> Agent:
        """Start one more cabinet (stopped with the rest): its agent announces it as ``name``."""
        agent = Agent(
            self.workdir / machine_id,
            self.system.broker.port,
            machine_id=machine_id,
            login=self.system.cabinet_login(machine_id),
            name=name,
        )
        agent.start()
        self._more_agents.append(agent)
        return agent

    async def stop(self) -> None:
        """Stop the browser and every process; keep Home Assistant's log with the screenshots."""
        with contextlib.suppress(PlaywrightError, AttributeError):
            await self.context.close()
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        for agent in (self.agent, *self._more_agents):
            agent.stop()
        await self.system.stop()
        with contextlib.suppress(OSError, AttributeError):
            shutil.copy(self.system.ha.config_dir / "home-assistant.log", self.artifacts)

    async def _offline(self, route: Route) -> None:
        """Let requests to this machine through; answer brand icons blank; refuse the internet."""
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            await route.continue_()
        elif "brands.home-assistant.io" in url:
            await route.fulfill(status=200, content_type="image/png", body=BLANK_PNG)
        else:
            await route.abort()

    def _on_page_error(self, error: PlaywrightError) -> None:
        if error.message == "Object":
            return  # A rejection with a plain object: the init script reported it with its content.
        stack = (error.stack or "").strip().splitlines()
        self._console.append(f"page error: {error.name}: {error.message} {' | '.join(stack[:4])}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        # Requests this suite refused itself (no internet here) are not the page's fault.
        if where and not where.startswith(self.system.ha.url):
            return
        self._console.append(f"console error: {message.text} ({where})")

    # --- steps -------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def step(
        self, name: str, needs: str | None = None, tolerate: str | None = None
    ) -> AsyncIterator[list[str]]:
        """Run one stage: yield a list for problems, then screenshot and check the page.

        Problems appended to the list fail the step at its end, all of them reported together,
        so that a step also shows what else is wrong besides the first thing it found. A step
        that ``needs`` what an earlier one failed to reach is skipped, naming that. ``tolerate``:
        a console error of Home Assistant's own frontend that this step provokes (say which, why).
        """
        self._steps += 1
        if needs is not None and needs not in self._reached:
            pytest.skip(f"needs {needs!r}, which an earlier step did not reach")
        self._console.clear()
        problems: list[str] = []
        crashed: BaseException | None = None
        try:
            yield problems
        except Exception as err:
            crashed = err
        await self.screenshot(f"{self._steps:02d}-{name}")
        if await self.page.get_by_text("Translation error").count():
            problems.append("the page shows 'Translation error'")
        problems.extend(e for e in self._console if tolerate is None or tolerate not in e)
        if crashed is not None:
            if problems:
                crashed.add_note("also: " + "; ".join(problems))
            raise crashed
        if problems:
            pytest.fail("\n".join(f"- {problem}" for problem in problems), pytrace=False)

    def reached(self, milestone: str) -> None:
        """Later steps that need this milestone may run."""
        self._reached.add(milestone)

    async def screenshot(self, name: str) -> None:
        """Save what the Home Assistant tab shows."""
        with contextlib.suppress(PlaywrightError):
            await self.page.screenshot(path=self.artifacts / f"{name}.png", full_page=True)

    async def check_translations(self, problems: list[str], where: str, seconds: float = 2) -> None:
        """Look for "Translation error" on a screen that closes before the step ends.

        Help texts render a moment after their fields, so this keeps looking for a while.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.page.get_by_text("Translation error").count():
                problems.append(f"{where} shows 'Translation error'")
                return
            await self.page.wait_for_timeout(250)

    # --- reading Home Assistant's state (to check the screens, never to act) -------------------

    async def subentries(self) -> list[dict[str, Any]]:
        """The Arcade Pay entry's cabinets."""
        return list(
            await self.system.client.ws(
                {"type": "config_entries/subentries/list", "entry_id": self.system.entry_id}
            )
        )

    async def entries(self) -> list[dict[str, Any]]:
        """Arcade Pay's config entries."""
        return await bootstrap.entries_of(self.system.client, "arcade_pay")

    def links_of(self, machine_id: str) -> list[dict[str, Any]]:
        """The fake Stripe's payment links whose metadata names this machine."""
        return [
            link
            for link in self.system.fake.payment_links.values()
            if link["metadata"].get("machine_id") == machine_id
        ]

    def unit_amount(self, link_id: str) -> int:
        """The price per credit of a payment link in the fake Stripe, in minor units."""
        return int(self.system.fake.link_items[link_id][0]["price"]["unit_amount"])


async def next_to(alert: Locator, field: Locator) -> bool:
    """Whether a visible error sits right above a form field, where Home Assistant's forms put it.

    Only above: an error below could be the next field's.
    """
    field_box = await field.bounding_box()
    if field_box is None:
        return False
    for index in range(await alert.count()):
        box = await alert.nth(index).bounding_box()
        if box is not None and 0 <= field_box["y"] - (box["y"] + box["height"]) < 60:
            return True
    return False
