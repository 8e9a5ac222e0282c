"""Run model-written programs isolated: Hyperlight where it boots, wasmtime elsewhere."""

from __future__ import annotations

from typing import Any

__all__ = ["Choice", "Grants", "GuestError", "Limits", "RunResult", "Sandbox", "ToolCall", "choose"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so a backend module alone (the kernel's first cell) starts fast.
    if name in ("Choice", "choose"):
        from . import selection

        return getattr(selection, name)
    if name in __all__:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module 'codeact_kernel.sandbox' has no attribute {name!r}")
