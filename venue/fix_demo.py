"""The demo's FIX part: a client logs on to the venue's own acceptor, sends orders and prints
the ExecutionReports it gets back, so ``scripts/start`` shows FIX working end to end.

It speaks through the gateway's codec over TCP like any client (the QuickFIX interop tests do
the same with an independent engine). Errors are printed by the caller, never fatal.
"""

from __future__ import annotations

import asyncio
import time

from gateway.fix.codec import FixMessage, FixParser, Value, encode
from gateway.fix.timestamps import format_utc_timestamp
from venue.config import FixConfig

__all__ = ["client_message", "run_fix_demo"]

_EXEC_TYPES = {
    b"0": "New",
    b"4": "Canceled",
    b"5": "Replaced",
    b"8": "Rejected",
    b"C": "Expired",
    b"F": "Trade",
    b"I": "Status",
}
_STATUS = {b"0": "New", b"1": "PartiallyFilled", b"2": "Filled", b"4": "Canceled", b"8": "Rejected"}


def client_message(
    msg_type: bytes, sender: bytes, target: bytes, seq: int, fields: list[tuple[int, Value]]
) -> bytes:
    """A client's message: the header (SendingTime now), then ``fields``, framed."""
    now = format_utc_timestamp(time.time_ns())
    header: list[tuple[int, Value]] = [
        (35, msg_type),
        (49, sender),
        (56, target),
        (34, seq),
        (52, now),
    ]
    return encode([*header, *fields])


class _Client:
    def __init__(self, port: int, sender: str, target: str) -> None:
        self.port = port
        self.sender = sender.encode()
        self.target = target.encode()
        self.seq = 0
        self.parser = FixParser()
        self.pending: list[FixMessage] = []
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def logon(self) -> FixMessage:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        # the demo starts its sessions afresh; a real client keeps its sequence numbers
        self.send(b"A", [(98, b"0"), (108, 30), (141, b"Y")])
        return await self.expect(lambda m: m.msg_type == b"A")

    def send(self, msg_type: bytes, fields: list[tuple[int, Value]]) -> None:
        self.seq += 1
        assert self.writer is not None
        self.writer.write(client_message(msg_type, self.sender, self.target, self.seq, fields))

    async def expect(self, match: object, timeout: float = 5.0) -> FixMessage:
        assert self.reader is not None and callable(match)
        deadline = time.monotonic() + timeout
        while True:
            for index, msg in enumerate(self.pending):
                if match(msg):
                    return self.pending.pop(index)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.sender.decode()}: no answer from the venue")
            data = await asyncio.wait_for(self.reader.read(65536), left)
            if not data:
                raise ConnectionError(f"{self.sender.decode()}: the venue closed the connection")
            self.pending.extend(m for m in self.parser.feed(data) if isinstance(m, FixMessage))

    async def report(self, cl_ord_id: bytes, exec_type: bytes) -> FixMessage:
        msg = await self.expect(
            lambda m: m.msg_type == b"8" and m.get(11) == cl_ord_id and m.get(150) == exec_type
        )
        print(f"    <- {self.sender.decode()}: {describe(msg)}", flush=True)
        return msg

    async def logout(self) -> None:
        self.send(b"5", [])
        try:
            await self.expect(lambda m: m.msg_type == b"5", timeout=2.0)
        finally:
            if self.writer is not None:
                self.writer.close()


def describe(msg: FixMessage) -> str:
    """One line for an ExecutionReport."""
    exec_type = _EXEC_TYPES.get(msg.get(150) or b"", "?")
    status = _STATUS.get(msg.get(39) or b"", "?")
    text = (
        f"ExecutionReport {exec_type} ({status}) order {msg.get_str(37)} "
        f"{msg.get_str(11)}: cum {msg.get_str(14)} leaves {msg.get_str(151)}"
    )
    if msg.get(150) == b"F":
        text += f"; last {msg.get_str(32)} @ {msg.get_str(31)}, avg {msg.get_str(6)}"
        if msg.get(12) is not None:
            text += f", commission {msg.get_str(12)} {msg.get_str(479)}"
    if msg.get(58):
        text += f" [{msg.get_str(58)}]"
    return text


async def run_fix_demo(fix: FixConfig, port: int, run: int, symbol: str) -> None:
    """Two order entry sessions of the configuration trade over FIX; printed as it goes."""
    entry = [s for s in fix.sessions if s.kind == "order_entry" and len(s.accounts) == 1]
    if len(entry) < 2:
        print("  (FIX: fewer than two single-account order entry sessions configured)")
        return
    maker_cfg, taker_cfg = entry[0], entry[1]
    maker = _Client(port, maker_cfg.target_comp_id, fix.sender_comp_id)
    taker = _Client(port, taker_cfg.target_comp_id, fix.sender_comp_id)
    print(
        f"demo: FIX 4.4 on 127.0.0.1:{port}, sessions {maker_cfg.target_comp_id} and "
        f"{taker_cfg.target_comp_id} to {fix.sender_comp_id}",
        flush=True,
    )
    for client in (maker, taker):
        logon = await client.logon()
        print(f"    <- {client.sender.decode()}: Logon, HeartBtInt {logon.get_str(108)}")
    ask = f"demo{run}-fix-ask".encode()
    bid = f"demo{run}-fix-bid".encode()
    stamp = format_utc_timestamp(time.time_ns())
    print(f"  -> {maker_cfg.target_comp_id}: NewOrderSingle sell 0.01000 {symbol} limit 99000.00")
    maker.send(
        b"D",
        [
            (11, ask),
            (55, symbol),
            (54, b"2"),
            (60, stamp),
            (40, b"2"),
            (38, b"0.01"),
            (44, b"99000"),
        ],
    )
    await maker.report(ask, b"0")
    print(f"  -> {taker_cfg.target_comp_id}: NewOrderSingle buy 0.01000 {symbol} market")
    taker.send(b"D", [(11, bid), (55, symbol), (54, b"1"), (60, stamp), (40, b"1"), (38, b"0.01")])
    await taker.report(bid, b"F")
    print(f"  -> {maker_cfg.target_comp_id}: OrderCancelRequest for {ask.decode()}")
    maker.send(
        b"F",
        [(11, ask + b"-x"), (41, ask), (55, symbol), (54, b"2"), (60, stamp)],
    )
    await maker.report(ask + b"-x", b"4")
    for client in (maker, taker):
        await client.logout()
