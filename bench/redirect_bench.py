"""Pay → coin pulse when Stripe's webhook is late: the player's page path against the webhook alone.

    .venv/bin/python bench/redirect_bench.py [--runs 4] [--delay 5]

Runs the real system (e2e/system.py) with a cabinet whose QR code points to Home Assistant and
the fake Stripe delaying its webhook by ``--delay`` seconds after Pay. Each run scans the
cabinet's stable URL (the checkout opens), presses Pay on the fake checkout, and times Pay →
the coin pulse at the cabinet:

* webhook only: the player does not follow the redirect; the pulse waits for the webhook;
* player page: the browser follows Stripe's redirect to the player's page, which asks Stripe
  for the session and credits it at once; the late webhook is then a duplicate.

Also counts pulses per payment: each must arrive exactly once. Writes bench/redirect_results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import statistics
import sys
import tempfile
import time

from aiohttp import ClientSession

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

from paho.mqtt import client as mqtt  # noqa: E402

from bench import PulseClock  # noqa: E402
from e2e.system import MACHINE_ID, ArcadeSystem  # noqa: E402

QR_CODE = "image.demo_cabinet_payment_qr_code"


async def scan(browser: ClientSession, url: str) -> str:
    """Scan the code (waiting out the scan limit, or the cabinet's first status); return the checkout URL."""
    deadline = time.monotonic() + 30
    while True:
        async with browser.get(url, allow_redirects=False) as resp:
            if resp.status == 429:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "5")))
                continue
            if resp.status == 503 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                continue
            assert resp.status == 303, await resp.text()
            return resp.headers["Location"]


async def pay(browser: ClientSession, checkout: str) -> str:
    """Press Pay for one credit; return where Stripe sends the player (the success URL)."""
    async with browser.post(checkout, data={"quantity": "1"}, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
        return resp.headers["Location"]


async def one_run(browser: ClientSession, clock: PulseClock, url: str, follow: bool) -> tuple[float, str]:
    checkout = await scan(browser, url)
    session_id = checkout.rsplit("/", 1)[1]
    arrival = clock.expect(session_id)
    start = time.perf_counter()
    success = await pay(browser, checkout)
    if follow:
        async with browser.get(success) as page:
            await page.read()
    return await asyncio.wait_for(arrival, 60) - start, session_id


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="arcade-pay-redirect-bench-"))
    system = ArcadeSystem(workdir, log_level="warning")
    try:
        await system.start()
        await system.add_cabinet()
        system.fake.webhook_delay = args.delay
        clock = PulseClock(system.broker.port, asyncio.get_running_loop(), system.mqtt_login)
        # The cabinet is there: its retained status says so (its first sign of life).
        status = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-status")
        status.username_pw_set(*system.mqtt_login)
        status.connect("127.0.0.1", system.broker.port)
        status.loop_start()
        status.publish(f"arcade/machine/{MACHINE_ID}/status", "online", qos=1, retain=True).wait_for_publish()
        url = await system.wait_for(lambda: _qr_url(system))
        times: dict[str, list[float]] = {"webhook only": [], "player page": []}
        sessions: list[str] = []
        async with ClientSession() as browser:
            await one_run(browser, clock, url, True)  # Warm-up.
            for _ in range(args.runs):
                for name, follow in (("webhook only", False), ("player page", True)):
                    seconds, session_id = await one_run(browser, clock, url, follow)
                    times[name].append(seconds)
                    sessions.append(session_id)
        await asyncio.sleep(args.delay + 2)  # Every late webhook has come.
        doubled = sum(1 for s in sessions if clock.counts.get(s, 0) > 1)
        lost = sum(1 for s in sessions if clock.counts.get(s, 0) == 0)
        status.loop_stop()
        status.disconnect()
        clock.stop()
    finally:
        await system.stop()
    lines = [
        f"# Pay → pulse with Stripe's webhook {args.delay:g} s late ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "| path | runs | p50 (ms) | max (ms) |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in times.items():
        lines.append(
            f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} | {max(values) * 1000:.0f} |"
        )
    lines += ["", f"Pulses lost: {lost}, doubled: {doubled} (of {len(sessions)} payments).", ""]
    text = "\n".join(lines)
    print(text)
    print(json.dumps(times))
    (REPO / "bench" / "redirect_results.md").write_text(text, encoding="utf-8")


async def _qr_url(system: ArcadeSystem) -> str | None:
    state = await system.client.request("GET", f"/api/states/{QR_CODE}")
    url = state.get("attributes", {}).get("url") if isinstance(state, dict) else None
    return str(url) if url and "?c=" in str(url) else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--delay", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
