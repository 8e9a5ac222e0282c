"""A backend in a child process that the kernel can kill: a timeout that holds on every backend.

hyperlight-sandbox 0.8.0 cannot interrupt a running guest, so a program that never ends
would hold its thread, and the kernel, for ever. Here the backend runs in a child process;
at the deadline, or on an interrupt, the kernel kills it and starts another for the next
run. The child also keeps the kernel's memory (API key, namespace, history) away from the
process that runs model code: it starts from a scrubbed environment and is never sent a tool.

Every `dispatch` the guest makes comes back over a pipe to a `RunState` in the kernel, so
tools run in the kernel and every cap and guard is the kernel's, as on an inline backend.

Frames: a 4-byte big-endian length, a byte saying what it is, the body. The kernel sends
pickles (the child trusts the kernel); the child sends bytes and JSON only (the kernel never
unpickles what a process running model code wrote).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from .. import scratch
from ..errors import SandboxError
from .base import Calling, GuestError, Grants, Limits, OutputCallback, RunResult, Sandbox, ToolFunction
from .guest_build import CACHE_SETTINGS, Progress, ProgressCallback
from .host import RunState, check_inputs

# Kernel to child
_PREPARE, _RUN, _ANSWER = b"P", b"X", b"A"
# Child to kernel
_READY, _DISPATCH, _DONE, _FAILED, _PROGRESS = b"K", b"D", b"R", b"F", b"G"

_HEADER = struct.Struct(">IB")
_NAME_LENGTH = struct.Struct(">I")
# What a child inherits of the kernel's environment: enough to find Python, its packages
# and the caches; never the API key or anything else the user exported.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "VIRTUAL_ENV",
              "XDG_CACHE_HOME", *CACHE_SETTINGS, "LD_LIBRARY_PATH", "SYSTEMROOT")
_NAMES = {"science": "wasmtime (scientific guest)"}
# The kernel kills the worker at the deadline; a backend that can stop its own programs
# (wasmtime) is given this much longer, so its own stop is only a backstop.
_BACKSTOP = 1.0


class _ChildGone(Exception):
    """The other end of the pipe closed."""


class _Link:
    """Frames over a pair of pipe descriptors; `recv` can give up at a deadline."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in = read_fd
        self._out = write_fd
        self._buffer = bytearray()
        self._sending = threading.Lock()  # progress may be sent from the backend's preparer thread

    def send(self, kind: bytes, body: bytes = b"") -> None:
        data = _HEADER.pack(len(body), kind[0]) + body
        view = memoryview(data)
        with self._sending:
            while view:
                view = view[os.write(self._out, view):]

    def recv(self, deadline: float | None = None) -> tuple[bytes, bytes] | None:
        """The next frame, or None once `deadline` (time.monotonic) has passed."""
        buffer = self._buffer
        while True:
            if len(buffer) >= _HEADER.size:
                length, kind = _HEADER.unpack_from(buffer)
                end = _HEADER.size + length
                if len(buffer) >= end:
                    body = bytes(buffer[_HEADER.size:end])
                    del buffer[:end]
                    return bytes([kind]), body
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self._in], [], [], wait)[0]:
                    return None
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise _ChildGone()
            buffer += chunk


