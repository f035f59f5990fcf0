"""The alert and case store: SQL through SQLAlchemy 2 (SQLite under the data folder by default,
PostgreSQL by URL in production), its tables made and upgraded by Alembic when it opens.

Alerts. ``AlertStore`` is an ``AlertSink``: ``raise_alert`` only queues the alert (in memory,
under a lock: safe on the venue's event loop and from any thread) and a writer thread
(``start``) writes what is queued every ``interval_s`` (0.2 s), in one transaction per batch. A
batch that cannot be written stays queued, in order, and is tried again at the next tick;
``flush`` waits until what was raised before it is written, ``close`` writes the rest. An alert
is stored by its ``key``: the first time as a new alert (state ``OPEN``, count 1); again, the
one alert is updated (window widened to the earliest ``from`` and the latest ``to``; score,
evidence, summary and ``last_seq`` replaced; count raised; ``updatedAt`` now; accounts not yet
named added). The upsert is one statement (``INSERT ... ON CONFLICT (key) DO UPDATE``), so
two writers of one database never make two alerts of one behaviour.

States: ``OPEN``, ``IN_CASE`` (held by an open case), ``CLOSED`` (its case closed). A behaviour
raised again after its case closed is not lost: the alert opens again (state ``OPEN``, no
case), its count raised; the closed case keeps the alert as it was when it closed.

Cases: opened from one or more ``OPEN`` alerts, assigned, commented, given attachments, and
closed with a disposition and a reason; each step is a line of the case's history. A closed
case refuses changes (``Conflict``).

Every other method is blocking database work: call it from a worker thread
(``asyncio.to_thread``), never on the venue's loop. One store may be used from many threads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, create_engine, event, exists, func, null, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from surveillance.alertquery import CLOSED, IN_CASE, OPEN, AlertQuery
from surveillance.alerts import Alert, AlertSink, AlertType
from surveillance.storeconfig import default_url
from surveillance.storeschema import (
    alert_accounts,
    alerts,
    case_alerts,
    case_attachments,
    case_comments,
    case_history,
    cases,
)

__all__ = [
    "DISPOSITIONS",
    "MAX_ATTACHMENT",
    "AlertPage",
    "AlertStore",
    "Conflict",
    "Invalid",
    "NotFound",
    "StoreError",
    "check_alert",
    "default_url",
]

log = logging.getLogger("surveillance.store")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Key of the advisory lock that serialises migrations of one PostgreSQL database.
_MIGRATE_LOCK = 0x53555256  # "SURV"
#: How a case may close.
DISPOSITIONS = ("FALSE_POSITIVE", "MONITORED", "ESCALATED", "REPORTED")
CASE_OPEN, CASE_CLOSED = "OPEN", "CLOSED"
#: Largest attachment (bytes, decoded); the admin API reads request bodies up to 64 KiB.
MAX_ATTACHMENT = 32 * 1024
MAX_TITLE = 200
MAX_TEXT = 4000
MAX_NAME = 200
MAX_ALERTS_PER_CASE = 100
#: The execution option of a read-only connection (SQLite: a deferred BEGIN).
_READING = "surveillance_reading"
#: Largest batch written in one transaction by the writer thread.
_BATCH = 500


class StoreError(Exception):
    """The database cannot be used (answered 503). ``transient``: it may work again (the server
    or the file is unavailable, a lock); otherwise the database refused what was written."""

    def __init__(self, msg: str, transient: bool = True) -> None:
        super().__init__(msg)
        self.transient = transient


class NotFound(Exception):
    """No such alert, case or attachment (404)."""


class Conflict(Exception):
    """The change does not fit the state: a closed case, an alert already in a case (409)."""


class Invalid(ValueError):
    """A field that cannot be used (400); ``field`` names it."""

    def __init__(self, field: str, msg: str) -> None:
        self.field = field
        super().__init__(msg)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_engine(url: str) -> Engine:
    """SQLite: its folder made, WAL, foreign keys on, ``BEGIN IMMEDIATE`` transactions (one
    writer at a time, taken at the start, so a read-then-write never meets a lock upgrade)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN is ours
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        deadline = time.monotonic() + 30
        while True:  # switching to WAL does not wait for a lock: wait here
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        reading = conn.get_execution_options().get(_READING, False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def migrate(connection: Connection) -> None:
    """Bring the store's tables to the newest migration (idempotent), inside the connection's
    transaction; concurrent openers of one PostgreSQL database take turns."""
    from alembic import command
    from alembic.config import Config

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[dict[str, Any]]
    #: where the next page starts (``AlertQuery.cursor``), None on the last page
    next: tuple[int, int] | None


def check_alert(alert: Alert) -> str:
    """Why ``alert`` cannot be stored ("" when it can): the columns' bounds, a known type,
    whole numbers that fit in 64 bits, a finite score, evidence JSON can carry."""
    if not isinstance(alert.key, str) or not 0 < len(alert.key) <= 200:
        return "its key must be 1 to 200 characters"
    if str(alert.type) not in AlertType.__members__:
        return f"unknown type {str(alert.type)[:40]!r}"
    if not isinstance(alert.symbol, str) or len(alert.symbol) > 32:
        return "its symbol must be at most 32 characters"
    numbers = (*alert.accounts, alert.from_ms, alert.to_ms, alert.first_seq, alert.last_seq)
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**63 for n in numbers):
        return "accounts, times and seqs must be whole numbers from 0 to 2**63-1"
    if not isinstance(alert.score, int | float) or not math.isfinite(alert.score):
        return "its score must be a finite number"
    try:
        json.dumps(alert.evidence, default=str)
    except (TypeError, ValueError) as exc:
        return f"its evidence is not JSON: {exc}"
    return ""


