"""Runs the QuickFIX FIX 4.4 acceptance scripts (``*.def``) against a FIX acceptor over TCP.

The scripts and their format are described in ``../shared/fix-acceptance/README.md``: ``I`` lines
are sent, ``E`` lines are the messages the acceptor must send next, ``iCONNECT`` / ``iDISCONNECT``
open and close the client's connection, ``eDISCONNECT`` waits for the acceptor to close it, and
``I1,`` / ``E2,`` / ``i2,CONNECT`` address one of several connections.

As the QuickFIX harness does, ``<TIME>``, ``<TIME+N>`` and ``<TIME-N>`` become the UTC time of
the moment the line is used, shifted by N seconds, and a message that starts with ``8=`` gets a
correct BodyLength (9) and CheckSum (10) when the line has none; given ones are kept, since some
scripts send wrong ones on purpose. ``E`` lines go through the same steps (SessionReset has
``52=<TIME>`` in them, 2d, 3b and 3c have E lines without 9 or 10).

Every message the acceptor sends must be well framed: 8, 9 and 35 first, 10 last with three digits,
BodyLength and CheckSum true to the bytes. Then it is compared with the expected message:

- lenient (the default): the fields as a multiset of ``tag=value``; 10, 52, 60, 122 and the other
  tags of ``fields.fmt`` must be there as often as expected and match their pattern, their values
  are not compared; Text (58) must start with the expected text; BodyLength (9) is compared only
  when the timestamps and the Text have the expected lengths (several scripts expect a 52 without
  milliseconds together with a BodyLength that counts them);
- strict: the same fields in the same order, each equal or, for the tags of ``fields.fmt``, matching
  the pattern; this is the comparison of the QuickFIX harness.

Where a script expects the acceptor to close the connection, the lenient comparison also accepts
one Logout (35=5) before the close: an acceptor that says why it disconnects is not wrong.

A pattern must match at the start of the value and may leave a tail, as in the QuickFIX harness
where the patterns are not anchored: ``60=\\d{8}-\\d{2}:\\d{2}:\\d{2}`` also accepts fractional
seconds, as the resent messages' OrigSendingTime (122) has them.

Command line (from the repository root; scripts by name, stem or path, all by default)::

    python tests/fix_acceptance.py --port 5001 [--strict] [script ...]
    python -m tests.fix_acceptance --port 5001 [--strict] [script ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

SOH = "\x01"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCRIPTS_DIR = REPO_ROOT.parent / "shared" / "fix-acceptance" / "fix44"
SCRIPTS_ENV = "VENUE_FIX_ACCEPTANCE"

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for an expected message or an expected disconnection."""
HEARTBEAT_WAITS = 2.5
"""With a HeartBtInt below the timeout a script may wait on the acceptor's timers: a Heartbeat after
one interval of silence, a TestRequest after about 1.2, the disconnection after an unanswered
TestRequest after about 2.4. Such waits last this many intervals."""
CLOSE_WAIT = 2.0
"""Seconds a closing client waits for the acceptor to close its side too, so that the session is
over before the next script logs on."""

LENIENT_TAGS = frozenset({"10", "52", "60", "122"})
DEFAULT_PATTERNS = r"""10=\d{3}
42=\d{8}-\d{2}:\d{2}:\d{2}
52=\d{8}-\d{2}:\d{2}:\d{2}|\d{8}-\d{2}:\d{2}:\d{2}[.]\d{3}
60=\d{8}-\d{2}:\d{2}:\d{2}
122=\d{8}-\d{2}:\d{2}:\d{2}
"""
"""The contents of ``fields.fmt``, used when a scripts folder comes without one."""

Patterns = dict[str, re.Pattern[str]]


class ScriptError(ValueError):
    """A line of a script that the runner cannot understand."""


class ScriptFailure(AssertionError):
    """The acceptor did not do what a script expects."""


