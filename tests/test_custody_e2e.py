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
from eth_utils.crypto import keccak
from rest_client import signed
from soft_signer import SoftSigner

from custody.chains.btc_tx import TxOutput, Utxo, build_transaction, p2wpkh_address
from custody.crashpoints import ENV, STEPS

REPO = Path(__file__).resolve().parent.parent
RUNNING = re.compile(
    r"admin API on (http://[0-9.]+:\d+); FIX on [0-9.]+:\d+; REST and WebSocket on "
    r"(http://[0-9.]+:\d+)"
)
SELLER, BUYER = 1001, 1002
#: an outside address of the buyer's, on each chain
OUTSIDE = {"ETH": "0x" + "5e" * 20}
DEADLINE_S = 60


def quick_config(tmp_path: Path, band: bool = False) -> Path:
    """The shipped configuration with chains that mine only when the test says, no cool-down
    on whitelisted addresses, quick polls and a short batch window; the hot wallet's band of 2
    to 10 % only with ``band`` (without, nothing moves to cold while a worked example runs)."""
    text = (REPO / "config/venue.toml").read_text()
    if not band:
        text = re.sub(
            r"^(\[custody\.assets\.\w+\])$", r"\1\nhot_min_pct = 0\nhot_max_pct = 100", text,
            flags=re.M,
        )  # fmt: skip
    text = re.sub(r"test_block_ms = \d+", "test_block_ms = 0", text)
    text = re.sub(r"poll_ms = \d+", "poll_ms = 100", text)
    text = text.replace("whitelist_cooldown_s = 86400", "whitelist_cooldown_s = 0")
    text = text.replace("batch_window_ms = 2000", "batch_window_ms = 200")
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


