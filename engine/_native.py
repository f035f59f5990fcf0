"""Optional compiled build of the core's hot modules (mypyc), kept out of the source tree.

The same typed source runs interpreted or compiled. ``scripts/build_native.py`` compiles the
modules in ``COMPILED`` into ``.native/`` at the repository root and writes there a hash of
the sources it compiled. At import, ``engine/__init__`` calls ``activate()``: if that build
exists and was made from the sources as they are now, ``.native/engine`` is put in front of the
package path so the compiled modules load instead of the ``.py`` files. A stale build (a source
changed since) is ignored with a warning, never loaded; ``VENUE_PURE=1`` forces the
interpreted source.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path

#: The modules compiled, in dependency order. They must stay mypyc-compatible: typed, no
#: subclassing of built-in exceptions, explicit ``__init__`` on hot classes. The journal is left
#: interpreted: compiling its scan gained nothing measurable (its loop is C calls already) and
#: compiled instances cannot be patched in tests.
COMPILED = ("order", "book", "events", "commands", "core", "codec", "units")
#: Modules of other packages compiled in the same build, so that they reach the engine's
#: classes natively: the risk stage runs inside the core on every command. Their package's
#: ``__init__`` calls ``activate_package``. ``HASHED`` lists what they are type-checked against.
#: The FIX gateway's per-message path (parse, validate, session, order entry, reports) is
#: compiled too: about a fifth less CPU per order than interpreted (bench/fix_load.py).
_GATEWAY_COMPILED = (
    "gateway/fix/timestamps",
    "gateway/fix/codec",
    "gateway/fix/dictionary",
    "gateway/fix/session",
    "gateway/fix/orders",
    "gateway/edge/orders",
    "gateway/edge/requests",
)
COMPILED_OTHER = ("clearing/risk", *_GATEWAY_COMPILED)
HASHED_OTHER = (
    "clearing/risk",
    "clearing/fees",
    *_GATEWAY_COMPILED,
    "gateway/fix/errors",
    "gateway/fix/mapping",
    "gateway/fix/store",
    "gateway/edge/refusals",
    "gateway/edge/requests",
)

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR.parent / ".native"
STAMP = "SOURCE_HASH"


def source_hash() -> str:
    """Hash of the compiled modules' sources and of the Python that compiles them."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(sys.version.encode())
    for name in COMPILED:
        digest.update(name.encode())
        digest.update((PACKAGE_DIR / f"{name}.py").read_bytes())
    for path in HASHED_OTHER:
        digest.update(path.encode())
        digest.update((PACKAGE_DIR.parent / f"{path}.py").read_bytes())
    return digest.hexdigest()


def activate(package_path: list[str]) -> bool:
    """Load the compiled build if it is there and current; True if it is now in use."""
    if os.environ.get("VENUE_PURE") == "1":
        return False
    stamp = NATIVE_DIR / STAMP
    if not stamp.is_file():
        return False
    if stamp.read_text(encoding="ascii").strip() != source_hash():
        warnings.warn(
            f"the compiled engine in {NATIVE_DIR} was built from other sources; running the "
            "interpreted engine (python scripts/build_native.py rebuilds it)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return activate_package("engine", package_path)


def activate_package(package: str, package_path: list[str]) -> bool:
    """Put ``.native/<package>`` in front of ``package_path`` when the engine's build is in use
    (one build compiles the engine and ``COMPILED_OTHER``; ``engine`` decides for both)."""
    if package != "engine":
        import engine

        if not engine.NATIVE:
            return False
    native_pkg = str(NATIVE_DIR / package)
    if native_pkg not in package_path:
        package_path.insert(0, native_pkg)
    _load_shared_library()
    return True


def _load_shared_library() -> None:
    """Import the shared library mypyc puts at the top of the build (``<hash>__mypyc``), which
    every compiled module needs. It is loaded from its file rather than by putting ``.native``
    on ``sys.path``: there, ``.native/clearing`` and ``.native/gateway`` (folders without an
    ``__init__``) would shadow the real packages as namespace packages whenever they were first
    imported after the engine."""
    for library in NATIVE_DIR.glob("*__mypyc.*"):
        name = library.name.split(".", 1)[0]
        if name in sys.modules:
            continue
        loader = importlib.machinery.ExtensionFileLoader(name, str(library))
        spec = importlib.util.spec_from_file_location(name, library, loader=loader)
        if spec is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
