"""The audit trail, readable: the chain's entries joined with the journal's commands, as rows.

A row is one chain entry: a command (its body is the journal's payload of its seq, decoded
with its origin: door, principal, request id, remote address) or a staff action (its body is
in the chain). Rows are what the admin API's ``GET /v1/audit`` answers and ``/v1/audit.csv``
exports::

    n        entry number in the chain (1, 2, ...): the cursor pages by it
    seq      the command's journal seq (a staff action: the last command chained before it)
    timeMs   the command's sequencer time, the staff action's time (ms since the epoch)
    kind     "command" or "staff"
    door     the command origin's door (FIX, REST, ADMIN...); "STAFF" for a staff action
    actor    the origin's principal (FIX session, API key, operator), the staff action's actor
    action   the command's type name ("SetInstrumentState"), the staff action ("login")
    subject  "account 1001", "BTC-USDT", both, or the staff action's subject
    account, symbol  the command's account and instrument when it has them (else null, "")
    detail   the command's other fields, short ("state=HALTED"; prices, quantities and amounts
             as decimals when ``Units`` are given); empty for a staff action
    requestId, ip  the origin's request id and remote address; the staff action's address
    outcome  "journaled" for a command (durable; the core may still have refused it: its
             events say), the staff action's outcome
    hash     the entry's chain hash, hex

Reading is a forward scan of ``chain.log`` (memory-mapped, a record at a time) beside a
streaming read of the journal (one segment at a time): memory stays bounded by the page size
and a journal segment, whatever the length of the chain. Newest first comes from keeping the
last ``limit + 1`` matches of the entries before the cursor in a ring; the CSV export streams
every match in chain order (oldest first), as a log reads. Both are a full scan (there is no
index yet; a page without filters scans only the chain's framing and decodes only its own
commands): they run in a worker thread, never on the event loop.

Only entries whose framing holds are read; verification is ``surveillance.verify``'s job. A
torn tail (a write in progress) ends the scan, as does a command whose journal record cannot
be read (shown as a row with action ``"?"`` and the reason in ``detail``).
"""

from __future__ import annotations

import csv
import io
import mmap
import re
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from engine.codec import decode
from engine.errors import CodecError
from engine.instrument import InstrumentSpec
from engine.journal import JournalError, iter_records
from surveillance.audit import (
    AUDIT_DIR,
    CHAIN_FILE,
    HEADER_SIZE,
    KIND_COMMAND,
    KIND_STAFF,
    MAGIC,
    MAX_STAFF_BODY,
    RECORD,
    RECORD_SIZE,
    decode_staff,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "TrailError",
    "TrailPage",
    "TrailQuery",
    "TrailQueryError",
    "Units",
    "csv_chunks",
    "iter_rows",
    "parse_query",
    "read_page",
]

#: The columns of a row, in the CSV's order.
COLUMNS = (
    "n",
    "seq",
    "timeMs",
    "kind",
    "door",
    "actor",
    "action",
    "subject",
    "account",
    "symbol",
    "detail",
    "requestId",
    "ip",
    "outcome",
    "hash",
)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Longest ``detail`` of a command row, in characters.
MAX_DETAIL = 240
_MAX_ACCOUNT = 2**64 - 1
_MAX_MS = 2**53  # what a JSON number holds exactly; far beyond any date the venue will see
_NS_PER_MS = 1_000_000
_ACTION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NUMBER = re.compile(r"[0-9]{1,20}")
_MAX_ACTOR = 128
#: Fields of a command the row shows elsewhere (or never).
_SHOWN = frozenset({"seq", "ts", "origin", "account", "instrument"})


class TrailQueryError(ValueError):
    """A query parameter is malformed; ``str`` is one line naming it."""


class TrailError(Exception):
    """The trail cannot be read (no audit store, an unreadable file); ``str`` says why."""


@dataclass(frozen=True, slots=True)
class TrailQuery:
    """Which entries: all filters hold (an empty one matches everything). ``actor`` and
    ``action`` match exactly; ``account`` a command's account or a staff action whose subject
    names it; ``from_ms`` and ``to_ms`` bound the time, both inclusive; ``before`` (an entry
    number, the cursor) keeps the entries before it."""

    actor: str = ""
    account: int | None = None
    action: str = ""
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None