class _Child:
    """One worker process, started with a scrubbed environment and a private temp folder."""

    def __init__(self, backend: str, progress: ProgressCallback | None = None) -> None:
        self.progress = progress
        self.tmp = str(scratch.folder("worker"))
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env["TMPDIR"] = self.tmp  # its /output folders live here, removed with it
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "codeact_kernel.sandbox.worker", backend],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
            start_new_session=True,  # a Ctrl-C meant for the kernel is not sent here too
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.link = _Link(self.process.stdout.fileno(), self.process.stdin.fileno())
        self.prepared: tuple[Grants, tuple[int, int, int]] | None = None

    def prepare(self, grants: Grants, limits: Limits) -> None:
        """Have the backend make what a run with these grants needs, and wait until it has."""
        self.link.send(_PREPARE, pickle.dumps((grants, limits)))
        kind, body = self._reply()
        if kind == _FAILED:
            raise SandboxError(orjson.loads(body)["message"])
        self.prepared = (grants, limits.shape)

    def _reply(self) -> tuple[bytes, bytes]:
        while True:
            try:
                frame = self.link.recv()
            except _ChildGone:
                frame = None
            if frame is None:
                raise SandboxError(f"the sandbox worker process exited ({self.exit_status()})")
            if frame[0] != _PROGRESS:
                return frame
            if self.progress is not None:  # making its guest (the scientific one compiles once)
                self.progress(Progress(**orjson.loads(frame[1])))

    def exit_status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerSandbox(Sandbox):
    """A backend (`hyperlight` or `wasmtime`) in a child process, killed and replaced at need."""

    streams_output = True

    def __init__(self, backend: str, grants: Grants = Grants(), limits: Limits = Limits(),
                 progress: ProgressCallback | None = None) -> None:
        self.name = _NAMES.get(backend, backend)
        if backend == "science":
            self.data_kinds = frozenset({"json", "numpy", "pandas"})
        self._progress = progress
        self._backend = backend
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._running: _Child | None = None
        self._active = False
        self._stop_reason: str | None = None
        self._closed = False
        self._next: _Child | None = None
        self._starting: threading.Thread | None = None
        self._start_error: SandboxError | None = None
        self._child = self._start(grants, limits)  # here: a backend that cannot start says so now

    def _start(self, grants: Grants, limits: Limits) -> _Child:
        child = _Child(self._backend, self._progress)
        try:
            child.prepare(grants, limits)
        except BaseException:
            child.close()
            raise
        return child

    def _replace_in_background(self, grants: Grants, limits: Limits) -> None:
        """Start the next run's worker while the user reads this run's answer."""

        def start() -> None:
            try:
                child = self._start(grants, limits)
            except SandboxError as exc:
                self._start_error = exc
                return
            with self._state_lock:
                if self._closed:
                    child.close()
                else:
                    self._next = child

        self._starting = threading.Thread(target=start, name="codeact-worker-start", daemon=True)
        self._starting.start()

    def _take(self, grants: Grants, limits: Limits) -> _Child | None:
        """The worker for this run, or None if the run was interrupted while one was starting
        (a Hyperlight worker takes seconds to boot: an interrupt must not wait for it)."""
        if self._child is None:
            if self._starting is None and self._next is None:
                self._replace_in_background(grants, limits)
            if self._starting is not None:
                while self._starting.is_alive():
                    self._starting.join(0.05)
                    if self._active and self._stop_reason is not None:
                        return None  # the worker being started serves the next run
                self._starting = None
            self._child, self._next = self._next, None
            if self._child is None:
                error, self._start_error = self._start_error, None
                raise error or SandboxError("the sandbox worker could not be started")
        child = self._child
        if child.prepared != (grants, limits.shape):  # built here, outside the deadline
            try:
                child.prepare(grants, limits)
            except SandboxError:
                self._retire()
                raise
        return child

    def _retire(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def prepare(self, grants: Grants = Grants(), limits: Limits = Limits()) -> None:
        """Make the worker ready for a run with these grants, so the next run starts at once."""
        with self._run_lock:
            child = self._take(grants, limits)
            if child is not None:
                child.prepare(grants, limits)  # the backend waits for its next instance, if it makes one

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
        check_inputs(inputs, self.data_kinds)  # here, in the kernel: a refusal is raised where it is asked
        with self._run_lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            with self._state_lock:
                self._stop_reason = None
                self._active = True  # an interrupt from now on counts, even before the worker is ready
            try:
                child = self._take(grants, limits)
                state = RunState(tools, limits, grants, on_output)
                with self._state_lock:
                    self._running = child
                    interrupted = self._stop_reason is not None
                if interrupted or child is None:
                    state.error = GuestError("KeyboardInterrupt", "the program was interrupted")
                    return state.result(0.0)
                start = time.perf_counter()
                deadline = time.monotonic() + limits.timeout
                report = self._serve(child, state, program, limits, grants, dict(inputs), deadline)
            finally:
                with self._state_lock:
                    self._running = None
                    self._active = False
            duration = time.perf_counter() - start
            if report is None:  # killed, or it died: this worker is done
                self._retire()
                self._replace_in_background(grants, limits)
                state.error = self._stopped_error(limits, child)
                return state.result(duration)
            if state.error is None and report["error"] is not None:
                state.error = GuestError(*report["error"])
            result = state.result(report.get("duration", duration))
            result.output_files = {name: base64.b64decode(data) for name, data in report["files"].items()}
            result.notices.extend(report["notices"])
            result.figures = [base64.b64decode(png) for png in report.get("figures", ())]
            if result.error is None:  # the scientific guest's tables (its JSON values came as for every guest)
                result.carried.update({name: base64.b64decode(blob) for name, blob in report.get("carried", {}).items()})
            if report.get("value") is not None:  # decoded here, by the codec that never unpickles
                from .. import data

                result.value, result.has_value = data.decode(base64.b64decode(report["value"])), True
            return result

    def _serve(self, child: _Child, state: RunState, program: str, limits: Limits, grants: Grants,
               inputs: dict[str, bytes], deadline: float) -> dict[str, Any] | None:
        """Answer the child's requests until it reports; None if it was stopped or died."""
        link = child.link
        try:
            backstop = dataclasses.replace(limits, timeout=limits.timeout + _BACKSTOP)
            link.send(_RUN, pickle.dumps((program, backstop, grants, dict(inputs))))
            dispatcher = state.dispatcher
            while True:
                # Time a tool spent waiting for a person (a call asked about) does not count.
                frame = link.recv(deadline + dispatcher.held)
                if frame is None:
                    with self._state_lock:
                        self._stop_reason = self._stop_reason or "timeout"
                    child.kill()
                    return None
                kind, body = frame
                if kind == _DISPATCH:
                    (size,) = _NAME_LENGTH.unpack_from(body)
                    name = body[4:4 + size].decode("utf-8", "replace")
                    ok, answer = state.dispatch(name, body[4 + size:].decode("utf-8", "replace"))
                    if type(answer) is str:
                        answer = answer.encode("utf-8", "replace")
                    link.send(_ANSWER, (b"\x01" if ok else b"\x00") + answer)
                elif kind == _DONE:
                    return orjson.loads(body)
                elif kind == _FAILED:
                    raise SandboxError(orjson.loads(body)["message"])
                else:
                    raise SandboxError(f"the sandbox worker sent an unknown message ({kind!r})")
        except (_ChildGone, BrokenPipeError, orjson.JSONDecodeError):
            return None

    def _stopped_error(self, limits: Limits, child: _Child) -> GuestError:
        reason = self._stop_reason
        if reason == "timeout":
            return GuestError("TimeoutError", f"the program ran longer than {limits.timeout:g} s and was stopped")
        if reason == "interrupt":
            return GuestError("KeyboardInterrupt", "the program was interrupted")
        return GuestError("SandboxError", f"the sandbox process ended during the run ({child.exit_status()}); "
                                          "a new one is started for the next run")

    def cancel(self) -> None:
        with self._state_lock:
            if self._active and self._stop_reason is None:
                self._stop_reason = "interrupt"
                if self._running is not None:
                    self._running.kill()

    def close(self) -> None:
        with self._state_lock:
            self._closed = True
            running, spare, self._next = self._running, self._next, None
        if running is not None:
            running.kill()
        with self._run_lock:
            self._retire()
        if spare is not None:
            spare.close()

    def describe(self) -> str:
        return f"{self.name}, in a worker process the kernel kills at the deadline"


# --- the child ------------------------------------------------------------------------------

class _Forwarder(RunState):
    """The child's side of a run: every request from the guest goes to the kernel's RunState."""

    def __init__(self, link: _Link, *args: Any) -> None:
        super().__init__({}, *args[1:])
        self._link = link

    def dispatch(self, name: str, payload: str) -> tuple[bool, str | bytes]:
        raw = name.encode("utf-8", "surrogatepass")
        self._link.send(_DISPATCH, _NAME_LENGTH.pack(len(raw)) + raw + payload.encode("utf-8", "surrogatepass"))
        # While the kernel serves the request (a tool; a person deciding about it) this
        # process's deadline, only a backstop to the kernel's, stands still.
        with Calling(self.dispatcher, None).hold():
            frame = self._link.recv()
        assert frame is not None and frame[0] == _ANSWER
        body = frame[1]
        if body[:1] == b"\x01":
            return True, body[1:]
        return False, body[1:].decode("utf-8", "replace")


def _make_backend(name: str, progress: ProgressCallback) -> Sandbox:
    if name == "science":
        from .science import ScienceSandbox

        box = ScienceSandbox(progress=progress)
        box.decode_values = False  # the kernel decodes what the guest encoded
        return box
    if name == "hyperlight":
        from .hyperlight_backend import HyperlightSandbox

        return HyperlightSandbox()
    if name == "wasmtime":
        from .wasmtime_backend import WasmtimeSandbox

        return WasmtimeSandbox()
    raise SystemExit(f"unknown backend {name!r}")


def _serve_kernel(backend: str) -> None:
    # Frames travel on the original stdin and stdout; anything printed goes to stderr.
    link = _Link(os.dup(0), os.dup(1))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    box = _make_backend(backend, lambda p: link.send(_PROGRESS, orjson.dumps(dataclasses.asdict(p))))
    box._make_state = lambda *args: _Forwarder(link, *args)  # type: ignore[attr-defined]
    while True:
        try:
            frame = link.recv()
        except _ChildGone:
            return
        assert frame is not None
        kind, body = frame
        try:
            if kind == _PREPARE:
                grants, limits = pickle.loads(body)
                box.prepare(grants, limits)  # type: ignore[attr-defined]
                link.send(_READY)
            elif kind == _RUN:
                program, limits, grants, inputs = pickle.loads(body)
                result = box.run(program, {}, limits=limits, grants=grants, inputs=inputs)
                error = result.error
                carried = getattr(box, "tables_carried", {})
                value = getattr(box, "value_blob", None)
                link.send(_DONE, orjson.dumps({
                    "error": [error.type, error.message, error.traceback] if error is not None else None,
                    "duration": result.duration,
                    "files": {name: base64.b64encode(data).decode() for name, data in result.output_files.items()},
                    "notices": result.notices,
                    "figures": [base64.b64encode(png).decode() for png in result.figures],
                    "carried": {name: base64.b64encode(blob).decode() for name, blob in carried.items()},
                    "value": base64.b64encode(value).decode() if value is not None else None,
                }))
        except SandboxError as exc:
            link.send(_FAILED, orjson.dumps({"message": str(exc)}))


if __name__ == "__main__":
    _serve_kernel(sys.argv[1])
