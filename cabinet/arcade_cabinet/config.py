"""The agent's settings: a TOML file and/or command-line flags (flags win).

Example (every key is optional except ``machine_id``, and ``coin_command`` for ``run``)::

    machine_id = "arcadeCabinet-123"
    name = "Galaga"                              # announced on <prefix>/<id>/info (default: the id)
    model = "Galaga upright"                     # (default: "Arcade Pay cabinet agent")
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

from .announcement import label as announced_label
from .protocol import DEFAULT_TOPIC_PREFIX, ProtocolError, is_valid_machine_id, is_valid_topic_prefix

# What the announcement calls a cabinet run by this agent, unless its config names a model.
DEFAULT_MODEL: Final = "Arcade Pay cabinet agent"

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


type Problems = list[tuple[tuple[str, ...], str]]  # (the keys leading to a setting, what is wrong)


class _Invalid(ValueError):
    """Settings that do not pass their checks.

    Checked by hand, not with ``voluptuous``: the agent depends on nothing but the standard
    library and ``paho-mqtt`` (README, "Dependencies").
    """

    def __init__(self, message: str, problems: Problems | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [((), message)]


type Check = Callable[[Any], Any]


def _checked(document: Any, keys: Mapping[str, Check]) -> dict[str, Any]:
    """Check every key of a table; every problem is reported, each with the key it is about."""
    if not isinstance(document, Mapping):
        raise _Invalid("expected a table of settings")
    checked: dict[str, Any] = {}
    problems: Problems = []
    for key, value in document.items():
        if (check := keys.get(key)) is None:
            problems.append(((str(key),), "unknown key"))
            continue
        try:
            checked[key] = check(value)
        except _Invalid as err:
            problems.extend(((str(key), *where), message) for where, message in err.problems)
    if problems:
        raise _Invalid("; ".join(message for _, message in problems), problems)
    return checked


def _int(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("expected a whole number")
        if not minimum <= value <= maximum:
            raise _Invalid(f"must be between {minimum} and {maximum}")
        return value

    return check


def _machine_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_machine_id(value):
        raise _Invalid("must be 1-64 letters, digits, '-' or '_'")
    return value


def _label(value: Any) -> str:
    # The announcement's own check (Home Assistant refuses the same), so a bad name fails at start.
    try:
        return announced_label(value)
    except ProtocolError as err:
        raise _Invalid(str(err)) from None


def _topic_prefix(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_topic_prefix(value):
        raise _Invalid("must be MQTT topic levels without wildcards, e.g. arcade/machine")
    return value.rstrip("/")


def _command(value: Any) -> tuple[str, ...]:
    """A program and its arguments: a list of strings, or one string split like a shell would."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as err:
            raise _Invalid(f"cannot split the command: {err}") from err
    if not isinstance(value, list | tuple) or not value or not all(isinstance(a, str) for a in value):
        raise _Invalid("must be a program and its arguments: a non-empty list of strings, or a string")
    if not value[0]:
        raise _Invalid("the program name is empty")
    return tuple(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid("expected a non-empty string")
    return value


def _of_type(kind: type, message: str) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise _Invalid(message)
        return value

    return check


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(value)).expanduser()


MQTT_KEYS: Final[dict[str, Check]] = {
    "host": _text,
    "port": _int(1, 65535),
    "username": _text,
    "password": _of_type(str, "expected a string"),
    "tls": _of_type(bool, "expected true or false"),
    "ca_file": _path,
    "cert_file": _path,
    "key_file": _path,
    "keepalive": _int(5, 3600),
}

CABINET_KEYS: Final[dict[str, Check]] = {
    "machine_id": _machine_id,
    "name": _label,
    "model": _label,
    "topic_prefix": _topic_prefix,
    "credits_per_game": _int(0, 100),
    "coin_command": _command,
    "coin_gap_ms": _int(MIN_COIN_GAP_MS, MAX_COIN_GAP_MS),
    "state_file": _path,
    "control_socket": _path,
}

# The file nests the broker settings under [mqtt]; flags are flat.
FILE_KEYS: Final[dict[str, Check]] = {**CABINET_KEYS, "mqtt": lambda table: _checked(table, MQTT_KEYS)}
FLAT_KEYS: Final[dict[str, Check]] = {**CABINET_KEYS, **MQTT_KEYS}


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/arcade-cabinet``, which is ``~/.local/state/arcade-cabinet`` by default."""
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "arcade-cabinet"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the agent and its commands need."""

    machine_id: str
    name: str | None = None
    model: str = DEFAULT_MODEL
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
        checked = _checked(document, FILE_KEYS)
    except _Invalid as err:
        raise ConfigError(f"{path}: {_describe(err)}") from err
    flat = {key: value for key, value in checked.items() if key != "mqtt"}
    flat.update(checked.get("mqtt", {}))
    base = path.expanduser().resolve().parent
    for key in PATH_KEYS:
        if key in flat:
            flat[key] = base / flat[key]  # An absolute path stays as it is.
    return flat


def _describe(err: _Invalid, flags: bool = False) -> str:
    """``mqtt.port: must be between 1 and 65535`` (``--port: …`` for flags)."""
    parts = []
    for path, message in err.problems:
        where = ".".join(path)
        if flags and where:
            where = "--" + where.replace("_", "-")
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
        given = {key: value for key, value in flags.items() if value is not None}
        settings.update(_checked(given, FLAT_KEYS))
    except _Invalid as err:
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
