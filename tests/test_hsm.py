"""The PKCS#11 token layer against a real SoftHSM2 token under tmp_path.

Signatures are checked with libraries independent of the token and of ``custody``:
``cryptography`` (secp256k1 ECDSA, Ed25519), eth_keys (Ethereum's public key recovery). The
private keys are looked at through a session of their own, as an auditor would.

SoftHSM reads ``SOFTHSM2_CONF`` only when the module initialises, and python-pkcs11 loads a module
once per process; ``custody.hsm`` switches the configuration only while no token is open, so these
tests open tokens per test (closed in the fixture's finally) and never keep one open across tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from eth_keys.datatypes import PublicKey as EthPublicKey
from eth_keys.datatypes import Signature as EthSignature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import SignMixin, WrapMixin

from custody import hsm, softhsm
from custody.ecdsa import der_decode, der_encode, eth_address, eth_recovery_id, low_s
from custody.hsm import HsmError, Token, TokenEcdsaKey
from custody.signer import SECP256K1_N, EcdsaSigner, Ed25519Signer

MODULE = softhsm.DEFAULT_MODULE
LABEL = "test-venue"

pytestmark = pytest.mark.skipif(
    not Path(MODULE).exists() and not os.environ.get("CI"),
    reason=f"SoftHSM2 is not installed ({MODULE}); scripts/test installs it",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SoftHSM token store for the module, initialised once (PINs generated into files)."""
    path = tmp_path_factory.mktemp("hsm")
    softhsm.init_token(path, LABEL)
    return path


@pytest.fixture
def token(data_dir: Path) -> Iterator[Token]:
    tok = softhsm.open_token(data_dir, LABEL)
    try:
        yield tok
    finally:
        tok.close()


@pytest.fixture
def auditor(token: Token) -> Iterator[pkcs11.Session]:
    """A session of its own on the same token, without the venue's code (not logged in itself:
    the login of the token's open ``Token`` covers every session of the process)."""
    session = pkcs11.lib(MODULE).get_token(token_label=LABEL).open(rw=True)
    try:
        yield session
    finally:
        session.close()


def _label(request: pytest.FixtureRequest, kind: str) -> str:
    return f"{request.node.name}/{kind}"


def _digests(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


def _verify_ecdsa(pub: bytes, digest: bytes, r: int, s: int) -> None:
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), pub)
    key.verify(der_encode(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))


# --- keys stay inside --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["secp256k1", "ed25519"])
def test_private_key_cannot_be_read_out(
    token: Token, auditor: pkcs11.Session, request: pytest.FixtureRequest, kind: str
) -> None:
    label = _label(request, kind)
    if kind == "secp256k1":
        token.generate_secp256k1(label)
        key_type = KeyType.EC
    else:
        token.generate_ed25519(label)
        key_type = KeyType.EC_EDWARDS
    priv = auditor.get_key(ObjectClass.PRIVATE_KEY, key_type, label=label)
    with pytest.raises(p11e.AttributeSensitive):
        priv[Attribute.VALUE]
    assert priv[Attribute.TOKEN] is True
    assert priv[Attribute.PRIVATE] is True
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.ALWAYS_SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
    assert priv[Attribute.NEVER_EXTRACTABLE] is True
    assert priv[Attribute.LOCAL] is True  # generated inside the token, not imported
    assert priv[Attribute.SIGN] is True
    assert priv[Attribute.DERIVE] is False
    # The flags cannot be turned back (PKCS#11: SENSITIVE and EXTRACTABLE are one-way).
    with pytest.raises(p11e.PKCS11Error):
        priv[Attribute.EXTRACTABLE] = True
    with pytest.raises(p11e.PKCS11Error):
        priv[Attribute.SENSITIVE] = False
    assert priv[Attribute.EXTRACTABLE] is False
    # Nor can the key leave wrapped under a key the caller holds.
    template = {Attribute.WRAP: True, Attribute.EXTRACTABLE: True}
    wrapper = cast(WrapMixin, auditor.generate_key(KeyType.AES, 256, template=template))
    with pytest.raises(p11e.KeyUnextractable):
        wrapper.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_PAD)


# --- secp256k1 ---------------------------------------------------------------------------------


