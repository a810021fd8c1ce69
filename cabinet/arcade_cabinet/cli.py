"""The ``arcade-cabinet`` command: ``run`` (the daemon), ``game-over`` and ``status``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import logging
from pathlib import Path
import sys
from typing import Any, Final

from . import __version__
from .agent import CRASH_POINTS, ENV_CRASH_AT, Agent, crash_point_from_env
from .config import (
    DEFAULT_COIN_GAP_MS,
    DEFAULT_CREDITS_PER_GAME,
    DEFAULT_MODEL,
    ENV_PASSWORD,
    MIN_COIN_GAP_MS,
    Config,
    ConfigError,
    load_config,
)
from .control import AgentNotRunningError, ControlError, request
from .protocol import DEFAULT_TOPIC_PREFIX
from .state import StateFile, StateFileError

PROG: Final = "arcade-cabinet"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

DESCRIPTION: Final = """\
Arcade Pay's cabinet agent. Runs on the cabinet PC: takes coin pulses from Home Assistant over
MQTT, keeps the credit balance in a state file, inserts coins into the emulator by running a
command once per credit, and reports game overs.

commands:
  run        the daemon (run it as a service, e.g. a systemd user unit)
  game-over  for the game's exit hook: the running agent uses a game's credits and tells
             Home Assistant; fails (exit 1) when the agent is not running
  status     print the balance (from the running agent, or from the state file with exit 1
             when the agent is not running)

Every option can be given before or after the command; `arcade-cabinet COMMAND --help` lists
the same options."""

EPILOG: Final = f"""\
config file (TOML, --config): the option names with '_' for '-', broker settings in [mqtt]:
  machine_id = "arcadeCabinet-123"
  coin_command = ["xdotool", "key", "5"]
  [mqtt]
  host = "broker.lan"
  username = "cabinet"
Flags win over the file. Relative paths in the file are relative to the file.

environment:
  {ENV_PASSWORD}    the broker password (wins over the file, loses to --password)
  {ENV_CRASH_AT}    for tests only: {"|".join(sorted(CRASH_POINTS))};
                             the agent dies like a power cut at that point (exit 137)

