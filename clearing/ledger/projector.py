"""The projector: writes batches of clearing events into the ledger, idempotently by sequence
number, on PostgreSQL (psycopg 3) or SQLite.

``apply`` writes, in one database transaction, every command of the batch with a seq above the
stored ``projector_state.last_seq``, then moves that mark to the batch's last seq. Re-applying an
old or overlapping batch changes nothing. Two projectors on one database are serialised by the
state row: ``SELECT ... FOR UPDATE`` on PostgreSQL (the mark is re-read under the lock), ``BEGIN
IMMEDIATE`` on SQLite; the primary keys ``(seq, idx)`` are the last line of defence.

How it writes, and why. Measured with ``python -m bench.settlement`` (2 vCPU VM, PostgreSQL 15
on the same host, 200,000 trades of 8 postings each, batches of 2,000 trades):

- The schema (migration 0002): postings carry no primary key, no btree and no foreign key,
  only ``BRIN (seq)``; a raw COPY of 400,000 posting rows ran at ~690k rows/s without index,
  ~500k with BRIN, ~300k with the primary key, ~130k with the key and the ``(account_id,
  seq)`` btree. Uniqueness: ``ledger_transactions``' primary key ``(seq, idx)`` is written in
  the same database transaction (a duplicate fails the whole batch, postings included) and the
  mark is moved under its row lock. Account ids are only those resolved from
  ``ledger_accounts`` (reconciliation reports any other). Per batch, one
  ``ledger_account_activity`` row per account posted to (first and last seq) is the
  per-account index the statements use.
- PostgreSQL, four round trips and the commit: the mark under ``FOR UPDATE``; the postings'
  binary ``COPY``, built piece by piece (``_PIECE`` commands) so that the server inserts one
  piece while Python builds the next (a batch that names an unknown account is rolled back
  and done again whole, its accounts created first: only new participants pay for it); the
  transactions' binary ``COPY``; one statement for the balances (``ON CONFLICT DO UPDATE``,
  ``RETURNING`` the ones below zero for the no-negative rule), the activity rows and the
  mark. Postings are no longer sorted by account: that only helped the btree.
- The commit does not wait for the WAL flush (``synchronous_commit`` off for this
  transaction only, unless ``synchronous_commit=True``): the ledger is a projection of the
  journal and its mark moves in the same transaction, so a commit lost in a crash is simply
  applied again from the journal by ``catch_up``. Measured: no difference above the noise.
- Figures (``bench.settlement``, quiet machine): 32,000 to 35,500 trades/s with batches of
  10,000 trades, 2.0 to 2.2 times a raw COPY of the same rows with the same index; 18,000 to
  19,600 with batches of 2,000 (2.7 times). Previously (key, btree and foreign key): 5,400.
  Python is the rest of the gap: ``build`` about 10 us a trade.
- SQLite: ``executemany`` inserts and upserts, indexes on ``(seq)`` and ``(account_id,
  seq)``; 10,600 trades/s in a WAL database.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from clearing.ledger.postings import (
    POSTING_COLUMNS,
    TRANSACTION_COLUMNS,
    AccountKey,
    BatchItem,
    Built,
    LedgerError,
    build,
    may_go_negative,
)
from clearing.ledger.schema import (
    VENUE_KINDS,
    VENUE_OWNER,
    ledger_accounts,
    ledger_assets,
    projector_state,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Key of the advisory lock that serialises migrations of one PostgreSQL database.
_MIGRATE_LOCK = 0x4C454447  # "LEDG"
_KEY_CHUNK = 300  # account keys per lookup (3 bind parameters each)

_TXN_COPY = (
    f"COPY ledger_transactions ({', '.join(TRANSACTION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)
_TXN_TYPES = [
    "int8", "int4", "varchar", "int8", "varchar", "varchar", "int8", "int8", "int8", "int8",
    "bool", "int8",
]  # fmt: skip
_POSTING_COPY = f"COPY ledger_postings ({', '.join(POSTING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
POSTING_TYPES = ["int8", "int4", "int2", "int4", "varchar", "int8", "varchar"]
#: Commands per piece of a batch built and streamed into the postings' COPY: the server
#: inserts one piece while Python builds the next.
_PIECE = 512
#: The mark under its row lock; on request, this transaction's commit without waiting for the
#: WAL flush (see ``Projector``), set in the same round trip.
_PG_LOCK = (
    "SELECT last_seq, set_config('synchronous_commit', %s, true) FROM projector_state"
    " WHERE name = %s FOR UPDATE"
)
#: The rest of a batch in one statement (one round trip): balances (``RETURNING`` filtered to
#: those below zero checks the no-negative rule), the activity rows and the mark.
_PG_FINISH = """
WITH up AS (
    INSERT INTO ledger_balances (account_id, balance, last_seq)
    SELECT * FROM unnest(%(a)s::integer[], %(d)s::bigint[], %(l)s::bigint[])
    ON CONFLICT (account_id) DO UPDATE
    SET balance = ledger_balances.balance + excluded.balance,
        last_seq = GREATEST(ledger_balances.last_seq, excluded.last_seq)
    RETURNING account_id, balance
), activity AS (
    INSERT INTO ledger_account_activity (account_id, from_seq, to_seq)
    SELECT * FROM unnest(%(a)s::integer[], %(f)s::bigint[], %(l)s::bigint[])
), mark AS (
    UPDATE projector_state SET last_seq = %(mark)s WHERE name = %(name)s
)
SELECT account_id, balance FROM up WHERE balance < 0
"""
_PG_MARK = "UPDATE projector_state SET last_seq = %s WHERE name = %s"
_SQLITE_TXN = (
    f"INSERT INTO ledger_transactions ({', '.join(TRANSACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(TRANSACTION_COLUMNS))})"
)
_SQLITE_POSTING = (
    f"INSERT INTO ledger_postings ({', '.join(POSTING_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(POSTING_COLUMNS))})"
)
_SQLITE_ACTIVITY = (
    "INSERT INTO ledger_account_activity (account_id, from_seq, to_seq) VALUES (?, ?, ?)"
)
_SQLITE_BALANCES = (
    "INSERT INTO ledger_balances (account_id, balance, last_seq) VALUES (?, ?, ?) "
    "ON CONFLICT (account_id) DO UPDATE SET balance = balance + excluded.balance, "
    "last_seq = max(last_seq, excluded.last_seq)"
)


def _pg_array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of integers."""
    return "{" + ",".join(map(str, values)) + "}"


