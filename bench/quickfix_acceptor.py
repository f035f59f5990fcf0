"""A minimal QuickFIX C++ acceptor: the baseline ``bench.fix_load`` measures the venue against.

    python -m bench.quickfix_acceptor --port 9890 --dir /tmp/qf --sessions LOAD1,LOAD2

QuickFIX 1.16 (the ``quickfix`` package: the C++ engine with its Python bindings) with what a
production acceptor would have: a ``FileStoreFactory`` with ``PersistMessages=Y`` under
``--dir`` (sequence numbers and every sent message kept for resends), the complete FIX 4.4 data
dictionary (``fix_specs/FIX44.xml``) with ``UseDataDictionary=Y``, no message log (neither a
FileLog nor a ScreenLog: the venue keeps none either), one session per ``--sessions`` CompID
with ``--sender`` as ours. The application, in Python through the bindings, answers every
NewOrderSingle with an ExecutionReport ExecType=0 (New) OrdStatus=0: OrderID, ExecID, ClOrdID,
Symbol, Side, OrderQty, Price, LeavesQty, CumQty, AvgPx, TransactTime. There is no order book:
this is the cost of the FIX engine and one callback per order, a lower bound for any venue
built on it.

Durability: QuickFIX's ``FileStore`` writes each message with ``fwrite`` and ``fflush``, which
hands it to the kernel's page cache, and has no setting to ``fsync`` it (1.16 has no such
option and its library calls neither ``fsync`` nor ``fdatasync``). Its acknowledgements are
therefore not durable: a power loss forgets sequence numbers and sent messages the peer has
seen. The venue ``fsync``s its journal before every acknowledgement.

``SocketAcceptor`` serves every session from one thread (``--threaded``: QuickFIX's
``ThreadedSocketAcceptor``, one thread per session, which contend for the GIL in the callback).
The process prints ``ready <port>`` once it listens and runs until SIGTERM or SIGINT; it then
prints the orders it acknowledged.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = REPO_ROOT / "fix_specs" / "FIX44.xml"


def _quickfix() -> Any:
    """The ``quickfix`` module (it ships no type information)."""
    try:
        return importlib.import_module("quickfix")
    except ImportError:
        sys.exit("bench.quickfix_acceptor: the quickfix package is not installed")


def settings_text(port: int, directory: Path, sender: str, targets: list[str]) -> str:
    """The QuickFIX session settings of the acceptor."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "BeginString=FIX.4.4",
        f"SenderCompID={sender}",
        f"SocketAcceptPort={port}",
        "SocketReuseAddress=Y",
        "SocketNodelay=Y",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={directory / 'store'}",
        "PersistMessages=Y",
        f"DataDictionary={DICTIONARY}",
        "UseDataDictionary=Y",
        "CheckLatency=Y",
        "MaxLatency=120",
        "TimestampPrecision=6",
    ]
    for target in targets:
        lines += ["", "[SESSION]", f"TargetCompID={target}"]
    return "\n".join(lines) + "\n"


def make_application(fix: Any) -> Any:
    """An instance of a ``quickfix.Application`` subclass that acks every NewOrderSingle."""

    class Acker(fix.Application):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.orders = 0
            self.rejected = 0

        def onCreate(self, session_id: Any) -> None:
            return None

        def onLogon(self, session_id: Any) -> None:
            return None

        def onLogout(self, session_id: Any) -> None:
            return None

        def toAdmin(self, message: Any, session_id: Any) -> None:
            return None

        def fromAdmin(self, message: Any, session_id: Any) -> None:
            return None

        def toApp(self, message: Any, session_id: Any) -> None:
            return None

        def fromApp(self, message: Any, session_id: Any) -> None:
            if message.getHeader().getField(35) != "D":
                self.rejected += 1
                return
            self.orders += 1
            n = self.orders
            report = fix.Message()
            header = report.getHeader()
            header.setField(35, "8")
            get = message.getField
            report.setField(37, f"O{n}")  # OrderID
            report.setField(11, get(11))  # ClOrdID
            report.setField(17, f"E{n}")  # ExecID
            report.setField(150, "0")  # ExecType New
            report.setField(39, "0")  # OrdStatus New
            report.setField(55, get(55))  # Symbol
            report.setField(54, get(54))  # Side
            report.setField(38, get(38))  # OrderQty
            if message.isSetField(44):
                report.setField(44, get(44))  # Price
            report.setField(151, get(38))  # LeavesQty
            report.setField(14, "0")  # CumQty
            report.setField(6, "0")  # AvgPx
            report.setField(60, get(60))  # TransactTime
            fix.Session.sendToTarget(report, session_id)

    return Acker()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", type=Path, default=None, help="store folder (default: a temp dir)")
    ap.add_argument("--sender", default="VENUE", help="our SenderCompID")
    ap.add_argument("--sessions", default="LOAD1,LOAD2,LOAD3,LOAD4", help="their CompIDs")
    ap.add_argument("--threaded", action="store_true", help="ThreadedSocketAcceptor")
    args = ap.parse_args(argv)
    faulthandler.enable()
    fix = _quickfix()
    targets = [t for t in args.sessions.split(",") if t]
    temporary = args.dir is None
    directory: Path = Path(tempfile.mkdtemp(prefix="bench-quickfix-")) if temporary else args.dir
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "acceptor.cfg"
    config.write_text(settings_text(args.port, directory, args.sender, targets))
    settings = fix.SessionSettings(str(config))
    application = make_application(fix)
    store = fix.FileStoreFactory(settings)
    kind = fix.ThreadedSocketAcceptor if args.threaded else fix.SocketAcceptor
    acceptor = kind(application, store, settings)  # no LogFactory: nothing is logged
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    acceptor.start()
    print(f"ready {args.port}", flush=True)
    while not stop.is_set():
        time.sleep(0.05)
    acceptor.stop()
    print(f"acked {application.orders} orders; {application.rejected} other messages", flush=True)
    if temporary:
        shutil.rmtree(directory, ignore_errors=True)
    # The engine is stopped and its files flushed. Skip the interpreter's teardown: freeing
    # the bindings' objects in its order now and then crashes (SIGSEGV) after a clean stop.
    os._exit(0)


if __name__ == "__main__":
    main()