def test_secp256k1_signatures_verify_and_are_low_s(
    token: Token, request: pytest.FixtureRequest
) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    signer: EcdsaSigner = key
    pub = signer.public_key()
    assert len(pub) == 33 and pub[0] in (2, 3)
    for digest in _digests(seed=1, n=300):
        r, s = signer.sign_digest(digest)
        assert 0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2
        _verify_ecdsa(pub, digest, r, s)
        with pytest.raises(InvalidSignature):
            _verify_ecdsa(pub, hashlib.sha256(digest).digest(), r, s)


def test_token_gives_high_s_half_the_time(
    token: Token, auditor: pkcs11.Session, request: pytest.FixtureRequest
) -> None:
    """The raw mechanism does not normalise (so ``sign_digest`` has to)."""
    label = _label(request, "k")
    token.generate_secp256k1(label)
    priv = cast(SignMixin, auditor.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, label=label))
    high = 0
    for digest in _digests(seed=2, n=64):
        raw = priv.sign(digest, mechanism=Mechanism.ECDSA)
        assert len(raw) == 64
        high += int.from_bytes(raw[32:], "big") > SECP256K1_N // 2
    assert 8 < high < 56


def test_sign_digest_refuses_other_lengths(token: Token, request: pytest.FixtureRequest) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    for bad in (b"", b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(ValueError):
            key.sign_digest(bad)


def test_signing_from_threads(token: Token, request: pytest.FixtureRequest) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    ed = token.generate_ed25519(_label(request, "e"))
    pub = key.public_key()
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for digest in _digests(seed, 40):
                r, s = key.sign_digest(digest)
                _verify_ecdsa(pub, digest, r, s)
                Ed25519PublicKey.from_public_bytes(ed.public_key()).verify(ed.sign(digest), digest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# --- DER (BIP 66) ------------------------------------------------------------------------------


def test_der_known_encodings() -> None:
    assert der_encode(1, 1).hex() == "3006020101020101"
    assert der_encode(0x80, 0x7F).hex() == "30070202008002017f"
    big = SECP256K1_N - 1
    enc = der_encode(big, big)
    assert len(enc) == 72 and enc[3] == 33 and enc[4] == 0
    for bad in (0, SECP256K1_N, -1):
        with pytest.raises(ValueError):
            der_encode(bad, 1)


def test_der_of_token_signatures_parses_back_strictly(
    token: Token, request: pytest.FixtureRequest
) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    for digest in _digests(seed=3, n=200):
        r, s = key.sign_digest(digest)
        enc = der_encode(r, s)
        assert der_decode(enc) == (r, s)
        assert decode_dss_signature(enc) == (r, s)
        _assert_bip66(enc)


def _assert_bip66(sig: bytes) -> None:
    """BIP 66's IsValidSignatureEncoding, written out from the BIP (without the sighash byte)."""
    assert 8 <= len(sig) <= 72 and sig[0] == 0x30 and sig[1] == len(sig) - 2
    len_r = sig[3]
    assert 5 + len_r < len(sig)
    len_s = sig[5 + len_r]
    assert len_r + len_s + 6 == len(sig)
    assert sig[2] == 0x02 and len_r > 0 and not sig[4] & 0x80
    assert not (len_r > 1 and sig[4] == 0 and not sig[5] & 0x80)
    assert sig[len_r + 4] == 0x02 and len_s > 0 and not sig[len_r + 6] & 0x80
    assert not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def test_der_decode_fuzz() -> None:
    """Random and mutated encodings: rejected with ValueError, or canonical (re-encode to the
    same bytes, BIP 66-valid, and read the same by ``cryptography``)."""
    rng = random.Random(66)
    valid = [
        der_encode(rng.randrange(1, SECP256K1_N), rng.randrange(1, SECP256K1_N)) for _ in range(50)
    ]
    valid += [der_encode(rng.randrange(1, 2 ** rng.randrange(1, 256)), 1) for _ in range(20)]
    accepted = 0
    for i in range(4000):
        if i % 4 == 0:
            data = rng.randbytes(rng.randrange(0, 80))
        else:
            buf = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0 and buf:
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
                elif op == 1:
                    buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
                elif buf:
                    del buf[rng.randrange(len(buf))]
            data = bytes(buf)
        try:
            r, s = der_decode(data)
        except ValueError:
            continue
        accepted += 1
        assert der_encode(r, s) == data
        _assert_bip66(data)
        assert decode_dss_signature(data) == (r, s)
    assert accepted > 0  # the mutations reach the accepting path too


# --- Ethereum ----------------------------------------------------------------------------------


def test_low_s_examples() -> None:
    half = SECP256K1_N // 2
    assert low_s(5, half) == (5, half)
    assert low_s(5, half + 1) == (5, SECP256K1_N - half - 1)
    assert low_s(5, SECP256K1_N - 1) == (5, 1)
    with pytest.raises(ValueError):
        low_s(5, SECP256K1_N)


def test_eth_address_known_vector() -> None:
    """Private key 1: the public key is the generator; its address is well known."""
    g = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert eth_address(g) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    with pytest.raises(ValueError):
        eth_address(b"\x02" + b"\xff" * 32)  # x beyond the field: no such point
    with pytest.raises(ValueError):
        eth_address(g[1:])


def test_eth_recovery_id_recovers_the_address(token: Token, request: pytest.FixtureRequest) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    pub = key.public_key()
    expected = EthPublicKey.from_compressed_bytes(pub).to_checksum_address()
    assert eth_address(pub) == expected
    seen = set()
    for i, digest in enumerate(_digests(seed=4, n=24)):
        r, s = key.sign_digest(digest)
        v = eth_recovery_id(digest, r, s, pub)
        seen.add(v)
        recovered = EthSignature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
        assert recovered.to_checksum_address() == expected
        if i % 6 == 0:
            with pytest.raises(ValueError):
                eth_recovery_id(hashlib.sha256(digest).digest(), r, s, pub)
    assert seen == {0, 1}


# --- Ed25519 -----------------------------------------------------------------------------------


def test_ed25519_signatures_verify(token: Token, request: pytest.FixtureRequest) -> None:
    key = token.generate_ed25519(_label(request, "e"))
    signer: Ed25519Signer = key
    pub = Ed25519PublicKey.from_public_bytes(signer.public_key())
    rng = random.Random(5)
    for message in [
        b"",
        b"checkpoint",
        rng.randbytes(10_000),
        *(rng.randbytes(40) for _ in range(50)),
    ]:
        sig = signer.sign(message)
        assert len(sig) == 64
        pub.verify(sig, message)
        with pytest.raises(InvalidSignature):
            pub.verify(sig, message + b"\x00")


# --- lifecycle ---------------------------------------------------------------------------------


def test_keys_persist_across_reopening(data_dir: Path, request: pytest.FixtureRequest) -> None:
    prefix = f"{request.node.name}/"
    with softhsm.open_token(data_dir, LABEL) as tok:
        k = tok.generate_secp256k1(prefix + "btc")
        e = tok.generate_ed25519(prefix + "audit")
        k_pub, e_pub = k.public_key(), e.public_key()
    with pytest.raises(HsmError, match="closed"):
        k.sign_digest(b"\x00" * 32)
    with softhsm.open_token(data_dir, LABEL) as tok:
        again = tok.find_secp256k1(prefix + "btc")
        e_again = tok.find_ed25519(prefix + "audit")
        assert again is not None and e_again is not None
        assert again.public_key() == k_pub and e_again.public_key() == e_pub
        digest = hashlib.sha256(b"after reopening").digest()
        _verify_ecdsa(k_pub, digest, *again.sign_digest(digest))
        Ed25519PublicKey.from_public_bytes(e_pub).verify(e_again.sign(b"m"), b"m")
        assert tok.find_secp256k1(prefix + "audit") is None  # the kind is part of the lookup
        assert tok.find_ed25519(prefix + "missing") is None
        assert tok.keys(prefix) == [
            hsm.KeyInfo(prefix + "audit", hsm.ED25519),
            hsm.KeyInfo(prefix + "btc", hsm.SECP256K1),
        ]


def test_a_label_is_used_once(token: Token, request: pytest.FixtureRequest) -> None:
    label = _label(request, "k")
    token.generate_secp256k1(label)
    with pytest.raises(HsmError, match="already has a key"):
        token.generate_secp256k1(label)
    with pytest.raises(HsmError, match="already has a key"):
        token.generate_ed25519(label)
    with pytest.raises(HsmError):
        token.generate_secp256k1("")


def test_a_token_is_opened_once_per_process(data_dir: Path, token: Token) -> None:
    pin = softhsm.read_pin(data_dir / "user.pin")
    assert pin is not None
    with pytest.raises(HsmError, match="already open"):
        Token.open(MODULE, LABEL, pin, softhsm_conf=data_dir / "softhsm2.conf")
    token.close()
    token.close()  # idempotent


def test_wrong_pin_is_a_clear_error(data_dir: Path) -> None:
    wrong = "not-the-pin-7e3a"
    with pytest.raises(HsmError) as info:
        Token.open(MODULE, LABEL, wrong, softhsm_conf=(data_dir / "softhsm2.conf").resolve())
    message = str(info.value)
    assert "wrong PIN" in message and LABEL in message
    pin = softhsm.read_pin(data_dir / "user.pin")
    assert pin is not None and pin not in message and wrong not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(HsmError, match="no token labelled"):
        Token.open(MODULE, "no-such-token", wrong, softhsm_conf=data_dir / "softhsm2.conf")
    with softhsm.open_token(data_dir, LABEL):  # the right PIN still works after a wrong one
        pass


def test_init_is_idempotent(data_dir: Path) -> None:
    conf = data_dir / "softhsm2.conf"
    pins = (data_dir / "user.pin").read_bytes(), (data_dir / "so.pin").read_bytes()
    labels = softhsm.token_labels(conf)
    assert labels.count(LABEL) == 1
    softhsm.init_token(data_dir, LABEL)
    assert softhsm.token_labels(conf) == labels
    assert ((data_dir / "user.pin").read_bytes(), (data_dir / "so.pin").read_bytes()) == pins
    text = conf.read_text()
    assert f"directories.tokendir = {data_dir.resolve() / 'tokens'}" in text
    assert "objectstore.backend = file" in text and "log.level = ERROR" in text


def test_a_token_made_after_loading_is_found(data_dir: Path) -> None:
    """SoftHSM sees a token ``softhsm2-util`` made after the module loaded only after a
    reinitialisation, which ``Token.open`` does while nothing is open."""
    with softhsm.open_token(data_dir, LABEL):
        pass
    softhsm.init_token(data_dir, "second-token")
    with softhsm.open_token(data_dir, "second-token") as tok:
        assert tok.keys() == []
        tok.generate_ed25519("only-here")
    with softhsm.open_token(data_dir, LABEL) as tok:
        assert tok.find_ed25519("only-here") is None


def test_one_configuration_while_tokens_are_open(data_dir: Path, tmp_path: Path) -> None:
    """python-pkcs11 caches the module by path and never re-reads SOFTHSM2_CONF; a token of
    another configuration opens only once nothing of the first is open."""
    assert pkcs11.lib(MODULE) is pkcs11.lib(MODULE)
    other = tmp_path / "other"
    softhsm.init_token(other, "other-token")
    with (
        softhsm.open_token(data_dir, LABEL),
        pytest.raises(HsmError, match="another SoftHSM configuration"),
    ):
        softhsm.open_token(other, "other-token")
    with softhsm.open_token(other, "other-token") as tok:
        tok.generate_secp256k1("k")
    with softhsm.open_token(data_dir, LABEL) as tok:  # and back
        assert tok.find_secp256k1("k") is None
    with softhsm.open_token(other, "other-token") as tok:
        assert tok.find_secp256k1("k") is not None


# --- PINs --------------------------------------------------------------------------------------


def test_pins_are_files_0600_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with softhsm.open_token(tmp_path, "logged") as tok:
        key = tok.generate_secp256k1("k")
        key.sign_digest(b"\x01" * 32)
    pins = []
    for name in ("user.pin", "so.pin"):
        path = tmp_path / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pins.append(path.read_text().strip())
    assert len(pins[0]) >= 16 and pins[0] != pins[1]
    with pytest.raises(HsmError) as info:
        Token.open(MODULE, "logged", pins[1], softhsm_conf=tmp_path / "softhsm2.conf")
    out, err = capfd.readouterr()
    assert caplog.records, "the test must see the module's log lines"
    for pin in pins:
        assert pin not in caplog.text and pin not in out and pin not in err
        assert pin not in str(info.value)
    assert not (Path.home() / ".config" / "softhsm2" / "tokens" / "logged").exists()


def test_pin_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(softhsm.PIN_ENV, "env-pin-5150")
    with softhsm.open_token(tmp_path, "from-env") as tok:
        tok.generate_ed25519("e")
    assert not (tmp_path / "user.pin").exists()  # an operator's PIN is theirs to keep
    assert (tmp_path / "so.pin").exists()
    monkeypatch.delenv(softhsm.PIN_ENV)
    pin_file = tmp_path / "operator.pin"
    pin_file.write_text("env-pin-5150\n")
    with softhsm.open_token(tmp_path, "from-env", pin_file=pin_file) as tok:
        assert tok.find_ed25519("e") is not None
    with pytest.raises(HsmError, match="no PIN"):
        softhsm.open_token(tmp_path, "from-env")
    with softhsm.open_token(tmp_path, "from-file", pin_file=pin_file) as tok:  # a new token
        tok.generate_ed25519("e")
    assert not (tmp_path / "user.pin").exists()
    with softhsm.open_token(tmp_path, "from-file", pin="env-pin-5150") as tok:
        assert tok.find_ed25519("e") is not None
    monkeypatch.setenv(softhsm.PIN_ENV, "abc")  # too short for SoftHSM
    with pytest.raises(HsmError, match="printable") as info:
        softhsm.read_pin()
    assert "abc" not in str(info.value)


def test_a_failing_util_does_not_echo_pins(tmp_path: Path) -> None:
    """The tool's error is reported, with the PINs masked if it repeats its arguments."""
    fake = tmp_path / "fake-util"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = --show-slots ] && exit 0\necho "refused: $*" >&2\nexit 3\n'
    )
    fake.chmod(0o700)
    with pytest.raises(HsmError) as info:
        softhsm.init_token(
            tmp_path / "d", "t", pin="user-pin-9999", so_pin="so-pin-8888", util=str(fake)
        )
    message = str(info.value)
    assert "refused" in message and "(3)" in message
    assert "user-pin-9999" not in message and "so-pin-8888" not in message
    with pytest.raises(HsmError, match="not installed"):
        softhsm.init_token(tmp_path / "e", "t", util="no-such-softhsm2-util")


