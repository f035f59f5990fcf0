"""Surveillance's alerts and cases on a real admin API (``surveillance.casepages`` registered by
the composition root): who may read and who may change, the alert list's filters and ``next``
links, a case from its opening to its close with every step a staff event, bad input refused
naming the field, and the case exported as a STOR in JSON and as a printable page."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.admin.auth import permissions_of
from gateway.adminconfig import AdminConfig, ApprovalsConfig
from gateway.staff.operators import StaffEvent
from surveillance.alerts import Alert, AlertType
from surveillance.store import AlertStore
from venue.admin import staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.runtime import Venue


@dataclasses.dataclass
class Admin:
    venue: Venue
    config: VenueConfig
    store: AlertStore
    http: aiohttp.ClientSession
    events: list[StaffEvent]
    app: web.Application

    async def call(
        self, method: str, path: str, body: Any = None, token: str = ""
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, path, json=body, headers=headers) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    def token(self, roles: list[str]) -> str:
        return staff_access(self.config).store.create_token(roles, 600, "tests")[1]

    def staff(self, prefix: str) -> list[tuple[str, str, str]]:
        return [
            (e.action, e.subject, e.outcome) for e in self.events if e.action.startswith(prefix)
        ]

    async def raise_alerts(self, *alerts: Alert) -> None:
        for alert in alerts:
            self.store.raise_alert(alert)
        assert await asyncio.to_thread(self.store.flush, 10)


@asynccontextmanager
async def serving(tmp_path: Path, url: str = "") -> AsyncIterator[Admin]:
    config = load_config(DEFAULT_CONFIG_PATH)
    admin = AdminConfig("127.0.0.1", 0, approvals=ApprovalsConfig(1, {}))
    config = dataclasses.replace(
        config, data_dir=tmp_path / "data", admin=admin, ledger=None, rest=None
    )
    venue = Venue(config)
    await venue.start()
    events: list[StaffEvent] = []
    access = staff_access(config, events.append)
    url = url or config.alert_store.url_for(config.data_dir)
    store = await asyncio.to_thread(AlertStore.connect, url)
    store.start()
    runner, host, port = await start_admin(venue, "127.0.0.1", 0, access=access, alerts=store)
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            yield Admin(venue, config, store, http, events, runner.app)
    finally:
        await runner.cleanup()
        await venue.stop()
        await asyncio.to_thread(store.close)


def run(tmp_path: Path, body: Callable[[Admin], Awaitable[None]], url: str = "") -> None:
    async def main() -> None:
        async with serving(tmp_path, url) as admin:
            await body(admin)

    asyncio.run(asyncio.wait_for(main(), 60))


_SEQS = itertools.count(120)


def wash(key: str = "wash:1", **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "key": key,
        "type": AlertType.WASH_TRADE,
        "symbol": "BTC-USDT",
        "accounts": (1001, 1002),
        "from_ms": 1_765_000_000_000,
        "to_ms": 1_765_000_060_000,
        "score": 81.234,
        "evidence": {
            "orders": [
                {
                    "orderId": 11,
                    "account": 1001,
                    "side": "BUY",
                    "type": "LIMIT",
                    "price": "65000.10",
                    "qty": "0.25",
                    "time": 1_765_000_000_000,
                },
                {
                    "orderId": 12,
                    "account": 1002,
                    "side": "SELL",
                    "type": "LIMIT",
                    "price": "65000.10",
                    "qty": "0.25",
                    "time": 1_765_000_000_500,
                },
            ],
            "trades": [
                {
                    "tradeId": 7,
                    "buyer": 1001,
                    "seller": 1002,
                    "price": "65000.10",
                    "qty": "0.25",
                    "time": 1_765_000_000_500,
                }
            ],
        },
        "first_seq": 100,
        "last_seq": next(_SEQS),  # each raise is new evidence (same last_seq: seen already)
        "summary": "accounts 1001 and 1002 traded with each other <script>alert(1)</script>",
    }
    fields.update(changes)
    return Alert(**fields)


def test_reading_needs_surveillance_read_and_changing_needs_cases_write(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        declared = {
            (route.method, route.resource.canonical): permission
            for route, permission in permissions_of(admin.app).items()
            if route.resource is not None
            and route.resource.canonical.startswith(
                ("/v1/surveillance/alerts", "/v1/surveillance/cases")
            )
        }
        assert len(declared) == 12
        for (method, path), permission in declared.items():
            wanted = "cases.write" if method == "POST" else "surveillance.read"
            assert permission == wanted, (method, path)
        await admin.raise_alerts(wash())
        for path in ("/v1/surveillance/alerts", "/v1/surveillance/alerts/1"):
            assert (await admin.call("GET", path))[0] == 401
            for roles in (["operator"], ["treasury"], ["admin", "approver"]):
                status, refused = await admin.call("GET", path, token=admin.token(roles))
                assert (status, refused["code"]) == (403, -1002), roles
            for roles in (["compliance"], ["auditor"]):
                status, _ = await admin.call("GET", path, token=admin.token(roles))
                assert status == 200, roles
        opening = {"alertIds": [1], "title": "look"}
        assert (await admin.call("POST", "/v1/surveillance/cases", opening))[0] == 401
        for roles in (["auditor"], ["operator"]):
            token = admin.token(roles)
            status, _ = await admin.call("POST", "/v1/surveillance/cases", opening, token)
            assert status == 403
        assert (
            await admin.call("GET", "/v1/surveillance/alerts/1", token=admin.token(["auditor"]))
        )[1]["state"] == "OPEN"
        assert admin.staff("case.") == []  # refused before the handler: nothing happened
        assert any(e.outcome == "forbidden" for e in admin.events)
        status, case = await admin.call(
            "POST", "/v1/surveillance/cases", opening, admin.token(["compliance"])
        )
        assert status == 200 and case["state"] == "OPEN"

    run(tmp_path, body)


def test_the_alert_list_filters_and_pages_with_next_links(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        token = admin.token(["auditor"])
        alerts = [
            wash(f"w{i}", accounts=(1000 + i % 4,), from_ms=i * 1000, to_ms=i * 1000 + 500)
            for i in range(25)
        ] + [
            wash(f"s{i}", type=AlertType.SPOOFING, symbol="ETH-USDT", accounts=(7,))
            for i in range(5)
        ]
        await admin.raise_alerts(*alerts)
        status, listed = await admin.call("GET", "/v1/surveillance/alerts", token=token)
        assert status == 200 and listed["next"] is None and len(listed["alerts"]) == 30
        first = listed["alerts"][-1]
        assert set(first) >= {
            "alertId", "type", "symbol", "accounts", "fromTime", "toTime", "score", "summary",
            "state", "count", "createdAt", "updatedAt", "firstSeq", "lastSeq", "evidence",
        }  # fmt: skip
        assert (first["symbol"], first["accounts"], first["score"]) == ("BTC-USDT", [1000], 81.23)
        seen: list[int] = []
        link: str | None = "/v1/surveillance/alerts?type=WASH_TRADE&limit=4"
        while link is not None:
            status, page = await admin.call("GET", link, token=token)
            assert status == 200 and len(page["alerts"]) <= 4
            seen.extend(a["alertId"] for a in page["alerts"])
            link = page["next"]
            assert link is None or "type=WASH_TRADE" in link
        assert seen == sorted(seen, reverse=True) and sorted(seen) == list(range(1, 26))
        cases = {
            "symbol=ETH-USDT": 5,
            "account=1001": 6,  # i % 4 == 1 for i below 25
            "account=7&type=SPOOFING": 5,
            "from=3200&to=5000": 3,  # windows 3000-3500 (overlaps), 4000-4500, 5000-5500
            "state=IN_CASE": 0,
            "state=OPEN&limit=1000": 30,
        }
        for query, count in cases.items():
            status, page = await admin.call("GET", f"/v1/surveillance/alerts?{query}", token=token)
            assert (status, len(page["alerts"])) == (200, count), query
        views = [(e.action, e.subject) for e in admin.events if e.action == "view"]
        assert views == [("view", "account 1001"), ("view", "account 7")]
        for query, name in (
            ("type=NOPE", "type"),
            ("account=x", "account"),
            ("limit=0", "limit"),
            ("from=9&to=1", "to"),
            ("state=OPEN&state=CLOSED", "state"),
            ("colour=red", "colour"),
        ):
            status, refused = await admin.call(
                "GET", f"/v1/surveillance/alerts?{query}", token=token
            )
            assert status == 400 and name in refused["msg"] and refused["code"] < 0, query
        assert (await admin.call("GET", "/v1/surveillance/alerts/999", token=token))[0] == 404
        assert (await admin.call("GET", "/v1/surveillance/alerts/abc", token=token))[0] == 400
        # seeded random query strings: a page or a 400, never anything else
        rng = random.Random(7)
        words = ["type", "symbol", "account", "from", "to", "state", "limit", "cursor", "zz"]
        values = [
            "",
            "1",
            "-1",
            "BTC-USDT",
            "OPEN",
            "WASH_TRADE",
            "1.1",
            "%00",
            "99999999999999999999",
        ]
        for _ in range(60):
            query = "&".join(
                f"{rng.choice(words)}={rng.choice(values)}" for _ in range(rng.randint(0, 4))
            )
            status, page = await admin.call("GET", f"/v1/surveillance/alerts?{query}", token=token)
            assert status in (200, 400), (query, page)
            assert ("alerts" in page) if status == 200 else ("msg" in page)

    run(tmp_path, body)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """The store's default (SQLite under the data folder), or the real PostgreSQL."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def test_a_case_from_open_to_close_and_every_step_audited(tmp_path: Path, url: str) -> None:
    async def body(admin: Admin) -> None:
        await admin.raise_alerts(wash("a"), wash("b"), wash("c"))
        token = admin.token(["compliance"])
        base = "/v1/surveillance/cases"
        status, case = await admin.call("POST", base, {"alertIds": [1, 2], "title": "wash"}, token)
        assert status == 200, case
        cid = case["caseId"]
        assert [a["state"] for a in case["alerts"]] == ["IN_CASE", "IN_CASE"]
        assert case["createdBy"].startswith("token") or case["createdBy"]
        status, case = await admin.call("POST", f"{base}/{cid}/assign", {"operator": "bob"}, token)
        assert (status, case["operator"]) == (200, "bob")
        status, case = await admin.call(
            "POST", f"{base}/{cid}/comments", {"text": "same owner both sides"}, token
        )
        assert status == 200 and case["comments"][0]["text"] == "same owner both sides"
        data = b"%PDF-1.4 evidence"
        attachment = {
            "name": "book.pdf",
            "contentType": "application/pdf",
            "data": base64.b64encode(data).decode(),
        }
        status, case = await admin.call("POST", f"{base}/{cid}/attachments", attachment, token)
        assert status == 200 and case["attachments"][0]["size"] == len(data)
        reader = admin.token(["auditor"])
        att = case["attachments"][0]["attachmentId"]
        status, raw = await admin.call("GET", f"{base}/{cid}/attachments/{att}", token=reader)
        assert (status, raw) == (200, data)
        status, listed = await admin.call("GET", f"{base}?state=OPEN", token=reader)
        assert [c["caseId"] for c in listed["cases"]] == [cid]
        status, case = await admin.call(
            "POST",
            f"{base}/{cid}/close",
            {"disposition": "REPORTED", "reason": "reported to the authority"},
            token,
        )
        assert (status, case["state"], case["disposition"]) == (200, "CLOSED", "REPORTED")
        assert [a["state"] for a in case["alerts"]] == ["CLOSED", "CLOSED"]
        status, three = await admin.call("GET", "/v1/surveillance/alerts/3", token=reader)
        assert three["state"] == "OPEN"
        assert [h["action"] for h in case["history"]] == [
            "open", "assign", "comment", "attach", "close",
        ]  # fmt: skip
        # a closed case refuses changes
        for path, change in (
            ("comments", {"text": "late"}),
            ("assign", {"operator": "carol"}),
            ("close", {"disposition": "MONITORED", "reason": "again"}),
        ):
            status, refused = await admin.call("POST", f"{base}/{cid}/{path}", change, token)
            assert status == 409 and "closed" in refused["msg"], path
        status, again = await admin.call("GET", f"{base}/{cid}", token=reader)
        assert again == case
        subject = f"case {cid}"
        assert admin.staff("case.") == [
            ("case.open", subject, "ok"),
            ("case.assign", subject, "ok"),
            ("case.comment", subject, "ok"),
            ("case.attach", subject, "ok"),
            ("case.close", subject, "ok"),
            ("case.comment", subject, "refused"),
            ("case.assign", subject, "refused"),
            ("case.close", subject, "refused"),
        ]
        # an alert already closed with its case cannot open another case
        status, _ = await admin.call("POST", base, {"alertIds": [1], "title": "x"}, token)
        assert status == 409

    run(tmp_path, body, url)


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        await admin.raise_alerts(wash("a"))
        token = admin.token(["compliance"])
        base = "/v1/surveillance/cases"
        for sent, status, name in (
            ({"alertIds": [1]}, 400, "title"),
            ({"alertIds": "1", "title": "x"}, 400, "alertIds"),
            ({"alertIds": [True], "title": "x"}, 400, "alertIds"),
            ({"alertIds": [], "title": "x"}, 400, "alertIds"),
            ({"alertIds": [1], "title": "   "}, 400, "title"),
            ({"alertIds": [1], "title": 5}, 400, "title"),
            ({"alertIds": [1], "title": "x", "extra": 1}, 400, "extra"),
            ({"alertIds": [1, 77], "title": "x"}, 404, "77"),
            ([1], 400, "object"),
        ):
            got, refused = await admin.call("POST", base, sent, token)
            assert (got, name in refused["msg"]) == (status, True), (sent, refused)
        async with admin.http.post(
            base, data=b"{not json", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 400
        status, listed = await admin.call("GET", base, token=token)
        assert listed["cases"] == []
        assert (await admin.call("GET", "/v1/surveillance/alerts/1", token=token))[1][
            "state"
        ] == "OPEN"
        _, case = await admin.call("POST", base, {"alertIds": [1], "title": "x"}, token)
        cid = case["caseId"]
        for path, sent, name in (
            ("assign", {}, "operator"),
            ("comments", {"text": ""}, "text"),
            ("attachments", {"name": "a", "contentType": "text/plain", "data": "%%"}, "data"),
            (
                "attachments",
                {"name": "a", "contentType": "text/plain", "data": "QUFB" * 11_000},
                "data",
            ),
            ("close", {"disposition": "MAYBE", "reason": "r"}, "disposition"),
            ("close", {"disposition": "MONITORED"}, "reason"),
        ):
            status, refused = await admin.call("POST", f"{base}/{cid}/{path}", sent, token)
            assert status == 400 and name in refused["msg"], (path, refused)
        for path in (f"{base}/99", f"{base}/99/stor.json"):
            assert (await admin.call("GET", path, token=token))[0] == 404
        status, _ = await admin.call("POST", f"{base}/99/comments", {"text": "x"}, token)
        assert status == 404
        assert (await admin.call("GET", f"{base}?state=SHUT", token=token))[0] == 400
        _, case = await admin.call("GET", f"{base}/{cid}", token=token)
        assert (case["comments"], case["attachments"], case["state"]) == ([], [], "OPEN")
        assert [h["action"] for h in case["history"]] == ["open"]

    run(tmp_path, body)


def test_a_case_exports_as_a_stor_in_json_and_html(tmp_path: Path, url: str) -> None:
    async def body(admin: Admin) -> None:
        operator = admin.token(["operator"])
        grouping = {"owner": 1001, "stpDefault": "EXPIRE_TAKER"}
        status, done = await admin.call("POST", "/v1/accounts/1002", grouping, operator)
        assert (status, done["events"][0]["type"]) == (200, "AccountConfigured")
        await admin.raise_alerts(wash(), wash("spoof", type=AlertType.SPOOFING, accounts=(1003,)))
        token = admin.token(["compliance"])
        base = "/v1/surveillance/cases"
        _, case = await admin.call("POST", base, {"alertIds": [1, 2], "title": "t"}, token)
        cid = case["caseId"]
        await admin.call("POST", f"{base}/{cid}/comments", {"text": "both legs same owner"}, token)
        attachment = {"name": "n.txt", "contentType": "text/plain", "data": "aGk="}
        await admin.call("POST", f"{base}/{cid}/attachments", attachment, token)
        reader = admin.token(["auditor"])
        status, stor = await admin.call("GET", f"{base}/{cid}/stor.json", token=reader)
        assert status == 200, stor
        sections = [
            "submitter",
            "transactionsAndOrders",
            "suspicion",
            "personsInvolved",
            "additionalInformation",
            "documentationAttached",
        ]
        assert [stor[name]["section"] for name in sections] == [1, 2, 3, 4, 5, 6]
        assert stor["submitter"]["entityName"] == "venue"
        assert stor["submitter"]["actingCapacity"] == "operating a trading venue"
        dealings = stor["transactionsAndOrders"]
        assert [i["instrument"] for i in dealings["instruments"]] == ["BTC-USDT"]
        order = dealings["orders"][0]
        assert (order["side"], order["price"], order["quantity"], order["orderType"]) == (
            "BUY", "65000.10", "0.25", "LIMIT",
        )  # fmt: skip
        assert order["time"] == "2025-12-06T05:46:40.000Z" and order["venue"] == "venue"
        assert dealings["transactions"][0]["accounts"] == [1001, 1002]
        assert {n["type"] for n in stor["suspicion"]["nature"]} == {"WASH_TRADE", "SPOOFING"}
        assert stor["suspicion"]["analysis"][0]["text"] == "both legs same owner"
        persons = stor["personsInvolved"]
        assert persons["accounts"] == [1001, 1002, 1003]
        assert persons["ownerGroups"] == [
            {"owner": 1001, "accounts": [1001, 1002]},
            {"owner": 1003, "accounts": [1003]},
        ]
        assert stor["documentationAttached"]["attachments"][0]["name"] == "n.txt"
        assert stor["additionalInformation"]["history"][-1]["action"] == "export"
        status, page = await admin.call("GET", f"{base}/{cid}/stor.html", token=reader)
        assert status == 200
        text = page.decode()
        for n in range(1, 7):
            assert f"Section {n} &mdash;" in text
        for words in (
            "Identity of entity/person submitting the STOR",
            "Description of the nature of the suspicion",
            "65000.10",
            "2025-12-06T05:46:40.000Z",
            "both legs same owner",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ):
            assert words in text, words
        lowered = text.lower()
        assert "<script" not in lowered and "http://" not in lowered and "https://" not in lowered
        assert "src=" not in lowered and "<link" not in lowered
        assert admin.staff("case.export") == [
            ("case.export", f"case {cid} stor.json", "ok"),
            ("case.export", f"case {cid} stor.html", "ok"),
        ]
        status, _ = await admin.call("GET", f"{base}/{cid}/stor.json", token=operator)
        assert status == 403

    run(tmp_path, body, url)


def test_the_running_venue_keeps_alerts_under_its_data_folder_and_serves_them(
    tmp_path: Path,
) -> None:
    """The composition root's parts: the store opened under ``data_dir``, its writer running,
    served by the admin API; an alert raised is listed within the 10 s promised."""
    from venue.parts import AdminPart, AlertStorePart, Parts, VenuePart

    async def main() -> None:
        config = load_config(DEFAULT_CONFIG_PATH)
        admin_config = AdminConfig("127.0.0.1", 0, approvals=ApprovalsConfig(1, {}))
        config = dataclasses.replace(
            config, data_dir=tmp_path / "data", admin=admin_config, ledger=None, rest=None
        )
        parts = Parts()
        venue = VenuePart(config)
        await parts.start(venue)
        alerts = AlertStorePart(venue.venue, config)
        await parts.start(alerts)
        assert alerts.store is not None
        admin = AdminPart(venue.venue, config, None, alerts=alerts.store)
        await parts.start(admin)
        try:
            raised = asyncio.get_running_loop().time()
            alerts.store.raise_alert(wash())
            headers = {"Authorization": f"Bearer {admin.token}"}
            async with aiohttp.ClientSession(admin.url, headers=headers) as http:
                while True:
                    async with http.get("/v1/surveillance/alerts") as response:
                        assert response.status == 200
                        if (await response.json())["alerts"]:
                            break
                    assert asyncio.get_running_loop().time() - raised < 10
                    await asyncio.sleep(0.05)
        finally:
            await parts.stop()
        assert (tmp_path / "data" / "surveillance" / "surveillance.sqlite").is_file()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_console_lists_the_compliance_pages_and_serves_them(tmp_path: Path) -> None:
    """The console's index loads the chart and the pages after its own script; both, and their
    style sheet, are served to anyone (they hold no data) with their types."""

    async def body(admin: Admin) -> None:
        status, index = await admin.call("GET", "/console/")
        assert status == 200
        text = index.decode()
        own = text.index('src="/console/app.js"')
        chart = text.index('<script src="/console/pages/chart.js" defer></script>')
        pages = text.index('<script src="/console/pages/compliance.js" defer></script>')
        assert own < chart < pages
        for path, kind, mark in (
            ("/console/pages/chart.js", "text/javascript", "window.MarketChart"),
            ("/console/pages/compliance.js", "text/javascript", 'id: "alerts"'),
            ("/console/pages/compliance.css", "text/css", ".ladder-order"),
        ):
            async with admin.http.get(path) as response:
                assert response.status == 200, path
                assert response.content_type == kind, path
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert mark in await response.text(), path
        assert (await admin.call("GET", "/console/pages/other.js"))[0] == 404

    run(tmp_path, body)
