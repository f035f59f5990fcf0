"""Rebuild custody/contracts/compiled/*.json from the Solidity sources with a pinned solc-js.

The builds are committed so the venue and its tests never need a compiler; this script is run by
hand after a source changes (a test fails while a build's recorded sha256 differs from its
source's). solc-js comes from npm into a folder outside the repository (``--solc-dir``, default
/tmp/solc-<version>) because native solc downloads are not available everywhere.

    python scripts/compile_contracts.py [--solc-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

SOLC_VERSION = "0.8.28"
EVM_VERSION = "cancun"
CONTRACTS = Path(__file__).resolve().parent.parent / "custody" / "contracts"
SOURCES = ("TestUSDT.sol", "MultiSigWallet.sol")


def ensure_solc(solc_dir: Path) -> Path:
    """Install solc-js at the pinned version into ``solc_dir`` unless it is there already."""
    cli = solc_dir / "node_modules" / "solc" / "solc.js"
    package = solc_dir / "node_modules" / "solc" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == SOLC_VERSION:
        return cli
    solc_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--no-save", "--prefix", str(solc_dir), f"solc@{SOLC_VERSION}"],
        check=True,
        timeout=300,
    )
    return cli


def compile_all(cli: Path) -> dict[str, object]:
    """Compile every source with one standard-JSON call; raise on any compiler error."""
    request = {
        "language": "Solidity",
        "sources": {name: {"content": (CONTRACTS / name).read_text()} for name in SOURCES},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    done = subprocess.run(
        ["node", str(cli), "--standard-json"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    # solc-js prints a notice about SMT solvers on stdout before the JSON.
    output: dict[str, object] = json.loads(done.stdout[done.stdout.index("{") :])
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]  # type: ignore[attr-defined]
    if errors:
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors))
    return output


def compiler_version(cli: Path) -> str:
    done = subprocess.run(
        ["node", str(cli), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    return "solc-js " + done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solc-dir", type=Path, default=Path(f"/tmp/solc-{SOLC_VERSION}"))
    args = parser.parse_args()
    cli = ensure_solc(args.solc_dir)
    output = compile_all(cli)
    version = compiler_version(cli)
    contracts = output["contracts"]
    assert isinstance(contracts, dict)
    for source in SOURCES:
        name = source.removesuffix(".sol")
        built = contracts[source][name]
        record = {
            "contract": name,
            "source": source,
            "source_sha256": hashlib.sha256((CONTRACTS / source).read_bytes()).hexdigest(),
            "compiler": version,
            "evm_version": EVM_VERSION,
            "optimizer_runs": 200,
            "abi": built["abi"],
            "bytecode": "0x" + built["evm"]["bytecode"]["object"],
        }
        target = CONTRACTS / "compiled" / f"{name}.json"
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        size = len(built["evm"]["bytecode"]["object"]) // 2
        print(f"{target.relative_to(CONTRACTS.parent.parent)}: {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
