"""The audit chain's checkpoint key inside a SoftHSM2 token under tmp_path (``venue.auditkey``):
checkpoints signed in the token verify with ``venue audit verify``'s logic, which needs no token;
no private key is in any file of the data folder; a rotation in the token (from another process,
while the venue runs) keeps the old checkpoints verifying; a data folder signed with a key file
moves to the token and keeps verifying; a wrong PIN is one clear line; the shared opener
(``venue.hsm``) opens a token once per process; a seeded fuzz of ``token-key``'s reader.

SoftHSM reads its configuration once per load of the module and ``custody.hsm`` switches it only
while no token is open: every test hands its token back (the venue's stop, or ``finally``), and
the autouse fixture fails a test that leaves one open (after closing it)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody import softhsm
from custody.hsm import HsmError
from engine.commands import NewOrder, Origin
from engine.types import Door, OrdType, Side
from surveillance.audit import AUDIT_DIR
from surveillance.checkpoint import (
    CHECKPOINTS_FILE,
    KEY_FILE,
    KEYS_DIR,
    Checkpoint,
    CheckpointError,
    CheckpointKey,
    Signer,
    parse_checkpoint,
    raw_key_id,
)
from surveillance.config import AuditConfig
from surveillance.verify import verify_chain
from venue import hsm as venue_hsm
from venue.auditkey import LABEL_PREFIX, TOKEN_KEY_FILE, parse_label, token_key_label
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.exits import EXIT_CORRUPT, EXIT_FAILED, CliError
from venue.parts import AuditPart
from venue.runtime import Venue

REPO = Path(__file__).resolve().parent.parent
SYM = "BTC-USDT"
PRICE = 9_500_000
CHECKPOINT_EVERY = 40
#: DER of a PKCS#8 Ed25519 private key up to its 32 key bytes (RFC 8410), and PEM's marker.
PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")

pytestmark = pytest.mark.skipif(
    not Path(softhsm.DEFAULT_MODULE).exists() and not os.environ.get("CI"),
    reason=f"SoftHSM2 is not installed ({softhsm.DEFAULT_MODULE}); scripts/test installs it",
)


@pytest.fixture(autouse=True)
def no_token_left_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The PIN comes from the token folder's file (never the environment of whoever runs the
    tests); no test leaves a token open for the next."""
    monkeypatch.delenv(softhsm.PIN_ENV, raising=False)
    try:
        yield
    finally:
        left = list(venue_hsm._open.values())
        venue_hsm._open.clear()
        for held in left:
            held.token.close()
    assert left == [], "a token was left open"


def make_config(data_dir: Path, *, token: bool = True) -> VenueConfig:
    """The shipped venue (its [custody] with the token under <data_dir>/hsm), or without
    [custody] (the key file), checkpointing every ``CHECKPOINT_EVERY`` entries."""
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.custody is not None and config.custody.hsm.softhsm_dir is None
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        assets={},
        fees=None,
        ledger=None,
        journal=dataclasses.replace(config.journal, fsync=False),
        audit=AuditConfig(True, CHECKPOINT_EVERY, 3600),
        custody=config.custody if token else None,
    )


def order(i: int) -> NewOrder:
    side = Side.BUY if i % 2 else Side.SELL
    price = PRICE - 100 - i % 50 if side is Side.BUY else PRICE + 100 + i % 50
    origin = Origin(Door.FIX, "S1", f"r{i}", "127.0.0.1:5000")
    return NewOrder(
        1001 + i % 2, SYM, f"c{i}", side, OrdType.LIMIT, qty=1000, price=price, origin=origin
    )


async def submit(venue: Venue, part: AuditPart, first: int, count: int) -> None:
    """``count`` orders in durable batches of ten (a checkpoint falls due at the end of a batch,
    so every ``CHECKPOINT_EVERY`` entries exactly)."""
    for i in range(first, first + count):
        if i % 10 == 9:
            await venue.submit(order(i))
        else:
            venue.post(order(i))
    await venue.read(lambda core: None)
    assert part.chain is not None
    await part.chain.flush()


async def drive(config: VenueConfig, first: int, count: int) -> None:
    """Run the venue with its audit part over ``count`` orders and stop."""
    venue = Venue(config)
    await venue.start()
    part = AuditPart(venue, config)
    try:
        await part.start()
        await submit(venue, part, first, count)
    finally:
        await part.stop()
        await venue.stop()


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def checkpoint_keys(data: Path) -> list[str]:
    """The key id of each checkpoint, in order."""
    lines = (data / AUDIT_DIR / CHECKPOINTS_FILE).read_bytes().splitlines()
    return [parse_checkpoint(line).key for line in lines]


