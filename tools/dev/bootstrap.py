"""Make the scripts/develop Home Assistant usable at once, through its public APIs only.

    python -m dev.bootstrap [setup] [--ha-url URL] [--config-dir DIR] [--mqtt-port N] ...
    python -m dev.bootstrap fake-stripe [--host H] [--port N] [--state FILE]

``setup`` waits for Home Assistant, onboards it (user dev, password dev) or logs in as that
user, creates the MQTT entry and, unless --no-arcade-pay, the Arcade Pay entry against the fake
Stripe, the fake's webhook endpoint for it and a demo cabinet. Each step looks before it acts,
so running it again against the same config directory changes nothing. A long-lived access
token for the dev user ends up in <config dir>/.dev-token (for curl and scripts).

``fake-stripe`` serves the fake Stripe (``fake_stripe.FakeStripe``) and keeps its state in a
JSON file: Home Assistant keeps the cabinets and their payment link ids across restarts, so the
fake has to keep the links (and the webhook endpoint) too, or paying breaks on the second run.

Only the REST and websocket APIs that the frontend itself uses are called (see
homeassistant/components/{onboarding/views.py,auth/login_flow.py,config/config_entries.py}).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime
import json
from pathlib import Path
import signal
import sys
import time
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from fake_stripe import DEFAULT_WEBHOOK_SECRET, FakeStripe

DEV_NAME = "Developer"
DEV_USERNAME = "dev"
DEV_PASSWORD = "dev"  # A throwaway local server; the guide prints it on purpose.
FAKE_API_KEY = "sk_test_dev"  # Any sk_test_ key works against the fake.
DEMO_CABINET: dict[str, Any] = {
    "machine_id": "arcadeCabinet-123",
    "name": "Demo cabinet",
    "price": "2.00",  # Typed text, as in the form (which also takes "2,00").
    "currency": "usd",
    "max_quantity": 10,
}
TOKEN_FILE = ".dev-token"


class BootstrapError(Exception):
    """A step failed in a way that the developer has to look at."""


def log(message: str) -> None:
    """Progress on stdout, prefixed so that it stands out in scripts/develop's output."""
    print(f"bootstrap: {message}", flush=True)


