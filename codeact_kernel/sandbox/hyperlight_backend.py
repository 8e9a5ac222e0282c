"""Programs in a Hyperlight micro-VM: `hyperlight_sandbox.Sandbox`, wasm backend, packaged guest.

The packaged guest only runs source text, so each run sends the same executor that the
wasmtime guest is built from (`guest/executor.py`) as the program; the executor then asks
the host for the user's program through `call_tool`, so the program is data, never
spliced into source. Every crossing goes through one registered host function,
``codeact.dispatch(name, payload)``, into the same `RunState` the wasmtime backend uses:
tools, output, errors, results and HTTP behave the same on both.

Differences, because of what hyperlight-sandbox 0.8.0 offers:
- its Python API cannot interrupt a running guest, so the kernel runs this backend in a
  worker process (`worker.py`) that it kills at the deadline;
- the memory cap is the VM's physical memory (`stack_size`, which Hyperlight uses as its
  scratch region): the limit plus what the guest itself needs (measured: about 70 MB for the
  packaged Python guest; less than 67 MB of scratch is refused outright). `heap_size` does
  not bound a program (a 490 MB bytearray fits with a 16 MiB heap) but is copied into every
  snapshot, so it stays small: a VM with a 512 MiB heap took 17 s to make in the emulated
  VM, 4.5 s with 16 or 64 MiB;
- stdlib modules missing from the packaged guest fail with an ImportError naming the
  wasmtime backend, which has them;
- fresh state per run comes from restoring a snapshot taken after a warm-up run; the first
  run after the warm-up needs none (restoring rewrites all of the VM's memory: 1.3 to 4 s in
  the emulated VM, about 11 ms natively).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Mapping
from typing import Any

from ..errors import SandboxError
from . import guest_build
from .base import GuestError, Grants, Limits, OutputCallback, RunResult, Sandbox, ToolFunction
from .host import RunState, check_inputs, collect_outputs, guest_program, make_output_dir, remove_output_dir
from .network import parse_rules

_BOOTSTRAP = guest_build.GUEST_SOURCE
# Scratch memory beyond the limit: what the guest's runtime uses before a program allocates.
_GUEST_OVERHEAD_MB = 96
# The guest's own heap (its runtime's, not the program's: see above).
_GUEST_HEAP_MB = 64


class HostRefusal(Exception):
    """Raised in the host callback so Hyperlight returns an error to the guest."""


# Characters per crossing. Hyperlight 0.8 carries each call between guest and host in a
# 16 KiB buffer and panics the guest on a bigger one (measured: an 8 KB stdout chunk
# crosses, 100 KB aborts the guest); JSON may escape a character to six bytes.
_PIECE = 2048


class _Crossing:
    """The host end of ``codeact.dispatch``, passing text in pieces the VM's buffers can carry.

    The guest's `_host` (guest/executor.py) sends a long payload as ``codeact.part`` calls
    before the call itself, and takes a long answer piece by piece: each starts with "+"
    (fetch the next with ``codeact.more``) or "=" (the last).
    """

    def __init__(self, route: Any) -> None:
        self._route = route
        self._incoming: list[str] = []
        self._outgoing: list[str] = []

    def reset(self) -> None:
        """Forget pieces a stopped program left half sent."""
        self._incoming.clear()
        self._outgoing.clear()

    def __call__(self, name: str, payload: str) -> str:
        if name == "codeact.part":
            self._incoming.append(payload)
            return "="
        if name != "codeact.more":
            if self._incoming:
                payload = "".join(self._incoming) + payload
                self._incoming.clear()
            ok, text = self._route(name, payload)
            if type(text) is bytes:
                text = text.decode()
            if not ok:
                raise HostRefusal(text[:_PIECE])
            self._outgoing = [text[at:at + _PIECE] for at in range(0, len(text), _PIECE)][::-1] or [""]
        if not self._outgoing:
            raise HostRefusal("nothing more to send")
        piece = self._outgoing.pop()
        return ("+" if self._outgoing else "=") + piece


class _VM:
    """One hyperlight sandbox for a given set of grants, with its warm snapshot."""

    def __init__(self, grants: Grants, limits: Limits, route: Any) -> None:
        from hyperlight_sandbox import Sandbox as HyperlightVM

        self.grants = grants
        self.shape = limits.shape
        memory_mb = limits.memory_mb
        self.output_dir = make_output_dir() if grants.output else None
        kwargs: dict[str, Any] = {"backend": "wasm", "heap_size": f"{_GUEST_HEAP_MB}Mi",
                                  "stack_size": f"{memory_mb + _GUEST_OVERHEAD_MB}Mi"}
        if grants.input_dir is not None:
            kwargs["input_dir"] = str(grants.input_dir)
        if self.output_dir is not None:
            kwargs["output_dir"] = str(self.output_dir)
            # What the wasmtime backend stops a run at: every file at its size cap, and a little
            # over, so a file stopped there is over its cap and not collected. Hyperlight enforces
            # it as the guest writes (an OSError there); files are capped one by one when they
            # come back, as on wasmtime.
            kwargs["max_total_size"] = f"{limits.output_files * limits.output_file_bytes // 1000 + 2}Ki"
        self.vm = HyperlightVM(**kwargs)
        self.crossing = _Crossing(route)
        self.vm.register_tool("codeact.dispatch", self.crossing)
        self.source = _BOOTSTRAP.read_text()
        self.warm = False
        self.snapshot: Any = None
        self.ran = False  # since the snapshot: a run's state is in the VM

    def discard(self) -> None:
        remove_output_dir(self.output_dir)


def _trap_error(text: str) -> GuestError:
    """What a VM that stopped abnormally means for the program."""
    if "Out of physical memory" in text or "MallocFailed" in text:
        return GuestError("MemoryError", "the program ran out of guest memory")
    return GuestError("SandboxTrap", text.splitlines()[0] if text else "the guest trapped")


def _sleep(payload: str, longest: float) -> tuple[bool, str]:
    try:
        seconds = float(payload)
    except ValueError:
        return False, "sleep needs a number of seconds"
    if not 0 <= seconds < float("inf"):
        return False, "sleep length must be a non-negative finite number"
    time.sleep(min(seconds, longest))
    return True, "null"


class HyperlightSandbox(Sandbox):
    """Runs programs in Hyperlight's packaged Python guest inside a micro-VM."""

    name = "hyperlight"
    streams_output = True
    _make_state = RunState  # the worker process forwards every request to the kernel instead

    def __init__(self) -> None:
        self._vm: _VM | None = None
        self._handler: Any = None
        # hyperlight-sandbox's native sandbox is "unsendable": every call must come from the
        # thread that created it, while the kernel calls run() from any worker thread.
        self._owner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="codeact-hyperlight")

    def _route(self, name: str, payload: str) -> tuple[bool, str]:
        handler = self._handler
        if handler is None:
            return False, "no program is running"
        return handler(name, payload)

    def _take(self, grants: Grants, limits: Limits) -> _VM:
        vm = self._vm
        if vm is None or vm.grants != grants or vm.shape != limits.shape:
            self._drop()
            vm = self._vm = _VM(grants, limits, self._route)
            for rule in parse_rules(grants.allowed_domains):
                for url in rule.urls():
                    vm.vm.allow_domain(url, sorted(rule.methods) if rule.methods else None)
        return vm

    def run(
        self,
        program: str,
        tools: Mapping[str, ToolFunction],
        *,
        limits: Limits = Limits(),
        grants: Grants = Grants(),
        on_output: OutputCallback | None = None,
        inputs: Mapping[str, bytes] = {},
    ) -> RunResult:
        check_inputs(inputs, self.data_kinds)
        source = guest_program(program, inputs)
        return self._owner.submit(self._run, source, tools, limits, grants, on_output).result()

    def prepare(self, grants: Grants = Grants(), limits: Limits = Limits()) -> None:
        """Boot the VM for these grants and take its warm snapshot, so the next run starts at once."""
        self._owner.submit(self._warm, grants, limits).result()

    def _warm(self, grants: Grants, limits: Limits) -> _VM:
        try:
            vm = self._take(grants, limits)
        except RuntimeError as exc:
            raise SandboxError(f"Hyperlight could not make a VM: {exc}") from None
        if vm.warm:
            return vm
        self._handler = lambda name, _p: (True, "pass") if name == "codeact.program" else (True, "null")
        failure = None
        try:
            vm.vm.run(vm.source)
            vm.snapshot = vm.vm.snapshot()
        except RuntimeError as exc:
            failure = str(exc)  # not the exception: its traceback holds the VM
        finally:
            self._handler = None
        if failure is not None:
            del vm
            self._drop()
            raise SandboxError(f"Hyperlight could not run the guest: {failure}")
        vm.warm = True
        return vm

    def _run(self, program: str, tools: Mapping[str, ToolFunction], limits: Limits, grants: Grants,
             on_output: OutputCallback | None) -> RunResult:
        """The run itself, on the thread that owns the native sandbox; `program` with its inputs'
        header (`guest_program`), which the executor asks for as ``codeact.program``."""
        vm = self._warm(grants, limits)
        if vm.ran:
            try:
                vm.vm.restore(vm.snapshot)
            except RuntimeError:  # e.g. a host function panicked in the last run and poisoned its lock
                del vm
                self._drop()
                vm = self._warm(grants, limits)  # a new VM, as it was when its snapshot was taken
        vm.ran = True
        vm.crossing.reset()
        state = self._make_state(tools, limits, grants, on_output)

        def handler(name: str, payload: str) -> tuple[bool, str]:
            if name == "codeact.program":
                return True, program
            if name == "codeact.sleep":  # see the guest's _sleep; the deadline still holds
                return _sleep(payload, limits.timeout)
            return state.dispatch(name, payload)

        self._handler = handler
        start = time.perf_counter()
        try:
            outcome = vm.vm.run(vm.source)
        except RuntimeError as exc:
            self._drop()  # a failed VM is rebuilt for the next run
            outcome = None
            state.error = state.error or _trap_error(str(exc))
        finally:
            self._handler = None
        if outcome is not None and outcome.exit_code != 0 and state.error is None:
            # The executor itself failed before it could report (e.g. out of memory).
            state.error = GuestError("SandboxError", outcome.stderr.strip() or "the guest failed")
        result = state.result(time.perf_counter() - start)
        if vm.output_dir is not None:
            result.output_files, notices = collect_outputs(vm.output_dir, limits)
            result.notices.extend(notices)
        return result

    def _drop(self) -> None:
        """Release the native sandbox here, on its owner thread (elsewhere it cannot be dropped)."""
        if self._vm is not None:
            self._vm.discard()
            self._vm.vm = None
            self._vm = None

    def close(self) -> None:
        self._owner.submit(self._drop).result()
        self._owner.shutdown()

    def describe(self) -> str:
        return "hyperlight: the packaged Python guest in a Hyperlight micro-VM"
