"""The Ethereum test chain served over HTTP JSON-RPC 2.0, in its own process.

    python -m custody.devchain.ethereum_node --datadir DIR [--port N] [--auto-mine]

With ``--port 0`` the chosen port is written to ``DIR/rpc.port`` once the socket listens (written
atomically, so a reader that sees the file can connect). Binds 127.0.0.1 only.

Speaks the methods web3.py's HTTP provider needs (``eth_*``, ``net_version``) and the test
controls: ``evm_mine([n])``, ``evm_snapshot()``, ``evm_revert(id)``, ``evm_setAutomine(bool)``,
``venue_reorg(depth, [new_blocks], [drop_tx_hashes])`` and the faucet ``venue_fund(address,
wei)``. Auto-mining is off unless asked: transactions wait in the pool until ``evm_mine``.
``evm_mine`` answers the new blocks' hashes; ``venue_reorg`` answers
``{forkHeight, oldHashes, newHashes, reincluded, dropped}`` (``new_blocks`` below ``depth``
shortens the chain). Every failure is a JSON-RPC error object, never a traceback. State is in
memory only: after a restart the chain begins again at genesis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from eth_abi.abi import encode as abi_encode
from eth_tester.exceptions import (  # type: ignore[import-untyped]
    BlockNotFound,
    TransactionFailed,
    TransactionNotFound,
    ValidationError,
)
from eth_utils.address import to_checksum_address

from custody.devchain.ethereum_chain import SUGGESTED_TIP_WEI, ChainRefusal, EthereumDevChain
from custody.devchain.lease import watch

MAX_BODY = 1024 * 1024
MAX_BATCH = 100
MAX_LOG_RANGE = 10_000
CLIENT_VERSION = "venue-devchain/eth-tester-py-evm"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3

_HEX = re.compile(r"0x[0-9a-fA-F]*\Z")
MAX_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


class RpcError(Exception):
    """An error to answer with: code, message and optional data."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _bad(what: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid params: {what}")


# -- parameters in ------------------------------------------------------------------------------


def _quantity(value: object, what: str) -> int:
    if isinstance(value, str) and _HEX.match(value) and 2 < len(value) <= 66:
        return int(value, 16)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**256:
        return value
    raise _bad(what)


def _data(value: object, what: str) -> bytes:
    if isinstance(value, str) and _HEX.match(value) and len(value) % 2 == 0:
        return bytes.fromhex(value[2:])
    raise _bad(what)


def _hash32(value: object, what: str) -> bytes:
    found = _data(value, what)
    if len(found) != 32:
        raise _bad(what)
    return found


def _address(value: object, what: str) -> str:
    if len(_data(value, what)) != 20:
        raise _bad(what)
    assert isinstance(value, str)
    return str(to_checksum_address(value))


def _block_tag(value: object, chain: EthereumDevChain) -> int | str:
    """A block number or tag as eth-tester takes it (safe/finalized mean latest here: eth-tester
    would answer genesis)."""
    if value in ("latest", "safe", "finalized"):
        return "latest"
    if value in ("earliest", "pending"):
        return str(value)
    if isinstance(value, dict) and "blockHash" in value:
        found = chain.tester.get_block_by_hash("0x" + _hash32(value["blockHash"], "block").hex())
        return int(found["number"])
    if isinstance(value, dict) and "blockNumber" in value:
        return _quantity(value["blockNumber"], "block")
    return _quantity(value, "block")


def _number(tag: int | str, head: int) -> int:
    if isinstance(tag, int):
        return tag
    return 0 if tag == "earliest" else head


def _params(params: list[Any], low: int, high: int) -> list[Any]:
    if not low <= len(params) <= high:
        raise _bad(f"expected {low}..{high} parameters")
    return params + [None] * (high - len(params))


_CALL_FIELDS = {"from": "from", "to": "to", "gas": "gas", "value": "value", "nonce": "nonce"}