class HomeAssistantClient:
    """The few REST and websocket calls that bootstrap needs."""

    def __init__(self, session: ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        # IndieAuth: the client id is a URL, and redirect URIs must be on the same host.
        self.client_id = f"{self.url}/"
        self.redirect_uri = f"{self.url}/?auth_callback=1"
        self.token: str | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        auth: bool = True,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        """Call the REST API; answer the decoded JSON (or text)."""
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        async with self.session.request(
            method, self.url + path, json=json_body, data=form, headers=headers
        ) as resp:
            text = await resp.text()
            if resp.status not in expect:
                raise BootstrapError(f"{method} {path} answered {resp.status}: {text[:500]}")
            if resp.content_type == "application/json" and text:
                return json.loads(text)
            return text

    async def status(self, path: str) -> int:
        """HTTP status of an authenticated GET."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.get(self.url + path, headers=headers) as resp:
            return resp.status

    async def ws(self, command: dict[str, Any]) -> Any:
        """Run one websocket command (for what has no REST endpoint); answer its result."""
        async with self.session.ws_connect(self.url + "/api/websocket") as socket:
            await socket.receive_json()  # auth_required
            await socket.send_json({"type": "auth", "access_token": self.token})
            if (answer := await socket.receive_json())["type"] != "auth_ok":
                raise BootstrapError(f"websocket authentication failed: {answer}")
            await socket.send_json({"id": 1, **command})
            while True:
                answer = await socket.receive_json()
                if answer.get("id") == 1 and answer.get("type") == "result":
                    break
        if not answer["success"]:
            raise BootstrapError(f"websocket {command['type']} failed: {answer['error']}")
        return answer["result"]

    async def token_from_code(self, code: str) -> str:
        """Trade an authorization code for an access token (OAuth2, as the frontend does)."""
        tokens = await self.request(
            "POST",
            "/auth/token",
            form={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            auth=False,
        )
        return str(tokens["access_token"])


# --- waiting ------------------------------------------------------------------------------


async def onboarding_steps(ha: HomeAssistantClient) -> dict[str, bool] | None:
    """Which onboarding steps are done; None while Home Assistant does not answer.

    The server starts listening only once the frontend and so onboarding are set up, and
    onboarding registers its views only while some step is left: 404 means all done.
    """
    async with ha.session.get(f"{ha.url}/api/onboarding") as resp:
        if resp.status == 404:
            return {"user": True, "core_config": True, "analytics": True, "integration": True}
        if resp.status != 200:
            return None
        return {s["step"]: s["done"] for s in await resp.json()}


async def wait_for_http(ha: HomeAssistantClient, limit: float) -> None:
    """Wait until Home Assistant's HTTP server answers."""
    deadline = time.monotonic() + limit
    next_note = time.monotonic() + 15
    while True:
        with contextlib.suppress(ClientError, TimeoutError):  # Not listening yet.
            if await onboarding_steps(ha) is not None:
                return
        if time.monotonic() > deadline:
            raise BootstrapError(f"Home Assistant did not answer on {ha.url} in {limit:.0f} s")
        if time.monotonic() > next_note:
            log(f"still waiting for Home Assistant on {ha.url} ...")
            next_note = time.monotonic() + 15
        await asyncio.sleep(1)


async def wait_until_running(ha: HomeAssistantClient, limit: float) -> None:
    """Wait until startup finished, so that integrations (MQTT) are set up before their flows run."""
    deadline = time.monotonic() + limit
    while (config := await ha.request("GET", "/api/config"))["state"] != "RUNNING":
        if time.monotonic() > deadline:
            raise BootstrapError(f"Home Assistant is still {config['state']} after {limit:.0f} s")
        await asyncio.sleep(1)
    if config.get("recovery_mode"):
        raise BootstrapError(
            "Home Assistant started in recovery mode (broken configuration or missing frontend); "
            "see home-assistant.log in the config directory"
        )


async def wait_for_entry(ha: HomeAssistantClient, domain: str, entry_id: str, limit: float = 60) -> None:
    """Wait until a config entry is loaded; fail on a setup error."""
    deadline = time.monotonic() + limit
    while True:
        entries = await ha.request("GET", f"/api/config/config_entries/entry?domain={domain}")
        state = next((e["state"] for e in entries if e["entry_id"] == entry_id), "missing")
        if state == "loaded":
            return
        if state in ("setup_error", "migration_error", "missing") or time.monotonic() > deadline:
            raise BootstrapError(
                f"the {domain} entry is {state}; see home-assistant.log in the config directory"
            )
        await asyncio.sleep(1)


# --- onboarding and login -------------------------------------------------------------------


async def login(ha: HomeAssistantClient) -> str:
    """Log in as dev/dev through the login flow API; answer an access token."""
    flow = await ha.request(
        "POST",
        "/auth/login_flow",
        json_body={
            "client_id": ha.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": ha.redirect_uri,
        },
        auth=False,
    )
    result = await ha.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        json_body={"client_id": ha.client_id, "username": DEV_USERNAME, "password": DEV_PASSWORD},
        auth=False,
    )
    if result.get("type") != "create_entry":
        raise BootstrapError(
            f"logging in as {DEV_USERNAME}/{DEV_PASSWORD} failed ({result.get('errors')}). If you changed "
            f"that user, put a long-lived token into {TOKEN_FILE} in the config directory, or start "
            "afresh with scripts/develop --reset"
        )
    return await ha.token_from_code(result["result"])


def _read_token(token_file: Path) -> str | None:
    if not token_file.exists():
        return None
    return token_file.read_text(encoding="utf-8").strip() or None


def _write_token(token_file: Path, token: str) -> None:
    token_file.touch(mode=0o600)  # Before writing: it is a password.
    token_file.write_text(f"{token}\n", encoding="utf-8")