class _Unresolved(Exception):
    """A piece of a streamed batch names ledger accounts the cache does not know."""


class EventSource(Protocol):
    """What ``catch_up`` reads: ``engine.replay.Replayer`` is one."""

    def events(
        self, after_seq: int, until_seq: int | None = None
    ) -> Iterator[tuple[int, int, list[Any]]]: ...


def make_engine(url: str) -> Engine:
    """An engine for the ledger: SQLite gets ``BEGIN IMMEDIATE`` transactions (one writer at a
    time, taken at the start), foreign keys on, WAL and a generous busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            # Switching a database to WAL takes an exclusive lock and SQLite does not wait for
            # it (no busy handler there): when another connection is in a transaction it fails
            # at once with "database is locked", so wait for it here.
            deadline = time.monotonic() + 60
            while True:
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url)


def migrate(connection: Connection) -> None:
    """Bring the ledger's tables to the newest migration (idempotent) on ``connection``,
    inside its transaction."""
    from alembic import command
    from alembic.config import Config

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


class Projector:
    """Settles batches of ``(seq, ts, events)`` into the ledger at ``url`` (see the module doc).

    ``assets`` maps each asset to its decimals (written to ``ledger_assets``; the venue's own
    accounts are created for each). One instance may be used from any thread, one call at a
    time (calls are serialised by a lock)."""

    def __init__(
        self,
        url: str,
        *,
        assets: Mapping[str, int] = {},
        name: str = "ledger",
        synchronous_commit: bool = False,
    ) -> None:
        if not name or len(name) > 64:
            raise ValueError(f"projector name {name!r} must be 1 to 64 characters")
        self.url = url
        self.name = name
        self.assets = dict(assets)
        self.synchronous_commit = synchronous_commit
        self.engine = make_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._ids: dict[AccountKey, int] = {}
        self._lock = threading.Lock()
        self._ready = False

    # ------------------------------------------------------------------ set-up
    def migrate(self) -> None:
        """Create or upgrade the tables (Alembic, idempotent), this projector's state row, the
        assets given and the venue's accounts for each."""
        with self._lock, self.engine.begin() as conn:
            migrate(conn)
            ins = pg_insert if self.postgres else sqlite_insert
            conn.execute(
                ins(projector_state)
                .values(name=self.name, last_seq=0)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            for asset, decimals in sorted(self.assets.items()):
                stmt = ins(ledger_assets).values(asset=asset, decimals=decimals)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["asset"], set_={"decimals": stmt.excluded.decimals}
                    )
                )
            keys = [
                (kind, VENUE_OWNER, asset) for asset in sorted(self.assets) for kind in VENUE_KINDS
            ]
            ids = self._resolve(conn, keys)
        self._remember(ids)
        self._ready = True

    def _ensure_ready(self) -> None:
        if not self._ready:
            self.migrate()

    # ------------------------------------------------------------------ reading
    def last_seq(self) -> int:
        """The last seq applied (0 before any)."""
        self._ensure_ready()
        with self.engine.connect() as conn:
            value = conn.execute(
                select(projector_state.c.last_seq).where(projector_state.c.name == self.name)
            ).scalar()
            conn.rollback()
        return int(value or 0)

    # ------------------------------------------------------------------ writing
    def apply(self, batch: Sequence[BatchItem]) -> int:
        """Apply the commands of ``batch`` (``(seq, ts, events)`` in increasing seq) that come
        after the stored mark, in one database transaction, and move the mark to the batch's
        last seq; returns the mark. Raises ``LedgerError`` (and writes nothing) when the batch
        would take an account below zero that may not go there, or holds an invalid event."""
        self._ensure_ready()
        prev = 0
        for item in batch:
            if item[0] <= prev:
                raise LedgerError(f"batch not in increasing seq order: {item[0]} after {prev}")
            prev = item[0]
        if self.postgres:
            try:
                return self._apply_pg(batch, stream=True)
            except _Unresolved:
                # new ledger accounts: that transaction is rolled back, and the batch is
                # built whole, its accounts created, then written
                return self._apply_pg(batch, stream=False)
        return self._apply_sqlite(batch)

    def catch_up(self, source: EventSource, *, batch_size: int = 1000) -> int:
        """Apply everything ``source`` (a ``Replayer`` over the journal) has after
        ``last_seq()``, ``batch_size`` commands a batch; returns the new mark."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        mark = self.last_seq()
        batch: list[BatchItem] = []
        for item in source.events(mark):
            batch.append(item)
            if len(batch) >= batch_size:
                mark = self.apply(batch)
                batch = []
        if batch:
            mark = self.apply(batch)
        return mark

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _lock_mark(self, conn: Connection) -> int:
        """The stored mark, read under the state row's lock (the whole transaction's lock on
        SQLite, taken by BEGIN IMMEDIATE)."""
        stmt = select(projector_state.c.last_seq).where(projector_state.c.name == self.name)
        if self.postgres:
            stmt = stmt.with_for_update()
        value = conn.execute(stmt).scalar()
        if value is None:
            raise LedgerError(f"projector state {self.name!r} is missing: run migrate()")
        return int(value)

    def _resolve(self, conn: Connection, keys: Iterable[AccountKey]) -> dict[AccountKey, int]:
        """Ids of the accounts ``keys``, creating the missing ones."""
        wanted = list(keys)
        if not wanted:
            return {}
        ins = pg_insert if self.postgres else sqlite_insert
        conn.execute(
            ins(ledger_accounts).on_conflict_do_nothing(index_elements=["kind", "owner", "asset"]),
            [
                {"kind": k, "owner": o, "asset": a, "may_go_negative": may_go_negative((k, o, a))}
                for k, o, a in wanted
            ],
        )
        t = ledger_accounts.c
        found: dict[AccountKey, int] = {}
        for i in range(0, len(wanted), _KEY_CHUNK):
            chunk = wanted[i : i + _KEY_CHUNK]
            rows = conn.execute(
                select(t.id, t.kind, t.owner, t.asset).where(
                    tuple_(t.kind, t.owner, t.asset).in_(chunk)
                )
            )
            for acc_id, kind, owner, asset in rows:
                found[(kind, int(owner), asset)] = int(acc_id)
        lost = [k for k in wanted if k not in found]
        if lost:
            raise LedgerError(f"ledger accounts could not be created: {lost[:5]}")
        return found

    def _remember(self, ids: Mapping[AccountKey, int]) -> None:
        """Cache account ids once the transaction that made them is committed."""
        for key, acc_id in ids.items():
            self._ids[key] = acc_id

    def _refuse_negatives(
        self, negatives: list[tuple[int, int]], new_ids: Mapping[AccountKey, int]
    ) -> None:
        if not negatives:
            return
        keys = {v: k for k, v in self._ids.items()}
        keys.update({v: k for k, v in new_ids.items()})
        bad = [
            (keys.get(acc_id, acc_id), balance)
            for acc_id, balance in negatives
            if acc_id not in keys or not may_go_negative(keys[acc_id])
        ]
        if bad:
            shown = ", ".join(f"{k} at {b}" for k, b in bad[:5])
            raise LedgerError(
                f"batch refused: {len(bad)} account(s) that may not go below zero would: {shown}"
            )

    def _apply_pg(self, batch: Sequence[BatchItem], *, stream: bool) -> int:
        """One batch on PostgreSQL, in four round trips and the commit: the mark under its
        lock, the postings' COPY (with ``stream``, built piece by piece while the server
        inserts the previous piece; raises ``_Unresolved`` at the first unknown account), the
        transactions' COPY, and one statement for the balances, activity rows and mark."""
        new_ids: dict[AccountKey, int] = {}
        with self._lock, self.engine.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cur:
                cur.execute(_PG_LOCK, ("on" if self.synchronous_commit else "off", self.name))
                row = cur.fetchone()
                if row is None:
                    raise LedgerError(f"projector state {self.name!r} is missing: run migrate()")
                mark = int(row[0])
                if not batch or batch[-1][0] <= mark:
                    return mark
                first = 0
                while batch[first][0] <= mark:
                    first += 1
                items = batch[first:] if first else batch
                built = Built()
                ids = self._ids
                if not stream:  # (no other statement may run once the COPY has begun)
                    build(items, ids, built)
                    if built.missing:
                        new_ids = self._resolve(conn, sorted(built.missing))
                        built.resolve(new_ids)
                with cur.copy(_POSTING_COPY) as copy:
                    copy.set_types(POSTING_TYPES)
                    write = copy.write_row
                    if stream:
                        rows = built.postings
                        for i in range(0, len(items), _PIECE):
                            start = len(rows)
                            build(items[i : i + _PIECE], ids, built)
                            if built.missing:
                                raise _Unresolved
                            for prow in rows[start:]:
                                write(prow)
                    else:
                        for prow in built.postings:
                            write(prow)
                last = batch[-1][0]
                if not built.transactions:
                    cur.execute(_PG_MARK, (last, self.name))
                    return last
                with cur.copy(_TXN_COPY) as copy:
                    copy.set_types(_TXN_TYPES)
                    write = copy.write_row
                    for trow in built.transactions:
                        write(trow)
                # The arrays as text ('{1,2,3}'): psycopg's list dumper cost 6 us a trade.
                touched = built.touched.items()
                cur.execute(
                    _PG_FINISH,
                    {
                        "a": _pg_array(a for a, _ in touched),
                        "d": _pg_array(t[0] for _, t in touched),
                        "f": _pg_array(t[1] for _, t in touched),
                        "l": _pg_array(t[2] for _, t in touched),
                        "mark": last,
                        "name": self.name,
                    },
                )
                negatives = [(int(a), int(b)) for a, b in cur.fetchall()]
                self._refuse_negatives(negatives, new_ids)
        self._remember(new_ids)
        return last

    def _apply_sqlite(self, batch: Sequence[BatchItem]) -> int:
        with self._lock, self.engine.begin() as conn:
            mark = self._lock_mark(conn)
            if not batch or batch[-1][0] <= mark:
                return mark
            first = 0
            while batch[first][0] <= mark:
                first += 1
            built = build(batch[first:] if first else batch, self._ids)
            new_ids: dict[AccountKey, int] = {}
            if built.missing:
                new_ids = self._resolve(conn, sorted(built.missing))
                built.resolve(new_ids)
            negatives = self._write_sqlite(conn, built)
            self._refuse_negatives(negatives, new_ids)
            last = batch[-1][0]
            conn.execute(
                projector_state.update()
                .where(projector_state.c.name == self.name)
                .values(last_seq=last)
            )
        self._remember(new_ids)
        return last

    def _write_sqlite(self, conn: Connection, built: Built) -> list[tuple[int, int]]:
        if not built.transactions:
            return []
        conn.exec_driver_sql(_SQLITE_TXN, built.transactions)
        conn.exec_driver_sql(_SQLITE_POSTING, built.postings)
        conn.exec_driver_sql(
            _SQLITE_BALANCES,
            [(a, t[0], t[2]) for a, t in built.touched.items()],
        )
        conn.exec_driver_sql(_SQLITE_ACTIVITY, [(a, t[1], t[2]) for a, t in built.touched.items()])
        rows = conn.exec_driver_sql(
            "SELECT account_id, balance FROM ledger_balances WHERE balance < 0"
        )
        touched = built.touched
        return [(int(a), int(b)) for a, b in rows if a in touched]