def _call_tx(value: object, chain: EthereumDevChain) -> dict[str, Any]:
    """A call/estimate object in eth-tester's keys. Fee fields are left out: eth-tester's
    estimate_gas fails on them (TypeError in py-evm's legacy builder). A missing ``from`` is
    eth-tester's funded first account: py-evm charges a call's gas x 1 gwei to its sender, so
    an unfunded sender (geth's default, the zero address) would fail."""
    if not isinstance(value, dict):
        raise _bad("transaction object")
    tx: dict[str, Any] = {"from": chain.accounts()[0]}
    for key in value:
        if key not in {
            "from", "to", "gas", "value", "nonce", "data", "input", "gasPrice", "type",
            "maxFeePerGas", "maxPriorityFeePerGas", "accessList", "chainId",
        }:  # fmt: skip
            raise _bad(f"transaction field {key!r}")
    if value.get("from") is not None:
        tx["from"] = _address(value["from"], "from")
    if value.get("to") is not None:
        tx["to"] = _address(value["to"], "to")
    for key in ("gas", "value", "nonce"):
        if value.get(key) is not None:
            tx[key] = _quantity(value[key], key)
    payload = value.get("input", value.get("data"))
    if payload is not None:
        tx["data"] = "0x" + _data(payload, "input").hex()
    return tx


# -- results out --------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _wire(value: Any) -> Any:
    """eth-tester's Python values as JSON-RPC's: quantities and bytes as 0x-hex, camelCase."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {_camel(k): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _tx_out(tx: dict[str, Any]) -> Any:
    out = _wire({k: v for k, v in tx.items() if k != "data"})
    out["input"] = tx.get("data", "0x")
    return out


def _log_out(log: dict[str, Any]) -> Any:
    out = _wire({k: v for k, v in log.items() if k != "type"})
    out["removed"] = False
    return out


def _receipt_out(receipt: dict[str, Any]) -> Any:
    out = _wire({k: v for k, v in receipt.items() if k not in ("logs", "state_root")})
    out["logs"] = [_log_out(log) for log in receipt["logs"]]
    return out


def _block_out(block: dict[str, Any]) -> Any:
    out = _wire({k: v for k, v in block.items() if k not in ("transactions", "logs_bloom")})
    out["logsBloom"] = "0x" + int(block["logs_bloom"]).to_bytes(256, "big").hex()
    txs = block["transactions"]
    out["transactions"] = [t if isinstance(t, str) else _tx_out(t) for t in txs]
    return out


# -- methods ------------------------------------------------------------------------------------

Method = Callable[[EthereumDevChain, list[Any]], Any]


def _get_block_by_number(chain: EthereumDevChain, params: list[Any]) -> Any:
    tag, full = _params(params, 1, 2)
    block = chain.block(_block_tag(tag, chain), bool(full))
    return None if block is None else _block_out(block)


def _get_block_by_hash(chain: EthereumDevChain, params: list[Any]) -> Any:
    block_hash, full = _params(params, 1, 2)
    try:
        block = chain.tester.get_block_by_hash("0x" + _hash32(block_hash, "hash").hex(), bool(full))
    except BlockNotFound:
        return None
    return _block_out(block)


def _get_transaction(chain: EthereumDevChain, params: list[Any]) -> Any:
    (tx_hash,) = _params(params, 1, 1)
    try:
        tx = chain.tester.get_transaction_by_hash("0x" + _hash32(tx_hash, "hash").hex())
    except TransactionNotFound:
        return None
    return _tx_out(tx)


def _get_receipt(chain: EthereumDevChain, params: list[Any]) -> Any:
    (tx_hash,) = _params(params, 1, 1)
    receipt = chain.receipt(_hash32(tx_hash, "hash"))
    return None if receipt is None else _receipt_out(receipt)


def _get_logs(chain: EthereumDevChain, params: list[Any]) -> Any:
    (query,) = _params(params, 1, 1)
    if not isinstance(query, dict):
        raise _bad("filter object")
    head = chain.head_number()
    if query.get("blockHash") is not None:
        low = high = int(_block_tag({"blockHash": query["blockHash"]}, chain))
    else:
        low = _number(_block_tag(query.get("fromBlock") or "latest", chain), head)
        high = _number(_block_tag(query.get("toBlock") or "latest", chain), head)
    high = min(high, head)
    if high - low >= MAX_LOG_RANGE:
        raise RpcError(SERVER_ERROR, f"block range too large (at most {MAX_LOG_RANGE})")
    if low > high:
        return []
    address = query.get("address")
    if isinstance(address, list):
        if len(address) > 1000:
            raise _bad("too many addresses")
        addresses: Any = tuple(_address(a, "address") for a in address)
    elif address is None:
        addresses = None
    else:
        addresses = _address(address, "address")
    topics = query.get("topics")
    if topics is not None:
        if not isinstance(topics, list) or len(topics) > 4:
            raise _bad("topics")
        topics = [
            None
            if t is None
            else tuple("0x" + _hash32(x, "topic").hex() for x in t)
            if isinstance(t, list)
            else "0x" + _hash32(t, "topic").hex()
            for t in topics
        ]
    return [_log_out(log) for log in chain.logs(low, high, addresses, topics)]


def _account_at(chain: EthereumDevChain, params: list[Any], what: str) -> tuple[str, int | str]:
    address, tag = _params(params, 1, 2)
    return _address(address, "address"), _block_tag(tag or "latest", chain)


def _get_balance(chain: EthereumDevChain, params: list[Any]) -> Any:
    address, tag = _account_at(chain, params, "balance")
    return hex(chain.tester.get_balance(address, tag))


def _get_nonce(chain: EthereumDevChain, params: list[Any]) -> Any:
    address, tag = _account_at(chain, params, "nonce")
    return hex(chain.tester.get_nonce(address, tag))


def _get_code(chain: EthereumDevChain, params: list[Any]) -> Any:
    address, tag = _account_at(chain, params, "code")
    return chain.tester.get_code(address, tag)


def _call(chain: EthereumDevChain, params: list[Any]) -> Any:
    tx, tag = _params(params, 1, 2)
    block = _block_tag(tag or "latest", chain)
    with _reverts():
        return chain.tester.call(_call_tx(tx, chain), "latest" if block == "pending" else block)


def _estimate_gas(chain: EthereumDevChain, params: list[Any]) -> Any:
    tx, tag = _params(params, 1, 2)
    block = _block_tag(tag or "latest", chain)
    with _reverts():
        return hex(
            chain.tester.estimate_gas(
                _call_tx(tx, chain), "latest" if block == "pending" else block
            )
        )


class _reverts:
    """A reverted call answers as geth does: code 3, "execution reverted: why", data the
    Error(string) revert data (eth-tester hands over the reason decoded; it is encoded back)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, TransactionFailed):
            return
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            data = reason
            if reason[:4] == _ERROR_STRING_SELECTOR:
                reason = "(Error(string))"
            else:
                reason = "0x" + reason.hex()
        else:
            reason = str(reason)
            data = _ERROR_STRING_SELECTOR + abi_encode(["string"], [reason])
        raise RpcError(EXECUTION_REVERTED, f"execution reverted: {reason}", "0x" + data.hex())


