"""FIX sessions added and disabled at run time through the admin API: a new counterparty logs on
with its password at once and trades; a wrong password, a name in use, bad input and a role
without the permission are refused; a disabled session is disconnected and refused; both
survive a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from fix_client import FixClient, now

from venue.admin import service_token, staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.fix import attach_gateway, build_gateway
from venue.runtime import Venue

PASSWORD = "a long password for NEWCO"


def _config(data_dir: Path) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fix is not None
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        ledger=None,
        rest=None,
        fix=dataclasses.replace(config.fix, port=0),
    )


@dataclasses.dataclass
class Running:
    venue: Venue
    fix_port: int
    http: aiohttp.ClientSession
    config: VenueConfig

    async def call(
        self, method: str, path: str, body: Any = None, roles: tuple[str, ...] = ()
    ) -> tuple[int, Any]:
        token = (
            service_token(staff_access(self.config), 600, "tests")
            if not roles
            else (staff_access(self.config).store.create_token(roles, 600, "tests")[1])
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, path, json=body, headers=headers) as response:
            return response.status, await response.json()


@asynccontextmanager
async def running(config: VenueConfig) -> AsyncIterator[Running]:
    venue = Venue(config)
    await venue.start()
    assert config.fix is not None
    gateway = build_gateway(config.fix, venue)
    unsubscribe = attach_gateway(gateway, venue)
    _, fix_port = await gateway.acceptor.start()
    runner, host, port = await start_admin(venue, "127.0.0.1", 0, fix=gateway)
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            yield Running(venue, fix_port, http, config)
    finally:
        await runner.cleanup()
        await gateway.acceptor.stop()
        unsubscribe()
        await venue.stop()


async def _logon(port: int, sender: str, password: str) -> FixClient:
    client = FixClient(port, sender)
    await client.logon(extra=[(554, password.encode())])
    return client


async def _refused(port: int, sender: str, password: str) -> None:
    client = FixClient(port, sender)
    await client.logon(extra=[(554, password.encode())], expect=False)
    await client.wait_closed(5)
    assert not any(m.msg_type == b"A" for m in client.received)


def test_a_session_added_at_run_time_trades_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    new = {
        "targetCompId": "NEWCO",
        "type": "ORDER_ENTRY",
        "accounts": [8801],
        "password": PASSWORD,
        "throttlePerS": 100,
    }

    async def first() -> None:
        async with running(config) as r:
            status, made = await r.call("POST", "/v1/fix/sessions", new, ("operator",))
            assert status == 200 and made["targetCompId"] == "NEWCO", made
            assert made["accounts"] == [8801] and made["type"] == "ORDER_ENTRY"
            assert "password" not in str(made).lower()
            client = await _logon(r.fix_port, "NEWCO", PASSWORD)
            client.send(
                b"D",
                [(11, b"n1"), (55, b"BTC-USDT"), (54, b"1"), (60, now()), (40, b"2"),
                 (38, b"0.01"), (44, b"90000")],
            )  # fmt: skip
            report = await client.expect_type(b"8", _11=b"n1")
            assert report.get(150) in (b"0", b"8")  # accepted, or refused for its balance
            assert report.get(1) == b"8801" or report.get(58) is not None
            await client.close()
            await _refused(r.fix_port, "NEWCO", "not the password at all")
            # refusals: a name in use, the file's name, bad input, a role without it
            assert (await r.call("POST", "/v1/fix/sessions", new))[0] == 409
            clash = {**new, "targetCompId": "CLIENT1"}
            assert (await r.call("POST", "/v1/fix/sessions", clash))[0] == 409
            fresh = {**new, "targetCompId": "OTHERCO"}
            for bad in (
                {**fresh, "targetCompId": "NEW CO"},
                {**fresh, "type": "FUTURES"},
                {**fresh, "accounts": []},
                {**fresh, "accounts": ["x"]},
                {**fresh, "password": "short"},
                {**fresh, "bogus": 1},
            ):
                status, error = await r.call("POST", "/v1/fix/sessions", bad)
                assert status == 400 and set(error) == {"code", "msg"}, (bad, error)
            status, _ = await r.call(
                "POST", "/v1/fix/sessions", {**new, "targetCompId": "X"}, ("auditor",)
            )
            assert status == 403
            status, listed = await r.call("GET", "/v1/fix/sessions")
            assert listed["configured"] == ["CLIENT1", "CLIENT2", "BACKOFFICE", "MDCLIENT"]
            assert [s["targetCompId"] for s in listed["added"]] == ["NEWCO"]
            # a second one, disabled while connected
            other = {**new, "targetCompId": "GONECO", "accounts": [8802]}
            assert (await r.call("POST", "/v1/fix/sessions", other))[0] == 200
            connected = await _logon(r.fix_port, "GONECO", PASSWORD)
            status, gone = await r.call("DELETE", "/v1/fix/sessions/GONECO")
            assert status == 200 and gone["disabled"] > 0
            await connected.wait_closed(5)
            await _refused(r.fix_port, "GONECO", PASSWORD)
            # added again in the same process (its store reopened), with a new password
            again = {**other, "password": "another long password!"}
            status, made = await r.call("POST", "/v1/fix/sessions", again)
            assert status == 200 and made["disabled"] is None, made
            client = await _logon(r.fix_port, "GONECO", "another long password!")
            await client.close()
            await _refused(r.fix_port, "GONECO", PASSWORD)
            assert (await r.call("DELETE", "/v1/fix/sessions/GONECO"))[0] == 200
            assert (await r.call("DELETE", "/v1/fix/sessions/CLIENT1"))[0] == 409
            assert (await r.call("DELETE", "/v1/fix/sessions/NOBODY"))[0] == 404

    async def second() -> None:
        async with running(config) as r:
            client = await _logon(r.fix_port, "NEWCO", PASSWORD)  # kept across the restart
            await client.close()
            await _refused(r.fix_port, "GONECO", PASSWORD)  # and so is the disabling
            status, listed = await r.call("GET", "/v1/fix/sessions")
            assert status == 200
            assert [(s["targetCompId"], bool(s["disabled"])) for s in listed["added"]] == [
                ("NEWCO", False),
                ("GONECO", True),
            ]

    asyncio.run(asyncio.wait_for(first(), 60))
    asyncio.run(asyncio.wait_for(second(), 60))