exit status: 0 success, 1 failure (agent not running, bad config, state file error), 2 usage."""


def _options_parser() -> argparse.ArgumentParser:
    """Options shared by every command; absent ones stay absent (SUPPRESS) so they can merge."""
    options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    general = options.add_argument_group("cabinet")
    general.add_argument("-c", "--config", type=Path, metavar="FILE", help="TOML config file")
    general.add_argument("--machine-id", metavar="ID", help="the cabinet's id in MQTT topics (required)")
    general.add_argument("--name", help="the cabinet's name in its announcement (default its machine id)")
    general.add_argument(
        "--model", help=f"the cabinet's model in its announcement (default {DEFAULT_MODEL!r})"
    )
    general.add_argument(
        "--topic-prefix", metavar="PREFIX", help=f"MQTT topic prefix (default {DEFAULT_TOPIC_PREFIX})"
    )
    general.add_argument(
        "--state-file",
        type=Path,
        metavar="FILE",
        help="the balance on disk (default ~/.local/state/arcade-cabinet/<machine_id>.json, "
        "$XDG_STATE_HOME if set)",
    )
    general.add_argument(
        "--control-socket",
        type=Path,
        metavar="FILE",
        help="local Unix socket for game-over and status (default <state dir>/<machine_id>.sock)",
    )
    general.add_argument(
        "--credits-per-game",
        type=int,
        metavar="N",
        help=f"credits a game over uses, 0-100 (default {DEFAULT_CREDITS_PER_GAME})",
    )
    general.add_argument(
        "--coin-command",
        metavar="COMMAND",
        help="run once per credit, split like a shell would but run without one, e.g. 'xdotool key 5' "
        "(required by run)",
    )
    general.add_argument(
        "--coin-gap-ms",
        type=int,
        metavar="MS",
        help=f"pause between coin commands, >= {MIN_COIN_GAP_MS} (default {DEFAULT_COIN_GAP_MS})",
    )
    broker = options.add_argument_group("MQTT broker")
    broker.add_argument("--host", help="broker host (default localhost)")
    broker.add_argument("--port", type=int, help="broker port (default 1883, 8883 with TLS)")
    broker.add_argument("--username", help="broker user name")
    broker.add_argument(
        "--password",
        help=f"broker password; prefer {ENV_PASSWORD} or the config file (command lines are public)",
    )
    broker.add_argument("--tls", action="store_true", help="TLS with the system's CA certificates")
    broker.add_argument("--ca-file", type=Path, metavar="FILE", help="TLS with this CA certificate (PEM)")
    broker.add_argument("--cert-file", type=Path, metavar="FILE", help="TLS client certificate (PEM)")
    broker.add_argument("--key-file", type=Path, metavar="FILE", help="TLS client key (PEM)")
    broker.add_argument("--keepalive", type=int, metavar="SECONDS", help="MQTT keepalive (default 60)")
    output = options.add_argument_group("output")
    output.add_argument(
        "-v", "--verbose", action="count", help="more log output on stderr (-vv: MQTT packets too)"
    )
    output.add_argument("--json", action="store_true", help="status: print JSON")
    return options


def build_parser() -> argparse.ArgumentParser:
    """The command line parser."""
    options = _options_parser()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[options],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in (
        ("run", "run the agent (the daemon)"),
        ("game-over", "tell the running agent that a game is over"),
        ("status", "print the balance"),
    ):
        commands.add_parser(
            name,
            parents=[options],
            help=summary,
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    return parser


CONFIG_KEYS: Final = (
    "machine_id",
    "name",
    "model",
    "topic_prefix",
    "state_file",
    "control_socket",
    "credits_per_game",
    "coin_command",
    "coin_gap_ms",
    "host",
    "port",
    "username",
    "password",
    "tls",
    "ca_file",
    "cert_file",
    "key_file",
    "keepalive",
)


def _setup_logging(verbosity: int) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbosity else logging.INFO,
        format="%(levelname)s %(message)s",
    )
    logging.getLogger("arcade_cabinet.paho").setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)


def _error(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``arcade-cabinet`` command."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.get("command")
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.get("config"), {key: args[key] for key in CONFIG_KEYS if key in args})
    except ConfigError as err:
        return _error(str(err))
    if command == "run":
        return _run(config, args.get("verbose", 0))
    if command == "game-over":
        return _game_over(config)
    return _status(config, as_json=args.get("json", False))


def _run(config: Config, verbosity: int) -> int:
    if not config.coin_command:
        return _error("coin_command is required to run the agent (config file or --coin-command)")
    try:
        agent = Agent(config, crash_point_from_env())
    except ValueError as err:
        return _error(str(err))
    _setup_logging(verbosity)
    return agent.run()


def _not_running(config: Config) -> str:
    return (
        f"the arcade-cabinet agent for {config.machine_id} is not running "
        f"(nothing listens on {config.socket_path}); start it with `{PROG} run`"
    )


def _describe(status: dict[str, Any]) -> str:
    text = (
        f"{status['machine_id']}: {status['credits']} credit(s), {status['state']}, "
        f"{status['pending_coins']} coin(s) to insert"
    )
    if not status["running"]:
        return f"{text}; the agent is not running"
    return f"{text}; MQTT {'connected' if status['connected'] else 'disconnected'}"


def _game_over(config: Config) -> int:
    try:
        answer = request(config.socket_path, "game_over")
    except AgentNotRunningError:
        return _error(f"game over not recorded: {_not_running(config)}")
    except ControlError as err:
        return _error(f"game over not recorded: {err}")
    print(f"Game over: {answer['credits']} credit(s) left ({answer['state']})")
    return EXIT_OK


def _status(config: Config, as_json: bool) -> int:
    try:
        status = request(config.socket_path, "status")
    except AgentNotRunningError:
        try:
            ledger = StateFile(config.state_path, config.machine_id).load()
        except StateFileError as err:
            _error(_not_running(config))
            return _error(str(err))
        status = {
            "ok": True,
            "running": False,
            "machine_id": config.machine_id,
            "credits": ledger.credits,
            "state": ledger.state.value,
            "pending_coins": ledger.pending_coins,
            "connected": False,
        }
    except ControlError as err:
        return _error(str(err))
    status.pop("ok", None)
    print(json.dumps(status) if as_json else _describe(status))
    return EXIT_OK if status["running"] else EXIT_FAILURE