def _send_raw(chain: EthereumDevChain, params: list[Any]) -> Any:
    (raw,) = _params(params, 1, 1)
    payload = _data(raw, "raw transaction")
    if not payload:
        raise _bad("empty transaction")
    return "0x" + chain.send_raw(payload).hex()


def _fee_history(chain: EthereumDevChain, params: list[Any]) -> Any:
    count, newest, percentiles = _params(params, 2, 3)
    tag = _block_tag(newest, chain)
    head = chain.head_number()
    newest_number = _number(tag, head)
    wanted: list[float] = []
    if percentiles is not None:
        if not isinstance(percentiles, list) or len(percentiles) > 100:
            raise _bad("reward percentiles")
        for p in percentiles:
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
                raise _bad("reward percentile")
            wanted.append(float(p))
        if wanted != sorted(wanted):
            raise _bad("reward percentiles must increase")
    if newest_number > head:
        raise RpcError(SERVER_ERROR, "newest block is in the future")
    history = chain.fee_history(_quantity(count, "block count"), newest_number, wanted)
    out = _wire({k: v for k, v in history.items() if k != "gas_used_ratio"})
    out["gasUsedRatio"] = history["gas_used_ratio"]
    return out


def _mine(chain: EthereumDevChain, params: list[Any]) -> Any:
    (count,) = _params(params, 0, 1)
    hashes = chain.mine(1 if count is None else _quantity(count, "block count"))
    return ["0x" + h.hex() for h in hashes]


def _snapshot(chain: EthereumDevChain, params: list[Any]) -> Any:
    _params(params, 0, 0)
    return hex(chain.snapshot())


def _revert(chain: EthereumDevChain, params: list[Any]) -> Any:
    (sid,) = _params(params, 1, 1)
    return chain.revert(_quantity(sid, "snapshot id"))


