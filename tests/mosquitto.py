"""A real mosquitto broker on a free localhost port, for the fault and end-to-end tests.

``scripts/setup`` installs Debian's mosquitto. The broker can be stopped and started again
on the same port (clients reconnect), or killed outright. Given an ACL it runs as docs/mqtt-protocol.md
recommends: no anonymous clients, a password per user, each cabinet limited to its topics.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import time

# The ACL docs/mqtt-protocol.md shows, scripts/develop and the end-to-end test run.
ACL_FILE = Path(__file__).resolve().parent.parent / "tools" / "dev" / "mosquitto.acl"


def find_mosquitto() -> str | None:
    """Return the mosquitto binary, which Debian puts in /usr/sbin."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def find_mosquitto_passwd() -> str:
    """Return mosquitto_passwd (same Debian package as mosquitto)."""
    found = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(found).exists():
        raise RuntimeError("mosquitto_passwd is not installed; run scripts/setup")
    return found


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; ``start`` again after ``stop`` or ``kill`` reuses the port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = False,
        nodelay: bool = True,
        acl: str | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        """Write the broker's config into ``workdir``; with ``acl``, only ``users`` may connect."""
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed; run scripts/setup")
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.port = port or free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.passwords = workdir / "passwd"
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr"]
        if acl is None:
            lines.append("allow_anonymous true")
        else:
            (workdir / "acl").write_text(acl, encoding="utf-8")
            lines += ["allow_anonymous false", f"password_file {self.passwords}"]
            lines.append(f"acl_file {workdir / 'acl'}")
            self.passwords.touch(mode=0o600)
            for user, password in (users or {}).items():
                self.add_user(user, password)
        if nodelay:
            lines.append("set_tcp_nodelay true")
        if os.geteuid() == 0:
            # As root mosquitto drops to its own user, which cannot write in pytest's 0700 dirs.
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def add_user(self, user: str, password: str) -> None:
        """Let ``user`` connect (its rights come from the ACL); a running broker reloads the file."""
        subprocess.run(
            [find_mosquitto_passwd(), "-b", str(self.passwords), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)  # Rereads the password and ACL files.
            self.wait_for_login(user, password)

    def wait_for_login(self, user: str, password: str, timeout: float = 10.0) -> None:
        """Wait until the running broker lets ``user`` in (it rereads its files after a SIGHUP)."""
        from paho.mqtt import client as mqtt  # noqa: PLC0415 - only brokers with users need paho

        deadline = time.monotonic() + timeout
        result: list[int] = []
        while True:
            result.clear()
            probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"login-probe-{user}")
            probe.username_pw_set(user, password)
            probe.on_connect = lambda c, u, f, rc, p: result.append(rc.value)
            with contextlib.suppress(OSError):
                probe.connect("127.0.0.1", self.port)
                while not result and time.monotonic() < deadline:
                    probe.loop(0.05)
                probe.disconnect()
            if result == [0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto does not let {user} in")
            time.sleep(0.05)

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        # mosquitto refuses a setting given twice (a caller may have appended its own).
        lines = self.config.read_text(encoding="utf-8").splitlines()
        self.config.write_text("\n".join(dict.fromkeys(lines)) + "\n", encoding="utf-8")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: see {self.workdir / 'mosquitto.log'}") from None
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        """Stop the broker gracefully (clients see the connection drop)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Kill the broker (as a crash would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
