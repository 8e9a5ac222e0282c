"""The guest component hosted by the `wasmtime` PyPI package: the fallback that works anywhere.

Isolation comes from WebAssembly itself: the guest has no syscalls, only the imports we
link. We link WASI 0.2 with nothing granted (no environment, no preopened directory unless
the user grants `/input` or `/output`, no network) and `hyperlight:sandbox/tools.dispatch`,
through which every `call_tool`, printed chunk and HTTP request comes to the host. wasi:http
is never linked: wasmtime's own implementation aborts the process when a store is not set up
for it; HTTP goes through `dispatch` and the host's allow-list instead.

Each program starts from a clean slate without paying for a new instance every time: the
executor gives every run a new namespace and reports when a program changed anything the
next one would see (a module's attributes, builtins, sys); that instance, and any that
trapped, is replaced before the next run (about 2 ms).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import wasmtime
import wasmtime.component as wc

from ..errors import SandboxError
from . import _fastcall, guest_build
from .base import GuestError, Grants, Limits, OutputCallback, RunResult, Sandbox, ToolFunction
from .host import RunState, collect_outputs, dir_size, make_output_dir, remove_output_dir

_TOOLS = guest_build.TOOLS_INTERFACE
_EXECUTOR = guest_build.EXECUTOR_INTERFACE
_WATCH_INTERVAL = 0.05
_STATE_CHANGED = 2  # in the exit code: see guest/executor.py


class _Runtime:
    """Process-wide: one engine, the compiled guest and a linker, loaded once (~70 ms)."""

    _lock = threading.Lock()
    _instance: _Runtime | None = None

    def __init__(self, wasm: Path) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.component = self._load(wasm)
        self.linker = wc.Linker(self.engine)
        self.linker.add_wasip2()
        # dispatch reaches whichever run is active on the calling thread's sandbox.
        self.route = _fastcall.Route()
        with self.linker.root() as root, root.add_instance(_TOOLS) as tools:
            _fastcall.define_dispatch(tools, self.route)

    @classmethod
    def get(cls, wasm: Path | None = None) -> _Runtime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(wasm or guest_build.guest_wasm())
            return cls._instance

    def _load(self, wasm: Path) -> wc.Component:
        cached = guest_build.cache_dir() / f"guest-{guest_build._file_key(wasm)}.cwasm"
        if cached.exists():
            try:
                return wc.Component.deserialize_file(self.engine, str(cached))
            except wasmtime.WasmtimeError:
                cached.unlink(missing_ok=True)
        component = wc.Component.from_file(self.engine, str(wasm))
        guest_build._atomic_write(cached, component.serialize())
        return component


class _Guest:
    """One instance of the guest in its own store, with its own /output directory."""

    def __init__(self, runtime: _Runtime, grants: Grants, memory_mb: int) -> None:
        self.grants = grants
        self.memory_mb = memory_mb
        self.output_dir = make_output_dir() if grants.output else None
        self.store = wasmtime.Store(runtime.engine)
        wasi = wasmtime.WasiConfig()
        if grants.input_dir is not None:
            wasi.preopen_dir(str(grants.input_dir), "/input", fs_mutable=False)
        if self.output_dir is not None:
            wasi.preopen_dir(str(self.output_dir), "/output", fs_mutable=True)
        self.store.set_wasi(wasi)
        self.store.set_limits(memory_size=memory_mb * 2**20)
        self.store.set_epoch_deadline(2**62)
        instance = runtime.linker.instantiate(self.store, runtime.component)
        try:
            self.run = _fastcall.RunFunc(instance, self.store, _EXECUTOR)
        except LookupError as exc:
            raise SandboxError(f"the guest component does not export what it should: {exc}") from exc
        # A fresh instance's first run pays for first-touch memory and lazy guest setup;
        # pay it here, off the timed path, with a route that discards everything.
        token = runtime.route.enter(lambda _name, _payload: (True, "null"))
        try:
            self.run("pass")
        finally:
            runtime.route.leave(token)

    def fits(self, grants: Grants, limits: Limits) -> bool:
        return self.grants == grants and self.memory_mb == limits.memory_mb

    def clear_output(self) -> None:
        """Empty /output for the next run (the directory itself stays preopened)."""
        assert self.output_dir is not None
        for entry in os.scandir(self.output_dir):
            if entry.is_dir(follow_symlinks=False):
                import shutil

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def discard(self) -> None:
        remove_output_dir(self.output_dir)


class WasmtimeSandbox(Sandbox):
    """Runs programs in the fuller guest under wasmtime, in this process."""

    name = "wasmtime"
    streams_output = True

    def __init__(self, wasm: Path | None = None) -> None:
        self._runtime = _Runtime.get(wasm)
        self._guest: _Guest | None = None
        self._current: _Guest | None = None
        self._limits: Limits | None = None
        self._stop_reason: str | None = None
        self._running = threading.Event()
        self._deadline = 0.0
        self._watch = threading.Condition()
        self._closed = False
        self._watcher = threading.Thread(target=self._watchdog, name="codeact-watchdog", daemon=True)
        self._watcher.start()
        self.prepare()

    def prepare(self, grants: Grants = Grants(), limits: Limits = Limits()) -> None:
        """Have an instance ready for these grants, so the next run does not build one."""
        self._take(grants, limits)

    def _take(self, grants: Grants, limits: Limits) -> _Guest:
        guest = self._guest
        if guest is None or not guest.fits(grants, limits):
            if guest is not None:
                guest.discard()
            guest = self._guest = _Guest(self._runtime, grants, limits.memory_mb)
        return guest

    def _retire(self) -> None:
        if self._guest is not None:
            self._guest.discard()
            self._guest = None

    # -- limits ----------------------------------------------------------------
    def _watchdog(self) -> None:
        """Stops a run past its deadline or over its /output cap, by bumping the epoch."""
        while not self._closed:
            with self._watch:
                while not self._running.is_set() and not self._closed:
                    self._watch.wait()
            while self._running.is_set():
                now = time.monotonic()
                if now >= self._deadline:
                    self._stop("timeout")
                    break
                guest = self._current
                if guest is not None and guest.output_dir is not None and self._limits is not None:
                    if dir_size(guest.output_dir) > self._limits.output_files * self._limits.output_file_bytes:
                        self._stop("output-files")
                        break
                time.sleep(min(_WATCH_INTERVAL, max(self._deadline - now, 0.001)))
            time.sleep(0.001)

    def _stop(self, reason: str) -> None:
        if self._running.is_set() and self._stop_reason is None:
            self._stop_reason = reason
            self._runtime.engine.increment_epoch()

    def cancel(self) -> None:
        self._stop("interrupt")

    # -- running ---------------------------------------------------------------
    def run(
        self,
        program: str,
        tools: Mapping[str, ToolFunction],
        *,
        limits: Limits = Limits(),
        grants: Grants = Grants(),
        on_output: OutputCallback | None = None,
    ) -> RunResult:
        guest = self._take(grants, limits)
        state = RunState(tools, limits, grants, on_output)
        self._limits = limits
        self._current = guest
        self._stop_reason = None
        guest.store.set_epoch_deadline(1)
        start = time.perf_counter()
        self._deadline = time.monotonic() + limits.timeout
        token = self._runtime.route.enter(state.dispatch)
        with self._watch:
            self._running.set()
            self._watch.notify()
        trap: Exception | None = None
        exit_code = 0
        try:
            exit_code = guest.run(program)
        except (wasmtime.Trap, wasmtime.WasmtimeError, _fastcall.PendingHostException) as exc:
            trap = exc
        finally:
            self._running.clear()
            self._runtime.route.leave(token)
            duration = time.perf_counter() - start
            self._current = None
        result = state.result(duration)
        if trap is not None:
            result.error = self._trap_error(trap, limits)
        if guest.output_dir is not None:
            result.output_files, notices = collect_outputs(guest.output_dir, limits)
            result.notices.extend(notices)
            guest.clear_output()
        if trap is not None or exit_code & _STATE_CHANGED:
            self._retire()  # a trapped instance is unusable; a changed one is not clean
        return result

    def _trap_error(self, trap: Exception, limits: Limits) -> GuestError:
        reason = self._stop_reason
        if reason == "timeout":
            return GuestError("TimeoutError", f"the program ran longer than {limits.timeout:g} s and was stopped")
        if reason == "interrupt":
            return GuestError("KeyboardInterrupt", "the program was interrupted")
        if reason == "output-files":
            return GuestError("OSError", "the program wrote more to /output than allowed and was stopped")
        text = str(trap)
        if "stack" in text and "overflow" in text:
            return GuestError("RecursionError", "the program exhausted the guest's stack")
        if "memory" in text or "out of bounds" in text:
            return GuestError("MemoryError", "the program ran out of guest memory")
        return GuestError("SandboxTrap", text.splitlines()[0] if text else "the guest trapped")

    def close(self) -> None:
        self._closed = True
        with self._watch:
            self._watch.notify()
        self._retire()

    def describe(self) -> str:
        return "wasmtime: the guest component in WebAssembly, in the kernel process"


