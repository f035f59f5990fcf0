"""DESIGN.md's package table, enforced: which of the venue's packages each package may import.

Arrows go one way: ``engine`` imports nothing of the venue; ``clearing``, ``gateway``,
``custody`` and ``surveillance`` import ``engine`` only; nothing imports the composition root
(``venue``). Every ``import`` and ``from ... import`` in the package's source is read with
``ast``, including those inside functions and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The venue's own top-level packages.
OURS = frozenset({"engine", "clearing", "gateway", "custody", "surveillance", "venue", "bench"})
#: What each package may import of the venue (itself always).
ALLOWED: dict[str, frozenset[str]] = {
    "engine": frozenset(),
    "clearing": frozenset({"engine"}),
    "gateway": frozenset({"engine"}),
    "custody": frozenset({"engine"}),
    "surveillance": frozenset({"engine"}),
    "venue": OURS - {"bench"},
}


def imports_of(path: Path) -> set[str]:
    """The top-level packages of the venue that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & OURS


def violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    out = []
    for path in sorted((REPO / package).rglob("*.py")):
        for imported in sorted(imports_of(path) - allowed):
            out.append(f"{path.relative_to(REPO)} imports {imported}")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    assert violations(package) == []


def test_nothing_imports_the_composition_root() -> None:
    offenders = [
        f"{path.relative_to(REPO)}"
        for folder in ("engine", "clearing", "gateway", "custody", "surveillance")
        for path in sorted((REPO / folder).rglob("*.py"))
        if "venue" in imports_of(path)
    ]
    assert offenders == []


def test_the_check_finds_a_wrong_arrow(tmp_path: Path) -> None:
    """The check itself can fail: an engine module that imports clearing is caught, even in a
    function body."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from clearing.risk import RiskEngine\n    return RiskEngine\n")
    assert imports_of(module) == {"clearing"}
    assert "clearing" not in ALLOWED["engine"]