class Venue:
    def __init__(self, tmp_path: Path, crash_at: str = "", band: bool = False) -> None:
        self.data = tmp_path / "data"
        self.token_file = tmp_path / "admin.token"
        config = quick_config(tmp_path, band)
        args = [sys.executable, "-m", "venue.cli", "run", "--config", str(config)]
        args += ["--data-dir", str(self.data), "--admin-port", "0", "--fix-port", "0"]
        args += ["--rest-port", "0", "--admin-token-file", str(self.token_file)]
        env = dict(os.environ)
        env.pop(ENV, None)
        if crash_at:
            env[ENV] = crash_at  # the venue kills itself (SIGKILL) at that step
        self.proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
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
        self.admin = self.rest = ""
        if match is None and crash_at and self.proc.wait(10) == -signal.SIGKILL:
            return  # it died at its crash point while resuming earlier work, before listening
        assert match is not None, "the venue did not start:\n" + "".join(self.output[-40:])
        self.admin, self.rest = match.group(1), match.group(2)
        self.token = self.token_file.read_text().strip()

    def chain_url(self, name: str) -> str:
        port = int((self.data / "chains" / name / "rpc.port").read_text())
        return f"http://127.0.0.1:{port}/"

    def kill(self) -> None:
        """SIGKILL, as a crash: the embedded chains go on, and the next venue finds them."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, chains: bool = True) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not chains:
            return
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


@pytest.fixture
def banded_venue(tmp_path: Path) -> Any:
    running = Venue(tmp_path, band=True)
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
            keys = await _keys(http, venue)

            call = _caller(http, venue, keys)

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

            fill = await _trade(http, venue, call, "ETH", "2500", "2510")
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

            async def usdt_swept() -> Any:
                # the buyer's USDT swept too: the hot wallet first sent its address the gas
                rows = (await admin(http, venue, "GET", "/v1/custody/wallets"))["wallets"]
                found = {w["asset"]: w for w in rows}
                usdt = found["USDT"]
                done = Decimal(usdt["deposits"]) == 0 and Decimal(usdt["hot"]) > 0
                return found if done and usdt["book"]["hot"] == usdt["hot"] else None

            wallets = await until("the USDT swept into the hot wallet", usdt_swept, mine)
            sweeps = (await admin(http, venue, "GET", "/v1/custody/sweeps"))["sweeps"]
            assert {(s["asset"], s["status"]) for s in sweeps} == {
                ("ETH", "done"), ("USDT", "done")
            }  # fmt: skip
            moves = (await admin(http, venue, "GET", "/v1/custody/withdrawals"))["withdrawals"]
            [gas] = [m for m in moves if m["kind"] == "gas"]
            assert gas["state"] == "completed" and gas["coin"] == "ETH"
            eth_wallet = wallets["ETH"]
            assert Decimal(eth_wallet["surplus"]) >= 0  # holdings cover the participants
            assert Decimal(eth_wallet["liabilities"]) == Decimal("0.4994")
            # the books follow the chain: the deposit swept into the hot wallet, the payout
            # out of it, the gas sent for the token's sweep, each network fee rounded up
            # (never more than the chain holds: what gas was not burnt stays unbooked)
            book = eth_wallet["book"]
            # the gas the token's transfer did not burn stays at its deposit address
            left = Decimal(eth_wallet["deposits"])
            assert 0 < Decimal(book["deposits"]) <= left < Decimal("0.001")
            assert Decimal(book["cold"]) == 0
            hot = Decimal(eth_wallet["hot"])
            assert hot - Decimal("0.0001") < Decimal(book["hot"]) <= hot < Decimal("0.505")
            assert Decimal(wallets["USDT"]["book"]["deposits"]) == 0
            await _proof_of_reserves(http, venue, keys, call)

    asyncio.run(asyncio.wait_for(body(), 240))


async def _has(row: Any, key: str, value: Any) -> Any:
    found = await row
    return found if found is not None and found.get(key) == value else None


def test_btc_worked_example(venue: Venue) -> None:
    btc, eth = venue.chain_url("bitcoin"), venue.chain_url("ethereum")
    cookie = venue.data / "chains" / "bitcoin" / ".cookie"
    funder = SoftSigner(b"a client's own bitcoin wallet")
    funder_address = p2wpkh_address(funder.public_key(), "regtest")
    outside = p2wpkh_address(SoftSigner(b"the buyer's cold storage").public_key(), "regtest")

    def bitcoind(method: str, *params: Any) -> Any:
        return rpc(btc, method, *params, cookie=cookie)

    def mine_btc(n: int = 1) -> None:
        bitcoind("generatetoaddress", n, funder_address)

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            keys = await _keys(http, venue)

            call = _caller(http, venue, keys)

            address = await call(SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="BTC")
            seller = address["address"]
            assert seller.startswith("bcrt1q")
            buyer = (await call(BUYER, "GET", "/sapi/v1/capital/deposit/address", coin="USDT"))[
                "address"
            ]
            rpc(eth, "venue_mintUsdt", buyer, hex(70_000 * 10**6))
            rpc(eth, "evm_mine", 12)
            mine_btc(101)  # the first coinbase matures
            [coin, *_] = bitcoind("scantxoutset", "start", [f"addr({funder_address})"])["unspents"]
            utxo = Utxo(
                coin["txid"], coin["vout"], int(coin["amount"] * 10**8), funder.public_key()
            )
            paying = build_transaction(
                [utxo], [TxOutput(seller, 10**8)], funder_address, 2_000, [funder], "regtest"
            )
            bitcoind("sendrawtransaction", paying.hex)
            mine_btc()

            async def deposit_of(account: int, coin: str) -> Any:
                rows = await call(account, "GET", "/sapi/v1/capital/deposit/hisrec", coin=coin)
                return rows[0] if rows else None

            first = await until("the deposit seen", lambda: deposit_of(SELLER, "BTC"))
            assert (first["status"], first["confirmTimes"], first["txId"]) == (
                0,
                "1/3",
                paying.txid,
            )
            mine_btc()
            await until(
                "2 confirmations", lambda: _has(deposit_of(SELLER, "BTC"), "confirmTimes", "2/3")
            )
            assert balances(await call(SELLER, "GET", "/api/v3/account"))["BTC"] == (0, 0)
            mine_btc()
            await until("credited", lambda: _has(deposit_of(SELLER, "BTC"), "status", 1))
            await until("USDT credited", lambda: _has(deposit_of(BUYER, "USDT"), "status", 1))
            assert balances(await call(SELLER, "GET", "/api/v3/account"))["BTC"] == (1, 0)

            fill = await _trade(http, venue, call, "BTC", "95000", "95100")
            assert fill["status"] == "FILLED" and Decimal(fill["cummulativeQuoteQty"]) == 57010
            b = balances(await call(BUYER, "GET", "/api/v3/account"))
            s = balances(await call(SELLER, "GET", "/api/v3/account"))
            assert b["BTC"] == (Decimal("0.5994"), 0) and b["USDT"] == (Decimal(12990), 0)
            assert s["BTC"] == (0, Decimal("0.4")) and s["USDT"] == (Decimal("56952.99"), 0)

            whitelist = {"account": BUYER, "chain": "bitcoin", "address": outside, "label": "cold"}
            await admin(http, venue, "POST", "/v1/custody/whitelist", whitelist)
            wid = await call(
                BUYER, "POST", "/sapi/v1/capital/withdraw/apply", coin="BTC", address=outside,
                amount="0.5", withdrawOrderId="b-1", network="BTC",
            )  # fmt: skip
            assert wid == await call(
                BUYER, "POST", "/sapi/v1/capital/withdraw/apply", coin="BTC", address=outside,
                amount="0.5", withdrawOrderId="b-1",
            )  # fmt: skip

            async def paid() -> Any:
                rows = await call(BUYER, "GET", "/sapi/v1/capital/withdraw/history", coin="BTC")
                return rows[0] if rows and rows[0]["status"] == 6 else None

            done = await until("the withdrawal paid", paid, mine_btc)
            assert (done["amount"], done["transactionFee"]) == ("0.4995", "0.0005")
            received = bitcoind("scantxoutset", "start", [f"addr({outside})"])
            assert int(received["total_amount"] * 10**8) == 49_950_000
            assert balances(await call(BUYER, "GET", "/api/v3/account"))["BTC"] == (
                Decimal("0.0994"),
                0,
            )
            [wallet] = [
                w
                for w in (await admin(http, venue, "GET", "/v1/custody/wallets"))["wallets"]
                if w["asset"] == "BTC"
            ]
            assert wallet["book"] == {
                "deposits": "0.00000000",
                "hot": wallet["hot"],
                "cold": "0.00000000",
            }

    asyncio.run(asyncio.wait_for(body(), 240))


def _caller(http: aiohttp.ClientSession, venue: Venue, keys: Any) -> Any:
    """A client's signed REST call as ``call(account, method, path, **params)``: its answer,
    asserted 200."""

    async def call(account: int, method: str, path: str, **params: Any) -> Any:
        status, answer = await signed(http, venue.rest, method, path, keys[account], **params)
        assert status == 200, (path, status, answer)
        return answer

    return call


async def _trade(
    http: aiohttp.ClientSession, venue: Venue, call: Any, base: str, reference: str, above: str
) -> Any:
    """The worked example's trading: an operator sets the reference price, the seller offers
    0.5 at it and 0.5 at ``above``, the buyer's market order for 0.6 takes the first and part
    of the next. Answers the buyer's order."""
    symbol = f"{base}USDT"
    path = f"/v1/instruments/{base}-USDT/reference-price"
    await admin(http, venue, "POST", path, {"price": reference})
    for price in (reference, above):
        await call(
            SELLER, "POST", "/api/v3/order", symbol=symbol, side="SELL", type="LIMIT",
            timeInForce="GTC", quantity="0.5", price=price,
        )  # fmt: skip
    return await call(
        BUYER, "POST", "/api/v3/order", symbol=symbol, side="BUY", type="MARKET", quantity="0.6"
    )


