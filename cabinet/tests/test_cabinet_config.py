"""Settings from the TOML file, the environment and flags; the command line."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

from arcade_cabinet import cli
from arcade_cabinet.config import Config, ConfigError, load_config

CABINET_DIR = Path(__file__).resolve().parents[1]

FULL = """
machine_id = "arcadeCabinet-123"
topic_prefix = "club/arcade"
credits_per_game = 2
coin_command = "xdotool key 5"
coin_gap_ms = 200
state_file = "state/cab.json"

[mqtt]
host = "broker.lan"
username = "cabinet"
password = "from-file"
ca_file = "ca.pem"
keepalive = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cabinet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_settings(tmp_path):
    config = load_config(write(tmp_path, FULL), {}, environ={})
    assert config == Config(
        machine_id="arcadeCabinet-123",
        topic_prefix="club/arcade",
        credits_per_game=2,
        coin_command=("xdotool", "key", "5"),
        coin_gap_ms=200,
        state_file=tmp_path / "state" / "cab.json",
        host="broker.lan",
        username="cabinet",
        password="from-file",
        ca_file=tmp_path / "ca.pem",
        keepalive=30,
    )
    assert config.use_tls
    assert config.broker_port == 8883
    assert config.socket_path == tmp_path / "state" / "arcadeCabinet-123.sock"
    assert config.coin_gap == 0.2


def test_flags_win_over_environment_over_file(tmp_path):
    path = write(tmp_path, FULL)
    assert load_config(path, {}, environ={"ARCADE_CABINET_PASSWORD": "env"}).password == "env"
    config = load_config(
        path,
        {"password": "flag", "port": 1884, "coin_command": "/bin/echo 'a b'", "host": None},
        environ={"ARCADE_CABINET_PASSWORD": "env"},
    )
    assert config.password == "flag"
    assert config.broker_port == 1884
    assert config.coin_command == ("/bin/echo", "a b")
    assert config.host == "broker.lan"  # None means "not given".


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(None, {"machine_id": "cab"}, environ={})
    assert config.state_path == tmp_path / ".local/state/arcade-cabinet/cab.json"
    assert config.socket_path == tmp_path / ".local/state/arcade-cabinet/cab.sock"
    assert (config.topic_prefix, config.credits_per_game, config.coin_gap_ms) == ("arcade/machine", 1, 150)
    assert (config.host, config.broker_port, config.use_tls) == ("localhost", 1883, False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert (
        load_config(None, {"machine_id": "cab"}, environ={}).state_path
        == tmp_path / "xdg/arcade-cabinet/cab.json"
    )
    assert load_config(None, {"machine_id": "cab", "tls": True}, environ={}).broker_port == 8883


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("", {}, "machine_id is required"),
        ('machine_id = "a/b"', {}, "machine_id: must be"),
        ('machine_id = "cab"\nport = 1', {}, "port: unknown key"),
        ('machine_id = "cab"\n[mqtt]\nport = 70000', {}, "mqtt.port: must be between 1 and 65535"),
        ('machine_id = "cab"\n[mqtt]\nport = true', {}, "mqtt.port: expected a whole number"),
        ('machine_id = "cab"\ncoin_gap_ms = 50', {}, "coin_gap_ms: must be between 100"),
        ('machine_id = "cab"\ncoin_command = []', {}, "coin_command: must be a program"),
        ('machine_id = "cab"\ntopic_prefix = "arcade/#"', {}, "topic_prefix: must be"),
        ('machine_id = "cab"\nname = "  "', {}, "name: expected printable text"),
        ('machine_id = "cab"', {"model": "x" * 101}, "--model: expected printable text"),
        ('machine_id = "cab"', {"credits_per_game": 101}, "--credits-per-game: must be between 0 and 100"),
        ('machine_id = "cab"', {"coin_command": "'unclosed"}, "--coin-command: cannot split"),
        ('machine_id = "cab"\n[mqtt]\nkey_file = "k.pem"', {}, "key_file needs cert_file"),
        ('machine_id = "cab"\n[mqtt]\npassword = "x"', {}, "a password needs a username"),
        ('machine_id = "cab"', {"control_socket": "/" + "s" * 120}, "longer than 107 bytes"),
        ("machine_id = ", {}, "is not valid TOML"),
        # Checked without voluptuous (README, "Dependencies"): types are checked, not converted.
        ('machine_id = "cab"\nmqtt = 3', {}, "mqtt: expected a table of settings"),
        ('machine_id = "cab"\n[mqtt]\nusername = "u"\npassword = 3', {}, "mqtt.password: expected a string"),
        ('machine_id = "cab"\n[mqtt]\ntls = "yes"', {}, "mqtt.tls: expected true or false"),
        ('machine_id = "cab"', {"tls": "yes"}, "--tls: expected true or false"),
        # Every problem is reported, each with its key.
        ('machine_id = "cab"\nfoo = 1\n[mqtt]\nport = 0', {}, "foo: unknown key; mqtt.port: must be between"),
    ],
)
def test_bad_settings(tmp_path, text, flags, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), flags, environ={})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.toml", {}, environ={})


def test_help_documents_commands_and_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in (
        "run",
        "game-over",
        "status",
        "--coin-command",
        "--coin-gap-ms",
        "--tls",
        "--ca-file",
        "ARCADE_CABINET_PASSWORD",
        "ARCADE_CABINET_CRASH_AT",
        "[mqtt]",
    ):
        assert word in text


def test_options_before_or_after_the_command(tmp_path, capsys):
    state = tmp_path / "s.json"
    assert cli.main(["--machine-id", "cab", "status", "--state-file", str(state)]) == 1
    assert (
        "cab: 0 credit(s), attract, 0 coin(s) to insert; the agent is not running" in capsys.readouterr().out
    )


def test_usage_errors(tmp_path, capsys):
    assert cli.main([]) == 2
    assert cli.main(["run"]) == 1
    assert "machine_id is required" in capsys.readouterr().err
    assert cli.main(["run", "--machine-id", "cab", "--state-file", str(tmp_path / "s.json")]) == 1
    assert "coin_command is required" in capsys.readouterr().err


def test_unknown_crash_point_is_refused(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(CABINET_DIR), "ARCADE_CABINET_CRASH_AT": "sometime"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "arcade_cabinet",
            "run",
            "--machine-id",
            "cab",
            "--coin-command",
            "true",
            "--state-file",
            str(tmp_path / "s.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "ARCADE_CABINET_CRASH_AT must be one of" in result.stderr


def test_name_and_model_are_what_the_cabinet_announces(tmp_path):
    config = load_config(write(tmp_path, 'machine_id = "cab"\nname = " Galaga "'), {"model": "Upright"}, {})
    assert (config.name, config.model) == ("Galaga", "Upright")


@pytest.mark.parametrize("name", ["protocol.py", "announcement.py"])
def test_shared_modules_are_the_integrations_not_copies(name):
    link = CABINET_DIR / "arcade_cabinet" / name
    assert link.is_symlink()
    assert str(link.readlink()) == f"../../custom_components/arcade_pay/core/{name}"
    assert link.resolve() == (CABINET_DIR.parent / f"custom_components/arcade_pay/core/{name}").resolve()


def test_protocol_is_the_integrations_module_not_a_copy():
    link = CABINET_DIR / "arcade_cabinet" / "protocol.py"
    assert link.is_symlink()
    assert str(link.readlink()) == "../../custom_components/arcade_pay/core/protocol.py"
    assert link.resolve() == (CABINET_DIR.parent / "custom_components/arcade_pay/core/protocol.py").resolve()
