"""The admin API asks who calls: tests get a service token with every role, made in the venue's
own operator store (a running admin API sees a token made by another store instance at once:
a lookup that misses reads the store's log again)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import pyotp
from pyotp import TOTP

from venue.admin import service_token, staff_access
from venue.config import VenueConfig


def admin_token(config: VenueConfig) -> str:
    return service_token(staff_access(config), ttl_s=3600, by="tests")


def admin_headers(config: VenueConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(config)}"}


PASSWORD = "correct horse battery staple"


def new_operator(config: VenueConfig, roles: list[str], prefix: str = "op") -> tuple[str, TOTP]:
    """A new operator with ``roles`` (and ``PASSWORD``); its name and TOTP generator."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    uri = staff_access(config).store.add(name, roles, PASSWORD, "tests")
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, TOTP)
    return name, totp


async def login(http: aiohttp.ClientSession, name: str, code: str) -> str:
    """Log in through the API; the session token (the cookie's value)."""
    body = {"name": name, "password": PASSWORD, "code": code}
    async with http.post("/v1/session", json=body, headers={"Authorization": ""}) as response:
        assert response.status == 200, await response.text()
        return response.cookies["venue_session"].value


async def approve(http: aiohttp.ClientSession, config: VenueConfig, approval_id: int) -> Any:
    """Approve ``approval_id`` as a new approver: logs in with this step's code and approves
    with the next one (a code is accepted once; the store allows one step of drift)."""
    name, totp = new_operator(config, ["approver"], "approver")
    now = time.time()
    token = await login(http, name, totp.at(now))
    async with http.post(
        f"/v1/approvals/{approval_id}/approve",
        json={"code": totp.at(now + 30)},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()
