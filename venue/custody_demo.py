"""The demo's custody part, when the venue runs its embedded Ethereum test chain: a client's
deposit seen on chain and credited at its 12 confirmations, a withdrawal to the client's own
address paid from the hot wallet with the network fee deducted, and a proof of reserves the
client checks with the standalone verifier. Printed as it goes; each wait bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from gateway.rest.signing import sign_hmac
from venue.config import VenueConfig

__all__ = ["run_custody_demo"]

REPO = Path(__file__).resolve().parent.parent
#: The client's own address outside the venue, where the demo withdraws to.
OUTSIDE = "0x" + "c0" * 20
STEP_S = 90.0  # at most this long for each thing the demo waits for


async def run_custody_demo(
    config: VenueConfig,
    rest_url: str,
    admin_url: str,
    token: str,
    key: tuple[str, str],
    account: int,
    run: int,
    approver: tuple[str, str, str] = ("", "", ""),
) -> None:
    """``approver``: an operator with the approver role (name, password, TOTP URI) who approves
    the withdrawal, since its address is new (inside the whitelist's cool-down)."""
    chain = _chain(config)
    if chain is None:
        return  # a real node: the demo does not fund addresses on it
    admin_headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def call(method: str, path: str, **params: Any) -> Any:
            params["timestamp"] = str(int(time.time() * 1000))
            query = urllib.parse.urlencode(params)
            query += "&signature=" + sign_hmac(key[1], query)
            url = yarl.URL(f"{rest_url}{path}?{query}", encoded=True)
            async with http.request(method, url, headers={"X-MBX-APIKEY": key[0]}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"{path}: {r.status} {body}")
                return body

        async def admin(method: str, path: str, body: Any = None) -> Any:
            async with http.request(
                method, f"{admin_url}{path}", json=body, headers=admin_headers
            ) as r:
                answer = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"{path}: {r.status} {answer}")
                return answer

        print(f"demo: custody on the Ethereum test chain ({chain})", flush=True)
        address = (await call("GET", "/sapi/v1/capital/deposit/address", coin="ETH"))["address"]
        print(f"  account {account}'s ETH deposit address (a key made in the HSM): {address}")
        tx = await asyncio.to_thread(_rpc, chain, "venue_fund", address, hex(10**18))
        print(f"  a client sends 1 ETH to it: transaction {tx}")

        async def deposit() -> Any:
            rows = await call("GET", "/sapi/v1/capital/deposit/hisrec", coin="ETH")
            return next((r for r in rows if r["txId"] == tx), None)

        seen = ""

        async def credited() -> Any:
            nonlocal seen
            row = await deposit()
            if row is not None and row["confirmTimes"] != seen:
                seen = row["confirmTimes"]
                state = "credited" if row["status"] == 1 else "pending"
                print(f"    confirmations {seen:>5}: {state}", flush=True)
            return row is not None and row["status"] == 1

        await _until("the deposit credited", credited)
        balance = await _balance(call, "ETH")
        print(f"  account {account} holds {balance} ETH")
        body = {"account": account, "chain": "ethereum", "address": OUTSIDE, "label": "demo"}
        await admin("POST", "/v1/custody/whitelist", body)
        print(f"  an operator whitelists the client's own address {OUTSIDE}")
        wid = await call(
            "POST", "/sapi/v1/capital/withdraw/apply", coin="ETH", address=OUTSIDE,
            amount="0.5", withdrawOrderId=f"demo-{run}", network="ETH",
        )  # fmt: skip
        print(f"  the client withdraws 0.5 ETH (withdrawOrderId demo-{run}): id {wid['id']}")
        queue = (await admin("GET", "/v1/custody/withdrawals?status=open"))["withdrawals"]
        mine = next((w for w in queue if w["id"] == wid["id"]), None)
        if mine is not None and mine["state"] == "awaiting_approval" and approver[0]:
            print(f"    it waits for an approver: {mine['info']}")
            await _approve(http, admin_url, approver, mine["approval"])
            print(f"    operator {approver[0]!r} approves it with a TOTP code (four eyes)")

        async def paid() -> Any:
            rows = await call("GET", "/sapi/v1/capital/withdraw/history", coin="ETH")
            row = next((r for r in rows if r["id"] == wid["id"]), None)
            return row if row is not None and row["status"] == 6 else None

        row = await _until("the withdrawal paid", paid)
        print(
            f"  paid from the hot wallet (the deposit was swept into it): {row['amount']} ETH "
            f"received, {row['transactionFee']} ETH network fee, transaction {row['txId']}"
        )
        wallets = (await admin("GET", "/v1/custody/wallets"))["wallets"]
        eth = next(w for w in wallets if w["asset"] == "ETH")
        print("  the ETH wallets on chain and in the venue's books (fees rounded up):")
        print(f"    {'wallet':<18} {'on chain':>14} {'books':>14}")
        for label, field in (("hot", "hot"), ("deposit addresses", "deposits"), ("cold", "cold")):
            print(f"    {label:<18} {eth[field]:>14} {eth['book'][field]:>14}")
        published = await admin("POST", "/v1/custody/reserves")
        print(
            f"  proof of reserves at seq {published['snapshot']}: root {published['root'][:16]}..."
            f" over {published['leaf_count']} accounts, {len(published['attestations'])} "
            "wallet signatures"
        )
        proof = await call("GET", "/sapi/v1/reserves/proof")
        with tempfile.TemporaryDirectory() as folder:
            files = {"proof": proof, "published": published, "att": published["attestations"]}
            for name, content in files.items():
                (Path(folder) / f"{name}.json").write_text(json.dumps(content))
            checked = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable, str(REPO / "tools" / "verify_reserves.py"),
                    f"{folder}/proof.json", "--published", f"{folder}/published.json",
                    "--attestations", f"{folder}/att.json",
                ],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        first = (checked.stdout.strip().splitlines() or ["(no output)"])[0]
        print(f"  the client checks its proof (tools/verify_reserves.py): {first}", flush=True)


async def _approve(
    http: aiohttp.ClientSession, admin_url: str, approver: tuple[str, str, str], approval: str
) -> None:
    """Log in (password and the previous step's TOTP code, which the store still accepts) and
    approve with this step's code: two codes, each used once."""
    import pyotp

    name, password, uri = approver
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    now = time.time()
    body = {"name": name, "password": password, "code": totp.at(now - 30)}
    async with http.post(f"{admin_url}/v1/session", json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"login: {r.status} {await r.text()}")
        session = r.cookies["venue_session"].value
    async with http.post(
        f"{admin_url}/v1/approvals/{approval}/approve",
        json={"code": totp.at(now)},
        headers={"Authorization": f"Bearer {session}"},
    ) as r:
        if r.status != 200:
            raise RuntimeError(f"approve: {r.status} {await r.text()}")


async def _balance(call: Callable[..., Awaitable[Any]], asset: str) -> str:
    account = await call("GET", "/api/v3/account")
    for row in account["balances"]:
        if row["asset"] == asset:
            return str(row["free"])
    return "0"


async def _until(what: str, check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + STEP_S
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{what}: not within {STEP_S:.0f} s")


def _chain(config: VenueConfig) -> str | None:
    custody = config.custody
    if custody is None or not custody.enabled or "ethereum" not in custody.chains:
        return None
    if custody.chains["ethereum"].rpc_url:
        return None
    port_file = config.data_dir / "chains" / "ethereum" / "rpc.port"
    if not port_file.exists():
        return None
    return f"http://127.0.0.1:{int(port_file.read_text())}/"


def _rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if answer.get("error"):
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]
