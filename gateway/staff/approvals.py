"""Four eyes: requests that wait for other operators before they are carried out.

A dangerous admin request (a large balance adjustment, lifting the kill switch; custody's
withdrawals later) is validated completely, then kept here as PENDING instead of being
executed. It is carried out once ``required`` distinct operators holding the ``approver`` role,
never the requester, have each approved it with a fresh TOTP code (m of n: any ``required`` of
the approvers). Anyone with the permission may reject it, which ends it. What is kept is the
request as the door read it (its path and fields), so the approved request is built again by
the same code and meets the same rules at the moment it runs.

States: PENDING -> APPROVED (enough approvals; about to run) -> EXECUTED (the command is
journaled; its seq is kept) or FAILED (it could not be journaled, the venue said why);
PENDING -> REJECTED. An approval left APPROVED by a crash between the two records is shown as
such: whether its command reached the journal is answered there (its origin's request id is
``approval:<id>``), never by running it again.

The store is an append-only JSON-lines log, ``approvals.log`` beside ``staff.log`` (same
patterns as ``gateway.staff.operators``: one ``write()`` per record, fsynced, replayed at open,
a torn last line cut), one process writing it: the venue.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.secretfile import fsync_dir

__all__ = [
    "APPROVED",
    "EXECUTED",
    "FAILED",
    "LOG_NAME",
    "PENDING",
    "REJECTED",
    "Approval",
    "ApprovalError",
    "ApprovalStore",
]

LOG_NAME = "approvals.log"
PENDING = "PENDING"
APPROVED = "APPROVED"
EXECUTED = "EXECUTED"
FAILED = "FAILED"
REJECTED = "REJECTED"
STATES = (PENDING, APPROVED, EXECUTED, FAILED, REJECTED)
#: Longest free text kept (a reason, a result message).
MAX_TEXT = 300


class ApprovalError(ValueError):
    """A refused step (unknown id, not pending, the requester approving...); one line."""


@dataclass(slots=True)
class Approval:
    """One request waiting for (or past) its approvals."""

    approval_id: int
    action: str  # what it is: "adjustment", "kill_switch.lift"...
    summary: str  # one line for people: "adjust account 1001 by -20000 USDT"
    method: str
    path: str
    fields: dict[str, str]
    requester: str
    required: int
    created_ms: int
    status: str = PENDING
    approvals: list[tuple[str, int]] = field(default_factory=list)  # (operator, ms)
    closed_by: str = ""
    closed_ms: int = 0
    result: str = ""  # EXECUTED: "seq N"; FAILED/REJECTED: why
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        """The API's view of it (camelCase)."""
        return {
            "approvalId": self.approval_id,
            "action": self.action,
            "summary": self.summary,
            "status": self.status,
            "requester": self.requester,
            "required": self.required,
            "approvals": [{"operator": who, "time": ms} for who, ms in self.approvals],
            "createdMs": self.created_ms,
            "closedBy": self.closed_by,
            "closedMs": self.closed_ms,
            "result": self.result,
            "seq": self.seq,
            "request": {"method": self.method, "path": self.path, "fields": self.fields},
        }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: object) -> str:
    return " ".join(str(value).split())[:MAX_TEXT]