async def _keys(http: aiohttp.ClientSession, venue: Venue) -> dict[int, tuple[str, str]]:
    """An API key that trades, reads and withdraws (from loopback only) for each account."""
    keys = {}
    for account in (SELLER, BUYER):
        grant = {"permissions": ["TRADE", "USER_DATA", "WITHDRAW"], "ipAllowlist": ["127.0.0.1"]}
        made = await admin(http, venue, "POST", f"/v1/accounts/{account}/api-keys", grant)
        keys[account] = (made["apiKey"], made["secretKey"])
    return keys


def test_a_sigkill_at_every_step_of_a_withdrawal_never_pays_twice(tmp_path: Path) -> None:
    """The venue kills itself at each named step of the withdrawal pipeline in turn (a
    withdrawal asked for in each run; the chains go on). Started again, every withdrawal
    completes once: each outside address receives exactly its amount less the fee, the account
    is debited once per withdrawal, and the client's retries make nothing new."""
    venue = Venue(tmp_path)
    eth = venue.chain_url("ethereum")

    def mine(n: int = 1) -> None:
        rpc(eth, "evm_mine", n)

    async def setup() -> dict[int, tuple[str, str]]:
        async with aiohttp.ClientSession() as http:
            keys = await _keys(http, venue)
            status, address = await signed(
                http, venue.rest, "GET", "/sapi/v1/capital/deposit/address", keys[BUYER], coin="ETH"
            )
            assert status == 200
            rpc(eth, "venue_fund", address["address"], hex(10 * 10**18))
            mine(12)

            async def credited() -> Any:
                _, rows = await signed(
                    http, venue.rest, "GET", "/sapi/v1/capital/deposit/hisrec", keys[BUYER]
                )
                return rows and rows[0]["status"] == 1

            await until("credited", credited, mine)
            for step in STEPS:
                body = {"account": BUYER, "chain": "ethereum", "address": _outside(step)}
                await admin(http, venue, "POST", "/v1/custody/whitelist", body)
            return keys

    try:
        keys = asyncio.run(setup())
        for step in STEPS:  # each run dies at its step (the earlier withdrawals resume first)
            venue.kill()
            venue = Venue(tmp_path, crash_at=step)
            asyncio.run(_withdraw_until_killed(venue, keys, step, mine))
        venue = Venue(tmp_path)
        asyncio.run(_all_complete_once(venue, keys, mine))
        mine()
        for step in STEPS:  # each outside address got its one payout, exactly
            assert int(rpc(eth, "eth_getBalance", _outside(step), "latest"), 16) == 995 * 10**15
        account = asyncio.run(_account(venue, keys))
        assert balances(account)["ETH"] == (Decimal(10 - len(STEPS)), 0)
    finally:
        venue.stop()


