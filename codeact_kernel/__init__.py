"""codeact-kernel: a Jupyter kernel where each cell is a prompt answered by one sandboxed program."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "tool"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt notebook extension is (`jupyter labextension develop` links it)."""
    return [{"src": "labextension", "dest": "codeact-kernel"}]


def __getattr__(name: str) -> Any:
    # `tool` is imported on first use, so `codeact_kernel.sandbox` alone starts fast.
    if name == "tool":
        from .tools import tool

        return tool
    raise AttributeError(f"module 'codeact_kernel' has no attribute {name!r}")
