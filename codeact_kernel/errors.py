"""Every exception codeact-kernel raises on purpose, in one tree.

    CodeActError                  base: catch this to catch everything below
    ├── SandboxError              the sandbox could not run a program at all
    │   ├── SandboxUnavailable    the requested backend cannot work on this machine (carries the reason)
    │   └── GuestBuildError       the fuller guest component could not be built
    └── ToolDefinitionError       a tool cannot be registered (bad name, unusable signature)

A program that fails *inside* the sandbox is not an exception on the host: it is a
`GuestError` in the run's result, because a failing program is an ordinary outcome.
Each message says how to fix the problem.
"""

from __future__ import annotations


class CodeActError(Exception):
    """Base class of every error raised by codeact-kernel."""


class SandboxError(CodeActError):
    """The sandbox could not run a program at all."""


class SandboxUnavailable(SandboxError):
    """The requested backend cannot work here; `reason` says why (from the probe)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(
            f"The {backend} sandbox is not available here: {reason}. "
            "Use CODEACT_SANDBOX=auto (or wasmtime) to run programs in the wasmtime fallback."
        )


class GuestBuildError(SandboxError):
    """componentize-py failed to build the guest; the build log is attached."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        super().__init__(message + (f"\n--- build log ---\n{log}" if log else ""))


class ToolDefinitionError(CodeActError):
    """A function cannot be registered as a tool."""
