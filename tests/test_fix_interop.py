"""Interop with QuickFIX: the real QuickFIX C++ initiator, in its own process
(``tests/quickfix_client.py``), against ``venue run`` in a subprocess.

The client loads the venue's dictionary, ``fix_specs/FIX44-venue.xml``, with
``UseDataDictionary=Y`` and ``ValidateUserDefinedFields=Y``: QuickFIX checks every message the
venue sends, the custom tags 25001-25006 included, before its application sees it, and answers a
message that fails with a session Reject (35=3). The client reports every message it sends and
receives, session messages included, so each test ends by checking that QuickFIX never rejected
anything (no 35=3 sent) and that the venue never rejected QuickFIX (no 35=3 or 35=j received).

The venue runs the shipped configuration (its assets and fees, so fills carry a Commission) in a
temporary data dir, on a free FIX port; the accounts of CLIENT1 (1001) and CLIENT2 (1002) are
funded through the admin API first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("quickfix") is None:  # pragma: no cover - the dev extra has it
    if os.environ.get("CI"):
        raise ImportError("the quickfix package is required for the interop tests")
    pytest.skip("the quickfix package is not installed", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent
CLIENT = Path(__file__).resolve().parent / "quickfix_client.py"
SHIPPED = (REPO / "config" / "venue.toml").read_text(encoding="utf-8")
SYMBOL = "BTC-USDT"
ACCOUNT_A, ACCOUNT_B = 1001, 1002
#: Tags compared as decimals: "0.40000" and "0.4" are the same quantity.
DECIMAL_TAGS = frozenset({6, 12, 14, 31, 32, 38, 44, 99, 151, 152})
TIMEOUT = 10.0

Fields = dict[int, str]


def parse(raw: str) -> list[tuple[int, str]]:
    """``"8=FIX.4.4|9=...|"`` as (tag, value) pairs in order."""
    pairs = []
    for part in raw.strip("|").split("|"):
        tag, _, value = part.partition("=")
        pairs.append((int(tag), value))
    return pairs


def now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Lines:
    """A stream read line by line in a thread, every line kept."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
            self.queue.put(line)

    def text(self) -> str:
        return "".join(self.lines)