def token_public(config: VenueConfig, label: str) -> bytes:
    """The raw public key of the token's key ``label``, read from the token itself."""
    assert config.custody is not None
    token = venue_hsm.acquire_hot_token(config.custody, config.data_dir)
    try:
        key = token.find_ed25519(label)
        assert key is not None
        return key.public_key()
    finally:
        venue_hsm.release_token(token)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != softhsm.PIN_ENV}
    return subprocess.run(
        [sys.executable, "-m", "venue.cli", "audit", *args],
        cwd=REPO,
        env={**base, "VENUE_PURE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_checkpoints_signed_in_the_token_verify_and_no_private_key_is_in_a_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    config = make_config(data)
    run(drive(config, 0, 130))
    audit = data / AUDIT_DIR
    assert not (audit / KEY_FILE).exists()
    assert (audit / TOKEN_KEY_FILE).read_text() == f"{LABEL_PREFIX}1\n"  # the label, nothing else

    report = verify_chain(data)
    assert report.clean, report.tampered
    assert report.checkpoints == 4  # entries 40, 80, 120 and the one at stop (130)
    public = token_public(config, f"{LABEL_PREFIX}1")
    kid = raw_key_id(public)
    assert report.keys == {kid} and set(checkpoint_keys(data)) == {kid}
    assert (audit / KEYS_DIR / f"{kid}.pub").read_text() == public.hex() + "\n"
    # each signature checks against the token's own public key, independently of the venue
    for line in (audit / CHECKPOINTS_FILE).read_bytes().splitlines():
        cp = parse_checkpoint(line)
        Ed25519PublicKey.from_public_bytes(public).verify(cp.sig, cp.message())

    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "tokens" for p in files)  # the token is under the folder
    for path in files:
        raw = path.read_bytes()
        assert b"PRIVATE KEY" not in raw and PKCS8_ED25519 not in raw, path

    # a restart keeps signing with the same key in the token
    run(drive(config, 130, 50))
    assert verify_chain(data).clean and set(checkpoint_keys(data)) == {kid}


def test_rotation_in_the_token_while_the_venue_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = make_config(data)

    async def scenario() -> str:
        venue = Venue(config)
        await venue.start()
        part = AuditPart(venue, config)
        try:
            await part.start()
            await submit(venue, part, 0, 90)  # checkpoints at 40 and 80
            # another process rotates while this one holds the token open
            done = await asyncio.to_thread(cli, "rotate-key", "--data-dir", str(data))
            assert done.returncode == 0, done.stderr
            await submit(venue, part, 90, 90)  # checkpoints at 120 and 160
        finally:
            await part.stop()
            await venue.stop()
        return done.stdout

    out = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert out.startswith("audit: new checkpoint signing key ") and "in token 'venue-hot'" in out
    new = raw_key_id(token_public(config, f"{LABEL_PREFIX}2"))
    assert new in out
    old = raw_key_id(token_public(config, f"{LABEL_PREFIX}1"))
    assert checkpoint_keys(data) == [old, old, new, new, new]  # the last one at stop
    assert token_key_label(data / AUDIT_DIR) == f"{LABEL_PREFIX}2"
    report = verify_chain(data)
    assert report.clean, report.tampered
    assert report.keys == {old, new} and report.checkpoints == 5


def test_a_key_file_folder_moved_to_the_token_keeps_verifying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    run(drive(make_config(data, token=False), 0, 90))
    audit = data / AUDIT_DIR
    assert (audit / KEY_FILE).exists() and not (audit / TOKEN_KEY_FILE).exists()
    file_keys = set(checkpoint_keys(data))
    assert len(file_keys) == 1

    config = make_config(data)
    with caplog.at_level(logging.WARNING, logger="venue.auditkey"):
        run(drive(config, 90, 90))
    assert any(KEY_FILE in r.getMessage() and "remove it" in r.getMessage() for r in caplog.records)
    token_kid = raw_key_id(token_public(config, f"{LABEL_PREFIX}1"))
    keys = checkpoint_keys(data)
    # 40, 80 and 90 (the stop) with the file; 120, 160 and 180 in the token
    assert set(keys[:3]) == file_keys and set(keys[3:]) == {token_kid} and len(keys) == 6
    report = verify_chain(data)
    assert report.clean, report.tampered
    assert report.keys == file_keys | {token_kid} and report.checkpoints == 6

    # back without [custody]: refused, never signed with the old key file again
    venue = Venue(make_config(data, token=False))

    async def without_token() -> None:
        await venue.start()
        try:
            with pytest.raises(CliError) as caught:
                await AuditPart(venue, venue.config).start()
        finally:
            await venue.stop()
        assert caught.value.code == EXIT_CORRUPT
        assert TOKEN_KEY_FILE in str(caught.value) and "[custody]" in str(caught.value)

    run(without_token())


def test_a_wrong_pin_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    config = make_config(data)
    run(drive(config, 0, 10))  # the token made, with its PIN in <data>/hsm/user.pin
    wrong = "wrong-pin-4711"

    done = cli("rotate-key", "--data-dir", str(data), env={softhsm.PIN_ENV: wrong})
    assert done.returncode == EXIT_FAILED and done.stdout == ""
    assert done.stderr == (
        "venue: error: audit: cannot use the token: login to token 'venue-hot' failed: wrong PIN\n"
    )
    assert token_key_label(data / AUDIT_DIR) == f"{LABEL_PREFIX}1"  # nothing rotated

    monkeypatch.setenv(softhsm.PIN_ENV, wrong)
    venue = Venue(config)

    async def start() -> None:
        await venue.start()
        try:
            with pytest.raises(CliError) as caught:
                await AuditPart(venue, config).start()
        finally:
            await venue.stop()
        message = str(caught.value)
        assert caught.value.code == EXIT_FAILED and "wrong PIN" in message
        assert wrong not in message and "\n" not in message

    run(start())
    # a verification needs no token, and no PIN
    clean = cli("verify", "--data-dir", str(data), env={softhsm.PIN_ENV: wrong})
    assert clean.returncode == 0 and clean.stdout.startswith("audit: clean: ")


def test_the_hot_token_is_opened_once_per_process_and_closed_by_its_last_user(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path / "data")
    assert config.custody is not None
    first = venue_hsm.acquire_hot_token(config.custody, config.data_dir)
    try:
        second = venue_hsm.acquire_hot_token(config.custody, config.data_dir)
        assert second is first
        venue_hsm.release_token(second)
        first.keys()  # still open for the other user
    finally:
        venue_hsm.release_token(first)
    with pytest.raises(HsmError, match="closed"):
        first.keys()
    again = venue_hsm.acquire_hot_token(config.custody, config.data_dir)
    try:
        assert again is not first and again.keys() == []
    finally:
        venue_hsm.release_token(again)
    assert (tmp_path / "data" / "hsm" / "softhsm2.conf").exists()


def test_a_token_key_naming_a_missing_key_is_refused_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = make_config(data)
    run(drive(config, 0, 10))
    (data / AUDIT_DIR / TOKEN_KEY_FILE).write_text(f"{LABEL_PREFIX}7\n")
    venue = Venue(config)

    async def start() -> None:
        await venue.start()
        try:
            with pytest.raises(CliError) as caught:
                await AuditPart(venue, config).start()
        finally:
            await venue.stop()
        assert caught.value.code == EXIT_CORRUPT
        assert f"no Ed25519 key '{LABEL_PREFIX}7'" in str(caught.value)

    run(start())


def test_fuzz_the_token_key_reader() -> None:
    """Random and mutated contents: a label of the right form, or ``CheckpointError``."""
    rng = random.Random(20261207)
    good = [f"{LABEL_PREFIX}{n}".encode() for n in (1, 2, 99, 123456789)]
    assert [parse_label(g + b"\n") for g in good] == [g.decode() for g in good]
    for bad in (b"", b"audit-checkpoint-0", b"audit-checkpoint-01", b"x" * 300, b"\xff"):
        with pytest.raises(CheckpointError):
            parse_label(bad)
    for _ in range(3000):
        base = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(len(base) + 1)
            choice = rng.random()
            if choice < 0.4 and base:
                base[min(where, len(base) - 1)] = rng.randrange(256)
            elif choice < 0.7:
                base.insert(where, rng.randrange(256))
            elif base:
                del base[min(where, len(base) - 1)]
        if rng.random() < 0.1:
            base = bytearray(rng.randbytes(rng.randrange(400)))
        try:
            label = parse_label(bytes(base))
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            continue
        assert label.startswith(LABEL_PREFIX) and label[len(LABEL_PREFIX) :].isdigit()
        assert len(label) <= len(LABEL_PREFIX) + 9 and json.dumps(label).isascii()


class _Key:
    """A checkpoint key held in memory: public half of ``public``, signatures of ``private``."""

    def __init__(self, private: Ed25519PrivateKey, public: Ed25519PrivateKey) -> None:
        self.private, self.public = private, public

    def public_key(self) -> bytes:
        raw: bytes = self.public.public_key().public_bytes_raw()
        return raw

    def sign(self, message: bytes) -> bytes:
        sig: bytes = self.private.sign(message)
        return sig


class _Keys:
    def __init__(self, key: _Key) -> None:
        self.key = key

    def current(self) -> CheckpointKey:
        return self.key


def test_any_injected_key_signs_and_one_whose_halves_disagree_is_refused(tmp_path: Path) -> None:
    """The signer takes whatever ``CheckpointKeys`` it is given (no file key is made), keeps its
    public key first, and never writes a checkpoint its key's public half does not verify."""
    audit = tmp_path / AUDIT_DIR
    audit.mkdir()
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = _Keys(_Key(a, a))
    signer = Signer(audit, keys, fsync=False)
    cp = signer.sign(1, 1, b"\x01" * 32, 5)
    assert not (audit / KEY_FILE).exists()
    assert cp.key == raw_key_id(a.public_key().public_bytes_raw())
    assert verify_chain_signature(audit, cp)

    keys.key = _Key(b, a)  # signs with b, claims a
    with pytest.raises(CheckpointError, match="bad signature"):
        signer.sign(2, 2, b"\x02" * 32, 6)
    assert len((audit / CHECKPOINTS_FILE).read_bytes().splitlines()) == 1  # nothing written


def verify_chain_signature(audit: Path, cp: Checkpoint) -> bool:
    """``cp`` checks against the public key kept in ``keys/``."""
    public = Ed25519PublicKey.from_public_bytes(
        bytes.fromhex((audit / KEYS_DIR / f"{cp.key}.pub").read_text())
    )
    public.verify(cp.sig, cp.message())
    return True