def _set_automine(chain: EthereumDevChain, params: list[Any]) -> Any:
    (flag,) = _params(params, 1, 1)
    if not isinstance(flag, bool):
        raise _bad("flag must be a boolean")
    chain.auto_mine = flag
    if flag and chain.pool_hashes():
        chain.mine(1)
    return True


def _reorg(chain: EthereumDevChain, params: list[Any]) -> Any:
    depth, new_blocks, drop = _params(params, 1, 3)
    if drop is not None and (not isinstance(drop, list) or len(drop) > 1000):
        raise _bad("drop_tx_hashes")
    result = chain.reorg(
        _quantity(depth, "depth"),
        None if new_blocks is None else _quantity(new_blocks, "new_blocks"),
        frozenset(_hash32(h, "tx hash") for h in drop or []),
    )
    return {
        "forkHeight": hex(result.fork_height),
        "oldHashes": ["0x" + h.hex() for h in result.old_hashes],
        "newHashes": ["0x" + h.hex() for h in result.new_hashes],
        "reincluded": ["0x" + h.hex() for h in result.reincluded],
        "dropped": ["0x" + h.hex() for h in result.dropped],
    }


def _fund(chain: EthereumDevChain, params: list[Any]) -> Any:
    address, wei = _params(params, 2, 2)
    return "0x" + chain.fund(_address(address, "address"), _quantity(wei, "wei")).hex()


def _mint(chain: EthereumDevChain, params: list[Any]) -> Any:
    address, amount = _params(params, 2, 2)
    return "0x" + chain.mint_usdt(_address(address, "address"), _quantity(amount, "amount")).hex()


def _contracts(chain: EthereumDevChain, params: list[Any]) -> Any:
    _params(params, 0, 0)
    return {"USDT": chain.usdt} if chain.usdt else {}


def _no_params(result: Callable[[EthereumDevChain], Any]) -> Method:
    def method(chain: EthereumDevChain, params: list[Any]) -> Any:
        _params(params, 0, 0)
        return result(chain)

    return method


METHODS: dict[str, Method] = {
    "web3_clientVersion": _no_params(lambda c: CLIENT_VERSION),
    "eth_chainId": _no_params(lambda c: hex(c.chain_id)),
    "net_version": _no_params(lambda c: str(c.chain_id)),
    "net_listening": _no_params(lambda c: True),
    "eth_syncing": _no_params(lambda c: False),
    "eth_accounts": _no_params(lambda c: c.accounts()),
    "eth_blockNumber": _no_params(lambda c: hex(c.head_number())),
    "eth_gasPrice": _no_params(lambda c: hex(c.pending_base_fee() + SUGGESTED_TIP_WEI)),
    "eth_maxPriorityFeePerGas": _no_params(lambda c: hex(SUGGESTED_TIP_WEI)),
    "eth_getBlockByNumber": _get_block_by_number,
    "eth_getBlockByHash": _get_block_by_hash,
    "eth_getTransactionByHash": _get_transaction,
    "eth_getTransactionReceipt": _get_receipt,
    "eth_getLogs": _get_logs,
    "eth_getBalance": _get_balance,
    "eth_getTransactionCount": _get_nonce,
    "eth_getCode": _get_code,
    "eth_call": _call,
    "eth_estimateGas": _estimate_gas,
    "eth_sendRawTransaction": _send_raw,
    "eth_feeHistory": _fee_history,
    "evm_mine": _mine,
    "evm_snapshot": _snapshot,
    "evm_revert": _revert,
    "evm_setAutomine": _set_automine,
    "venue_reorg": _reorg,
    "venue_fund": _fund,
    "venue_mintUsdt": _mint,
    "venue_contracts": _contracts,
}


# -- JSON-RPC framing ---------------------------------------------------------------------------


