"""The agent's settings: a TOML file and/or command-line flags (flags win).

Example (every key is optional except ``machine_id``, and ``coin_command`` for ``run``)::

    machine_id = "arcadeCabinet-123"
    topic_prefix = "arcade/machine"
    credits_per_game = 1
    coin_command = ["xdotool", "key", "5"]     # or one string, split as a shell would
    coin_gap_ms = 150
    state_file = "~/.local/state/arcade-cabinet/arcadeCabinet-123.json"
    control_socket = "~/.local/state/arcade-cabinet/arcadeCabinet-123.sock"

    [mqtt]
    host = "broker.lan"
    port = 8883
    username = "cabinet-123"
    password = "…"                              # or ARCADE_CABINET_PASSWORD
    tls = true                                  # system CAs; or ca_file / cert_file / key_file
    ca_file = "ca.pem"                          # relative paths: next to this file
    keepalive = 60
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import os
from pathlib import Path
import shlex
import tomllib
from typing import Any, Final

import voluptuous as vol

from .protocol import DEFAULT_TOPIC_PREFIX, is_valid_machine_id, is_valid_topic_prefix

ENV_PASSWORD: Final = "ARCADE_CABINET_PASSWORD"

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883
DEFAULT_KEEPALIVE: Final = 60
DEFAULT_CREDITS_PER_GAME: Final = 1
DEFAULT_COIN_GAP_MS: Final = 150
# Coin mechanisms (and emulators polling a key) miss coins closer together than this.
MIN_COIN_GAP_MS: Final = 100
MAX_COIN_GAP_MS: Final = 10_000
# sockaddr_un.sun_path is 108 bytes on Linux, including the final NUL.
MAX_SOCKET_PATH_BYTES: Final = 107

PATH_KEYS: Final = ("state_file", "control_socket", "ca_file", "cert_file", "key_file")


class ConfigError(Exception):
    """The settings are incomplete or wrong."""


def _int(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected a whole number")
        if not minimum <= value <= maximum:
            raise vol.Invalid(f"must be between {minimum} and {maximum}")
        return value

    return check


def _machine_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_machine_id(value):
        raise vol.Invalid("must be 1-64 letters, digits, '-' or '_'")
    return value


def _topic_prefix(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_topic_prefix(value):
        raise vol.Invalid("must be MQTT topic levels without wildcards, e.g. arcade/machine")
    return value.rstrip("/")


def _command(value: Any) -> tuple[str, ...]:
    """A program and its arguments: a list of strings, or one string split like a shell would."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as err:
            raise vol.Invalid(f"cannot split the command: {err}") from err
    if not isinstance(value, list | tuple) or not value or not all(isinstance(a, str) for a in value):
        raise vol.Invalid("must be a program and its arguments: a non-empty list of strings, or a string")
    if not value[0]:
        raise vol.Invalid("the program name is empty")
    return tuple(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise vol.Invalid("expected a non-empty string")
    return value


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(value)).expanduser()


MQTT_KEYS: Final[dict[vol.Optional, Callable[[Any], Any]]] = {
    vol.Optional("host"): _text,
    vol.Optional("port"): _int(1, 65535),
    vol.Optional("username"): _text,
    vol.Optional("password"): str,
    vol.Optional("tls"): bool,
    vol.Optional("ca_file"): _path,
    vol.Optional("cert_file"): _path,
    vol.Optional("key_file"): _path,
    vol.Optional("keepalive"): _int(5, 3600),
}

CABINET_KEYS: Final[dict[vol.Optional, Callable[[Any], Any]]] = {
    vol.Optional("machine_id"): _machine_id,
    vol.Optional("topic_prefix"): _topic_prefix,
    vol.Optional("credits_per_game"): _int(0, 100),
    vol.Optional("coin_command"): _command,
    vol.Optional("coin_gap_ms"): _int(MIN_COIN_GAP_MS, MAX_COIN_GAP_MS),
    vol.Optional("state_file"): _path,
    vol.Optional("control_socket"): _path,
}

