"""The venue process's parts start in order and stop in reverse; a start that fails stops what
had started, so nothing is left listening or locked."""

from __future__ import annotations

import asyncio

import pytest

from venue.parts import Parts


class Recorder:
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start

    async def start(self) -> None:
        if self.fail_start:
            self.log.append(f"start {self.name} failed")
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_parts_stop_in_reverse_order() -> None:
    log: list[str] = []

    async def body() -> None:
        parts = Parts()
        for name in ("venue", "settlement", "admin"):
            await parts.start(Recorder(name, log))
        assert parts.names == ["venue", "settlement", "admin"]
        await parts.stop()
        await parts.stop()  # a second stop does nothing

    asyncio.run(body())
    assert log == [
        "start venue",
        "start settlement",
        "start admin",
        "stop admin",
        "stop settlement",
        "stop venue",
    ]


def test_a_failed_start_stops_what_had_started_and_raises() -> None:
    log: list[str] = []

    async def body() -> None:
        parts = Parts()
        await parts.start(Recorder("venue", log))
        await parts.start(Recorder("ledger", log))
        with pytest.raises(RuntimeError, match="admin cannot start"):
            await parts.start(Recorder("admin", log, fail_start=True))
        assert parts.names == []

    asyncio.run(body())
    assert log == [
        "start venue",
        "start ledger",
        "start admin failed",
        "stop ledger",
        "stop venue",
    ]


def test_a_part_that_fails_to_stop_does_not_keep_the_others_running() -> None:
    log: list[str] = []

    class Stubborn(Recorder):
        async def stop(self) -> None:
            self.log.append(f"stop {self.name} failed")
            raise OSError("busy")

    async def body() -> None:
        parts = Parts()
        await parts.start(Recorder("venue", log))
        await parts.start(Stubborn("fix", log))
        await parts.stop()

    asyncio.run(body())
    assert log == ["start venue", "start fix", "stop fix failed", "stop venue"]