def _error(request_id: object, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def handle_one(chain: EthereumDevChain, request: object) -> dict[str, Any]:
    """Answer one request object; every failure becomes an error object."""
    if not isinstance(request, dict):
        return _error(None, INVALID_REQUEST, "invalid request")
    request_id = request.get("id")
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, str | int)
    ):
        return _error(None, INVALID_REQUEST, "invalid id")
    method_name = request.get("method")
    params = request.get("params", [])
    if request.get("jsonrpc") != "2.0" or not isinstance(method_name, str):
        return _error(request_id, INVALID_REQUEST, "invalid request")
    if not isinstance(params, list):
        return _error(request_id, INVALID_PARAMS, "invalid params: must be an array")
    method = METHODS.get(method_name)
    if method is None:
        return _error(request_id, METHOD_NOT_FOUND, f"method not found: {method_name[:80]}")
    try:
        result = method(chain, params)
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message, exc.data)
    except ChainRefusal as exc:
        return _error(request_id, SERVER_ERROR, str(exc))
    except (ValidationError, BlockNotFound, TransactionNotFound, ValueError, TypeError) as exc:
        return _error(request_id, INVALID_PARAMS, f"invalid params: {str(exc)[:200]}")
    except Exception as exc:  # the node answers; it does not fall over
        why = f"{type(exc).__name__}: {str(exc)[:200]}"
        return _error(request_id, INTERNAL_ERROR, f"internal error: {why}")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _too_deep(body: bytes) -> bool:
    """Whether the JSON nests deeper than ``MAX_DEPTH``. Checked before parsing: py-evm and
    py_ecc raise the interpreter's recursion limit to 100000 on import, so json's C parser
    would overflow the C stack (a segfault) on a deeply nested body before RecursionError."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return bool(brackets)


def handle_body(chain: EthereumDevChain, body: bytes) -> Any:
    """Answer a request body: one object or a batch (at most ``MAX_BATCH``)."""
    if _too_deep(body):
        return _error(None, PARSE_ERROR, f"parse error: nested deeper than {MAX_DEPTH}")
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return _error(None, PARSE_ERROR, "parse error")
    if isinstance(request, list):
        if not request or len(request) > MAX_BATCH:
            return _error(None, INVALID_REQUEST, f"batch must hold 1..{MAX_BATCH} requests")
        return [handle_one(chain, item) for item in request]
    return handle_one(chain, request)


def make_app(chain: EthereumDevChain) -> web.Application:
    """The HTTP app: POST / with a JSON-RPC body. Requests run one at a time on the loop."""

    async def rpc(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(_error(None, INVALID_REQUEST, "request too large"))
        return web.json_response(handle_body(chain, body))

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/", rpc)
    return app


async def serve(
    datadir: Path,
    port: int,
    auto_mine: bool,
    *,
    usdt: bool = False,
    block_ms: int = 0,
    lease: Path | None = None,
    lease_s: float = 60.0,
) -> None:
    """Listen on 127.0.0.1:port until SIGTERM/SIGINT; publish the port in ``datadir/rpc.port``
    (after the test USDT is deployed, with ``usdt``: ``venue_contracts`` names it). With
    ``block_ms`` a block is mined that often (the embedded demo), else only on ``evm_mine``."""
    chain = EthereumDevChain(auto_mine=auto_mine)
    if usdt:
        chain.deploy_usdt()
    runner = web.AppRunner(make_app(chain), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = int(runner.addresses[0][1])
    datadir.mkdir(parents=True, exist_ok=True)
    staging = datadir / "rpc.port.tmp"
    staging.write_text(f"{bound}\n")
    os.replace(staging, datadir / "rpc.port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ethereum test chain {chain.chain_id} on 127.0.0.1:{bound}", file=sys.stderr, flush=True)

    async def blocks() -> None:
        while True:
            await asyncio.sleep(block_ms / 1000)
            chain.mine(1)

    miner = asyncio.create_task(blocks()) if block_ms > 0 else None
    leased = asyncio.create_task(watch(lease, lease_s, stop.set)) if lease is not None else None
    try:
        await stop.wait()
    finally:
        for task in (miner, leased):
            if task is not None:
                task.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ethereum test chain over JSON-RPC")
    parser.add_argument("--datadir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auto-mine", action="store_true", help="mine each transaction at once")
    parser.add_argument("--usdt", action="store_true", help="deploy the test USDT at start")
    parser.add_argument(
        "--block-ms", type=int, default=0, help="mine a block this often (0: never)"
    )
    parser.add_argument("--lease", type=Path, help="stop once this file is untouched for --lease-s")
    parser.add_argument("--lease-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            args.datadir,
            args.port,
            args.auto_mine,
            usdt=args.usdt,
            block_ms=args.block_ms,
            lease=args.lease,
            lease_s=args.lease_s,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