def test_token_labels_longer_than_softhsm_allows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HsmError, match="label"):
        softhsm.init_token(tmp_path, "x" * 33)
    assert isinstance(softhsm.init_token(tmp_path, "x" * 32), softhsm.SoftHsm)


def test_key_objects_are_the_signer_protocols(token: Token, request: pytest.FixtureRequest) -> None:
    key = token.generate_secp256k1(_label(request, "k"))
    assert isinstance(key, TokenEcdsaKey)
    signer: EcdsaSigner = key  # mypy checks the protocol; the call checks the behaviour
    assert signer.public_key() == key.public_key()


def test_public_key_parsers_fuzz() -> None:
    """CKA_EC_POINT as modules give it (raw or DER-wrapped) and compressed keys from outside:
    random bytes are refused with the module's error or give a value of the right shape."""
    rng = random.Random(33)
    g = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    for size in (32, 65):
        raw = rng.randbytes(size)
        assert hsm._ec_point(raw, size) == raw
        assert hsm._ec_point(bytes((4, size)) + raw, size) == raw
    addresses = 0
    for _ in range(600):
        data = rng.randbytes(rng.choice((31, 32, 33, 34, 64, 65, 66, 67)))
        for size in (32, 65):
            with contextlib.suppress(HsmError):
                assert len(hsm._ec_point(data, size)) == size
        key = bytes((rng.choice((2, 3, 4, 0)),)) + data[:32]
        if rng.random() < 0.2:
            key = g[:1] + bytes(b ^ (rng.random() < 0.05) for b in g[1:])
        try:
            address = eth_address(key)
        except ValueError:
            continue
        addresses += 1
        assert len(address) == 42 and address.startswith("0x")
        assert address == EthPublicKey.from_compressed_bytes(key).to_checksum_address()
    assert addresses > 0
