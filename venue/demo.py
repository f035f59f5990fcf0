"""The demo ``scripts/start`` runs (``venue run --demo``): a short scripted flow through the
admin HTTP API (deposits, resting and crossing orders, a cancel, a replace, a market order, the
book, balances, a reconciliation), then over FIX when the venue listens for it, printed as it
goes. It is a client of the running venue like any other, and never fatal: an error is printed
and the venue keeps serving."""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import TYPE_CHECKING

import aiohttp

from gateway.staff.roles import ROLES
from venue.config import VenueConfig

if TYPE_CHECKING:
    from gateway.admin.auth import StaffAccess
    from venue.rest import RestGateway


def _error(message: str) -> None:
    print(f"venue: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


DEMO_SYMBOL = "BTC-USDT"
DEMO_ACCOUNTS = {1001: "alice", 1002: "bob"}  # two owners: the default STP would stop one owner


async def run_demo(
    url: str,
    config: VenueConfig,
    fix_port: int | None = None,
    rest: RestGateway | None = None,
    token: str = "",
    access: StaffAccess | None = None,
) -> None:
    """A short scripted flow through the admin HTTP API, then over FIX when the venue listens
    for it, then a REST bot trading with a FIX client while a WebSocket watches the book, when
    the venue serves REST; printed as it goes; errors are printed, never fatal (the venue keeps
    serving)."""
    try:
        operator = ("", "")
        if access is not None:
            operator = await asyncio.to_thread(_demo_operator, access, url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession(
            url, timeout=aiohttp.ClientTimeout(total=10), headers=headers
        ) as http:
            demo = _Demo(http)
            await _demo_flow(demo, config)
        if fix_port is not None and config.fix is not None and config.fix.application == "venue":
            from venue.fix_demo import run_fix_demo

            await run_fix_demo(config.fix, fix_port, demo.run, DEMO_SYMBOL)
        if rest is not None and rest.keys is not None and config.clearing:
            from venue.rest_demo import run_rest_demo

            bob = list(DEMO_ACCOUNTS)[1]
            key, secret = rest.keys.create_hmac(bob, {"TRADE", "USER_DATA"}, "demo", (), "demo")
            try:
                await run_rest_demo(
                    rest.url, key.api_key, secret, config.fix, fix_port, demo.run, DEMO_SYMBOL
                )
            finally:
                rest.keys.revoke(key.api_key, "demo")
            if token and config.custody is not None and config.custody.enabled:
                from venue.custody_demo import run_custody_demo

                carol = 1003
                key, secret = rest.keys.create_hmac(
                    carol, {"USER_DATA", "WITHDRAW"}, "demo custody", ("127.0.0.1",), "demo"
                )
                try:
                    await run_custody_demo(
                        config, rest.url, url, token, (key.api_key, secret), carol, demo.run,
                        (DEMO_OPERATOR, *operator),
                    )  # fmt: skip
                finally:
                    rest.keys.revoke(key.api_key, "demo")
            if token and fix_port is not None and config.surveillance.enabled:
                await _simulate(url, config, fix_port, rest.url, token)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _error(f"demo: {type(exc).__name__}: {exc}")
    else:
        print("demo: done; the venue keeps serving until Ctrl-C", flush=True)


#: Seconds of simulated flow the demo ends with.
DEMO_SIMULATION_S = 10.0


async def _simulate(
    url: str, config: VenueConfig, fix_port: int, rest_url: str, token: str
) -> None:
    """Ten seconds of ``venue simulate``: market makers over FIX, traders over REST, a spoofer
    and a wash pair; then the alerts surveillance raised, as the compliance console shows them."""
    from venue.simulate import Simulation, SimulationSettings

    print("demo: simulated flow with a spoofer and a wash pair (venue simulate)", flush=True)
    settings = SimulationSettings(
        seconds=DEMO_SIMULATION_S,
        rate=15,
        seed=7,
        traders=3,
        abuses=frozenset({"spoofing", "wash"}),
    )
    simulation = Simulation(
        config,
        settings,
        admin_url=url,
        token=token,
        rest_url=rest_url,
        fix_port=fix_port,
        out=lambda line: print(f"  {line}", flush=True),
    )
    await simulation.run()
    await asyncio.sleep(1.0)  # the alert store writes every 0.2 s
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"{url}/v1/surveillance/alerts", headers=headers) as response,
    ):
        alerts = (await response.json()).get("alerts", [])
    print(f"demo: surveillance raised {len(alerts)} alert(s):", flush=True)
    for alert in alerts[:8]:
        print(f"    {alert['type']:<16} {alert['symbol'] or '-':<9} {alert['summary']}", flush=True)
    print(f"demo: see them in the staff console: {url}/console/#/alerts", flush=True)