async def onboard_or_login(ha: HomeAssistantClient, token_file: Path) -> None:
    """Finish whatever onboarding is left and leave a valid token in ``ha.token`` and token_file."""
    if (steps := await onboarding_steps(ha)) is None:
        raise BootstrapError("Home Assistant stopped answering during startup")
    fresh_token = False
    if not steps.get("user"):
        log(f"onboarding: creating the owner user {DEV_USERNAME!r} (password {DEV_PASSWORD!r})")
        answer = await ha.request(
            "POST",
            "/api/onboarding/users",
            json_body={
                "client_id": ha.client_id,
                "name": DEV_NAME,
                "username": DEV_USERNAME,
                "password": DEV_PASSWORD,
                "language": "en",
            },
            auth=False,
        )
        ha.token = await ha.token_from_code(answer["auth_code"])
        fresh_token = True
    else:
        ha.token = _read_token(token_file)
        if not ha.token or await ha.status("/api/") != 200:
            log(f"logging in as {DEV_USERNAME}")
            ha.token = await login(ha)
            fresh_token = True
        else:
            log(f"using the token in {token_file}")

    # The remaining steps need a logged-in user; the frontend does them in this order.
    if not steps.get("core_config"):
        log("onboarding: core_config")
        await ha.request("POST", "/api/onboarding/core_config", json_body={})
    if not steps.get("analytics"):
        log("onboarding: analytics (nothing is sent: analytics stay off)")
        await ha.request("POST", "/api/onboarding/analytics", json_body={})
    if not steps.get("integration"):
        log("onboarding: integration")
        await ha.request(
            "POST",
            "/api/onboarding/integration",
            json_body={"client_id": ha.client_id, "redirect_uri": ha.redirect_uri},
        )

    if fresh_token:
        # Access tokens live 30 minutes; keep a long-lived one for curl and later runs.
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        ha.token = await ha.ws(
            {
                "type": "auth/long_lived_access_token",
                "client_name": f"scripts/develop {stamp}",  # Names must be unique per user.
                "lifespan": 3650,
            }
        )
        _write_token(token_file, ha.token)
        log(f"long-lived token for {DEV_USERNAME} written to {token_file}")


async def set_core_config(ha: HomeAssistantClient) -> None:
    """Fill in what the frontend's onboarding would have asked for, where it is still unset.

    The internal URL makes the UI show whole webhook URLs rather than bare paths; the external
    URL (this local address: a test key's webhook may use http) lets Arcade Pay's one-step setup
    register its webhook endpoint on the fake Stripe, as it does on Stripe with a public URL; the
    country keeps the "country has not been configured" repair away. Set through the API rather than
    configuration.yaml: any core key in YAML makes the whole General settings page read-only.
    """
    config = await ha.request("GET", "/api/config")
    changes: dict[str, str] = {}
    if not config.get("internal_url"):
        changes["internal_url"] = ha.url
    if not config.get("external_url"):
        changes["external_url"] = ha.url
    if not config.get("country"):
        changes["country"] = "US"  # The demo cabinet charges USD.
    if changes:
        await ha.ws({"type": "config/core/update", **changes})
        log("core settings: " + ", ".join(f"{key} {value}" for key, value in changes.items()))


# --- config entries -------------------------------------------------------------------------


async def entries_of(ha: HomeAssistantClient, domain: str) -> list[dict[str, Any]]:
    """Config entries of a domain."""
    return list(await ha.request("GET", f"/api/config/config_entries/entry?domain={domain}"))