def _outside(step: str) -> str:
    return "0x" + keccak(step.encode())[:20].hex()


async def _withdraw_until_killed(venue: Venue, keys: Any, step: str, mine: Any) -> None:
    async with aiohttp.ClientSession() as http:
        if venue.rest:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # killed answering
                await _apply(http, venue, keys, step)

        async def dead() -> Any:
            return venue.proc.poll() is not None

        await until(f"the venue killed at {step}", dead, mine)
    assert venue.proc.returncode == -signal.SIGKILL, "".join(venue.output[-20:])


async def _apply(http: aiohttp.ClientSession, venue: Venue, keys: Any, step: str) -> Any:
    status, answer = await signed(
        http, venue.rest, "POST", "/sapi/v1/capital/withdraw/apply", keys[BUYER],
        coin="ETH", address=_outside(step), amount="1", withdrawOrderId=f"crash-{step}",
    )  # fmt: skip
    assert status == 200, answer
    return answer


async def _all_complete_once(venue: Venue, keys: Any, mine: Any) -> None:
    async with aiohttp.ClientSession() as http:
        # the client retries each request: the same withdrawOrderId never makes a second one
        ids = {step: (await _apply(http, venue, keys, step))["id"] for step in STEPS}

        async def completed() -> Any:
            _, rows = await signed(
                http, venue.rest, "GET", "/sapi/v1/capital/withdraw/history", keys[BUYER]
            )
            done = [r for r in rows if r["status"] == 6]
            return rows if len(rows) == len(STEPS) and len(done) == len(STEPS) else None

        rows = await until("every withdrawal paid", completed, mine)
        assert {r["withdrawOrderId"]: r["id"] for r in rows} == {
            f"crash-{step}": wid for step, wid in ids.items()
        }