class Venue:
    """``venue run`` in a subprocess: the shipped configuration, a data dir, a FIX port."""

    def __init__(self, config: Path, data_dir: Path, fix_port: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "venue.cli",
                "run",
                "--config",
                str(config),
                "--data-dir",
                str(data_dir),
                "--fix-port",
                str(fix_port),
                "--admin-port",
                "0",
                "--rest-port",
                "0",
                "--admin-token-file",
                str(data_dir.parent / "admin.token"),
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stdout = _Lines(self.proc.stdout)
        self.stderr = _Lines(self.proc.stderr)
        running = self._wait_line(r"venue: running; admin API on (http://[0-9.]+:\d+); FIX on ")
        self.url = running.group(1)
        self.token = (data_dir.parent / "admin.token").read_text().strip()

    def _wait_line(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + 30
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            try:
                line = self.stdout.queue.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = regex.search(line)
            if match:
                return match
        self.kill()
        raise AssertionError(
            f"the venue did not start: stdout {self.stdout.text()!r} stderr {self.stderr.text()!r}"
        )

    def post(self, path: str, body: dict[str, object]) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 200
            return json.loads(response.read())

    def fund(self) -> None:
        for account in (ACCOUNT_A, ACCOUNT_B):
            for asset, amount in (("BTC", "10"), ("USDT", "1000000")):
                body = {"account": account, "asset": asset, "amount": amount, "ref": "interop"}
                self.post("/v1/deposits", body)

    def stop(self) -> int:
        """SIGINT, as an operator stops it; the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def check_stderr(self) -> None:
        text = self.stderr.text()
        assert "Traceback" not in text, text
        assert "too low" not in text, text


@dataclass
class Record:
    """One line of the client: an event, or a message sent or received."""

    event: str
    kind: str = ""
    raw: str = ""
    other: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[int, str]] = field(default_factory=list)

    @property
    def fields(self) -> Fields:
        return dict(self.pairs)

    @property
    def msg_type(self) -> str:
        return self.fields.get(35, "")

    @property
    def seq(self) -> int:
        return int(self.fields.get(34, "0"))

    @property
    def poss_dup(self) -> bool:
        return self.fields.get(43) == "Y"


class Client:
    """``tests/quickfix_client.py`` in a subprocess: commands in, JSON lines out."""

    def __init__(
        self,
        port: int,
        sender: str,
        directory: Path,
        venue: Venue,
        *,
        cancel_on_disconnect: str | None = "N",
    ) -> None:
        self.directory = directory
        self.sender = sender
        self.venue = venue
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(CLIENT),
                "--port",
                str(port),
                "--sender",
                sender,
                "--dir",
                str(directory),
                *(
                    ()
                    if cancel_on_disconnect is None
                    else ("--cancel-on-disconnect", cancel_on_disconnect)
                ),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.records: list[Record] = []
        self._changed = threading.Condition()
        self.stderr = _Lines(self.proc.stderr)
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            try:
                data = json.loads(line)
            except ValueError:
                data = {"event": "output", "line": line}
            record = Record(str(data.pop("event")), str(data.pop("kind", "")))
            raw = str(data.pop("msg", ""))
            if raw:
                record.raw = raw
                record.pairs = parse(raw)
            record.other = {k: str(v) for k, v in data.items()}
            with self._changed:
                self.records.append(record)
                self._changed.notify_all()

    # -- commands ---------------------------------------------------------------------------------

    def command(self, **command: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def send(self, *fields: tuple[int, object]) -> None:
        self.command(send="|".join(f"{tag}={value}" for tag, value in fields))

    def quit(self) -> None:
        """Logout, stop the initiator, exit."""
        self.command(quit=True)
        self.wait(lambda r: r.event == "stopped", "the client to stop")
        self.proc.wait(TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    # -- waiting ----------------------------------------------------------------------------------

    def mark(self) -> int:
        with self._changed:
            return len(self.records)

    def wait(
        self,
        match: Callable[[Record], bool],
        what: str,
        *,
        since: int = 0,
        timeout: float = TIMEOUT,
    ) -> Record:
        deadline = time.monotonic() + timeout
        index = since
        with self._changed:
            while True:
                while index < len(self.records):
                    record = self.records[index]
                    index += 1
                    if match(record):
                        return record
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and index == len(self.records)):
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(f"{self.sender}: timed out waiting for {what}\n{self.transcript()}")

    def wait_logon(self, since: int = 0) -> Record:
        return self.wait(lambda r: r.event == "logon", "logon", since=since)

    def received(self, msg_type: str, since: int = 0, **expected: object) -> Record:
        """The first message of ``msg_type`` received after ``since`` whose fields have the given
        values (``tag_11="c1"``)."""
        want = {int(k.removeprefix("tag_")): str(v) for k, v in expected.items()}

        def match(r: Record) -> bool:
            if r.event != "recv" or r.msg_type != msg_type:
                return False
            got = r.fields
            return all(got.get(tag) == value for tag, value in want.items())

        return self.wait(match, f"35={msg_type} with {want}", since=since)

    def execution_report(self, cl_ord_id: str, exec_type: str, since: int = 0) -> Record:
        return self.received("8", since, tag_11=cl_ord_id, tag_150=exec_type)

    def messages(self, event: str) -> list[Record]:
        return [r for r in self.records if r.event == event]

    def transcript(self, last: int = 40) -> str:
        lines = []
        for r in self.records[-last:]:
            lines.append(f"  {r.event} {r.kind} {r.raw or r.other}")
        event_log = self.event_log()
        return (
            "client records:\n"
            + "\n".join(lines)
            + f"\nclient stderr: {self.stderr.text()!r}"
            + f"\nQuickFIX event log:\n{event_log}"
            + f"\nvenue stderr: {self.venue.stderr.text()[-3000:]}"
        )

    def event_log(self) -> str:
        path = self.directory / "log" / f"FIX.4.4-{self.sender}-VENUE.event.current.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def assert_clean(self) -> None:
        """QuickFIX rejected nothing the venue sent, the venue rejected nothing QuickFIX sent."""
        problems = [
            r
            for r in self.records
            if r.event == "error"
            or (r.event == "send" and r.msg_type == "3")
            or (r.event == "recv" and r.msg_type in ("3", "j"))
        ]
        assert not problems, f"{self.sender}: rejects or errors\n{self.transcript(80)}"
        log = self.event_log().lower()
        for bad in ("rejected", "invalid message", "too low", "received reject"):
            assert bad not in log, f"{self.sender}: {bad!r} in the event log\n{self.event_log()}"


def check(record: Record, **expected: object) -> None:
    """Fields of a message: ``tag_32="0.4"``; decimals compared as numbers."""
    got = record.fields
    for key, value in expected.items():
        tag = int(key.removeprefix("tag_"))
        actual = got.get(tag)
        if value is None:
            assert actual is None, f"tag {tag} should be absent: {record.raw}"
        elif tag in DECIMAL_TAGS and actual is not None:
            assert Decimal(actual) == Decimal(str(value)), f"tag {tag}: {record.raw}"
        else:
            assert actual == str(value), f"tag {tag}: {actual!r} != {value!r} in {record.raw}"


def limit(cl_ord_id: str, side: str, qty: str, price: str) -> tuple[tuple[int, object], ...]:
    return (
        (35, "D"),
        (11, cl_ord_id),
        (55, SYMBOL),
        (54, side),
        (60, now()),
        (38, qty),
        (40, "2"),
        (44, price),
        (59, "1"),
    )


def cancel(cl_ord_id: str, orig: str, side: str) -> tuple[tuple[int, object], ...]:
    return ((35, "F"), (11, cl_ord_id), (41, orig), (55, SYMBOL), (54, side), (60, now()))


@dataclass
class Setup:
    tmp: Path
    config: Path
    data_dir: Path
    fix_port: int
    venues: list[Venue] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)

    def start_venue(self) -> Venue:
        venue = Venue(self.config, self.data_dir, self.fix_port)
        self.venues.append(venue)
        for client in self.clients:
            client.venue = venue
        return venue

    def client(self, sender: str, **options: str | None) -> Client:
        client = Client(self.fix_port, sender, self.tmp / sender, self.venues[-1], **options)
        self.clients.append(client)
        return client


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    data_dir = tmp_path / "data"
    config = tmp_path / "venue.toml"
    config.write_text(
        SHIPPED.replace('data_dir = "data"', f'data_dir = "{data_dir}"'), encoding="utf-8"
    )
    env = Setup(tmp_path, config, data_dir, free_port())
    try:
        yield env
    finally:
        for client in env.clients:
            client.close()
        for venue in env.venues:
            venue.kill()
    for venue in env.venues:
        venue.check_stderr()


def _logged_on(setup: Setup, *senders: str) -> list[Client]:
    clients = [setup.client(sender) for sender in senders]
    for client in clients:
        client.wait_logon()
    return clients


def test_logon_passes_quickfix_validation(setup: Setup) -> None:
    setup.start_venue()
    a, b = _logged_on(setup, "CLIENT1", "CLIENT2")
    for client in (a, b):
        sent = client.wait(lambda r: r.event == "send" and r.msg_type == "A", "the Logon")
        check(sent, tag_98=0, tag_108=30, tag_25004="N", tag_141=None)
        answer = client.received("A")  # fromAdmin: QuickFIX validated it
        check(answer, tag_49="VENUE", tag_56=client.sender, tag_98=0, tag_108=30, tag_141=None)
        assert answer.seq == 1 and sent.seq == 1
    for client in (a, b):
        client.quit()
        client.assert_clean()
        assert [r.msg_type for r in client.messages("recv")] == ["A", "5"]


def test_two_sessions_trade_with_each_other(setup: Setup) -> None:
    venue = setup.start_venue()
    venue.fund()
    a, b = _logged_on(setup, "CLIENT1", "CLIENT2")

    a.send(*limit("A-BUY-1", "1", "1.00000", "95000.00"))
    new_a = a.execution_report("A-BUY-1", "0")
    check(
        new_a,
        tag_39=0,
        tag_1=ACCOUNT_A,
        tag_55=SYMBOL,
        tag_54=1,
        tag_40=2,
        tag_59=1,
        tag_38="1",
        tag_44="95000",
        tag_151="1",
        tag_14="0",
        tag_6="0",
    )
    order_a = new_a.fields[37]

    b.send(*limit("B-SELL-1", "2", "0.40000", "94990.00"))
    new_b = b.execution_report("B-SELL-1", "0")
    check(new_b, tag_39=0, tag_1=ACCOUNT_B, tag_54=2, tag_38="0.4", tag_44="94990", tag_151="0.4")
    # the taker fills at the maker's price; fees are 0.1 %, each side paying in what it receives
    fill_b = b.execution_report("B-SELL-1", "F")
    check(
        fill_b,
        tag_37=new_b.fields[37],
        tag_39=2,
        tag_32="0.4",
        tag_31="95000",
        tag_14="0.4",
        tag_151="0",
        tag_6="95000",
        tag_851=2,
        tag_12="38",
        tag_13=3,
        tag_479="USDT",
    )
    fill_a = a.execution_report("A-BUY-1", "F")
    check(
        fill_a,
        tag_37=order_a,
        tag_39=1,
        tag_32="0.4",
        tag_31="95000",
        tag_14="0.4",
        tag_151="0.6",
        tag_6="95000",
        tag_851=1,
        tag_12="0.0004",
        tag_13=3,
        tag_479="BTC",
    )
    # New before Trade, for both
    assert a.records.index(new_a) < a.records.index(fill_a)
    assert b.records.index(new_b) < b.records.index(fill_b)

    # a second taker completes A's order at a better price for A
    b.send(*limit("B-SELL-2", "2", "0.60000", "95000.00"))
    fill_a2 = a.received("8", tag_11="A-BUY-1", tag_150="F", tag_39=2)
    check(fill_a2, tag_32="0.6", tag_31="95000", tag_14="1", tag_151="0", tag_6="95000")
    b.execution_report("B-SELL-2", "F")
    for client in (a, b):
        client.quit()
        client.assert_clean()


def test_cancel_replace_and_mass_cancel(setup: Setup) -> None:
    venue = setup.start_venue()
    venue.fund()
    (a,) = _logged_on(setup, "CLIENT1")

    a.send(*limit("C-1", "1", "0.10000", "94000.00"))
    order_1 = a.execution_report("C-1", "0").fields[37]
    a.send(*cancel("C-1-X", "C-1", "1"))
    cancelled = a.execution_report("C-1-X", "4")
    check(cancelled, tag_37=order_1, tag_41="C-1", tag_39=4, tag_151=0, tag_14=0, tag_25005=1)
    # refusals pass QuickFIX's validation too: OrderCancelReject, a rejected order
    a.send(*cancel("C-1-Y", "C-1", "1"))
    refused = a.received("9", tag_11="C-1-Y")
    check(refused, tag_41="C-1", tag_434=1, tag_102=1, tag_25006=17, tag_58="UNKNOWN_ORDER")
    a.send(*limit("C-BAD", "1", "0.10000", "94000.005"))
    rejected = a.execution_report("C-BAD", "8")
    check(rejected, tag_39=8, tag_103=18, tag_25006=7, tag_151=0, tag_14=0)

    a.send(*limit("C-2", "1", "0.20000", "94100.00"))
    order_2 = a.execution_report("C-2", "0").fields[37]
    a.send(
        (35, "G"),
        (11, "C-2-R"),
        (41, "C-2"),
        (55, SYMBOL),
        (54, "1"),
        (60, now()),
        (38, "0.30000"),
        (40, "2"),
        (44, "94200.00"),
    )
    replaced = a.execution_report("C-2-R", "5")
    check(
        replaced,
        tag_37=order_2,
        tag_41="C-2",
        tag_39=0,
        tag_38="0.3",
        tag_44="94200",
        tag_151="0.3",
        tag_14=0,
    )

    a.send(*limit("C-3", "1", "0.10000", "94300.00"))
    order_3 = a.execution_report("C-3", "0").fields[37]
    a.send((35, "q"), (11, "MC-1"), (530, "7"), (60, now()))
    report = a.received("r", tag_11="MC-1")
    check(report, tag_530=7, tag_531=7, tag_533=2, tag_534=2)
    affected = sorted(v for t, v in report.pairs if t == 535)
    assert affected == sorted([order_2, order_3]), report.raw
    listed = sorted(v for t, v in report.pairs if t == 41)
    assert listed == ["C-2-R", "C-3"], report.raw
    for clid, order_id in (("C-2-R", order_2), ("C-3", order_3)):
        done = a.received("8", tag_37=order_id, tag_150=4)
        check(done, tag_11=clid, tag_39=4, tag_151=0, tag_25005=2)
    a.quit()
    a.assert_clean()


def test_reconnect_recovers_missed_fills_through_resend(setup: Setup) -> None:
    venue = setup.start_venue()
    venue.fund()
    a, b = _logged_on(setup, "CLIENT1", "CLIENT2")
    a.send(*limit("R-BUY-1", "1", "1.00000", "95000.00"))
    order_a = a.execution_report("R-BUY-1", "0").fields[37]
    a.quit()  # Logout with CancelOnDisconnect=N: the order stays
    a.assert_clean()
    last_received = max(r.seq for r in a.messages("recv"))  # the venue's Logout

    b.send(*limit("R-SELL-1", "2", "0.25000", "95000.00"))
    b.execution_report("R-SELL-1", "F")

    # the same store: no reset, the venue's Logon is ahead, QuickFIX asks for the gap
    a2 = setup.client("CLIENT1")
    logon = a2.wait(lambda r: r.event == "send" and r.msg_type == "A", "the Logon")
    check(logon, tag_141=None)
    answer = a2.received("A")
    assert answer.seq > last_received + 1, answer.raw
    resend = a2.wait(lambda r: r.event == "send" and r.msg_type == "2", "a ResendRequest")
    check(resend, tag_7=last_received + 1)
    fill = a2.received("8", tag_11="R-BUY-1", tag_150="F")
    check(
        fill,
        tag_43="Y",
        tag_37=order_a,
        tag_39=1,
        tag_32="0.25",
        tag_31="95000",
        tag_14="0.25",
        tag_151="0.75",
        tag_6="95000",
        tag_851=1,
        tag_479="BTC",
    )
    assert 122 in fill.fields, fill.raw
    a2.wait_logon()
    # and the session goes on: the resting order still trades, live this time
    b.send(*limit("R-SELL-2", "2", "0.75000", "95000.00"))
    live = a2.received("8", tag_11="R-BUY-1", tag_150="F", tag_39=2)
    check(live, tag_43=None, tag_32="0.75", tag_14="1", tag_151="0")
    for client in (a2, b):
        client.quit()
        client.assert_clean()


def test_venue_restart_keeps_sequence_numbers(setup: Setup) -> None:
    """The client logs out and stays away while the venue restarts (as for a maintenance
    window), then logs on again: both sides continue their sequence numbers exactly.

    It must stay away: QuickFIX 1.16 ignores a refused connect and "sends" its Logon anyway, so
    each reconnect attempt (every second) while nothing listens uses one of its sequence
    numbers; that case is the next test."""
    venue = setup.start_venue()
    venue.fund()
    (a,) = _logged_on(setup, "CLIENT1")
    a.send(*limit("S-BUY-1", "1", "0.50000", "94000.00"))
    order_a = a.execution_report("S-BUY-1", "0").fields[37]
    mark = a.mark()
    a.command(logout="maintenance")
    a.wait(lambda r: r.event == "logout", "the Logout", since=mark)
    before_sent = max(r.seq for r in a.messages("send"))
    before_received = max(r.seq for r in a.messages("recv"))

    assert venue.stop() == 0, venue.stderr.text()
    mark = a.mark()
    setup.start_venue()  # same data dir, same FIX port
    a.command(logon=True)
    a.wait_logon(since=mark)

    logon = a.wait(lambda r: r.event == "send" and r.msg_type == "A", "the Logon", since=mark)
    check(logon, tag_141=None)
    assert logon.seq == before_sent + 1, logon.raw
    answer = a.received("A", since=mark)
    check(answer, tag_141=None)
    assert answer.seq == before_received + 1, answer.raw

    a.send(*cancel("S-BUY-1-X", "S-BUY-1", "1"))
    done = a.execution_report("S-BUY-1-X", "4", since=mark)
    check(done, tag_37=order_a, tag_41="S-BUY-1", tag_39=4, tag_151=0, tag_25005=1)
    assert done.seq == answer.seq + 1, done.raw
    a.quit()
    a.assert_clean()
    # sequence numbers continued on both sides: no gap, no reset, no resend
    for event in ("send", "recv"):
        seqs = [r.seq for r in a.messages(event) if not r.poss_dup]
        assert seqs == list(range(1, len(seqs) + 1)), (event, seqs)
    assert not [r for r in a.records if r.msg_type in ("2", "4")], a.transcript()


def test_venue_restart_while_the_client_retries_fills_its_gap(setup: Setup) -> None:
    """The venue's restart drops the connection and QuickFIX retries every second while
    nothing listens, using a sequence number per attempt. The venue stays down until one
    attempt has been made, so the gap is certain: it answers the Logon with its own next
    number, asks for the missing range, takes the gap fill, and the session goes on."""
    venue = setup.start_venue()
    venue.fund()
    (a,) = _logged_on(setup, "CLIENT1")
    a.send(*limit("G-BUY-1", "1", "0.50000", "94000.00"))
    order_a = a.execution_report("G-BUY-1", "0").fields[37]
    before_sent = max(r.seq for r in a.messages("send"))
    before_received = max(r.seq for r in a.messages("recv"))

    assert venue.stop() == 0, venue.stderr.text()
    a.wait(lambda r: r.event == "logout", "the disconnect")
    mark = a.mark()
    lost = a.wait(
        lambda r: r.event == "send" and r.msg_type == "A", "a Logon while down", since=mark
    )
    assert lost.seq == before_sent + 1, lost.raw
    setup.start_venue()
    a.wait_logon(since=mark)

    answer = a.received("A", since=mark)
    assert answer.seq == before_received + 1, answer.raw
    logon = [r for r in a.messages("send") if r.msg_type == "A"][-1]
    assert logon.seq > lost.seq, logon.raw
    resend = a.received("2", since=mark)
    check(resend, tag_7=before_sent + 1, tag_16=0)
    assert resend.seq == answer.seq + 1, resend.raw
    gap_fill = a.wait(lambda r: r.event == "send" and r.msg_type == "4", "the gap fill", since=mark)
    check(gap_fill, tag_34=before_sent + 1, tag_43="Y", tag_123="Y", tag_36=logon.seq + 1)

    a.send(*cancel("G-BUY-1-X", "G-BUY-1", "1"))
    done = a.execution_report("G-BUY-1-X", "4", since=mark)
    check(done, tag_37=order_a, tag_39=4, tag_151=0)
    assert done.seq == resend.seq + 1, done.raw
    a.quit()
    a.assert_clean()
