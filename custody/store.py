"""Custody's own records in SQLite under ``<data_dir>/custody``: deposit addresses, the deposits
seen on chain and what became of each, the recent blocks each watcher scanned (to see a
reorganisation), and the dust (what a deposit held below the venue's unit).

The journal is the truth for balances; this store is the truth for what custody saw and did on
the chains. Every write commits with ``synchronous=FULL`` before custody acts on it, so a crash
never loses a step that was taken. One connection, used from the event loop's thread only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CREDITED", "DROPPED", "DUST", "PENDING", "REVERSED", "CustodyStore", "DepositRow"]

PENDING = "pending"  # seen in a block, fewer confirmations than the asset needs
CREDITED = "credited"  # the venue credited it (ChainDeposit durable)
DROPPED = "dropped"  # a reorganisation removed it before it was credited
REVERSED = "reversed"  # a reorganisation removed it after it was credited; the credit reversed
DUST = "dust"  # smaller than the venue's unit: booked to the dust account, never credited

_SCHEMA = """
create table if not exists addresses (
    chain text not null,
    account integer not null,
    address text not null,
    key_label text not null,
    created_ms integer not null,
    primary key (chain, account),
    unique (chain, address)
);
create table if not exists deposits (
    ref text primary key,
    chain text not null,
    asset text not null,
    account integer not null,
    address text not null,
    txid text not null,
    idx integer not null,
    amount_chain text not null,
    amount integer not null,
    dust text not null,
    height integer,
    block_hash text,
    status text not null,
    seen_ms integer not null,
    credited_seq integer not null default 0,
    updated_ms integer not null,
    credit_ref text not null default '',
    generation integer not null default 0
);
create index if not exists deposits_account on deposits (account, seen_ms);
create index if not exists deposits_status on deposits (chain, status, height);
create table if not exists blocks (
    chain text not null,
    height integer not null,
    hash text not null,
    primary key (chain, height)
);
create table if not exists cursors (
    chain text primary key,
    height integer not null
);
create table if not exists dust (
    asset text primary key,
    amount_chain text not null
);
create table if not exists withdrawals (
    id integer primary key,
    account integer not null,
    client_id text not null,
    asset text not null,
    chain text not null,
    address text not null,
    amount integer not null,
    fee integer not null,
    net_chain text not null,
    status text not null,
    reason text not null default '',
    approval text not null default '',
    batch integer not null default 0,
    txid text not null default '',
    requested_ms integer not null,
    updated_ms integer not null,
    unique (account, client_id)
);
create index if not exists withdrawals_status on withdrawals (status, asset);
create table if not exists batches (
    id integer primary key,
    asset text not null,
    chain text not null,
    status text not null,
    nonce integer,
    raw text not null default '',
    txid text not null default '',
    fee_chain text not null default '0',
    created_ms integer not null,
    updated_ms integer not null
);
create table if not exists cold (
    chain text primary key,
    address text not null,
    batch integer not null default 0
);
create table if not exists whitelist (
    account integer not null,
    chain text not null,
    address text not null,
    label text not null,
    added_ms integer not null,
    primary key (account, chain, address)
);
"""


@dataclass(frozen=True, slots=True)
class DepositRow:
    """A deposit as custody keeps it. ``amount_chain`` in the chain's unit (an ERC-20's or wei
    can exceed 64 bits, hence text in SQL), ``amount`` in the venue's minor units (rounded
    down), ``dust`` the remainder in chain units."""

    ref: str
    chain: str
    asset: str
    account: int
    address: str
    txid: str
    idx: int
    amount_chain: int
    amount: int
    dust: int
    height: int | None
    block_hash: str | None
    status: str
    seen_ms: int
    credited_seq: int
    updated_ms: int
    #: the ref of its credit in force ("" when none) and how many credits it had: a deposit
    #: reversed and mined again is credited under ``<ref>#<generation>``
    credit_ref: str = ""
    generation: int = 0


class CustodyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=full")
        self.db.executescript(_SCHEMA)
        #: chain -> (the addresses table's highest rowid when read, address -> account)
        self._addresses: dict[str, tuple[object, dict[str, int]]] = {}
        self._migrate()

    def _migrate(self) -> None:
        """Columns added after a store was first made (``alter table``, once)."""
        columns = {r[1] for r in self.db.execute("pragma table_info(withdrawals)")}
        if "kind" not in columns:
            self.db.execute("alter table withdrawals add column kind text not null default 'user'")

    # -- the cold wallets (the Ethereum multisig's address, once deployed)
    def cold_address(self, chain: str) -> str | None:
        row = self.db.execute("select address from cold where chain = ?", (chain,)).fetchone()
        return None if row is None else str(row[0])

    def set_cold_address(self, chain: str, address: str, batch: int) -> None:
        self.db.execute("insert or replace into cold values (?, ?, ?)", (chain, address, batch))

    def cold_batch(self, chain: str) -> int:
        row = self.db.execute("select batch from cold where chain = ?", (chain,)).fetchone()
        return 0 if row is None else int(row[0])

    def forget_cold(self, chain: str) -> None:
        self.db.execute("delete from cold where chain = ?", (chain,))

    def close(self) -> None:
        self.db.close()

    # -- addresses
    def address(self, chain: str, account: int) -> str | None:
        row = self.db.execute(
            "select address from addresses where chain = ? and account = ?", (chain, account)
        ).fetchone()
        return None if row is None else str(row[0])

    def add_address(self, chain: str, account: int, address: str, label: str, now_ms: int) -> None:
        self.db.execute(
            "insert into addresses values (?, ?, ?, ?, ?)", (chain, account, address, label, now_ms)
        )

    def addresses(self, chain: str) -> dict[str, int]:
        """address -> account for every deposit address of ``chain`` (a copy). Read again
        only when an address was added since (rows are only ever inserted: the highest rowid
        says; a rolled-back transaction forgets what was read), since a watcher asks on every
        poll and there can be many."""
        (last,) = self.db.execute("select max(rowid) from addresses").fetchone()
        cached = self._addresses.get(chain)
        if cached is None or cached[0] != last:
            rows = self.db.execute(
                "select address, account from addresses where chain = ?", (chain,)
            )
            cached = (last, {str(a): int(acc) for a, acc in rows})
            self._addresses[chain] = cached
        return dict(cached[1])

    def key_label(self, chain: str, address: str) -> str | None:
        row = self.db.execute(
            "select key_label from addresses where chain = ? and address = ?", (chain, address)
        ).fetchone()
        return None if row is None else str(row[0])

    # -- deposits
    def deposit(self, ref: str) -> DepositRow | None:
        row = self.db.execute("select * from deposits where ref = ?", (ref,)).fetchone()
        return None if row is None else _deposit(row)

    def deposits(
        self, *, chain: str = "", statuses: tuple[str, ...] = (), above: int | None = None
    ) -> list[DepositRow]:
        """Deposits by chain and status; with ``above``, only those in a block higher than it
        or in none (what a reorganisation above ``above`` touches, without reading history)."""
        sql = "select * from deposits where 1 = 1"
        args: list[object] = []
        if chain:
            sql += " and chain = ?"
            args.append(chain)
        if statuses:
            sql += f" and status in ({', '.join('?' * len(statuses))})"
            args.extend(statuses)
        if above is not None:
            sql += " and (height is null or height > ?)"
            args.append(above)
        return [_deposit(r) for r in self.db.execute(sql + " order by seen_ms, ref", args)]

    def account_deposits(
        self, account: int, asset: str = "", start_ms: int = 0, end_ms: int = 0, limit: int = 1000
    ) -> list[DepositRow]:
        sql = "select * from deposits where account = ?"
        args: list[object] = [account]
        if asset:
            sql += " and asset = ?"
            args.append(asset)
        if start_ms:
            sql += " and seen_ms >= ?"
            args.append(start_ms)
        if end_ms:
            sql += " and seen_ms <= ?"
            args.append(end_ms)
        sql += " order by seen_ms desc, ref limit ?"
        args.append(limit)
        return [_deposit(r) for r in self.db.execute(sql, args)]

    def put_deposit(self, d: DepositRow) -> None:
        self.db.execute(
            "insert or replace into deposits values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                d.ref, d.chain, d.asset, d.account, d.address, d.txid, d.idx,
                str(d.amount_chain), d.amount, str(d.dust), d.height, d.block_hash, d.status,
                d.seen_ms, d.credited_seq, d.updated_ms, d.credit_ref, d.generation,
            ),
        )  # fmt: skip

    # -- blocks and cursors
    def cursor(self, chain: str) -> int | None:
        row = self.db.execute("select height from cursors where chain = ?", (chain,)).fetchone()
        return None if row is None else int(row[0])

    def blocks(self, chain: str) -> dict[int, str]:
        rows = self.db.execute("select height, hash from blocks where chain = ?", (chain,))
        return {int(h): str(x) for h, x in rows}

    def save_scan(self, chain: str, height: int, blocks: dict[int, str], keep_from: int) -> None:
        """The scan reached ``height``: its recent block hashes replace the stored ones from the
        lowest height given, and hashes below ``keep_from`` are forgotten."""
        with self.transaction():
            if blocks:
                self.db.execute(
                    "delete from blocks where chain = ? and height >= ?", (chain, min(blocks))
                )
                self.db.executemany(
                    "insert into blocks values (?, ?, ?)",
                    [(chain, h, x) for h, x in sorted(blocks.items())],
                )
            self.db.execute("delete from blocks where chain = ? and height < ?", (chain, keep_from))
            self.db.execute("insert or replace into cursors values (?, ?)", (chain, height))

    def forget_chain(self, chain: str) -> None:
        """The chain was replaced by a new one (a test chain started afresh): its scanned blocks
        mean nothing any more; watching starts again from the new chain's tip."""
        with self.transaction():
            self.db.execute("delete from blocks where chain = ?", (chain,))
            self.db.execute("delete from cursors where chain = ?", (chain,))
            # what the old chain credited stays credited, out of the new chain's reorganisations
            # (height -1: a chain that is gone); what it had pending never will be
            self.db.execute(
                "update deposits set height = -1 where chain = ? and status != ?",
                (chain, PENDING),
            )
            self.db.execute(
                "update deposits set status = ?, height = -1 where chain = ? and status = ?",
                (DROPPED, chain, PENDING),
            )
            # the new chain's accounts start at nonce 0: the old chain's nonces say nothing
            self.db.execute("update batches set nonce = null where chain = ?", (chain,))

    # -- dust
    def dust(self) -> dict[str, int]:
        return {str(a): int(v) for a, v in self.db.execute("select asset, amount_chain from dust")}

    def add_dust(self, asset: str, amount_chain: int) -> None:
        current = self.dust().get(asset, 0)
        self.db.execute(
            "insert or replace into dust values (?, ?)", (asset, str(current + amount_chain))
        )

    def transaction(self) -> _Transaction:
        return _Transaction(self.db, self._addresses.clear)


class _Transaction:
    """``with store.transaction():`` groups writes into one durable commit (one fsync). One
    opened inside another joins it: the outer one commits or rolls back the whole. Never held
    across an ``await``: the connection is shared by the event loop's tasks."""

    def __init__(self, db: sqlite3.Connection, rolled_back: Callable[[], None]) -> None:
        self.db = db
        self.rolled_back = rolled_back
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("begin immediate")

    def __exit__(self, kind: object, *_: object) -> None:
        if not self.outer:
            return
        if kind is None:
            self.db.execute("commit")
        else:
            self.db.execute("rollback")
            self.rolled_back()


def _deposit(row: tuple[object, ...]) -> DepositRow:
    (ref, chain, asset, account, address, txid, idx, amount_chain, amount, dust, height, bhash,
     status, seen, credited, updated, credit_ref, generation) = row  # fmt: skip
    return DepositRow(
        str(ref), str(chain), str(asset), _int(account), str(address), str(txid), _int(idx),
        _int(amount_chain), _int(amount), _int(dust), None if height is None else _int(height),
        None if bhash is None else str(bhash), str(status), _int(seen), _int(credited),
        _int(updated), str(credit_ref), _int(generation),
    )  # fmt: skip


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(str(value))
