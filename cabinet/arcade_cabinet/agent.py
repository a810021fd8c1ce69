"""The daemon: MQTT in, credits on disk, coins into the emulator, game overs out.

Threads: paho's network thread handles coin pulses (and connection events); a coin thread
runs the coin command; the control socket's thread handles ``game-over`` and ``status``;
the main thread waits for SIGTERM/SIGINT. One lock guards the ledger and the state file.

Crash safety (see README.md): the state file is written (fsync'd, renamed, directory fsync'd)
before the pulse is acknowledged, both to Home Assistant (``…/ack``) and to the broker
(PUBACK, sent by hand: ``manual_ack``). Killed before the write, the broker re-delivers the
pulse (persistent session) and Home Assistant re-sends it; killed after, the repeat is
acknowledged without being applied again.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
import logging
import os
import signal
import subprocess
import threading
import time
from types import FrameType
from typing import Any, Final

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from . import __version__
from .announcement import Announcement
from .config import Config
from .control import ControlServer
from .protocol import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    TOPIC_ACK,
    TOPIC_COIN_PULSE,
    TOPIC_GAME_OVER,
    TOPIC_INFO,
    TOPIC_STATE,
    TOPIC_STATUS,
    TOPICS,
    Ack,
    CabinetState,
    CoinPulse,
    GameOver,
    ProtocolError,
    topic,
)
from .state import Ledger, StateFile, StateFileError

_LOGGER = logging.getLogger(__name__)

# For tests only: die like a power cut (os._exit, nothing flushed) at one of these points.
ENV_CRASH_AT: Final = "ARCADE_CABINET_CRASH_AT"
CRASH_POINTS: Final = frozenset({"before_write", "after_write", "during_coins", "coin_not_recorded"})
CRASH_EXIT_CODE: Final = 137

RECONNECT_MIN_DELAY: Final = 1
RECONNECT_MAX_DELAY: Final = 30
COIN_TIMEOUT: Final = 10.0
COIN_RETRY_MAX: Final = 30.0
SHUTDOWN_PUBLISH_TIMEOUT: Final = 2.0
MAX_WARNED_REASONS: Final = 100

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1


class _QuietPaho(logging.Filter):
    """Drop paho's "Client is not connected" error.

    paho >= 2.2 logs it at every reconnect attempt; the agent reports reachability itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected.")


class _Client(Client):
    """paho's client, remembering why the last connection attempt failed (paho only retries)."""

    last_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as err:  # Refused, unreachable, DNS, TLS (ssl.SSLError is an OSError).
            self.last_error = err
            raise


