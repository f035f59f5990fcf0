"""The admin API's four-eyes endpoints (``gateway.staff.approvals`` keeps the requests).

- A dangerous request (the route's policy says which, ``gateway.admin.app``) is validated, then
  answered 202 ``{"approvalId", "status": "PENDING", ...}`` instead of being run.
- ``GET /v1/approvals[?status=]`` and ``GET /v1/approvals/{approvalId}``: the requests.
- ``POST /v1/approvals/{approvalId}/approve`` ``{"code"}``: an operator with the ``approver``
  role, signed in (a service token cannot approve: it has no second factor), never the
  requester, confirms with a fresh TOTP code. When the approvals reach the number required, the
  request runs at once and the answer carries its result (``{"approval", "result"}``).
- ``POST /v1/approvals/{approvalId}/reject`` ``{"reason"}``: ends it.

Each step is a staff event in the audit trail; the command an approval runs is journaled with
the requester as its principal and ``approval:<id>`` as its request id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.admin.auth import (
    ACCESS,
    UNAUTHORIZED,
    FieldsOf,
    add_route,
    audit,
    call_store,
    caller_ip,
    principal,
)
from gateway.admin.fields import INVALID_PARAM, NOT_FOUND, AdminError, Fields
from gateway.admin.ports import Unavailable, Unjournalable
from gateway.staff.approvals import APPROVED, PENDING, STATES, Approval, ApprovalError
from gateway.staff.roles import Permission

__all__ = ["add_approval_routes", "hold_for_approval"]

Execute = Callable[[web.Request, Approval], Awaitable[dict[str, Any]]]
#: What a rejected approval must undo (a withdrawal's hold), by the approval's action.
OnReject = Callable[[web.Request, Approval], Awaitable[None]]


async def hold_for_approval(
    request: web.Request, fields: Fields, action: str, summary: str
) -> web.Response:
    """Keep the request for approval; 202 with the approval."""
    access = request.app[ACCESS]
    requester = principal(request).name
    item = await call_store(
        access.approvals.create,
        action,
        summary,
        request.method,
        request.path,
        fields.as_strings(),
        requester,
        access.policy.required,
    )
    audit(request, "approval.request", f"approval {item.approval_id}: {summary}", "pending")
    return web.json_response(item.to_json(), status=202)


def add_approval_routes(
    app: web.Application, fields_of: FieldsOf, execute: Execute, on_reject: OnReject | None = None
) -> None:
    access = app[ACCESS]
    approvals = access.approvals

    def find(request: web.Request, f: Fields) -> Approval:
        approval_id = f.integer("approvalId", minimum=1)
        item = approvals.get(approval_id)
        if item is None:
            raise AdminError(NOT_FOUND, f"No approval {approval_id}.", 404)
        return item

    async def listing(request: web.Request) -> web.Response:
        f = await fields_of(request)
        status = f.string("status", "")
        f.finish()
        if status and status not in STATES:
            raise AdminError(
                INVALID_PARAM, f"Parameter 'status' must be one of {', '.join(STATES)}."
            )
        found = approvals.list(status or None)
        return web.json_response({"approvals": [a.to_json() for a in found]})

    async def one(request: web.Request) -> web.Response:
        f = await fields_of(request)
        item = find(request, f)
        f.finish()
        return web.json_response(item.to_json())

    async def approve(request: web.Request) -> web.Response:
        f = await fields_of(request)
        item = find(request, f)
        code = f.string("code")
        f.finish()
        who = principal(request)
        subject = f"approval {item.approval_id}"
        if item.status != PENDING:  # before a code is spent on it
            why = f"approval {item.approval_id} is {item.status}, not PENDING"
            audit(request, "approval.approve", subject, f"refused: {why}")
            raise AdminError(INVALID_PARAM, why, 409)
        if who.kind != "operator":
            audit(request, "approval.approve", subject, "refused: not an operator")
            raise AdminError(
                UNAUTHORIZED, "Only a signed-in operator can approve (a TOTP code is needed).", 403
            )
        refused = await call_store(
            access.store.confirm, who.name, code, caller_ip(request), subject
        )
        if refused is not None:
            audit(request, "approval.approve", subject, f"refused: {refused.reason}")
            raise AdminError(UNAUTHORIZED, "The code is not accepted.", 403)
        try:
            item = await call_store(approvals.approve, item.approval_id, who.name)
        except ApprovalError as exc:
            audit(request, "approval.approve", subject, f"refused: {exc}")
            raise AdminError(INVALID_PARAM, str(exc), 409) from None
        audit(request, "approval.approve", subject, item.status.lower())
        if item.status != APPROVED:
            return web.json_response({"approval": item.to_json()})
        try:
            result = await execute(request, item)
        except AdminError as exc:
            item = await call_store(approvals.failed, item.approval_id, exc.msg)
            raise
        except (Unjournalable, Unavailable) as exc:
            item = await call_store(approvals.failed, item.approval_id, str(exc))
            raise
        item = await call_store(approvals.executed, item.approval_id, int(result["seq"]))
        return web.json_response({"approval": item.to_json(), "result": result})

    async def reject(request: web.Request) -> web.Response:
        f = await fields_of(request)
        item = find(request, f)
        reason = f.string("reason", "")
        f.finish()
        try:
            item = await call_store(
                approvals.reject, item.approval_id, principal(request).name, reason
            )
        except ApprovalError as exc:
            raise AdminError(INVALID_PARAM, str(exc), 409) from None
        audit(request, "approval.reject", f"approval {item.approval_id}", "rejected")
        if on_reject is not None:
            await on_reject(request, item)
        return web.json_response(item.to_json())

    p = Permission
    add_route(app, "GET", "/v1/approvals", listing, p.READ)
    add_route(app, "GET", "/v1/approvals/{approvalId}", one, p.READ)
    add_route(app, "POST", "/v1/approvals/{approvalId}/approve", approve, p.APPROVALS_APPROVE)
    add_route(app, "POST", "/v1/approvals/{approvalId}/reject", reject, p.APPROVALS_APPROVE)
