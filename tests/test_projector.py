"""The projector: idempotent by sequence number (the same or overlapping batches twice give the
same rows), a projector killed mid-stream resumes without loss or duplication, two projectors
on one database write everything once, and catching up from a journal."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_stream import ASSETS, Dump, batched, dump, stream

from bench.engine import build_commands, new_core
from clearing.ledger import Projector
from clearing.ledger.postings import BatchItem
from engine.codec import encode
from engine.events import Deposited
from engine.journal import JournalWriter
from engine.recovery import JOURNAL_DIR
from engine.replay import Replayer

HERE = Path(__file__).resolve().parent


def reference(url: str, items: list[BatchItem]) -> Dump:
    with Projector(url, assets=ASSETS) as projector:
        assert projector.apply(items) == items[-1][0]
    return dump(url)


@pytest.fixture
def second_url(ledger_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second fresh database of the same kind, for reference runs."""
    if ledger_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'reference.sqlite'}"
        return
    import uuid

    import psycopg
    from conftest import PG_URL

    admin = psycopg.connect(PG_URL.replace("+psycopg", "", 1), autocommit=True)
    name = f"venue_t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_same_batches_twice_change_nothing(ledger_url: str, second_url: str) -> None:
    items = stream(1, 300)
    expected = reference(second_url, items)
    with Projector(ledger_url, assets=ASSETS) as projector:
        for chunk in batched(items, [17, 40, 3]):
            projector.apply(chunk)
        once = dump(ledger_url)
        for chunk in batched(items, [17, 40, 3]):
            assert projector.apply(chunk) == 300
        assert projector.apply(items) == 300
        assert projector.apply([]) == 300
    assert dump(ledger_url) == once == expected
    assert expected["state"] == [("ledger", 300)] and len(expected["postings"]) > 500


def test_overlapping_batches_give_the_same_rows(ledger_url: str, second_url: str) -> None:
    items = stream(2, 300)
    expected = reference(second_url, items)
    rng = random.Random(5)
    with Projector(ledger_url, assets=ASSETS) as projector:
        start = 0
        for _ in range(1_000):
            if start >= len(items):
                break
            lo = max(0, start - rng.randint(0, 30))  # re-send some already applied
            hi = min(len(items), start + rng.randint(1, 40))
            assert projector.apply(items[lo:hi]) == items[hi - 1][0]
            start = hi
        # a batch wholly in the past leaves the mark where it is
        assert projector.apply(items[10:20]) == 300
    assert dump(ledger_url) == expected


def test_a_second_instance_resumes_from_the_stored_mark(ledger_url: str, second_url: str) -> None:
    items = stream(4, 200)
    expected = reference(second_url, items)
    with Projector(ledger_url, assets=ASSETS) as first:
        first.apply(items[:120])
    with Projector(ledger_url, assets=ASSETS) as second:
        assert second.last_seq() == 120
        assert second.apply(items) == 200
    assert dump(ledger_url) == expected


def test_killed_projector_resumes_without_loss_or_duplication(
    ledger_url: str, second_url: str
) -> None:
    count, seed = 1_500, 11
    items = stream(seed, count)
    expected = reference(second_url, items)
    rng = random.Random()
    for attempt in range(3):
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "ledger_stream.py"),
                ledger_url,
                str(seed),
                str(count),
                "8",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()  # type: ignore[union-attr]
            marks = rng.randint(1, 40)
            for _ in range(marks):  # let it apply a few batches, then kill it at once
                line = proc.stdout.readline()
                if not line or line.strip() == "done":
                    break
            threading.Event().wait(rng.random() * 0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
        with Projector(ledger_url, assets=ASSETS) as projector:
            mark = projector.last_seq()
            assert mark < count or attempt > 0, "the projector finished before it was killed"
            partial = dump(ledger_url)
            # what is there is exactly the reference up to the mark: nothing half written
            assert partial["postings"] == [p for p in expected["postings"] if p[0] <= mark]
            assert partial["transactions"] == [t for t in expected["transactions"] if t[0] <= mark]
            if attempt == 2:
                for chunk in batched(items, [50]):
                    projector.apply(chunk)
    assert dump(ledger_url) == expected


def test_two_projectors_on_one_database(ledger_url: str, second_url: str) -> None:
    items = stream(7, 600)
    expected = reference(second_url, items)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(sizes: list[int]) -> None:
        try:
            with Projector(ledger_url, assets=ASSETS) as projector:
                barrier.wait(timeout=30)
                for chunk in batched(items, sizes):
                    projector.apply(chunk)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in ([5, 9], [7, 3, 11])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert dump(ledger_url) == expected


def test_one_projector_from_several_threads(ledger_url: str, second_url: str) -> None:
    items = stream(8, 300)
    expected = reference(second_url, items)
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.migrate()
        chunks = batched(items, [13])
        threads = [
            threading.Thread(target=lambda: [projector.apply(c) for c in chunks]) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert dump(ledger_url) == expected


class ListSource:
    """An event source over a list, as ``Replayer.events`` would give it."""

    def __init__(self, items: list[BatchItem]) -> None:
        self.items = items
        self.asked: list[int] = []

    def events(self, after_seq: int, until_seq: int | None = None) -> Iterator[Any]:
        self.asked.append(after_seq)
        return iter([i for i in self.items if i[0] > after_seq])


def test_catch_up_applies_what_comes_after_the_mark(ledger_url: str, second_url: str) -> None:
    items = stream(9, 500)
    expected = reference(second_url, items)
    source = ListSource(items)
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.apply(items[:123])
        assert projector.catch_up(source, batch_size=37) == 500
        assert projector.catch_up(source, batch_size=37) == 500
    assert source.asked == [123, 500]
    assert dump(ledger_url) == expected


def test_catch_up_from_a_journal(ledger_url: str, tmp_path: Path) -> None:
    """The engine's own events are skipped, the mark follows the journal; clearing events the
    source hands out are settled."""
    data = tmp_path / "data"
    commands = build_commands(600)
    with JournalWriter(data / JOURNAL_DIR, fsync=False) as journal:
        for cmd in commands:
            journal.append(cmd.seq, encode(cmd))
    replayer = Replayer(data, new_core)

    class WithDeposits:
        def events(self, after_seq: int, until_seq: int | None = None) -> Iterator[Any]:
            for seq, ts, events in replayer.events(after_seq, until_seq):
                yield seq, ts, [*events, Deposited(seq % 5 + 1, "BTC", seq, f"d{seq}")]

    with Projector(ledger_url, assets=ASSETS) as projector:
        assert projector.catch_up(replayer, batch_size=100) == 600
        assert dump(ledger_url)["postings"] == []
        assert projector.catch_up(WithDeposits(), batch_size=64) == 600  # nothing after 600
    with JournalWriter(data / JOURNAL_DIR, fsync=False) as journal:
        more = build_commands(700)[600:]
        for cmd in more:
            journal.append(cmd.seq, encode(cmd))
    with Projector(ledger_url, assets=ASSETS) as projector:
        assert projector.catch_up(WithDeposits(), batch_size=64) == 700
    d = dump(ledger_url)
    assert [t[0] for t in d["transactions"]] == list(range(601, 701))
    assert sum(b for a, b, _ in d["balances"] if a[0] == "participant") == sum(range(601, 701))