#: The operator the demo makes (or resets) so that the staff console can be tried at once.
DEMO_OPERATOR = "demo"


def _demo_operator(access: StaffAccess, url: str) -> tuple[str, str]:
    """Make the demo's operator with every role (or give it a new password and TOTP secret if
    it exists) and print how to log in: a local demo's convenience, never a production
    practice (there, ``venue operator add`` prompts for the password)."""
    store = access.store
    password = secrets.token_urlsafe(12)
    if store.operator(DEMO_OPERATOR) is None:
        uri = store.add(DEMO_OPERATOR, ROLES, password, "demo")
    else:
        uri = store.reset(DEMO_OPERATOR, "demo", password=password, totp=True) or ""
    print(
        f"demo: staff console {url}/console/ : operator {DEMO_OPERATOR!r}, password "
        f"{password!r}, TOTP secret in {uri}",
        flush=True,
    )
    return password, uri


class _Demo:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.run = 0
        self.orders: dict[int, str] = {}  # order id -> who

    async def call(
        self, method: str, path: str, body: dict[str, object]
    ) -> list[dict[str, object]]:
        async with self.http.request(method, path, json=body) as response:
            data = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status} {data}")
        events: list[dict[str, object]] = data["events"]
        for event in events:
            if event["type"] == "OrderAccepted":
                self.orders[int(str(event["orderId"]))] = DEMO_ACCOUNTS.get(
                    int(str(event["account"])), str(event["account"])
                )
            print(f"    <- {self.describe(event)}", flush=True)
        return events

    def clid(self, name: str) -> str:
        return f"demo{self.run}-{name}"

    async def order(
        self, account: int, side: str, kind: str, qty: str, price: str = "", name: str = ""
    ) -> int:
        body: dict[str, object] = {
            "account": account,
            "symbol": DEMO_SYMBOL,
            "side": side,
            "type": kind,
            "quantity": qty,
            "clientOrderId": self.clid(name),
        }
        at = ""
        if price:
            body["price"] = price
            at = f" @ {price}"
        who = DEMO_ACCOUNTS[account]
        print(f"  -> {who} {side} {kind} {qty} {DEMO_SYMBOL}{at} ({body['clientOrderId']})")
        events = await self.call("POST", "/v1/orders", body)
        for event in events:
            if event["type"] == "OrderAccepted":
                return int(str(event["orderId"]))
        return 0

    def describe(self, e: dict[str, object]) -> str:
        kind = e["type"]
        if kind == "OrderAccepted":
            at = (
                "" if e["ordType"] in ("MARKET", "STOP_LOSS", "TAKE_PROFIT") else f" @ {e['price']}"
            )
            return f"accepted #{e['orderId']} {e['side']} {e['ordType']} {e['qty']}{at} {e['tif']}"
        if kind == "Trade":
            maker = self.orders.get(int(str(e["makerOrderId"])), "?")
            taker = self.orders.get(int(str(e["takerOrderId"])), "?")
            return (
                f"TRADE #{e['tradeId']} {e['qty']} {DEMO_SYMBOL} @ {e['price']}"
                f" (maker #{e['makerOrderId']} {maker}, taker #{e['takerOrderId']} {taker},"
                f" taker {e['takerSide']}; taker leaves {e['takerLeaves']})"
            )
        if kind in ("OrderCancelled", "OrderExpired"):
            return f"{kind[5:].lower()} #{e['orderId']} {e['qty']} ({e['reason']})"
        if kind == "OrderReplaced":
            kept = "priority kept" if e["priorityKept"] else "priority lost"
            return f"replaced #{e['orderId']}: {e['qty']} @ {e['price']} ({kept})"
        if kind == "TradeSettled":
            buyer = DEMO_ACCOUNTS.get(int(str(e["buyer"])), str(e["buyer"]))
            seller = DEMO_ACCOUNTS.get(int(str(e["seller"])), str(e["seller"]))
            return (
                f"settled: {buyer} pays {e['quoteAmount']} {e['quoteAsset']} for "
                f"{e['baseAmount']} {e['baseAsset']} from {seller}; fees {buyer} "
                f"{e['buyerFee']} {e['buyerFeeAsset']}, {seller} {e['sellerFee']} "
                f"{e['sellerFeeAsset']}"
            )
        if kind == "Deposited":
            who = DEMO_ACCOUNTS.get(int(str(e["account"])), str(e["account"]))
            return f"deposit: {who} +{e['amount']} {e['asset']}"
        if kind == "MassCancelDone":
            return f"mass cancel of account {e['account']}: {e['cancelled']} order(s) cancelled"
        fields = ", ".join(f"{k}={v}" for k, v in e.items() if k != "type")
        return f"{kind} {fields}"

    async def balances(self) -> None:
        print("  balances (total / locked by open orders):")
        for account, who in DEMO_ACCOUNTS.items():
            async with self.http.get(f"/v1/accounts/{account}/balances") as response:
                data = await response.json()
            for row in data["balances"]:
                print(f"    {who:<6} {row['asset']:<5} {row['total']:>20} / {row['locked']}")

    async def reconcile(self) -> None:
        async with self.http.post("/v1/reconcile", json={}) as response:
            report = await response.json()
        if response.status != 200:
            print(f"  reconciliation: {response.status} {report.get('msg')}")
            return
        print(
            f"  reconciliation of the ledger with the core at seq {report['atSeq']}: "
            f"{report['status']} ({report['compared']} accounts compared)"
        )

    async def book(self) -> None:
        async with self.http.get(f"/v1/book/{DEMO_SYMBOL}", params={"depth": "5"}) as response:
            book = await response.json()
        print(f"  book {DEMO_SYMBOL} (last price {book['lastPrice']}):")
        for price, qty, count in reversed(book["asks"]):
            print(f"    ask {price:>12} {qty:>10}  ({count} order(s))")
        print("    " + "-" * 40)
        for price, qty, count in book["bids"]:
            print(f"    bid {price:>12} {qty:>10}  ({count} order(s))")


