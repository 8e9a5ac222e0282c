"""The guest component hosted by the `wasmtime` PyPI package: the fallback that works anywhere.

Isolation comes from WebAssembly itself: the guest has no syscalls, only the imports we
link. We link WASI 0.2 with nothing granted (no environment, no preopened directory unless
the user grants `/input` or `/output`, no network) and `hyperlight:sandbox/tools.dispatch`,
through which every `call_tool`, printed chunk and HTTP request comes to the host. wasi:http
is never linked: wasmtime's own implementation aborts the process when a store is not set up
for it; HTTP goes through `dispatch` and the host's allow-list instead.

Every program runs in an instance no program has run in before. A program can reach the
whole guest heap (`gc.get_objects()`, any function's `__globals__`), so nothing short of a
new instance stops one run from planting something that watches or changes the next.
Making one takes milliseconds (instantiate, copy in the pre-initialised heap, a warm-up
run), so it happens on a background thread after each run, while the user reads the
answer: a run finds its instance ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

from ..errors import SandboxError
from . import _fastcall, guest_build
from .base import GuestError, Grants, Limits, OutputCallback, RunResult, Sandbox, ToolFunction
from .host import (RunState, check_inputs, collect_outputs, dir_size, guest_program, make_output_dir,
                   remove_output_dir)

_TOOLS = guest_build.TOOLS_INTERFACE
_EXECUTOR = guest_build.EXECUTOR_INTERFACE
# How often the watchdog looks: while a run goes on, and between runs (a run does not wake it).
_WATCH_RUNNING = 0.05
_WATCH_IDLE = 0.25
# Run a few times in each new instance before it is handed out, with its tool calls
# discarded: a first run pays for CPython warming up (specialising the executor's code,
# filling its caches) and for memory first touched; these runs pay for it instead, off
# the timed path. What it does is what model-written programs typically do.
_WARM_UP = """\
rows = []
for i in range(12):
    value = call_tool("warm_up", i=i, name=f"n{i}", rate=0.5)
    rows.append({"id": i, "name": f"n{i}", "total": round(i * 1.5, 2), "value": value})
rows.sort(key=lambda row: row["total"], reverse=True)
for row in rows[:3]:
    print(f"{row['id']:<4} {row['name']:<6} {row['total']:>8.2f}")