async def _account(venue: Venue, keys: Any) -> Any:
    async with aiohttp.ClientSession() as http:
        status, account = await signed(http, venue.rest, "GET", "/api/v3/account", keys[BUYER])
        assert status == 200
        return account


def test_reorganisations_drop_a_pending_deposit_and_reverse_a_credited_one(venue: Venue) -> None:
    """A reorganisation deeper than ETH's 12 confirmations drops a credited deposit whose funds
    were partly sold: what is left is taken back, the account frozen for the rest, and a
    DEPOSIT_REORG alert raised; the same reorganisation drops a pending deposit (never
    credited) and leaves the buyer's deposit, mined below the fork, credited."""
    eth = venue.chain_url("ethereum")

    def mine(n: int = 1) -> None:
        rpc(eth, "evm_mine", n)

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            keys = await _keys(http, venue)

            call = _caller(http, venue, keys)

            async def deposits(account: int) -> dict[str, Any]:
                rows = await call(account, "GET", "/sapi/v1/capital/deposit/hisrec")
                return {r["txId"]: r for r in rows}

            seller = await call(SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="ETH")
            buyer = await call(BUYER, "GET", "/sapi/v1/capital/deposit/address", coin="USDT")
            minted = rpc(eth, "venue_mintUsdt", buyer["address"], hex(3000 * 10**6))
            mine()
            first = rpc(eth, "venue_fund", seller["address"], hex(10**18))
            mine()
            fork = int(rpc(eth, "eth_blockNumber"), 16)  # the block holding the first deposit
            mine(11)

            async def both_credited() -> Any:
                s, b = await deposits(SELLER), await deposits(BUYER)
                return s.get(first, {}).get("status") == 1 and b.get(minted, {}).get("status") == 1

            await until("both credited", both_credited)
            await admin(
                http, venue, "POST", "/v1/instruments/ETH-USDT/reference-price", {"price": "2500"}
            )
            await call(
                SELLER, "POST", "/api/v3/order", symbol="ETHUSDT", side="SELL", type="LIMIT",
                timeInForce="GTC", quantity="0.4", price="2500",
            )  # fmt: skip
            await call(
                BUYER, "POST", "/api/v3/order", symbol="ETHUSDT", side="BUY", type="MARKET",
                quantity="0.4",
            )  # fmt: skip
            second = rpc(eth, "venue_fund", seller["address"], hex(3 * 10**17))
            mine()
            await until("pending", lambda: _pending(deposits(SELLER), second))
            depth = int(rpc(eth, "eth_blockNumber"), 16) - fork + 1
            rpc(eth, "venue_reorg", hex(depth), hex(depth + 1), [first, second])

            async def settled() -> Any:
                rows = await deposits(SELLER)
                return rows if rows[first]["status"] == 2 and rows[second]["status"] == 2 else None

            await until("reversed and dropped", settled)
            assert (await deposits(BUYER))[minted]["status"] == 1  # below the fork: untouched
            account = await call(SELLER, "GET", "/api/v3/account")
            assert balances(account)["ETH"] == (0, 0)  # the 0.6 left was taken back
            assert account["canTrade"] is False  # frozen for the 0.4 it could not take

            async def alerted() -> Any:
                found = await admin(http, venue, "GET", "/v1/surveillance/alerts")
                return [a for a in found["alerts"] if a["type"] == "DEPOSIT_REORG"]

            [alert] = await until("the alert", alerted)
            assert alert["accounts"] == [SELLER] and "account frozen" in alert["summary"]
            assert alert["evidence"]["shortfall"] == "0.40000000"

    asyncio.run(asyncio.wait_for(body(), 240))


