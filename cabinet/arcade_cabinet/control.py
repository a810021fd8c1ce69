"""The agent's local control socket, through which ``game-over`` and ``status`` reach it.

A Unix stream socket; one JSON object per line each way: ``{"command": "game_over"}`` in,
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` out. The socket is created with
mode 0600 in the state directory (0700), so only the cabinet's user can use it.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import json
import logging
from pathlib import Path
import socket
import threading
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

MAX_LINE: Final = 4096
CLIENT_TIMEOUT: Final = 10.0
CONNECTION_TIMEOUT: Final = 5.0
ACCEPT_POLL: Final = 0.2

type Handler = Callable[[str], dict[str, Any]]


class AgentNotRunningError(Exception):
    """Nothing listens on the control socket."""


class ControlError(Exception):
    """The agent answered, but not with what was asked for."""


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= MAX_LINE:
        chunk = conn.recv(MAX_LINE)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def request(path: Path, command: str, timeout: float = CLIENT_TIMEOUT) -> dict[str, Any]:
    """Send one command to the running agent and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise AgentNotRunningError(f"nothing listens on {path}") from err
        except OSError as err:
            raise ControlError(f"cannot connect to {path}: {err}") from err
        try:
            conn.sendall(json.dumps({"command": command}).encode() + b"\n")
            line = _read_line(conn)
        except OSError as err:  # TimeoutError included.
            raise ControlError(f"no answer from the agent on {path}: {err}") from err
    try:
        answer = json.loads(line)
    except ValueError as err:
        raise ControlError(f"the agent answered something that is not JSON: {line[:80]!r}") from err
    if not isinstance(answer, dict):
        raise ControlError("the agent answered something that is not a JSON object")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "the agent refused")))
    return answer


class ControlServer:
    """Accepts one connection at a time on a thread and hands each command to ``handler``."""

    def __init__(self, path: Path, handler: Handler) -> None:
        """Nothing is bound until ``start``."""
        self.path = path
        self._handler = handler
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Bind (replacing a stale socket left by a dead agent) and serve on a thread.

        The caller holds the state file's lock, so no live agent owns the old socket.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            self.path.chmod(0o600)
            sock.listen(8)
            sock.settimeout(ACCEPT_POLL)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="arcade-cabinet-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and remove the socket file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CONNECTION_TIMEOUT + 1)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                _LOGGER.exception("The control socket %s failed", self.path)
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(CONNECTION_TIMEOUT)
        try:
            line = _read_line(conn)
        except OSError as err:
            _LOGGER.debug("Control connection dropped: %s", err)
            return
        try:
            message = json.loads(line)
            command = message["command"]
            if not isinstance(command, str):
                raise TypeError(command)
        except (ValueError, TypeError, KeyError):
            answer: dict[str, Any] = {"ok": False, "error": 'expected {"command": ...}'}
        else:
            try:
                answer = self._handler(command)
            except Exception as err:  # One bad request must not stop the control socket.
                _LOGGER.exception("Control command %r failed", command)
                answer = {"ok": False, "error": f"{command} failed: {err}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer).encode() + b"\n")
