"""End to end: a real ``venue run`` process, ``venue simulate`` driving clean flow with a spoofer
and a wash trader through the FIX and REST doors, and the alerts served by the admin API within
10 seconds of the behaviour, each naming the abusive accounts."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RUNNING = re.compile(
    r"admin API on (http://[0-9.]+:\d+); FIX on [0-9.]+:(\d+); REST and WebSocket on "
    r"(http://[0-9.]+:\d+)"
)
#: the simulator's abusive accounts: two per kind, in the order of the kinds' names
SPOOFER, WASHER = 7901, 7903


def _alerts(admin: str, token: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{admin}/v1/surveillance/alerts", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return list(json.loads(response.read())["alerts"])


def test_abuse_through_the_doors_is_alerted_within_ten_seconds(tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    args = [sys.executable, "-m", "venue.cli", "run", "--config", str(REPO / "config/venue.toml")]
    args += ["--data-dir", str(tmp_path / "data"), "--admin-port", "0", "--fix-port", "0"]
    args += ["--rest-port", "0", "--admin-token-file", str(token_file)]
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True).start()
    try:
        match = None
        deadline = time.monotonic() + 60
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                match = RUNNING.search(lines.get(timeout=0.2))
            except queue.Empty:
                continue
        assert match is not None, "the venue did not start"
        admin, fix_port, rest = match.group(1), match.group(2), match.group(3)
        token = token_file.read_text().strip()
        assert _alerts(admin, token) == []
        simulate = [sys.executable, "-m", "venue.cli", "simulate", "--token-file", str(token_file)]
        simulate += ["--admin-url", admin, "--rest-url", rest, "--fix-port", fix_port]
        simulate += ["--seconds", "6", "--rate", "20", "--seed", "3", "--abuse", "spoofing,wash"]
        done = subprocess.run(
            simulate, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        ended = time.monotonic()
        found: dict[str, set[int]] = {}
        while time.monotonic() - ended < 10:
            found = {}
            for alert in _alerts(admin, token):
                found.setdefault(alert["type"], set()).update(alert["accounts"])
            if SPOOFER in found.get("SPOOFING", set()) and WASHER in found.get("WASH_TRADE", set()):
                break
            time.sleep(0.25)
        assert SPOOFER in found.get("SPOOFING", set()), found
        assert WASHER in found.get("WASH_TRADE", set()), found
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