async def _pending(rows: Any, txid: str) -> Any:
    found = (await rows).get(txid)
    return found is not None and found["status"] == 0


async def _proof_of_reserves(
    http: aiohttp.ClientSession, venue: Venue, keys: Any, call: Any
) -> None:
    """Published by an operator; each client downloads its proof and checks it, with the
    wallets' signatures, with the standalone verifier (standard library only)."""
    published = await admin(http, venue, "POST", "/v1/custody/reserves")
    async with http.get(f"{venue.rest}/sapi/v1/reserves") as response:  # public
        assert response.status == 200 and await response.json() == published
    assets = dict(published["totals"])
    seller = balances(await call(SELLER, "GET", "/api/v3/account"))
    buyer = balances(await call(BUYER, "GET", "/api/v3/account"))
    for asset in ("ETH", "USDT"):  # the totals are the participants' liabilities
        held = sum(sum(b.get(asset, (0, 0))) for b in (seller, buyer))
        assert Decimal(assets[asset]) / 10**8 == held
    assert len(published["attestations"]) >= 3  # two hot wallets and the deposit addresses
    folder = venue.data.parent
    (folder / "published.json").write_text(json.dumps(published))
    (folder / "attestations.json").write_text(json.dumps(published["attestations"]))
    for account in (SELLER, BUYER):
        proof = await call(account, "GET", "/sapi/v1/reserves/proof")
        (folder / f"proof-{account}.json").write_text(json.dumps(proof))
        proof_file = str(folder / f"proof-{account}.json")
        checked = subprocess.run(
            [sys.executable, str(REPO / "tools/verify_reserves.py"), proof_file,
             "--published", str(folder / "published.json"),
             "--attestations", str(folder / "attestations.json")],
            capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")}, timeout=120,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"VERIFIED: account '{account}'" in checked.stdout
    tampered = json.loads((folder / f"proof-{SELLER}.json").read_text())
    tampered["balances"][0]["amount"] += 1
    (folder / "tampered.json").write_text(json.dumps(tampered))
    refused = subprocess.run(
        [sys.executable, str(REPO / "tools/verify_reserves.py"), str(folder / "tampered.json"),
         "--published", str(folder / "published.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1 and "NOT VERIFIED" in refused.stdout


class Treasury:
    """The two sides of the band tests: a client's signed calls, the staff's wallets and moves,
    and a withdrawal that takes the hot wallet below its band, then the refill approved."""

    def __init__(
        self, http: aiohttp.ClientSession, venue: Venue, keys: Any, mine: Any, config: Any
    ) -> None:
        self.http, self.venue, self.mine, self.config = http, venue, mine, config
        self.call = _caller(http, venue, keys)

    async def wallet(self, asset: str) -> dict[str, Any]:
        rows = (await admin(self.http, self.venue, "GET", "/v1/custody/wallets"))["wallets"]
        found: dict[str, Any] = next(w for w in rows if w["asset"] == asset)
        return found

    async def moves(self, kind: str) -> list[dict[str, Any]]:
        path = "/v1/custody/withdrawals"
        rows = (await admin(self.http, self.venue, "GET", path))["withdrawals"]
        return [r for r in rows if r["kind"] == kind]

    async def moved_to_cold(self) -> dict[str, Any]:
        async def done() -> Any:
            found = [m for m in await self.moves("cold") if m["state"] == "completed"]
            return found[0] if found else None

        move: dict[str, Any] = await until("the excess moved to cold", done, self.mine)
        return move

    async def withdraw_then_refill(
        self, asset: str, chain: str, address: str, amount: Decimal
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The seller withdraws ``amount``: below the band, a refill is filed for the approvers
        (once); nothing moves until an operator approves it (password and TOTP). Answers the
        wallet before the approval, the refill done, and the wallet after it."""
        from staff_auth import approve

        await admin(
            self.http, self.venue, "POST", "/v1/custody/whitelist",
            {"account": SELLER, "chain": chain, "address": address, "label": "own"},
        )  # fmt: skip
        await self.call(
            SELLER, "POST", "/sapi/v1/capital/withdraw/apply", coin=asset, address=address,
            amount=str(amount), withdrawOrderId="out-1",
        )  # fmt: skip

        async def refill_asked() -> Any:
            found = await self.moves("refill")
            return found[0] if found and found[0]["approval"] else None

        refill = await until("a refill filed", refill_asked, self.mine)
        assert refill["state"] == "awaiting_approval" and len(await self.moves("refill")) == 1
        approvals = (await admin(self.http, self.venue, "GET", "/v1/approvals"))["approvals"]
        [item] = [a for a in approvals if a["action"] == "custody.refill"]
        assert str(item["approvalId"]) == refill["approval"]

        async def paid_out() -> Any:
            rows = await self.call(SELLER, "GET", "/sapi/v1/capital/withdraw/history", coin=asset)
            return rows and rows[0]["status"] == 6

        await until("the seller's withdrawal paid", paid_out, self.mine)
        before = await self.wallet(asset)  # nothing moved before the approval
        async with aiohttp.ClientSession(base_url=self.venue.admin) as staff:
            await approve(staff, self.config, int(item["approvalId"]))

        async def refilled() -> Any:
            found = [m for m in await self.moves("refill") if m["state"] == "completed"]
            return found[0] if found else None

        done = await until("the refill paid from cold", refilled, self.mine)
        return before, done, await self.wallet(asset)


def test_btc_hot_wallet_band_moves_the_excess_to_cold_and_refills_after_approval(
    banded_venue: Venue, tmp_path: Path
) -> None:
    """A deposit swept into the hot wallet puts all of it there, above its band of 2 to 10 %:
    the excess down to 6 % goes to the 2-of-3 P2WSH cold address by itself. A withdrawal then
    takes the hot wallet below 2 %: a refill is filed with the approvers (custody.refill), and
    once an operator approves it (password and TOTP), two cold keys sign the coins back."""
    import dataclasses

    from custody.chains.btc_tx import decode_segwit_address
    from venue.config import load_config

    venue = banded_venue
    btc = venue.chain_url("bitcoin")
    cookie = venue.data / "chains" / "bitcoin" / ".cookie"
    funder = SoftSigner(b"a depositor's own bitcoin wallet")
    funder_address = p2wpkh_address(funder.public_key(), "regtest")
    outside = p2wpkh_address(SoftSigner(b"the seller's own wallet").public_key(), "regtest")
    config = dataclasses.replace(load_config(tmp_path / "venue.toml"), data_dir=venue.data)

    def bitcoind(method: str, *params: Any) -> Any:
        return rpc(btc, method, *params, cookie=cookie)

    def mine_btc(n: int = 1) -> None:
        bitcoind("generatetoaddress", n, funder_address)

    def sats(address: str) -> int:
        found = bitcoind("scantxoutset", "start", [f"addr({address})"])
        return int(found["total_amount"] * 10**8)

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            t = Treasury(http, venue, await _keys(http, venue), mine_btc, config)
            seller = (await t.call(SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="BTC"))[
                "address"
            ]
            mine_btc(101)
            [coin, *_] = bitcoind("scantxoutset", "start", [f"addr({funder_address})"])["unspents"]
            utxo = Utxo(
                coin["txid"], coin["vout"], int(coin["amount"] * 10**8), funder.public_key()
            )
            paying = build_transaction(
                [utxo], [TxOutput(seller, 10**8)], funder_address, 2_000, [funder], "regtest"
            )
            bitcoind("sendrawtransaction", paying.hex)

            cold_move = await t.moved_to_cold()
            wallet = await t.wallet("BTC")
            cold_address = wallet["coldAddress"]
            assert decode_segwit_address("regtest", cold_address)[1].__len__() == 32  # P2WSH
            cold_sats = sats(cold_address)
            assert cold_sats == int(Decimal(cold_move["amount"]) * 10**8) > 0
            hot = Decimal(wallet["hot"])
            on_chain = Decimal(wallet["onChain"])
            assert Decimal(wallet["cold"]) * 10**8 == cold_sats
            assert 5 <= hot * 100 / on_chain <= 6  # the band's midpoint, less the move's fee
            assert len(await t.moves("cold")) == 1

            # the seller takes most of the hot wallet out: below 2 %, a refill is asked for
            amount = (hot - Decimal("0.005")).quantize(Decimal("0.00000001"))
            before, done, wallet = await t.withdraw_then_refill("BTC", "bitcoin", outside, amount)
            assert Decimal(wallet["hot"]) == Decimal(before["hot"]) + Decimal(done["amount"])
            # every move recorded in the books: the sweep, to cold, the payout, the refill
            # (Bitcoin's fees in satoshis are whole venue units: the books equal the chain)
            assert wallet["book"] == {
                "deposits": "0.00000000", "hot": wallet["hot"], "cold": wallet["cold"]
            }  # fmt: skip
            assert sats(cold_address) < cold_sats - int(Decimal(done["amount"]) * 10**8) + 1
            assert 2 <= Decimal(wallet["hot"]) * 100 / Decimal(wallet["onChain"]) <= 10

    asyncio.run(asyncio.wait_for(body(), 120))


def test_eth_hot_wallet_band_and_the_multisig_cold_wallet(
    banded_venue: Venue, tmp_path: Path
) -> None:
    """Ether: once the hot wallet has the gas, the hot key deploys the 2-of-3 multisig and the
    excess goes to it; a withdrawal takes the hot wallet below its band, the refill is filed
    with the approvers, and once approved the contract's ``execute``, signed by two cold keys
    and sent by the hot key, brings the ether back. The books follow every move."""
    import dataclasses

    from venue.config import load_config

    venue = banded_venue
    eth = venue.chain_url("ethereum")
    config = dataclasses.replace(load_config(tmp_path / "venue.toml"), data_dir=venue.data)

    def mine(n: int = 1) -> None:
        rpc(eth, "evm_mine", n)

    def close(book: str, chain: str) -> bool:
        """The books at most a few venue units under the chain (fees rounded up)."""
        return Decimal(chain) - Decimal("0.0001") < Decimal(book) <= Decimal(chain)

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            t = Treasury(http, venue, await _keys(http, venue), mine, config)
            seller = (await t.call(SELLER, "GET", "/sapi/v1/capital/deposit/address", coin="ETH"))[
                "address"
            ]
            rpc(eth, "venue_fund", seller, hex(10 * 10**18))
            mine()

            cold_move = await t.moved_to_cold()
            wallet = await t.wallet("ETH")
            cold_address = wallet["coldAddress"]
            assert len(bytes.fromhex(rpc(eth, "eth_getCode", cold_address, "latest")[2:])) > 0
            cold_wei = int(rpc(eth, "eth_getBalance", cold_address, "latest"), 16)
            assert (
                Decimal(cold_wei) / 10**18
                == Decimal(wallet["cold"])
                >= Decimal(cold_move["amount"])
                > Decimal(9)
            )
            hot = Decimal(wallet["hot"])
            assert 5 <= hot * 100 / Decimal(wallet["onChain"]) <= 6  # the band's midpoint
            book = wallet["book"]
            assert close(book["hot"], wallet["hot"]) and close(book["cold"], wallet["cold"])

            amount = (hot - Decimal("0.05")).quantize(Decimal("0.00000001"))
            before, done, wallet = await t.withdraw_then_refill(
                "ETH", "ethereum", OUTSIDE["ETH"], amount
            )
            back = Decimal(done["amount"])
            assert Decimal(wallet["cold"]) == Decimal(before["cold"]) - back
            gas = Decimal(before["hot"]) + back - Decimal(wallet["hot"])  # the hot key sent it
            assert 0 < gas < Decimal("0.01")
            book = wallet["book"]
            assert close(book["hot"], wallet["hot"]) and close(book["cold"], wallet["cold"])
            assert Decimal(book["deposits"]) <= Decimal(wallet["deposits"])

    asyncio.run(asyncio.wait_for(body(), 240))
