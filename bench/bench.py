"""Arcade Pay end-to-end benchmark: how fast a payment becomes a credit, and what scale costs.

    .venv/bin/python bench/bench.py [--payments 300] [--quick] [--out bench/results]

Runs the real system (e2e/system.py: mosquitto, fake Stripe, a real Home Assistant, a cabinet)
and reports, for payments sent one at a time and 8 at a time: time from the signed webhook POST
to the coin pulse at the cabinet (p50/p95/p99/max), webhook response time, throughput, credits
lost or doubled; the same for a do-nothing webhook in the same Home Assistant (the floor its HTTP
stack sets); Home Assistant setup time and memory with 10/100/500 cabinets; webhook latency with
a ledger of 100 000 past payments. Writes results.json and results.md.

The cabinet here is an MQTT client in this process that timestamps each pulse on arrival and
acknowledges it, as the cabinet agent does; its clock is the one the POST was timed with.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
from pathlib import Path
import platform
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from paho.mqtt import client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from custom_components.arcade_pay.core.ledger import Payment, PaymentLedger, PaymentSource  # noqa: E402
from e2e.system import ArcadeSystem  # noqa: E402
from fake_stripe import Delivery, sign  # noqa: E402

NOOP = REPO / "bench" / "custom_components" / "bench_noop"


class PulseClock:
    """A cabinet: records when each coin pulse arrives and acknowledges it."""

    def __init__(self, port: int, loop: asyncio.AbstractEventLoop, login: tuple[str, str]) -> None:
        self.arrivals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.credits: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._loop = loop
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-cabinet")
        # It answers for every cabinet, which no cabinet's own user may: Home Assistant's user.
        self.client.username_pw_set(*login)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("arcade/machine/+/coinpulse", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        pulse = json.loads(message.payload)
        payment_id = pulse["paymentId"]
        with self._lock:
            first = payment_id not in self.arrivals
            self.counts[payment_id] = self.counts.get(payment_id, 0) + 1
            if first:
                self.arrivals[payment_id] = now
                self.credits[payment_id] = pulse["credits"]
            waiter = self._waiters.pop(payment_id, None)
        machine = message.topic.split("/")[-2]
        client.publish(f"arcade/machine/{machine}/ack", json.dumps({"paymentId": payment_id}), qos=1)
        if first and waiter is not None:
            self._loop.call_soon_threadsafe(_resolve, waiter, now)

    def expect(self, payment_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = self._loop.create_future()
        with self._lock:
            if payment_id in self.arrivals:
                future.set_result(self.arrivals[payment_id])
            else:
                self._waiters[payment_id] = future
        return future

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _resolve(future: asyncio.Future[float], value: float) -> None:
    if not future.done():
        future.set_result(value)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {
        "p50": round(pick(0.50), 3),
        "p95": round(pick(0.95), 3),
        "p99": round(pick(0.99), 3),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(statistics.fmean(ordered) * 1000, 3),
    }


@dataclass
class Run:
    """One measured series."""

    name: str
    pulse: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    lost: int = 0
    doubled: int = 0

    def summary(self) -> dict[str, Any]:
        count = len(self.response)
        return {
            "payments": count,
            "statuses": self.statuses,
            "pulse_latency_ms": percentiles(self.pulse) if self.pulse else None,
            "response_ms": percentiles(self.response) if self.response else None,
            "throughput_per_s": round(count / self.seconds, 1) if self.seconds else None,
            "lost": self.lost,
            "doubled": self.doubled,
        }


async def pay_one(system: ArcadeSystem, cabinet: PulseClock, run: Run, delivery: Delivery) -> None:
    session_id = delivery.event["data"]["object"]["id"]
    arrival = cabinet.expect(session_id)
    start = time.perf_counter()
    status = await system.deliver(delivery)
    run.response.append(time.perf_counter() - start)
    run.statuses[status] = run.statuses.get(status, 0) + 1
    try:
        run.pulse.append(await asyncio.wait_for(arrival, 10) - start)
    except TimeoutError:
        pass


async def measure_payments(
    system: ArcadeSystem, cabinet: PulseClock, name: str, count: int, concurrency: int
) -> Run:
    """Pay ``count`` times with ``concurrency`` payments in flight."""
    run = Run(name)
    deliveries = [system.checkout(1 + i % 3) for i in range(count)]
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(delivery: Delivery) -> None:
        async with semaphore:
            await pay_one(system, cabinet, run, delivery)

    start = time.perf_counter()
    await asyncio.gather(*(bounded(d) for d in deliveries))
    run.seconds = time.perf_counter() - start
    await asyncio.sleep(0.5)  # late duplicates, if any
    for delivery in deliveries:
        session = delivery.event["data"]["object"]
        seen = cabinet.counts.get(session["id"], 0)
        if seen == 0:
            run.lost += 1
        elif cabinet.credits[session["id"]] != session["amount_subtotal"] // 200:
            run.doubled += 1  # wrong credits count as a failure too
    # Re-sent pulses (same paymentId) are not doubles: the cabinet applies each id once.
    return run


async def measure_noop(system: ArcadeSystem, name: str, count: int, concurrency: int) -> Run:
    """The same requests against a webhook that only reads the body."""
    run = Run(name)
    body = json.dumps({"id": "evt_bench", "type": "noop", "data": {"object": {}}})
    headers = {"Stripe-Signature": sign(body, system.fake.webhook_secret), "Content-Type": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            start = time.perf_counter()
            async with system.session.post(
                f"{system.ha.url}/api/webhook/bench_noop", data=body, headers=headers
            ) as r:
                await r.read()
                run.statuses[r.status] = run.statuses.get(r.status, 0) + 1
            run.response.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    run.seconds = time.perf_counter() - start
    return run


async def profile(system: ArcadeSystem, cabinet: PulseClock, out: Path, count: int) -> None:
    """Sample Home Assistant with py-spy while it takes payments 8 at a time; summarize."""
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "profile-concurrency8.txt"
    assert system.ha.process is not None
    spy = await asyncio.create_subprocess_exec(
        "py-spy",
        "record",
        "--format",
        "raw",
        "--rate",
        "100",
        "--nonblocking",
        "-o",
        str(raw),
        "-p",
        str(system.ha.process.pid),
    )
    await asyncio.sleep(1)
    await measure_payments(system, cabinet, "profile", count * 4, 8)
    spy.send_signal(2)
    await spy.wait()
    totals: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        weight = int(count_text)
        samples += weight
        seen: set[str] = set()
        for frame in stack.split(";"):
            module = _area(frame)
            if module not in seen:
                seen.add(module)
                totals[module] = totals.get(module, 0) + weight
    summary = out / "profile-summary.txt"
    lines = [f"{samples} samples; share of samples whose stack passes through:"]
    lines += [
        f"{100 * n / samples:5.1f} %  {area}"
        for area, n in sorted(totals.items(), key=lambda kv: -kv[1])[:40]
    ]
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:30]), flush=True)


def _area(frame: str) -> str:
    """Group a py-spy frame ("function (path/file.py:line)") by package and function."""
    function, _, where = frame.partition(" (")
    path = where.split(":")[0]
    for marker in ("site-packages/", "lib/python3.13/", "custom_components/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{function}"


def fill_ledger(path: Path, count: int) -> float:
    """Write ``count`` past payments into the ledger file (Home Assistant keeps running)."""
    ledger = PaymentLedger(path)
    ledger.open()
    start = time.perf_counter()
    batch = 0
    received = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(count):
        ledger.record(
            Payment(
                f"cs_past_{index:07d}",
                "pastCabinet",
                1,
                200,
                "usd",
                PaymentSource.STRIPE,
                received,
                f"pi_{index}",
            )
        )
        batch += 1
    ledger.close()
    return time.perf_counter() - start


async def measure_scale(workdir: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Home Assistant start-up and Arcade Pay setup time and memory with many cabinets."""
    results = []
    for size in sizes:
        system = ArcadeSystem(workdir / f"scale-{size}", log_level="warning")
        try:
            await system.start()
            rss_before = system.ha.rss_bytes()
            await system.add_cabinet()
            await system.stop_ha_and_clone_cabinets(size)
            start = time.perf_counter()
            system.ha.start()
            await system.wait_until_loaded(120)
            start_seconds = time.perf_counter() - start
            rss_after = system.ha.rss_bytes()
            reload_seconds = await system.timed_reload()
            states = await system.client.request("GET", "/api/states")
            entities = sum(1 for s in states if s["entity_id"].startswith(("sensor.cab_", "sensor.demo_")))
            results.append(
                {
                    "cabinets": size,
                    "ha_start_to_entry_loaded_s": round(start_seconds, 2),
                    "entry_reload_s": round(reload_seconds, 3),
                    "rss_mb": round(rss_after / 2**20, 1),
                    "rss_mb_without_cabinets": round(rss_before / 2**20, 1),
                    "cabinet_sensors": entities,
                }
            )
        finally:
            await system.stop()
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines = [f"# Arcade Pay benchmark ({results['when']}, {results['machine']})", ""]
    lines += [
        "| series | payments | pulse p50 | p95 | p99 | max | response p50 | p99 | payments/s | lost | doubled |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in results["runs"].items():
        pulse = run["pulse_latency_ms"] or {}
        response = run["response_ms"] or {}
        lines.append(
            f"| {name} | {run['payments']} | {pulse.get('p50', '–')} | {pulse.get('p95', '–')} | "
            f"{pulse.get('p99', '–')} | {pulse.get('max', '–')} | {response.get('p50', '–')} | "
            f"{response.get('p99', '–')} | {run['throughput_per_s']} | {run['lost']} | {run['doubled']} |"
        )
    lines += ["", "Times in ms. Pulse: signed webhook POST sent → coin pulse received by the cabinet.", ""]
    if scale := results.get("scale"):
        lines += [
            "| cabinets | HA start → entry loaded (s) | entry reload (s) | RSS (MB) | RSS without cabinets (MB) |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['cabinets']} | {r['ha_start_to_entry_loaded_s']} | {r['entry_reload_s']} | {r['rss_mb']} | "
            f"{r['rss_mb_without_cabinets']} |"
            for r in scale
        ]
        lines.append("")
    lines += ["## Targets", ""]
    lines += [
        f"* {target}: {'met' if met else 'NOT met'} ({detail})" for target, met, detail in results["targets"]
    ]
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    runs = results["runs"]
    sequential = runs["arcade_pay sequential"]["pulse_latency_ms"]["p99"]
    concurrent = runs["arcade_pay concurrency 8"]["pulse_latency_ms"]["p99"]
    product = runs["arcade_pay concurrency 8"]["throughput_per_s"]
    floor = runs["noop concurrency 8"]["throughput_per_s"]
    checks = [
        ("sequential p99 pulse latency ≤ 4 ms", sequential <= 4, f"{sequential} ms"),
        ("concurrency 8 p99 pulse latency ≤ 40 ms", concurrent <= 40, f"{concurrent} ms"),
        ("throughput ≥ 0.95 × no-op webhook", product >= 0.95 * floor, f"{product} vs {floor} /s"),
        ("0 lost, 0 doubled", all(r["lost"] == 0 and r["doubled"] == 0 for r in runs.values()), "all series"),
    ]
    if "arcade_pay sequential, 100k ledger" in runs:
        big = runs["arcade_pay sequential, 100k ledger"]["response_ms"]["p50"]
        empty = runs["arcade_pay sequential"]["response_ms"]["p50"]
        checks.append(
            (
                "webhook latency with 100 000 past payments within 10 %",
                big <= empty * 1.1,
                f"p50 {big} vs {empty} ms",
            )
        )
    if scale := results.get("scale"):
        biggest = max(scale, key=lambda r: r["cabinets"])
        checks.append(
            (
                f"setup of {biggest['cabinets']} cabinets under 5 s",
                biggest["entry_reload_s"] < 5,
                f"{biggest['entry_reload_s']} s",
            )
        )
    return checks


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="arcade-bench-"))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}",
        "runs": {},
    }
    system = ArcadeSystem(
        workdir / "main", log_level="warning", extra_integrations=[NOOP], broker_nodelay=args.nodelay
    )
    try:
        await system.start()
        await system.add_cabinet()
        cabinet = PulseClock(system.broker.port, asyncio.get_running_loop(), system.mqtt_login)
        await measure_payments(system, cabinet, "warm-up", 30, 1)
        await measure_noop(system, "warm-up", 30, 1)
        n = args.payments
        if args.profile:
            await profile(system, cabinet, args.out, n)
        for name, runner in (
            ("noop sequential", lambda: measure_noop(system, "noop", n, 1)),
            ("arcade_pay sequential", lambda: measure_payments(system, cabinet, "seq", n, 1)),
            ("noop concurrency 8", lambda: measure_noop(system, "noop8", n, 8)),
            ("arcade_pay concurrency 8", lambda: measure_payments(system, cabinet, "conc", n, 8)),
        ):
            results["runs"][name] = (await runner()).summary()
            print(name, json.dumps(results["runs"][name]), flush=True)
        if not args.quick:
            ledger_file = next((system.ha.config_dir / "arcade_pay").glob("ledger_*.sqlite3"))
            seconds = await asyncio.to_thread(fill_ledger, ledger_file, 100_000)
            results["ledger_fill_seconds"] = round(seconds, 1)
            results["runs"]["arcade_pay sequential, 100k ledger"] = (
                await measure_payments(system, cabinet, "seq100k", n, 1)
            ).summary()
            print("100k", json.dumps(results["runs"]["arcade_pay sequential, 100k ledger"]), flush=True)
        cabinet.stop()
    finally:
        await system.stop()
    if not args.quick:
        results["scale"] = await measure_scale(workdir, [10, 100, 500])
        print("scale", json.dumps(results["scale"]), flush=True)
    results["targets"] = targets(results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="skip the 100k ledger and the scale runs")
    parser.add_argument(
        "--broker-nagle",
        dest="nodelay",
        action="store_false",
        help="run mosquitto with its default set_tcp_nodelay false (docs/mqtt-protocol.md explains the 40 ms stalls)",
    )
    parser.add_argument("--profile", action="store_true", help="sample Home Assistant with py-spy first")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "results.json").write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
    (arguments.out / "results.md").write_text(markdown(outcome), encoding="utf-8")
    print(markdown(outcome))
