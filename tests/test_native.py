"""The compiled build of the engine is used only when it was built from the current sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import clearing
import clearing.risk
import engine
import engine.core
from engine import _native


def test_native_flag_matches_loaded_modules() -> None:
    compiled = engine.core.__file__ is not None and engine.core.__file__.endswith(".so")
    assert compiled == engine.NATIVE
    if os.environ.get("VENUE_PURE") == "1":
        assert not compiled
    # the risk stage is compiled in the same build and loads with the engine
    risk_compiled = clearing.risk.__file__ is not None and clearing.risk.__file__.endswith(".so")
    assert risk_compiled == clearing.NATIVE == engine.NATIVE
    # and so is the FIX gateway's per-message path
    import gateway.fix
    import gateway.fix.session

    session_file = gateway.fix.session.__file__ or ""
    assert session_file.endswith(".so") == gateway.fix.NATIVE == engine.NATIVE


def test_packages_stay_real_whatever_is_imported_first(tmp_path: Path) -> None:
    """Importing the engine first (which activates the build) must not turn ``clearing`` or
    ``gateway`` into namespace packages of the build folder: run from a folder that is not the
    repository, as pytest and installed scripts do."""
    import subprocess
    import sys

    code = (
        "import engine.codec, engine.commands, gateway.fix.errors, clearing.risk\n"
        "import clearing, gateway\n"
        "assert clearing.__file__ and gateway.__file__, (clearing.__path__, gateway.__path__)\n"
        "engine.codec.encode(engine.commands.ConfigureFees('{}'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_risk_stage_is_part_of_the_build_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _native.source_hash()
    monkeypatch.setattr(_native, "HASHED_OTHER", (*_native.HASHED_OTHER, "clearing/reports"))
    assert _native.source_hash() != before


def test_stale_build_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VENUE_PURE", raising=False)
    monkeypatch.setattr(_native, "NATIVE_DIR", tmp_path)
    (tmp_path / "engine").mkdir()
    (tmp_path / _native.STAMP).write_text("0" * 32 + "\n", encoding="ascii")
    path: list[str] = ["/src/engine"]
    with pytest.warns(RuntimeWarning, match="built from other sources"):
        assert not _native.activate(path)
    assert path == ["/src/engine"]


def test_current_build_is_put_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VENUE_PURE", raising=False)
    monkeypatch.setattr(_native, "NATIVE_DIR", tmp_path)
    (tmp_path / _native.STAMP).write_text(_native.source_hash() + "\n", encoding="ascii")
    path: list[str] = ["/src/engine"]
    assert _native.activate(path)
    assert path == [str(tmp_path / "engine"), "/src/engine"]


def test_pure_mode_ignores_any_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENUE_PURE", "1")
    monkeypatch.setattr(_native, "NATIVE_DIR", tmp_path)
    (tmp_path / _native.STAMP).write_text(_native.source_hash() + "\n", encoding="ascii")
    path: list[str] = []
    assert not _native.activate(path)
    assert path == []


def test_missing_build_is_quietly_interpreted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VENUE_PURE", raising=False)
    monkeypatch.setattr(_native, "NATIVE_DIR", tmp_path / "absent")
    assert not _native.activate([])
