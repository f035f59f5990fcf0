"""Compile the engine's hot modules with mypyc into .native/ (see engine/_native.py).

Run from the repository root: ``python scripts/build_native.py``. It builds in a temporary
folder and swaps the result in only when the build succeeded, so a failed build leaves the
previous one (or none) and the interpreted engine keeps working.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = """
from setuptools import setup
from mypyc.build import mypycify
setup(name="venue-native", ext_modules=mypycify({modules!r}, opt_level="3"))
"""


def main() -> int:
    os.environ["VENUE_PURE"] = "1"  # import the sources, not an older build, to hash them
    sys.path.insert(0, str(ROOT))
    from engine._native import (
        COMPILED,
        COMPILED_OTHER,
        HASHED_OTHER,
        NATIVE_DIR,
        STAMP,
        source_hash,
    )

    digest = source_hash()
    stamp = NATIVE_DIR / STAMP
    if stamp.is_file() and stamp.read_text(encoding="ascii").strip() == digest:
        print(f"compiled engine up to date in {NATIVE_DIR}")
        return 0
    with tempfile.TemporaryDirectory(prefix="venue-native-") as tmp:
        work = Path(tmp)
        # The whole engine is copied (the compiled gateway type-checks against its replay and
        # journal); the packages must not activate themselves while they are being built.
        shutil.copytree(
            ROOT / "engine", work / "engine", ignore=shutil.ignore_patterns("__pycache__")
        )
        for package in ("engine", "clearing", "gateway", "gateway/fix", "gateway/edge"):
            (work / package).mkdir(parents=True, exist_ok=True)
            (work / package / "__init__.py").write_text(f'"""Build copy of {package}."""\n')
        for path in ("clearing/errors", *HASHED_OTHER):
            shutil.copy2(ROOT / f"{path}.py", work / f"{path}.py")
        modules = [f"engine/{name}.py" for name in COMPILED]
        modules += [f"{path}.py" for path in COMPILED_OTHER]
        (work / "setup.py").write_text(SETUP.format(modules=modules))
        result = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            print("native build failed; the interpreted engine stays in use", file=sys.stderr)
            return 1
        staged = Path(tempfile.mkdtemp(prefix=".native-", dir=ROOT))
        for built in work.glob("*.so"):
            shutil.copy2(built, staged / built.name)
        for package in ("engine", "clearing", "gateway/fix", "gateway/edge"):
            (staged / package).mkdir(parents=True)
            for built in (work / package).glob("*.so"):
                shutil.copy2(built, staged / package / built.name)
        (staged / STAMP).write_text(digest + "\n", encoding="ascii")
        if NATIVE_DIR.exists():
            shutil.rmtree(NATIVE_DIR)
        staged.rename(NATIVE_DIR)
    print(f"compiled {', '.join((*COMPILED, *COMPILED_OTHER))} into {NATIVE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