#: The query string's names for ``TrailQuery``'s fields.
PARAMETERS = ("actor", "account", "action", "from", "to", "limit", "before")


def _integer(name: str, value: str, low: int, high: int) -> int:
    if not _NUMBER.fullmatch(value):
        raise TrailQueryError(f"Parameter '{name}' must be a whole number.")
    number = int(value)
    if not low <= number <= high:
        raise TrailQueryError(f"Parameter '{name}' must be between {low} and {high}.")
    return number


def parse_query(params: Mapping[str, str]) -> TrailQuery:
    """The query of ``params`` (a request's query string); an empty value counts as absent.
    ``TrailQueryError`` for an unknown parameter or a malformed value."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise TrailQueryError(f"Parameter '{unknown[0][:64]}' is not known here.")
    values: dict[str, str] = {}
    for name in PARAMETERS:
        value = params.get(name, "")
        if not isinstance(value, str):
            raise TrailQueryError(f"Parameter '{name}' must be text.")
        value = value.strip()
        if value:
            values[name] = value
    actor = values.get("actor", "")
    if len(actor) > _MAX_ACTOR or not actor.isprintable():
        raise TrailQueryError(
            f"Parameter 'actor' must be printable and at most {_MAX_ACTOR} characters."
        )
    action = values.get("action", "")
    if action and not _ACTION.fullmatch(action):
        raise TrailQueryError(
            "Parameter 'action' must be 1 to 64 letters, digits or '_', '.', ':', '-'."
        )
    account = values.get("account")
    from_ms = values.get("from")
    to_ms = values.get("to")
    before = values.get("before")
    query = TrailQuery(
        actor=actor,
        account=None if account is None else _integer("account", account, 1, _MAX_ACCOUNT),
        action=action,
        from_ms=None if from_ms is None else _integer("from", from_ms, 0, _MAX_MS),
        to_ms=None if to_ms is None else _integer("to", to_ms, 0, _MAX_MS),
        limit=_integer("limit", values["limit"], 1, MAX_LIMIT)
        if "limit" in values
        else DEFAULT_LIMIT,
        before=None if before is None else _integer("before", before, 1, 2**63 - 1),
    )
    if query.from_ms is not None and query.to_ms is not None and query.from_ms > query.to_ms:
        raise TrailQueryError("Parameter 'from' must not be after 'to'.")
    return query


@dataclass(frozen=True, slots=True)
class TrailPage:
    """Rows newest first; ``next``: the cursor (``before``) of the following page, or None."""

    entries: list[dict[str, Any]]
    next: int | None


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Raw:
    number: int
    kind: int
    seq: int
    digest: bytes
    body: bytes


def _chain_entries(path: Path, before: int | None) -> Iterator[_Raw]:
    """The entries of ``path`` numbered below ``before``, in order, framing checked; stops at a
    torn tail or the first malformed record."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size <= HEADER_SIZE:
                return
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as data:
                if data[:HEADER_SIZE] != MAGIC:
                    raise TrailError(f"{path}: not an audit store (bad header)")
                pos = HEADER_SIZE
                expected = 1
                unpack = RECORD.unpack_from
                while size - pos >= RECORD_SIZE:
                    length, kind, number, seq, digest = unpack(data, pos)
                    if number != expected or kind not in (KIND_COMMAND, KIND_STAFF):
                        return  # a tail of zeros, or damage: verification names it
                    if (kind == KIND_COMMAND and length) or length > MAX_STAFF_BODY:
                        return
                    stop = pos + RECORD_SIZE + length
                    if stop > size or (before is not None and number >= before):
                        return
                    yield _Raw(number, kind, seq, digest, data[pos + RECORD_SIZE : stop])
                    expected += 1
                    pos = stop
    except FileNotFoundError:
        raise TrailError(f"{path}: no audit store (is [audit] enabled?)") from None
    except OSError as exc:
        raise TrailError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _show(value: object) -> str:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _command_row(raw: _Raw, payload: bytes | None, why: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "n": raw.number,
        "seq": raw.seq,
        "timeMs": None,
        "kind": "command",
        "door": "UNKNOWN",
        "actor": "",
        "action": "?",
        "subject": "",
        "account": None,
        "symbol": "",
        "detail": why,
        "requestId": "",
        "ip": "",
        "outcome": "journaled",
        "hash": raw.digest.hex(),
    }
    if payload is None:
        return row
    try:
        cmd = decode(payload)
    except CodecError as exc:
        row["detail"] = f"the journal's record does not decode: {exc}"[:MAX_DETAIL]
        return row
    row["action"] = type(cmd).__name__
    row["timeMs"] = cmd.ts // _NS_PER_MS
    origin = cmd.origin
    if origin is not None:
        row["door"] = origin.door.name
        row["actor"] = origin.principal
        row["requestId"] = origin.request_id
        row["ip"] = origin.remote
    account = getattr(cmd, "account", 0)
    symbol = getattr(cmd, "instrument", "")
    parts = []
    if account:
        row["account"] = account
        parts.append(f"account {account}")
    if symbol:
        row["symbol"] = symbol
        parts.append(symbol)
    row["subject"] = ", ".join(parts)
    row[_CMD] = cmd  # its detail is written for the rows shown only (``_finish``)
    return row


