"""The FIX 4.4 session layer: logon, sequence numbers, heartbeats, resends, rejects, logout.

One :class:`Session` per configured counterparty (SenderCompID/TargetCompID pair). It outlives
connections: its sequence numbers and the application messages it sent live in a
:class:`~gateway.fix.store.MessageStore`, so a session continues across reconnects and venue
restarts, and messages sent while the counterparty is away are delivered through its
ResendRequest when it logs on again.

Behaviour follows QuickFIX's ``Session`` closely (the QuickFIX acceptance scripts run against
it in ``tests/test_fix_conformance.py``):

- every message is validated against the data dictionary first; a problem is answered with a
  session-level Reject (45, 58, 371, 372, 373) and consumes the sequence number when it was the
  one expected;
- then ``verify``: SendingTime within ``max_latency_s`` (Reject 373=10 and Logout), CompIDs
  (Reject 373=9 and Logout), sequence number too high (queued, one ResendRequest) or too low
  (Logout and disconnect, unless PossDupFlag=Y, then ignored after checking OrigSendingTime);
- ResendRequests are answered from the store: application messages again with PossDupFlag=Y and
  OrigSendingTime, administrative ones replaced by SequenceReset-GapFill;
- heartbeats after HeartBtInt of silence, a TestRequest after 1.2 intervals without input, and
  a disconnect after 2.4;
- Logout handshake, with a disconnect when the answer does not come within ``logout_timeout_s``.

Stricter than QuickFIX where a silent close or a Reject would leave the counterparty guessing: a
message without MsgSeqNum ends the session with a Logout saying so, a Logon whose SendingTime is
out of range or whose HeartBtInt is negative gets a Logout saying why before the disconnect, and
a SequenceReset to a number the store cannot hold is rejected (373=5 on field 36) without moving
anything.

The session never touches a socket: the connection gives it ``write`` and ``close`` callables
(:meth:`attach`) and feeds it parsed messages and timer ticks. That keeps it testable without
I/O and lets one event loop turn batch all writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from gateway.fix.codec import SOH, FixMessage, decode, frame
from gateway.fix.dictionary import (
    MAX_INT_DIGITS,
    REJECT_TEXT,
    DataDictionary,
    SessionRejectReason,
    reject_text,
)
from gateway.fix.errors import FixCodecError, TimestampError
from gateway.fix.store import MessageStore
from gateway.fix.timestamps import format_utc_timestamp, parse_utc_timestamp

__all__ = [
    "Application",
    "BusinessRejectReason",
    "Session",
    "SessionConfig",
]

log = logging.getLogger("gateway.fix.session")

_NS = 1_000_000_000

#: Routing fields swapped on the way back (QuickFIX's reverseRoute).
_REVERSE_ROUTE = (
    (115, 128),  # OnBehalfOfCompID -> DeliverToCompID
    (128, 115),
    (116, 129),  # OnBehalfOfSubID -> DeliverToSubID
    (129, 116),
    (144, 145),  # OnBehalfOfLocationID -> DeliverToLocationID
    (145, 144),
)
#: Header fields the session writes itself; a resent message gets them anew.
_SESSION_HEADER = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 122})
_ADMIN_TYPES = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})
#: The highest sequence number a SequenceReset may set: far below the store's limit (2**63 - 1),
#: so that counting on from it never reaches that limit.
MAX_SEQ = 2**62
NO_MSG_SEQ_NUM = "Received message without MsgSeqNum"
LOGON_BAD_SENDING_TIME = "Invalid Logon message: SendingTime accuracy problem, field=52"


class BusinessRejectReason(IntEnum):
    """BusinessRejectReason (380) values the gateway uses."""

    OTHER = 0
    UNKNOWN_ID = 1
    UNKNOWN_SECURITY = 2
    UNSUPPORTED_MESSAGE_TYPE = 3
    APPLICATION_NOT_AVAILABLE = 4
    CONDITIONALLY_REQUIRED_FIELD_MISSING = 5
    NOT_AUTHORIZED = 6


class Application(Protocol):
    """What runs behind a session: order entry, market data, drop copy, the echo profile."""

    def on_logon(self, session: Session, logon: FixMessage) -> str | None:
        """A Logon passed the session's checks: ``None`` accepts it, a text refuses it (the
        session answers Logout with that text and disconnects)."""

    def on_logout(self, session: Session) -> None:
        """The session was logged on and is no longer (Logout or disconnect)."""

    def from_app(self, session: Session, msg: FixMessage) -> None:
        """An application message, validated and in sequence. May answer through
        ``session.send`` or ``session.business_reject``."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One counterparty's session as the operator configures it."""

    sender_comp_id: str  # ours
    target_comp_id: str  # theirs
    begin_string: str = "FIX.4.4"
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    #: Seconds after midnight UTC at which sequence numbers restart every day (None: never).
    reset_time_utc: int | None = None
    #: SendingTime may differ from the venue's clock by this much (373=10 beyond); 0: no check.
    max_latency_s: float = 120.0
    min_heartbeat_s: int = 1
    max_heartbeat_s: int = 300
    logon_timeout_s: float = 10.0
    logout_timeout_s: float = 2.0
    #: Inbound application messages per second; beyond, a BusinessMessageReject (0: no limit).
    throttle_per_s: int = 0
    #: a throttle breached in this many consecutive seconds ends the session with a Logout
    throttle_logout_after_s: int = 10
    #: Checks a Logon's credentials (password 554, signed RawData 96); a text refuses it.
    authenticate: Callable[[FixMessage], str | None] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def key(self) -> str:
        """The store's name for this session: ``FIX.4.4-ISLD-TW44``."""
        return f"{self.begin_string}-{self.sender_comp_id}-{self.target_comp_id}"


