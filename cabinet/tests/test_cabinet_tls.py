"""TLS to the broker: a private CA works with ca_file; an untrusted certificate is reported."""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time

from cabinet_harness import CABINET_DIR, MACHINE_ID, HomeAssistant, wait_until
import pytest
from tests.mosquitto import find_mosquitto, free_port

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(
    OPENSSL is None or find_mosquitto() is None, reason="needs openssl and mosquitto"
)


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def tls_broker(tmp_path):
    """A mosquitto with a TLS listener (certificate from a throwaway CA) and a plain one."""
    pki = tmp_path / "pki"
    pki.mkdir()
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=arcade test CA",
        cwd=pki,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=pki,
    )
    (pki / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
        cwd=pki,
    )
    for key in pki.glob("*.key"):
        key.chmod(0o644)  # mosquitto may read it as its own user.
    tls_port, plain_port = free_port(), free_port()
    config = tmp_path / "mosquitto.conf"
    lines = [
        f"listener {tls_port} 127.0.0.1",
        f"cafile {pki / 'ca.pem'}",
        f"certfile {pki / 'server.pem'}",
        f"keyfile {pki / 'server.key'}",
        f"listener {plain_port} 127.0.0.1",
        "allow_anonymous true",
        "log_dest stderr",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # Else it cannot read the keys in pytest's 0700 tmp_path.
    config.write_text("\n".join(lines) + "\n")
    with (tmp_path / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([find_mosquitto() or "", "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", plain_port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.02)
        yield tls_port, plain_port, pki / "ca.pem"
    finally:
        process.terminate()
        process.wait(10)


def _run(tmp_path: Path, port: int, *tls: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCADE_CABINET_")}
    env["PYTHONPATH"] = str(CABINET_DIR)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arcade_cabinet",
            "run",
            "--machine-id",
            MACHINE_ID,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--coin-command",
            "true",
            "--state-file",
            str(tmp_path / "state.json"),
            "--control-socket",
            str(tmp_path / "c.sock"),
            *tls,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_tls_with_a_private_ca(tmp_path, tls_broker):
    tls_port, plain_port, ca = tls_broker
    ha = HomeAssistant(plain_port)
    try:
        mark = ha.mark()
        agent = _run(tmp_path, tls_port, "--ca-file", str(ca))
        try:
            ha.wait_status("online", mark)
        finally:
            agent.terminate()
            _, err = agent.communicate(timeout=15)
        assert agent.returncode == 0
        assert f"Connected to 127.0.0.1:{tls_port}" in err
    finally:
        ha.close()


def test_untrusted_broker_certificate_is_reported(tmp_path, tls_broker):
    tls_port, _, _ = tls_broker
    agent = _run(tmp_path, tls_port, "--tls")  # The system's CAs do not know the test CA.
    try:
        wait_until((tmp_path / "c.sock").exists, what="agent started")
        time.sleep(1.0)
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=15)
    assert "CERTIFICATE_VERIFY_FAILED" in err
    assert err.count("WARNING Cannot reach the broker") == 1
    assert "Connected" not in err
