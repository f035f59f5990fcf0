"""Ethereum: the test chain over JSON-RPC, the committed contracts, the adapter, its signing,
nonces, reorganisations and the multisig wallet. One node process serves the module."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from soft_signer import SoftSigner
from web3.exceptions import ContractLogicError, Web3RPCError

from custody.chains.ethereum import EthereumChain
from custody.chains.ethereum_multisig import (
    collect_signatures,
    execute_data,
    execution_digest,
    sign_execution,
)
from custody.chains.ethereum_nonce import NonceManager
from custody.chains.ethereum_tx import (
    Fees,
    SignedTransaction,
    contract_address,
    eip1559_transaction,
    encode_call,
    encode_constructor,
    erc20_transfer_data,
    legacy_transaction,
    sign_transaction,
)
from custody.contracts import BUILD_DIR, load_build
from custody.devchain.ethereum_chain import EthereumDevChain
from custody.devchain.ethereum_node import METHODS, handle_body

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class MemoryStore:
    def __init__(self) -> None:
        self.value: int | None = None

    def load(self) -> int | None:
        return self.value

    def save(self, next_nonce: int) -> None:
        self.value = next_nonce


# -- the node -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    datadir = tmp_path_factory.mktemp("ethnode")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "custody.devchain.ethereum_node", "--datadir", str(datadir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port_file = datadir / "rpc.port"
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "node did not publish its port"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def run(url: str, body: Callable[[EthereumChain], Awaitable[T]]) -> T:
    async def main() -> T:
        chain = EthereumChain(url, timeout_s=10)
        try:
            return await body(chain)
        finally:
            await chain.close()

    return asyncio.run(main())


async def send(
    chain: EthereumChain,
    signer: SoftSigner,
    to: str | None,
    *,
    value: int = 0,
    data: bytes = b"",
    gas: int | None = None,
    nonce: int | None = None,
) -> SignedTransaction:
    """Build, sign and broadcast one type-2 transaction with the adapter."""
    if gas is None:
        gas = await chain.estimate_gas(signer.address, to, value, data) * 6 // 5
    tx = eip1559_transaction(
        chain_id=await chain.chain_id(),
        nonce=await chain.pending_nonce(signer.address) if nonce is None else nonce,
        to=to,
        value=value,
        gas=gas,
        fees=await chain.fees(),
        data=data,
    )
    signed = sign_transaction(tx, signer)
    assert await chain.send_raw(signed.raw) == signed.tx_hash
    return signed


async def mined(chain: EthereumChain, url: str, signed: SignedTransaction) -> int:
    rpc(url, "evm_mine")
    receipt = await chain.receipt(signed.tx_hash)
    assert receipt is not None
    return receipt.status


def funded(url: str, seed: bytes, wei: int = 10**19) -> SoftSigner:
    signer = SoftSigner(seed)
    rpc(url, "venue_fund", signer.address, hex(wei))
    rpc(url, "evm_mine")
    return signer


async def deploy(chain: EthereumChain, url: str, signer: SoftSigner, name: str, *args: Any) -> str:
    data = encode_constructor(load_build(name), args)
    nonce = await chain.pending_nonce(signer.address)
    signed = await send(chain, signer, None, data=data, nonce=nonce)
    rpc(url, "evm_mine")
    receipt = await chain.receipt(signed.tx_hash)
    assert receipt is not None and receipt.status == 1
    assert receipt.contract_address == contract_address(signer.address, nonce)
    return receipt.contract_address


# -- contracts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["TestUSDT", "MultiSigWallet"])
def test_committed_build_is_of_the_committed_source(name: str) -> None:
    build = load_build(name)
    source = (BUILD_DIR.parent / build["source"]).read_bytes()
    assert build["source_sha256"] == hashlib.sha256(source).hexdigest(), (
        f"{name}.sol changed: run scripts/compile_contracts.py"
    )
    script = (ROOT / "scripts" / "compile_contracts.py").read_text()
    pinned = script.split('SOLC_VERSION = "')[1].split('"')[0]
    assert f"solc-js {pinned}+" in build["compiler"]
    assert build["bytecode"].startswith("0x60") and len(build["bytecode"]) > 1000


# -- signing ------------------------------------------------------------------------------------


def test_signed_transactions_recover_to_the_signer() -> None:
    """Both kinds of transaction, signed through the (r, s)-only seam, decode to the signer."""
    from eth_account import Account

    signer = SoftSigner(b"recover")
    fees = Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9)
    for nonce in range(6):  # several digests: both recovery ids come up
        typed = eip1559_transaction(
            chain_id=1337, nonce=nonce, to=signer.address, value=nonce, gas=21000, fees=fees
        )
        legacy = legacy_transaction(
            chain_id=1337, nonce=nonce, to=signer.address, value=1, gas=21000, gas_price=10**9
        )
        for tx in (typed, legacy):
            signed = sign_transaction(tx, signer)
            assert Account.recover_transaction(signed.raw) == signer.address
            assert signed.tx_hash == keccak(signed.raw) and signed.nonce == nonce


# -- the chain ----------------------------------------------------------------------------------


def test_eth_and_usdt_transfers_and_the_transfer_log(node: str) -> None:
    usdt_abi = load_build("TestUSDT")["abi"]

    async def body(chain: EthereumChain) -> None:
        assert await chain.chain_id() == int(rpc(node, "eth_chainId"), 16)
        owner = funded(node, b"usdt-owner")
        watched, other = SoftSigner(b"watched").address, SoftSigner(b"other").address
        token = await deploy(chain, node, owner, "TestUSDT")
        minted = await send(
            chain, owner, token, data=encode_call(usdt_abi, "mint", [owner.address, 10**12])
        )
        assert await chain.receipt(minted.tx_hash) is None  # waits in the pool
        assert await mined(chain, node, minted) == 1

        start = await chain.block_number() + 1
        eth = await send(chain, owner, watched, value=123_456)
        pay_other = await send(chain, owner, token, data=erc20_transfer_data(usdt_abi, other, 5))
        pay = await send(
            chain, owner, token, data=erc20_transfer_data(usdt_abi, watched, 2_500_000)
        )
        assert [eth.nonce, pay_other.nonce, pay.nonce] == [eth.nonce, eth.nonce + 1, eth.nonce + 2]
        assert await chain.pending_nonce(owner.address) == eth.nonce + 3
        rpc(node, "evm_mine")
        head = await chain.block_number()
        assert await chain.balance(watched) == 123_456
        assert await chain.erc20_balance(usdt_abi, token, watched) == 2_500_000

        found = await chain.erc20_transfers(token, [watched], start, head)
        assert len(found) == 1
        transfer = found[0]
        assert (transfer.recipient, transfer.sender, transfer.amount) == (
            watched,
            owner.address,
            2_500_000,
        )
        assert transfer.tx_hash == pay.tx_hash and transfer.block_number == head
        receipt = await chain.w3.eth.get_transaction_receipt(pay.tx_hash)  # type: ignore[arg-type]
        assert transfer.log_index == receipt["logs"][0]["logIndex"] == 1  # after pay_other's
        both = await chain.erc20_transfers(token, [watched, other], start, head)
        assert [t.recipient for t in both] == [other, watched]
        assert await chain.erc20_transfers(token, [watched], head + 1, head + 5) == []

        block = await chain.block(head)
        assert [bytes(t["hash"]) for t in block["transactions"]] == [
            eth.tx_hash,
            pay_other.tx_hash,
            pay.tx_hash,
        ]

    run(node, body)


def test_nonces_survive_crashes_without_reuse_or_holes(node: str) -> None:
    """A crash after signing rebroadcasts the same bytes; a crash before signing refills the
    nonce; the chain ends with one transaction per nonce, consecutive."""

    async def body(chain: EthereumChain) -> None:
        sender = funded(node, b"nonce-sender")
        to = SoftSigner(b"nonce-to").address
        store = MemoryStore()
        outbox: dict[int, SignedTransaction] = {}
        chain_id, fees = await chain.chain_id(), await chain.fees()

        def sign(manager: NonceManager, value: int) -> SignedTransaction:
            nonce = manager.reserve()
            tx = eip1559_transaction(
                chain_id=chain_id, nonce=nonce, to=to, value=value, gas=21000, fees=fees
            )
            outbox[nonce] = sign_transaction(tx, sender)
            return outbox[nonce]

        first = NonceManager(store)
        assert first.begin(await chain.pending_nonce(sender.address)) == []
        a = sign(first, 1)
        await chain.send_raw(a.raw)
        b = sign(first, 2)  # signed and recorded, then the process dies before broadcasting
        first.reserve()  # reserved, then the process dies before signing

        second = NonceManager(store)
        again = second.begin(await chain.pending_nonce(sender.address), signed=set(outbox))
        assert again == [b.nonce]
        assert await chain.send_raw(outbox[b.nonce].raw) == b.tx_hash
        assert await chain.send_raw(outbox[b.nonce].raw) == b.tx_hash  # "already known"
        with pytest.raises(Web3RPCError, match="already known"):
            await chain.w3.eth.send_raw_transaction(b.raw)
        c = sign(second, 3)
        assert c.nonce == b.nonce + 1  # the hole is filled, not skipped
        d = sign(second, 4)
        assert d.nonce == c.nonce + 1
        for signed in (c, d):
            await chain.send_raw(signed.raw)
        rpc(node, "evm_mine")
        assert await chain.send_raw(a.raw) == a.tx_hash  # mined: still "already known"
        rpc(node, "evm_mine")
        block = await chain.block(await chain.block_number() - 1)
        sent = [t for t in block["transactions"] if t["from"] == sender.address]
        assert [t["nonce"] for t in sent] == [a.nonce, b.nonce, c.nonce, d.nonce]
        assert await chain.pending_nonce(sender.address) == d.nonce + 1 == store.value

    run(node, body)


def test_nonce_manager_under_random_crashes() -> None:
    """Seeded: crash at random points between reserve, record and broadcast; the broadcast
    nonces are exactly 0..n-1, each with one transaction."""
    rng = random.Random(7)
    for _ in range(50):
        store = MemoryStore()
        outbox: dict[int, str] = {}
        chain_seen: dict[int, str] = {}
        label = 0
        for _restart in range(rng.randint(1, 6)):
            manager = NonceManager(store)
            pending = 0
            while pending in chain_seen:
                pending += 1
            for nonce in manager.begin(pending, signed=set(outbox)):
                chain_seen.setdefault(nonce, outbox[nonce])
            for _step in range(rng.randint(0, 8)):
                nonce = manager.reserve()
                assert nonce not in outbox, "a nonce with recorded bytes was handed out again"
                if rng.random() < 0.2:
                    break  # died before recording
                label += 1
                outbox[nonce] = f"tx{label}"
                if rng.random() < 0.2:
                    break  # died before broadcasting
                chain_seen.setdefault(nonce, outbox[nonce])
        manager = NonceManager(store)
        for nonce in manager.begin(len(chain_seen), signed=set(outbox)):
            chain_seen.setdefault(nonce, outbox[nonce])
        while manager.peek() < (store.value or 0) and manager.peek() not in outbox:
            nonce = manager.reserve()
            outbox[nonce] = chain_seen[nonce] = "refill"
        assert sorted(chain_seen) == list(range(len(chain_seen)))
        assert all(chain_seen[n] == outbox[n] for n in chain_seen)


def test_reorg_drops_a_transaction_and_rewrites_the_heights(node: str) -> None:
    async def body(chain: EthereumChain) -> None:
        sender = funded(node, b"reorg-sender")
        kept_sender = funded(node, b"reorg-kept")
        to = SoftSigner(b"reorg-to").address
        dropped = await send(chain, sender, to, value=77)
        kept = await send(chain, kept_sender, to, value=11)
        rpc(node, "evm_mine", "0x3")
        head = await chain.block_number()
        heights = range(head - 2, head + 1)
        before = [await chain.block_hash(n) for n in heights]
        old_receipt = await chain.receipt(kept.tx_hash)
        assert old_receipt is not None and (await chain.receipt(dropped.tx_hash)) is not None
        assert await chain.balance(to) == 88

        result = rpc(node, "venue_reorg", 3, 3, ["0x" + dropped.tx_hash.hex()])
        assert result["dropped"] == ["0x" + dropped.tx_hash.hex()]
        assert await chain.block_number() == head
        after = [await chain.block_hash(n) for n in heights]
        assert all(x != y for x, y in zip(before, after, strict=True))
        assert [bytes.fromhex(h[2:]) for h in result["newHashes"]] == after
        assert await chain.receipt(dropped.tx_hash) is None
        assert rpc(node, "eth_getTransactionCount", sender.address, "latest") == "0x0"
        new_receipt = await chain.receipt(kept.tx_hash)
        assert new_receipt is not None and new_receipt.block_hash != old_receipt.block_hash
        assert await chain.balance(to) == 11
        with pytest.raises(RuntimeError):
            rpc(node, "venue_reorg", head + 1)

    run(node, body)


def test_multisig_two_of_three(node: str) -> None:
    usdt = load_build("TestUSDT")["abi"]
    wallet_abi = load_build("MultiSigWallet")["abi"]

    async def body(chain: EthereumChain) -> None:
        submitter = funded(node, b"ms-submitter")
        owners = [SoftSigner(f"ms-owner-{i}".encode()) for i in range(3)]
        outsider = SoftSigner(b"ms-outsider")
        payee = SoftSigner(b"ms-payee").address
        token = await deploy(chain, node, submitter, "TestUSDT")
        wallet = await deploy(
            chain, node, submitter, "MultiSigWallet", sorted(o.address for o in owners), 2
        )
        minted = await send(
            chain, submitter, token, data=encode_call(usdt, "mint", [wallet, 1_000_000])
        )
        assert await mined(chain, node, minted) == 1
        chain_id = await chain.chain_id()
        transfer = erc20_transfer_data(usdt, payee, 400_000)

        def digest_at(nonce: int, to: str = token, value: int = 0, data: bytes = transfer) -> bytes:
            return execution_digest(
                chain_id=chain_id, wallet=wallet, to=to, value=value, data=data, nonce=nonce
            )

        on_chain = await chain.call(
            wallet, encode_call(wallet_abi, "executionHash", [token, 0, transfer, 0])
        )
        assert on_chain == digest_at(0)

        async def reverts(signatures: list[Any], why: str) -> None:
            data = execute_data(wallet_abi, token, 0, transfer, signatures)
            with pytest.raises(ContractLogicError, match=why):
                await chain.w3.eth.call({"from": submitter.address, "to": wallet, "data": data})

        one = collect_signatures(digest_at(0), owners[:1])
        await reverts(one, "too few signatures")
        twice = sign_execution(digest_at(0), owners[0])
        await reverts([twice, twice], "out of order or repeated")
        await reverts(collect_signatures(digest_at(0), [owners[0], outsider]), "not an owner")
        await reverts(collect_signatures(digest_at(1), owners[:2]), "not an owner")  # stale nonce
        failed = await send(
            chain, submitter, wallet, data=execute_data(wallet_abi, token, 0, transfer, one),
            gas=200_000,
        )  # fmt: skip
        assert await mined(chain, node, failed) == 0

        two = collect_signatures(digest_at(0), [owners[2], owners[0]])
        data = execute_data(wallet_abi, token, 0, transfer, two)
        ok = await send(chain, submitter, wallet, data=data)
        assert await mined(chain, node, ok) == 1
        assert await chain.erc20_balance(usdt, token, payee) == 400_000
        assert await chain.erc20_balance(usdt, token, wallet) == 600_000
        replay = await send(chain, submitter, wallet, data=data, gas=200_000)
        assert await mined(chain, node, replay) == 0  # the nonce moved: signatures spent

        fund = await send(chain, submitter, wallet, value=10**15)
        assert await mined(chain, node, fund) == 1
        eth_digest = digest_at(1, to=payee, value=4 * 10**14, data=b"")
        pay = execute_data(
            wallet_abi, payee, 4 * 10**14, b"", collect_signatures(eth_digest, owners[1:])
        )
        sent = await send(chain, submitter, wallet, data=pay)
        assert await mined(chain, node, sent) == 1
        assert await chain.balance(payee) == 4 * 10**14
        assert await chain.balance(wallet) == 6 * 10**14

    run(node, body)


def test_node_controls_and_refusals(node: str) -> None:
    async def body(chain: EthereumChain) -> None:
        sender = funded(node, b"controls")
        to = SoftSigner(b"controls-to").address
        snap = rpc(node, "evm_snapshot")
        signed = await send(chain, sender, to, value=5)
        rpc(node, "evm_mine", "0x2")
        assert await chain.balance(to) == 5
        assert rpc(node, "evm_revert", snap) is True
        assert await chain.balance(to) == 0
        assert await chain.receipt(signed.tx_hash) is None  # the pool is the snapshot's
        assert await chain.pending_nonce(sender.address) == signed.nonce
        assert await chain.send_raw(signed.raw) == signed.tx_hash  # unknown again: accepted
        assert await chain.pending_nonce(sender.address) == signed.nonce + 1
        tx = eip1559_transaction(
            chain_id=await chain.chain_id(), nonce=signed.nonce + 5, to=to, value=1,
            gas=21000, fees=await chain.fees(),
        )  # fmt: skip
        with pytest.raises(Web3RPCError, match="nonce too high"):
            await chain.send_raw(sign_transaction(tx, sender).raw)
        rich = dict(tx, nonce=signed.nonce + 1, value=10**30)
        with pytest.raises(Web3RPCError, match="insufficient funds"):
            await chain.send_raw(sign_transaction(rich, sender).raw)
        assert rpc(node, "evm_setAutomine", True) is True  # mines the pool at once
        assert await chain.receipt(signed.tx_hash) is not None
        auto = await send(chain, sender, to, value=1)
        assert await chain.receipt(auto.tx_hash) is not None
        assert rpc(node, "evm_setAutomine", False) is True
        history = await chain.w3.eth.fee_history(3, "latest", [25, 75])
        assert len(history["baseFeePerGas"]) == 4 and len(history["reward"]) == 3
        assert history["oldestBlock"] == await chain.block_number() - 2

    run(node, body)


# -- hostile input ------------------------------------------------------------------------------


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.randint(-(2**70), 2**260)
    if pick == 2:
        return rng.choice(
            ["latest", "pending", "earliest", "0x", "0x0", "0x1", "0xzz", "", "0x" + "ab" * 20]
        )
    if pick == 3:
        return "0x" + rng.randbytes(rng.choice([1, 20, 32, 33])).hex()
    if pick == 4:
        return rng.random() * 1e9
    if pick == 5:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if pick == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys_ = [
        "from",
        "to",
        "data",
        "input",
        "value",
        "gas",
        "fromBlock",
        "toBlock",
        "address",
        "topics",
        "blockHash",
        "x",
    ]
    return {rng.choice(keys_): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_hostile_bodies_get_json_rpc_errors_never_a_crash(node: str) -> None:
    """Seeded fuzz, in process (a fresh chain: controls may mine or revert freely) and a share
    over HTTP: every answer is a JSON-RPC response; the node still answers afterwards."""
    rng = random.Random(20261207)
    chain = EthereumDevChain()
    methods = [*sorted(METHODS), "eth_sendTransaction", "", "evm_", "__init__"]
    bodies: list[bytes] = []
    for _ in range(300):
        kind = rng.randrange(4)
        if kind == 0:
            bodies.append(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
        elif kind == 1:
            bodies.append(json.dumps(_random_json(rng)).encode())
        else:
            request: dict[str, Any] = {"jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", 2])}
            request["method"] = rng.choice(methods)
            request["id"] = rng.choice([1, "x", None, [], 1.5])
            request["params"] = rng.choice(
                [[], [_random_json(rng)], [_random_json(rng), _random_json(rng)], {}, "p"]
            )
            bodies.append(json.dumps(request if kind == 2 else [request, request]).encode())
    errors = 0
    for body in bodies:
        answer = handle_body(chain, body)
        json.dumps(answer)  # serialisable
        for item in answer if isinstance(answer, list) else [answer]:
            assert item["jsonrpc"] == "2.0" and ("result" in item) != ("error" in item)
            if "error" in item:
                errors += 1
                assert isinstance(item["error"]["code"], int)
                assert "Traceback" not in item["error"]["message"]
    assert errors > 250
    deep = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
    for body in deep:  # py_ecc set the recursion limit to 100000: json would segfault
        assert handle_body(chain, body)["error"]["code"] == -32700
    shallow = b'[{"jsonrpc":"2.0","id":"' + b"[" * 40 + b'","method":"evm_mine"}]'
    assert "result" in handle_body(chain, shallow)[0]
    framing = [b for b in bodies if b"evm_" not in b and b"venue_" not in b][:60] + deep
    for body in framing:  # the shared node: no controls that would rewrite its chain
        http_request = urllib.request.Request(
            node, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(http_request, timeout=10) as response:
            assert response.status == 200
            parsed = json.loads(response.read())
            for item in parsed if isinstance(parsed, list) else [parsed]:
                assert "result" in item or isinstance(item["error"]["code"], int)
    assert int(rpc(node, "eth_blockNumber"), 16) >= 0
    assert to_checksum_address(rpc(node, "eth_accounts")[0])
