"""The FIX acceptor's connection handling: TLS, connection limits, the Logon timeout, garbled
first messages, and the daily sequence reset; with the echo application behind the sessions."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fix_client import FixClient

from gateway.fix.acceptor import FixAcceptor
from gateway.fix.codec import FixMessage, decode, encode
from gateway.fix.dictionary import load_dictionary
from gateway.fix.echo import EchoApplication
from gateway.fix.session import Session, SessionConfig
from gateway.fix.store import FileStore, MemoryStore

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
DICTIONARY = load_dictionary(SPECS / "FIX44.xml")


def run(body: Callable[[], Awaitable[None]], timeout: float = 30) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(bounded())


def make_session(target: str, store: object = None, **kw: object) -> Session:
    config = SessionConfig(sender_comp_id="VENUE", target_comp_id=target, **kw)  # type: ignore[arg-type]
    return Session(config, DICTIONARY, store or MemoryStore(), EchoApplication())  # type: ignore[arg-type]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_logon_and_echo(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def body() -> None:
        acceptor = FixAcceptor([make_session("TLS1")], ssl_context=server_ctx)
        _, port = await acceptor.start()
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
            stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()).encode()
            writer.write(
                encode(
                    [
                        (35, b"A"),
                        (49, b"TLS1"),
                        (56, b"VENUE"),
                        (34, 1),
                        (52, stamp),
                        (98, b"0"),
                        (108, 30),
                    ]
                )
            )
            data = await asyncio.wait_for(reader.read(4096), 5)
            assert b"35=A\x01" in data and b"56=TLS1\x01" in data
            writer.close()
            # plain TCP against the TLS port gets nowhere
            plain = FixClient(port, "TLS1")
            await plain.logon(expect=False)
            await plain.wait_closed()
            assert not plain.received
        finally:
            await acceptor.stop()

    run(body)


def test_connection_limit_and_logon_timeout() -> None:
    async def body() -> None:
        acceptor = FixAcceptor(
            [make_session("C1"), make_session("C2")], max_connections=1, logon_timeout_s=0.5
        )
        _, port = await acceptor.start()
        try:
            first = FixClient(port, "C1")
            await first.logon()
            second = FixClient(port, "C2")
            await second.logon(expect=False)
            await second.wait_closed()  # over the limit: closed without a word
            assert not second.received
            await first.close()
            await asyncio.sleep(0.2)
            silent = FixClient(port, "C2")
            await silent.connect()
            started = time.monotonic()
            await silent.wait_closed(timeout=3)  # no Logon: closed after the timeout
            assert 0.4 <= time.monotonic() - started < 2.5
        finally:
            await acceptor.stop()

    run(body)


def test_garbled_first_message_closes_and_a_later_one_is_ignored() -> None:
    async def body() -> None:
        acceptor = FixAcceptor([make_session("G1")])
        _, port = await acceptor.start()
        try:
            bad = FixClient(port, "G1")
            await bad.connect()
            assert bad._writer is not None
            bad._writer.write(b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
            await bad.wait_closed()
            good = FixClient(port, "G1")
            await good.logon()
            assert good._writer is not None
            good._writer.write(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")  # garbled: ignored
            good.send(b"1", [(112, b"still-here")])
            heartbeat = await good.expect_type(b"0", _112=b"still-here")
            assert heartbeat.get(34) == b"2"  # the garbled message consumed no sequence number
        finally:
            await acceptor.stop()

    run(body)


def test_daily_reset_time_restarts_sequence_numbers(tmp_path: Path) -> None:
    store = FileStore(tmp_path, "FIX.4.4-VENUE-R1")
    store.set_next_sender_seq(40)
    store.set_next_target_seq(30)
    store.flush()
    just_passed = max(int(time.time()) % 86400 - 5, 0)  # a reset time five seconds ago
    config = SessionConfig(sender_comp_id="VENUE", target_comp_id="R1", reset_time_utc=just_passed)
    session = Session(config, DICTIONARY, store, EchoApplication())

    async def body() -> None:
        acceptor = FixAcceptor([session])
        _, port = await acceptor.start()
        try:
            client = FixClient(port, "R1")
            logon = await client.logon(reset=False)
            assert logon is not None and logon.get(34) == b"1"
            assert session.next_target_seq == 2
        finally:
            await acceptor.stop()

    # the store was created before the reset time: the Logon restarts both sides at 1
    store_created = time.time() - 3600
    store.reset(store_created)
    store.set_next_sender_seq(40)
    store.set_next_target_seq(30)
    store.flush()
    session._next_sender, session._next_target = 40, 30
    run(body)


def test_per_address_limit_and_refused_logons_close_the_door_for_a_minute() -> None:
    def password(logon: FixMessage) -> str | None:
        return None if logon.get(554) == b"right" else "authentication failed"

    async def body() -> None:
        acceptor = FixAcceptor(
            [make_session("P1", authenticate=password), make_session("P2")],
            max_connections_per_ip=1,
            max_logon_failures_per_minute=2,
        )
        _, port = await acceptor.start()
        try:
            first = FixClient(port, "P2")
            await first.logon()
            crowd = FixClient(port, "P1")
            await crowd.logon(extra=[(554, b"right")], expect=False)
            await crowd.wait_closed()  # a second connection from 127.0.0.1
            assert not crowd.received
            await first.close()
            await asyncio.sleep(0.1)
            for _ in range(2):
                wrong = FixClient(port, "P1")
                await wrong.logon(extra=[(554, b"wrong")], expect=False)
                assert (await wrong.expect_type(b"5")).get(58) == b"authentication failed"
                await wrong.wait_closed()
                await asyncio.sleep(0.1)
            right = FixClient(port, "P1")
            await right.logon(extra=[(554, b"right")], expect=False)
            await right.wait_closed()  # even the right password: the address is blocked
            assert not right.received
        finally:
            await acceptor.stop()

    run(body)


def test_a_throttle_breached_for_seconds_in_a_row_ends_the_session() -> None:
    now = [1_800_000_000.0]
    config = SessionConfig(
        sender_comp_id="VENUE",
        target_comp_id="T1",
        max_latency_s=0,
        throttle_per_s=2,
        throttle_logout_after_s=3,
    )
    session = Session(config, DICTIONARY, MemoryStore(), EchoApplication(), clock=lambda: now[0])
    sent: list[bytes] = []
    session.attach(sent.append, lambda: None)
    seq = [0]

    def feed(msg_type: bytes, *fields: tuple[int, bytes]) -> None:
        seq[0] += 1
        stamp = b"20270115-08:00:00"
        raw = encode(
            [(35, msg_type), (49, b"T1"), (56, b"VENUE"), (34, seq[0]), (52, stamp), *fields]
        )
        session.on_message(decode(raw))

    feed(b"A", (98, b"0"), (108, b"30"))
    order = ((11, b"x"), (21, b"1"), (55, b"X"), (54, b"1"), (60, b"20270115-08:00:00"), (40, b"1"))
    for second in range(3):
        if second == 1:
            now[0] += 1.0
            for _ in range(2):
                feed(b"D", *order)  # within the limit: the run of breached seconds is broken
            now[0] += 1.0
        for _ in range(3):
            feed(b"D", *order)
        assert not session.sent_logout
        now[0] += 1.0
    # three breached seconds in a row now
    for _ in range(3):
        feed(b"D", *order)
    now[0] += 1.0
    for _ in range(3):
        feed(b"D", *order)
    assert session.sent_logout
    logouts = [m for m in sent if b"35=5\x01" in m]
    assert len(logouts) == 1 and b"Throttle limit exceeded for 3 seconds" in logouts[0]
    rejects = [m for m in sent if b"35=j\x01" in m]
    assert rejects and all(b"380=0\x01" in m for m in rejects)
