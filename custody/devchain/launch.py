"""Start the test chain's Bitcoin node as a child process and find its port: for tests and the
embedded demo. The caller owns the process and stops it (``stop`` or the context manager)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BitcoinNodeProcess:
    datadir: Path
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def cookie(self) -> Path:
        """``__cookie__:<password>``, for ``BitcoinRpc.from_cookie``."""
        return self.datadir / ".cookie"

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> BitcoinNodeProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_bitcoin_node(
    datadir: Path,
    *,
    feerate_btc_per_kvb: str = "0.00001",
    env: Mapping[str, str] | None = None,
    timeout_s: float = 15.0,
) -> BitcoinNodeProcess:
    """Run ``custody.devchain.bitcoin_node`` on 127.0.0.1, a free port, state in ``datadir``;
    return once it listens (``datadir/rpc.port`` written)."""
    datadir.mkdir(parents=True, exist_ok=True)
    port_file = datadir / "rpc.port"
    port_file.unlink(missing_ok=True)
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    args = [
        sys.executable,
        "-m",
        "custody.devchain.bitcoin_node",
        "--datadir",
        str(datadir),
        "--port",
        "0",
        "--feerate",
        feerate_btc_per_kvb,
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout_s
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError(f"bitcoin test node did not start: {err.decode()[-2000:]}")
        time.sleep(0.02)
    return BitcoinNodeProcess(datadir, proc, int(port_file.read_text()))
