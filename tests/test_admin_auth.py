"""The admin API asks who calls and what they may do: every refusal (no token, an expired token,
a wrong password, a wrong or reused TOTP code, a role without the permission, a locked
operator, a cross-site request, an approval by the requester or twice by one approver) is
refused, changes nothing, and is a staff event in the audit trail; the four-eyes flow runs the
held request once enough approvers said yes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from staff_auth import PASSWORD, login, new_operator

from engine.configfile import ConfigError
from gateway.admin.auth import COOKIE, permissions_of
from gateway.adminconfig import AdminConfig, ApprovalsConfig
from gateway.staff.operators import MAX_FAILURES, StaffEvent
from surveillance.audit import KIND_STAFF, decode_staff, read_store
from venue.admin import service_token, staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config, parse_config
from venue.parts import AuditPart, chain_staff_events
from venue.runtime import Venue

SHIPPED = DEFAULT_CONFIG_PATH.read_text()


def _config(data_dir: Path, required: int = 1) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    admin = AdminConfig("127.0.0.1", 0, approvals=ApprovalsConfig(required, {}))
    return dataclasses.replace(config, data_dir=data_dir, admin=admin, ledger=None, rest=None)


@dataclasses.dataclass
class Admin:
    venue: Venue
    config: VenueConfig
    base: str
    http: aiohttp.ClientSession  # no credentials of its own
    events: list[StaffEvent]

    async def call(
        self, method: str, path: str, body: Any = None, token: str = "", **headers: str
    ) -> tuple[int, Any]:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, path, json=body, headers=headers) as response:
            return response.status, await response.json()

    def token(self, roles: list[str], ttl_s: int = 600, now: int | None = None) -> str:
        store = staff_access(self.config).store
        return store.create_token(roles, ttl_s, "tests", now=now)[1]

    def outcomes(self, action: str) -> list[str]:
        return [e.outcome for e in self.events if e.action == action]


@asynccontextmanager
async def serving(tmp_path: Path, required: int = 1) -> AsyncIterator[Admin]:
    config = _config(tmp_path / "data", required)
    venue = Venue(config)
    await venue.start()
    events: list[StaffEvent] = []
    access = staff_access(config, events.append)
    runner, host, port = await start_admin(venue, "127.0.0.1", 0, access=access)
    base = f"http://{host}:{port}"
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1 as a browser does
    try:
        async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
            yield Admin(venue, config, base, http, events)
    finally:
        await runner.cleanup()
        await venue.stop()


def run(tmp_path: Path, body: Callable[[Admin], Awaitable[None]], required: int = 1) -> None:
    async def main() -> None:
        async with serving(tmp_path, required) as admin:
            await body(admin)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_every_route_names_its_permission(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        token = admin.token(["auditor"])
        status, _ = await admin.call("GET", "/v1/status", token=token)
        assert status == 200

    async def routes() -> None:
        config = _config(tmp_path / "data")
        venue = Venue(config)
        await venue.start()
        runner, _, _ = await start_admin(venue, "127.0.0.1", 0)
        try:
            declared = permissions_of(runner.app)
            for route in runner.app.router.routes():
                assert route in declared, (route.method, route.resource)
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(routes())
    run(tmp_path / "b", body)


def test_no_unknown_or_expired_credentials_answer_401_and_change_nothing(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        seq = admin.venue.core.last_seq
        expired = admin.token(["operator"], ttl_s=60, now=int(time.time() * 1000) - 120_000)
        revoked = admin.token(["operator"])
        store = staff_access(admin.config).store
        store.revoke_token(store.tokens()[-1].token_id, "tests")
        halt = {"state": "HALTED"}
        for headers in (
            {},
            {"Authorization": "Bearer vst_nothing"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Cookie": f"{COOKIE}=vss_forged"},
        ):
            status, error = await admin.call(
                "POST", "/v1/instruments/BTC-USDT/state", halt, **headers
            )
            assert status == 401 and error["code"] == -1002, (headers, error)
        assert admin.venue.core.last_seq == seq
        assert admin.outcomes("POST /v1/instruments/BTC-USDT/state") == ["unauthorized"] * 6
        # monitoring needs no token
        for path in ("/health", "/ready", "/metrics"):
            async with admin.http.get(path) as response:
                assert response.status == 200, path

    run(tmp_path, body)


def test_a_role_without_the_permission_answers_403(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        seq = admin.venue.core.last_seq
        auditor = admin.token(["auditor"])
        treasury = admin.token(["treasury"])
        cases = [
            (auditor, "POST", "/v1/kill-switch", {"active": True}),
            (auditor, "POST", "/v1/instruments/BTC-USDT/state", {"state": "HALTED"}),
            (treasury, "POST", "/v1/orders", {"account": 1}),
            (treasury, "POST", "/v1/operators", {"name": "x"}),
            (auditor, "POST", "/v1/deposits", {"account": 1, "asset": "BTC", "amount": "1"}),
        ]
        for token, method, path, payload in cases:
            status, error = await admin.call(method, path, payload, token=token)
            assert status == 403 and error["code"] == -1002, (path, error)
        assert admin.venue.core.last_seq == seq
        assert admin.outcomes("POST /v1/kill-switch") == ["forbidden"]
        # with the permission it runs, journaled with the token as its principal
        operator = admin.token(["operator"])
        status, data = await admin.call(
            "POST", "/v1/instruments/BTC-USDT/state", {"state": "HALTED"}, token=operator
        )
        assert status == 200 and data["events"][0]["type"] == "InstrumentStateChanged", data

    run(tmp_path, body)


def test_login_refusals_and_the_lockout(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        name, totp = new_operator(admin.config, ["operator"])
        now = time.time()

        async def attempt(password: str, code: str, who: str = name) -> int:
            payload = {"name": who, "password": password, "code": code}
            async with admin.http.post("/v1/session", json=payload) as response:
                return response.status

        wrong_code = f"{(int(totp.at(now)) + 1) % 1_000_000:06d}"
        assert await attempt(PASSWORD, wrong_code) == 401
        assert await attempt("not the password!", totp.at(now)) == 401
        assert await attempt(PASSWORD, totp.at(now), "nobody") == 401
        assert await attempt(PASSWORD, totp.at(now)) == 200
        assert await attempt(PASSWORD, totp.at(now)) == 401  # a code is accepted once
        logins = [e.outcome for e in admin.events if e.action == "login"]
        assert logins == ["wrong code", "wrong password", "unknown operator", "ok", "reused code"]
        # the session cookie works, and is what a browser must not leak
        async with admin.http.get("/v1/session") as response:
            assert response.status == 200 and (await response.json())["operator"] == name
        # enough wrong passwords lock the operator: the right ones are refused for a while
        other, other_totp = new_operator(admin.config, ["operator"])
        for _ in range(MAX_FAILURES):
            assert await attempt("wrong password!!", "000000", other) == 401
        assert await attempt(PASSWORD, other_totp.at(now), other) == 401
        assert [e.outcome for e in admin.events if e.operator == other][-1] == "locked"

    run(tmp_path, body)


def test_the_session_cookie_and_cross_site_requests(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        name, totp = new_operator(admin.config, ["operator"])
        payload = {"name": name, "password": PASSWORD, "code": totp.now()}
        async with admin.http.post("/v1/session", json=payload) as response:
            assert response.status == 200
            cookie = response.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
        seq = admin.venue.core.last_seq
        halt = {"state": "HALTED"}
        path = "/v1/instruments/ETH-USDT/state"
        for origin in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
            status, error = await admin.call("POST", path, halt, **origin)
            assert status == 403 and "cross-site" in error["msg"], error
        assert admin.venue.core.last_seq == seq
        status, _ = await admin.call("POST", path, halt, Origin=admin.base)
        assert status == 200
        # logout ends the session
        status, _ = await admin.call("DELETE", "/v1/session", Origin=admin.base)
        assert status == 200
        status, _ = await admin.call("GET", "/v1/session")
        assert status == 401

    run(tmp_path, body)


def test_four_eyes_m_of_n(tmp_path: Path) -> None:
    """Two approvals needed: the requester cannot approve, nor can one approver count twice,
    nor a service token, nor a wrong code; the request runs once, at the second approval."""

    async def body(admin: Admin) -> None:
        requester, rtotp = new_operator(admin.config, ["operator", "approver", "treasury"])
        now = time.time()
        session = await login(admin.http, requester, rtotp.at(now))
        admin.http.cookie_jar.clear()
        status, _ = await admin.call(
            "POST", "/v1/kill-switch", {"active": True}, token=admin.token(["operator"])
        )
        assert status == 200 and admin.venue.core.kill_switch
        status, held = await admin.call("POST", "/v1/kill-switch", {"active": False}, session)
        assert status == 202 and held["requester"] == requester and held["required"] == 2
        path = f"/v1/approvals/{held['approvalId']}/approve"
        seq = admin.venue.core.last_seq

        status, error = await admin.call("POST", path, {"code": rtotp.at(now + 30)}, session)
        assert status == 409 and "requester" in error["msg"]
        status, error = await admin.call(
            "POST", path, {"code": "123456"}, admin.token(["approver"])
        )
        assert status == 403 and "signed-in operator" in error["msg"]
        first, ftotp = new_operator(admin.config, ["approver"])
        fsession = await login(admin.http, first, ftotp.at(now))
        admin.http.cookie_jar.clear()
        status, error = await admin.call("POST", path, {"code": ftotp.at(now)}, fsession)
        assert status == 403  # the login's code, reused
        status, data = await admin.call("POST", path, {"code": ftotp.at(now + 30)}, fsession)
        assert status == 200 and data["approval"]["status"] == "PENDING"
        assert "result" not in data
        status, error = await admin.call("POST", path, {"code": ftotp.at(now - 30)}, fsession)
        assert status == 403  # an older step than the last accepted: refused as reused
        assert admin.venue.core.last_seq == seq and admin.venue.core.kill_switch

        second, stotp = new_operator(admin.config, ["approver"])
        ssession = await login(admin.http, second, stotp.at(now))
        admin.http.cookie_jar.clear()
        status, data = await admin.call("POST", path, {"code": stotp.at(now + 30)}, ssession)
        assert status == 200 and data["approval"]["status"] == "EXECUTED", data
        assert not admin.venue.core.kill_switch
        assert admin.venue.core.last_seq == seq + 1
        assert data["approval"]["approvals"][1]["operator"] == second
        status, error = await admin.call("POST", path, {"code": stotp.at(now + 60)}, ssession)
        assert status == 409  # not pending any more: nothing runs twice
        assert admin.venue.core.last_seq == seq + 1
        outcomes = admin.outcomes("approval.approve")
        assert outcomes[0].startswith("refused: the requester")
        assert outcomes[-2:] == ["approved", "refused: approval 1 is EXECUTED, not PENDING"]
        # rejected requests end there
        status, held = await admin.call(
            "POST", "/v1/adjustments", {"account": 1, "asset": "BTC", "amount": "1"}, session
        )
        assert status == 202
        status, done = await admin.call(
            "POST", f"/v1/approvals/{held['approvalId']}/reject", {"reason": "no"}, fsession
        )
        assert status == 200 and done["status"] == "REJECTED"
        status, listed = await admin.call("GET", "/v1/approvals", token=admin.token(["auditor"]))
        assert [a["status"] for a in listed["approvals"]] == ["REJECTED", "EXECUTED"]

    run(tmp_path, body, required=2)


def test_approvals_survive_a_restart(tmp_path: Path) -> None:
    async def first(admin: Admin) -> None:
        status, _ = await admin.call(
            "POST",
            "/v1/adjustments",
            {"account": 1, "asset": "USDT", "amount": "5"},
            token=admin.token(["treasury"]),
        )
        assert status == 202

    async def second(admin: Admin) -> None:
        status, listed = await admin.call("GET", "/v1/approvals", token=admin.token(["auditor"]))
        assert status == 200
        assert [(a["approvalId"], a["status"]) for a in listed["approvals"]] == [(1, "PENDING")]
        assert listed["approvals"][0]["request"]["fields"]["amount"] == "5"

    run(tmp_path, first)
    run(tmp_path, second)


def test_staff_events_reach_the_audit_chain(tmp_path: Path) -> None:
    """The running venue chains logins, refusals and approvals (not only commands)."""

    async def main() -> None:
        config = _config(tmp_path / "data")
        venue = Venue(config)
        await venue.start()
        audit = AuditPart(venue, config)
        await audit.start()
        assert audit.chain is not None
        access = staff_access(config, chain_staff_events(audit.chain))
        runner, host, port = await start_admin(venue, "127.0.0.1", 0, access=access)
        try:
            async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
                payload = {"name": "ghost", "password": "x" * 12, "code": "000000"}
                async with http.post("/v1/session", json=payload) as response:
                    assert response.status == 401
                async with http.get("/v1/status") as response:
                    assert response.status == 401
            await asyncio.sleep(0)  # the store's event arrives through the loop
            await audit.chain.flush()
        finally:
            await runner.cleanup()
            await audit.stop()
        path = config.data_dir / "audit" / "chain.log"
        staff = [decode_staff(e.body) for e in read_store(path) if e.kind == KIND_STAFF]
        assert [(s.actor, s.action, s.outcome) for s in staff] == [
            ("ghost", "login", "unknown operator"),
            ("?", "GET /v1/status", "unauthorized"),
        ]

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_admin_api_off_loopback_needs_tls() -> None:
    text = SHIPPED.replace('host = "127.0.0.1"               #', 'host = "0.0.0.0" #', 1)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == "admin.host" and "TLS" in caught.value.problem
    ok = text.replace("[admin]\n", '[admin]\ntls_cert_file = "c.pem"\ntls_key_file = "k.pem"\n')
    assert parse_config(ok).admin.tls


def test_fuzzed_credentials_and_login_bodies_never_break_the_api(tmp_path: Path) -> None:
    """Bounded and seeded: random Authorization headers, cookies and login bodies answer 400 or
    401, never 500, and change nothing."""
    rng = random.Random(20261207)
    alphabet = "abcdefvstss_ 0123456789\t:=;,\"'{}[]\\\u00e9\u2028"

    def junk(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))

    async def body(admin: Admin) -> None:
        seq = admin.venue.core.last_seq
        for _ in range(150):
            headers = {}
            pick = rng.randrange(3)
            if pick == 0:
                headers["Authorization"] = rng.choice(["Bearer ", "bearer ", "", "Basic "]) + junk(
                    80
                )
            elif pick == 1:
                headers["Cookie"] = f"{COOKIE}={junk(60)}"
            headers = {
                k: v.encode("utf-8", "replace").decode("latin-1") for k, v in headers.items()
            }
            status, _ = await admin.call("POST", "/v1/kill-switch", {"active": True}, **headers)
            assert status in (401, 403), status
            values: list[Any] = [junk(30), rng.randrange(-5, 5), None, [junk(5)], {"a": 1}, True]
            login: Any = {k: rng.choice(values) for k in ("name", "password", "code", junk(5))}
            raw = json.dumps(login) if rng.random() < 0.8 else junk(40)
            async with admin.http.post(
                "/v1/session", data=raw, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status in (400, 401), (raw, await response.text())
        assert admin.venue.core.last_seq == seq

    run(tmp_path, body)


def test_the_token_venue_run_writes(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    token = service_token(staff_access(config))
    found = staff_access(config).store.principal(token)
    assert found is not None and found.kind == "token"
    assert found.roles == {"admin", "operator", "treasury", "approver", "compliance", "auditor"}


def test_approval_limits_name_known_assets_in_their_units(tmp_path: Path) -> None:
    for limits, problem in (
        ('{ DOGE = "1" }', "names no asset"),
        ('{ BTC = "0.123456789" }', "decimals"),
    ):
        text = SHIPPED.replace(
            'adjustment_above = { USDT = "10000", BTC = "0.5", ETH = "5" }',
            f"adjustment_above = {limits}",
        )
        assert text != SHIPPED
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
        assert problem in caught.value.problem, caught.value
    config = dataclasses.replace(parse_config(SHIPPED), data_dir=tmp_path)
    assert staff_access(config).policy.adjustment_above == {
        "USDT": 10000 * 10**8,
        "BTC": 5 * 10**7,
        "ETH": 5 * 10**8,
    }


def test_the_admin_api_over_tls_sets_a_secure_cookie(tmp_path: Path) -> None:
    """With ``[admin] tls_cert_file``/``tls_key_file`` the API serves HTTPS only, and the
    session cookie is ``Secure`` (as it is whenever the API is not on loopback)."""
    import ssl

    from test_fix_acceptor import self_signed

    cert, key = self_signed(tmp_path)
    config = _config(tmp_path / "data")
    admin_config = dataclasses.replace(config.admin, tls_cert_file=cert, tls_key_file=key)
    config = dataclasses.replace(config, admin=admin_config)
    trusted = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        venue = Venue(config)
        await venue.start()
        access = staff_access(config)  # HTTPS: the cookie is Secure
        runner, _, port = await start_admin(venue, "127.0.0.1", 0, access=access)
        try:
            name, totp = new_operator(config, ["auditor"])
            async with aiohttp.ClientSession(f"https://localhost:{port}") as http:
                payload = {"name": name, "password": PASSWORD, "code": totp.now()}
                async with http.post("/v1/session", json=payload, ssl=trusted) as response:
                    assert response.status == 200
                    assert response.cookies[COOKIE]["secure"]
                async with http.get("/health", ssl=trusted) as response:
                    assert response.status == 200
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as plain:
                with pytest.raises(aiohttp.ClientError):
                    async with plain.get("/health") as response:
                        await response.read()
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
