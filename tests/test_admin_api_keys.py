"""API keys made by operators: through the admin API and ``venue api-key``, durable before they
are shown, audited, and usable by the REST door of the running venue, which shares one store
with the admin API (a key made by another process works at once, a revocation follows).

Bad input is refused naming its field (400 ``{"code","msg"}``, or one line on stderr and exit
3) and writes nothing; a real ``venue run`` killed with SIGKILL right after a 200 still knows
the key when it comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from staff_auth import admin_headers

from gateway.rest.keys import LOG_NAME, KeyStore
from gateway.rest.signing import sign_ed25519, sign_hmac
from venue.admin import start_admin
from venue.cli import run_cli
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.rest import REST_DIR, RestGateway, extensions, open_keys
from venue.runtime import Venue

REPO = Path(__file__).resolve().parent.parent


def _config(data_dir: Path, *, rest: bool) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.rest is not None
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        ledger=None,
        fix=None,
        rest=dataclasses.replace(config.rest, port=0) if rest else None,
    )


@dataclasses.dataclass
class Doors:
    venue: Venue
    keys: KeyStore
    admin: aiohttp.ClientSession
    rest: RestGateway | None


@asynccontextmanager
async def serving(data_dir: Path, *, rest: bool = False) -> AsyncIterator[Doors]:
    """The venue with its admin API and (``rest``) its REST door, sharing one key store, as
    ``venue run`` wires them."""
    config = _config(data_dir, rest=rest)
    venue = Venue(config)
    await venue.start()
    keys = open_keys(config)
    gateway = None
    if config.rest is not None:
        gateway = RestGateway(venue, config.rest, extensions(), keys)
        gateway.build()
        await gateway.start()
    runner, host, port = await start_admin(venue, "127.0.0.1", 0, keys=keys)
    try:
        headers = admin_headers(config)
        async with aiohttp.ClientSession(f"http://{host}:{port}", headers=headers) as http:
            yield Doors(venue, keys, http, gateway)
    finally:
        await runner.cleanup()
        if gateway is not None:
            await gateway.stop()
        await venue.stop()


async def _call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, path, json=body) as response:
        return response.status, await response.json()


def _signed_query(api_secret: str | None, private: Ed25519PrivateKey | None = None) -> str:
    query = f"timestamp={int(time.time() * 1000)}&recvWindow=10000"
    if private is not None:
        return query + "&signature=" + urllib.parse.quote(sign_ed25519(private, query), safe="")
    assert api_secret is not None
    return query + "&signature=" + sign_hmac(api_secret, query)


async def _account(base: str, api_key: str, query: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base}/api/v3/account?{query}", headers={"X-MBX-APIKEY": api_key}) as r,
    ):
        return r.status, await r.json()


def _pem(private: Ed25519PrivateKey) -> str:
    public = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


# -- the admin API ---------------------------------------------------------------------------


def test_admin_makes_lists_and_revokes_keys_without_a_rest_door(tmp_path: Path) -> None:
    """Keys are made before the door is enabled: the admin API serves them without [rest]."""

    async def body() -> None:
        async with serving(tmp_path / "data") as doors:
            http, path = doors.admin, "/v1/accounts/424242/api-keys"  # an account with nothing
            status, made = await _call(
                http,
                "POST",
                path,
                {"permissions": ["TRADE", "USER_DATA"], "label": "bot", "ipAllowlist": ["::1"]},
            )
            assert status == 200 and set(made) == {"apiKey", "secretKey"}
            private = Ed25519PrivateKey.generate()
            status, ed = await _call(
                http, "POST", path, {"permissions": "USER_DATA", "publicKey": _pem(private)}
            )
            assert status == 200 and set(ed) == {"apiKey"}
            status, listed = await _call(http, "GET", path)
            assert status == 200 and listed["account"] == 424242
            rows = listed["apiKeys"]
            assert [(r["apiKey"], r["type"]) for r in rows] == [
                (made["apiKey"], "HMAC"),
                (ed["apiKey"], "ED25519"),
            ]
            assert rows[0]["permissions"] == ["TRADE", "USER_DATA"]
            assert (rows[0]["label"], rows[0]["ipAllowlist"]) == ("bot", ["::1"])
            assert (
                re.fullmatch(r"token:[0-9a-f]{12}@127\.0\.0\.1", rows[0]["createdBy"])
                and rows[0]["revoked"] is None
            )
            assert made["secretKey"] not in json.dumps(listed)
            assert doors.keys.hmac_secret(made["apiKey"]) == made["secretKey"].encode()

            status, error = await _call(http, "DELETE", f"/v1/accounts/5/api-keys/{ed['apiKey']}")
            assert (status, error["code"]) == (404, -1)  # another account's key
            status, gone = await _call(http, "DELETE", f"{path}/{ed['apiKey']}")
            assert status == 200 and gone["apiKey"] == ed["apiKey"] and gone["revoked"] > 0
            status, again = await _call(http, "DELETE", f"{path}/{ed['apiKey']}")
            assert (status, again) == (200, gone)  # revoking twice changes nothing
            status, error = await _call(http, "DELETE", f"{path}/{'Z' * 64}")
            assert (status, error["code"]) == (404, -1)
            status, error = await _call(http, "DELETE", f"{path}/short")
            assert (status, error["code"]) == (400, -2014)

        log = (tmp_path / "data" / REST_DIR / LOG_NAME).read_text().splitlines()
        actions = [
            (r["action"], re.sub("[0-9a-f]{12}", "ID", r["by"])) for r in map(json.loads, log)
        ]
        assert actions == [
            ("created", "token:ID@127.0.0.1"),
            ("created", "token:ID@127.0.0.1"),
            ("revoked", "token:ID@127.0.0.1"),
        ]

    asyncio.run(asyncio.wait_for(body(), 30))


BAD = [
    ({}, "permissions"),
    ({"permissions": []}, "permissions"),
    ({"permissions": ["WITHDRAW"]}, "permissions"),
    ({"permissions": ["TRADE", "MARGIN"]}, "permissions"),
    ({"permissions": [1]}, "permissions"),
    ({"permissions": {"TRADE": 1}}, "permissions"),
    ({"permissions": ["TRADE"], "label": "x" * 65}, "label"),
    ({"permissions": ["TRADE"], "label": "a\nb"}, "label"),
    ({"permissions": ["TRADE"], "label": 5}, "label"),
    ({"permissions": ["TRADE"], "ipAllowlist": ["10.0.0.1/8"]}, "ipAllowlist"),
    ({"permissions": ["TRADE"], "ipAllowlist": ["nowhere"]}, "ipAllowlist"),
    ({"permissions": ["TRADE"], "ipAllowlist": "10.0.0.0/8,x"}, "ipAllowlist"),
    ({"permissions": ["TRADE"], "ipAllowlist": [f"10.0.{i}.1" for i in range(101)]}, "ipAll"),
    ({"permissions": ["TRADE"], "publicKey": "-----BEGIN PUBLIC KEY-----"}, "publicKey"),
    ({"permissions": ["TRADE"], "publicKey": "x" * 5000}, "publicKey"),
    ({"permissions": ["TRADE"], "secret": "mine"}, "secret"),
    ({"permissions": ["TRADE"], "account": 8}, "account"),
]


def test_bad_input_names_its_field_and_writes_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path / "data") as doors:
            for payload, field in BAD:
                status, error = await _call(doors.admin, "POST", "/v1/accounts/7/api-keys", payload)
                assert status == 400 and set(error) == {"code", "msg"}, (payload, error)
                assert field in error["msg"], (payload, error)
            for path in ("/v1/accounts/0/api-keys", "/v1/accounts/x/api-keys"):
                status, error = await _call(doors.admin, "POST", path, {"permissions": ["TRADE"]})
                assert status == 400 and "account" in error["msg"]
            status, error = await _call(doors.admin, "GET", "/v1/accounts/-3/api-keys")
            assert status == 400
            assert doors.keys.for_account(7) == []
        assert not (tmp_path / "data" / REST_DIR / LOG_NAME).exists()

    asyncio.run(asyncio.wait_for(body(), 30))


def _garbled(rng: random.Random) -> Any:
    pool: list[Any] = [
        None,
        True,
        0,
        -1,
        2**70,
        1.5,
        "",
        "TRADE",
        "USER_DATA,TRADE",
        "\x00",
        "é" * 70,
        [],
        ["TRADE"],
        ["USER_DATA", "USER_DATA"],
        [None],
        {"a": 1},
        "10.0.0.0/8",
        ["10.0.0.0/8", "::1/128"],
        ["300.1.1.1"],
    ]
    return rng.choice(pool)


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_the_create_request(tmp_path: Path, seed: int) -> None:
    """Whatever the body holds: a 200 with a key that works, or a 400 {"code","msg"}."""
    rng = random.Random(seed)
    keys = ("permissions", "label", "ipAllowlist", "publicKey", "account", "extra")

    async def body() -> None:
        async with serving(tmp_path / "data") as doors:
            made = 0
            for _ in range(60):
                payload = {k: _garbled(rng) for k in keys if rng.random() < 0.5}
                if rng.random() < 0.5:
                    payload["permissions"] = ["TRADE"]
                if rng.random() < 0.1:
                    raw = json.dumps(payload)[: rng.randrange(1, 40)]
                    async with doors.admin.post("/v1/accounts/3/api-keys", data=raw) as r:
                        status, answer = r.status, await r.json()
                else:
                    status, answer = await _call(
                        doors.admin, "POST", "/v1/accounts/3/api-keys", payload
                    )
                assert status in (200, 400), (payload, status, answer)
                if status == 400:
                    assert set(answer) == {"code", "msg"} and answer["code"] < 0
                else:
                    made += 1
                    assert doors.keys.get(answer["apiKey"]) is not None
            assert len(doors.keys.for_account(3)) == made

    asyncio.run(asyncio.wait_for(body(), 60))


# -- a real venue killed right after the 200 ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Run:
    """``venue run`` in a subprocess; ``rest`` is its REST door's URL once it runs."""

    def __init__(self, data_dir: Path) -> None:
        self.admin_port = _free_port()
        args = [sys.executable, "-m", "venue.cli", "run", "--config", str(DEFAULT_CONFIG_PATH)]
        args += ["--data-dir", str(data_dir), "--admin-port", str(self.admin_port)]
        args += ["--fix-port", "0", "--rest-port", "0"]
        self.token_file = data_dir.parent / "admin.token"
        args += ["--admin-token-file", str(self.token_file)]
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True).start()
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            found = re.search(r"REST and WebSocket on (http://[0-9.]+:\d+)", line)
            if found:
                self.rest = found.group(1)
                return
        self.kill()
        raise AssertionError(f"the venue did not start: {''.join(seen)}")

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token_file.read_text().strip()}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            return json.loads(response.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def runs() -> Iterator[list[_Run]]:
    started: list[_Run] = []
    yield started
    for run in started:
        run.kill()


def test_a_key_answered_survives_a_sigkill_right_after(tmp_path: Path, runs: list[_Run]) -> None:
    data_dir = tmp_path / "data"
    first = _Run(data_dir)
    runs.append(first)
    made = first.post("/v1/accounts/7/api-keys", {"permissions": ["USER_DATA"], "label": "k"})
    first.kill()  # at once: no clean stop, no flush but the one before the 200

    second = _Run(data_dir)
    runs.append(second)
    status, account = asyncio.run(
        _account(second.rest, made["apiKey"], _signed_query(made["secretKey"]))
    )
    assert status == 200, account
    assert "balances" in account and account["canTrade"] is False  # USER_DATA only


# -- venue api-key, while the venue runs ---------------------------------------------------------


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "venue.cli",
        "api-key",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_a_key_made_by_the_command_line_works_at_once_in_the_running_venue(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    where = ("--config", str(DEFAULT_CONFIG_PATH), "--data-dir", str(data_dir))

    async def body() -> None:
        async with serving(data_dir, rest=True) as doors:
            assert doors.rest is not None
            base = doors.rest.url
            code, out, err = await _cli(
                "create", "--account", "9", "--permissions", "TRADE,USER_DATA", *where
            )
            assert code == 0, err
            api_key = re.search(r"apiKey: (\w+)", out).group(1)  # type: ignore[union-attr]
            secret = re.search(r"secretKey: (\w+)", out).group(1)  # type: ignore[union-attr]
            status, account = await _account(base, api_key, _signed_query(secret))
            assert status == 200 and account["canTrade"] is True, account

            # an Ed25519 key from a PEM file
            private = Ed25519PrivateKey.generate()
            pem_file = tmp_path / "key.pem"
            pem_file.write_text(_pem(private))
            code, out, err = await _cli(
                "create", "--account", "9", "--permissions", "USER_DATA",
                "--public-key-file", str(pem_file), "--label", "ed", *where,
            )  # fmt: skip
            assert code == 0 and "secretKey" not in out, err
            ed_key = re.search(r"apiKey: (\w+)", out).group(1)  # type: ignore[union-attr]

            # the admin API lists what the command line made, and the command line the same
            status, listed = await _call(doors.admin, "GET", "/v1/accounts/9/api-keys")
            assert [r["apiKey"] for r in listed["apiKeys"]] == [api_key, ed_key]
            assert listed["apiKeys"][0]["createdBy"].startswith("cli:")
            code, out, _ = await _cli("list", "--account", "9", *where)
            assert code == 0 and api_key in out and ed_key in out and secret not in out

            # revoked by the command line: the running door refuses it within a second or so
            code, out, err = await _cli("revoke", api_key, *where)
            assert code == 0 and "revoked" in out, err
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status, answer = await _account(base, api_key, _signed_query(secret))
                if status != 200:
                    break
                await asyncio.sleep(0.1)
            assert (status, answer["code"]) == (401, -2015)

    asyncio.run(asyncio.wait_for(body(), 60))


CLI_BAD = [
    (["create", "--account", "0", "--permissions", "TRADE"], "--account"),
    (["create", "--account", "x1", "--permissions", "TRADE"], "--account"),
    (["create", "--account", "7", "--permissions", "WITHDRAW"], "WITHDRAW"),
    (["create", "--account", "7", "--permissions", ""], "--permissions"),
    (["create", "--account", "7", "--permissions", "TRADE", "--ip", "1.2.3.4/8"], "--ip"),
    (["create", "--account", "7", "--permissions", "TRADE", "--label", "a" * 65], "--label"),
    (["create", "--account", "7", "--permissions", "TRADE", "--public-key-file", "/no/such"], "no"),
    (["create", "--account", "7"], "--permissions"),
    (["create", "--permissions", "TRADE"], "--account"),
    (["list"], "--account"),
    (["revoke", "abc"], "not an API key"),
    (["revoke", "Q" * 64], "nothing revoked"),
    (["create", "--account", "7", "--permissions", "TRADE", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("args", "word"), CLI_BAD)
def test_command_line_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], word: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(SystemExit) as stopped:
        sys.exit(run_cli(["api-key", *args, "--data-dir", str(data_dir)]))
    assert stopped.value.code not in (0, None)
    err = capsys.readouterr().err
    assert err.startswith("venue: error: ") and err.count("\n") == 1, err
    assert word in err and "Traceback" not in err
    assert not (data_dir / REST_DIR / LOG_NAME).exists()


def test_command_line_refuses_a_bad_public_key_and_a_missing_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    pem = tmp_path / "rsa.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    create = ["api-key", "create", "--account", "7", "--permissions", "TRADE"]
    assert run_cli([*create, "--public-key-file", str(pem), "--data-dir", str(data_dir)]) == 3
    assert "--public-key-file" in capsys.readouterr().err
    assert run_cli([*create, "--data-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "none").exists()
