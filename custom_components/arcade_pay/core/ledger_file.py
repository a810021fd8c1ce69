"""Whether the ledger's file is still the one that was opened.

Plain Python (no Home Assistant import). SQLite keeps writing to the file it opened even
after someone deletes it or puts another file at its path (a restored backup, a copy): the
writes then land where nobody will read them, and the next start opens, or creates, another
ledger that does not know which payments were credited. So before every write the ledger
compares the device and inode at its path with those it opened, and refuses the write when
they differ: the caller fails loudly (the webhook answers 500, Stripe delivers again).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


class LedgerFile:
    """The ledger's file as it was opened."""

    def __init__(self, path: Path) -> None:
        """Watch ``path`` (from ``opened`` on)."""
        self.path = path
        self._opened: tuple[int, int] | None = None
        # Called once, from the thread that found out, with the reason (for a repair).
        self.on_replaced: Callable[[str], None] | None = None
        self._reported = False

    def opened(self) -> None:
        """The ledger just opened the file at ``path``: that is the one to write to."""
        self._opened = _identity(self.path)
        self._reported = False

    def problem(self) -> str | None:
        """Why the file at ``path`` is not the one opened, or None while it is."""
        now = _identity(self.path)
        if self._opened is None or now == self._opened:
            return None
        how = "deleted" if now is None else "replaced by another file"
        reason = f"ledger file {self.path} was {how} while Home Assistant was running"
        if not self._reported:
            self._reported = True
            if self.on_replaced is not None:
                self.on_replaced(reason)
        return reason
