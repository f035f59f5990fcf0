"""API keys: made, kept across restarts, revoked; the files they live in; crashes; damage.

The store is the audit record of key actions too, so the tests read its log file as an auditor
would, and check that no secret is ever in it in clear.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.rest.keys import LOG_NAME, SECRET_NAME, KeyStore, KeyStoreError, is_key_format

REPO = Path(__file__).resolve().parent.parent


def ed25519_pem() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


class Clock:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * 64, True),
        ("Zz09" * 16, True),
        ("a" * 63, False),
        ("a" * 65, False),
        ("a" * 63 + "-", False),
        ("a" * 63 + "\u00e9", False),
        ("a" * 63 + " ", False),
        ("", False),
    ],
)
def test_the_key_format(text: str, ok: bool) -> None:
    assert is_key_format(text) is ok


def test_create_reload_revoke(tmp_path: Path) -> None:
    clock = Clock()
    store = KeyStore(tmp_path, clock=clock)
    key, secret = store.create_hmac(7, {"TRADE", "USER_DATA"}, "bot one", ["10.0.0.0/8"], "ops:ann")
    assert is_key_format(key.api_key) and is_key_format(secret) and key.api_key != secret
    assert (key.account, key.kind, key.label, key.created_by) == (7, "HMAC", "bot one", "ops:ann")
    assert key.permissions == frozenset({"TRADE", "USER_DATA"})
    assert key.ip_allowlist == ("10.0.0.0/8",)
    assert (key.created_ms, key.revoked_ms, key.live) == (clock.now, 0, True)
    pem = ed25519_pem()
    clock.now += 5
    ed = store.create_ed25519(7, ["USER_DATA"], "", [], pem, "ops:bob")
    other, _ = store.create_hmac(8, ["USER_DATA"], "reader", ["::1", "192.168.1.7"], "ops:ann")
    assert store.hmac_secret(key.api_key) == secret.encode()
    assert store.for_account(7) == [key, ed]
    assert store.for_account(9) == []

    again = KeyStore(tmp_path)
    assert again.get(key.api_key) == key
    assert again.get(ed.api_key) == ed
    assert again.get(other.api_key) == other
    assert again.hmac_secret(key.api_key) == secret.encode()
    assert (
        again.ed25519_key(ed.api_key)
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
        == pem
    )
    assert again.for_account(7) == [key, ed]

    clock.now += 1000
    revoked = store.revoke(key.api_key, "ops:carl")
    assert revoked.revoked_ms == clock.now and not revoked.live
    assert store.get(key.api_key) == revoked
    with pytest.raises(KeyStoreError):
        store.hmac_secret(key.api_key)
    assert store.revoke(key.api_key, "ops:carl") == revoked  # twice: nothing more
    third = KeyStore(tmp_path)
    assert third.get(key.api_key) == revoked
    with pytest.raises(KeyStoreError):
        third.hmac_secret(key.api_key)
    assert third.hmac_secret(other.api_key)  # the others are untouched
    actions = [json.loads(x) for x in (tmp_path / LOG_NAME).read_text().splitlines()]
    assert [(a["action"], a["by"]) for a in actions] == [
        ("created", "ops:ann"),
        ("created", "ops:bob"),
        ("created", "ops:ann"),
        ("revoked", "ops:carl"),
    ]
    assert actions[3]["t"] == clock.now


def test_a_key_for_an_account_that_holds_nothing_yet(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "new" / "dir")
    key, _ = store.create_hmac(123456789, ["TRADE"], "x", [], "ops")
    assert KeyStore(tmp_path / "new" / "dir").get(key.api_key) == key


def test_files_are_owner_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.create_hmac(1, ["TRADE"], "", [], "ops")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / SECRET_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys" / LOG_NAME).stat().st_mode) == 0o600
    assert len((tmp_path / "keys" / SECRET_NAME).read_bytes()) == 32


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_secret_file_others_may_read_refuses_to_start(tmp_path: Path, mode: int) -> None:
    KeyStore(tmp_path)
    os.chmod(tmp_path / SECRET_NAME, mode)
    with pytest.raises(KeyStoreError, match="must be 0600") as err:
        KeyStore(tmp_path)
    assert "\n" not in str(err.value)
    os.chmod(tmp_path / SECRET_NAME, 0o400)
    KeyStore(tmp_path)  # stricter than 0600 is fine


def test_a_wrong_secret_file_is_refused(tmp_path: Path) -> None:
    KeyStore(tmp_path).create_hmac(1, ["TRADE"], "", [], "ops")
    (tmp_path / SECRET_NAME).write_bytes(os.urandom(32))
    with pytest.raises(KeyStoreError, match="does not decrypt"):
        KeyStore(tmp_path)


def test_no_secret_in_clear_in_the_files_nor_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = KeyStore(tmp_path)
    made = [store.create_hmac(3, ["TRADE"], f"k{i}", [], "ops") for i in range(5)]
    store.revoke(made[0][0].api_key, "ops")
    KeyStore(tmp_path)
    raw = (tmp_path / LOG_NAME).read_bytes()
    for key, secret in made:
        assert key.api_key.encode() in raw  # the audit record names the key...
        assert secret.encode() not in raw  # ...never its secret
        assert secret[:16].encode() not in raw
        assert secret not in caplog.text
        assert key.api_key not in caplog.text  # the process log shows a prefix only
        assert key.api_key[:8] in caplog.text
    # The secret is in the line, sealed: changing one byte of it is caught.
    lines = raw.decode().splitlines()
    record = json.loads(lines[1])
    sealed = bytearray(record["secret"]["sealed"].encode())
    sealed[4] = ord("A") if sealed[4] != ord("A") else ord("B")
    record["secret"]["sealed"] = sealed.decode()
    lines[1] = json.dumps(record)
    (tmp_path / LOG_NAME).write_text("\n".join(lines) + "\n")
    with pytest.raises(KeyStoreError, match="line 2"):
        KeyStore(tmp_path)


def test_the_secret_is_bound_to_its_api_key(tmp_path: Path) -> None:
    """A sealed secret moved to another key's line does not open (the key is the AAD)."""
    store = KeyStore(tmp_path)
    store.create_hmac(1, ["TRADE"], "", [], "ops")
    store.create_hmac(2, ["TRADE"], "", [], "ops")
    lines = [json.loads(x) for x in (tmp_path / LOG_NAME).read_text().splitlines()]
    lines[1]["secret"] = lines[0]["secret"]
    (tmp_path / LOG_NAME).write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(KeyStoreError, match=r"line 2.*does not decrypt"):
        KeyStore(tmp_path)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.create_hmac(1, ["WITHDRAW"], "", [], "ops"), "WITHDRAW"),
        (lambda s: s.create_hmac(1, ["TRADE", "READ"], "", [], "ops"), "unknown permission"),
        (lambda s: s.create_hmac(1, [], "", [], "ops"), "at least one"),
        (lambda s: s.create_hmac(1, "TRADE", "", [], "ops"), "not a string"),
        (lambda s: s.create_hmac(0, ["TRADE"], "", [], "ops"), "account"),
        (lambda s: s.create_hmac(-3, ["TRADE"], "", [], "ops"), "account"),
        (lambda s: s.create_hmac(True, ["TRADE"], "", [], "ops"), "account"),
        (lambda s: s.create_hmac(1, ["TRADE"], "x" * 65, [], "ops"), "label"),
        (lambda s: s.create_hmac(1, ["TRADE"], "a\nb", [], "ops"), "label"),
        (lambda s: s.create_hmac(1, ["TRADE"], "a\x00", [], "ops"), "label"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", ["10.0.0.300"], "ops"), "bad IP"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", ["10.0.0.1/24"], "ops"), "bad IP"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", ["host.example"], "ops"), "bad IP"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", [""], "ops"), "bad IP"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", "10.0.0.1", "ops"), "not a string"),
        (lambda s: s.create_hmac(1, ["TRADE"], "", [], ""), "by"),
        (lambda s: s.create_ed25519(1, ["TRADE"], "", [], "not a pem", "ops"), "PEM"),
        (lambda s: s.create_ed25519(1, ["TRADE"], "", [], rsa_pem(), "ops"), "not Ed25519"),
        (lambda s: s.create_ed25519(1, ["TRADE"], "", [], private_pem(), "ops"), "PEM"),
        (lambda s: s.revoke("A" * 64, "ops"), "unknown API key"),
        (lambda s: s.revoke("short\nkey", "ops"), "unknown API key"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_changes_nothing(
    tmp_path: Path, call: object, match: str
) -> None:
    store = KeyStore(tmp_path)
    with pytest.raises(KeyStoreError, match=match) as err:
        call(store)  # type: ignore[operator]
    assert "\n" not in str(err.value)
    assert not (tmp_path / LOG_NAME).exists()


def rsa_pem() -> str:
    key = generate_private_key(public_exponent=65537, key_size=1024)
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem() -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def test_ip_entries_are_normalised(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, _ = store.create_hmac(
        1, ["TRADE"], "", ["2001:DB8::1", "2001:db8::/32", "10.1.2.3", "10.1.2.3"], "ops"
    )
    assert key.ip_allowlist == ("2001:db8::1", "2001:db8::/32", "10.1.2.3")


def test_a_torn_last_line_is_ignored_and_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KeyStore(tmp_path)
    kept, _ = store.create_hmac(1, ["TRADE"], "", [], "ops")
    lost, _ = store.create_hmac(2, ["TRADE"], "", [], "ops")
    path = tmp_path / LOG_NAME
    data = path.read_bytes()
    cut = data[: len(data) - 30]  # the second line lost its end and its newline
    path.write_bytes(cut)
    with caplog.at_level(logging.WARNING):
        again = KeyStore(tmp_path)
    assert "torn" in caplog.text
    assert again.get(kept.api_key) == kept and again.get(lost.api_key) is None
    # The fragment is gone, so what is appended next starts a clean line.
    assert path.read_bytes() == data[: data.index(b"\n") + 1]
    third, _ = again.create_hmac(3, ["TRADE"], "", [], "ops")
    assert KeyStore(tmp_path).get(third.api_key) == third


def test_a_torn_line_of_zeros_is_ignored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    kept, _ = store.create_hmac(1, ["TRADE"], "", [], "ops")
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(b"\x00" * 50)
    assert KeyStore(tmp_path).get(kept.api_key) == kept


def test_a_damaged_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    for account in (1, 2, 3):
        store.create_hmac(account, ["TRADE"], "", [], "ops")
    path = tmp_path / LOG_NAME
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:40]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(KeyStoreError, match="line 2 is damaged") as err:
        KeyStore(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "line",
    [
        '{"t":1,"action":"revoked","api_key":"' + "B" * 64 + '","by":"ops"}',
        '{"t":1,"action":"erased","api_key":"' + "B" * 64 + '","by":"ops"}',
        "[1,2,3]",
        '{"t":-1,"action":"revoked","api_key":"' + "B" * 64 + '","by":"ops"}',
    ],
)
def test_a_line_that_does_not_make_sense_is_an_error(tmp_path: Path, line: str) -> None:
    KeyStore(tmp_path)
    (tmp_path / LOG_NAME).write_text(line + "\n")
    with pytest.raises(KeyStoreError, match="line 1"):
        KeyStore(tmp_path)


def test_a_key_created_twice_in_the_log_is_an_error(tmp_path: Path) -> None:
    KeyStore(tmp_path).create_hmac(1, ["TRADE"], "", [], "ops")
    path = tmp_path / LOG_NAME
    path.write_bytes(path.read_bytes() * 2)
    with pytest.raises(KeyStoreError, match=r"line 2.*twice"):
        KeyStore(tmp_path)


_CHILD = """
import os, signal, sys
from pathlib import Path
from gateway.rest.keys import KeyStore
store = KeyStore(Path(sys.argv[1]))
key, secret = store.create_hmac(42, ["TRADE"], "crash", [], "ops")
sys.stdout.write(key.api_key + " " + secret + "\\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_key_answered_survives_a_sigkill_right_after(tmp_path: Path) -> None:
    for _ in range(3):
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        api_key, secret = child.stdout.split()
        store = KeyStore(tmp_path)
        key = store.get(api_key)
        assert key is not None and key.account == 42 and key.label == "crash"
        assert store.hmac_secret(api_key) == secret.encode()


def _garble(rng: random.Random, line: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))).replace(b"\n", b"")
    if choice == 1:
        return line[: rng.randrange(len(line))]
    if choice == 2:
        pos = rng.randrange(len(line))
        return line[:pos] + bytes([rng.randrange(256)]) + line[pos + 1 :]
    if choice == 3:
        record = json.loads(line)
        field = rng.choice(sorted(record))
        record[field] = rng.choice([None, 0, -1, "", "x" * 70, [], {}, 1.5, True, "WITHDRAW"])
        return json.dumps(record).encode()
    if choice == 4:
        return json.dumps(rng.choice([None, 1, "s", [], {"t": 1}])).encode()
    pos = rng.randrange(len(line))
    return line[:pos] + line[pos + 1 :]


@pytest.mark.parametrize("seed", range(6))
def test_fuzz_the_loader_on_garbled_lines(tmp_path: Path, seed: int) -> None:
    """Whatever the log holds, loading gives a store or a one-line KeyStoreError, and a
    damaged last line without its newline is always forgiven."""
    rng = random.Random(seed)
    base = tmp_path / "base"
    store = KeyStore(base)
    store.create_hmac(1, ["TRADE"], "a", ["10.0.0.0/8"], "ops")
    store.create_ed25519(2, ["USER_DATA"], "b", [], ed25519_pem(), "ops")
    third, _ = store.create_hmac(3, ["USER_DATA", "TRADE"], "c", [], "ops")
    store.revoke(third.api_key, "ops")
    secret = (base / SECRET_NAME).read_bytes()
    good = (base / LOG_NAME).read_bytes().split(b"\n")[:-1]
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(50):
        where = tmp_path / f"case{case}"
        where.mkdir(mode=0o700)
        fd = os.open(where / SECRET_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, secret)
        os.close(fd)
        lines = list(good)
        index = rng.randrange(len(lines))
        lines[index] = _garble(rng, lines[index]).replace(b"\n", b"")
        torn = rng.random() < 0.3
        data = b"\n".join(lines) + (b"" if torn else b"\n")
        if torn:
            data += _garble(rng, good[0])[:50].replace(b"\n", b"")
        (where / LOG_NAME).write_bytes(data)
        try:
            loaded = KeyStore(where)
        except KeyStoreError as exc:
            assert "\n" not in str(exc)
            assert index < len(lines) - 1 or not torn  # a torn tail alone is never an error
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        for key in (loaded.get(k.api_key) for k in store.for_account(1)):
            assert key is None or key.account == 1
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0, outcomes


# -- several processes on one store ---------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_another_store_made_is_found_and_a_revocation_followed(tmp_path: Path) -> None:
    ticks = Ticks()
    venue = KeyStore(tmp_path, monotonic=ticks)
    cli = KeyStore(tmp_path)
    key, secret = cli.create_hmac(5, ["TRADE"], "from the cli", [], "cli:ops")
    assert venue.get(key.api_key) == key  # the first miss reads the tail
    assert venue.hmac_secret(key.api_key) == secret.encode()
    second, _ = cli.create_hmac(5, ["USER_DATA"], "", [], "cli:ops")
    assert venue.get("x" * 64) is None  # a miss: reads the tail...
    cli.create_hmac(6, ["USER_DATA"], "", [], "cli:ops")
    later, _ = cli.create_hmac(6, ["USER_DATA"], "", [], "cli:ops")
    assert venue.get(later.api_key) is None  # ...and the next within a second does not
    ticks.now += 1.0
    assert venue.get(later.api_key) == later
    cli.revoke(key.api_key, "cli:ops")
    assert venue.get(key.api_key) == key  # a known key: no I/O until the venue refreshes
    assert venue.refresh() and not venue.get(key.api_key).live  # type: ignore[union-attr]
    assert not venue.refresh()  # nothing new
    with pytest.raises(KeyStoreError):
        venue.hmac_secret(key.api_key)
    # the venue revokes a key the cli made; the cli's store follows, and both agree on reload
    venue.revoke(second.api_key, "admin@127.0.0.1")
    assert [k.live for k in cli.for_account(5)] == [False, False]
    assert KeyStore(tmp_path).for_account(5) == venue.for_account(5) == cli.for_account(5)


def test_a_line_being_written_waits_until_it_is_whole(tmp_path: Path) -> None:
    writer = KeyStore(tmp_path / "elsewhere")
    key, _ = writer.create_hmac(1, ["TRADE"], "", [], "ops")
    os.replace(tmp_path / "elsewhere" / SECRET_NAME, tmp_path / SECRET_NAME)
    venue = KeyStore(tmp_path)  # the same AES key as the writer's
    line = (tmp_path / "elsewhere" / LOG_NAME).read_bytes()
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(line[:50])
        f.flush()
        assert not venue.refresh() and venue.get(key.api_key) is None
        f.write(line[50:])
    assert venue.refresh() and venue.get(key.api_key) == key


def test_a_torn_tail_a_crashed_writer_left_is_cut_by_the_next_writer(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    kept, _ = store.create_hmac(1, ["TRADE"], "", [], "ops")
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(b'{"t":1,"action":"crea')  # a crashed process's half line
    assert not store.refresh()
    made, _ = store.create_hmac(2, ["TRADE"], "", [], "ops")
    again = KeyStore(tmp_path)
    assert [k.api_key for k in again.for_account(1) + again.for_account(2)] == [
        kept.api_key,
        made.api_key,
    ]


_MAKER = """
import sys
from pathlib import Path
from gateway.rest.keys import KeyStore
store = KeyStore(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    store.create_hmac(int(sys.argv[3]), ["TRADE"], f"k{i}", [], "proc")
"""


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    KeyStore(tmp_path)  # the AES key exists before the writers race
    count = 25
    procs = [
        subprocess.Popen([sys.executable, "-c", _MAKER, str(tmp_path), str(count), str(acct)])
        for acct in (1, 2)
    ]
    assert [p.wait(60) for p in procs] == [0, 0]
    store = KeyStore(tmp_path)
    assert len(store.for_account(1)) == len(store.for_account(2)) == count
