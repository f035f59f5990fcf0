"""Proof of reserves: the sum tree, the standalone verifier (run as a script and loaded by path),
and the wallets' signatures of the challenge on both chains."""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from bitcoinlib.encoding import (  # type: ignore[import-untyped]
    pubkeyhash_to_addr_base58,
    pubkeyhash_to_addr_bech32,
)
from bitcoinlib.keys import verify_message  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from eth_keys.datatypes import PrivateKey
from soft_signer import SoftSigner

from custody.reserves import (
    PAD_HASH,
    ReservesTree,
    asset_attestation,
    build,
    challenge,
    context,
    decimal_string,
    leaf_hash,
    salt_of,
)
from custody.signer import SECP256K1_N

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "verify_reserves.py"
ASSETS = [("BTC", 8), ("ETH", 18), ("USDT", 6)]
SEED = b"reserves-test-seed-0123456789"


@pytest.fixture(scope="module")
def vr() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_reserves_under_test", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample(n: int, seed: int = 1) -> dict[str, dict[str, int]]:
    rng = random.Random(seed)
    out: dict[str, dict[str, int]] = {}
    for i in range(n):
        held = rng.sample([a for a, _ in ASSETS], rng.randint(0, 3))
        out[f"acct-{i}"] = {a: rng.choice([0, 1, rng.randrange(10**20)]) for a in held}
    return out


@pytest.fixture(scope="module")
def tree() -> ReservesTree:
    return build(sample(13), ASSETS, 4242, SEED)


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(obj))
    return result


def problems_of(
    vr: ModuleType, proof: dict[str, Any], root: bytes | None = None, pub: Any = None
) -> list[str]:
    published = vr.read_published(pub) if pub is not None else None
    found: list[str] = vr.check_proof(vr.read_proof(roundtrip(proof)), root, published)[0]
    return found


# ---------------------------------------------------------------- the tree and its proofs


def test_every_proof_of_small_trees_verifies(vr: ModuleType) -> None:
    for n in (1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17):
        data = sample(n, seed=n)
        t = build(data, ASSETS, n, SEED)
        pub = roundtrip(t.published())
        for account in data:
            proof = t.proof(account)
            assert len(proof["path"]) == (n - 1).bit_length()
            found, root = vr.check_proof(
                vr.read_proof(roundtrip(proof)), t.root_hash, vr.read_published(pub)
            )
            assert found == [] and root == t.root_hash, (n, account, found)


def test_proof_contents(tree: ReservesTree) -> None:
    data = sample(13)
    proof = tree.proof("acct-3")
    assert proof["salt"] == salt_of(SEED, 4242, "acct-3").hex()
    held = data["acct-3"]
    assert [b["amount"] for b in proof["balances"]] == [held.get(a, 0) for a, _ in ASSETS]
    for b, (_, d) in zip(proof["balances"], ASSETS, strict=True):
        assert b["decimal"] == decimal_string(b["amount"], d)
    assert proof["root"] == tree.root_hash.hex() and proof["totals"] == tree.totals
    pub = tree.published()
    assert pub["leaf_count"] == 13 and pub["root"] == tree.root_hash.hex()
    assert "acct-3" not in json.dumps(pub) and proof["salt"] not in json.dumps(pub)
    with pytest.raises(KeyError):
        tree.proof("nobody")


def test_decimal_strings() -> None:
    assert decimal_string(12345, 2) == "123.45"
    assert decimal_string(5, 8) == "0.00000005"
    assert decimal_string(7, 0) == "7"
    assert decimal_string(10**18, 18) == "1.000000000000000000"


