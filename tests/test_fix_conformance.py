"""The FIX acceptor against the 59 QuickFIX FIX 4.4 acceptance scripts (``fix_acceptance``).

One venue process serves every script: started once for the module with
``config/conformance.toml`` on a free FIX port and a fresh data folder. Scripts do not depend on
one another: each logs on anew and the acceptor resets sequence numbers on logon.

- The scripts are ``../shared/fix-acceptance/fix44`` next to the repository, or the folder in
  ``$VENUE_FIX_ACCEPTANCE``; without them the module is skipped.
- ``VENUE_FIX_ACCEPTANCE_PORT=N``: no venue is started, the scripts run against the acceptor already
  listening on 127.0.0.1:N.
- The comparison is the strict one (the same fields in the same order, exact Text), except for
  the scripts in ``LENIENT``: there the venue is deliberately stricter or more explicit than
  QuickFIX, whose exact wording the scripts pin, so they run in the lenient comparison (Text
  compared by prefix, a Logout allowed before an expected disconnect).
  ``VENUE_FIX_ACCEPTANCE_STRICT=0`` relaxes every script to the lenient one (fields as a set),
  e.g. to check another acceptor.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fix_acceptance import (
    REPO_ROOT,
    SCRIPTS_ENV,
    ScriptFailure,
    load_patterns,
    patterns_path,
    run_script,
    scripts_dir,
)

SCRIPTS_DIR = scripts_dir()
if not SCRIPTS_DIR.is_dir():
    pytest.skip(
        f"no FIX acceptance scripts at {SCRIPTS_DIR} (they come with ../shared next to the "
        f"repository, or set {SCRIPTS_ENV})",
        allow_module_level=True,
    )
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.def"))
PATTERNS = load_patterns(patterns_path(SCRIPTS_DIR))
STRICT = os.environ.get("VENUE_FIX_ACCEPTANCE_STRICT", "1") not in ("", "0")
#: Scripts compared leniently, and why: the venue's Reject texts name the field
#: ("Incorrect data format for value, field=38") where QuickFIX's do not, and a Logon with a bad
#: SendingTime is answered with a Logout saying so before the disconnect.
_FIELD_NAMED = "the Reject's Text names the field"
LENIENT: dict[str, str] = {
    "14a_BadField": _FIELD_NAMED,
    "14b_RequiredFieldMissing": _FIELD_NAMED,
    "14c_TagNotDefinedForMsgType": _FIELD_NAMED,
    "14d_TagSpecifiedWithoutValue": _FIELD_NAMED,
    "14e_IncorrectEnumValue": _FIELD_NAMED,
    "14f_IncorrectDataFormat": _FIELD_NAMED,
    "14g_HeaderBodyTrailerFieldsOutOfOrder": _FIELD_NAMED,
    "14h_RepeatedTag": _FIELD_NAMED,
    "14i_RepeatingGroupCountNotEqual": _FIELD_NAMED,
    "2g_PossDupNoOrigSendingTime": _FIELD_NAMED,
    "RejectResentMessage": _FIELD_NAMED,
    "ReverseRoute": _FIELD_NAMED,
    "ReverseRouteWithEmptyRoutingTags": _FIELD_NAMED,
    "1d_InvalidLogonBadSendingTime": "a Logout tells why before the disconnect",
}
PORT_ENV = "VENUE_FIX_ACCEPTANCE_PORT"
CONFIG = "config/conformance.toml"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass
class Acceptor:
    port: int
    proc: subprocess.Popen[bytes] | None = None
    stderr_path: Path | None = None

    def stderr(self) -> str:
        if self.stderr_path is None or not self.stderr_path.is_file():
            return ""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(
                f"the venue exited with code {self.proc.returncode}; stderr:\n{self.stderr()}",
                pytrace=False,
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


@pytest.fixture(scope="module")
def acceptor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acceptor]:
    external = os.environ.get(PORT_ENV)
    if external:
        yield Acceptor(int(external))
        return
    tmp = tmp_path_factory.mktemp("fix_conformance")
    port = _free_port()
    stderr_path = tmp / "venue.stderr"
    command = [
        sys.executable,
        "-m",
        "venue.cli",
        "run",
        "--config",
        CONFIG,
        "--fix-port",
        str(port),
        "--admin-port",
        "0",
        "--data-dir",
        str(tmp / "data"),
    ]
    with (tmp / "venue.stdout").open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err)
    running = Acceptor(port, proc, stderr_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(port):
            running.check_running()
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the venue did not accept FIX connections on port {port} within "
                    f"{START_TIMEOUT:g} s; stderr:\n{running.stderr()}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield running
    finally:
        _stop(proc)


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_acceptance_script(acceptor: Acceptor, script: Path) -> None:
    acceptor.check_running()
    failure: str | None = None
    try:
        strict = STRICT and script.stem not in LENIENT
        run_script(script, acceptor.port, strict=strict, patterns=PATTERNS)
    except ScriptFailure as exc:
        failure = str(exc)
    if failure is not None:
        acceptor.check_running()
        pytest.fail(failure, pytrace=False)
