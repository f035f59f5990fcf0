"""Every command is journaled with its origin: the door, the principal, the request id and the
remote address, read back from the journal on disk (where the audit trail and surveillance will
read them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fix_client import now
from test_edge_differential import ACCOUNT, SYM, doors

from engine.codec import decode
from engine.commands import CancelOrder, Deposit, NewOrder, Tick
from engine.journal import iter_records
from engine.recovery import JOURNAL_DIR
from engine.types import Door


def test_commands_from_every_door_are_journaled_with_their_origin(tmp_path: Path) -> None:
    async def body() -> None:
        async with doors(tmp_path) as d:
            order = [(55, SYM), (54, b"1"), (60, now()), (40, b"2"), (38, b"0.1"), (44, b"94000")]
            d.fix.send(b"D", [(11, b"o-fix"), *order])
            await d.fix.expect_type(b"8", _11=b"o-fix")
            d.fix.send(b"F", [(41, b"o-fix"), (11, b"x-fix"), (55, SYM), (54, b"1"), (60, now())])
            await d.fix.expect_type(b"8", _11=b"x-fix")
            body = {"account": ACCOUNT, "symbol": SYM, "side": "BUY", "type": "LIMIT"}
            body.update(quantity="0.1", price="94000", clientOrderId="o-admin")
            headers = {"X-Request-Id": "ticket-42"}
            async with d.http.post("/v1/orders", json=body, headers=headers) as response:
                assert response.status == 200
            await d.venue.submit(Tick())  # a command without an origin still journals

    asyncio.run(asyncio.wait_for(body(), 60))
    commands = [decode(payload) for _, payload in iter_records(tmp_path / JOURNAL_DIR)]
    by_kind = {
        (type(c).__name__, getattr(c, "client_order_id", "")): c
        for c in commands
        if not isinstance(c, Deposit)
    }
    fix_order = by_kind[("NewOrder", "o-fix")]
    assert isinstance(fix_order, NewOrder) and fix_order.origin is not None
    assert fix_order.origin.door is Door.FIX
    assert fix_order.origin.principal.endswith("A") and "VENUE" in fix_order.origin.principal
    assert fix_order.origin.remote.startswith("127.0.0.1:")
    cancel = next(c for c in commands if isinstance(c, CancelOrder))
    assert cancel.origin is not None and cancel.origin.request_id == "x-fix"
    assert cancel.origin.door is Door.FIX
    admin_order = by_kind[("NewOrder", "o-admin")]
    assert admin_order.origin is not None
    assert (admin_order.origin.door, admin_order.origin.request_id) == (Door.ADMIN, "ticket-42")
    assert admin_order.origin.remote.startswith("127.0.0.1:")
    assert isinstance(commands[-1], Tick) and commands[-1].origin is None
