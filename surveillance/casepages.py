"""Surveillance's alerts and cases on the admin API (the composition root adds the routes with
their permissions, as for the audit trail: ``surveillance.pages``).

Alerts (``surveillance.read``):

- ``GET /v1/surveillance/alerts?type=&symbol=&account=&from=&to=&state=&limit=&cursor=``:
  ``{"alerts": [...], "next": the next page's URL or null}``, newest updated first, 100 a page
  by default (``surveillance.alertquery``);
- ``GET /v1/surveillance/alerts/{alertId}``.

Cases (reading: ``surveillance.read``; every change: ``cases.write``):

- ``POST /v1/surveillance/cases`` ``{"alertIds": [...], "title"}``: a case from ``OPEN``
  alerts, which go ``IN_CASE``;
- ``GET /v1/surveillance/cases?state=OPEN|CLOSED``, ``GET /v1/surveillance/cases/{caseId}``
  (its alerts, comments, attachments and history);
- ``POST .../assign`` ``{"operator"}``, ``POST .../comments`` ``{"text"}``,
  ``POST .../attachments`` ``{"name", "contentType", "data"}`` (base64, 32 KiB at most),
  ``GET .../attachments/{attachmentId}`` (the file, as a download), ``POST .../close``
  ``{"disposition": FALSE_POSITIVE|MONITORED|ESCALATED|REPORTED, "reason"}`` (its alerts go
  ``CLOSED``);
- ``GET .../stor.json`` and ``GET .../stor.html``: the case as a suspicious transaction and
  order report (``surveillance.stor``).

Every change and every export is a staff event (``case.open`` ... ``case.close``,
``case.export``; subject ``case <id>``), handed to ``audit`` (the admin API's: it chains it),
refusals too (outcome ``refused``); so is a list of one account's alerts (``view``, subject
``account <n>``, as the admin API records a look at an account's data). Errors are the admin
API's ``{"code", "msg"}``: 400 naming the field, 404 for an unknown id, 409 for a change a closed
case (or an alert already in a case) refuses, 503 when the database cannot be used. The store's
blocking work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from surveillance.alertquery import QueryError, parse_alert_query
from surveillance.pages import Route, static_script
from surveillance.stor import Entity, build_stor, stor_html
from surveillance.store import (
    CASE_CLOSED,
    CASE_OPEN,
    AlertStore,
    Conflict,
    Invalid,
    NotFound,
    StoreError,
)

__all__ = ["CASES_WRITE", "COMPLIANCE_SCRIPTS", "SURVEILLANCE_READ", "AlertPages"]

#: The permissions (``gateway.staff.roles.Permission``): reading alerts and cases, changing cases.
SURVEILLANCE_READ = "surveillance.read"
CASES_WRITE = "cases.write"
_INTERNAL, _MANDATORY, _UNKNOWN_PARAM, _INVALID_PARAM, _NOT_FOUND = -1001, -1102, -1103, -1130, -1
_ID = re.compile(r"[1-9][0-9]{0,17}")
_BASE = "/v1/surveillance"
#: The console's compliance pages (alerts, one alert and its market chart, cases, order-to-trade
#: ratios): the chart first, the pages using it after; static, served from ``static/``.
COMPLIANCE_SCRIPTS = ("/console/pages/chart.js", "/console/pages/compliance.js")
#: Their style sheet, which ``chart.js`` links (the console's CSP allows this origin's).
COMPLIANCE_STYLE = "/console/pages/compliance.css"

#: Records a staff event of a request: (request, action, subject, outcome).
Audit = Callable[[web.Request, str, str, str], None]
#: Who is calling: (operator name, address).
Caller = Callable[[web.Request], tuple[str, str]]
#: Each account's owner group, as the venue groups them (for the STOR's section 4).
Owners = Callable[[list[int]], Awaitable[Mapping[int, int]]]
T = TypeVar("T")


class _Refused(Exception):
    def __init__(self, code: int, msg: str, status: int) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _remote(request: web.Request) -> tuple[str, str]:
    return "", request.remote or ""


async def _own_owners(accounts: list[int]) -> Mapping[int, int]:
    return {}


def _error(exc: _Refused) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)


def _id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not _ID.fullmatch(text):
        raise _Refused(_INVALID_PARAM, f"Parameter '{name}' must be a positive whole number.", 400)
    return int(text)


async def _body(request: web.Request, names: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of the request, with only ``names`` in it (each required)."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused(_INVALID_PARAM, f"The request body is not valid JSON: {exc}.", 400) from None
    if not isinstance(body, dict):
        raise _Refused(_INVALID_PARAM, "The request body must be a JSON object.", 400)
    for name in body:
        if name not in names:
            shown = " ".join(repr(name)[:40].split())
            raise _Refused(_UNKNOWN_PARAM, f"Parameter {shown} is not known here.", 400)
    for name in names:
        if name not in body:
            raise _Refused(_MANDATORY, f"Mandatory parameter '{name}' was not sent.", 400)
    return body


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise _Refused(_INVALID_PARAM, f"Parameter '{name}' must be a string.", 400)
    return value


def _alert_ids(body: Mapping[str, Any]) -> list[int]:
    value = body["alertIds"]
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in value
    ):
        raise _Refused(_INVALID_PARAM, "Parameter 'alertIds' must be a list of alert ids.", 400)
    return value


class AlertPages:
    """The alerts and cases of ``store`` (opened, its writer started by the caller), and the
    console's pages over them (``script_urls``).
    ``audit``: where staff events go; ``caller``: who calls (operator, address); ``entity``: the
    venue as the STOR names it; ``owners``: the accounts' owner groups (none: each its own)."""

    def __init__(
        self,
        store: AlertStore,
        audit: Audit = lambda request, action, subject, outcome: None,
        caller: Caller = _remote,
        entity: Entity | None = None,
        owners: Owners = _own_owners,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.store = store
        self.audit = audit
        self.caller = caller
        self.entity = entity if entity is not None else Entity()
        self.owners = owners
        self.clock = clock

    script_urls = COMPLIANCE_SCRIPTS

    def routes(self) -> list[Route]:
        read, write = SURVEILLANCE_READ, CASES_WRITE
        case = f"{_BASE}/cases/{{caseId}}"
        return [
            Route("GET", f"{_BASE}/alerts", self.alerts, read),
            Route("GET", f"{_BASE}/alerts/{{alertId}}", self.alert, read),
            Route("GET", f"{_BASE}/cases", self.cases, read),
            Route("POST", f"{_BASE}/cases", self.open_case, write),
            Route("GET", case, self.case, read),
            Route("POST", f"{case}/assign", self.assign, write),
            Route("POST", f"{case}/comments", self.comment, write),
            Route("POST", f"{case}/attachments", self.attach, write),
            Route("GET", f"{case}/attachments/{{attachmentId}}", self.attachment, read),
            Route("POST", f"{case}/close", self.close, write),
            Route("GET", f"{case}/stor.json", self.stor_json, read),
            Route("GET", f"{case}/stor.html", self.stor_html, read),
            *(
                Route("GET", url, static_script(url.rsplit("/", 1)[1]), "")
                for url in (*COMPLIANCE_SCRIPTS, COMPLIANCE_STYLE)
            ),
        ]

    def add_routes(self, app: web.Application) -> None:
        """Add the routes without any permission check (tests; a venue without logins)."""
        for route in self.routes():
            app.router.add_route(route.method, route.path, route.handler)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """The store in a worker thread; its refusals as the API's errors."""
        try:
            return await asyncio.to_thread(fn, *args)
        except Invalid as exc:
            raise _Refused(_INVALID_PARAM, str(exc), 400) from None
        except NotFound as exc:
            raise _Refused(_NOT_FOUND, str(exc), 404) from None
        except Conflict as exc:
            raise _Refused(_INVALID_PARAM, str(exc), 409) from None
        except StoreError as exc:
            raise _Refused(_INTERNAL, str(exc), 503) from None

    # ------------------------------------------------------------------ alerts
    async def alerts(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/alerts``."""
        params = {name: request.query.getall(name) for name in request.query}
        try:
            query = parse_alert_query(params)
            page = await self._call(self.store.alerts, query)
        except QueryError as exc:
            return _error(_Refused(_INVALID_PARAM, str(exc), 400))
        except _Refused as exc:
            return _error(exc)
        if query.account is not None:  # a look at an account's data, as the admin API's own
            self.audit(request, "view", f"account {query.account}", "ok")
        link = f"{request.path}?{query.params(page.next)}" if page.next is not None else None
        return web.json_response({"alerts": page.alerts, "next": link})

    async def alert(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/alerts/{alertId}``."""
        try:
            return web.json_response(await self._call(self.store.alert, _id(request, "alertId")))
        except _Refused as exc:
            return _error(exc)

    # ------------------------------------------------------------------ cases: reading
    async def cases(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/cases[?state=OPEN|CLOSED]``."""
        unknown = [name for name in request.query if name != "state"]
        if unknown:
            shown = " ".join(repr(unknown[0])[:40].split())
            return _error(_Refused(_UNKNOWN_PARAM, f"Parameter {shown} is not known here.", 400))
        states = request.query.getall("state", [])
        if len(states) > 1 or (states and states[0] not in (CASE_OPEN, CASE_CLOSED)):
            msg = f"Parameter 'state' must be {CASE_OPEN} or {CASE_CLOSED}, once."
            return _error(_Refused(_INVALID_PARAM, msg, 400))
        try:
            found = await self._call(self.store.cases, states[0] if states else None)
        except _Refused as exc:
            return _error(exc)
        return web.json_response({"cases": found})

    async def case(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/cases/{caseId}``."""
        try:
            return web.json_response(await self._call(self.store.case, _id(request, "caseId")))
        except _Refused as exc:
            return _error(exc)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """``GET .../attachments/{attachmentId}``: the file, always as a download (never shown
        in the console's origin, whatever type it claims)."""
        try:
            case_id, attachment_id = _id(request, "caseId"), _id(request, "attachmentId")
            name, content_type, data = await self._call(
                self.store.attachment, case_id, attachment_id
            )
        except _Refused as exc:
            return _error(exc)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "attachment"
        return web.Response(
            body=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{safe}"',
                "X-Content-Type-Options": "nosniff",
                "X-Declared-Content-Type": re.sub(r"[^ -~]", "?", content_type),
                "Cache-Control": "no-store",
            },
        )

    # ------------------------------------------------------------------ cases: changes
    async def _change(
        self,
        request: web.Request,
        action: str,
        names: tuple[str, ...],
        work: Callable[[int | None, dict[str, Any], str], Awaitable[dict[str, Any]]],
        has_case: bool = True,
    ) -> web.StreamResponse:
        """Read the body, run ``work(case id, body, operator)``, record the staff event (the
        outcome ``ok`` or ``refused``) and answer the case."""
        by = self.caller(request)[0] or "?"
        subject = "case"
        try:
            case_id = _id(request, "caseId") if has_case else None
            subject = f"case {case_id}" if case_id is not None else "case"
            body = await _body(request, names)
            result = await work(case_id, body, by)
        except _Refused as exc:
            self.audit(request, action, subject, "refused")
            return _error(exc)
        self.audit(request, action, f"case {result['caseId']}", "ok")
        return web.json_response(result)

    async def open_case(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/surveillance/cases``."""

        async def work(_: int | None, body: dict[str, Any], by: str) -> dict[str, Any]:
            ids, title = _alert_ids(body), _string(body, "title")
            return await self._call(self.store.open_case, ids, title, by)

        return await self._change(request, "case.open", ("alertIds", "title"), work, False)

    async def assign(self, request: web.Request) -> web.StreamResponse:
        async def work(case_id: int | None, body: dict[str, Any], by: str) -> dict[str, Any]:
            return await self._call(self.store.assign, case_id, _string(body, "operator"), by)

        return await self._change(request, "case.assign", ("operator",), work)

    async def comment(self, request: web.Request) -> web.StreamResponse:
        async def work(case_id: int | None, body: dict[str, Any], by: str) -> dict[str, Any]:
            return await self._call(self.store.comment, case_id, _string(body, "text"), by)

        return await self._change(request, "case.comment", ("text",), work)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        async def work(case_id: int | None, body: dict[str, Any], by: str) -> dict[str, Any]:
            name, kind = _string(body, "name"), _string(body, "contentType")
            data = _string(body, "data")
            return await self._call(self.store.attach, case_id, name, kind, data, by)

        return await self._change(request, "case.attach", ("name", "contentType", "data"), work)

    async def close(self, request: web.Request) -> web.StreamResponse:
        async def work(case_id: int | None, body: dict[str, Any], by: str) -> dict[str, Any]:
            disposition, reason = _string(body, "disposition"), _string(body, "reason")
            return await self._call(self.store.close_case, case_id, disposition, reason, by)

        return await self._change(request, "case.close", ("disposition", "reason"), work)

    # ------------------------------------------------------------------ the STOR
    async def _stor(self, request: web.Request, form: str) -> dict[str, Any] | web.Response:
        by = self.caller(request)[0] or "?"
        try:
            case_id = _id(request, "caseId")
        except _Refused as exc:
            return _error(exc)
        subject = f"case {case_id}"
        try:
            if request.query:
                raise _Refused(_UNKNOWN_PARAM, "The STOR takes no parameter.", 400)
            # recorded in the case before it is built, so the report lists its own export
            await self._call(self.store.record_export, case_id, f"STOR {form}", by)
            case = await self._call(self.store.case, case_id)
        except _Refused as exc:
            self.audit(request, "case.export", subject, "refused")
            return _error(exc)
        self.audit(request, "case.export", f"{subject} stor.{form}", "ok")
        accounts = sorted({int(a) for alert in case["alerts"] for a in alert["accounts"]})
        owners = await self.owners(accounts)
        return build_stor(case, self.entity, owners, by=by, now_ms=self.clock())

    async def stor_json(self, request: web.Request) -> web.StreamResponse:
        """``GET .../stor.json``."""
        stor = await self._stor(request, "json")
        if isinstance(stor, web.Response):
            return stor
        return web.json_response(
            stor,
            headers={
                "Content-Disposition": f'attachment; filename="stor-case-{stor["caseId"]}.json"',
                "Cache-Control": "no-store",
            },
        )

    async def stor_html(self, request: web.Request) -> web.StreamResponse:
        """``GET .../stor.html``: a printable page, no script, no external resource."""
        stor = await self._stor(request, "html")
        if isinstance(stor, web.Response):
            return stor
        return web.Response(
            text=stor_html(stor),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )
