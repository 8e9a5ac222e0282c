"""The host side of the two crossings every run makes: `dispatch` in, `run` out.

Kept apart so the rest of the backend never touches wasmtime's calling conventions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import wasmtime.component as wc

Handler = Callable[[str, str], "tuple[bool, str]"]


class Route:
    """Which handler a `dispatch` from the guest reaches: the run active on this thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self, handler: Handler) -> Any:
        previous = getattr(self._local, "handler", None)
        self._local.handler = handler
        return previous

    def leave(self, token: Any) -> None:
        self._local.handler = token

    def __call__(self, name: str, payload: str) -> tuple[bool, str]:
        handler = getattr(self._local, "handler", None)
        if handler is None:
            return False, "no program is running"
        try:
            return handler(name, payload)
        except Exception as exc:  # never let an exception cross into wasmtime
            return False, f"host error: {type(exc).__name__}: {exc}"


def define_dispatch(tools: wc.LinkerInstance, route: Route) -> None:
    """Link `tools.dispatch(name, args-json) -> result<string, string>` to `route`."""

    def dispatch(_store: Any, name: str, payload: str) -> wc.Variant:
        ok, text = route(name, payload)
        return wc.Variant("ok" if ok else "err", text)

    tools.add_func("dispatch", dispatch)


class RunFunc:
    """Calls the guest's `run(code)` export."""

    def __init__(self, func: wc.Func, store: Any) -> None:
        self._func = func
        self._store = store

    def __call__(self, code: str) -> int:
        try:
            result = self._func(self._store, code)
        finally:
            pass
        self._func.post_return(self._store)
        return int(getattr(result, "exit-code"))
