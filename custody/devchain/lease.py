"""A test chain's lease: the venue that runs an embedded chain touches ``<datadir>/lease`` every
few seconds; a chain whose lease has not been touched for ``lease_s`` stops by itself. A venue
killed (a crash test, a SIGKILL) leaves its chains running so the next venue finds them; the
lease makes sure that a chain nobody comes back for does not run for ever."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CHECK_S", "touch", "watch"]

CHECK_S = 2.0


def touch(path: Path) -> None:
    """Renew the lease (made if missing)."""
    path.touch()
    os.utime(path)


async def watch(path: Path, lease_s: float, stop: Callable[[], None]) -> None:
    """Call ``stop`` once ``path`` is older than ``lease_s`` seconds (a missing file is no
    lease: the chain runs until stopped)."""
    while True:
        await asyncio.sleep(CHECK_S)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > lease_s:
            stop()
            return
