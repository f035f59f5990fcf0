"""The alert and case store (``surveillance.store``) on SQLite and on the real PostgreSQL: alerts
upserted by key, everything kept across a restart, filters and paging (no alert lost or
repeated), the batching writer of the live path, a case's life as the store keeps it; the alert
list's query parser, fuzzed; ``[surveillance_store]``."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import inspect

from engine.configfile import ConfigError
from surveillance.alertquery import (
    ALERT_STATES,
    MAX_LIMIT,
    AlertQuery,
    QueryError,
    parse_alert_query,
)
from surveillance.alerts import Alert, AlertType
from surveillance.store import AlertStore, Conflict, Invalid, NotFound, StoreError
from surveillance.storeconfig import AlertStoreConfig, default_url
from surveillance.storeschema import metadata
from venue.config import DEFAULT_CONFIG_PATH, parse_config


class Clock:
    """Epoch ms the test moves."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(url: str, clock: Clock) -> Iterator[AlertStore]:
    opened = AlertStore.connect(url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


_SEQS = itertools.count(20)


def alert(key: str = "wash:BTC-USDT:1001:1002", **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "key": key,
        "type": AlertType.WASH_TRADE,
        "symbol": "BTC-USDT",
        "accounts": (1001, 1002),
        "from_ms": 1_000,
        "to_ms": 2_000,
        "score": 42.5,
        "evidence": {"trades": [{"tradeId": 1, "price": "100.5", "qty": "0.1"}]},
        "first_seq": 10,
        "last_seq": next(_SEQS),  # each raise is new evidence (same last_seq: seen already)
        "summary": "accounts 1001 and 1002 traded with each other",
    }
    fields.update(changes)
    return Alert(**fields)


def test_an_alert_raised_again_is_the_same_alert_updated(store: AlertStore, clock: Clock) -> None:
    created = clock.now
    store.write([alert()])
    clock.now += 5_000
    store.write(
        [
            alert(
                from_ms=500,
                to_ms=1_500,
                score=70.0,
                evidence={"trades": []},
                first_seq=12,
                last_seq=30,
                summary="again",
                accounts=(1002, 1003),
            )
        ]
    )
    clock.now += 5_000
    store.write([alert(from_ms=1_200, to_ms=9_000, score=10.0, last_seq=31, summary="third")])
    store.write([alert(key="other")])
    page = store.alerts(AlertQuery())
    assert [a["key"] for a in page.alerts] == ["other", "wash:BTC-USDT:1001:1002"]
    one = page.alerts[1]
    assert one["count"] == 3
    assert (one["fromTime"], one["toTime"]) == (500, 9_000)  # widened, never narrowed
    assert (one["firstSeq"], one["lastSeq"]) == (10, 31)
    assert (one["score"], one["summary"]) == (10.0, "third")  # replaced by the last
    assert one["evidence"] == alert().evidence
    assert one["accounts"] == [1001, 1002, 1003]  # every account the behaviour named
    assert (one["createdAt"], one["updatedAt"]) == (created, clock.now)
    assert one["state"] == "OPEN" and one["caseId"] is None
    assert store.alert(one["alertId"]) == one
    assert [a["key"] for a in store.alerts(AlertQuery(account=1003)).alerts] == [one["key"]]
    with pytest.raises(NotFound):
        store.alert(999)


def test_everything_is_kept_across_a_restart(url: str, clock: Clock) -> None:
    first = AlertStore.connect(url, clock=clock)
    first.write([alert(), alert(key="spoof", type=AlertType.SPOOFING, accounts=(7,))])
    case = first.open_case([1, 2], "wash and spoof", "alice")
    first.assign(case["caseId"], "bob", "alice")
    first.comment(case["caseId"], "looked at the book", "bob")
    first.attach(case["caseId"], "note.txt", "text/plain", "aGVsbG8=", "bob")
    before_alerts = first.alerts(AlertQuery())
    before_case = first.case(case["caseId"])
    first.raise_alert(alert(key="queued"))
    first.close()  # writes what is queued

    again = AlertStore.connect(url, clock=clock)  # migrations run again: nothing changes
    try:
        after = again.alerts(AlertQuery())
        assert after.alerts[1:] == before_alerts.alerts
        assert after.alerts[0]["key"] == "queued"
        assert again.case(case["caseId"]) == before_case
        assert again.attachment(case["caseId"], 1) == ("note.txt", "text/plain", b"hello")
        again.write([alert()])  # a repeat after the restart updates the same alert
        assert again.alert(1)["count"] == 2
    finally:
        again.close()


def test_the_tables_are_those_the_migrations_build(store: AlertStore) -> None:
    found = inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert sorted(columns) == sorted(c.name for c in table.columns), table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table, column)


