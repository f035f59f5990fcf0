"""The KYC provider's webhook on the REST door, the admin API's KYC endpoint and ``[kyc]``, end
to end against a running venue (no ledger, no FIX): a good signature moves the tier, a bad one
is refused 401, changes nothing and is audited in the chain; a review id applies once; a
malformed body gets a 400 saying why; the configured default tier is journaled and a tier-0
account's order is refused by the REST door with Binance's code. Plus a bounded, seeded fuzz
of the body parser."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rest_client import signed

from clearing.config import KycConfig
from engine import codec
from engine.commands import Deposit, SetKycTier
from engine.events import KycTierSet
from engine.types import KycTier
from gateway.rest.config import RestConfig
from gateway.rest.kyc import (
    MAX_BODY,
    PRINCIPAL,
    KycSecretError,
    WebhookError,
    load_webhook_secret,
    parse_review,
    sign,
    signature_ok,
)
from surveillance.audit import AUDIT_DIR, CHAIN_FILE, KIND_STAFF, decode_staff, read_store
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, ConfigError, VenueConfig, load_config, parse_config
from venue.parts import AuditPart
from venue.rest import RestGateway, extensions
from venue.runtime import Venue

SECRET = b"s3cret-shared-with-the-kyc-provider"
COIN = 10**8


def _config(data_dir: Path, secret: bool = True, default: KycTier = KycTier.INSTITUTIONAL) -> Any:
    config = load_config(DEFAULT_CONFIG_PATH)
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_file = None
    if secret:
        secret_file = data_dir / "kyc.secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, SECRET + b"\n")
        os.close(fd)
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        ledger=None,
        fix=None,
        rest=dataclasses.replace(RestConfig(), port=0),
        kyc=KycConfig(default, secret_file),
    )


@dataclass
class Served:
    venue: Venue
    rest: RestGateway
    http: aiohttp.ClientSession
    admin: str
    audit: AuditPart
    refused: list[tuple[str, ...]]

    async def hook(self, body: bytes, signature: str | None = "good") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Signature"] = sign(SECRET, body)
        elif signature is not None:
            headers["X-Signature"] = signature
        async with self.http.post(
            self.rest.url + "/webhooks/kyc", data=body, headers=headers
        ) as response:
            return response.status, await response.json()

    async def tier(self, account: int) -> str:
        async with self.http.get(f"{self.admin}/v1/accounts/{account}/balances") as response:
            assert response.status == 200
            return str((await response.json())["kycTier"])


@asynccontextmanager
async def served(config: VenueConfig) -> AsyncIterator[Served]:
    venue = Venue(config)
    await venue.start()
    audit = AuditPart(venue, config)
    await audit.start()
    record = audit.refusals()
    assert record is not None
    refused: list[tuple[str, ...]] = []

    def on_refused(*fields: str) -> None:
        refused.append(fields)
        record(*fields)

    rest = RestGateway(venue, config.rest, extensions(), on_refused=on_refused)
    rest.build()
    await rest.start()
    runner, host, port = await start_admin(venue, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            yield Served(venue, rest, http, f"http://{host}:{port}", audit, refused)
    finally:
        await runner.cleanup()
        await rest.stop()
        await audit.stop()
        await venue.stop()


def run(config: VenueConfig, body: Callable[[Served], Awaitable[None]]) -> None:
    async def main() -> None:
        async with served(config) as s:
            await body(s)

    asyncio.run(asyncio.wait_for(main(), 60))


def review(review_id: str, account: int, tier: str) -> bytes:
    return json.dumps({"reviewId": review_id, "accountId": account, "tier": tier}).encode()


# -- over HTTP ------------------------------------------------------------------------------------


def test_a_good_signature_moves_the_tier_once_per_review(tmp_path: Path) -> None:
    async def body(s: Served) -> None:
        assert await s.tier(501) == "INSTITUTIONAL"
        payload = review("rev-1", 501, "2")
        status, data = await s.hook(payload)
        assert status == 200, data
        assert data["duplicate"] is False and data["tier"] == "2" and data["accountId"] == 501
        assert await s.tier(501) == "2"
        assert s.venue.risk is not None and s.venue.risk.kyc_tier(501) is KycTier.TIER_2
        # the provider retries: the same review changes nothing, and says so
        status, data = await s.hook(payload)
        assert (status, data["duplicate"]) == (200, True)
        # the same review id with another tier is the same review: refused as a duplicate
        status, data = await s.hook(review("rev-1", 501, "3"))
        assert (status, data["duplicate"]) == (200, True)
        assert await s.tier(501) == "2"
        # a new review moves it again; the command carries the webhook's origin
        seen: list[Any] = []
        s.venue.subscribe(lambda seq, ts, events: seen.extend(events))
        status, data = await s.hook(review("rev-2", 501, "INSTITUTIONAL"))
        assert status == 200 and not data["duplicate"]
        assert await s.tier(501) == "INSTITUTIONAL"
        assert KycTierSet(501, KycTier.INSTITUTIONAL, "rev-2") in seen
        assert not s.refused

    run(_config(tmp_path / "data"), body)


def test_a_bad_or_missing_signature_is_refused_changes_nothing_and_is_audited(
    tmp_path: Path,
) -> None:
    async def body(s: Served) -> None:
        seq = s.venue.core.last_seq
        payload = review("rev-x", 777, "3")
        for signature in (None, "", "00" * 32, sign(b"another-secret-entirely", payload)):
            status, data = await s.hook(payload, signature)
            assert status == 401, (signature, data)
            assert data == {"code": -1022, "msg": "Signature for this request is not valid."}
        # a signature of another body does not do either
        status, _ = await s.hook(payload, sign(SECRET, payload + b" "))
        assert status == 401
        assert s.venue.core.last_seq == seq  # nothing was sequenced
        assert await s.tier(777) == "INSTITUTIONAL"
        assert len(s.refused) == 5
        actor, action, subject, ip, outcome = s.refused[0]
        assert (actor, action) == (PRINCIPAL, "kyc_webhook")
        assert outcome == "refused: no signature" and ip
        assert "account 777" in subject and "rev-x" in subject
        assert s.refused[2][4] == "refused: bad signature"
        assert s.audit.chain is not None
        await s.audit.chain.stop()  # writes what is pending
        staff = [
            decode_staff(e.body)
            for e in read_store(s.venue.config.data_dir / AUDIT_DIR / CHAIN_FILE)
            if e.kind == KIND_STAFF
        ]
        assert [(e.actor, e.action, e.outcome) for e in staff][:2] == [
            (PRINCIPAL, "kyc_webhook", "refused: no signature"),
            (PRINCIPAL, "kyc_webhook", "refused: no signature"),
        ]
        assert len(staff) == 5
        s.audit.chain = None  # stopped already

    run(_config(tmp_path / "data"), body)


def test_a_malformed_body_gets_a_400_saying_why(tmp_path: Path) -> None:
    async def body(s: Served) -> None:
        seq = s.venue.core.last_seq
        cases = [
            (b"not json", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b'{"accountId": 5, "tier": "1"}', "'reviewId'"),
            (b'{"reviewId": "r", "accountId": "5", "tier": "1"}', "'accountId' must be an integer"),
            (b'{"reviewId": "r", "accountId": 0, "tier": "1"}', "'accountId' must be between"),
            (b'{"reviewId": "r", "accountId": 5, "tier": 1}', "'tier' must be"),
            (b'{"reviewId": "r", "accountId": 5, "tier": "4"}', "'tier' must be"),
            (b'{"reviewId": "a b", "accountId": 5, "tier": "1"}', "'reviewId'"),
            (b"\xff\xfe", "not UTF-8"),
        ]
        for raw, words in cases:
            status, data = await s.hook(raw)
            assert status == 400, (raw, data)
            assert data["code"] == -1130 and words in data["msg"], (raw, data)
        assert s.venue.core.last_seq == seq
        assert not s.refused  # well signed: not a refusal for the audit trail

    run(_config(tmp_path / "data"), body)


def test_without_a_secret_the_webhook_is_not_configured(tmp_path: Path) -> None:
    async def body(s: Served) -> None:
        status, data = await s.hook(review("r", 5, "1"))
        assert status == 404
        assert data == {"code": -1000, "msg": "The KYC webhook is not configured on this venue."}

    run(_config(tmp_path / "data", secret=False), body)


def test_the_admin_api_sets_a_tier_and_tier_0_is_refused_by_the_rest_door(
    tmp_path: Path,
) -> None:
    async def body(s: Served) -> None:
        async def post(path: str, payload: dict[str, Any]) -> tuple[int, Any]:
            async with s.http.post(s.admin + path, json=payload) as response:
                return response.status, await response.json()

        await s.venue.submit(Deposit(601, "USDT", 1000 * COIN))
        status, data = await post("/v1/accounts/601/kyc", {"tier": "0", "reviewId": "ops-1"})
        assert status == 200
        assert data["events"][0] == {
            "type": "KycTierSet", "account": 601, "tier": "0", "reviewId": "ops-1"
        }  # fmt: skip
        assert await s.tier(601) == "0"
        for bad in ({"tier": "5"}, {"tier": 1}, {}, {"tier": "1", "reviewId": "a b"}):
            status, data = await post("/v1/accounts/601/kyc", bad)
            assert status == 400 and isinstance(data["code"], int), (bad, data)
        assert s.rest.keys is not None
        key, secret = s.rest.keys.create_hmac(601, {"TRADE", "USER_DATA"}, "t", (), "test")
        params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                  "quantity": "0.001", "price": "95000"}  # fmt: skip
        status, error = await signed(
            s.http, s.rest.url, "POST", "/api/v3/order", (key.api_key, secret), **params
        )
        assert status == 400 and error["code"] == -2010, error
        assert "KYC tier 0" in error["msg"]
        key_pair = (key.api_key, secret)
        status, acct = await signed(s.http, s.rest.url, "GET", "/api/v3/account", key_pair)
        assert status == 200 and acct["canTrade"] is False
        status, data = await post("/v1/accounts/601/kyc", {"tier": "1"})
        assert status == 200 and await s.tier(601) == "1"
        status, acct = await signed(s.http, s.rest.url, "GET", "/api/v3/account", key_pair)
        assert status == 200 and acct["canTrade"] is True
        status, order = await signed(
            s.http, s.rest.url, "POST", "/api/v3/order", (key.api_key, secret), **params
        )
        assert status == 200 and order["status"] == "NEW", order
        # the withdrawal limit, through the admin API
        status, data = await post(
            "/v1/withdrawals",
            {"account": 601, "asset": "USDT", "amount": "500.00000001", "withdrawalId": 1},
        )
        assert data["events"][0]["reason"] == "KYC_LIMIT_EXCEEDED"
        assert "500 USD" in data["events"][0]["detail"]

    run(_config(tmp_path / "data"), body)


def test_the_configured_default_tier_is_journaled_once(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", default=KycTier.TIER_0)
    journaled: list[Any] = []

    async def start_stop(cfg: VenueConfig) -> KycTier:
        venue = Venue(cfg)
        venue.subscribe(
            lambda seq, ts, events: journaled.extend(e for e in events if type(e) is KycTierSet)
        )
        await venue.start()
        assert venue.risk is not None
        tier = venue.risk.kyc_tier(12345)
        await venue.stop()
        return tier

    assert asyncio.run(start_stop(config)) is KycTier.TIER_0
    assert asyncio.run(start_stop(config)) is KycTier.TIER_0
    assert journaled == [KycTierSet(0, KycTier.TIER_0, "")]
    back = dataclasses.replace(config, kyc=KycConfig(KycTier.TIER_2, None))
    assert asyncio.run(start_stop(back)) is KycTier.TIER_2
    assert journaled[-1] == KycTierSet(0, KycTier.TIER_2, "")


# -- configuration --------------------------------------------------------------------------------


def _toml(kyc: str) -> str:
    text = DEFAULT_CONFIG_PATH.read_text()
    start = text.index("[kyc]")
    end = text.index("\n[", start + 1)
    return text[:start] + kyc + text[end:]


def test_kyc_section_is_parsed_and_checked() -> None:
    shipped = load_config(DEFAULT_CONFIG_PATH)
    assert shipped.kyc == KycConfig(KycTier.INSTITUTIONAL, None)
    config = parse_config(
        _toml('[kyc]\ndefault_tier = "0"\nwebhook_secret_file = "kyc.secret"\n'), "t.toml"
    )
    assert config.kyc.default_tier is KycTier.TIER_0
    assert config.kyc.webhook_secret_file == config.data_dir / "kyc.secret"
    config = parse_config(_toml('[kyc]\nwebhook_secret_file = "/etc/venue/kyc"\n'), "t.toml")
    assert config.kyc == KycConfig(KycTier.INSTITUTIONAL, Path("/etc/venue/kyc"))
    for bad, words in (
        ('[kyc]\ndefault_tier = "4"\n', "kyc.default_tier"),
        ("[kyc]\ndefault_tier = 1\n", "kyc.default_tier"),
        ('[kyc]\ndefault_teir = "1"\n', "kyc.default_teir"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse_config(_toml(bad), "t.toml")


def test_the_secret_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    path.chmod(0o644)
    with pytest.raises(KycSecretError, match="chmod 600"):
        load_webhook_secret(path)
    path.chmod(0o600)
    assert load_webhook_secret(path) == SECRET
    path.write_bytes(b"short\n")
    with pytest.raises(KycSecretError, match="16 bytes"):
        load_webhook_secret(path)
    with pytest.raises(OSError):
        load_webhook_secret(tmp_path / "absent")


# -- the parser and the signature, in-process -----------------------------------------------------


def test_signature_check() -> None:
    body = review("r", 5, "1")
    good = sign(SECRET, body)
    assert signature_ok(SECRET, body, good)
    assert signature_ok(SECRET, body, good.upper())
    assert not signature_ok(SECRET, body, None)
    assert not signature_ok(SECRET, body, "")
    assert not signature_ok(SECRET, body, good[:-1])
    assert not signature_ok(SECRET, body, "é" * 64)
    assert not signature_ok(SECRET, body + b"x", good)


def test_parse_review_takes_a_review_and_ignores_other_keys() -> None:
    got = parse_review(b'{"reviewId": "s-1", "accountId": 9, "tier": "3", "type": "applicant"}')
    assert (got.review_id, got.account, got.tier) == ("s-1", 9, KycTier.TIER_3)
    for junk in (b'{"reviewId": "r", "accountId": true, "tier": "1"}', b"[" * 5000, b"1e999"):
        with pytest.raises(WebhookError):
            parse_review(junk)
    with pytest.raises(WebhookError, match="larger than"):
        parse_review(b" " * (MAX_BODY + 1))


FUZZ_KEYS = ["reviewId", "accountId", "tier", "type", "", "\u0000", "accountid"]
FUZZ_VALUES: list[Any] = [
    "r-1", "", " ", "x" * 200, "é", "0", "1", "3", "4", "INSTITUTIONAL", "institutional", 0, 1,
    -1, 2**63, 2**63 - 1, 2**70, 1.5, float("nan"), True, False, None, [], {}, ["1"], {"a": 1},
]  # fmt: skip


def _fuzz_body(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.6:
        doc: Any = {
            rng.choice(FUZZ_KEYS): rng.choice(FUZZ_VALUES) for _ in range(rng.randint(0, 5))
        }
        if rng.random() < 0.5:
            doc.update(
                reviewId=rng.choice(["r-1", "sumsub:1f2e", "x" * 128, "x" * 129]),
                accountId=rng.choice([1, 42, 2**63 - 1, *FUZZ_VALUES]),
                tier=rng.choice(["0", "2", "INSTITUTIONAL", *FUZZ_VALUES]),
            )
        text = json.dumps(doc)
        raw = text.encode()
        if rng.random() < 0.3 and raw:  # cut or flip a byte
            i = rng.randrange(len(raw))
            raw = (
                raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]
                if rng.random() < 0.5
                else raw[:i]
            )
        return raw
    if kind < 0.8:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    depth = rng.randint(1, 3000)
    return (rng.choice(["[", '{"a":']) * depth).encode()


def test_fuzz_the_body_parser() -> None:
    """Bounded and seeded: whatever the body, the parser returns a review whose fields are in
    range or raises ``WebhookError``; nothing else escapes."""
    rng = random.Random(20261207)
    reviews = 0
    for _ in range(3000):
        raw = _fuzz_body(rng)
        try:
            got = parse_review(raw)
        except WebhookError as exc:
            assert str(exc)
            continue
        reviews += 1
        assert isinstance(got.review_id, str) and 1 <= len(got.review_id) <= 128
        assert 1 <= got.account <= 2**63 - 1 and isinstance(got.tier, KycTier)
        codec.encode(SetKycTier(got.account, got.tier, got.review_id, 1, 1))  # the journal takes it
    assert reviews > 10  # the generator reaches the accepting path too


def test_webhook_calls_count_against_the_callers_request_weight(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    assert config.rest is not None
    config = dataclasses.replace(
        config, rest=dataclasses.replace(config.rest, request_weight_per_minute=3)
    )

    async def body(s: Served) -> None:
        statuses = [(await s.hook(review("r", 5, "1"), "00"))[0] for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert len(s.refused) == 3  # the refused flood stops reaching the audit trail

    run(config, body)


def test_a_tier_0_accounts_fix_order_is_rejected_with_the_venues_reason(tmp_path: Path) -> None:
    from test_fix_orders import assert_valid, logged_on, order, running

    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            await venue.submit(SetKycTier(1001, KycTier.TIER_0, "rev-fix"))
            (a,) = await logged_on(port, "A")
            a.send(b"D", order("k1", b"1", b"0.5", b"95000.00"))
            report = await a.expect_type(b"8", _11=b"k1")
            assert (report.get(150), report.get(103), report.get(25006), report.get(58)) == (
                b"8",
                b"0",
                b"29",
                b"KYC_TIER_NOT_PERMITTED",
            )
            assert venue.core.open_orders(1001) == []
            assert_valid(a)  # the dictionary knows the new reason

    asyncio.run(asyncio.wait_for(body(), 60))


def test_without_the_audit_chain_there_is_nothing_to_record_refusals_in(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    config = dataclasses.replace(config, audit=dataclasses.replace(config.audit, enabled=False))

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        audit = AuditPart(venue, config)
        await audit.start()
        assert audit.chain is None and audit.refusals() is None
        await venue.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