class Action(Enum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    EXPECT_DISCONNECT = "expect disconnect"
    SEND = "send"
    EXPECT = "expect"


@dataclass(frozen=True, slots=True)
class Step:
    line_no: int
    action: Action
    conn: int
    message: str = ""
    """The message as written, SOH-separated, ``<TIME>`` not yet substituted (SEND and EXPECT)."""


# --- scripts ---------------------------------------------------------------------------------

_CONN_PREFIX = re.compile(r"([IEie])(\d+),(.*)\Z", re.DOTALL)


def parse_script(text: str) -> list[Step]:
    """The steps of a script; ``text`` is the file decoded as latin-1 (SOH kept)."""
    steps: list[Step] = []
    for line_no, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        prefixed = _CONN_PREFIX.match(line)
        if prefixed:
            kind, conn, body = prefixed[1], int(prefixed[2]), prefixed[3]
        else:
            kind, conn, body = line[0], 1, line[1:]
        if kind == "I":
            steps.append(Step(line_no, Action.SEND, conn, body))
        elif kind == "E":
            steps.append(Step(line_no, Action.EXPECT, conn, body))
        elif kind == "i" and body.strip() == "CONNECT":
            steps.append(Step(line_no, Action.CONNECT, conn))
        elif kind == "i" and body.strip() == "DISCONNECT":
            steps.append(Step(line_no, Action.DISCONNECT, conn))
        elif kind == "e" and body.strip() == "DISCONNECT":
            steps.append(Step(line_no, Action.EXPECT_DISCONNECT, conn))
        else:
            raise ScriptError(f"line {line_no}: cannot understand {show(line)!r}")
    return steps


def read_script(path: Path) -> list[Step]:
    try:
        return parse_script(path.read_bytes().decode("latin-1"))
    except ScriptError as exc:
        raise ScriptError(f"{path.name} {exc}") from None


_TIME = re.compile(r"<TIME(?:([+-])(\d+))?>")


def substitute_time(message: str, now: datetime | None = None) -> str:
    """``<TIME>``, ``<TIME+N>``, ``<TIME-N>`` as the UTC time ``now`` shifted by N seconds."""
    at = now if now is not None else datetime.now(UTC)

    def replace(match: re.Match[str]) -> str:
        shift = int(match[2] or 0)
        moment = at - timedelta(seconds=shift) if match[1] == "-" else at + timedelta(seconds=shift)
        return moment.strftime("%Y%m%d-%H:%M:%S")

    return _TIME.sub(replace, message)


def checksum(data: str) -> int:
    return sum(data.encode("latin-1")) % 256


def complete_message(message: str) -> str:
    """Adds BodyLength right after BeginString and CheckSum at the end when they are missing.

    Only messages that start with ``8=`` are touched; present fields are kept even when wrong.
    """
    head_end = message.find(SOH) + 1
    if not message.startswith("8=") or head_end == 0:
        return message
    head, rest = message[:head_end], message[head_end:]
    trailer = ""
    at = rest.find(SOH + "10=")
    if at >= 0:
        rest, trailer = rest[: at + 1], rest[at + 1 :]
    elif rest.startswith("10="):
        rest, trailer = "", rest
    length = "" if (SOH + "9=") in message else f"9={len(rest)}{SOH}"
    if not trailer:
        trailer = f"10={checksum(head + length + rest):03d}{SOH}"
    return head + length + rest + trailer


def load_patterns(path: Path | None = None) -> Patterns:
    """``fields.fmt``: one ``tag=regex`` a line (``path`` None or absent: the shipped patterns)."""
    text = path.read_text(encoding="utf-8") if path is not None and path.is_file() else None
    patterns: Patterns = {}
    for line in (text if text is not None else DEFAULT_PATTERNS).splitlines():
        tag, sep, regex = line.strip().partition("=")
        if sep:
            patterns[tag] = re.compile(regex)
    return patterns


def scripts_dir() -> Path:
    """``$VENUE_FIX_ACCEPTANCE``, else ``../shared/fix-acceptance/fix44`` from the repository."""
    configured = os.environ.get(SCRIPTS_ENV)
    return Path(configured) if configured else DEFAULT_SCRIPTS_DIR


def patterns_path(directory: Path) -> Path:
    """``fields.fmt`` next to the scripts' folder (or in it)."""
    inside = directory / "fields.fmt"
    return inside if inside.is_file() else directory.parent / "fields.fmt"


# --- comparing -------------------------------------------------------------------------------


def show(message: str | bytes) -> str:
    """A message for people: ``|`` for SOH, other control bytes escaped."""
    text = message.decode("latin-1") if isinstance(message, bytes) else message
    return "".join("|" if c == SOH else c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in text)


def split_fields(message: str) -> list[tuple[str, str]]:
    """``(tag, value)`` pairs; a field without ``=`` has the whole text as tag and value ``""``."""
    pieces = message.split(SOH)
    if pieces and pieces[-1] == "":
        pieces.pop()
    return [(tag, value) for tag, _, value in (piece.partition("=") for piece in pieces)]


def check_framing(message: str) -> list[str]:
    """What is wrong with the framing of a received message: the places of 8, 9, 35 and 10, and
    whether BodyLength and CheckSum are true."""
    problems: list[str] = []
    fields = split_fields(message)
    tags = [tag for tag, _ in fields]
    if tags[:3] != ["8", "9", "35"]:
        problems.append(f"the message must start with 8, 9, 35; it starts with {tags[:3]}")
    if not message.endswith(SOH):
        problems.append("the message does not end with SOH")
    if not fields or tags[-1] != "10" or tags.count("10") != 1:
        problems.append("CheckSum (10) must be the last field and appear once")
        return problems
    body_start = message.find(SOH + "9=")
    trailer = message.rfind(SOH + "10=") + 1
    cs_value = fields[-1][1]
    if re.fullmatch(r"\d{3}", cs_value) is None:
        problems.append(f"CheckSum must be three digits, got 10={cs_value}")
    elif int(cs_value) != checksum(message[:trailer]):
        problems.append(
            f"CheckSum 10={cs_value} is wrong: the bytes sum to {checksum(message[:trailer]):03d}"
        )
    if body_start >= 0:
        length_end = message.find(SOH, body_start + 1)
        declared = message[body_start + 3 : length_end]
        actual = trailer - length_end - 1
        if declared != str(actual):
            problems.append(f"BodyLength 9={declared} is wrong: the body has {actual} bytes")
    return problems


def _plain_diff(expected: Counter[tuple[str, str]], actual: Counter[tuple[str, str]]) -> list[str]:
    missing, extra = expected - actual, actual - expected
    missing_by_tag: dict[str, list[str]] = {}
    extra_by_tag: dict[str, list[str]] = {}
    for (tag, value), count in missing.items():
        missing_by_tag.setdefault(tag, []).extend([value] * count)
    for (tag, value), count in extra.items():
        extra_by_tag.setdefault(tag, []).extend([value] * count)
    problems: list[str] = []
    for tag, values in missing_by_tag.items():
        got = extra_by_tag.pop(tag, [])
        if len(values) == 1 and len(got) == 1:
            problems.append(f"{tag}: expected {tag}={values[0]}, got {tag}={got[0]}")
            continue
        problems.extend(f"missing {tag}={value}" for value in values)
        problems.extend(f"unexpected {tag}={value}" for value in got)
    for tag, values in extra_by_tag.items():
        problems.extend(f"unexpected {tag}={value}" for value in values)
    return problems


def _values(fields: list[tuple[str, str]], tag: str) -> list[str]:
    return [value for t, value in fields if t == tag]


def compare_lenient(expected: str, actual: str, patterns: Patterns) -> list[str]:
    exp, act = split_fields(expected), split_fields(actual)
    loose = LENIENT_TAGS | patterns.keys()
    special = loose | {"9", "58"}
    problems = _plain_diff(
        Counter(f for f in exp if f[0] not in special),
        Counter(f for f in act if f[0] not in special),
    )
    same_lengths = True
    for tag in sorted(loose | {"58"}, key=_tag_order):
        want, got = _values(exp, tag), _values(act, tag)
        if len(want) != len(got):
            same_lengths = False
            if not got:
                problems.append(f"missing {tag}={want[0]}")
            elif not want:
                problems.extend(f"unexpected {tag}={value}" for value in got)
            else:
                problems.append(f"{tag} expected {len(want)} times, found {len(got)} times")
            continue
        if tag == "58":
            for text, got_text in zip(want, got, strict=True):
                if not got_text.startswith(text):
                    problems.append(f"58: expected text starting {text!r}, got {got_text!r}")
                same_lengths = same_lengths and got_text == text
            continue
        pattern = patterns.get(tag)
        for value, got_value in zip(want, got, strict=True):
            if pattern is not None and pattern.match(got_value) is None:
                problems.append(f"{tag}={got_value} does not match {pattern.pattern}")
            if tag != "10" and len(value) != len(got_value):
                same_lengths = False
    want_length, got_length = _values(exp, "9"), _values(act, "9")
    if same_lengths and want_length and want_length != got_length:
        problems.append(f"9: expected 9={want_length[0]}, got 9={','.join(got_length)}")
    return problems


def compare_strict(expected: str, actual: str, patterns: Patterns) -> list[str]:
    exp, act = split_fields(expected), split_fields(actual)
    problems: list[str] = []
    for index, ((tag, value), (got_tag, got_value)) in enumerate(zip(exp, act, strict=False), 1):
        if tag != got_tag:
            problems.append(f"field {index}: expected tag {tag}, found {got_tag}={got_value}")
            break
        pattern = patterns.get(tag)
        if pattern is None and value != got_value:
            problems.append(f"{tag}: expected {tag}={value}, got {tag}={got_value}")
        elif pattern is not None and pattern.match(got_value) is None:
            problems.append(f"{tag}={got_value} does not match {pattern.pattern}")
    if len(exp) != len(act):
        problems.append(f"expected {len(exp)} fields, got {len(act)}")
    return problems


def compare(expected: str, actual: str, patterns: Patterns, *, strict: bool = False) -> list[str]:
    """The differences between an expected and a received message (empty: they agree)."""
    problems = check_framing(actual)
    if strict:
        return problems + compare_strict(expected, actual, patterns)
    return problems + compare_lenient(expected, actual, patterns)


def _tag_order(tag: str) -> tuple[int, str]:
    return (int(tag), tag) if tag.isdigit() else (-1, tag)


# --- the connection --------------------------------------------------------------------------

_MESSAGE_END = re.compile(rb"\x0110=[^\x01]*\x01")


class Connection:
    """One TCP connection to the acceptor, messages framed from ``8=`` to ``10=nnn<SOH>``."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.eof = False
        self.heartbeat: int | None = None
        """HeartBtInt of the last Logon sent on this connection."""

    def send(self, data: bytes) -> None:
        """Sends ``data``; a connection the acceptor has closed shows at the next read."""
        with contextlib.suppress(OSError):
            self.sock.sendall(data)

    def _frame(self) -> bytes | None:
        end = _MESSAGE_END.search(self.buffer)
        if end is None:
            return None
        message = bytes(self.buffer[: end.end()])
        del self.buffer[: end.end()]
        return message

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:  # reset by the acceptor
            chunk = b""
        if chunk:
            self.buffer += chunk
        else:
            self.eof = True

    def read_message(self, deadline: float) -> bytes | None:
        """The next complete message; None when the acceptor closed the connection first.

        Raises TimeoutError at ``deadline`` (``time.monotonic()``).
        """
        while True:
            message = self._frame()
            if message is not None:
                return message
            if self.eof:
                return None
            self._receive(deadline)

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Closes the client's side and waits (at most ``wait`` s) for the acceptor to close its."""
        try:
            if not self.eof:
                self.sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + wait
                while not self.eof:
                    self.buffer.clear()
                    self._receive(deadline)
        except OSError:  # including TimeoutError
            pass
        finally:
            self.sock.close()


# --- running a script ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptResult:
    name: str
    seconds: float
    failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


_LOGON_HEARTBEAT = re.compile(r"\x0135=A\x01(?:.*\x01)?108=(\d+)\x01")


class ScriptRunner:
    """Plays one script against the acceptor at ``host:port``."""

    def __init__(
        self,
        path: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        strict: bool = False,
        patterns: Patterns | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = path
        self.port = port
        self.host = host
        self.strict = strict
        self.patterns = patterns if patterns is not None else load_patterns(None)
        self.timeout = timeout
        self.steps = read_script(path)
        self.lines = path.read_bytes().decode("latin-1").split("\n")
        self.conns: dict[int, Connection] = {}

    def run(self) -> None:
        """Raises ScriptFailure at the first step the acceptor gets wrong."""
        try:
            for step in self.steps:
                self._do(step)
        finally:
            for conn in self.conns.values():
                conn.close()
            self.conns.clear()

    def _fail(self, step: Step, *details: str) -> ScriptFailure:
        line = show(self.lines[step.line_no - 1].removesuffix("\r"))
        text = "\n".join([f"{self.path.name} line {step.line_no}: {line}", *details])
        return ScriptFailure(text)

    def _conn(self, step: Step) -> Connection:
        conn = self.conns.get(step.conn)
        if conn is None:
            raise self._fail(step, f"connection {step.conn} is not open")
        return conn

    def _wait(self, conn: Connection) -> float:
        if conn.heartbeat is not None and 0 < conn.heartbeat < self.timeout:
            return max(self.timeout, HEARTBEAT_WAITS * conn.heartbeat)
        return self.timeout

    def _do(self, step: Step) -> None:
        if step.action is Action.CONNECT:
            if step.conn in self.conns:
                raise self._fail(step, f"connection {step.conn} is already open")
            try:
                self.conns[step.conn] = Connection(self.host, self.port, self.timeout)
            except OSError as exc:
                raise self._fail(
                    step, f"cannot connect to {self.host}:{self.port}: {exc}"
                ) from None
        elif step.action is Action.DISCONNECT:
            self._conn(step).close()
            del self.conns[step.conn]
        elif step.action is Action.SEND:
            conn = self._conn(step)
            message = complete_message(substitute_time(step.message))
            logon = _LOGON_HEARTBEAT.search(SOH + message)
            if logon is not None:
                conn.heartbeat = int(logon[1])
            conn.send(message.encode("latin-1"))
        elif step.action is Action.EXPECT:
            self._expect(step)
        else:
            self._expect_disconnect(step)

    def _expect(self, step: Step) -> None:
        conn = self._conn(step)
        expected = complete_message(substitute_time(step.message))
        wait = self._wait(conn)
        try:
            received = conn.read_message(time.monotonic() + wait)
        except TimeoutError:
            raise self._fail(
                step,
                f"expected: {show(expected)}",
                f"actual:   nothing within {wait:g} s",
                *_pending(conn),
            ) from None
        if received is None:
            raise self._fail(
                step,
                f"expected: {show(expected)}",
                "actual:   the acceptor closed the connection",
                *_pending(conn),
            )
        actual = received.decode("latin-1")
        problems = compare(expected, actual, self.patterns, strict=self.strict)
        if problems:
            raise self._fail(
                step,
                f"expected: {show(expected)}",
                f"actual:   {show(actual)}",
                f"differences ({'strict' if self.strict else 'lenient'}):",
                *(f"  - {problem}" for problem in problems),
            )

    def _expect_disconnect(self, step: Step) -> None:
        conn = self._conn(step)
        wait = self._wait(conn)
        try:
            received = conn.read_message(time.monotonic() + wait)
        except TimeoutError:
            raise self._fail(
                step,
                f"expected: the acceptor closes the connection within {wait:g} s",
                "actual:   the connection is still open",
                *_pending(conn),
            ) from None
        if received is not None and not self.strict and b"\x0135=5\x01" in received:
            try:  # lenient: a Logout saying why may come first
                received = conn.read_message(time.monotonic() + wait)
            except TimeoutError:
                raise self._fail(
                    step,
                    f"expected: the acceptor closes the connection within {wait:g} s",
                    "actual:   a Logout, and the connection is still open",
                    *_pending(conn),
                ) from None
        if received is not None:
            raise self._fail(
                step,
                "expected: the acceptor closes the connection",
                f"actual:   {show(received)}",
            )
        if conn.buffer:
            raise self._fail(
                step,
                "expected: the acceptor closes the connection",
                f"actual:   it sent {show(bytes(conn.buffer))} and closed",
            )
        conn.close()
        del self.conns[step.conn]


def _pending(conn: Connection) -> Iterator[str]:
    if conn.buffer:
        yield f"received but incomplete: {show(bytes(conn.buffer))}"


def run_script(
    path: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    strict: bool = False,
    patterns: Patterns | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> float:
    """Runs one script; returns its duration in seconds, raises ScriptFailure on a mismatch."""
    started = time.monotonic()
    ScriptRunner(path, port, host=host, strict=strict, patterns=patterns, timeout=timeout).run()
    return time.monotonic() - started


def run_scripts(
    paths: Iterable[Path],
    port: int,
    *,
    host: str = "127.0.0.1",
    strict: bool = False,
    patterns: Patterns | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    report: Callable[[ScriptResult], None] | None = None,
) -> list[ScriptResult]:
    """Runs scripts one after the other, each reported (when ``report``) as it ends."""
    results: list[ScriptResult] = []
    for path in paths:
        started = time.monotonic()
        failure: str | None = None
        try:
            run_script(path, port, host=host, strict=strict, patterns=patterns, timeout=timeout)
        except (ScriptFailure, ScriptError) as exc:
            failure = str(exc)
        result = ScriptResult(path.stem, time.monotonic() - started, failure)
        results.append(result)
        if report is not None:
            report(result)
    return results


# --- command line ----------------------------------------------------------------------------


def _resolve(directory: Path, names: Sequence[str]) -> list[Path]:
    if not names:
        return sorted(directory.glob("*.def"))
    paths: list[Path] = []
    for name in names:
        candidates = [Path(name), directory / name, directory / f"{name}.def"]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise SystemExit(f"fix_acceptance: no script {name!r} (looked in {directory})")
        paths.append(found)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fix_acceptance", description="Run FIX acceptance scripts against an acceptor."
    )
    parser.add_argument("--port", type=int, required=True, help="the acceptor's FIX port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--strict", action="store_true", help="field order and exact values")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"scripts' folder (default: ${SCRIPTS_ENV} or {DEFAULT_SCRIPTS_DIR})",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("-q", "--quiet", action="store_true", help="no details of failures")
    parser.add_argument("scripts", nargs="*", help="names, stems or paths (default: all)")
    args = parser.parse_args(argv)
    directory: Path = args.dir if args.dir is not None else scripts_dir()
    paths = _resolve(directory, args.scripts)
    if not paths:
        print(f"fix_acceptance: no scripts in {directory}", file=sys.stderr)
        return 2
    patterns = load_patterns(patterns_path(directory))

    def report(result: ScriptResult) -> None:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.name} ({result.seconds:.1f} s)")
        if result.failure is not None and not args.quiet:
            print("    " + result.failure.replace("\n", "\n    "))
        sys.stdout.flush()

    started = time.monotonic()
    results = run_scripts(
        paths,
        args.port,
        host=args.host,
        strict=args.strict,
        patterns=patterns,
        timeout=args.timeout,
        report=report,
    )
    failed = [result.name for result in results if not result.passed]
    print(
        f"{len(results) - len(failed)} passed, {len(failed)} failed "
        f"in {time.monotonic() - started:.1f} s" + (f": {' '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