async def config_flow(ha: HomeAssistantClient, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
    """Start a config flow and submit ``steps`` in turn; answer the last result."""
    result: dict[str, Any] = await ha.request(
        "POST", "/api/config/config_entries/flow", json_body={"handler": handler}
    )
    return await config_flow_continue(ha, result, *steps)


async def config_flow_continue(
    ha: HomeAssistantClient, result: dict[str, Any], *steps: dict[str, Any]
) -> dict[str, Any]:
    """Submit ``steps`` in turn to a flow at ``result``, while it asks; answer the last result."""
    for user_input in steps:
        if result["type"] not in ("form", "menu"):
            break
        result = await ha.request(
            "POST", f"/api/config/config_entries/flow/{result['flow_id']}", json_body=user_input
        )
    return result


def expect_created(what: str, result: dict[str, Any]) -> None:
    """Fail unless a flow ended by creating its entry."""
    if result["type"] != "create_entry":
        detail = result.get("errors") or result.get("reason") or result
        raise BootstrapError(f"{what} was not created: {result['type']} {detail}")


async def remove_failed_onboarding_extras(ha: HomeAssistantClient) -> None:
    """Remove what onboarding added but cannot run here.

    Finishing onboarding's core_config step makes Home Assistant add Google Translate, Met.no,
    Radio Browser and the shopping list. The first three need packages that the dev venv does
    not have (Home Assistant runs with --skip-pip), so the first start logs errors for them and
    Google Translate is left behind as an entry that fails at every start.
    """
    deadline = time.monotonic() + 10
    while True:
        entries = await ha.request("GET", "/api/config/config_entries/entry")
        onboarded = [e for e in entries if e.get("source") == "onboarding"]
        if time.monotonic() > deadline or all(e["state"] != "setup_in_progress" for e in onboarded):
            break
        await asyncio.sleep(0.5)
    for entry in onboarded:
        if entry["state"] in ("setup_error", "setup_retry"):
            await ha.request("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
            log(
                f"removed {entry['title']!r}, which onboarding added but which cannot run without its "
                "packages (the first start's log has errors about it, and about met and radio_browser)"
            )


async def ensure_mqtt(
    ha: HomeAssistantClient, host: str, port: int, username: str | None = None, password: str | None = None
) -> None:
    """One MQTT entry, pointing at the private broker (as ``username``, when it has users)."""
    if entries := await entries_of(ha, "mqtt"):
        log(f"MQTT: entry {entries[0]['title']!r} exists")
        entry_id = entries[0]["entry_id"]
    else:
        login = {"username": username, "password": password} if username else {}
        result = await config_flow(ha, "mqtt", {"broker": host, "port": port} | login)
        expect_created("the MQTT entry", result)
        entry_id = result["result"]["entry_id"]
        log(f"MQTT: entry created for {host}:{port}")
    await wait_for_entry(ha, "mqtt", entry_id)


async def ensure_arcade_pay(ha: HomeAssistantClient, webhook_secret: str) -> tuple[str, str]:
    """One Arcade Pay entry on the fake Stripe; answer its entry id and webhook id."""
    if entries := await entries_of(ha, "arcade_pay"):
        entry_id = entries[0]["entry_id"]
        log(f"Arcade Pay: entry {entries[0]['title']!r} exists")
        await wait_for_entry(ha, "arcade_pay", entry_id)
        webhook_url = await webhook_url_from_options(ha, entry_id)
    else:
        deadline = time.monotonic() + 60
        while True:
            # The key only: Arcade Pay registers its endpoint on the fake Stripe (set_core_config
            # gave Home Assistant an external URL). Without one, the manual path: the endpoint is
            # registered on the fake by hand, with its shared secret.
            result = await config_flow(ha, "arcade_pay", {"api_key": FAKE_API_KEY})
            if result.get("type") == "menu":
                result = await config_flow_continue(
                    ha, result, {"next_step_id": "manual"}, {"webhook_secret": webhook_secret}
                )
            # MQTT may still be connecting right after its entry was created.
            if result.get("reason") != "mqtt_not_configured" or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        expect_created("the Arcade Pay entry", result)
        entry_id = result["result"]["entry_id"]
        webhook_url = result["description_placeholders"]["webhook_url"]
        log(f"Arcade Pay: entry {result['title']!r} created")
        await wait_for_entry(ha, "arcade_pay", entry_id)
    return entry_id, webhook_url.rstrip("/").rsplit("/", 1)[-1]


async def webhook_url_from_options(ha: HomeAssistantClient, entry_id: str) -> str:
    """The options form shows the webhook URL; open it, read it, and cancel the flow."""
    form = await ha.request(
        "POST", "/api/config/config_entries/options/flow", json_body={"handler": entry_id}
    )
    await ha.request("DELETE", f"/api/config/config_entries/options/flow/{form['flow_id']}")
    try:
        return str(form["description_placeholders"]["webhook_url"])
    except (KeyError, TypeError) as err:
        raise BootstrapError(f"the Arcade Pay options form shows no webhook_url: {form}") from err


async def ensure_cabinet(ha: HomeAssistantClient, entry_id: str, cabinet: dict[str, Any]) -> None:
    """The demo cabinet, added through the subentry flow like the UI's "Add cabinet"."""
    subentries = await ha.ws({"type": "config_entries/subentries/list", "entry_id": entry_id})
    if any(s.get("unique_id") == cabinet["machine_id"] for s in subentries):
        log(f"cabinet {cabinet['machine_id']} exists")
        return
    result = await ha.request(
        "POST",
        "/api/config/config_entries/subentries/flow",
        json_body={"handler": [entry_id, "cabinet"]},
    )
    for user_input in ({"next_step_id": "new_link"}, cabinet):
        if result["type"] not in ("form", "menu"):
            break
        result = await ha.request(
            "POST", f"/api/config/config_entries/subentries/flow/{result['flow_id']}", json_body=user_input
        )
    expect_created(f"cabinet {cabinet['machine_id']}", result)
    log(f"cabinet {cabinet['machine_id']} ({cabinet['name']}) created")
    # Adding a subentry reloads the entry in the background. The reload is over once the new
    # subentry has entities and the entry is loaded again (asking the entry for diagnostics in
    # the middle of its reload would find its ledger closed).
    subentries = await ha.ws({"type": "config_entries/subentries/list", "entry_id": entry_id})
    subentry_id = next(s["subentry_id"] for s in subentries if s.get("unique_id") == cabinet["machine_id"])
    deadline = time.monotonic() + 60
    while not any(
        e.get("config_subentry_id") == subentry_id
        for e in await ha.ws({"type": "config/entity_registry/list"})
    ):
        if time.monotonic() > deadline:
            raise BootstrapError(f"cabinet {cabinet['machine_id']} got no entities; see home-assistant.log")
        await asyncio.sleep(1)
    await wait_for_entry(ha, "arcade_pay", entry_id)


async def running_cabinets(ha: HomeAssistantClient, entry_id: str) -> dict[str, Any]:
    """The loaded entry's cabinets as its diagnostics show them ({} while it is not loaded)."""
    try:
        diagnostics = await ha.request("GET", f"/api/diagnostics/config_entry/{entry_id}")
        return dict(diagnostics["data"]["cabinets"])
    except (BootstrapError, KeyError, TypeError):
        return {}


# --- the fake Stripe ----------------------------------------------------------------------------


async def ensure_webhook_endpoint(session: ClientSession, fake_url: str, url: str) -> None:
    """Register Home Assistant's webhook on the fake, as a developer would on its page."""
    async with session.get(
        f"{fake_url}/v1/webhook_endpoints", headers={"Authorization": f"Bearer {FAKE_API_KEY}"}
    ) as resp:
        resp.raise_for_status()
        known = {e["url"] for e in (await resp.json())["data"]}
    if url in known:
        log(f"fake Stripe already delivers to {url}")
        return
    async with session.post(f"{fake_url}/", data={"url": url}, allow_redirects=False) as resp:
        if resp.status >= 400:
            raise BootstrapError(f"the fake Stripe refused the webhook endpoint: {resp.status}")
    log(f"fake Stripe now delivers events to {url}")


async def cabinet_links(
    ha: HomeAssistantClient, session: ClientSession, fake_url: str, entry_id: str
) -> dict[str, tuple[str, bool]]:
    """Machine id -> (payment link id, whether the fake knows it), from the entry's diagnostics."""
    if not (cabinets := await running_cabinets(ha, entry_id)):
        log("could not read the cabinets' payment links from the entry's diagnostics")
        return {}
    links: dict[str, tuple[str, bool]] = {}
    for machine_id, cabinet in cabinets.items():
        link_id = cabinet["payment_link_id"]
        async with session.get(
            f"{fake_url}/v1/payment_links/{link_id}", headers={"Authorization": f"Bearer {FAKE_API_KEY}"}
        ) as resp:
            links[machine_id] = (link_id, resp.status == 200)
    return links


async def device_summary(ha: HomeAssistantClient, entry_id: str) -> list[tuple[str, str, list[str]]]:
    """(device name, device id, entity ids) of the entry's cabinets."""
    devices = await ha.ws({"type": "config/device_registry/list"})
    entities = await ha.ws({"type": "config/entity_registry/list"})
    summary = []
    for device in devices:
        if entry_id in device["config_entries"]:
            ids = sorted(e["entity_id"] for e in entities if e.get("device_id") == device["id"])
            summary.append((device["name_by_user"] or device["name"], device["id"], ids))
    return summary


# --- setup --------------------------------------------------------------------------------------


async def setup(args: argparse.Namespace) -> None:
    """Everything that a developer would otherwise click through."""
    config_dir = Path(args.config_dir)
    fake_url = args.fake_stripe_url.rstrip("/")
    async with ClientSession(timeout=ClientTimeout(total=60)) as session:
        ha = HomeAssistantClient(session, args.ha_url)
        started = time.monotonic()
        await wait_for_http(ha, args.timeout)
        log(f"Home Assistant answers on {ha.url} (after {time.monotonic() - started:.0f} s)")
        await onboard_or_login(ha, config_dir / TOKEN_FILE)
        await wait_until_running(ha, args.timeout)
        await set_core_config(ha)
        await ensure_mqtt(ha, args.mqtt_host, args.mqtt_port, args.mqtt_username, args.mqtt_password)
        await remove_failed_onboarding_extras(ha)
        if not args.with_arcade_pay:
            print_guide(args, ha, fake_url, None, {}, [])
            return
        entry_id, webhook_id = await ensure_arcade_pay(ha, args.webhook_secret)
        await ensure_webhook_endpoint(session, fake_url, f"{ha.url}/api/webhook/{webhook_id}")
        await ensure_cabinet(ha, entry_id, DEMO_CABINET)
        links = await cabinet_links(ha, session, fake_url, entry_id)
        for machine_id, (link_id, known) in links.items():
            if not known:
                log(
                    f"WARNING: the fake Stripe does not know {machine_id}'s payment link {link_id} "
                    "(was its state file removed?): delete that cabinet in Home Assistant and add it "
                    "again, or start afresh with scripts/develop --reset"
                )
        print_guide(args, ha, fake_url, entry_id, links, await device_summary(ha, entry_id))


def print_guide(
    args: argparse.Namespace,
    ha: HomeAssistantClient,
    fake_url: str,
    entry_id: str | None,
    links: dict[str, tuple[str, bool]],
    devices: list[tuple[str, str, list[str]]],
) -> None:
    """What to open and what to type next."""
    public = ha.url.replace("127.0.0.1", "localhost")
    lines = [
        "",
        "=" * 78,
        f"Home Assistant   {public}   (user {DEV_USERNAME}, password {DEV_PASSWORD})",
        f"API token        {Path(args.config_dir) / TOKEN_FILE}   "
        f'(curl -H "Authorization: Bearer $(cat {Path(args.config_dir) / TOKEN_FILE})" {ha.url}/api/states)',
    ]
    if entry_id is not None:
        lines.append(f"Arcade Pay       {public}/config/integrations/integration/arcade_pay")
    else:
        lines += [
            f"Add Arcade Pay   {public}/config/integrations/dashboard > Add integration > Arcade Pay:",
            "                   the API key (any sk_test_...) is all it asks for; it registers its",
            "                   webhook on the fake Stripe itself. Then add the simulated cabinet from",
            "                   Discovered (Arcade cabinet ...) with a price.",
        ]
    for name, device_id, entity_ids in devices:
        lines.append(f"Cabinet device   {name}: {public}/config/devices/device/{device_id}")
        lines.extend(f"                   {entity_id}" for entity_id in entity_ids)
    lines.append(f"Fake Stripe      {fake_url}   (secret of endpoints added by hand: {args.webhook_secret})")
    for machine_id, (link_id, known) in links.items():
        if known:
            lines.append(f"Pay {machine_id}   {fake_url}/pay/{link_id}   (choose credits, click Pay)")
    login = f" -u {args.mqtt_username} -P '{args.mqtt_password}'" if args.mqtt_username else ""
    broker = f"-h {args.mqtt_host} -p {args.mqtt_port}{login}"
    lines += [
        f"Coin pulses      mosquitto_sub {broker} -t 'arcade/machine/#' -v",
        "=" * 78,
        "",
    ]
    print("\n".join(lines), flush=True)


# --- the fake Stripe with its state in a file ----------------------------------------------------


def _state_fields(fake: FakeStripe) -> list[str]:
    """The fake's state: its dict fields (products, links, sessions, endpoints, ...)."""
    return [f.name for f in dataclasses.fields(fake) if isinstance(getattr(fake, f.name), dict)]


def _snapshot(fake: FakeStripe) -> str:
    return json.dumps({name: getattr(fake, name) for name in _state_fields(fake)}, sort_keys=True)


def _load_state(fake: FakeStripe, state_file: Path) -> bool:
    """Fill the fake with a saved state; False when there is none."""
    if not state_file.exists():
        return False
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    for name in _state_fields(fake):
        getattr(fake, name).update(saved.get(name, {}))
    return True


def _save(state_file: Path, snapshot: str) -> None:
    partial = state_file.with_suffix(".tmp")
    partial.write_text(snapshot, encoding="utf-8")
    partial.replace(state_file)  # Atomic: a crash never leaves half a file.


async def serve_fake_stripe(args: argparse.Namespace) -> None:
    """Serve the fake until SIGINT/SIGTERM, saving its state whenever it changed."""
    fake = FakeStripe(webhook_secret=args.webhook_secret)
    state_file: Path | None = Path(args.state) if args.state else None
    if state_file is not None and _load_state(fake, state_file):
        print(f"Fake Stripe: state loaded from {state_file}", flush=True)
    url = await fake.start(args.host, args.port)
    print(f"Fake Stripe on {url} (webhook secret {fake.webhook_secret})", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    last = _snapshot(fake)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1)
        if state_file is not None and (now := _snapshot(fake)) != last:
            _save(state_file, now)
            last = now
    await fake.stop()


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run a command (setup when none is named)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("setup", "fake-stripe", "-h", "--help"):
        argv = ["setup", *argv]
    parser = argparse.ArgumentParser(prog="python -m dev.bootstrap", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    setup_parser = commands.add_parser("setup", help="onboard Home Assistant and add the entries")
    setup_parser.add_argument("--ha-url", default="http://127.0.0.1:8123")
    setup_parser.add_argument("--config-dir", default="dev-config", help="where .dev-token goes")
    setup_parser.add_argument("--mqtt-host", default="127.0.0.1")
    setup_parser.add_argument("--mqtt-port", type=int, default=1883)
    setup_parser.add_argument("--mqtt-username", help="Home Assistant's broker user, if it has users")
    setup_parser.add_argument("--mqtt-password", help="its password (a local throwaway broker's)")
    setup_parser.add_argument("--fake-stripe-url", default="http://127.0.0.1:12111")
    setup_parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    setup_parser.add_argument(
        "--with-arcade-pay",
        action="store_true",
        help="also add Arcade Pay, its webhook on the fake Stripe and a demo cabinet",
    )
    setup_parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for startup")

    fake_parser = commands.add_parser("fake-stripe", help="serve the fake Stripe, state kept in a file")
    fake_parser.add_argument("--host", default="127.0.0.1")
    fake_parser.add_argument("--port", type=int, default=12111)
    fake_parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    fake_parser.add_argument("--state", help="JSON file to load the state from and save it to")

    args = parser.parse_args(argv)
    try:
        asyncio.run(setup(args) if args.command == "setup" else serve_fake_stripe(args))
    except BootstrapError as err:
        log(f"FAILED: {err}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