def run_tool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH: the script must stand alone.
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_the_script_verifies_and_refuses(tree: ReservesTree, tmp_path: Path) -> None:
    (tmp_path / "pub.json").write_text(json.dumps(tree.published()))
    for account in ("acct-0", "acct-12"):
        (tmp_path / "proof.json").write_text(json.dumps(tree.proof(account)))
        done = run_tool(
            "proof.json", "--published", "pub.json", "--root", tree.root_hash.hex(), cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("VERIFIED") and account in done.stdout
    bad = tree.proof("acct-5")
    bad["path"][1]["sums"][0] += 1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = run_tool("bad.json", "--published", "pub.json", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout.startswith("NOT VERIFIED"), done.stdout
    assert "total of BTC" in done.stdout and done.stderr == ""
    (tmp_path / "junk.json").write_text("{not json")
    done = run_tool("junk.json", cwd=tmp_path)
    assert done.returncode == 2 and "UNREADABLE" in done.stdout and done.stderr == ""
    done = run_tool("missing.json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def _non_pad_account(tree: ReservesTree, level: int) -> str:
    for i in range(13):
        proof = tree.proof(f"acct-{i}")
        if proof["path"][level]["hash"] != PAD_HASH.hex():
            return f"acct-{i}"
    raise AssertionError("every sibling is padding")


def _tamper(proof: dict[str, Any], what: str) -> None:
    if what == "balance":
        b = proof["balances"][0]
        b["amount"] += 1
        b["decimal"] = decimal_string(b["amount"], 8)
    elif what == "salt":
        proof["salt"] = ("0" if proof["salt"][0] != "0" else "1") + proof["salt"][1:]
    elif what == "sibling hash":
        h = proof["path"][1]["hash"]
        proof["path"][1]["hash"] = h[:-1] + ("0" if h[-1] != "0" else "1")
    elif what == "sum":
        proof["path"][1]["sums"][2] += 1
    elif what == "side":
        step = proof["path"][0]
        step["side"] = "left" if step["side"] == "right" else "right"
    elif what == "parent":
        proof["path"][2]["parent"] = hashlib.sha256(b"another parent").hexdigest()
    elif what == "leaf":
        proof["leaf"] = hashlib.sha256(b"another leaf").hexdigest()
    elif what == "root":
        proof["root"] = hashlib.sha256(b"another root").hexdigest()
    elif what == "total":
        proof["totals"]["ETH"] -= 1


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("balance", ["leaf: your account", "root: the path leads to", "total of BTC: the path"]),
        ("salt", ["leaf: your account", "root: the path leads to"]),
        ("sibling hash", ["level 1: with the sibling", "root: the path leads to"]),
        ("sum", ["level 1: with the sibling", "root: the path leads to", "total of USDT: the"]),
        ("side", ["level 0: with the sibling", "root: the path leads to"]),
        ("parent", ["level 2: with the sibling"]),
        ("leaf", ["leaf: your account"]),
        ("root", ["but the proof's root is"]),
        ("total", ["total of ETH: the path sums to"]),
    ],
)
def test_a_changed_proof_fails_with_its_reason(
    vr: ModuleType, tree: ReservesTree, what: str, expected: list[str]
) -> None:
    proof = tree.proof(_non_pad_account(tree, 0))
    assert problems_of(vr, proof) == []
    _tamper(proof, what)
    found = problems_of(vr, proof)
    assert len(found) == len(expected), found
    for line, prefix in zip(found, expected, strict=True):
        assert prefix in line, found


def test_the_published_values_are_compared(vr: ModuleType, tree: ReservesTree) -> None:
    proof = tree.proof("acct-1")
    pub = tree.published()
    assert problems_of(vr, proof, tree.root_hash, pub) == []
    assert ["but --root is" in p for p in problems_of(vr, proof, b"\1" * 32)] == [True]
    for key, value, message in [
        ("root", "ab" * 32, "but the published root is"),
        ("snapshot", 4243, "snapshot: the proof has 4242 but the published has 4243"),
        ("leaf_count", 14, "leaf_count: the proof has 13"),
    ]:
        changed = dict(pub, **{key: value})
        found = problems_of(vr, proof, None, changed)
        assert len(found) == 1 and message in found[0], found
    changed = copy.deepcopy(pub)
    changed["totals"]["BTC"] += 1
    found = problems_of(vr, proof, None, changed)
    assert len(found) == 1 and "total of BTC" in found[0] and "the published totals" in found[0]


def test_a_decimal_that_disagrees_with_its_amount_fails(vr: ModuleType, tree: ReservesTree) -> None:
    proof = tree.proof("acct-2")
    proof["balances"][1]["decimal"] = "1" + proof["balances"][1]["decimal"]
    found = problems_of(vr, proof)
    assert len(found) == 1 and "leaf: the balance of ETH reads" in found[0]


def test_negative_and_wrapping_sums_are_refused_at_their_level(
    vr: ModuleType, tree: ReservesTree
) -> None:
    proof = tree.proof("acct-4")
    proof["path"][2]["sums"][0] = -1
    assert problems_of(vr, proof) == ["level 2: the sibling's sum of BTC is negative (-1)"]
    proof = tree.proof("acct-4")
    proof["balances"][0]["amount"] = -5
    proof["balances"][0]["decimal"] = "-0.00000005"
    found = problems_of(vr, proof)
    assert len(found) == 1 and "leaf: the balance of BTC (-5) is negative" in found[0]
    # A sum meant to act as -5 modulo 2**128 overflows the parent instead of wrapping.
    proof = tree.proof("acct-4")
    proof["path"][1]["sums"][1] = (1 << 128) - 5
    found = problems_of(vr, proof)
    assert found[0].startswith("level 1: with the sibling"), found  # where the hashes part
    assert found[-1].endswith("the parent's sum of ETH exceeds 2**128"), found
    with pytest.raises(ValueError, match="must be an int"):
        build({"a": {"BTC": -1}}, ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="must be an int"):
        build({"a": {"BTC": cast(int, 1.5)}}, ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="must be an int"):
        build({"a": {"BTC": True}}, ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="reaches 2"):
        build({"a": {"BTC": (1 << 128) - 1}, "b": {"BTC": 1}}, ASSETS, 1, SEED)


def test_build_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown asset"):
        build({"a": {"DOGE": 1}}, ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="twice"):
        build(cast(dict[str, dict[str, int]], {1: {"BTC": 1}, "1": {"BTC": 2}}), ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="no accounts"):
        build({}, ASSETS, 1, SEED)
    with pytest.raises(ValueError, match="seed"):
        build({"a": {}}, ASSETS, 1, b"short")
    with pytest.raises(ValueError, match="distinct"):
        build({"a": {}}, [("BTC", 8), ("BTC", 8)], 1, SEED)


def test_totals_are_the_sums_of_balances_and_padding_takes_nothing(vr: ModuleType) -> None:
    for n in range(1, 34):
        data = sample(n, seed=100 + n)
        t = build(data, ASSETS, 7, SEED)
        expected = {a: sum(held.get(a, 0) for held in data.values()) for a, _ in ASSETS}
        assert t.totals == expected and t.published()["totals"] == expected
    # 5 leaves: the fifth's sibling at level 0 is the padding node, with zero sums.
    data = sample(5, seed=3)
    t = build(data, ASSETS, 7, SEED)
    padded = [p for p in map(t.proof, data) if p["path"][0]["hash"] == PAD_HASH.hex()]
    assert len(padded) == 1 and padded[0]["path"][0]["sums"] == [0, 0, 0]
    assert padded[0]["path"][0]["side"] == "right"
    # Padding given a "negative" sum to take from the totals is refused.
    proof = copy.deepcopy(padded[0])
    proof["path"][0]["sums"][0] = -3
    assert problems_of(vr, proof) == ["level 0: the sibling's sum of BTC is negative (-3)"]
    # A sibling past the level's end must be the padding, even with a real-looking hash.
    proof = copy.deepcopy(padded[0])
    proof["path"][0]["hash"] = "11" * 32
    found = problems_of(vr, proof)
    assert len(found) == 1 and found[0].startswith("level 0: the sibling lies past")
    # A path too short or a leaf placed past the count is refused.
    proof = copy.deepcopy(padded[0])
    proof["path"].pop()
    assert "the path has 2 levels; a tree of 5 leaves has 3" in problems_of(vr, proof)[0]


def test_the_same_inputs_give_the_same_root() -> None:
    data = sample(40, seed=9)
    first = build(data, ASSETS, 11, SEED)
    shuffled = list(data.items())
    random.Random(5).shuffle(shuffled)
    second = build(dict(shuffled), ASSETS, 11, SEED)
    assert first.root_hash == second.root_hash
    assert first.proof("acct-7") == second.proof("acct-7")
    changed = dict(data, **{"acct-7": {"BTC": data["acct-7"].get("BTC", 0) + 1}})
    assert build(changed, ASSETS, 11, SEED).root_hash != first.root_hash


def test_seeds_and_snapshots_change_every_leaf() -> None:
    data = sample(20, seed=2)
    a = build(data, ASSETS, 11, SEED)
    b = build(data, ASSETS, 11, SEED + b"!")
    c = build(data, ASSETS, 12, SEED)
    assert len({a.root_hash, b.root_hash, c.root_hash}) == 3
    for account in data:
        pa, pb, pc = a.proof(account), b.proof(account), c.proof(account)
        assert len({pa["salt"], pb["salt"], pc["salt"]}) == 3
        vector = [held["amount"] for held in pa["balances"]]
        leaves = {
            leaf_hash(context(p["snapshot"], ASSETS), bytes.fromhex(p["salt"]), account, vector)
            for p in (pa, pb, pc)
        }
        assert len(leaves) == 3


# ---------------------------------------------------------------- the verifier's parsing


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 1 << 128, -(1 << 200), rng.randrange(-(10**6), 10**6)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308])
    if kind == 4:
        return rng.choice(["", "left", "right", "zz" * 32, "ab" * 32, "\u00e9\x00", "x" * 70000])
    if kind == 5:
        return rng.randbytes(rng.randrange(40)).hex()
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(rng.randrange(5)): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _mutate(rng: random.Random, obj: Any) -> Any:
    """A copy of ``obj`` with one node deleted, replaced or its type changed."""
    obj = copy.deepcopy(obj)
    parent: Any = None
    key: Any = None
    node = obj
    while isinstance(node, dict | list) and node and rng.random() < 0.75:
        parent = node
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        node = node[key]
    if parent is None:
        return _random_json(rng)
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[key]
    else:
        parent[key] = _random_json(rng)
    return obj


