"""Signatures per second through the PKCS#11 token (SoftHSM2 under a temporary folder): what a
withdrawal's signature and an audit checkpoint's cost.

    python -m bench.hsm_sign [--count 2000] [--seconds 10] [--module PATH]

Rows: secp256k1 (raw CKM_ECDSA over a 32-byte digest, then low-s and strict DER, as a Bitcoin
input is signed), the same plus Ethereum's recovery id (found by public key recovery with
eth_keys, on a tenth of the count), and Ed25519 (CKM_EDDSA over 64 bytes, as a checkpoint).
Each row stops at ``--count`` signatures or ``--seconds``, whichever comes first.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from custody.ecdsa import der_encode, eth_recovery_id
from custody.softhsm import DEFAULT_MODULE, open_token


def measure(
    fn: Callable[[int], object], count: int, seconds: float
) -> tuple[int, float, list[int]]:
    """Calls of ``fn(i)`` until ``count`` or ``seconds``: (calls, elapsed s, latencies in ns)."""
    lat: list[int] = []
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    for i in range(count):
        t0 = time.perf_counter_ns()
        fn(i)
        t1 = time.perf_counter_ns()
        lat.append(t1 - t0)
        if t1 >= deadline:
            break
    return len(lat), (time.perf_counter_ns() - start) / 1e9, lat


def pct(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e3


def run(count: int, seconds: float, module: str) -> None:
    digests = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(count)]
    message = bytes(range(64))
    with (
        tempfile.TemporaryDirectory(prefix="bench-hsm-") as tmp,
        open_token(Path(tmp), "bench", module=module) as token,
    ):
        k = token.generate_secp256k1("bench/secp256k1")
        e = token.generate_ed25519("bench/ed25519")
        pub = k.public_key()

        def ecdsa(i: int) -> bytes:
            return der_encode(*k.sign_digest(digests[i]))

        def ecdsa_eth(i: int) -> int:
            r, s = k.sign_digest(digests[i])
            return eth_recovery_id(digests[i], r, s, pub)

        def eddsa(i: int) -> bytes:
            return e.sign(message)

        rows = [
            ("secp256k1 digest -> low-s DER", measure(ecdsa, count, seconds)),
            ("secp256k1 + Ethereum v", measure(ecdsa_eth, max(1, count // 10), seconds)),
            ("ed25519 64-byte message", measure(eddsa, count, seconds)),
        ]
    print(f"PKCS#11 signing through {module} (one thread, one session)")
    head = ("operation", "signatures", "seconds", "sig/s", "p50 us", "p99 us")
    print(f"{head[0]:32} {head[1]:>10} {head[2]:>8} {head[3]:>9} {head[4]:>8} {head[5]:>8}")
    for name, (n, elapsed, lat) in rows:
        lat.sort()
        print(
            f"{name:32} {n:>10,} {elapsed:>8.2f} {n / elapsed:>9,.0f} "
            f"{pct(lat, 0.5):>8.0f} {pct(lat, 0.99):>8.0f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=2_000, help="signatures per row at most")
    ap.add_argument("--seconds", type=float, default=10.0, help="time per row at most")
    ap.add_argument("--module", default=DEFAULT_MODULE, help="the PKCS#11 module's path")
    args = ap.parse_args()
    run(max(1, args.count), args.seconds, args.module)


if __name__ == "__main__":
    main()