# The file nests the broker settings under [mqtt]; flags are flat.
FILE_SCHEMA: Final = vol.Schema({**CABINET_KEYS, vol.Optional("mqtt"): vol.Schema(MQTT_KEYS)})
FLAT_SCHEMA: Final = vol.Schema({**CABINET_KEYS, **MQTT_KEYS})


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/arcade-cabinet``, which is ``~/.local/state/arcade-cabinet`` by default."""
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "arcade-cabinet"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the agent and its commands need."""

    machine_id: str
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    credits_per_game: int = DEFAULT_CREDITS_PER_GAME
    coin_command: tuple[str, ...] = ()
    coin_gap_ms: int = DEFAULT_COIN_GAP_MS
    state_file: Path | None = None
    control_socket: Path | None = None
    host: str = "localhost"
    port: int | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = DEFAULT_KEEPALIVE

    @property
    def state_path(self) -> Path:
        """The state file (default ``<state dir>/<machine_id>.json``)."""
        return self.state_file or default_state_dir() / f"{self.machine_id}.json"

    @property
    def socket_path(self) -> Path:
        """The control socket (default next to the state file, ``<machine_id>.sock``)."""
        return self.control_socket or self.state_path.with_name(f"{self.machine_id}.sock")

    @property
    def use_tls(self) -> bool:
        """TLS when asked for, or when any certificate file is given."""
        return self.tls or any((self.ca_file, self.cert_file, self.key_file))

    @property
    def broker_port(self) -> int:
        """The port, 8883 with TLS and 1883 without unless set."""
        if self.port is not None:
            return self.port
        return DEFAULT_TLS_PORT if self.use_tls else DEFAULT_PORT

    @property
    def coin_gap(self) -> float:
        """The gap between coin commands in seconds."""
        return self.coin_gap_ms / 1000


def read_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML config file; flat keys, relative paths made absolute."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as err:
        raise ConfigError(f"cannot read the config file {path}: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    try:
        checked: dict[str, Any] = FILE_SCHEMA(document)
    except vol.Invalid as err:
        raise ConfigError(f"{path}: {_describe(err)}") from err
    flat = {key: value for key, value in checked.items() if key != "mqtt"}
    flat.update(checked.get("mqtt", {}))
    base = path.expanduser().resolve().parent
    for key in PATH_KEYS:
        if key in flat:
            flat[key] = base / flat[key]  # An absolute path stays as it is.
    return flat


def _describe(err: vol.Invalid, flags: bool = False) -> str:
    """``mqtt.port: must be between 1 and 65535`` (``--port: …`` for flags)."""
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    parts = []
    for one in errors:
        where = ".".join(str(level) for level in one.path)
        if flags and where:
            where = "--" + where.replace("_", "-")
        message = "unknown key" if one.error_message == "extra keys not allowed" else one.error_message
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def load_config(
    config_file: Path | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Merge file, environment (the password) and flags, in increasing precedence."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = read_file(config_file) if config_file is not None else {}
    if environ.get(ENV_PASSWORD):
        settings["password"] = environ[ENV_PASSWORD]
    try:
        settings.update(FLAT_SCHEMA({key: value for key, value in flags.items() if value is not None}))
    except vol.Invalid as err:
        raise ConfigError(_describe(err, flags=True)) from err
    if "machine_id" not in settings:
        raise ConfigError("machine_id is required (in the config file, or --machine-id)")
    config = Config(**settings)
    if config.key_file is not None and config.cert_file is None:
        raise ConfigError("key_file needs cert_file (the client certificate)")
    if config.password is not None and config.username is None:
        raise ConfigError("a password needs a username")
    if len(os.fsencode(config.socket_path)) > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"the control socket path {config.socket_path} is longer than {MAX_SOCKET_PATH_BYTES} bytes; "
            "set a shorter control_socket"
        )
    return config
