"""Staff login: roles, the operator store (passwords, TOTP, lockout, IP allowlists, sessions,
service tokens, what is at rest) and the ``venue operator`` / ``venue token`` command line."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pyotp
import pytest

from gateway.staff.operators import (
    DEFAULT_SCRYPT,
    LOCK_MS,
    LOG_NAME,
    MAX_FAILURES,
    REASONS,
    SECRET_NAME,
    OperatorStore,
    Principal,
    Refusal,
    ScryptParams,
    Session,
    StaffStoreError,
    hash_password,
    verify_password,
)
from gateway.staff.roles import (
    PERMISSIONS_BY_ROLE,
    ROLES,
    Permission,
    Role,
    allowed,
    check_roles,
)
from venue.cli import run_cli

REPO = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000_000  # a step boundary: 1_800_000_000 s is a multiple of 30
STEP_MS = 30_000
PASSWORD = "correct horse battery staple"
FAST = ScryptParams(n=2**10)


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _store(path: Path, clock: Clock, **kw: object) -> OperatorStore:
    return OperatorStore(path, clock=clock, scrypt=FAST, **kw)  # type: ignore[arg-type]


def _secret(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = urllib.parse.parse_qs(parsed.query)
    assert query["issuer"] == ["venue"]
    return query["secret"][0]


def _code(secret: str, at_ms: int) -> str:
    return pyotp.TOTP(secret).at(at_ms // 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff(tmp_path: Path, clock: Clock) -> tuple[OperatorStore, str]:
    store = _store(tmp_path / "staff", clock)
    uri = store.add("alice", ["operator"], PASSWORD, "test")
    return store, _secret(uri)


# -- roles ------------------------------------------------------------------------------------


def test_every_role_has_its_permissions_and_no_other() -> None:
    assert set(PERMISSIONS_BY_ROLE) == set(Role) and {r.value for r in Role} == ROLES
    for perms in PERMISSIONS_BY_ROLE.values():
        assert Permission.READ in perms
    assert allowed(["admin"], "operators.write")
    assert not allowed(["admin"], Permission.APPROVALS_APPROVE)  # a second person, not implied
    assert not allowed(["admin"], Permission.MONEY_WRITE)
    assert allowed(["operator"], "instruments.write") and allowed(["operator"], "orders.write")
    assert not allowed(["operator"], "money.write")
    assert allowed(["treasury"], "money.write") and not allowed(["treasury"], "orders.write")
    assert allowed(["approver"], "approvals.approve")
    assert allowed(["compliance"], "surveillance.read") and allowed(["compliance"], "cases.write")
    auditor = PERMISSIONS_BY_ROLE[Role.AUDITOR]
    assert all(not p.endswith((".write", ".approve")) for p in auditor)
    assert allowed(["auditor", "treasury"], "money.write")
    assert not allowed(["root", "superuser"], "read")  # unknown roles grant nothing
    assert not allowed([], "read")
    assert not allowed(["admin"], "no.such.permission")
    principal = Principal("operator", "a", frozenset({"auditor"}))
    assert principal.can("audit.read") and not principal.can("operators.write")


def test_check_roles_refuses_unknown_and_empty() -> None:
    assert check_roles(["admin", "auditor"]) == {"admin", "auditor"}
    for bad in (["root"], [], "admin"):
        with pytest.raises(ValueError):
            check_roles(bad)


# -- passwords --------------------------------------------------------------------------------


def test_password_hash_is_scrypt_salted_and_verifies() -> None:
    record = hash_password(PASSWORD)
    assert record["alg"] == "scrypt"
    assert (
        (record["n"], record["r"], record["p"])
        == (2**14, 8, 1)
        == (
            DEFAULT_SCRYPT.n,
            DEFAULT_SCRYPT.r,
            DEFAULT_SCRYPT.p,
        )
    )
    assert PASSWORD not in str(record)
    assert verify_password(PASSWORD, record)
    assert not verify_password(PASSWORD + "x", record)
    other = hash_password(PASSWORD, FAST)
    assert other["salt"] != record["salt"] and verify_password(PASSWORD, other)
    with pytest.raises(StaffStoreError):
        ScryptParams(n=1000).check()


def test_short_password_and_bad_names_are_refused(staff: tuple[OperatorStore, str]) -> None:
    store, _ = staff
    for name, roles, password in (
        ("bob", ["operator"], "short"),
        ("bob", ["root"], PASSWORD),
        ("bob", [], PASSWORD),
        ("b ob", ["operator"], PASSWORD),
        ("", ["operator"], PASSWORD),
        ("alice", ["operator"], PASSWORD),  # exists
    ):
        with pytest.raises(StaffStoreError):
            store.add(name, roles, password, "test")
    assert [o.name for o in store.operators()] == ["alice"]


# -- TOTP -------------------------------------------------------------------------------------


def test_a_valid_code_logs_in_and_gives_a_session(staff: tuple[OperatorStore, str]) -> None:
    store, secret = staff
    result = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(result, Session)
    assert result.principal == Principal("operator", "alice", frozenset({"operator"}))
    assert result.event.outcome == "ok" and result.event.operator == "alice"
    assert store.session(result.token) == result.principal


@pytest.mark.parametrize("drift", [-1, 1])
def test_one_step_of_drift_is_accepted(staff: tuple[OperatorStore, str], drift: int) -> None:
    store, secret = staff
    code = _code(secret, T0 + drift * STEP_MS)
    assert isinstance(store.login("alice", PASSWORD, code, "10.0.0.1"), Session)


@pytest.mark.parametrize("drift", [-2, 2])
def test_two_steps_of_drift_are_refused(staff: tuple[OperatorStore, str], drift: int) -> None:
    store, secret = staff
    code = _code(secret, T0 + drift * STEP_MS)
    result = store.login("alice", PASSWORD, code, "10.0.0.1")
    assert isinstance(result, Refusal) and result.reason == "wrong code"


def test_a_used_code_is_refused_even_after_a_restart(
    tmp_path: Path, staff: tuple[OperatorStore, str], clock: Clock
) -> None:
    store, secret = staff
    code = _code(secret, T0 + STEP_MS)  # the next step's code, accepted for drift
    assert isinstance(store.login("alice", PASSWORD, code, "10.0.0.1"), Session)
    again = store.login("alice", PASSWORD, code, "10.0.0.1")
    assert isinstance(again, Refusal) and again.reason == "reused code"
    # the current step's code is older than the one used: refused too
    older = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(older, Refusal) and older.reason == "reused code"
    restarted = _store(tmp_path / "staff", clock)
    clock.now += STEP_MS  # still within the drift window of the used code
    replay = restarted.login("alice", PASSWORD, code, "10.0.0.1")
    assert isinstance(replay, Refusal) and replay.reason == "reused code"
    clock.now += STEP_MS
    fresh = restarted.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(fresh, Session)


def test_reset_totp_gives_a_new_secret_and_the_old_one_stops(
    staff: tuple[OperatorStore, str], clock: Clock
) -> None:
    store, secret = staff
    uri = store.reset("alice", "test", totp=True)
    assert uri is not None
    new = _secret(uri)
    assert new != secret
    old = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(old, Refusal) and old.reason == "wrong code"
    assert isinstance(store.login("alice", PASSWORD, _code(new, T0), "10.0.0.1"), Session)


# -- lockout, disabled, IP allowlist ----------------------------------------------------------


def test_lockout_after_five_failures_and_its_end(
    tmp_path: Path, staff: tuple[OperatorStore, str], clock: Clock
) -> None:
    store, secret = staff
    for i in range(MAX_FAILURES):
        bad = store.login("alice", f"wrong password {i}", "000000", "10.0.0.1")
        assert isinstance(bad, Refusal) and bad.reason == "wrong password"
    op = store.operator("alice")
    assert op is not None and op.locked_until_ms == T0 + LOCK_MS
    locked = store.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(locked, Refusal) and locked.reason == "locked"
    restarted = _store(tmp_path / "staff", clock)  # the lock is in the log
    clock.now = T0 + LOCK_MS - 1
    still = restarted.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(still, Refusal) and still.reason == "locked"
    clock.now = T0 + LOCK_MS
    ok = restarted.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(ok, Session)


def test_a_success_resets_the_failure_count(staff: tuple[OperatorStore, str], clock: Clock) -> None:
    store, secret = staff
    for _ in range(MAX_FAILURES - 1):
        store.login("alice", PASSWORD, "999999" if _code(secret, T0) != "999999" else "1", "::1")
    assert isinstance(store.login("alice", PASSWORD, _code(secret, T0), "::1"), Session)
    for _ in range(MAX_FAILURES - 1):
        store.login("alice", "not the password", "000000", "::1")
    clock.now += STEP_MS
    assert isinstance(store.login("alice", PASSWORD, _code(secret, clock.now), "::1"), Session)


def test_disabled_operator_cannot_log_in_and_loses_sessions(
    staff: tuple[OperatorStore, str], clock: Clock
) -> None:
    store, secret = staff
    session = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(session, Session)
    store.disable("alice", "test")
    assert store.session(session.token) is None
    clock.now += STEP_MS
    refused = store.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(refused, Refusal) and refused.reason == "disabled"
    store.enable("alice", "test")
    assert isinstance(store.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1"), Session)


def test_ip_allowlist(staff: tuple[OperatorStore, str], clock: Clock) -> None:
    store, secret = staff
    store.set_ips("alice", ["10.1.0.0/16", "2001:db8::1"], "test")
    op = store.operator("alice")
    assert op is not None and op.ip_allowlist == ("10.1.0.0/16", "2001:db8::1/128")
    for ip in ("10.2.0.1", "not an ip", "", "2001:db8::2") * 2:  # never counted: no lockout
        refused = store.login("alice", PASSWORD, _code(secret, T0), ip)
        assert isinstance(refused, Refusal) and refused.reason == "ip not allowed"
    assert isinstance(store.login("alice", PASSWORD, _code(secret, T0), "10.1.2.3"), Session)
    clock.now += STEP_MS
    assert isinstance(
        store.login("alice", PASSWORD, _code(secret, clock.now), "2001:db8::1"), Session
    )
    with pytest.raises(StaffStoreError):
        store.set_ips("alice", ["10.1.0.1/16"], "test")


def test_unknown_operator_is_refused(staff: tuple[OperatorStore, str]) -> None:
    store, secret = staff
    result = store.login("mallory", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(result, Refusal) and result.reason == "unknown operator"
    assert result.event.operator == "mallory" and result.event.action == "login"


# -- sessions and tokens ----------------------------------------------------------------------


def test_sessions_expire_idle_out_and_log_out(tmp_path: Path, clock: Clock) -> None:
    store = _store(tmp_path / "staff", clock, session_ms=3_600_000, idle_ms=600_000)
    secret = _secret(store.add("alice", ["admin"], PASSWORD, "test"))
    first = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(first, Session) and first.expires_ms == T0 + 3_600_000
    for minute in range(1, 60, 9):  # used every 9 minutes: never idle, until the expiry
        assert store.session(first.token, T0 + minute * 60_000) is not None
    assert store.session(first.token, T0 + 3_600_000) is None
    clock.now += STEP_MS
    second = store.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(second, Session)
    assert store.session(second.token, clock.now + 599_999) is not None
    assert store.session(second.token, clock.now + 599_999 + 600_000) is None  # idle
    clock.now += STEP_MS
    third = store.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(third, Session)
    assert store.principal(third.token) == third.principal
    assert store.logout(third.token) and not store.logout(third.token)
    assert store.session(third.token) is None
    assert store.session("vss_" + "A" * 43) is None and store.session("") is None


def test_a_session_survives_a_restart_and_a_password_reset_ends_it(
    tmp_path: Path, staff: tuple[OperatorStore, str], clock: Clock
) -> None:
    store, secret = staff
    session = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(session, Session)
    restarted = _store(tmp_path / "staff", clock)
    assert restarted.session(session.token) is not None
    restarted.reset("alice", "test", password="another long password")
    assert restarted.session(session.token) is None
    clock.now += STEP_MS
    old = restarted.login("alice", PASSWORD, _code(secret, clock.now), "10.0.0.1")
    assert isinstance(old, Refusal) and old.reason == "wrong password"


def test_roles_changed_apply_to_live_sessions(staff: tuple[OperatorStore, str]) -> None:
    store, secret = staff
    session = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(session, Session)
    store.set_roles("alice", ["auditor"], "test")
    principal = store.session(session.token)
    assert principal is not None and not principal.can("instruments.write")


def test_service_tokens_expire_and_are_revoked(tmp_path: Path, clock: Clock) -> None:
    store = _store(tmp_path / "staff", clock)
    made, token = store.create_token(["operator", "treasury"], 7200, "test")
    assert made.expires_ms == T0 + 7_200_000 and token.startswith("vst_")
    principal = store.principal(token)
    assert principal is not None and principal.kind == "token"
    assert principal.can("money.write") and not principal.can("operators.write")
    assert store.principal(token, T0 + 7_199_999) is not None
    assert store.principal(token, T0 + 7_200_000) is None
    other, other_token = store.create_token(["auditor"], 60, "test")
    restarted = _store(tmp_path / "staff", clock)
    assert restarted.principal(other_token) is not None
    revoked = restarted.revoke_token(other.token_id, "test")
    assert revoked.revoked_ms == T0
    assert restarted.principal(other_token) is None
    assert restarted.revoke_token(other.token_id, "test").revoked_ms == T0  # idempotent
    assert store.principal("vst_nope") is None and store.principal("whatever") is None
    for ttl in (0, -1, 10**9):
        with pytest.raises(StaffStoreError):
            store.create_token(["auditor"], ttl, "test")
    with pytest.raises(StaffStoreError):
        store.revoke_token("000000000000", "test")


def test_nothing_secret_is_at_rest_in_clear(
    tmp_path: Path, staff: tuple[OperatorStore, str]
) -> None:
    store, secret = staff
    session = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(session, Session)
    _, token = store.create_token(["admin"], 60, "test")
    store.reset("alice", "test", password="the second long password")
    directory = tmp_path / "staff"
    blobs = b"".join(p.read_bytes() for p in directory.iterdir())
    for clear in (PASSWORD, "the second long password", secret, session.token, token):
        assert clear.encode() not in blobs
        assert clear[4:].encode() not in blobs  # nor without its prefix
    assert oct((directory / SECRET_NAME).stat().st_mode & 0o777) == "0o600"
    assert oct((directory / LOG_NAME).stat().st_mode & 0o777) == "0o600"


def test_store_refuses_an_open_key_file_and_a_damaged_log(tmp_path: Path, clock: Clock) -> None:
    store = _store(tmp_path / "staff", clock)
    store.add("alice", ["operator"], PASSWORD, "test")
    log = tmp_path / "staff" / LOG_NAME
    with log.open("ab") as f:
        f.write(b'{"t":1,"action":"disabled"')  # torn: cut on open
    assert _store(tmp_path / "staff", clock).operator("alice") is not None
    with log.open("ab") as f:
        f.write(b'{"t":1,"action":"nonsense"}\n')
    with pytest.raises(StaffStoreError, match="unknown action"):
        _store(tmp_path / "staff", clock)
    os.chmod(tmp_path / "staff" / SECRET_NAME, 0o644)
    with pytest.raises(StaffStoreError, match="0600"):
        _store(tmp_path / "staff", clock)


def test_events_for_actions_and_logins_carry_no_secret(tmp_path: Path, clock: Clock) -> None:
    events: list[object] = []
    store = _store(tmp_path / "staff", clock, on_event=events.append)
    secret = _secret(store.add("alice", ["operator"], PASSWORD, "test"))
    store.login("alice", "wrong, very wrong", "123456", "10.0.0.1")
    good = store.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")
    assert isinstance(good, Session)
    store.disable("alice", "test")
    actions = [(e.action, e.outcome) for e in events]  # type: ignore[attr-defined]
    assert actions == [
        ("operator.add", "ok"),
        ("login", "wrong password"),
        ("login", "ok"),
        ("operator.disable", "ok"),
    ]
    text = repr(events)
    assert PASSWORD not in text and secret not in text and good.token not in text


# -- fuzz -------------------------------------------------------------------------------------


def test_login_survives_random_inputs(tmp_path: Path, clock: Clock) -> None:
    """A bounded, seeded fuzz of everything a login takes from outside: each try is a Session
    or a Refusal with a known reason, and the log still replays."""
    rng = random.Random(20261207)
    store = _store(tmp_path / "staff", clock)
    secret = _secret(store.add("alice", ["operator"], PASSWORD, "test"))
    store.set_ips("alice", ["127.0.0.0/8", "::1"], "test")
    pieces: list[object] = [
        "alice",
        PASSWORD,
        "",
        "\x00",
        "\udcff",
        "é" * 300,
        "a" * 5000,
        "123456",
        "127.0.0.1",
        "::1",
        "1" * 64,
        " alice",
        "alice\n",
        None,
        12,
        b"alice",
        ["alice"],
    ]

    def pick() -> object:
        if rng.random() < 0.5:
            return rng.choice(pieces)
        alphabet = "alice0123456789.:/ \n\t%\u2028"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))

    outcomes: set[str] = set()
    for i in range(400):
        clock.now = T0 + i * 7_000
        name, password, code, ip = pick(), pick(), pick(), pick()
        if rng.random() < 0.3:
            name, password, ip = "alice", PASSWORD, "127.0.0.1"
            code = _code(secret, clock.now) if rng.random() < 0.5 else code
        result = store.login(name, password, code, ip)  # type: ignore[arg-type]
        if isinstance(result, Session):
            outcomes.add("ok")
            assert store.session(result.token) is not None
        else:
            assert isinstance(result, Refusal) and result.reason in REASONS
            outcomes.add(result.reason)
        assert "\n" not in result.event.operator and "\n" not in result.event.ip
        if i % 50 == 0:
            store.enable("alice", "fuzz")  # lift a lockout now and then
    assert {"ok", "unknown operator", "wrong code", "ip not allowed"} <= outcomes
    replayed = _store(tmp_path / "staff", clock)
    assert [o.name for o in replayed.operators()] == ["alice"]


# -- the command line -------------------------------------------------------------------------


def _venue(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "venue.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_cli_adds_an_operator_seen_at_once_by_a_running_store(tmp_path: Path, clock: Clock) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = OperatorStore(data / "staff", clock=clock)  # the venue's store, open already
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    dd = ("--data-dir", str(data))
    added = _venue(
        "operator", "add", "alice", "--role", "operator", "--password-file", str(pw), *dd
    )
    assert added.returncode == 0, added.stderr
    uri = next(line[6:] for line in added.stdout.splitlines() if line.startswith("totp: "))
    secret = _secret(uri)
    assert "▀" in added.stdout or "█" in added.stdout  # the QR code
    assert "shown this once" in added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    login = running.login("alice", PASSWORD, _code(secret, T0), "10.0.0.1")  # no refresh asked
    assert isinstance(login, Session)
    disabled = _venue("operator", "disable", "alice", *dd)
    assert disabled.returncode == 0, disabled.stderr
    running.refresh()
    assert running.session(login.token) is None
    listed = _venue("operator", "list", *dd)
    assert listed.returncode == 0 and "alice" in listed.stdout and "disabled" in listed.stdout
    made = _venue("token", "create", "--roles", "operator,treasury", "--ttl", "2h", *dd)
    assert made.returncode == 0, made.stderr
    token = next(line[7:] for line in made.stdout.splitlines() if line.startswith("token: "))
    running.refresh()
    principal = running.principal(token, now=int(__import__("time").time() * 1000))
    assert principal is not None and principal.roles == {"operator", "treasury"}


@pytest.mark.parametrize(
    "args",
    [
        ("operator", "add", "bob", "--role", "root"),
        ("operator", "add", "b b", "--role", "admin"),
        ("operator", "add", "bob", "--role", "admin"),  # no terminal, no --password-file
        ("operator", "add", "bob", "--role", "admin", "--password-file", "SHORT"),
        ("operator", "add", "bob", "--role", "admin", "--password-file", "/no/such/file"),
        ("operator", "disable", "nobody"),
        ("operator", "reset", "nobody", "--totp"),
        ("operator", "list", "--bogus"),
        ("token", "create", "--roles", "operator", "--ttl", "2x"),
        ("token", "create", "--roles", "", "--ttl", "2h"),
        ("token", "revoke", "abc"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    short = tmp_path / "short"
    short.write_text("only eleven\n")
    argv = [a.replace("SHORT", str(short)) for a in args]
    with pytest.raises(SystemExit) as stopped:
        sys.exit(run_cli([*argv, "--data-dir", str(data)]))
    assert stopped.value.code not in (0, None)
    err = capsys.readouterr().err
    assert err.startswith("venue: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
