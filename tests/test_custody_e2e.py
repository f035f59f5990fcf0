"""End to end on the test chains: a real ``venue run`` with custody, its embedded Bitcoin and
Ethereum chains in their own processes, the clients' side over the REST door.

The worked example, for ETH and for BTC: 1.0 deposited to the seller's address and credited
only at the asset's confirmations (shown pending with its count until then), the buyer's USDT
deposited as an ERC-20, the reference price set by an operator, 0.5 sold at the reference and
0.5 offered one step above, a market buy of 0.6 taking the first and part of the next, balances
settled with fees, 0.5 withdrawn by the buyer with the network fee deducted (the same
``withdrawOrderId`` twice makes one withdrawal), paid from the hot wallet the deposits were swept
into, and the ledger's fees holding the withdrawal fee.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak
from rest_client import signed

from custody.signer import SECP256K1_N

REPO = Path(__file__).resolve().parent.parent
RUNNING = re.compile(
    r"admin API on (http://[0-9.]+:\d+); FIX on [0-9.]+:\d+; REST and WebSocket on "
    r"(http://[0-9.]+:\d+)"
)
SELLER, BUYER = 1001, 1002
#: an outside address of the buyer's, on each chain
OUTSIDE = {"ETH": "0x" + "5e" * 20}
DEADLINE_S = 60


class SoftSigner:
    """A key of a client's own wallet (outside the venue): software, as a client's would be."""

    def __init__(self, seed: bytes) -> None:
        self._key = PrivateKey(keccak(seed))

    def public_key(self) -> bytes:
        return bytes(self._key.public_key.to_compressed_bytes())

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        _, r, s = self._key.sign_msg_hash(digest).vrs
        return r, (SECP256K1_N - s if s > SECP256K1_N // 2 else s)


def quick_config(tmp_path: Path) -> Path:
    """The shipped configuration with chains that mine only when the test says, no cool-down
    on whitelisted addresses, and quick polls."""
    text = (REPO / "config/venue.toml").read_text()
    text = re.sub(r"test_block_ms = \d+", "test_block_ms = 0", text)
    text = re.sub(r"poll_ms = \d+", "poll_ms = 100", text)
    text = text.replace("whitelist_cooldown_s = 86400", "whitelist_cooldown_s = 0")
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


class Venue:
    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.token_file = tmp_path / "admin.token"
        args = [sys.executable, "-m", "venue.cli", "run", "--config", str(quick_config(tmp_path))]
        args += ["--data-dir", str(self.data), "--admin-port", "0", "--fix-port", "0"]
        args += ["--rest-port", "0", "--admin-token-file", str(self.token_file)]
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        assert self.proc.stdout is not None
        stream = self.proc.stdout

        def read() -> None:
            for line in stream:
                self.output.append(line)
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        match = None
        deadline = time.monotonic() + 90
        while match is None and time.monotonic() < deadline and self.proc.poll() is None:
            try:
                match = RUNNING.search(lines.get(timeout=0.2))
            except queue.Empty:
                continue
        assert match is not None, "the venue did not start:\n" + "".join(self.output[-40:])
        self.admin, self.rest = match.group(1), match.group(2)
        self.token = self.token_file.read_text().strip()

    def chain_url(self, name: str) -> str:
        port = int((self.data / "chains" / name / "rpc.port").read_text())
        return f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for name in ("bitcoin", "ethereum"):  # chains left by a venue that did not stop cleanly
            pid_file = self.data / "chains" / name / "node.pid"
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def rpc(url: str, method: str, *params: Any, cookie: Path | None = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    if cookie is not None:
        import base64

        request.add_header(
            "Authorization", "Basic " + base64.b64encode(cookie.read_text().encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read(), parse_float=Decimal)
    assert answer.get("error") is None, (method, answer)
    return answer["result"]


async def admin(
    http: aiohttp.ClientSession, venue: Venue, method: str, path: str, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {venue.token}"}
    async with http.request(method, f"{venue.admin}{path}", json=body, headers=headers) as r:
        answer = await r.json()
        assert r.status == 200, (path, r.status, answer)
        return answer


async def until(what: str, check: Any, mine: Any = None, timeout_s: float = DEADLINE_S) -> Any:
    """Poll ``check`` (an async callable answering a truthy value when done), mining a block
    with ``mine`` between polls if given; bounded by ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        if mine is not None:
            mine()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})")


def balances(account: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in account["balances"]}