class Agent:
    """One cabinet's agent."""

    def __init__(self, config: Config, crash_at: str | None = None) -> None:
        """Set up; nothing is opened before ``run``."""
        if crash_at is not None and crash_at not in CRASH_POINTS:
            raise ValueError(f"{ENV_CRASH_AT} must be one of {', '.join(sorted(CRASH_POINTS))}")
        self.config = config
        self._crash_at = crash_at
        self._store = StateFile(config.state_path, config.machine_id)
        self._ledger = Ledger()
        self._lock = threading.Lock()
        self._coins_due = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._exit_code = EXIT_OK
        self._warned: set[str] = set()
        self._connect_error: str | None = None
        self._last_coin_end = 0.0
        prefix, machine_id = config.topic_prefix, config.machine_id
        self._topics = {kind: topic(prefix, machine_id, kind) for kind in TOPICS}
        self._client = self._make_client()
        self._control = ControlServer(config.socket_path, self._on_command)
        self._coin_thread = threading.Thread(target=self._coin_loop, name="arcade-cabinet-coins", daemon=True)

    # --- set-up and shutdown ---------------------------------------------------------------

    def _make_client(self) -> _Client:
        config = self.config
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"arcade-cabinet-{config.machine_id}",
            clean_session=False,  # The broker keeps our subscription and queues QoS 1 pulses.
            protocol=MQTTProtocolVersion.MQTTv311,
            manual_ack=True,  # PUBACK only once a pulse is on disk.
        )
        paho_logger = logging.getLogger("arcade_cabinet.paho")
        if not any(isinstance(f, _QuietPaho) for f in paho_logger.filters):
            paho_logger.addFilter(_QuietPaho())
        client.enable_logger(paho_logger)
        client.will_set(self._topics[TOPIC_STATUS], STATUS_OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.use_tls:
            client.tls_set(
                ca_certs=str(config.ca_file) if config.ca_file else None,
                certfile=str(config.cert_file) if config.cert_file else None,
                keyfile=str(config.key_file) if config.key_file else None,
            )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit code 0) or a state file failure (1)."""
        failure = self._open()
        if failure is not None:
            _LOGGER.error("%s", failure)
            return EXIT_FAILURE
        ledger = self._ledger
        _LOGGER.info(
            "Cabinet %s: %d credit(s), state file %s, broker %s:%d",
            self.config.machine_id,
            ledger.credits,
            self.config.state_path,
            self.config.host,
            self.config.broker_port,
        )
        if ledger.pending_coins:
            _LOGGER.info("Inserting %d coin(s) that were paid but not inserted before", ledger.pending_coins)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._coin_thread.start()
            self._client.connect_async(self.config.host, self.config.broker_port, self.config.keepalive)
            self._client.loop_start()
            while not self._stopping.wait(1.0):
                pass
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._exit_code

    def _open(self) -> str | None:
        """Lock and read the state file, open the control socket; return what went wrong."""
        try:
            self._store.lock()
            self._ledger = self._store.load()
        except StateFileError as err:
            self._store.unlock()
            return str(err)
        try:
            self._control.start()
        except OSError as err:
            self._store.unlock()
            return f"cannot open the control socket {self.config.socket_path}: {err}"
        return None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        _LOGGER.info("Stopping (%s)", signal.Signals(signum).name)
        self._stopping.set()

    def _fail(self, err: StateFileError) -> None:
        """The state file cannot be written: stop rather than run on without a truth."""
        _LOGGER.critical("%s; stopping", err)
        self._exit_code = EXIT_FAILURE
        self._stopping.set()

    def _shutdown(self) -> None:
        self._stopping.set()
        with self._coins_due:
            self._coins_due.notify_all()
        self._control.stop()
        if self._client.is_connected():
            info = self._client.publish(self._topics[TOPIC_STATUS], STATUS_OFFLINE, qos=1, retain=True)
            # Lost meanwhile (RuntimeError): the broker publishes the last will instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(SHUTDOWN_PUBLISH_TIMEOUT)
        self._client.disconnect()
        self._client.loop_stop()
        if self._coin_thread.is_alive():
            self._coin_thread.join(timeout=COIN_TIMEOUT + 1)
        self._store.unlock()
        ledger = self._ledger
        if ledger.pending_coins:
            _LOGGER.info("%d coin(s) will be inserted at the next start", ledger.pending_coins)
        _LOGGER.info("Stopped with %d credit(s)", ledger.credits)

    def _crash_point(self, point: str) -> None:
        if self._crash_at == point:
            _LOGGER.warning("%s=%s: dying like a power cut", ENV_CRASH_AT, point)
            os._exit(CRASH_EXIT_CODE)

    # --- MQTT ----------------------------------------------------------------------------

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _LOGGER.warning("The broker refused the connection: %s; retrying", reason_code)
            return
        self._connect_error = None
        _LOGGER.info(
            "Connected to %s:%d (%s)",
            self.config.host,
            self.config.broker_port,
            "session resumed" if flags.session_present else "new session",
        )
        client.subscribe(self._topics[TOPIC_COIN_PULSE], qos=1)
        client.publish(self._topics[TOPIC_STATUS], STATUS_ONLINE, qos=1, retain=True)
        # Retained and on every connect: Home Assistant learns who we are (and offers us as a
        # discovered cabinet) whenever it subscribes, and a renamed cabinet corrects the old one.
        client.publish(self._topics[TOPIC_INFO], self.announcement().to_json(), qos=1, retain=True)
        with self._lock:
            self._publish_state()

    def announcement(self) -> Announcement:
        """Who this cabinet is, as it announces itself."""
        config = self.config
        return Announcement(
            config.machine_id, config.name or config.machine_id, config.model, __version__, acknowledges=True
        )

    def _on_connect_fail(self, client: Client, userdata: Any) -> None:
        error = str(self._client.last_error or "unknown error")
        log = _LOGGER.warning if error != self._connect_error else _LOGGER.debug
        log(
            "Cannot reach the broker at %s:%d (%s); retrying every %d-%d s",
            self.config.host,
            self.config.broker_port,
            error,
            RECONNECT_MIN_DELAY,
            RECONNECT_MAX_DELAY,
        )
        self._connect_error = error

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._stopping.is_set():
            _LOGGER.warning("Disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        try:
            self._handle_pulse(message)
        except StateFileError as err:
            self._fail(err)
            return  # No PUBACK: the broker delivers the pulse again after a restart.
        except Exception:  # A bug here must not stop the network thread.
            _LOGGER.exception("Cannot handle the message on %s", message.topic)
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def _ignore(self, reason: str) -> None:
        """Warn once per reason; a misbehaving publisher must not flood the log."""
        if reason in self._warned:
            _LOGGER.debug("Ignoring coin pulse: %s", reason)
            return
        if len(self._warned) < MAX_WARNED_REASONS:
            self._warned.add(reason)
        _LOGGER.warning("Ignoring coin pulse: %s (further ones like it are logged at debug level)", reason)

    def _handle_pulse(self, message: MQTTMessage) -> None:
        if message.retain:
            self._ignore("it is retained (coin pulses must not be; it would apply on every reconnect)")
            return
        try:
            pulse = CoinPulse.from_payload(message.payload)
        except ProtocolError as err:
            self._ignore(str(err))
            return
        if pulse.machine_id != self.config.machine_id:
            self._ignore(f"machineId {pulse.machine_id!r} is not this cabinet's")
            return
        payment = pulse.payment_id
        with self._lock:
            if payment is not None and self._ledger.has_applied(payment):
                _LOGGER.info("Payment %s was already applied; acknowledging it again", payment)
                self._publish_ack(payment)
                return
            ledger = self._ledger.with_pulse(pulse.credits, payment)
            self._crash_point("before_write")
            self._store.save(ledger)
            self._ledger = ledger
            self._crash_point("after_write")
            if payment is not None:
                self._publish_ack(payment)
            self._publish_state()
            self._coins_due.notify_all()
        _LOGGER.info(
            "+%d credit(s) (%s): %d on the cabinet",
            pulse.credits,
            payment or "no payment id",
            ledger.credits,
        )

    def _publish_ack(self, payment_id: str) -> None:
        self._client.publish(self._topics[TOPIC_ACK], Ack(payment_id).to_json(), qos=1)

    def _publish_state(self) -> None:
        """Publish the retained state (call with the lock held). Queued by paho while offline."""
        state = CabinetState(self._ledger.credits, self._ledger.state, acknowledges=True)
        self._client.publish(self._topics[TOPIC_STATE], state.to_json(), qos=1, retain=True)

    # --- coins ---------------------------------------------------------------------------

    def _coin_loop(self) -> None:
        failures = 0
        while True:
            with self._coins_due:
                while not self._stopping.is_set() and self._ledger.pending_coins == 0:
                    self._coins_due.wait()
                if self._stopping.is_set():
                    return
            wait = self._last_coin_end + self.config.coin_gap - time.monotonic()
            if wait > 0 and self._stopping.wait(wait):
                return
            problem = self._insert_coin()
            self._last_coin_end = time.monotonic()
            if problem is not None:
                failures += 1
                delay = min(COIN_RETRY_MAX, 2.0 ** (failures - 1))
                log = _LOGGER.error if failures == 1 else _LOGGER.debug
                log(
                    "Coin command failed (%s); trying again in %.0f s until it works (%d coin(s) waiting)",
                    problem,
                    delay,
                    self._ledger.pending_coins,
                )
                if self._stopping.wait(delay):
                    return
                continue
            if failures:
                _LOGGER.info("Coin command works again")
            failures = 0
            self._crash_point("coin_not_recorded")
            with self._lock:
                ledger = self._ledger.with_coin_inserted()
                try:
                    self._store.save(ledger)
                except StateFileError as err:
                    self._fail(err)
                    return
                self._ledger = ledger
            self._crash_point("during_coins")

    def _insert_coin(self) -> str | None:
        """Run the coin command once; return None when it worked (exit status 0), else why not."""
        command = self.config.coin_command
        try:
            # The command comes from the operator's own configuration; no shell runs it.
            result = subprocess.run(  # noqa: S603
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                timeout=COIN_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as err:
            return f"{command[0]}: {err}"
        if result.returncode != 0:
            return f"{command[0]} exited with status {result.returncode}"
        _LOGGER.debug("Coin inserted")
        return None

    # --- control socket ------------------------------------------------------------------

    def _on_command(self, command: str) -> dict[str, Any]:
        if command == "game_over":
            return self.game_over()
        if command == "status":
            return self.status()
        return {"ok": False, "error": f"unknown command {command!r}"}

    def status(self) -> dict[str, Any]:
        """What ``arcade-cabinet status`` prints."""
        with self._lock:
            ledger = self._ledger
        return {
            "ok": True,
            "running": True,
            "machine_id": self.config.machine_id,
            "credits": ledger.credits,
            "state": ledger.state.value,
            "pending_coins": ledger.pending_coins,
            "connected": self._client.is_connected(),
        }

    def game_over(self) -> dict[str, Any]:
        """A game ended: use its credits (on disk first), then tell Home Assistant."""
        with self._lock:
            ledger = self._ledger.with_game_over(self.config.credits_per_game)
            try:
                self._store.save(ledger)
            except StateFileError as err:
                self._fail(err)
                return {"ok": False, "error": str(err)}
            self._ledger = ledger
            message = GameOver(self.config.machine_id, datetime.now(UTC))
            self._client.publish(self._topics[TOPIC_GAME_OVER], message.to_json(), qos=1)
            self._publish_state()
        _LOGGER.info("Game over: %d credit(s) left", ledger.credits)
        return self.status()


def crash_point_from_env() -> str | None:
    """The test-only crash point, if ``ARCADE_CABINET_CRASH_AT`` is set."""
    return os.environ.get(ENV_CRASH_AT) or None


__all__ = ["CRASH_POINTS", "ENV_CRASH_AT", "Agent", "crash_point_from_env"]