print(sum(row["total"] for row in rows), len({row["name"] for row in rows}))
"""
_WARM_UPS = 3


class _Runtime:
    """Process-wide: one engine, the compiled guest and a linker, loaded once (~70 ms)."""

    _lock = threading.Lock()
    _instance: _Runtime | None = None

    def __init__(self, wasm: Path) -> None:
        config = guest_build.engine_config()
        config.epoch_interruption = True
        # Copy the guest's initial memory into each instance when it is made (off the timed
        # path) instead of mapping it copy-on-write, where every page a program first writes
        # costs a fault during the run (expensive under nested virtualisation).
        config.memory_init_cow = False
        self.engine = wasmtime.Engine(config)
        self.component = guest_build.compiled(self.engine, wasm, "guest")
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


class _Guest:
    """One instance of the guest in its own store, with its own /output directory; used once."""

    def __init__(self, runtime: _Runtime, grants: Grants, memory_mb: int, should_stop: Callable[[], bool],
                 warm_ups: int = _WARM_UPS) -> None:
        self.output_dir = make_output_dir() if grants.output else None
        self.store = wasmtime.Store(runtime.engine)
        _fastcall.on_epoch_deadline(self.store, should_stop)
        wasi = wasmtime.WasiConfig()
        if grants.input_dir is not None:
            wasi.preopen_dir(str(grants.input_dir), "/input", fs_mutable=False)
        if self.output_dir is not None:
            wasi.preopen_dir(str(self.output_dir), "/output", fs_mutable=True)
        self.store.set_wasi(wasi)
        self.store.set_limits(memory_size=memory_mb * 2**20)
        self.store.set_epoch_deadline(2**62)
        try:
            instance = runtime.linker.instantiate(self.store, runtime.component)
        except wasmtime.WasmtimeError as exc:
            if "exceeds memory limits" in str(exc):
                raise SandboxError(f"a memory limit of {memory_mb} MB is too small for the guest to start "
                                   f"({exc})") from exc
            raise
        try:
            self.run = _fastcall.RunFunc(instance, self.store, _EXECUTOR)
        except LookupError as exc:
            raise SandboxError(f"the guest component does not export what it should: {exc}") from exc
        token = runtime.route.enter(lambda _name, _payload: (True, "null"))
        try:
            for _ in range(warm_ups):
                self.run(_WARM_UP)
        finally:
            runtime.route.leave(token)

    def discard(self) -> None:
        remove_output_dir(self.output_dir)


class _Preparer:
    """Makes the next run's instance, and disposes of the last, on a background thread.

    Both take milliseconds (releasing an instance's memory is about 1 ms); a run should
    pay for neither.
    """

    def __init__(self, make: Callable[[Grants, int, int], Any], pause: float = 0.0) -> None:
        self._make = make  # (grants, memory_mb, warm-up runs) -> a guest with .discard()
        self._pause = pause
        """Seconds to wait after a run before this work, unless a run waits for it meanwhile."""
        self._not_before = 0.0
        self._takers = 0
        self._cond = threading.Condition()
        self._retired: list[Any] = []
        self._wanted: tuple[Grants, int] | None = None
        self._building: tuple[Grants, int] | None = None
        self._ready: tuple[tuple[Grants, int], Any] | None = None  # a guest, or why it could not be made
        self._closed = False
        # The first instance is made while someone waits for the first run: a warm-up would
        # cost that run more (about 2.4 ms) than it saves it (about 0.7 ms). Later ones are
        # made while nobody waits, so they get every warm-up run.
        self._warm_ups = 0
        threading.Thread(target=self._work, name="codeact-prepare", daemon=True).start()

    def want(self, grants: Grants, memory_mb: int, used: Any = None) -> None:
        """Start making an instance for these grants, unless one is ready or on its way;
        dispose of `used` first."""
        key = (grants, memory_mb)
        with self._cond:
            if used is not None:
                self._retired.append(used)
                self._not_before = time.monotonic() + self._pause
                self._cond.notify_all()
            if self._building != key and (self._ready is None or self._ready[0] != key):
                self._wanted = key
                self._cond.notify_all()

    def wait(self, grants: Grants, memory_mb: int) -> None:
        """Block until an instance for these grants is ready; raise if it could not be made."""
        self._wait(grants, memory_mb, take=False)

    def take(self, grants: Grants, memory_mb: int) -> Any:
        """The ready instance for these grants, waiting for it if it is still being made."""
        return self._wait(grants, memory_mb, take=True)

    def _wait(self, grants: Grants, memory_mb: int, take: bool) -> Any:
        key = (grants, memory_mb)
        self.want(grants, memory_mb)
        with self._cond:
            self._takers += 1
            self._cond.notify_all()  # no pause while a run waits
            try:
                while not self._closed and (self._ready is None or self._ready[0] != key):
                    self._cond.wait()
            finally:
                self._takers -= 1
            if self._ready is None:
                raise SandboxError("the sandbox is closed")
            made = self._ready[1]
            if take or isinstance(made, BaseException):
                self._ready = None  # a failure is reported once; the next want() tries again
        if isinstance(made, SandboxError):
            raise made
        if isinstance(made, BaseException):
            raise SandboxError(f"could not make a guest instance: {made}") from made
        return made

    def close(self) -> None:
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, None
            retired, self._retired = self._retired, []
            self._cond.notify_all()
        if ready is not None and not isinstance(ready[1], BaseException):
            retired.append(ready[1])
        for guest in retired:
            guest.discard()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._retired and not self._closed:
                    self._cond.wait()
                # Right after a run the kernel is still showing its result: work that takes the
                # CPU for a tenth of a second (the scientific guest's) would slow the cell down.
                while not self._closed and not self._takers and time.monotonic() < self._not_before:
                    self._cond.wait(self._not_before - time.monotonic())
                if self._closed:
                    return
                retired, self._retired = self._retired, []
                key, self._wanted = self._wanted, None
                self._building = key
            while retired:  # drops the last reference: the instance's memory is freed here
                retired.pop().discard()
            if key is None:
                continue
            made: Any
            try:
                made = self._make(*key, self._warm_ups)
                self._warm_ups = _WARM_UPS
            except BaseException as exc:  # reported to the run that waits for it
                made = exc
            with self._cond:
                self._building = None
                stale, self._ready = self._ready, (key, made)
                if self._closed:
                    stale, self._ready = self._ready, None
                self._cond.notify_all()
            if stale is not None and not isinstance(stale[1], BaseException):
                stale[1].discard()


class WasmtimeSandbox(Sandbox):
    """Runs programs in the fuller guest under wasmtime, in this process."""

    name = "wasmtime"
    streams_output = True
    _inputs_in_program = True  # the standard guest reads JSON inputs from a header before the program
    _make_state = RunState  # the worker process forwards every request to the kernel instead
    _prepare_pause = 0.0  # an instance takes milliseconds to make: made at once after a run

    def __init__(self, wasm: Path | None = None) -> None:
        self._runtime: Any = self._load(wasm)
        self._stop_reason: str | None = None
        self._preparer = _Preparer(self._make_guest, self._prepare_pause)
        self._current: Any = None
        self._state: RunState | None = None
        self._limits: Limits | None = None
        self._running = False
        self._starting = False  # run() is waiting for its instance
        self._stopping = threading.Lock()
        self._deadline = 0.0
        self._watch = threading.Condition()
        self._closed = False
        self._watcher = threading.Thread(target=self._watchdog, name="codeact-watchdog", daemon=True)
        self._watcher.start()
        self.prepare()

    def prepare(self, grants: Grants = Grants(), limits: Limits = Limits()) -> None:
        """Wait until an instance for these grants is ready, so the next run starts at once."""
        self._preparer.wait(grants, limits.memory_mb)

    # -- what a subclass with another guest replaces (science/backend.py) -------------
    def _load(self, wasm: Path | None) -> Any:
        """The process-wide runtime: engine, compiled guest, linker."""
        return _Runtime.get(wasm)

    def _make_guest(self, grants: Grants, memory_mb: int, warm_ups: int) -> Any:
        """A new instance for these grants (on the preparer's thread)."""
        return _Guest(self._runtime, grants, memory_mb, lambda: self._stop_reason is not None, warm_ups)

    def _execute(self, guest: Any, program: str, state: RunState, inputs: Mapping[str, bytes]) -> None:
        """Run `program` in `guest`, its requests answered by `state`; a trap raises. (The
        standard guest's inputs came in the program's header: `_inputs_in_program`.)"""
        token = self._runtime.route.enter(state.dispatch)
        try:
            guest.run(program)
        finally:
            self._runtime.route.leave(token)

    def _finish(self, guest: Any, result: RunResult, limits: Limits) -> None:
        """What the run left beyond its output: the files in /output."""
        if guest.output_dir is not None:
            result.output_files, notices = collect_outputs(guest.output_dir, limits)
            result.notices.extend(notices)

    def _over(self, guest: Any, limits: Limits) -> str | None:
        """A cap the running program has passed, if any (its stop reason)."""
        if guest.output_dir is not None and dir_size(guest.output_dir) > limits.output_files * limits.output_file_bytes:
            return "output-files"
        return None

    def _watched(self, guest: Any) -> bool:
        """Whether the watchdog must look at this run's files from its start."""
        return guest.output_dir is not None

    # -- limits ----------------------------------------------------------------
    def _watchdog(self) -> None:
        """Stops a run past its deadline or over its /output cap, by bumping the epoch.

        A run does not wake it: a thread woken mid-run contends for the GIL at each tool
        call (measured: 0.3 to 0.6 ms more for the orders program, about 2.5 ms). It looks
        every 0.25 s, and every 0.05 s once it sees a run, so a deadline is kept within
        about 0.3 s. A run with /output wakes it, so the cap is watched from the start.
        """
        while not self._closed:
            interval = _WATCH_IDLE
            if self._running:
                now = time.monotonic()
                state = self._state
                # Time a tool spent waiting for a person (a call asked about) does not count.
                deadline = self._deadline + (state.dispatcher.held_at(now) if state is not None else 0.0)
                if now >= deadline:
                    self._stop("timeout")
                guest, limits = self._current, self._limits
                if guest is not None and limits is not None:
                    try:
                        over = self._over(guest, limits)
                    except Exception:  # noqa: BLE001 - the watchdog must outlive any look at the files
                        over = None
                    if over is not None:
                        self._stop(over)
                guest = None  # held no longer than this look: a used instance's memory is freed at once
                interval = _WATCH_RUNNING
                if self._stop_reason is None:  # else it waits for the run to end (a tool may be busy)
                    interval = min(interval, max(deadline - now, 0.001))
            with self._watch:
                if not self._closed:
                    self._watch.wait(interval)

    def _stop(self, reason: str) -> None:
        with self._stopping:
            if (self._running or self._starting) and self._stop_reason is None:
                self._stop_reason = reason
                if self._running:  # else the run sees the reason before it begins
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
        inputs: Mapping[str, bytes] = {},
    ) -> RunResult:
        check_inputs(inputs, self.data_kinds)
        # Before an instance is taken: an input may be refused.
        source = guest_program(program, inputs) if self._inputs_in_program else program
        with self._stopping:  # from here an interrupt counts, even while the instance is being made
            self._stop_reason = None
            self._starting = True
        try:
            guest = self._preparer.take(grants, limits.memory_mb)
        except BaseException:
            self._starting = False
            raise
        state = self._make_state(tools, limits, grants, on_output)
        self._limits = limits
        self._current = guest
        self._state = state
        guest.store.set_epoch_deadline(1)
        start = time.perf_counter()
        self._deadline = time.monotonic() + limits.timeout
        with self._stopping:
            interrupted = self._stop_reason is not None
            self._running = not interrupted
            self._starting = False
        if interrupted:  # while it waited for its instance: it never starts
            self._current = self._state = None
            state.error = GuestError("KeyboardInterrupt", "the program was interrupted")
            self._preparer.want(grants, limits.memory_mb, used=guest)
            return state.result(0.0)
        if self._watched(guest):
            with self._watch:
                self._watch.notify()
        trap: Exception | None = None
        try:
            self._execute(guest, source, state, inputs)
        except (wasmtime.Trap, wasmtime.WasmtimeError, _fastcall.PendingHostException) as exc:
            trap = exc
        finally:
            self._running = False
            duration = time.perf_counter() - start
            self._current = None
            self._state = None
        if trap is not None:
            state.error = self._trap_error(trap, limits)
        result = state.result(duration)
        self._finish(guest, result, limits)
        if self._closed:
            guest.discard()
        else:  # dispose of this instance and make the next run's, on the preparer's thread
            self._preparer.want(grants, limits.memory_mb, used=guest)
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
        if "stack" in text and ("overflow" in text or "exhausted" in text):
            return GuestError("RecursionError", "the program exhausted the guest's stack")
        if "memory" in text or "out of bounds" in text:
            return GuestError("MemoryError", "the program ran out of guest memory")
        return GuestError("SandboxTrap", text.splitlines()[0] if text else "the guest trapped")

    def close(self) -> None:
        self._closed = True
        with self._watch:
            self._watch.notify()
        self._preparer.close()

    def describe(self) -> str:
        return "wasmtime: the guest component in WebAssembly, in the kernel process"


