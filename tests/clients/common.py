"""What the client scripts share: the job they read, the results they print.

A client script runs in ``.venv-clients`` (the client libraries' own virtualenv), never in the
venue's: it imports nothing of the project. It reads one JSON object from stdin,

    {"base": "http://127.0.0.1:PORT", "admin": "http://127.0.0.1:PORT", "adminToken": "...",
     "keys": {"<role>": {"key": "...", "secret": "..."}}, "scenarios": ["name", ...]}

runs the named scenarios in order (they share one state, so a later scenario may use an order an
earlier one placed), and prints one JSON object, scenario name -> result. A scenario that raises
unexpectedly gets ``{"unexpected": "<class>: <message>", "trace": "..."}`` and the next ones still
run: the test names the scenario that broke. Secrets come on stdin, never on the command line.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

Scenario = Callable[[Any], Any]


def read_job() -> dict[str, Any]:
    return json.loads(sys.stdin.readline())


def error_name(call: Callable[[], Any]) -> dict[str, Any]:
    """The class of the exception ``call`` raises and its message; ``{"raised": None}`` when
    it raises nothing."""
    try:
        value = call()
    except Exception as exc:
        return {"raised": type(exc).__name__, "message": str(exc)[:300]}
    return {"raised": None, "value": repr(value)[:300]}


def unexpected(exc: BaseException) -> dict[str, str]:
    return {
        "unexpected": f"{type(exc).__name__}: {str(exc)[:500]}",
        "trace": "".join(traceback.format_exception(exc))[-3000:],
    }


def run(scenarios: dict[str, Scenario], ctx: Any, names: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        if name not in scenarios:
            results[name] = {"unexpected": f"no scenario {name!r}"}
            continue
        try:
            results[name] = scenarios[name](ctx)
        except Exception as exc:
            results[name] = unexpected(exc)
    return results


def emit(results: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(results, default=str) + "\n")
    sys.stdout.flush()
