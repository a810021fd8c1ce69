"""The cabinet's balance on disk: one small JSON file, replaced atomically.

The state file is the truth about the cabinet. A payment id is in it if and only if that
payment's credits are in its balance, because both change in one atomic write; the agent
acknowledges a payment only after that write. ``pending_coins`` counts credits that are in
the balance but whose coin command has not run yet; it is lowered after each coin command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import fcntl
from itertools import islice
import json
import os
from pathlib import Path
from typing import IO, Any, Final

from .protocol import GameState

# Payment ids remembered to drop repeated pulses, oldest dropped first. Home Assistant
# re-sends a pulse only until it is acknowledged, so only recent ids can come back; 10 000
# Stripe ids (about 70 bytes each) keep the file below a megabyte.
MAX_APPLIED_IDS: Final = 10_000
STATE_VERSION: Final = 1


class StateFileError(Exception):
    """The state file cannot be locked, read or written."""


@dataclass(frozen=True, slots=True)
class Ledger:
    """Credits on the cabinet, coins still to insert and the payments already applied.

    Immutable: every change returns a new ledger, which the agent adopts only once it is
    written, so a failed write leaves memory and disk agreeing. ``applied`` keeps insertion
    order (oldest first) and is never changed in place.
    """

    credits: int = 0
    pending_coins: int = 0
    applied: Mapping[str, None] = field(default_factory=dict)

    @property
    def state(self) -> GameState:
        """``playing`` while credits remain, else ``attract``."""
        return GameState.PLAYING if self.credits > 0 else GameState.ATTRACT

    def has_applied(self, payment_id: str) -> bool:
        """Return whether the credits of this payment are already in the balance."""
        return payment_id in self.applied

    def with_pulse(self, credits: int, payment_id: str | None, keep: int = MAX_APPLIED_IDS) -> Ledger:
        """Add a coin pulse's credits (and coins to insert), remembering its payment id."""
        applied = self.applied
        if payment_id is not None:
            grown = dict(self.applied)
            grown[payment_id] = None
            for oldest in list(islice(grown, max(0, len(grown) - keep))):
                del grown[oldest]
            applied = grown
        return Ledger(self.credits + credits, self.pending_coins + credits, applied)

    def with_game_over(self, credits_per_game: int) -> Ledger:
        """A game ended: its credits are used (the balance never goes below zero)."""
        return Ledger(max(0, self.credits - credits_per_game), self.pending_coins, self.applied)

    def with_coin_inserted(self) -> Ledger:
        """One coin command ran."""
        return Ledger(self.credits, max(0, self.pending_coins - 1), self.applied)


def _count(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    return value


class StateFile:
    """Where one cabinet's ledger lives, and the lock that keeps a second agent away."""

    def __init__(self, path: Path, machine_id: str) -> None:
        """Point at the file; nothing is read or created yet."""
        self.path = path
        self.machine_id = machine_id
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._lock_path = path.with_name(f"{path.name}.lock")
        self._lock_file: IO[bytes] | None = None

    def lock(self) -> None:
        """Create the directory and take the agent's lock, or raise StateFileError."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_file = self._lock_path.open("ab")
        except OSError as err:
            raise StateFileError(f"cannot create {self._lock_path}: {err}") from err
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            lock_file.close()
            raise StateFileError(
                f"another arcade-cabinet agent is running with {self.path} (locked: {self._lock_path})"
            ) from err
        self._lock_file = lock_file

    def unlock(self) -> None:
        """Release the lock (the kernel also does when the process dies)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def load(self) -> Ledger:
        """Read the ledger; a missing file is a new cabinet with nothing on it."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Ledger()
        except OSError as err:
            raise StateFileError(f"cannot read {self.path}: {err}") from err
        try:
            return self._parse(json.loads(raw))
        except (ValueError, TypeError, RecursionError) as err:
            raise StateFileError(
                f"{self.path} is damaged ({err}); move it away to start again from 0 credits"
            ) from err

    def _parse(self, data: Any) -> Ledger:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} arcade-cabinet state file")
        if data.get("machine_id") != self.machine_id:
            raise ValueError(f"it belongs to machine {data.get('machine_id')!r}, not {self.machine_id!r}")
        credits, pending = _count(data, "credits"), _count(data, "pending_coins")
        ids = data.get("applied_payment_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("applied_payment_ids must be a list of strings")
        return Ledger(credits, pending, dict.fromkeys(ids))

    def save(self, ledger: Ledger) -> None:
        """Replace the file atomically and durably: temp file, fsync, rename, fsync directory.

        When this returns, the ledger survives a power cut; when it raises (StateFileError)
        or the process dies inside, the file holds the previous ledger or this one, whole.
        """
        document = {
            "version": STATE_VERSION,
            "machine_id": self.machine_id,
            "credits": ledger.credits,
            "pending_coins": ledger.pending_coins,
            "applied_payment_ids": list(ledger.applied),
        }
        data = json.dumps(document, separators=(",", ":")).encode()
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            self._tmp.replace(self.path)
            directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as err:
            raise StateFileError(f"cannot write {self.path}: {err}") from err
