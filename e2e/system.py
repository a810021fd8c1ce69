"""The whole Arcade Pay system as real processes, for the end-to-end test and the benchmark.

``ArcadeSystem`` starts a private mosquitto, the fake Stripe (in this process), a real Home
Assistant (``python -m homeassistant`` on a fresh config directory) and, optionally, the cabinet
agent; onboards Home Assistant and sets up MQTT, Arcade Pay and cabinets through its REST and
websocket APIs (``dev.bootstrap``, the same code ``scripts/develop`` uses).

The broker runs as the README recommends (tools/dev/mosquitto.acl): no anonymous clients, Home
Assistant as user ``homeassistant``, each cabinet agent as a user named after its machine ID
(``cabinet_login``), limited to its own topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from dev import bootstrap
from fake_stripe import Delivery, FakeStripe
from tests.mosquitto import ACL_FILE, Mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent
MACHINE_ID = "arcadeCabinet-123"
HA_MQTT_USER = "homeassistant"

CONFIGURATION_YAML = """\
# Written by e2e/system.py: the smallest configuration that runs the UI's APIs.
homeassistant:
  name: Arcade Pay end-to-end
frontend:
config:
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
  logs:
    custom_components.arcade_pay: {log_level}
    homeassistant.components.mqtt: {log_level}
