"""The command line: ``venue run --demo`` shows trades and stops cleanly on SIGINT; every bad input
is one line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from venue.config import DEFAULT_CONFIG_PATH

SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
URL = re.compile(r"admin API on (http://[0-9.]+:\d+)")


class VenueProcess:
    """``venue run`` in a subprocess, its stdout read line by line with timeouts."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "venue.cli", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            match = regex.search(line)
            if match:
                return match
        self.kill()
        raise AssertionError(f"no line matching {pattern!r}; output: {''.join(self.seen)}")

    def url(self) -> str:
        return self.wait_for(URL.pattern).group(1)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def config_file(tmp_path: Path, data_dir: Path, text: str = SHIPPED) -> Path:
    path = tmp_path / "venue.toml"
    text = text.replace('data_dir = "data"', f'data_dir = "{data_dir}"')
    text = text.replace("port = 9878 ", "port = 0    ")  # the FIX acceptor on a free port
    text = text.replace("port = 8082 ", "port = 0    ")  # the REST door on a free port
    # the embedded test chains make blocks quickly (the demo waits for 12 confirmations)
    text = re.sub(r"test_block_ms = \d+", "test_block_ms = 200", text)
    text = re.sub(r"poll_ms = \d+", "poll_ms = 100", text)
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "venue.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("venue: error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_demo_shows_trades_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "data")
    for run in range(2):  # the demo works on a restarted venue too
        venue = VenueProcess("--config", str(config), "--admin-port", "0", "--demo")
        try:
            venue.url()
            trade = venue.wait_for(r"TRADE #\d+ (\S+) BTC-USDT @ (\S+)")
            assert trade.group(1) == "0.50000" and trade.group(2) == "95010.00"
            venue.wait_for(r"cancelled #\d+ 0\.40000 \(USER\)")
            venue.wait_for(r"replaced #\d+: 0\.30000 @ 95018\.00")
            venue.wait_for(r"bid\s+95015\.00")
            # then over FIX: a New, a Trade with its commission, a Canceled
            venue.wait_for(r"CLIENT1: ExecutionReport New \(New\)")
            fill = venue.wait_for(
                r"CLIENT2: ExecutionReport Trade \(Filled\).*last (\S+) @.*commission (\S+ \S+)"
            )
            assert fill.group(1) == "0.01000" and fill.group(2) == "0.00001000 BTC"
            venue.wait_for(r"CLIENT1: ExecutionReport Canceled")
            # then custody: a deposit credited, a withdrawal approved and paid, a proof checked
            venue.wait_for(r"confirmations 12/12: credited", timeout=60)
            venue.wait_for(r"paid from the hot wallet.*0\.495 ETH received", timeout=60)
            hot = venue.wait_for(r"^\s+hot\s+(\d+\.\d{8})\s+(\d+\.\d{8})$", timeout=60)
            if run == 0:  # (a clean stop stopped the test chains: the next run's are new ones)
                assert 0 <= float(hot.group(1)) - float(hot.group(2)) < 0.0001  # books not above
            venue.wait_for(r"checks its proof.*VERIFIED", timeout=60)
            venue.wait_for(r"demo: done", timeout=60)
            code, stderr = venue.stop(signal.SIGINT)
        finally:
            venue.kill()
        assert code == 0, stderr
        assert "Traceback" not in stderr and "error" not in stderr, stderr
        assert any(line.startswith("demo: run") for line in venue.seen)
    assert len(list((tmp_path / "data" / "snapshots").glob("*.snap"))) == 2


def test_sigterm_stops_cleanly_with_a_snapshot(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "data")
    venue = VenueProcess("--config", str(config), "--admin-port", "0")
    try:
        venue.url()
        code, stderr = venue.stop(signal.SIGTERM)
    finally:
        venue.kill()
    assert code == 0 and "Traceback" not in stderr


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    result = cli("run", "--config", str(tmp_path / "nope.toml"))
    assert_one_line_error(result, "nope.toml", "not found")
    assert_one_line_error(cli("verify", "--config", str(tmp_path / "nope.toml")), "not found")


def test_invalid_config_is_one_line(tmp_path: Path) -> None:
    bad = SHIPPED.replace('tick_size = "0.01"', "tick_size = 0.01", 1)
    config = config_file(tmp_path, tmp_path / "data", bad)
    assert_one_line_error(cli("run", "--config", str(config)), "tick_size")
    config.write_text("this is [not toml", encoding="utf-8")
    assert_one_line_error(cli("run", "--config", str(config)), "TOML")


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "data")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("run", "--config", str(config), "--admin-port", str(port))
    assert_one_line_error(result, "cannot listen", str(port))


def test_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    config = config_file(tmp_path, tmp_path / "data")
    result = cli("run", "--config", str(config), "--data-dir", str(blocker / "data"))
    assert_one_line_error(result, "data dir", "cannot be used")


def test_bad_admin_port_is_one_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "data")
    assert_one_line_error(cli("run", "--config", str(config), "--admin-port", "70000"), "70000")


def test_fix_password_prints_a_hash_that_logs_on_and_never_the_password() -> None:
    from venue.fix import password_check

    result = subprocess.run(
        [sys.executable, "-m", "venue.cli", "fix-password"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith("pbkdf2_sha256$") and "correct horse" not in result.stdout
    check = password_check(stored)
    assert check(b"correct horse") and not check(b"correct horsE")
    short = subprocess.run(
        [sys.executable, "-m", "venue.cli", "fix-password"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_line_error(short, "at least 8")


def test_fix_port_out_of_range_is_refused(tmp_path: Path) -> None:
    result = cli("run", "--config", "config/conformance.toml", "--fix-port", "70000")
    assert_one_line_error(result, "--fix-port 70000")


def _accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listens_before_every_door_is_wired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last step of the start (the FIX gateway catching up its reports and subscribing,
    after recovery and the ledger) runs with the admin API and the FIX acceptor both closed: a
    request or a Logon arriving earlier would meet a half-built venue. Both listen once the
    venue says it runs."""
    import venue.fix
    from venue.cli import run_cli

    admin_port, fix_port = _free_port(), _free_port()
    attach = venue.fix.attach_gateway
    listening: dict[str, bool] = {}

    def attach_and_look(gateway: venue.fix.FixGateway, v: Any) -> Any:
        listening["admin"], listening["fix"] = _accepts(admin_port), _accepts(fix_port)
        unsubscribe = attach(gateway, v)
        signal.raise_signal(signal.SIGINT)  # handled by the venue: stop once running
        return unsubscribe

    monkeypatch.setattr(venue.fix, "attach_gateway", attach_and_look)
    config = config_file(tmp_path, tmp_path / "data")
    args = ["run", "--config", str(config), "--admin-port", str(admin_port)]
    code = run_cli([*args, "--fix-port", str(fix_port)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert listening == {"admin": False, "fix": False}
    assert f"admin API on http://127.0.0.1:{admin_port}; FIX on 127.0.0.1:{fix_port}" in out