def _model_matches(a: dict[str, Any], q: AlertQuery) -> bool:
    return (
        (q.type is None or a["type"] == q.type)
        and (q.symbol is None or a["symbol"] == q.symbol)
        and (q.account is None or q.account in a["accounts"])
        and (q.state is None or a["state"] == q.state)
        and (q.from_ms is None or a["toTime"] >= q.from_ms)
        and (q.to_ms is None or a["fromTime"] <= q.to_ms)
    )


def test_filters_and_pages_lose_and_repeat_nothing(store: AlertStore, clock: Clock) -> None:
    rng = random.Random(957)
    types = [AlertType.WASH_TRADE, AlertType.SPOOFING, AlertType.LAYERING]
    symbols = ["BTC-USDT", "ETH-USDT", ""]
    for i in range(120):
        clock.now += rng.choice([0, 0, 1, 7])  # ties in updatedAt: the id orders them
        start = rng.randrange(0, 10_000)
        store.write(
            [
                alert(
                    key=f"k{rng.randrange(90)}",  # repeats too
                    type=rng.choice(types),
                    symbol=rng.choice(symbols),
                    accounts=tuple(sorted(rng.sample(range(1, 8), rng.randint(1, 3)))),
                    from_ms=start,
                    to_ms=start + rng.randrange(0, 3_000),
                    summary=f"alert {i}",
                )
            ]
        )
    store.open_case([1, 2, 3], "three", "alice")
    store.close_case(store.open_case([4], "one", "alice")["caseId"], "MONITORED", "ok", "alice")
    everything = store.alerts(AlertQuery(limit=MAX_LIMIT)).alerts
    assert len({a["key"] for a in everything}) == len(everything) > 50
    order = [(a["updatedAt"], a["alertId"]) for a in everything]
    assert order == sorted(order, reverse=True)  # newest updated first
    assert {a["state"] for a in everything} == set(ALERT_STATES)
    for _ in range(40):
        lo = rng.randrange(0, 12_000)
        query = AlertQuery(
            type=rng.choice([None, *types]),
            symbol=rng.choice([None, *symbols[:2]]),
            account=rng.choice([None, *range(1, 9)]),
            from_ms=rng.choice([None, lo]),
            to_ms=rng.choice([None, lo + rng.randrange(0, 4_000)]),
            state=rng.choice([None, *ALERT_STATES]),
            limit=rng.randint(1, 9),
        )
        expected = [a["alertId"] for a in everything if _model_matches(a, query)]
        got: list[int] = []
        cursor = None
        for _page in range(200):
            page = store.alerts(AlertQuery(**{**_fields(query), "cursor": cursor}))
            assert len(page.alerts) <= query.limit
            got.extend(a["alertId"] for a in page.alerts)
            if page.next is None:
                break
            cursor = page.next
        assert got == expected, query


def _fields(query: AlertQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in AlertQuery.__slots__}


