"""A SoftHSM2 token under the venue's data folder: the embedded default HSM.

``init_token(data_dir, label)`` writes ``<data_dir>/softhsm2.conf`` (tokens in
``<data_dir>/tokens``, never the home directory nor /var/lib/softhsm) and makes the token with
``softhsm2-util`` unless one with that label is there already. PINs it generates go to
``<data_dir>/user.pin`` and ``<data_dir>/so.pin`` (mode 0600); a PIN may instead come from the
environment (``VENUE_HSM_PIN``, ``VENUE_HSM_SO_PIN``) or a file the operator names. No PIN is ever
logged or put in an error message.

``open_token(data_dir, label)`` does that and logs in (``custody.hsm.Token``). SoftHSM reads its
configuration's path from ``SOFTHSM2_CONF`` once per load of the module: see ``custody.hsm`` for
what that means for one process (one configuration while tokens are open).

``softhsm2-util`` takes the PINs on its command line (it has no other non-interactive way), so they
are visible in the process table for the few milliseconds it runs: initialise tokens on a host
without untrusted local users, or pass your own PINs and change them afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from custody.hsm import SOFTHSM2_CONF, HsmError, Token

log = logging.getLogger(__name__)

#: Debian's softhsm2 package puts the module here.
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN_ENV = "VENUE_HSM_PIN"
SO_PIN_ENV = "VENUE_HSM_SO_PIN"
#: SoftHSM's limits on a PIN's length and on a token label's.
_PIN_LEN = (4, 255)
_LABEL_MAX = 32
_UTIL_TIMEOUT_S = 30.0
_LABEL_LINE = re.compile(r"^\s*Label:[ \t]*(.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SoftHsm:
    """Where a SoftHSM2 token lives: what ``Token.open`` needs besides the PIN."""

    data_dir: Path
    conf: Path
    label: str
    module: str = DEFAULT_MODULE


def conf_text(data_dir: Path) -> str:
    """The configuration SoftHSM2 gets: file backend, tokens under ``data_dir``, errors only."""
    return (
        "# Written by the venue (custody.softhsm); rewritten when it differs.\n"
        f"directories.tokendir = {data_dir.resolve() / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
    )


def write_conf(data_dir: Path) -> Path:
    """``<data_dir>/softhsm2.conf`` and the token folder, created or corrected; its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "tokens").mkdir(mode=0o700, exist_ok=True)
    conf = data_dir / "softhsm2.conf"
    text = conf_text(data_dir)
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    return conf.resolve()


def read_pin(file: Path | None = None, *, env: str = PIN_ENV) -> str | None:
    """The PIN from the environment variable ``env`` if set, else from ``file`` if it exists
    (its first line), else None."""
    value = os.environ.get(env)
    if value:
        return _checked_pin(value, env)
    if file is not None and file.exists():
        lines = file.read_text().splitlines()
        return _checked_pin(lines[0] if lines else "", str(file))
    return None


def init_token(
    data_dir: Path,
    label: str,
    *,
    pin: str | None = None,
    so_pin: str | None = None,
    module: str = DEFAULT_MODULE,
    util: str = "softhsm2-util",
) -> SoftHsm:
    """Make the token ``label`` under ``data_dir`` unless it is there; idempotent.

    PINs: ``pin`` / ``so_pin`` if given, else ``VENUE_HSM_PIN`` / ``VENUE_HSM_SO_PIN``, else
    ``<data_dir>/user.pin`` / ``so.pin``, else new random ones written to those files (0600)."""
    if not label or len(label.encode()) > _LABEL_MAX:
        raise HsmError(f"a SoftHSM token label has 1 to {_LABEL_MAX} bytes")
    conf = write_conf(data_dir)
    where = SoftHsm(data_dir, conf, label, module)
    if label in token_labels(conf, util=util):
        return where
    user = _pin_or_new(pin, data_dir / "user.pin", PIN_ENV)
    so = _pin_or_new(so_pin, data_dir / "so.pin", SO_PIN_ENV)
    args = ["--init-token", "--free", "--label", label, "--pin", user, "--so-pin", so]
    _run_util(util, conf, args, hide=(user, so))
    log.info("SoftHSM token %r initialised under %s", label, data_dir)
    return where


def open_token(
    data_dir: Path,
    label: str,
    *,
    pin: str | None = None,
    pin_file: Path | None = None,
    module: str = DEFAULT_MODULE,
) -> Token:
    """Initialise the token if needed and log in: PIN from ``pin``, else ``VENUE_HSM_PIN``,
    else ``pin_file``, else ``<data_dir>/user.pin`` (a new token gets the same PIN)."""
    chosen = pin if pin is not None or pin_file is None else read_pin(pin_file)
    where = init_token(data_dir, label, pin=chosen, module=module)
    secret = chosen if chosen is not None else read_pin(data_dir / "user.pin")
    if secret is None:
        raise HsmError(f"no PIN for token {label!r}: set {PIN_ENV} or write the PIN file")
    return Token.open(module, label, secret, softhsm_conf=where.conf)


def token_labels(conf: Path, *, util: str = "softhsm2-util") -> list[str]:
    """The labels of the initialised tokens under ``conf``."""
    out = _run_util(util, conf, ["--show-slots"])
    return [m for m in _LABEL_LINE.findall(out) if m]


def _pin_or_new(given: str | None, file: Path, env: str) -> str:
    if given is not None:
        return _checked_pin(given, "the given PIN")
    found = read_pin(file, env=env)
    if found is not None:
        return found
    new = secrets.token_hex(16)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new + "\n")
    return new


def _checked_pin(pin: str, source: str) -> str:
    if not _PIN_LEN[0] <= len(pin) <= _PIN_LEN[1] or not pin.isprintable():
        raise HsmError(f"the PIN from {source} is not {_PIN_LEN[0]}-{_PIN_LEN[1]} printable chars")
    return pin


def _run_util(util: str, conf: Path, args: list[str], hide: tuple[str, ...] = ()) -> str:
    """Run ``softhsm2-util`` with ``args`` under ``conf``; its output. The error never quotes the
    command line, and any of ``hide`` (the PINs) in the tool's own words is masked."""
    exe = shutil.which(util)
    if exe is None:
        raise HsmError(f"{util} is not installed (Debian: apt-get install softhsm2)")
    env = {**os.environ, SOFTHSM2_CONF: str(conf)}
    try:
        done = subprocess.run(
            [exe, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=_UTIL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HsmError(f"{util} {args[0]} timed out") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        detail = lines[-1] if lines else "no output"
        for secret in hide:
            detail = detail.replace(secret, "***")
        raise HsmError(f"{util} {args[0]} failed ({done.returncode}): {detail}")
    return done.stdout
