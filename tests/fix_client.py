"""A small asyncio FIX 4.4 client for tests: logon, send fields, wait for matching messages.

It speaks through the project's own codec, frames and checks every message it receives, and
validates each against the venue's dictionary (what the venue sends must be valid FIX by its
own contract). For an independent peer, see the QuickFIX interop tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.fix.codec import FixMessage, FixParser, Value, encode
from gateway.fix.dictionary import DataDictionary, load_dictionary
from gateway.fix.timestamps import format_utc_timestamp

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
_DICTIONARY: DataDictionary | None = None


def venue_dictionary() -> DataDictionary:
    global _DICTIONARY
    if _DICTIONARY is None:
        known = load_dictionary(SPECS / "FIX44.xml").enum_values(35)
        _DICTIONARY = load_dictionary(SPECS / "FIX44-venue.xml", known_msg_types=known)
    return _DICTIONARY


def now() -> bytes:
    return format_utc_timestamp(time.time_ns())


class FixClient:
    """One initiator connection; ``received`` keeps every message in arrival order."""

    def __init__(self, port: int, sender: str, target: str = "VENUE") -> None:
        self.port = port
        self.sender = sender.encode()
        self.target = target.encode()
        self.seq = 0
        self.received: list[FixMessage] = []
        self.invalid: list[tuple[FixMessage, object]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = FixParser()
        self._cursor = 0
        self.closed = False

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._parser = FixParser()
        self.closed = False

    async def logon(
        self,
        *,
        reset: bool = True,
        extra: Sequence[tuple[int, Value]] = (),
        heartbeat: int = 30,
        sign_with: Callable[[bytes], bytes] | None = None,
        expect: bool = True,
    ) -> FixMessage | None:
        await self.connect()
        if reset:
            self.seq = 0
        fields: list[tuple[int, Value]] = [(98, b"0"), (108, heartbeat)]
        if reset:
            fields.append((141, b"Y"))
        fields.extend(extra)
        if sign_with is not None:
            seq = self.seq + 1
            sending = now()
            payload = b"\x01".join([b"A", self.sender, self.target, b"%d" % seq, sending])
            signature = base64.b64encode(sign_with(payload))
            fields += [(95, len(signature)), (96, signature)]
            self.send_raw(b"A", fields, sending_time=sending)
        else:
            self.send(b"A", fields)
        if not expect:
            return None
        return await self.expect(lambda m: m.msg_type == b"A")

    def send_raw(
        self, msg_type: bytes, fields: Sequence[tuple[int, Value]], sending_time: bytes
    ) -> None:
        self.seq += 1
        header: list[tuple[int, Value]] = [
            (35, msg_type),
            (49, self.sender),
            (56, self.target),
            (34, self.seq),
            (52, sending_time),
        ]
        assert self._writer is not None
        self._writer.write(encode([*header, *fields]))

    def send(self, msg_type: bytes, fields: Sequence[tuple[int, Value]]) -> None:
        self.send_raw(msg_type, fields, now())

    async def _read_more(self, timeout: float) -> bool:
        assert self._reader is not None
        try:
            data = await asyncio.wait_for(self._reader.read(65536), timeout)
        except TimeoutError:
            return False
        if not data:
            self.closed = True
            return False
        for item in self._parser.feed(data):
            assert isinstance(item, FixMessage), f"garbled from the venue: {item}"
            problem = venue_dictionary().validate(item)
            if problem is not None:
                self.invalid.append((item, problem))
            self.received.append(item)
        return True

    async def expect(self, match: Callable[[FixMessage], bool], timeout: float = 5.0) -> FixMessage:
        """The next not yet consumed message that matches (earlier ones stay available)."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.received)):
                msg = self.received[index]
                if match(msg):
                    self.received.pop(index)
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                seen = "\n".join(repr(m) for m in self.received[-10:])
                raise AssertionError(f"{self.sender!r}: no matching message; last seen:\n{seen}")
            await self._read_more(left)

    async def expect_type(self, msg_type: bytes, timeout: float = 5.0, **tags: bytes) -> FixMessage:
        wanted = {int(k[1:]): v for k, v in tags.items()}

        def match(m: FixMessage) -> bool:
            return m.msg_type == msg_type and all(m.get(t) == v for t, v in wanted.items())

        return await self.expect(match, timeout)

    async def drain(self, timeout: float = 0.3) -> list[FixMessage]:
        while await self._read_more(timeout):
            pass
        out, self.received = self.received, []
        return out

    async def wait_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            await self._read_more(deadline - time.monotonic())
        assert self.closed, f"{self.sender!r}: the venue did not close the connection"

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self.closed = True