class ApprovalStore:
    """The approvals of ``directory`` (``<data_dir>/staff``)."""

    def __init__(self, directory: Path, *, clock: Callable[[], int] = _now_ms) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[int, Approval] = {}
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
            fsync_dir(self.directory.parent)
        self.path = self.directory / LOG_NAME
        self._replay()

    # -- reading ----------------------------------------------------------------------------

    def get(self, approval_id: int) -> Approval | None:
        return self._items.get(approval_id)

    def list(self, status: str | None = None, limit: int = 500) -> list[Approval]:
        """Newest first, those in ``status`` only when given."""
        found = [a for a in reversed(self._items.values()) if status in (None, a.status)]
        return found[:limit]

    # -- steps ------------------------------------------------------------------------------

    def create(
        self,
        action: str,
        summary: str,
        method: str,
        path: str,
        fields: dict[str, str],
        requester: str,
        required: int,
    ) -> Approval:
        if required < 1:
            raise ApprovalError("an approval needs at least one approver")
        with self._lock:
            approval_id = max(self._items, default=0) + 1
            record: dict[str, Any] = {
                "op": "create",
                "id": approval_id,
                "action": _text(action),
                "summary": _text(summary),
                "method": method,
                "path": path,
                "fields": {str(k): str(v) for k, v in fields.items()},
                "requester": requester,
                "required": required,
            }
            self._write(record)
            return self._items[approval_id]

    def approve(self, approval_id: int, operator: str) -> Approval:
        """Add ``operator``'s approval; APPROVED once there are enough. The requester never
        approves their own request, nor does anyone approve twice."""
        with self._lock:
            item = self._pending(approval_id)
            if operator == item.requester:
                raise ApprovalError("the requester cannot approve their own request")
            if any(who == operator for who, _ in item.approvals):
                raise ApprovalError(f"{operator} has approved this request already")
            self._write({"op": "approve", "id": approval_id, "by": operator})
            return item

    def reject(self, approval_id: int, operator: str, reason: str) -> Approval:
        with self._lock:
            self._pending(approval_id)
            self._write({"op": "reject", "id": approval_id, "by": operator, "why": _text(reason)})
            return self._items[approval_id]

    def executed(self, approval_id: int, seq: int) -> Approval:
        with self._lock:
            self._write({"op": "executed", "id": approval_id, "seq": seq})
            return self._items[approval_id]

    def failed(self, approval_id: int, why: str) -> Approval:
        with self._lock:
            self._write({"op": "failed", "id": approval_id, "why": _text(why)})
            return self._items[approval_id]

    # -- internals --------------------------------------------------------------------------

    def _pending(self, approval_id: int) -> Approval:
        item = self._items.get(approval_id)
        if item is None:
            raise ApprovalError(f"no approval {approval_id}")
        if item.status != PENDING:
            raise ApprovalError(f"approval {approval_id} is {item.status}, not PENDING")
        return item

    def _write(self, record: dict[str, Any]) -> None:
        record = {"t": self._clock(), **record}
        data = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.directory)
        self._apply(record)

    def _replay(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line: the write it belonged to never returned
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        for number, raw in enumerate(_lines(data[:end]), 1):
            try:
                self._apply(json.loads(raw))
            except (ValueError, TypeError, KeyError) as exc:
                raise ApprovalError(f"{self.path} line {number} is damaged: {exc}") from None

    def _apply(self, record: dict[str, Any]) -> None:
        t = int(record["t"])
        op = record["op"]
        approval_id = int(record["id"])
        if op == "create":
            if approval_id in self._items:
                raise ValueError(f"creates approval {approval_id} twice")
            self._items[approval_id] = Approval(
                approval_id,
                str(record["action"]),
                str(record["summary"]),
                str(record["method"]),
                str(record["path"]),
                {str(k): str(v) for k, v in dict(record["fields"]).items()},
                str(record["requester"]),
                int(record["required"]),
                t,
            )
            return
        item = self._items[approval_id]
        if op == "approve":
            item.approvals.append((str(record["by"]), t))
            if len(item.approvals) >= item.required:
                item.status = APPROVED
        elif op == "reject":
            item.status, item.closed_by, item.closed_ms = REJECTED, str(record["by"]), t
            item.result = str(record["why"])
        elif op == "executed":
            item.status, item.closed_ms, item.seq = EXECUTED, t, int(record["seq"])
            item.result = f"seq {item.seq}"
        elif op == "failed":
            item.status, item.closed_ms, item.result = FAILED, t, str(record["why"])
        else:
            raise ValueError(f"unknown op {op!r}")


def _lines(data: bytes) -> Iterator[str]:
    for raw in data.split(b"\n")[:-1]:
        yield raw.decode("utf-8")
