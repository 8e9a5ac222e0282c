"""Run model-written programs isolated: Hyperlight where it boots, wasmtime elsewhere."""

from .base import GuestError, Grants, Limits, RunResult, Sandbox, ToolCall
from .selection import Choice, choose

__all__ = ["Choice", "Grants", "GuestError", "Limits", "RunResult", "Sandbox", "ToolCall", "choose"]
