"""Script checks for the test chain: the structure by hand, the signatures by bitcoinlib.

Only native segwit outputs are spendable here: P2WPKH and P2WSH m-of-n CHECKMULTISIG, the two
kinds the venue makes. bitcoinlib's ``Transaction.verify()`` checks signatures against the keys
*in the witness* only; it does not tie those keys to the coin being spent, so this module checks
that the witness program matches the spent output first.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from custody.chains.btc_tx import hash160, sha256
from custody.devchain.btc_codec import Tx, TxOut, is_strict_low_s_der

_bitcoinlib_tx: Any = None


def use_bitcoinlib_dir(folder: Path) -> None:
    """Point bitcoinlib's data folder (config, log, database) at ``folder``, logging off: it
    reads the BCL_DATA_DIR variable once, at import, and writes ~/.bitcoinlib without it."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_config(folder)
    os.environ["BCL_DATA_DIR"] = str(folder)


def _write_config(folder: Path) -> None:
    (folder / "config.ini").write_text("[logs]\nenable_bitcoinlib_logging = False\n")


def _transaction_class() -> Any:
    global _bitcoinlib_tx
    if _bitcoinlib_tx is None:
        if "BCL_DATA_DIR" not in os.environ:
            raise RuntimeError("call use_bitcoinlib_dir before checking signatures")
        _bitcoinlib_tx = importlib.import_module("bitcoinlib.transactions").Transaction
        # Its first import (no install.log yet) reads this config, then copies its own default
        # config.ini (and networks.json, which it needs) into the folder: put ours back.
        _write_config(Path(os.environ["BCL_DATA_DIR"]))
        # Its parser logs a warning per malformed script it meets: hostile input, not news.
        logging.getLogger("bitcoinlib").setLevel(logging.ERROR)
    return _bitcoinlib_tx


def _multisig(script: bytes) -> tuple[int, int] | None:
    """(m, n) of a bare m-of-n CHECKMULTISIG over distinct compressed keys, else None."""
    if len(script) < 37 or script[-1] != 0xAE:
        return None
    m, n = script[0] - 0x50, script[-2] - 0x50
    if not 1 <= m <= n <= 15 or len(script) != 3 + 34 * n:
        return None
    keys = [script[1 + 34 * i : 35 + 34 * i] for i in range(n)]
    if any(k[0] != 33 or k[1] not in (2, 3) for k in keys) or len(set(keys)) != n:
        return None
    return m, n


def _structure(index: int, witness: tuple[bytes, ...], spent: TxOut) -> str | None:
    spk = spent.script
    if len(spk) == 22 and spk[:2] == b"\x00\x14":
        if len(witness) != 2 or len(witness[1]) != 33 or witness[1][0] not in (2, 3):
            return f"input {index}: witness is not <sig> <compressed pubkey>"
        if hash160(witness[1]) != spk[2:]:
            return f"input {index}: witness program hash mismatch"
        sigs: tuple[bytes, ...] = witness[:1]
    elif len(spk) == 34 and spk[:2] == b"\x00\x20":
        if len(witness) < 2 or sha256(witness[-1]) != spk[2:]:
            return f"input {index}: witness program hash mismatch"
        shape = _multisig(witness[-1])
        if shape is None:
            return f"input {index}: witness script is not a standard multisig"
        if len(witness) != shape[0] + 2 or witness[0] != b"":
            return f"input {index}: needs exactly {shape[0]} signatures after an empty item"
        sigs = witness[1:-1]
    else:
        return f"input {index}: only P2WPKH and P2WSH outputs are spendable here"
    if not all(is_strict_low_s_der(s) for s in sigs):
        return f"input {index}: signature is not strict low-s DER with SIGHASH_ALL"
    return None


def script_failure(tx: Tx, spent: list[TxOut]) -> str | None:
    """Why ``tx``'s inputs do not unlock ``spent`` (one output per input), or None if they do."""
    for i, (tx_in, coin) in enumerate(zip(tx.inputs, spent, strict=True)):
        if tx_in.script_sig:
            return f"input {i}: scriptSig must be empty for a native segwit spend"
        reason = _structure(i, tx_in.witness, coin)
        if reason:
            return reason
    try:
        parsed = _transaction_class().parse_bytes(tx.raw, network="regtest")
        for inp, coin in zip(parsed.inputs, spent, strict=True):
            inp.value = coin.value
        ok = bool(parsed.verify())
    except Exception as exc:  # any failure inside bitcoinlib is a rejection
        return f"signature check failed: {type(exc).__name__}"
    return None if ok else "signature does not verify"