def _alert_json(row: RowMapping) -> dict[str, Any]:
    return {
        "alertId": row["id"],
        "key": row["key"],
        "type": row["type"],
        "symbol": row["symbol"],
        "accounts": json.loads(row["accounts"]),
        "fromTime": row["from_ms"],
        "toTime": row["to_ms"],
        "score": round(float(row["score"]), 2),
        "summary": row["summary"],
        "state": row["state"],
        "count": row["count"],
        "caseId": row["case_id"],
        "createdAt": row["created_ms"],
        "updatedAt": row["updated_ms"],
        "firstSeq": row["first_seq"],
        "lastSeq": row["last_seq"],
        "evidence": json.loads(row["evidence"]),
    }


def _case_json(row: RowMapping, alert_ids: list[int]) -> dict[str, Any]:
    return {
        "caseId": row["id"],
        "title": row["title"],
        "state": row["state"],
        "operator": row["operator"] or None,
        "disposition": row["disposition"] or None,
        "reason": row["reason"],
        "createdBy": row["created_by"],
        "createdAt": row["created_ms"],
        "updatedAt": row["updated_ms"],
        "closedBy": row["closed_by"] or None,
        "closedAt": row["closed_ms"],
        "alertIds": alert_ids,
    }


def _text(field: str, value: str, maximum: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, f"Parameter '{field}' must be a non-empty string.")
    if len(value) > maximum:
        raise Invalid(field, f"Parameter '{field}' must be {maximum} characters or fewer.")
    return value.strip()