async def _demo_flow(demo: _Demo, config: VenueConfig) -> None:
    async with demo.http.get("/v1/status") as response:
        status = await response.json()
    demo.run = int(status["lastSeq"])  # unique per run: client order ids never repeat
    alice, bob = DEMO_ACCOUNTS
    print(f"demo: run {demo.run}: orders on {DEMO_SYMBOL} through the admin API", flush=True)
    print("  clearing the demo accounts' open orders from earlier runs")
    for account in (alice, bob):
        await demo.call("POST", "/v1/mass-cancel", {"scope": "ACCOUNT", "account": account})
    if config.clearing:
        print("  funding the demo accounts (deposits, as custody would credit them):")
        for account, asset, amount in (
            (alice, "BTC", "2"),
            (alice, "USDT", "50000"),
            (bob, "USDT", "150000"),
        ):
            body = {"account": account, "asset": asset, "amount": amount, "ref": f"demo{demo.run}"}
            await demo.call("POST", "/v1/deposits", body)
    print("  resting orders:")
    await demo.order(alice, "SELL", "LIMIT", "0.50000", "95010.00", "a-ask1")
    ask2 = await demo.order(alice, "SELL", "LIMIT", "0.25000", "95020.00", "a-ask2")
    await demo.order(alice, "BUY", "LIMIT", "0.40000", "94990.00", "a-bid1")
    print("  a crossing order:")
    await demo.order(bob, "BUY", "LIMIT", "0.60000", "95015.00", "b-bid1")
    print("  a cancel:")
    print(f"  -> alice cancels {demo.clid('a-bid1')}")
    await demo.call(
        "DELETE",
        "/v1/orders",
        {"account": alice, "symbol": DEMO_SYMBOL, "clientOrderId": demo.clid("a-bid1")},
    )
    print("  a replace:")
    print(f"  -> alice replaces #{ask2}: 0.30000 @ 95018.00")
    body = {
        "account": alice,
        "symbol": DEMO_SYMBOL,
        "orderId": ask2,
        "newClientOrderId": demo.clid("a-ask2b"),
        "quantity": "0.30000",
        "price": "95018.00",
    }
    await demo.call("PUT", "/v1/orders", body)
    print("  a market order:")
    await demo.order(bob, "BUY", "MARKET", "0.10000", name="b-mkt1")
    await demo.book()
    if config.clearing:
        await demo.balances()
        await demo.reconcile()
