"""The embedded test chains: each chain whose ``[custody.chains.<name>] rpc_url`` is empty runs as
its own process under ``<data_dir>/chains/<name>``, so the venue can be killed while the chain
goes on, and a venue started again finds it there (``rpc.port`` answering) instead of starting a
second one. A clean stop of the venue stops the chains of its data folder.

Production configures a real node's URL and none of this runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from custody.devchain import lease

__all__ = ["LEASE", "LEASE_S", "EmbeddedChain", "ensure_chain", "renew", "stop_chain"]

#: The lease file the venue touches (``custody.devchain.lease``) and how long a chain outlives
#: its last touch: long enough for a crashed venue to be started again and find it.
LEASE = "lease"
LEASE_S = 60

ROOT = Path(__file__).resolve().parent.parent
_MODULES = {
    "bitcoin": "custody.devchain.bitcoin_node",
    "ethereum": "custody.devchain.ethereum_node",
}
_PING = {"bitcoin": "getblockcount", "ethereum": "eth_blockNumber"}


@dataclass(frozen=True, slots=True)
class EmbeddedChain:
    name: str
    datadir: Path
    url: str
    pid: int
    started: bool  # by this call (False: found running)


def ensure_chain(
    name: str, datadir: Path, *, block_ms: int = 0, timeout_s: float = 60.0
) -> EmbeddedChain:
    """The chain ``name`` under ``datadir``: the running one, else a new process (detached
    into its own session, so a signal to the venue's terminal does not reach it)."""
    datadir.mkdir(parents=True, exist_ok=True)
    port_file, pid_file = datadir / "rpc.port", datadir / "node.pid"
    if port_file.exists() and pid_file.exists():
        url = f"http://127.0.0.1:{int(port_file.read_text())}/"
        pid = int(pid_file.read_text())
        if _alive(pid) and _answers(name, url, datadir):
            return EmbeddedChain(name, datadir, url, pid, False)
    port_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", _MODULES[name], "--datadir", str(datadir), "--port", "0"]
    if name == "ethereum":
        args.append("--usdt")
    if block_ms:
        args += ["--block-ms", str(block_ms)]
    lease.touch(datadir / LEASE)
    args += ["--lease", str(datadir / LEASE), "--lease-s", str(LEASE_S)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("VENUE_CUSTODY_CRASH_AT", None)  # a test's crash point is the venue's, never a chain's
    with open(datadir / "node.log", "ab") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (datadir / "node.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the {name} test chain did not start: {tail}")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{int(port_file.read_text())}/"
    return EmbeddedChain(name, datadir, url, proc.pid, True)


def renew(chain: EmbeddedChain) -> None:
    """Tell the chain its venue is still there."""
    lease.touch(chain.datadir / LEASE)


def stop_chain(chain: EmbeddedChain, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    _signal(chain.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(chain.pid) and time.monotonic() < deadline:
        _reap(chain.pid)
        time.sleep(0.05)
    if _alive(chain.pid):
        _signal(chain.pid, signal.SIGKILL)
        _reap(chain.pid)
    (chain.datadir / "rpc.port").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _answers(name: str, url: str, datadir: Path) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": _PING[name], "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    cookie = datadir / ".cookie"
    if name == "bitcoin" and cookie.exists():
        import base64

        token = base64.b64encode(cookie.read_text().strip().encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False