"""


@dataclass
class HomeAssistantProcess:
    """A real Home Assistant server on a config directory."""

    config_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of its HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start ``python -m homeassistant`` (the venv's), logging into the config dir."""
        log = (self.config_dir / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "-c", str(self.config_dir), "--skip-pip"],
            stdout=log,
            stderr=log,
            env=self.env,
            start_new_session=True,
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop it gracefully (SIGTERM), killing it if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@dataclass
class ArcadeSystem:
    """Broker, fake Stripe, Home Assistant and cabinet agent(s), wired together."""

    workdir: Path
    log_level: str = "info"
    broker_nodelay: bool = True
    # Extra custom integrations to load from YAML (for example the benchmark's no-op webhook).
    extra_integrations: list[Path] = field(default_factory=list)
    # Home Assistant components to load besides the minimum (the browser suite adds what
    # scripts/develop has for the UI: history and logbook, which bring the recorder).
    components: list[str] = field(default_factory=list)
    broker: Mosquitto = field(init=False)
    fake: FakeStripe = field(init=False)
    ha: HomeAssistantProcess = field(init=False)
    session: ClientSession = field(init=False)
    client: bootstrap.HomeAssistantClient = field(init=False)
    entry_id: str = ""
    webhook_id: str = ""
    links: dict[str, str] = field(default_factory=dict)  # machine id -> payment link id
    # Broker user -> password (made up per run): Home Assistant's, then one per cabinet agent.
    broker_users: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        """Start broker, fake Stripe and Home Assistant; onboard; set up MQTT and Arcade Pay."""
        await self.start_services()
        await self.add_arcade_pay()

    async def start_services(self) -> None:
        """Start broker, fake Stripe and Home Assistant; onboard (user dev/dev); set up MQTT.

        What is left is what an operator adds: Arcade Pay (``add_arcade_pay``) and its cabinets.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "broker").mkdir(exist_ok=True)
        self.broker_users[HA_MQTT_USER] = secrets.token_urlsafe(16)
        self.broker = Mosquitto(
            self.workdir / "broker",
            persistence=True,
            nodelay=self.broker_nodelay,
            acl=ACL_FILE.read_text(encoding="utf-8"),
            users=self.broker_users,
        )
        self.broker.start()
        self.fake = FakeStripe()
        await self.fake.start()
        config = self.workdir / "ha"
        (config / "custom_components").mkdir(parents=True, exist_ok=True)
        link = config / "custom_components" / "arcade_pay"
        if not link.exists():
            link.symlink_to(REPO / "custom_components" / "arcade_pay")
        port = free_port()
        yaml = CONFIGURATION_YAML.format(port=port, log_level=self.log_level)
        yaml += "".join(f"{component}:\n" for component in self.components)
        for integration in self.extra_integrations:
            target = config / "custom_components" / integration.name
            if not target.exists():
                target.symlink_to(integration.resolve())
            yaml += f"{integration.name}:\n"
        (config / "configuration.yaml").write_text(yaml, encoding="utf-8")
        env = os.environ | {"ARCADE_PAY_STRIPE_API_BASE": self.fake.url, "PYTHONPATH": str(REPO)}
        self.ha = HomeAssistantProcess(config, port, env)
        self.ha.start()
        self.session = ClientSession(timeout=ClientTimeout(total=120))
        self.client = bootstrap.HomeAssistantClient(self.session, self.ha.url)
        await bootstrap.wait_for_http(self.client, 180)
        await bootstrap.onboard_or_login(self.client, config / ".token")
        await bootstrap.wait_until_running(self.client, 120)
        await bootstrap.set_core_config(self.client)
        await bootstrap.ensure_mqtt(self.client, "127.0.0.1", self.broker.port, *self.mqtt_login)

    @property
    def mqtt_login(self) -> tuple[str, str]:
        """Home Assistant's broker user and password (the only one that may use every topic)."""
        return HA_MQTT_USER, self.broker_users[HA_MQTT_USER]

    def cabinet_login(self, machine_id: str = MACHINE_ID) -> tuple[str, str]:
        """A broker user for one cabinet (its machine ID), made on first use."""
        if machine_id not in self.broker_users:
            self.broker_users[machine_id] = secrets.token_urlsafe(16)
            self.broker.add_user(machine_id, self.broker_users[machine_id])
        return machine_id, self.broker_users[machine_id]

    async def add_arcade_pay(self) -> None:
        """Add the Arcade Pay entry through its config flow.

        The flow registers its webhook on the fake (Home Assistant has an external URL here);
        the endpoint is added by hand only when the flow could not.
        """
        self.entry_id, self.webhook_id = await bootstrap.ensure_arcade_pay(
            self.client, self.fake.webhook_secret
        )
        url = f"{self.ha.url}/api/webhook/{self.webhook_id}"
        if all(endpoint["url"] != url for endpoint in self.fake.webhook_endpoints.values()):
            self.fake.add_webhook_endpoint(url)

    async def add_cabinet(
        self, machine_id: str = MACHINE_ID, name: str = "Demo cabinet", price: str = "2.00"
    ) -> str:
        """Add a cabinet through the subentry flow; answer its payment link id."""
        await bootstrap.ensure_cabinet(
            self.client,
            self.entry_id,
            {"machine_id": machine_id, "name": name, "price": price, "currency": "usd", "max_quantity": 10},
        )
        link_id = next(
            i
            for i, link in self.fake.payment_links.items()
            if link["metadata"].get("machine_id") == machine_id
        )
        self.links[machine_id] = link_id
        return link_id

    def checkout(self, quantity: int = 1, machine_id: str = MACHINE_ID) -> Delivery:
        """A player pays on the fake Stripe; answer the signed delivery (not sent yet)."""
        return self.fake.complete_checkout(self.links[machine_id], quantity)

    async def deliver(self, delivery: Delivery) -> int:
        """POST a delivery to Home Assistant's webhook as Stripe does; answer the status."""
        async with self.session.post(
            f"{self.ha.url}/api/webhook/{self.webhook_id}", data=delivery.body, headers=delivery.headers
        ) as resp:
            await resp.read()
            return resp.status

    async def state(self, entity_id: str) -> str | None:
        """The state of an entity, or None."""
        try:
            answer = await self.client.request("GET", f"/api/states/{entity_id}", expect=(200,))
        except bootstrap.BootstrapError:
            return None
        return str(answer["state"])

    async def wait_for(self, check: Any, limit: float = 30, interval: float = 0.1) -> Any:
        """Poll an async predicate until it answers truthy."""
        deadline = time.monotonic() + limit
        while True:
            if result := await check():
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met in {limit} s")
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def events(self, event_type: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """Subscribe to a Home Assistant bus event over the websocket API."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        async with self.session.ws_connect(f"{self.ha.url}/api/websocket") as socket:
            await socket.receive_json()
            await socket.send_json({"type": "auth", "access_token": self.client.token})
            assert (await socket.receive_json())["type"] == "auth_ok"
            await socket.send_json({"id": 1, "type": "subscribe_events", "event_type": event_type})
            assert (await socket.receive_json())["success"]

            async def pump() -> None:
                async for message in socket:
                    data = json.loads(message.data)
                    if data.get("type") == "event":
                        queue.put_nowait(data["event"]["data"])

            task = asyncio.create_task(pump())
            try:
                yield queue
            finally:
                task.cancel()

    async def diagnostics(self) -> dict[str, Any]:
        """The Arcade Pay entry's diagnostics."""
        answer = await self.client.request("GET", f"/api/diagnostics/config_entry/{self.entry_id}")
        return dict(answer["data"])

    async def stop_ha_and_clone_cabinets(self, count: int) -> None:
        """Stop Home Assistant and give the entry ``count`` cabinets in its storage.

        Adding 500 cabinets through the UI would reload the entry 500 times; the benchmark
        wants to know what setting up 500 costs, so it writes them the way Home Assistant
        stores subentries, copied from the one added through the flow.
        """
        self.ha.stop()
        path = self.ha.config_dir / ".storage" / "core.config_entries"
        storage = json.loads(path.read_text(encoding="utf-8"))
        entry = next(e for e in storage["data"]["entries"] if e["entry_id"] == self.entry_id)
        template = entry["subentries"][0]
        subentries = []
        for index in range(count):
            machine_id = f"cab-{index:04d}"
            link = self.fake.add_older_link(machine_id, 200)
            price = self.fake.link_items[link["id"]][0]["price"]
            data = template["data"] | {
                "machine_id": machine_id,
                "payment_link_id": link["id"],
                "payment_link_url": link["url"],
                "price_id": price["id"],
                "product_id": price["product"],
            }
            subentries.append(
                template
                | {
                    "data": data,
                    "subentry_id": f"bench{index:06d}",
                    "title": f"Cab {index}",
                    "unique_id": machine_id,
                }
            )
            self.links[machine_id] = link["id"]
        entry["subentries"] = subentries
        path.write_text(json.dumps(storage), encoding="utf-8")

    async def wait_until_loaded(self, limit: float) -> None:
        """Wait until Home Assistant answers and the Arcade Pay entry is loaded."""
        await bootstrap.wait_for_http(self.client, limit)
        await bootstrap.wait_for_entry(self.client, "arcade_pay", self.entry_id, limit)

    async def timed_reload(self) -> float:
        """Reload the Arcade Pay entry through the API; answer the seconds it took."""
        start = time.perf_counter()
        await self.client.request("POST", f"/api/config/config_entries/entry/{self.entry_id}/reload")
        return time.perf_counter() - start

    async def stop(self) -> None:
        """Stop everything that was started."""
        with contextlib.suppress(AttributeError):
            await self.session.close()
        with contextlib.suppress(AttributeError):
            self.ha.stop()
        with contextlib.suppress(AttributeError):
            await self.fake.stop()
        with contextlib.suppress(AttributeError):
            self.broker.stop()


class Agent:
    """The cabinet agent (``arcade-cabinet run``) as a process; coins go into ``coins.log``."""

    def __init__(
        self,
        workdir: Path,
        broker_port: int,
        machine_id: str = MACHINE_ID,
        credits_per_game: int = 1,
        login: tuple[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        """Write the agent's config into ``workdir`` (nothing runs before ``start``).

        ``login``: the broker user and password (``ArcadeSystem.cabinet_login``); ``name``: what
        the cabinet announces itself as (default: its machine ID).
        """
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.state_file = workdir / "state.json"
        self.coins = workdir / "coins.log"
        self.config = workdir / "cabinet.toml"
        coin = [sys.executable, "-c", f"open({str(self.coins)!r}, 'a').write('coin\\n')"]
        self.config.write_text(
            f'machine_id = "{machine_id}"\n'
            + (f"name = {json.dumps(name)}\n" if name else "")
            + f"credits_per_game = {credits_per_game}\n"
            f"coin_command = {json.dumps(coin)}\n"
            "coin_gap_ms = 100\n"
            f'state_file = "{self.state_file}"\n'
            f'control_socket = "{workdir / "control.sock"}"\n'
            "[mqtt]\n"
            'host = "127.0.0.1"\n'
            f"port = {broker_port}\n"
            + (f"username = {json.dumps(login[0])}\npassword = {json.dumps(login[1])}\n" if login else ""),
            encoding="utf-8",
        )
        self.env = os.environ | {"PYTHONPATH": str(REPO / "cabinet")}
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        """The agent's command line for a subcommand."""
        return [sys.executable, "-m", "arcade_cabinet", *args, "--config", str(self.config)]

    def start(self) -> None:
        """Start ``arcade-cabinet run``."""
        log = (self.workdir / "agent.log").open("ab")
        self.process = subprocess.Popen(self.command("run"), env=self.env, stdout=log, stderr=log)

    def kill(self) -> None:
        """Power cut: SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM), killing it if it takes too long."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def game_over(self) -> subprocess.CompletedProcess[str]:
        """Report a game over, as the cabinet's exit hook does."""
        return subprocess.run(
            self.command("game-over"), env=self.env, capture_output=True, text=True, timeout=30, check=False
        )

    def balance(self) -> dict[str, Any]:
        """The agent's saved state (credits, applied payment ids)."""
        if not self.state_file.exists():
            return {}
        return dict(json.loads(self.state_file.read_text(encoding="utf-8")))
