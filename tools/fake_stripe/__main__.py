"""Run the fake Stripe: ``python -m fake_stripe [--port 12111]``."""

from __future__ import annotations

import argparse
import asyncio

from . import DEFAULT_WEBHOOK_SECRET, FakeStripe


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeStripe(webhook_secret=args.webhook_secret, default_currency=args.currency)
    fake.webhook_delay = args.webhook_delay
    url = await fake.start(args.host, args.port)
    for endpoint in args.webhook_url or []:
        fake.add_webhook_endpoint(endpoint)
    print(f"Fake Stripe on {url} (webhook secret {fake.webhook_secret})", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--currency", default="usd")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument(
        "--webhook-delay", type=float, default=0.0, help="seconds between Pay on a checkout and its webhook"
    )
    parser.add_argument("--webhook-url", action="append", help="deliver events to this URL (repeatable)")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