#: A row's command until ``_finish`` writes its detail.
_CMD = "_cmd"
#: The fields of each command class a detail shows.
_DETAIL_FIELDS: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class Units:
    """How to show a command's integers as the doors do: prices and quantities in their
    instrument's units (``engine.instrument``), amounts in their asset's decimals. Without
    them a detail shows the journal's integers (ticks, lots, minor units)."""

    instruments: Mapping[str, InstrumentSpec]
    assets: Mapping[str, int]


_PRICES = frozenset({"price", "stop_price"})
_QUANTITIES = frozenset({"qty", "display_qty"})


def _value(cmd: Any, name: str, units: Units | None) -> str:
    value = getattr(cmd, name)
    if units is None or isinstance(value, bool) or not isinstance(value, int):
        return _show(value)
    spec = units.instruments.get(getattr(cmd, "instrument", ""))
    if spec is not None:
        if name in _PRICES:
            return format(spec.ticks_to_price(value), "f")
        if name in _QUANTITIES:
            return format(spec.lots_to_qty(value), "f")
        if name == "quote_qty":
            return format(spec.units_to_notional(value), "f")
    if name == "amount":
        places = units.assets.get(getattr(cmd, "asset", ""))
        if places is not None:
            return format(Decimal(value).scaleb(-places), "f")
    return _show(value)


def _finish(row: dict[str, Any], units: Units | None = None) -> dict[str, Any]:
    cmd = row.pop(_CMD, None)
    if cmd is None:
        return row
    names = _DETAIL_FIELDS.get(type(cmd))
    if names is None:
        names = tuple(f.name for f in fields(cmd) if f.name not in _SHOWN)
        _DETAIL_FIELDS[type(cmd)] = names
    detail = ", ".join(f"{name}={_value(cmd, name, units)}" for name in names)
    row["detail"] = detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"
    return row


def _staff_row(raw: _Raw) -> dict[str, Any]:
    row: dict[str, Any] = {
        "n": raw.number,
        "seq": raw.seq,
        "timeMs": None,
        "kind": "staff",
        "door": "STAFF",
        "actor": "",
        "action": "?",
        "subject": "",
        "account": None,
        "symbol": "",
        "detail": "",
        "requestId": "",
        "ip": "",
        "outcome": "",
        "hash": raw.digest.hex(),
    }
    try:
        event = decode_staff(raw.body)
    except ValueError as exc:
        row["detail"] = f"the staff action does not decode: {exc}"[:MAX_DETAIL]
        return row
    row.update(
        timeMs=event.time_ns // _NS_PER_MS,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        ip=event.ip,
        outcome=event.outcome,
    )
    return row