def test_the_writer_thread_stores_a_raised_alert_within_a_tick(store: AlertStore) -> None:
    store.start()
    raised = time.monotonic()
    store.raise_alert(alert())
    deadline = raised + 10  # the promise: an alert appears within 10 s of the behaviour
    while not store.alerts(AlertQuery()).alerts:
        assert time.monotonic() < deadline, "the alert was not written"
        time.sleep(0.02)
    assert time.monotonic() - raised < 3  # a tick or a few (0.2 s), not the 10 s bound
    # many threads raising at once: every alert written, each key once, the count exact
    threads = [
        threading.Thread(
            target=lambda n=n: [store.raise_alert(alert(f"t{n % 5}")) for _ in range(20)]
        )
        for n in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.flush(10)
    counts = {a["key"]: a["count"] for a in store.alerts(AlertQuery()).alerts}
    assert counts == {"t0": 40, "t1": 40, "t2": 40, "t3": 40, "t4": 40, alert().key: 1}


def test_a_batch_that_cannot_be_written_stays_queued_in_order(
    store: AlertStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.write
    failures = [2]

    def flaky(batch: list[Alert]) -> None:
        if failures[0]:
            failures[0] -= 1
            if failures[0]:
                raise StoreError("the database is away")
            raise RuntimeError("a bug")  # the writer survives that too
        real(batch)

    monkeypatch.setattr(store, "write", flaky)
    store.start()
    store.raise_alert(alert(score=1.0))
    store.raise_alert(alert(score=2.0))
    assert store.flush(10)
    assert failures == [0] and store.pending == 0 and store.last_error == ""
    stored = store.alert(1)
    assert (stored["count"], stored["score"]) == (2, 2.0)  # both, in the order raised


def test_a_case_holds_its_alerts_and_a_closed_case_refuses_changes(
    store: AlertStore, clock: Clock
) -> None:
    store.write([alert("a"), alert("b"), alert("c")])
    with pytest.raises(NotFound):
        store.open_case([1, 99], "x", "alice")
    with pytest.raises(Invalid) as bad:
        store.open_case([1], "  ", "alice")
    assert bad.value.field == "title"
    with pytest.raises(Invalid):
        store.open_case([], "x", "alice")
    case = store.open_case([1, 2], "wash", "alice")
    assert [a["state"] for a in case["alerts"]] == ["IN_CASE", "IN_CASE"]
    assert store.alert(3)["state"] == "OPEN"
    with pytest.raises(Conflict):
        store.open_case([2, 3], "again", "bob")  # alert 2 is in a case already
    assert store.alert(3)["state"] == "OPEN"  # and nothing changed
    with pytest.raises(Invalid) as bad:
        store.attach(case["caseId"], "big.bin", "application/octet-stream", "A" * 50_000, "bob")
    assert bad.value.field == "data"
    with pytest.raises(Invalid) as bad:
        store.close_case(case["caseId"], "DONE", "why", "bob")
    assert bad.value.field == "disposition"
    closed = store.close_case(case["caseId"], "FALSE_POSITIVE", "matched hedges", "bob")
    assert closed["state"] == "CLOSED" and closed["disposition"] == "FALSE_POSITIVE"
    assert [store.alert(i)["state"] for i in (1, 2)] == ["CLOSED", "CLOSED"]
    for change in (
        lambda: store.assign(case["caseId"], "carol", "bob"),
        lambda: store.comment(case["caseId"], "late", "bob"),
        lambda: store.attach(case["caseId"], "n", "text/plain", "", "bob"),
        lambda: store.close_case(case["caseId"], "REPORTED", "again", "bob"),
    ):
        with pytest.raises(Conflict):
            change()
    assert store.case(case["caseId"]) == closed
    with pytest.raises(NotFound):
        store.comment(42, "no such case", "bob")
    # the behaviour seen again: the alert opens again; the closed case keeps it as it was
    clock.now += 1
    store.write([alert("a", score=99.0)])
    again = store.alert(1)
    assert (again["state"], again["caseId"], again["count"]) == ("OPEN", None, 2)
    kept = store.case(case["caseId"])["alerts"][0]
    assert (kept["state"], kept["score"], kept["count"]) == ("CLOSED", 42.5, 1)
    assert [c["caseId"] for c in store.cases("CLOSED")] == [case["caseId"]]
    assert store.cases("OPEN") == []


# -- the query parser ----------------------------------------------------------------------------
_POOL = [
    "",
    "0",
    "1",
    "-1",
    "007",
    "1.5",
    "1e3",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "BTC-USDT",
    "btc-usdt",
    "ETH-USDT",
    "WASH_TRADE",
    "SPOOFING",
    "wash_trade",
    "OPEN",
    "IN_CASE",
    "CLOSED",
    "1000",
    "1001",
    "12.34",
    "5.",
    " 5",
    "\x00",
    "é",
    "<script>",
    "A" * 40,
]
_NAMES = ["type", "symbol", "account", "from", "to", "state", "limit", "cursor", "before", "x"]


def test_the_query_parser_takes_what_it_documents_and_refuses_the_rest() -> None:
    rng = random.Random(20160957)
    parsed = refused = 0
    for _ in range(3000):
        params: dict[str, Any] = {}
        for name in rng.sample(_NAMES, rng.randint(0, 5)):
            value = (
                rng.choice(_POOL)
                if rng.random() < 0.8
                else "".join(rng.choice("0123456789.-_ABCxyz") for _ in range(rng.randint(0, 12)))
            )
            params[name] = [value, value] if rng.random() < 0.05 else [value]
        try:
            query = parse_alert_query(params)
        except QueryError as exc:
            refused += 1
            assert exc.name in params, (params, exc)
            assert str(exc)
            continue
        parsed += 1
        assert set(params) <= {
            "type",
            "symbol",
            "account",
            "from",
            "to",
            "state",
            "limit",
            "cursor",
        }
        assert 1 <= query.limit <= MAX_LIMIT
        assert query.type is None or query.type in AlertType.__members__
        assert query.state is None or query.state in ALERT_STATES
        for value in (query.account, query.from_ms, query.to_ms):
            assert value is None or 0 <= value < 2**63
        if query.from_ms is not None and query.to_ms is not None:
            assert query.from_ms <= query.to_ms
        # the next link's query string reads back as the same query
        back = parse_alert_query(parse_qs(query.params(query.cursor), keep_blank_values=True))
        assert back == query
    assert parsed > 300 and refused > 300  # both sides were exercised


def test_the_query_parser_names_the_parameter() -> None:
    for params, name in (
        ({"type": "NOPE"}, "type"),
        ({"account": "-1"}, "account"),
        ({"from": "10", "to": "5"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"state": "open"}, "state"),
        ({"cursor": "abc"}, "cursor"),
        ({"symbol": "btc"}, "symbol"),
        ({"acount": "1"}, "acount"),
        ({"account": ["1", "2"]}, "account"),
    ):
        with pytest.raises(QueryError) as exc:
            parse_alert_query(params)
        assert exc.value.name == name
        assert repr(name)[1:-1] in str(exc.value) or name in str(exc.value)


# -- configuration --------------------------------------------------------------------------------
def test_the_store_section_is_optional_and_checked(tmp_path: Path) -> None:
    shipped = DEFAULT_CONFIG_PATH.read_text()
    config = parse_config(shipped)
    assert config.alert_store == AlertStoreConfig()
    assert config.alert_store.url_for(tmp_path) == default_url(tmp_path)
    assert default_url(tmp_path).endswith("/surveillance/surveillance.sqlite")
    named = parse_config(
        shipped
        + '\n[surveillance_store]\nurl = "postgresql+psycopg://s@db/venue"\n'
        + 'entity_name = "Example Exchange B.V."\nentity_lei = "5493001KJTIIGC8Y1R12"\n'
    )
    assert named.alert_store.url_for(tmp_path) == "postgresql+psycopg://s@db/venue"
    assert named.alert_store.entity_name == "Example Exchange B.V."
    with pytest.raises(ConfigError, match=r"surveillance_store.url"):
        parse_config(shipped + '\n[surveillance_store]\nurl = "mysql://x"\n')
    with pytest.raises(ConfigError, match=r"surveillance_store.*nme"):
        parse_config(shipped + '\n[surveillance_store]\nnme = "x"\n')


def test_an_alert_that_can_never_be_stored_does_not_hold_back_the_others(
    store: AlertStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(Invalid):
        store.write([alert(), alert(key="x" * 201)])  # the batch API refuses, writing nothing
    assert store.alerts(AlertQuery()).alerts == []
    real = store._upsert

    def refusing(conn: Any, one: Alert, now: int) -> None:
        if one.key == "refused":
            raise IntegrityError("INSERT", {}, Exception("refused by the database"))
        real(conn, one, now)

    monkeypatch.setattr(store, "_upsert", refusing)
    store.start()
    store.raise_alert(alert(key="before"))
    store.raise_alert(alert(key="y" * 201))  # too long a key
    store.raise_alert(alert(key="nan", score=float("nan")))
    store.raise_alert(alert(key="refused"))
    store.raise_alert(alert(key="after", accounts=(-1,)))
    store.raise_alert(alert(key="last"))
    assert store.flush(10)
    keys = {a["key"] for a in store.alerts(AlertQuery()).alerts}
    assert keys == {"before", "last"}
    assert (store.rejected, store.pending, store.last_error) == (4, 0, "")


def test_two_stores_on_one_database_keep_one_alert_per_behaviour(url: str) -> None:
    """Two processes' stores (opened at once: their migrations take turns) writing the same
    behaviour at once: one alert, which ends at the newest evidence raised; a raise older than
    what another store wrote meanwhile is not counted."""
    stores = [AlertStore(url) for _ in range(2)]
    openers = [threading.Thread(target=s.open) for s in stores]
    for thread in openers:
        thread.start()
    for thread in openers:
        thread.join()
    try:
        seqs = [range(1_000, 1_050, 2), range(1_001, 1_051, 2)]
        writers = [
            threading.Thread(
                target=lambda s=s, mine=mine: [s.write([alert(last_seq=q)]) for q in mine]
            )
            for s, mine in zip(stores, seqs, strict=True)
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        found = stores[0].alerts(AlertQuery()).alerts
        assert [a["key"] for a in found] == [alert().key]
        assert 2 <= found[0]["count"] <= 50 and found[0]["lastSeq"] == 1_049
        assert found[0]["accounts"] == [1001, 1002]
        assert stores[1].alerts(AlertQuery(account=1002)).alerts == found
    finally:
        for s in stores:
            s.close()


def test_the_store_shares_a_database_with_the_ledger(url: str) -> None:
    """Each keeps its own Alembic version table: either opened first, both open, both again."""
    from clearing.ledger.projector import Projector

    store = AlertStore.connect(url)
    ledger = Projector(url, assets={"USDT": 6})
    try:
        ledger.migrate()
        store.write([alert()])
        again = AlertStore.connect(url)  # upgraded already: nothing to do
        again.close()
        Projector(url, assets={"USDT": 6}).migrate()
        tables = set(inspect(store.engine).get_table_names())
        assert {"surveillance_alembic_version", "alembic_version", "surv_alerts"} <= tables
        assert "ledger_accounts" in tables
        assert store.alert(1)["count"] == 1 and ledger.last_seq() == 0
    finally:
        store.close()
        ledger.engine.dispose()


def test_a_raise_from_records_already_seen_changes_nothing(store: AlertStore) -> None:
    """The detectors catch up from the journal at every start and raise again what they raised
    before: an alert whose ``last_seq`` is not newer than the stored one is not counted."""
    store.write([alert(last_seq=500, summary="first")])
    store.write([alert(last_seq=500, summary="again, after a restart")])
    store.write([alert(last_seq=400, summary="older evidence")])
    shown = store.alert(1)
    assert (shown["count"], shown["summary"], shown["lastSeq"]) == (1, "first", 500)
    store.write([alert(last_seq=501, summary="new")])
    shown = store.alert(1)
    assert (shown["count"], shown["summary"], shown["lastSeq"]) == (2, "new", 501)