@pytest.fixture
def venue(tmp_path: Path) -> Any:
    running = Venue(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_eth_worked_example(venue: Venue) -> None:
    eth = venue.chain_url("ethereum")

    def mine(n: int = 1) -> None:
        rpc(eth, "evm_mine", n)

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            keys = {}
            for account in (SELLER, BUYER):
                grant = {"permissions": ["TRADE", "USER_DATA", "WITHDRAW"]}
                grant["ipAllowlist"] = ["127.0.0.1"]
                made = await admin(http, venue, "POST", f"/v1/accounts/{account}/api-keys", grant)
                keys[account] = (made["apiKey"], made["secretKey"])

            async def call(account: int, method: str, path: str, **params: Any) -> Any:
                status, answer = await signed(
                    http, venue.rest, method, path, keys[account], **params
                )
                assert status == 200, (path, status, answer)
                return answer

            seller = (await call(SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="ETH"))[
                "address"
            ]
            buyer = (await call(BUYER, "GET", "/sapi/v1/capital/deposit/address", coin="USDT"))[
                "address"
            ]
            again = await call(
                SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="ETH", network="ETH"
            )
            assert again["address"] == seller and seller != buyer
            rpc(eth, "venue_fund", seller, hex(10**18))
            rpc(eth, "venue_mintUsdt", buyer, hex(3000 * 10**6))
            mine()

            async def deposit_of(account: int, coin: str) -> Any:
                rows = await call(account, "GET", "/sapi/v1/capital/deposit/hisrec", coin=coin)
                return rows[0] if rows else None

            first = await until("the deposit seen", lambda: deposit_of(SELLER, "ETH"))
            assert (first["status"], first["confirmTimes"], first["amount"]) == (
                0,
                "1/12",
                "1.00000000",
            )
            mine(10)
            await until(
                "11 confirmations", lambda: _has(deposit_of(SELLER, "ETH"), "confirmTimes", "11/12")
            )
            account = await call(SELLER, "GET", "/api/v3/account")
            assert "ETH" not in balances(account) or balances(account)["ETH"] == (0, 0)
            staff = await admin(http, venue, "GET", f"/v1/custody/deposits?account={SELLER}")
            seen = [(d["status"], d["confirmations"], d["required"]) for d in staff["deposits"]]
            assert seen == [("pending", 11, 12)]  # the treasury page's view of the deposit
            mine()  # the 12th
            await until("credited", lambda: _has(deposit_of(SELLER, "ETH"), "status", 1))
            staff = await admin(http, venue, "GET", f"/v1/custody/deposits?account={SELLER}")
            assert [(d["status"], d["confirmations"]) for d in staff["deposits"]] == [
                ("credited", 12)
            ]
            await until("USDT credited", lambda: _has(deposit_of(BUYER, "USDT"), "status", 1))
            assert balances(await call(SELLER, "GET", "/api/v3/account"))["ETH"] == (1, 0)
            assert balances(await call(BUYER, "GET", "/api/v3/account"))["USDT"] == (3000, 0)

            await admin(
                http, venue, "POST", "/v1/instruments/ETH-USDT/reference-price", {"price": "2500"}
            )
            for price in ("2500", "2510"):
                await call(
                    SELLER, "POST", "/api/v3/order", symbol="ETHUSDT", side="SELL", type="LIMIT",
                    timeInForce="GTC", quantity="0.5", price=price,
                )  # fmt: skip
            fill = await call(
                BUYER,
                "POST",
                "/api/v3/order",
                symbol="ETHUSDT",
                side="BUY",
                type="MARKET",
                quantity="0.6",
            )
            assert fill["status"] == "FILLED" and Decimal(fill["cummulativeQuoteQty"]) == 1501
            b = balances(await call(BUYER, "GET", "/api/v3/account"))
            s = balances(await call(SELLER, "GET", "/api/v3/account"))
            assert b["ETH"] == (Decimal("0.5994"), 0)  # 0.6 less the 0.1 % taker fee
            assert b["USDT"] == (Decimal(1499), 0)
            assert s["ETH"] == (0, Decimal("0.4")) and s["USDT"] == (Decimal("1499.499"), 0)

            await admin(
                http, venue, "POST", "/v1/custody/whitelist",
                {"account": BUYER, "chain": "ethereum", "address": OUTSIDE["ETH"], "label": "own"},
            )  # fmt: skip
            wid = await call(
                BUYER, "POST", "/sapi/v1/capital/withdraw/apply", coin="ETH",
                address=OUTSIDE["ETH"], amount="0.5", withdrawOrderId="w-1", network="ETH",
            )  # fmt: skip
            retried = await call(
                BUYER, "POST", "/sapi/v1/capital/withdraw/apply", coin="ETH",
                address=OUTSIDE["ETH"], amount="0.5", withdrawOrderId="w-1",
            )  # fmt: skip
            assert retried == wid
            assert balances(await call(BUYER, "GET", "/api/v3/account"))["ETH"] == (
                Decimal("0.0994"),
                Decimal("0.5"),
            )

            async def paid() -> Any:
                rows = await call(BUYER, "GET", "/sapi/v1/capital/withdraw/history", coin="ETH")
                return rows[0] if rows and rows[0]["status"] == 6 else None

            done = await until("the withdrawal paid", paid, mine)
            assert done["id"] == wid["id"] and done["withdrawOrderId"] == "w-1"
            assert (done["amount"], done["transactionFee"]) == ("0.495", "0.005")
            assert int(rpc(eth, "eth_getBalance", OUTSIDE["ETH"], "latest"), 16) == 495 * 10**15
            assert balances(await call(BUYER, "GET", "/api/v3/account"))["ETH"] == (
                Decimal("0.0994"),
                0,
            )
            history = await call(BUYER, "GET", "/sapi/v1/capital/withdraw/history")
            assert len(history) == 1  # the retried request made nothing
            wallets = {
                w["asset"]: w
                for w in (await admin(http, venue, "GET", "/v1/custody/wallets"))["wallets"]
            }
            eth_wallet = wallets["ETH"]
            assert Decimal(eth_wallet["surplus"]) >= 0  # holdings cover the participants
            assert Decimal(eth_wallet["liabilities"]) == Decimal("0.4994")

    asyncio.run(asyncio.wait_for(body(), 240))


async def _has(row: Any, key: str, value: Any) -> Any:
    found = await row
    return found if found is not None and found.get(key) == value else None