def test_fuzzed_proofs_never_raise(vr: ModuleType, tree: ReservesTree, tmp_path: Path) -> None:
    rng = random.Random(20261207)
    pub = tree.published()
    (tmp_path / "pub.json").write_text(json.dumps(pub))
    originals = [tree.proof(f"acct-{i}") for i in range(13)]
    normal = [vr.read_proof(roundtrip(p)) for p in originals]
    path = tmp_path / "p.json"
    codes = {1: 0, 2: 0}
    for i in range(400):
        which = rng.randrange(len(originals))
        if i % 4 == 3:  # damage the text itself
            text = bytearray(json.dumps(originals[which]).encode())
            for _ in range(rng.randint(1, 4)):
                text[rng.randrange(len(text))] = rng.randrange(256)
            if rng.random() < 0.3:
                text = text[: rng.randrange(len(text))]
            data = bytes(text)
        else:
            data = json.dumps(_mutate(rng, originals[which])).encode()
        path.write_bytes(data)
        args = [str(path)] + (["--published", str(tmp_path / "pub.json")] if i % 2 else [])
        code = vr.main(args)
        if code == 0:  # only a mutation that changes nothing the proof means may still verify
            assert vr.read_proof(json.loads(data)) == normal[which], data
        else:
            assert code in (1, 2)
            codes[code] += 1
    assert codes[1] > 20 and codes[2] > 50, codes
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(deep)
    assert vr.main([str(path)]) == 2


