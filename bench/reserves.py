"""What a proof of reserves costs: building the Merkle sum tree over every account, one proof's
size, and checking it with the standalone verifier.

    python -m bench.reserves [--accounts 1000000] [--assets 4]

Prints the build's seconds (wall and CPU) and peak memory (the process's max RSS), the proof's
JSON size and depth, and the verifier's time for one proof.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import time
from pathlib import Path
from types import ModuleType

from custody.reserves import build

ASSETS = [("BTC", 8), ("ETH", 18), ("USDT", 6), ("SOL", 9), ("XRP", 6), ("ADA", 6)]


def _verifier() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "tools" / "verify_reserves.py"
    spec = importlib.util.spec_from_file_location("verify_reserves", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def balances(accounts: int, assets: int, seed: int = 7) -> dict[str, dict[str, int]]:
    """Accounts holding a random few of the assets (most hold one or two)."""
    rng = random.Random(seed)
    names = [a for a, _ in ASSETS[:assets]]
    out = {}
    for i in range(accounts):
        held = rng.sample(names, rng.randint(1, min(2, len(names))))
        out[f"acct-{i:07d}"] = {a: rng.randrange(10**12) for a in held}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--assets", type=int, default=4, choices=range(1, len(ASSETS) + 1))
    args = parser.parse_args()
    data = balances(args.accounts, args.assets)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    tree = build(data, ASSETS[: args.assets], 1_234_567, b"bench-seed-0123456789abcdef")
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    account = next(iter(data))
    start = time.perf_counter()
    proof = tree.proof(account)
    proof_s = time.perf_counter() - start
    text = json.dumps(proof)
    verifier = _verifier()
    start = time.perf_counter()
    problems, _root = verifier.check_proof(
        verifier.read_proof(json.loads(text)), None, verifier.read_published(tree.published())
    )
    verify_s = time.perf_counter() - start
    if problems:
        raise SystemExit(f"the proof does not verify: {problems}")
    print(f"proof of reserves: {args.accounts:,} accounts, {args.assets} assets")
    print(f"  build:        {build_s:8.2f} s ({build_cpu:.2f} s CPU)")
    print(
        f"  peak RSS:     {rss_after / 1024:8.0f} MiB (inputs alone: {rss_before / 1024:.0f} MiB)"
    )
    depth = len(proof["path"])
    print(f"  one proof:    {proof_s * 1e3:8.2f} ms, {len(text):,} bytes JSON, depth {depth}")
    print(f"  verify:       {verify_s * 1e3:8.2f} ms (stdlib verifier, parse + check)")


if __name__ == "__main__":
    main()
