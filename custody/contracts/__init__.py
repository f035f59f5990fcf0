"""The venue's Ethereum contracts: Solidity sources here, their committed builds in ``compiled/``.

Builds are made by ``scripts/compile_contracts.py`` with a pinned solc-js; each records the sha256
of its source so a test catches a source changed without rebuilding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent / "compiled"


def load_build(name: str) -> dict[str, Any]:
    """The committed build of contract ``name``: abi, bytecode, compiler, source_sha256."""
    if not name.isidentifier():
        raise ValueError(f"not a contract name: {name!r}")
    build: dict[str, Any] = json.loads((BUILD_DIR / f"{name}.json").read_text())
    return build