def test_the_verifier_imports_only_the_standard_library() -> None:
    tree = ast.parse(TOOL.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import"
            assert node.module is not None
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            raise AssertionError("a dynamic import")
    assert names, "no imports parsed"
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


# ---------------------------------------------------------------- the verifier's own crypto


def test_the_pure_python_primitives_agree_with_the_libraries(vr: ModuleType) -> None:
    rng = random.Random(7)
    for size in (0, 1, 55, 56, 64, 135, 136, 137, 300):
        data = rng.randbytes(size)
        assert vr.keccak256(data) == keccak(data)
        assert vr.keccak256(data, 0x06) == hashlib.sha3_256(data).digest()
        assert vr._ripemd160_pure(data) == hashlib.new("ripemd160", data).digest()
    for _ in range(3):
        key = PrivateKey(rng.randbytes(32))
        point = vr.point_mul(int.from_bytes(key.to_bytes(), "big"), vr.G)
        assert vr.sec1(point, True) == key.public_key.to_compressed_bytes()
        digest = rng.randbytes(32)
        sig = key.sign_msg_hash(digest)
        assert (
            vr.sec1(vr.recover(digest, sig.r, sig.s, sig.v), False)[1:] == key.public_key.to_bytes()
        )
        assert vr.recover(digest, sig.r, sig.s, sig.v ^ 1) != point
    assert (
        vr.recover(b"\0" * 32, 0, 1, 0) is None
        and vr.recover(b"\0" * 32, 1, SECP256K1_N, 0) is None
    )


# ---------------------------------------------------------------- asset attestations


def _wallets(signer: SoftSigner) -> list[tuple[str, str, SoftSigner]]:
    h = signer.hash160()
    return [
        ("ethereum", signer.address, signer),
        ("bitcoin", pubkeyhash_to_addr_bech32(h, prefix="bcrt"), signer),
        ("bitcoin", pubkeyhash_to_addr_bech32(h, prefix="bc"), signer),
        ("bitcoin", pubkeyhash_to_addr_base58(h, prefix=b"\x00"), signer),
    ]


def test_attestations_verify_on_both_chains(
    vr: ModuleType, tree: ReservesTree, tmp_path: Path
) -> None:
    message = challenge(tree.snapshot, tree.root_hash)
    assert message == f"venue proof of reserves 4242 {tree.root_hash.hex()}".encode()
    wallets = _wallets(SoftSigner(hashlib.sha256(b"hot").digest(), raw=True)) + _wallets(
        SoftSigner(hashlib.sha256(b"cold").digest(), raw=True)
    )
    signed = asset_attestation(message, wallets)
    assert [a["chain"] for a in signed] == [w[0] for w in wallets]
    for item in signed:
        assert vr.check_attestation(roundtrip(item), message.decode()) is None
        if item["chain"] == "ethereum":  # and eth-account agrees
            recovered = Account.recover_message(
                encode_defunct(primitive=message), signature=item["signature"]
            )
            assert recovered == item["address"]
        else:  # and bitcoinlib agrees
            assert verify_message(message, item["signature"], item["address"])
            assert not verify_message(message + b"!", item["signature"], item["address"])
    (tmp_path / "proof.json").write_text(json.dumps(tree.proof("acct-6")))
    (tmp_path / "pub.json").write_text(json.dumps(tree.published()))
    (tmp_path / "att.json").write_text(json.dumps(signed[:2]))
    done = run_tool(
        "proof.json", "--published", "pub.json", "--attestations", "att.json", cwd=tmp_path
    )
    assert done.returncode == 0 and "2 wallet signature(s)" in done.stdout, done.stdout


def test_attestations_fail_for_another_message_or_key(vr: ModuleType, tmp_path: Path) -> None:
    hot, cold = SoftSigner(b"\x11" * 32, raw=True), SoftSigner(b"\x22" * 32, raw=True)
    message = challenge(5, b"\x33" * 32)
    signed = asset_attestation(message, _wallets(hot))
    other = challenge(6, b"\x33" * 32).decode()
    for item in signed:
        found = vr.check_attestation(item, other)
        assert found is not None and "signs 'venue proof of reserves 5" in found
        # The message field rewritten to match: the signature no longer recovers the address.
        forged = dict(item, message=other)
        found = vr.check_attestation(forged, other)
        assert found is not None and ("signature is by" in found or "no public key" in found)
        # Another wallet's address claimed for this signature.
        claimed = dict(item, address=_wallets(cold)[signed.index(item)][1])
        found = vr.check_attestation(claimed, message.decode())
        assert found is not None and "signature is by" in found, found
    with pytest.raises(ValueError, match="not the signer's"):
        asset_attestation(message, [("ethereum", cold.address, hot)])
    with pytest.raises(ValueError, match="not the signer's"):
        asset_attestation(message, [("bitcoin", _wallets(cold)[1][1], hot)])
    with pytest.raises(ValueError, match="unknown chain"):
        asset_attestation(message, [("dogecoin", "D", hot)])


def test_brackets_inside_strings_do_not_count_as_nesting(vr: ModuleType, tmp_path: Path) -> None:
    account = "desk[" * 40 + "}"
    t = build({account: {"BTC": 5}, "other": {"ETH": 1}}, ASSETS, 1, SEED)
    (tmp_path / "p.json").write_text(json.dumps(t.proof(account)))
    assert vr.main([str(tmp_path / "p.json"), "--root", t.root_hash.hex()]) == 0
    (tmp_path / "p.json").write_text('{"a": ' * 40 + "1" + "}" * 40)
    assert vr.main([str(tmp_path / "p.json")]) == 2
