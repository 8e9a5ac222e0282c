"""Which backend runs programs: Hyperlight where a VM boots, wasmtime everywhere else.

Hyperlight fails at the first run, not at construction, and on some hosts (nested PVM) only
after the VM starts; so `auto` boots a tiny program in a subprocess, with a timeout, once
per process, and keeps the verdict and its reason for `%sandbox` to show.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SandboxError, SandboxUnavailable
from .base import Sandbox

if TYPE_CHECKING:
    from .guest_build import ProgressCallback

BACKENDS = ("auto", "hyperlight", "wasmtime")
PROCESSES = ("inline", "worker")
# Seconds; an emulated VM (CI's Hyperlight step) needs longer than real hardware.
PROBE_TIMEOUT = float(os.environ.get("CODEACT_PROBE_TIMEOUT", "20"))

_PROBE_PROGRAM = """
import sys
try:
    from hyperlight_sandbox import Sandbox
    result = Sandbox(backend="wasm").run("print(6 * 7)")
except BaseException as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if result.stdout.strip() == "42" else 2)
"""


@dataclass(frozen=True)
class Probe:
    """Whether Hyperlight boots here, and why not."""

    ok: bool
    reason: str


def explain(stderr: str) -> str:
    """A short, actionable reason from what a failed Hyperlight boot printed."""
    text = stderr.strip()
    if "No Hypervisor was found" in text:
        return "no hypervisor: /dev/kvm or /dev/mshv is missing or not accessible to this user"
    if "VM exit" in text:
        detail = text.split("Unexpected VM exit:", 1)[-1].split(":", 2)
        return ("the VM started but this hypervisor cannot run it, as nested or emulated KVM such as PVM "
                f"cannot (unexpected VM exit:{':'.join(detail[:2]).rstrip()})")
    if "ModuleNotFoundError" in text or "ImportError" in text:
        return "hyperlight-sandbox is not installed: pip install 'hyperlight-sandbox[wasm]' hyperlight-sandbox-python-guest"
    if sys.platform == "darwin":
        return "Hyperlight does not support macOS"
    last = text.splitlines()[-1] if text else "no output"
    return f"Hyperlight could not boot: {last[:300]}"


def probe_hyperlight(timeout: float = PROBE_TIMEOUT) -> Probe:
    """Boot a micro-VM in a subprocess; never hangs the caller past `timeout`."""
    if sys.platform == "darwin":
        return Probe(False, "Hyperlight does not support macOS")
    import subprocess  # here: the wasmtime path never needs it

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_PROGRAM],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Probe(False, f"the boot probe did not finish within {timeout:g} s")
    if proc.returncode == 0:
        return Probe(True, "a Hyperlight micro-VM booted")
    if proc.returncode == 2:
        return Probe(False, "a Hyperlight micro-VM booted but gave a wrong answer")
    return Probe(False, explain(proc.stderr))


_cached: Probe | None = None
_lock = threading.Lock()


def cached_probe() -> Probe:
    """The probe's verdict, computed once per process."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = probe_hyperlight()
        return _cached


@dataclass(frozen=True)
class Choice:
    """The backend in use and why, for the kernel to show."""

    sandbox: Sandbox
    requested: str
    reason: str


def choose(requested: str | None = None, process: str = "inline", guest: str | None = None) -> Choice:
    """Make the sandbox CODEACT_SANDBOX (or `requested`) asks for; `auto` falls back.

    Hyperlight always runs in a worker process (the only way to stop a runaway program
    there); wasmtime runs in the kernel's process unless `process` is "worker". The sandbox
    is a `GuestRouter` over it: programs that need numpy, pandas & co. run in the scientific
    guest (on wasmtime, in the same kind of process), as CODEACT_GUEST (or `guest`) says.
    """
    from .router import GuestRouter

    setting = (guest or os.environ.get("CODEACT_GUEST") or "auto").strip().lower()
    choice = _choose_backend(requested, process)

    def science(progress: ProgressCallback | None) -> Sandbox:
        if process == "worker" or choice.sandbox.name == "hyperlight":
            from .worker import WorkerSandbox

            return WorkerSandbox("science", progress=progress)
        from .science import ScienceSandbox

        return ScienceSandbox(progress=progress)

    try:
        router = GuestRouter(choice.sandbox, setting, science=science)
    except SandboxError:
        choice.sandbox.close()
        raise
    return Choice(router, choice.requested, choice.reason)


def _choose_backend(requested: str | None, process: str) -> Choice:
    kind = (requested or os.environ.get("CODEACT_SANDBOX") or "auto").strip().lower()
    if kind not in BACKENDS:
        raise SandboxError(f"unknown sandbox {kind!r}: choose one of {', '.join(BACKENDS)}")
    if process not in PROCESSES:
        raise SandboxError(f"unknown sandbox process {process!r}: choose one of {', '.join(PROCESSES)}")
    from .worker import WorkerSandbox

    if kind in ("auto", "hyperlight"):
        probe = cached_probe()
        if probe.ok:
            return Choice(WorkerSandbox("hyperlight"), kind, f"{probe.reason}; it runs in a worker process")
        if kind == "hyperlight":
            raise SandboxUnavailable("hyperlight", probe.reason)
        reason = f"the wasmtime fallback, as Hyperlight is unavailable here: {probe.reason}"
    else:
        reason = "wasmtime was requested (CODEACT_SANDBOX=wasmtime)"
    if process == "worker":
        return Choice(WorkerSandbox("wasmtime"), kind, f"{reason}, in a worker process")
    from .wasmtime_backend import WasmtimeSandbox

    return Choice(WasmtimeSandbox(), kind, reason)