class _Disconnect(Exception):
    """Raised inside message handling to end the connection at once."""


class Session:
    """The state of one FIX session; see the module docstring."""

    def __init__(
        self,
        config: SessionConfig,
        dictionary: DataDictionary,
        store: MessageStore,
        application: Application,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.dictionary = dictionary
        self.store = store
        self.application = application
        self._clock = clock
        self._begin = config.begin_string.encode()
        self._sender = config.sender_comp_id.encode()
        self._target = config.target_comp_id.encode()
        self._header_tail = b"\x0149=" + self._sender + b"\x0152="
        self._write: Callable[[bytes], None] | None = None
        self._close: Callable[[], None] | None = None
        #: told when a Logon is refused (the acceptor counts failures per address)
        self.on_logon_refused: Callable[[], None] | None = None
        #: the connected peer's address ("host:port"), journaled as the origin of its commands
        self.remote = ""
        self._next_sender = store.next_sender_seq()
        self._next_target = store.next_target_seq()
        self._reset_state()
        self._throttle_window = 0
        self._throttle_count = 0
        self._breach_first = 0  # the first second of the current run of breached seconds
        self._breach_last = 0
        self._sent_second = b""
        self._sent_second_value = 0.0

    def _reset_state(self) -> None:
        now = self._clock()
        self.received_logon = False
        self.sent_logon = False
        self.sent_logout = False
        self._sent_logout_at = 0.0
        self._received_reset = False
        self._sent_reset = False
        self._resend_range: tuple[int, int] | None = None
        self._queue: dict[int, FixMessage] = {}
        self.heartbeat_s = 0
        self._test_requests = 0
        self._last_sent = now
        self._last_received = now
        self._connected_at = now

    # -- connection ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._write is not None

    @property
    def logged_on(self) -> bool:
        return self.received_logon and self.sent_logon

    @property
    def next_sender_seq(self) -> int:
        return self._next_sender

    @property
    def next_target_seq(self) -> int:
        return self._next_target

    def attach(self, write: Callable[[bytes], None], close: Callable[[], None]) -> None:
        """A connection took this session (its Logon is about to be processed)."""
        self._reset_state()
        self._write = write
        self._close = close

    def detach(self) -> None:
        """The connection is gone: tell the application, keep the store."""
        was_logged_on = self.logged_on
        self._write = None
        self._close = None
        self._reset_state()
        if self.config.reset_on_disconnect:
            self._reset_store()
        self.store.flush()
        if was_logged_on:
            self.application.on_logout(self)

    def disconnect(self, why: str) -> None:
        """Close the connection (the connection then calls :meth:`detach`)."""
        close = self._close
        if close is not None:
            log.info("%s: disconnecting: %s", self.config.key, why)
            close()

    def _reset_store(self) -> None:
        self.store.reset(self._clock())
        self._next_sender = 1
        self._next_target = 1

    # -- sending ---------------------------------------------------------------------------------

    def send(
        self,
        msg_type: bytes,
        body: bytes = b"",
        route: FixMessage | None = None,
        header: bytes = b"",
        *,
        store: bool = True,
    ) -> int:
        """Send an application message: ``body`` is its encoded fields after the header
        (``b"11=abc\\x01..."``), ``header`` extra header fields (PossResend). Stored for
        resends, and sent now when logged on; its seq. ``store=False`` for what is stale once
        missed (market data): a resend gap-fills it, and it is not written while away."""
        if not store and not self.logged_on:
            return 0
        return self._send(msg_type, header + body if header else body, route, store=store)

    def _send(
        self,
        msg_type: bytes,
        body: bytes,
        route: FixMessage | None = None,
        *,
        store: bool = False,
        seq: int = 0,
        poss_dup: bool = False,
    ) -> int:
        if seq == 0:
            seq = self._next_sender
            self._next_sender = seq + 1
            self.store.set_next_sender_seq(seq + 1)
        now_ns = time.time_ns()
        sending_time = format_utc_timestamp(now_ns)
        head = b"35=%b\x0134=%d" % (msg_type, seq)
        if poss_dup:
            head += b"\x0143=Y"
        head += self._header_tail + sending_time + b"\x0156=" + self._target + SOH
        if poss_dup:
            head += b"122=" + sending_time + SOH
        if route is not None:
            head += _reverse_route(route)
        raw = frame(head + body, self._begin)
        if store:
            self.store.store(seq, raw)
        write = self._write
        if write is not None and (self.logged_on or msg_type in _ADMIN_TYPES or poss_dup):
            write(raw)
            self._last_sent = self._clock()  # the clock the timer compares with
        return seq

    def _send_admin(
        self, msg_type: bytes, body: bytes = b"", route: FixMessage | None = None
    ) -> None:
        self._send(msg_type, body, route)

    def heartbeat(self, test_req_id: bytes | None = None) -> None:
        self._send_admin(b"0", b"" if test_req_id is None else b"112=%b\x01" % test_req_id)

    def logout(self, text: str | None = None) -> None:
        """Start the Logout handshake (the connection closes on the answer or a timeout)."""
        body = b"" if not text else b"58=%b\x01" % _text(text)
        self._send_admin(b"5", body)
        self.sent_logout = True
        self._sent_logout_at = self._clock()

    def reject(
        self, msg: FixMessage, reason: int, tag: int | None = None, text: str | None = None
    ) -> None:
        """A session-level Reject (35=3) of ``msg``; consumes its seq when it was expected."""
        msg_type = msg.msg_type
        seq_raw = msg.get(34)
        if seq_raw is not None and len(seq_raw.lstrip(b"0")) > MAX_INT_DIGITS + 1:
            # out of range: it names no message; RefSeqNum (required) says 0 rather than
            # repeating thousands of digits back
            seq_raw = b"0"
        if (
            msg_type != b"A"
            and msg_type != b"4"
            and seq_raw is not None
            and seq_raw.isdigit()
            and int(seq_raw) == self._next_target
        ):
            self._incr_target()
        if not self.received_logon:
            raise _Disconnect(f"reject before logon: {REJECT_TEXT.get(reason, reason)}")
        parts: list[bytes] = []
        if seq_raw:
            parts.append(b"45=%b\x01" % seq_raw)
        parts.append(b"58=%b\x01" % _text(text or reject_text(reason, tag)))
        if tag is not None:
            parts.append(b"371=%d\x01" % tag)
        if msg_type:
            parts.append(b"372=%b\x01" % msg_type)
        parts.append(b"373=%d\x01" % reason)
        self._send_admin(b"3", b"".join(parts), msg)

    def business_reject(
        self, msg: FixMessage, reason: int, text: str, ref_id: bytes | None = None
    ) -> None:
        """A BusinessMessageReject (35=j) of an application message ``msg``."""
        parts: list[bytes] = []
        seq_raw = msg.get(34)
        if seq_raw:
            parts.append(b"45=%b\x01" % seq_raw)
        parts.append(b"58=%b\x01" % _text(text))
        parts.append(b"372=%b\x01" % msg.msg_type)
        if ref_id:
            parts.append(b"379=%b\x01" % ref_id)
        parts.append(b"380=%d\x01" % reason)
        self.send(b"j", b"".join(parts), msg)

    # -- receiving -------------------------------------------------------------------------------

    def on_message(self, msg: FixMessage) -> None:
        """A parsed message from the connection."""
        try:
            self._next(msg, queued=False)
        except _Disconnect as exc:
            self.disconnect(str(exc))

    def _next(self, msg: FixMessage, *, queued: bool) -> None:
        msg_type = msg.msg_type
        if msg.fields[0][1] != self._begin:
            if msg_type == b"5":
                self._next_logout(msg)
            else:
                self.logout("Incorrect BeginString")
                self._incr_target()
            return
        if msg.get(34) is None:
            # Nothing can be sequenced or rejected by reference: the session cannot go on.
            self.logout(NO_MSG_SEQ_NUM)
            raise _Disconnect(NO_MSG_SEQ_NUM)
        rejection = self.dictionary.validate(msg)
        unsupported = False
        if rejection is not None and rejection.business:
            unsupported, rejection = True, None
        if rejection is not None:
            self.reject(msg, rejection.reason, rejection.tag, rejection.text)
            if msg_type == b"A":
                raise _Disconnect("invalid Logon")
        elif msg_type == b"A":
            self._next_logon(msg)
        elif msg_type == b"0":
            if self._verify(msg):
                self._incr_target()
        elif msg_type == b"1":
            if self._verify(msg):
                self.heartbeat(msg.get(112))
                self._incr_target()
        elif msg_type == b"4":
            self._next_sequence_reset(msg)
        elif msg_type == b"2":
            self._next_resend_request(msg)
        elif msg_type == b"3":
            if self._verify(msg):
                self._incr_target()
        elif msg_type == b"5":
            self._next_logout(msg)
        else:
            if not self._verify(msg):
                return
            if unsupported:
                self.business_reject(
                    msg, BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type"
                )
            elif self._throttled():
                self.business_reject(
                    msg,
                    BusinessRejectReason.OTHER,
                    f"Throttle limit exceeded: {self.config.throttle_per_s} messages per second",
                )
            else:
                self.application.from_app(self, msg)
            self._incr_target()
        if not queued:
            self._next_queued()

    def _throttled(self) -> bool:
        limit = self.config.throttle_per_s
        if not limit:
            return False
        window = int(self._clock())
        if window != self._throttle_window:
            self._throttle_window = window
            self._throttle_count = 0
        self._throttle_count += 1
        if self._throttle_count <= limit:
            return False
        if self._breach_last < window - 1 or not self._breach_first:
            self._breach_first = window  # a new run of breached seconds
        self._breach_last = window
        after = self.config.throttle_logout_after_s
        if after and window - self._breach_first + 1 >= after and not self.sent_logout:
            self.logout(f"Throttle limit exceeded for {after} seconds in a row")
        return True

    def _incr_target(self) -> None:
        self._next_target += 1
        self.store.set_next_target_seq(self._next_target)

    def _set_target(self, seq: int) -> None:
        self._next_target = seq
        self.store.set_next_target_seq(seq)

    def _next_queued(self) -> None:
        while self._queue:
            msg = self._queue.pop(self._next_target, None)
            if msg is None:
                # drop what can never be reached any more
                for seq in [s for s in self._queue if s < self._next_target]:
                    del self._queue[seq]
                return
            if msg.msg_type == b"A" or msg.msg_type == b"2":
                self._incr_target()
            else:
                self._next(msg, queued=True)

    def _verify(
        self, msg: FixMessage, check_too_high: bool = True, check_too_low: bool = True
    ) -> bool:
        msg_type = msg.msg_type
        if not self._valid_logon_state(msg_type):
            raise _Disconnect("message not valid in the logon state")
        if not self._good_time(msg.get(52)):
            if msg_type == b"A" and not self.received_logon:
                # Told why rather than closed on in silence: a clock off is the usual cause.
                self.logout(LOGON_BAD_SENDING_TIME)
                raise _Disconnect(LOGON_BAD_SENDING_TIME)
            self.reject(msg, SessionRejectReason.SENDINGTIME_ACCURACY_PROBLEM)
            self.logout()
            return False
        if msg.get(49) != self._target or msg.get(56) != self._sender:
            self.reject(msg, SessionRejectReason.COMPID_PROBLEM)
            self.logout()
            return False
        seq = _int(msg.get(34))
        if check_too_high and seq > self._next_target:
            self._target_too_high(msg, seq)
            return False
        if check_too_low and seq < self._next_target:
            self._target_too_low(msg, seq)
            return False
        resend = self._resend_range
        if (check_too_high or check_too_low) and resend is not None and seq >= resend[1]:
            self._resend_range = None
        self._last_received = self._clock()
        self._test_requests = 0
        return True

    def _valid_logon_state(self, msg_type: bytes) -> bool:
        if (msg_type == b"A" and self._sent_reset) or self._received_reset:
            return True
        if (msg_type == b"A" and not self.received_logon) or (
            msg_type != b"A" and self.received_logon
        ):
            return True
        if msg_type == b"5" and self.sent_logon:
            return True
        if msg_type != b"5" and self.sent_logout:
            return True
        return msg_type == b"4" or msg_type == b"3"

    def _good_time(self, sending_time: bytes | None) -> bool:
        limit = self.config.max_latency_s
        if not limit:
            return True
        if sending_time is None:
            return False
        # Clients stamp many messages within one second: parse each second once (the
        # fraction cannot matter against a limit of whole seconds, so it is dropped).
        second = sending_time[:17]
        if second == self._sent_second:
            sent = self._sent_second_value
        else:
            try:
                parse_utc_timestamp(sending_time)  # validates the whole value
                sent = parse_utc_timestamp(second) / _NS
            except TimestampError:
                return False
            self._sent_second, self._sent_second_value = second, sent
        off = abs(self._clock() - sent)
        if limit - 1 <= off <= limit + 1:  # near the limit the fraction decides
            off = abs(self._clock() - parse_utc_timestamp(sending_time) / _NS)
        return off <= limit

    def _target_too_high(self, msg: FixMessage, seq: int) -> None:
        log.info(
            "%s: MsgSeqNum too high, expecting %d but received %d",
            self.config.key,
            self._next_target,
            seq,
        )
        self._queue[seq] = msg
        resend = self._resend_range
        if resend is not None and seq >= resend[0]:
            return  # already asked; no redundant ResendRequest
        self._send_admin(b"2", b"7=%d\x0116=0\x01" % self._next_target)
        self._resend_range = (self._next_target, seq - 1)

    def _target_too_low(self, msg: FixMessage, seq: int) -> None:
        if msg.get(43) != b"Y":
            text = f"MsgSeqNum too low, expecting {self._next_target} but received {seq}"
            self.logout(text)
            raise _Disconnect(text)
        self._poss_dup(msg)

    def _poss_dup(self, msg: FixMessage) -> bool:
        if msg.msg_type == b"4":
            return True
        orig = msg.get(122)
        if orig is None:
            self.reject(msg, SessionRejectReason.REQUIRED_TAG_MISSING, 122)
            return False
        sending = msg.get(52) or b""
        try:
            too_high = parse_utc_timestamp(orig) > parse_utc_timestamp(sending)
        except TimestampError:
            too_high = True
        if too_high:
            self.reject(msg, SessionRejectReason.SENDINGTIME_ACCURACY_PROBLEM)
            self.logout()
            return False
        return True

    def _next_logon(self, msg: FixMessage) -> None:
        reset_flag = msg.get(141) == b"Y"
        if not self.received_logon and (self.config.reset_on_logon or self._reset_due()):
            self._reset_store()
        if reset_flag:
            self._received_reset = True
            if not self._sent_reset:
                self._reset_store()
        if not self._verify(msg, check_too_high=False, check_too_low=True):
            return
        heartbeat = _int(msg.get(108))
        cfg = self.config
        if heartbeat < 0:
            text = "HeartBtInt (108) must not be negative"
            self.logout(text)
            raise _Disconnect(text)
        if not cfg.min_heartbeat_s <= heartbeat <= cfg.max_heartbeat_s:
            text = (
                f"HeartBtInt (108) must be between {cfg.min_heartbeat_s} and "
                f"{cfg.max_heartbeat_s} seconds"
            )
            self.logout(text)
            raise _Disconnect(text)
        refusal = cfg.authenticate(msg) if cfg.authenticate is not None else None
        if refusal is None:
            refusal = self.application.on_logon(self, msg)
        if refusal is not None:
            if self.on_logon_refused is not None:
                self.on_logon_refused()
            self.logout(refusal)
            raise _Disconnect(f"Logon refused: {refusal}")
        self.heartbeat_s = heartbeat
        self.received_logon = True
        body = b"98=0\x01108=%d\x01" % heartbeat
        if reset_flag:
            body += b"141=Y\x01"
            self._sent_reset = True
        self._send(b"A", body)
        self.sent_logon = True
        self._sent_reset = False
        self._received_reset = False
        log.info("%s: logged on", cfg.key)
        seq = _int(msg.get(34))
        if seq > self._next_target and not reset_flag:
            self._target_too_high(msg, seq)
        else:
            self._incr_target()

    def _next_logout(self, msg: FixMessage) -> None:
        if not self._verify(msg, check_too_high=False, check_too_low=False):
            return
        if not self.sent_logout:
            self._send_admin(b"5")
        self._incr_target()
        if self.config.reset_on_logout:
            self._reset_store()
        raise _Disconnect("logout")

    def _next_sequence_reset(self, msg: FixMessage) -> None:
        gap_fill = msg.get(123) == b"Y"
        if not self._verify(msg, check_too_high=gap_fill, check_too_low=gap_fill):
            return
        new_seq = _int(msg.get(36))
        if not 0 < new_seq <= MAX_SEQ:
            # refused before anything moves: the store cannot hold it, later Logons would fail
            self.reject(msg, SessionRejectReason.VALUE_IS_INCORRECT, 36)
            return
        if new_seq > self._next_target:
            self._set_target(new_seq)
        elif new_seq < self._next_target:
            self.reject(msg, SessionRejectReason.VALUE_IS_INCORRECT)

    def _next_resend_request(self, msg: FixMessage) -> None:
        if not self._verify(msg, check_too_high=False, check_too_low=False):
            return
        begin = _int(msg.get(7))
        end = _int(msg.get(16))
        last = self._next_sender - 1
        if end == 0 or end > last:
            end = last
        log.info("%s: resending %d to %d", self.config.key, begin, end)
        current = max(begin, 1)
        for seq, raw in self.store.get(current, end) if current <= end else []:
            if seq > current:
                self._gap_fill(current, seq)
            self._resend(raw)
            current = seq + 1
        if current <= end:
            self._gap_fill(current, end + 1)
        seq = _int(msg.get(34))
        if seq == self._next_target:
            self._incr_target()

    def _gap_fill(self, begin: int, new_seq: int) -> None:
        self._send(b"4", b"36=%d\x01123=Y\x01" % new_seq, seq=begin, poss_dup=True)

    def _resend(self, raw: bytes) -> None:
        try:
            stored = decode(raw, self._begin)
        except FixCodecError:
            log.error("%s: a stored message cannot be read; gap filled instead", self.config.key)
            return
        seq = _int(stored.get(34))
        orig = stored.get(52) or b""
        rest = b"".join(b"%d=%b\x01" % f for f in stored.fields if f[0] not in _SESSION_HEADER)
        now = format_utc_timestamp(time.time_ns())
        head = b"35=%b\x0134=%d\x0143=Y%b%b\x0156=%b\x01122=%b\x01" % (
            stored.msg_type,
            seq,
            self._header_tail,
            now,
            self._target,
            orig,
        )
        write = self._write
        if write is not None:
            write(frame(head + rest, self._begin))
            self._last_sent = self._clock()

    # -- time ------------------------------------------------------------------------------------

    def _reset_due(self) -> bool:
        """A daily reset time passed since the store was created or last reset."""
        at = self.config.reset_time_utc
        if at is None:
            return False
        now = self._clock()
        last_boundary = (now - at) // 86400 * 86400 + at
        return self.store.creation_time() < last_boundary

    def on_timer(self) -> None:
        """Called about every 100 ms while connected: heartbeats, test requests, timeouts."""
        try:
            self._timer()
        except _Disconnect as exc:
            self.disconnect(str(exc))

    def _timer(self) -> None:
        if self._write is None:
            return
        now = self._clock()
        if not self.received_logon:
            if now - self._connected_at >= self.config.logon_timeout_s:
                raise _Disconnect("no Logon in time")
            return
        if self.sent_logout and now - self._sent_logout_at >= self.config.logout_timeout_s:
            raise _Disconnect("timed out waiting for the Logout answer")
        if self._reset_due() and not self.sent_logout:
            self.logout("End of session: sequence numbers reset")
            return
        interval = self.heartbeat_s
        if interval == 0:
            return
        since_sent = now - self._last_sent
        since_received = now - self._last_received
        if since_sent < interval and since_received < interval:
            return
        if since_received >= 2.4 * interval:
            raise _Disconnect("timed out waiting for a heartbeat")
        if since_received >= 1.2 * (self._test_requests + 1) * interval:
            self._send_admin(b"1", b"112=TEST\x01")
            self._test_requests += 1
        elif since_sent >= interval and not self._test_requests:
            self.heartbeat()


def _reverse_route(msg: FixMessage) -> bytes:
    parts = []
    for tag, back in _REVERSE_ROUTE:
        value = msg.get(tag)
        if value:
            parts.append((back, value))
    parts.sort()
    return b"".join(b"%d=%b\x01" % part for part in parts)


def _int(value: bytes | None) -> int:
    """A header integer the dictionary already checked; 0 when absent, or beyond the
    dictionary's bound (never a conversion of thousands of digits)."""
    if not value:
        return 0
    negative = value[:1] == b"-"
    digits = (value[1:] if negative else value).lstrip(b"0")
    if len(digits) > MAX_INT_DIGITS or (digits and not digits.isdigit()):
        return 0
    number = int(digits) if digits else 0
    return -number if negative else number


def _text(text: str) -> bytes:
    return text.replace("\x01", " ").encode("latin-1", "replace")