class AlertStore(AlertSink):
    """The store at ``url`` (see the module doc); ``clock`` gives epoch ms (``createdAt``,
    ``updatedAt``, a case's times). ``open`` before use (``AlertStore.connect`` does both)."""

    def __init__(
        self, url: str, *, clock: Callable[[], int] = _now_ms, interval_s: float = 0.2
    ) -> None:
        self.url = url
        self.clock = clock
        self.interval_s = interval_s
        self.engine = make_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._queue: deque[Alert] = deque()
        self._cond = threading.Condition()
        self._raised = 0  # alerts ever queued
        self._written = 0  # of which written (in order)
        self._kick = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: the last write failure, cleared by the next good write
        self.last_error: str = ""
        #: alerts dropped by the writer: they could never be stored (logged)
        self.rejected = 0

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> AlertStore:
        store = cls(url, **kwargs)
        store.open()
        return store

    def open(self) -> None:
        """Create or upgrade the tables; ``StoreError`` when the database cannot be used."""
        try:
            with self.engine.begin() as conn:
                migrate(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"the surveillance store cannot be opened: {exc}") from exc

    # ------------------------------------------------------------------ the live path
    def raise_alert(self, alert: Alert) -> None:
        """Queue ``alert`` (never blocks on the database); written within ``interval_s`` by the
        writer thread."""
        with self._cond:
            self._queue.append(alert)
            self._raised += 1

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="alert-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every alert raised before this call is written (by the writer thread if
        it runs, else here); whether it was, within ``timeout_s``."""
        if self._thread is None:
            self._write_queued()
            with self._cond:
                return not self._queue
        with self._cond:
            target = self._raised
            self._kick = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._written >= target, timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (within ``timeout_s``), stop the writer and let go of the
        database."""
        thread = self._thread
        if thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            thread.join(timeout_s)
            self._thread = None
        else:
            self._write_queued()
        with self._cond:
            if self._queue:
                log.error("surveillance: %d alerts could not be written", len(self._queue))
        self.engine.dispose()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._kick or self._stopping, self.interval_s)
                self._kick = False
                stopping = self._stopping
            try:
                self._write_queued()
            except Exception as exc:  # a bug must not stop the writer: the queue stays
                self._failed(StoreError(f"the alert writer failed: {exc!r}"))
                log.exception("surveillance: the alert writer failed")
            if stopping:
                return  # whatever could not be written, close reports

    def _write_queued(self) -> bool:
        """Write the queue in batches, oldest first; False when the database could not be
        used (what is left stays queued, in order). An alert that can never be stored (see
        ``check_alert``; or one the database refuses) is logged, counted in ``rejected`` and
        dropped, so that it cannot hold back the alerts behind it."""
        while True:
            with self._cond:
                batch = [self._queue[i] for i in range(min(_BATCH, len(self._queue)))]
            if not batch:
                return True
            bad = {i for i, a in enumerate(batch) if self._rejects(a, check_alert(a))}
            if bad:  # out of the queue at once (only this thread takes from its head)
                batch = [a for i, a in enumerate(batch) if i not in bad]
                with self._cond:
                    for _ in range(len(batch) + len(bad)):
                        self._queue.popleft()
                    self._queue.extendleft(reversed(batch))
                    self._written += len(bad)
                    self._cond.notify_all()
            try:
                self.write(batch)
                done = len(batch)
            except StoreError as exc:
                if exc.transient:
                    self._failed(exc)
                    return False
                done = self._one_by_one(batch)
            self._done(done)
            if done < len(batch):
                return False
            self.last_error = ""

    def _one_by_one(self, batch: list[Alert]) -> int:
        """Write ``batch`` an alert at a time, dropping those the database refuses; how many
        were dealt with before it could not be used."""
        for n, alert in enumerate(batch):
            try:
                self.write([alert])
            except StoreError as exc:
                if exc.transient:
                    self._failed(exc)
                    return n
                self._rejects(alert, str(exc))
        return len(batch)

    def _rejects(self, alert: Alert, problem: str) -> bool:
        if problem:
            self.rejected += 1
            log.error("surveillance: alert %.80r dropped: %s", alert.key, problem)
        return bool(problem)

    def _failed(self, exc: StoreError) -> None:
        if self.last_error != str(exc):
            log.error("surveillance: alerts not written yet: %s", exc)
        self.last_error = str(exc)

    def _done(self, n: int) -> None:
        with self._cond:
            for _ in range(n):
                self._queue.popleft()
            self._written += n
            self._cond.notify_all()

    # ------------------------------------------------------------------ writing alerts
    def write(self, batch: Iterable[Alert]) -> None:
        """Store ``batch`` now, in one transaction (batch runs; the writer thread); ``Invalid``
        for an alert that cannot be stored (nothing written)."""
        alerts_ = list(batch)
        for alert in alerts_:
            problem = check_alert(alert)
            if problem:
                raise Invalid("alert", problem)
        try:
            with self.engine.begin() as conn:
                now = self.clock()
                for alert in alerts_:
                    self._upsert(conn, alert, now)
        except SQLAlchemyError as exc:
            transient = isinstance(exc, OperationalError | InterfaceError) or bool(
                getattr(exc, "connection_invalidated", False)
            )
            msg = f"the surveillance store cannot be written: {exc}"
            raise StoreError(msg, transient) from exc

    def _upsert(self, conn: Connection, alert: Alert, now: int) -> None:
        ins = pg_insert if self.postgres else sqlite_insert
        lo, hi = (func.least, func.greatest) if self.postgres else (func.min, func.max)
        accounts = sorted(set(alert.accounts))
        stmt = ins(alerts).values(
            key=alert.key,
            type=str(alert.type),
            symbol=alert.symbol,
            accounts=json.dumps(accounts),
            from_ms=alert.from_ms,
            to_ms=alert.to_ms,
            score=float(alert.score),
            summary=alert.summary,
            evidence=json.dumps(alert.evidence, default=str),
            first_seq=alert.first_seq,
            last_seq=alert.last_seq,
            state=OPEN,
            count=1,
            case_id=None,
            created_ms=now,
            updated_ms=now,
        )
        new = stmt.excluded
        closed = alerts.c.state == CLOSED
        upsert = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "from_ms": lo(alerts.c.from_ms, new.from_ms),
                "to_ms": hi(alerts.c.to_ms, new.to_ms),
                "score": new.score,
                "summary": new.summary,
                "evidence": new.evidence,
                "first_seq": lo(alerts.c.first_seq, new.first_seq),
                "last_seq": new.last_seq,
                "count": alerts.c.count + 1,
                "updated_ms": new.updated_ms,
                # a behaviour seen again after its case closed is open again, in no case
                "state": sql_case((closed, OPEN), else_=alerts.c.state),
                "case_id": sql_case((closed, null()), else_=alerts.c.case_id),
            },
            # a raise from journal records the store has seen (the detectors catch up from
            # the journal at every start) changes nothing
            where=alerts.c.last_seq < new.last_seq,
        ).returning(alerts.c.id, alerts.c.accounts, alerts.c.count)
        row = conn.execute(upsert).first()
        if row is None:
            return
        alert_id, stored, count = int(row[0]), set(json.loads(row[1])), int(row[2])
        fresh = accounts if count == 1 else [a for a in accounts if a not in stored]
        if fresh:
            conn.execute(
                ins(alert_accounts)
                .values([{"alert_id": alert_id, "account": a} for a in fresh])
                .on_conflict_do_nothing(index_elements=["alert_id", "account"])
            )
        if count > 1 and fresh:
            merged = json.dumps(sorted(stored | set(fresh)))
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(accounts=merged))

    # ------------------------------------------------------------------ reading alerts
    def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert; ``NotFound`` if there is none with that id."""
        with self._read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFound(f"No alert {alert_id}.")
        return _alert_json(row)

    def alerts(self, query: AlertQuery) -> AlertPage:
        """A page of the alerts ``query`` selects, newest updated first (then highest id)."""
        where = []
        if query.type is not None:
            where.append(alerts.c.type == query.type)
        if query.symbol is not None:
            where.append(alerts.c.symbol == query.symbol)
        if query.state is not None:
            where.append(alerts.c.state == query.state)
        if query.from_ms is not None:
            where.append(alerts.c.to_ms >= query.from_ms)
        if query.to_ms is not None:
            where.append(alerts.c.from_ms <= query.to_ms)
        if query.account is not None:
            where.append(
                exists().where(
                    alert_accounts.c.alert_id == alerts.c.id,
                    alert_accounts.c.account == query.account,
                )
            )
        if query.cursor is not None:
            updated, last_id = query.cursor
            where.append(
                or_(
                    alerts.c.updated_ms < updated,
                    and_(alerts.c.updated_ms == updated, alerts.c.id < last_id),
                )
            )
        stmt = (
            select(alerts)
            .where(*where)
            .order_by(alerts.c.updated_ms.desc(), alerts.c.id.desc())
            .limit(query.limit + 1)
        )
        with self._read() as conn:
            rows = list(conn.execute(stmt).mappings())
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = (rows[-1]["updated_ms"], rows[-1]["id"]) if more and rows else None
        return AlertPage([_alert_json(r) for r in rows], cursor)

    def _read(self) -> _Reading:
        return _Reading(self.engine)

    # ------------------------------------------------------------------ cases
    def open_case(self, alert_ids: Sequence[int], title: str, by: str) -> dict[str, Any]:
        """A new case holding ``alert_ids`` (each ``OPEN``; they become ``IN_CASE``)."""
        title = _text("title", title, MAX_TITLE)
        ids = list(dict.fromkeys(alert_ids))
        if not ids or len(ids) > MAX_ALERTS_PER_CASE:
            raise Invalid("alertIds", f"Parameter 'alertIds' must list 1 to {MAX_ALERTS_PER_CASE}.")
        with self._write() as conn:
            found = {
                int(r.id): r.state
                for r in conn.execute(
                    self._locked(select(alerts.c.id, alerts.c.state).where(alerts.c.id.in_(ids)))
                )
            }
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"No alert {missing[0]}.")
            busy = [i for i in ids if found[i] != OPEN]
            if busy:
                raise Conflict(f"Alert {busy[0]} is {found[busy[0]]}, not OPEN.")
            now = self.clock()
            case_id = int(
                conn.execute(
                    cases.insert()
                    .values(
                        title=title,
                        state=CASE_OPEN,
                        operator="",
                        disposition="",
                        reason="",
                        created_by=by,
                        created_ms=now,
                        updated_ms=now,
                        closed_by="",
                        closed_ms=None,
                    )
                    .returning(cases.c.id)
                ).scalar_one()
            )
            conn.execute(case_alerts.insert(), [{"case_id": case_id, "alert_id": i} for i in ids])
            conn.execute(
                update(alerts).where(alerts.c.id.in_(ids)).values(state=IN_CASE, case_id=case_id)
            )
            self._history(conn, case_id, now, by, "open", f"alerts {' '.join(map(str, ids))}")
        return self.case(case_id)

    def cases(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every case (of ``state``), newest first."""
        stmt = select(cases).order_by(cases.c.id.desc())
        if state is not None:
            stmt = stmt.where(cases.c.state == state)
        with self._read() as conn:
            rows = list(conn.execute(stmt).mappings())
            held: dict[int, list[int]] = {}
            for link in conn.execute(
                select(case_alerts.c.case_id, case_alerts.c.alert_id).order_by(
                    case_alerts.c.alert_id
                )
            ):
                held.setdefault(int(link.case_id), []).append(int(link.alert_id))
        return [_case_json(r, held.get(r["id"], [])) for r in rows]

    def case(self, case_id: int) -> dict[str, Any]:
        """A case with its alerts (as they were when it closed, if it did), comments,
        attachments (without their data) and history."""
        with self._read() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
            if row is None:
                raise NotFound(f"No case {case_id}.")
            links = list(
                conn.execute(
                    select(case_alerts.c.alert_id, case_alerts.c.snapshot)
                    .where(case_alerts.c.case_id == case_id)
                    .order_by(case_alerts.c.alert_id)
                )
            )
            live = {
                int(r["id"]): _alert_json(r)
                for r in conn.execute(
                    select(alerts).where(alerts.c.id.in_([int(link[0]) for link in links]))
                ).mappings()
            }
            comments = [
                {"commentId": r.id, "time": r.time_ms, "author": r.author, "text": r.text}
                for r in conn.execute(
                    select(case_comments)
                    .where(case_comments.c.case_id == case_id)
                    .order_by(case_comments.c.id)
                )
            ]
            attachments = [
                {
                    "attachmentId": r.id,
                    "time": r.time_ms,
                    "author": r.author,
                    "name": r.name,
                    "contentType": r.content_type,
                    "size": r.size,
                    "sha256": r.sha256,
                }
                for r in conn.execute(
                    select(*(c for c in case_attachments.c if c.name != "data"))
                    .where(case_attachments.c.case_id == case_id)
                    .order_by(case_attachments.c.id)
                )
            ]
            history = [
                {"time": r.time_ms, "actor": r.actor, "action": r.action, "detail": r.detail}
                for r in conn.execute(
                    select(case_history)
                    .where(case_history.c.case_id == case_id)
                    .order_by(case_history.c.id)
                )
            ]
        shown = [
            json.loads(snapshot) if snapshot is not None else live[int(alert_id)]
            for alert_id, snapshot in links
        ]
        body = _case_json(row, [int(link[0]) for link in links])
        body.update(alerts=shown, comments=comments, attachments=attachments, history=history)
        return body

    def assign(self, case_id: int, operator: str, by: str) -> dict[str, Any]:
        operator = _text("operator", operator, 64)
        with self._write() as conn:
            now = self._open_case(conn, case_id)
            conn.execute(
                update(cases).where(cases.c.id == case_id).values(operator=operator, updated_ms=now)
            )
            self._history(conn, case_id, now, by, "assign", operator)
        return self.case(case_id)

    def comment(self, case_id: int, text: str, by: str) -> dict[str, Any]:
        text = _text("text", text, MAX_TEXT)
        with self._write() as conn:
            now = self._open_case(conn, case_id)
            comment_id = conn.execute(
                case_comments.insert()
                .values(case_id=case_id, time_ms=now, author=by, text=text)
                .returning(case_comments.c.id)
            ).scalar_one()
            conn.execute(update(cases).where(cases.c.id == case_id).values(updated_ms=now))
            self._history(conn, case_id, now, by, "comment", f"comment {comment_id}")
        return self.case(case_id)

    def attach(
        self, case_id: int, name: str, content_type: str, data_b64: str, by: str
    ) -> dict[str, Any]:
        """Attach a file given as base64 (``MAX_ATTACHMENT`` bytes at most, decoded)."""
        name = _text("name", name, MAX_NAME)
        content_type = _text("contentType", content_type, 100)
        if not isinstance(data_b64, str) or len(data_b64) > (MAX_ATTACHMENT + 2) // 3 * 4:
            raise Invalid(
                "data", f"Parameter 'data' must be base64 of {MAX_ATTACHMENT} bytes or fewer."
            )
        try:
            data = base64.b64decode(data_b64, validate=True)
        except ValueError:
            raise Invalid("data", "Parameter 'data' must be base64.") from None
        if len(data) > MAX_ATTACHMENT:
            raise Invalid(
                "data", f"Parameter 'data' must be base64 of {MAX_ATTACHMENT} bytes or fewer."
            )
        digest = hashlib.sha256(data).hexdigest()
        with self._write() as conn:
            now = self._open_case(conn, case_id)
            attachment_id = conn.execute(
                case_attachments.insert()
                .values(
                    case_id=case_id,
                    time_ms=now,
                    author=by,
                    name=name,
                    content_type=content_type,
                    size=len(data),
                    sha256=digest,
                    data=data,
                )
                .returning(case_attachments.c.id)
            ).scalar_one()
            conn.execute(update(cases).where(cases.c.id == case_id).values(updated_ms=now))
            detail = f"attachment {attachment_id} {name} ({len(data)} bytes, sha256 {digest})"
            self._history(conn, case_id, now, by, "attach", detail)
        return self.case(case_id)

    def attachment(self, case_id: int, attachment_id: int) -> tuple[str, str, bytes]:
        """An attachment's name, content type and bytes."""
        with self._read() as conn:
            row = conn.execute(
                select(case_attachments).where(
                    case_attachments.c.case_id == case_id, case_attachments.c.id == attachment_id
                )
            ).first()
        if row is None:
            raise NotFound(f"No attachment {attachment_id} in case {case_id}.")
        return row.name, row.content_type, bytes(row.data)

    def close_case(self, case_id: int, disposition: str, reason: str, by: str) -> dict[str, Any]:
        """Close the case: its alerts ``CLOSED``, each kept in the case as it is now."""
        if disposition not in DISPOSITIONS:
            raise Invalid(
                "disposition", f"Parameter 'disposition' must be one of {', '.join(DISPOSITIONS)}."
            )
        reason = _text("reason", reason, MAX_TEXT)
        with self._write() as conn:
            now = self._open_case(conn, case_id)
            ids = [
                int(r[0])
                for r in conn.execute(
                    select(case_alerts.c.alert_id).where(case_alerts.c.case_id == case_id)
                )
            ]
            conn.execute(
                update(alerts)
                .where(alerts.c.id.in_(ids), alerts.c.case_id == case_id)
                .values(state=CLOSED)
            )
            for row in conn.execute(select(alerts).where(alerts.c.id.in_(ids))).mappings():
                snapshot = _alert_json(row)
                snapshot["state"] = CLOSED
                conn.execute(
                    update(case_alerts)
                    .where(case_alerts.c.case_id == case_id, case_alerts.c.alert_id == row["id"])
                    .values(snapshot=json.dumps(snapshot))
                )
            conn.execute(
                update(cases)
                .where(cases.c.id == case_id)
                .values(
                    state=CASE_CLOSED,
                    disposition=disposition,
                    reason=reason,
                    closed_by=by,
                    closed_ms=now,
                    updated_ms=now,
                )
            )
            self._history(conn, case_id, now, by, "close", disposition)
        return self.case(case_id)

    def record_export(self, case_id: int, what: str, by: str) -> None:
        """A line in the case's history: ``what`` was exported (the STOR)."""
        with self._write() as conn:
            if conn.execute(select(cases.c.id).where(cases.c.id == case_id)).first() is None:
                raise NotFound(f"No case {case_id}.")
            self._history(conn, case_id, self.clock(), by, "export", what)

    # ------------------------------------------------------------------ helpers
    def _write(self) -> _Writing:
        return _Writing(self.engine)

    def _locked(self, stmt: Any) -> Any:
        return stmt.with_for_update() if self.postgres else stmt

    def _open_case(self, conn: Connection, case_id: int) -> int:
        """Lock the case; ``NotFound`` or ``Conflict`` (closed); the time now."""
        row = conn.execute(self._locked(select(cases.c.state).where(cases.c.id == case_id))).first()
        if row is None:
            raise NotFound(f"No case {case_id}.")
        if row.state != CASE_OPEN:
            raise Conflict(f"Case {case_id} is closed: it cannot change.")
        return self.clock()

    @staticmethod
    def _history(
        conn: Connection, case_id: int, now: int, actor: str, action: str, detail: str
    ) -> None:
        conn.execute(
            case_history.insert().values(
                case_id=case_id, time_ms=now, actor=actor, action=action, detail=detail
            )
        )


class _Writing:
    """A write transaction whose database failures become ``StoreError``."""

    def __init__(self, engine: Engine) -> None:
        self._begin = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._begin.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"the surveillance store cannot be used: {exc}") from exc

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._begin.__exit__(*exc_info)
        except SQLAlchemyError as exc:
            raise StoreError(f"the surveillance store cannot be used: {exc}") from exc
        if isinstance(exc_info[1], SQLAlchemyError):
            raise StoreError(f"the surveillance store cannot be used: {exc_info[1]}") from exc_info[
                1
            ]


class _Reading(_Writing):
    """Reads: a plain connection (no ``BEGIN IMMEDIATE`` on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._begin = engine.connect().execution_options(**{_READING: True})  # type: ignore[assignment]
