"""The venue's Bitcoin adapter: a small async client of Bitcoin Core's JSON-RPC.

The same code talks to a real bitcoind and to the test chain (``custody.devchain.bitcoin_node``).
Amounts arrive as JSON numbers in BTC; they are parsed as ``Decimal`` and turned into satoshis,
never through a float. Every failure (transport, HTTP, JSON-RPC) is a ``ChainError``.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

SATS_PER_BTC = 100_000_000
MAX_SATS = 21_000_000 * SATS_PER_BTC


class ChainError(Exception):
    """A call to the node failed; ``code`` is bitcoind's RPC error code when it gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message if code is None else f"{message} (code {code})")
        self.code = code
        self.message = message


def btc_to_sats(value: object) -> int:
    """An amount in BTC (a JSON number parsed as Decimal) to satoshis; exact or ChainError."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ChainError(f"amount is not a number: {value!r}")
    btc = Decimal(value)
    if not btc.is_finite() or btc.copy_abs() > MAX_SATS // SATS_PER_BTC:
        raise ChainError(f"amount out of range: {value!s:.30}")
    if btc != btc.quantize(Decimal("1E-8")):
        raise ChainError(f"amount has more than 8 decimals: {value!s:.30}")
    return int(btc * SATS_PER_BTC)


@dataclass(frozen=True)
class Payment:
    """One output of a confirmed transaction that pays an address."""

    txid: str
    vout: int
    address: str
    sats: int


def block_payments(block: object) -> list[Payment]:
    """Every output paying an address in a ``getblock`` answer of verbosity 2; ChainError when
    the answer is not shaped like bitcoind's."""
    try:
        out = []
        for tx in block["tx"]:  # type: ignore[index]
            txid = tx["txid"]
            for o in tx["vout"]:
                address = o["scriptPubKey"].get("address")
                if address is not None:
                    n = o["n"]
                    if not (
                        isinstance(txid, str)
                        and isinstance(address, str)
                        and isinstance(n, int)
                        and not isinstance(n, bool)
                    ):
                        raise ChainError(f"malformed output in block: {o!r:.200}")
                    out.append(Payment(txid, n, address, btc_to_sats(o["value"])))
        return out
    except (KeyError, TypeError, AttributeError) as exc:
        raise ChainError(f"malformed block: {type(exc).__name__}") from exc


class BitcoinRpc:
    """``call(method, *params)`` against a node's JSON-RPC, with the helpers custody needs."""

    def __init__(self, url: str, user: str, password: str, *, timeout_s: float = 10.0) -> None:
        self._url = url
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    @classmethod
    def from_cookie(cls, url: str, cookie: Path, *, timeout_s: float = 10.0) -> BitcoinRpc:
        """Authenticate with bitcoind's cookie file (``user:password``)."""
        user, _, password = cookie.read_text().strip().partition(":")
        return cls(url, user, password, timeout_s=timeout_s)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BitcoinRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, method: str, *params: object) -> Any:
        """The ``result`` of one call, or ChainError with bitcoind's code and message."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        request_id = next(self._ids)
        body = json.dumps(
            {"jsonrpc": "1.0", "id": request_id, "method": method, "params": list(params)},
            default=_encode,
        )
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as resp:
                if resp.status == 401:
                    raise ChainError(f"{method}: the node refused the credentials")
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChainError(f"{method}: node unreachable: {type(exc).__name__}") from exc
        try:
            answer = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise ChainError(f"{method}: HTTP {status} without JSON") from exc
        if not isinstance(answer, dict):
            raise ChainError(f"{method}: HTTP {status}, unexpected answer")
        error = answer.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ChainError(f"{method}: {message}", code if isinstance(code, int) else None)
        if status != 200:
            raise ChainError(f"{method}: HTTP {status}")
        return answer.get("result")

    # --- what the watcher and the withdrawals use ----------------------------------------------

    async def block_count(self) -> int:
        return int(await self.call("getblockcount"))

    async def block_hash(self, height: int) -> str:
        return str(await self.call("getblockhash", height))

    async def best_block_hash(self) -> str:
        return str(await self.call("getbestblockhash"))

    async def block_with_txs(self, block_hash: str) -> dict[str, Any]:
        """``getblock`` verbosity 2: header fields and each transaction with vin/vout."""
        block: dict[str, Any] = await self.call("getblock", block_hash, 2)
        return block

    async def send_raw_transaction(self, raw_hex: str) -> str:
        """Broadcast; the txid, or ChainError (-25/-26 rejected, -27 already confirmed)."""
        return str(await self.call("sendrawtransaction", raw_hex))

    async def estimate_fee_sat_per_kvb(self, conf_target: int = 6) -> int | None:
        """The node's feerate for ``conf_target`` blocks in sat/kvB; None when it has none."""
        answer = await self.call("estimatesmartfee", conf_target)
        feerate = answer.get("feerate") if isinstance(answer, dict) else None
        return None if feerate is None else btc_to_sats(feerate)

    async def tx_out(
        self, txid: str, vout: int, include_mempool: bool = True
    ) -> dict[str, Any] | None:
        """``gettxout``: the unspent output, or None when spent or unknown."""
        out: dict[str, Any] | None = await self.call("gettxout", txid, vout, include_mempool)
        return out

    async def scan_addresses(self, addresses: list[str]) -> list[dict[str, Any]]:
        """Confirmed unspent outputs of ``addresses`` (``scantxoutset start addr(...)``)."""
        answer = await self.call("scantxoutset", "start", [f"addr({a})" for a in addresses])
        unspents: list[dict[str, Any]] = answer["unspents"]
        return unspents


def _encode(o: object) -> object:
    if isinstance(o, Decimal):
        return str(o)  # bitcoind takes an amount as a string too: no float on the way
    raise TypeError(type(o).__name__)