def _names_account(subject: str, account: int) -> bool:
    return re.search(rf"(?<![0-9]){account}(?![0-9])", subject) is not None


def _matches(row: dict[str, Any], query: TrailQuery) -> bool:
    if query.actor and row["actor"] != query.actor:
        return False
    if query.action and row["action"] != query.action:
        return False
    if query.account is not None:
        if row["kind"] == "command":
            if row["account"] != query.account:
                return False
        elif not _names_account(row["subject"], query.account):
            return False
    if query.from_ms is not None or query.to_ms is not None:
        t = row["timeMs"]
        if t is None:
            return False
        if query.from_ms is not None and t < query.from_ms:
            return False
        if query.to_ms is not None and t > query.to_ms:
            return False
    return True


def iter_rows(
    data_dir: Path, query: TrailQuery, units: Units | None = None
) -> Iterator[dict[str, Any]]:
    """Every row matching ``query`` (its ``limit`` aside), in chain order (oldest first).
    ``TrailError`` when the audit store cannot be read."""
    for row in _matching(data_dir, query):
        yield _finish(row, units)


def _joined(journal_dir: Path, raws: Iterable[_Raw], after_seq: int) -> Iterator[dict[str, Any]]:
    """The rows of ``raws`` (in chain order), each command's payload read from the journal
    from ``after_seq`` on (the seq before the first command among them)."""
    journal = iter_records(journal_dir, after_seq=after_seq, repair=False)
    why = ""
    for raw in raws:
        if raw.kind == KIND_STAFF:
            yield _staff_row(raw)
            continue
        payload: bytes | None = None
        while not why:
            try:
                record = next(journal, None)
            except (JournalError, OSError) as exc:
                why = f"the journal cannot be read: {' '.join(str(exc).split())}"[:MAX_DETAIL]
                break
            if record is None:
                why = "the journal does not hold this seq"
                break
            if record[0] == raw.seq:
                payload = record[1]
                break
            if record[0] > raw.seq:
                why = f"the journal skips seq {raw.seq}: run venue audit verify"
                break
        yield _command_row(raw, payload, why)


def _matching(data_dir: Path, query: TrailQuery) -> Iterator[dict[str, Any]]:
    data_dir = Path(data_dir)
    raws = _chain_entries(data_dir / AUDIT_DIR / CHAIN_FILE, query.before)
    for row in _joined(data_dir / "journal", raws, 0):
        if _matches(row, query):
            yield row


def _unfiltered(query: TrailQuery) -> bool:
    return (
        not query.actor
        and not query.action
        and query.account is None
        and (query.from_ms is None and query.to_ms is None)
    )


def read_page(data_dir: Path, query: TrailQuery, units: Units | None = None) -> TrailPage:
    """The newest ``query.limit`` matching rows before ``query.before``, newest first.

    Without a filter (the cursor aside) only the chain's framing is scanned, and the journal
    read from the page's first command on: the latest entries come at the cost of a pass over
    the chain's records, not of decoding every command."""
    if _unfiltered(query):
        data_dir = Path(data_dir)
        store = data_dir / AUDIT_DIR / CHAIN_FILE
        last = deque(_chain_entries(store, query.before), maxlen=query.limit + 1)
        seqs = [raw.seq for raw in last if raw.kind == KIND_COMMAND]
        after = seqs[0] - 1 if seqs else 0
        ring = deque(_joined(data_dir / "journal", last, after))
    else:
        ring = deque(_matching(data_dir, query), maxlen=query.limit + 1)
    rows = [_finish(row, units) for row in reversed(ring)]
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        return TrailPage(rows, rows[-1]["n"])
    return TrailPage(rows, None)


#: What a spreadsheet would take for a formula at the start of a cell.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell: None empty; text a spreadsheet would run as a formula (an actor is whatever
    a failed login claimed) quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def csv_chunks(
    rows: Iterator[dict[str, Any]], rows_per_chunk: int = 500
) -> Generator[str, None, None]:
    """``rows`` as CSV text (a header row first), a chunk every ``rows_per_chunk`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(row[c]) for c in COLUMNS])
        if count % rows_per_chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
