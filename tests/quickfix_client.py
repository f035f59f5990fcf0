"""A QuickFIX initiator in its own process, driven through JSON lines: the interop tests' peer.

    python tests/quickfix_client.py --port 9878 --sender CLIENT1 --target VENUE --dir /tmp/c1

QuickFIX 1.16 (the ``quickfix`` package: the C++ engine with its Python bindings) as a client of
the venue: a ``SocketInitiator`` with a ``FileStoreFactory`` and a ``FileLogFactory`` under
``--dir`` (so its sequence numbers survive its own restarts, and its event log says what the
engine decided), the venue's data dictionary (``--dictionary``, default
``fix_specs/FIX44-venue.xml``) with ``UseDataDictionary=Y`` and
``ValidateUserDefinedFields=Y``, so that every message the venue sends, custom tags included, is
checked against the dictionary before the application sees it; a message that fails is answered
by QuickFIX with a session Reject (35=3), which this program reports like any message it sends.

Stdout, one JSON object per line:

- ``{"event": "send" | "recv", "kind": "admin" | "app", "msg": "8=FIX.4.4|9=...|..."}`` for every
  message sent (toAdmin, toApp) and received (fromAdmin, fromApp), SOH shown as ``|`` (as
  ``Message.toString`` writes it: a received message is what QuickFIX parsed and validated);
- ``{"event": "create" | "logon" | "logout", "session": "FIX.4.4:CLIENT1->VENUE"}``;
- ``{"event": "ready"}`` once the initiator runs, ``{"event": "error", "error": "..."}`` for a
  command that could not be carried out, ``{"event": "stopped"}`` before exiting.

Stdin, one JSON object per line:

- ``{"send": "35=D|11=c1|55=BTC-USDT|..."}``: a message built from these fields (MsgType from
  35, every other field in the body, where QuickFIX puts them in tag order; no repeating
  groups), the header filled by QuickFIX, and sent with ``Session.sendToTarget``;
- ``{"logout": "text"}``: ``Session.logout`` (the session stays down until ``{"logon": true}``);
- ``{"logon": true}``: ``Session.logon``, the initiator connects again;
- ``{"quit": true}`` (or the end of stdin): the initiator stops (Logout) and the program exits.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = REPO_ROOT / "fix_specs" / "FIX44-venue.xml"
SOH = "\x01"


def settings_text(args: argparse.Namespace) -> str:
    """The initiator's QuickFIX session settings."""
    directory: Path = args.dir
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            "BeginString=FIX.4.4",
            f"SenderCompID={args.sender}",
            f"TargetCompID={args.target}",
            f"HeartBtInt={args.heartbeat}",
            "ReconnectInterval=1",
            f"SocketConnectHost={args.host}",
            f"SocketConnectPort={args.port}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            f"ResetOnLogon={'Y' if args.reset_on_logon else 'N'}",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "PersistMessages=Y",
            f"FileStorePath={directory / 'store'}",
            f"FileLogPath={directory / 'log'}",
            f"DataDictionary={args.dictionary}",
            "UseDataDictionary=Y",
            "ValidateUserDefinedFields=Y",
            "CheckLatency=Y",
            "MaxLatency=120",
            "LogonTimeout=5",
            "LogoutTimeout=2",
            "",
            "[SESSION]",
            "",
        ]
    )


class Output:
    """JSON lines on stdout, one writer at a time (QuickFIX calls back from its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, **fields: str) -> None:
        line = json.dumps(fields)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def make_application(fix: Any, out: Output, cancel_on_disconnect: str | None) -> Any:
    """A ``quickfix.Application`` that reports every message it sends or receives."""

    class Reporter(fix.Application):  # type: ignore[misc]
        def onCreate(self, session_id: Any) -> None:
            out(event="create", session=session_id.toString())

        def onLogon(self, session_id: Any) -> None:
            out(event="logon", session=session_id.toString())

        def onLogout(self, session_id: Any) -> None:
            out(event="logout", session=session_id.toString())

        def toAdmin(self, message: Any, session_id: Any) -> None:
            if cancel_on_disconnect and message.getHeader().getField(35) == "A":
                message.setField(25004, cancel_on_disconnect)
            out(event="send", kind="admin", msg=_show(message))

        def fromAdmin(self, message: Any, session_id: Any) -> None:
            out(event="recv", kind="admin", msg=_show(message))

        def toApp(self, message: Any, session_id: Any) -> None:
            out(event="send", kind="app", msg=_show(message))

        def fromApp(self, message: Any, session_id: Any) -> None:
            out(event="recv", kind="app", msg=_show(message))

    return Reporter()


def _show(message: Any) -> str:
    text: str = message.toString()
    return text.replace(SOH, "|")


def build_message(fix: Any, text: str) -> Any:
    """A ``quickfix.Message`` from ``"35=D|11=...|..."``: 35 in the header, the rest in the body."""
    message = fix.Message()
    msg_type = None
    for part in text.strip("|").split("|"):
        tag, sep, value = part.partition("=")
        if not sep or not tag.isdigit():
            raise ValueError(f"not a tag=value field: {part!r}")
        if int(tag) == 35:
            msg_type = value
        else:
            message.setField(int(tag), value)
    if msg_type is None:
        raise ValueError("no MsgType (35)")
    message.getHeader().setField(35, msg_type)
    return message


def run(args: argparse.Namespace) -> int:
    fix = importlib.import_module("quickfix")
    out = Output()
    args.dir.mkdir(parents=True, exist_ok=True)
    config = args.dir / "initiator.cfg"
    config.write_text(settings_text(args), encoding="utf-8")
    settings = fix.SessionSettings(str(config))
    application = make_application(fix, out, args.cancel_on_disconnect)
    initiator = fix.SocketInitiator(
        application, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
    )
    session_id = fix.SessionID("FIX.4.4", args.sender, args.target)
    initiator.start()
    out(event="ready")
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                if "send" in command:
                    message = build_message(fix, str(command["send"]))
                    if not fix.Session.sendToTarget(message, session_id):
                        out(event="error", error="sendToTarget refused the message")
                elif "logout" in command:
                    fix.Session.lookupSession(session_id).logout(str(command["logout"] or ""))
                elif "logon" in command:
                    fix.Session.lookupSession(session_id).logon()
                elif "quit" in command:
                    break
                else:
                    out(event="error", error=f"unknown command: {line.strip()}")
            except Exception as exc:  # report and go on: the test decides
                out(event="error", error=f"{type(exc).__name__}: {exc}")
    finally:
        initiator.stop()
        out(event="stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sender", required=True, help="our SenderCompID")
    ap.add_argument("--target", default="VENUE", help="the venue's SenderCompID")
    ap.add_argument("--dir", type=Path, required=True, help="store and log folder")
    ap.add_argument("--dictionary", type=Path, default=DICTIONARY)
    ap.add_argument("--heartbeat", type=int, default=30)
    ap.add_argument("--reset-on-logon", action="store_true")
    ap.add_argument(
        "--cancel-on-disconnect", choices=("Y", "N"), help="CancelOnDisconnect (25004) on Logon"
    )
    args = ap.parse_args(argv)
    args.dictionary = args.dictionary.resolve()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
