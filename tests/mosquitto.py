"""A real mosquitto broker on a free localhost port, for the fault and end-to-end tests.

``scripts/setup`` installs Debian's mosquitto. The broker can be stopped and started again
on the same port (clients reconnect), or killed outright.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import socket
import subprocess
import time


def find_mosquitto() -> str | None:
    """Return the mosquitto binary, which Debian puts in /usr/sbin."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; ``start`` again after ``stop`` or ``kill`` reuses the port."""

    def __init__(
        self, workdir: Path, port: int | None = None, persistence: bool = False, nodelay: bool = True
    ) -> None:
        """Write the broker's config into ``workdir``."""
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed; run scripts/setup")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "log_dest stderr"]
        if nodelay:
            lines.append("set_tcp_nodelay true")
        if os.geteuid() == 0:
            # As root mosquitto drops to its own user, which cannot write in pytest's 0700 dirs.
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

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
