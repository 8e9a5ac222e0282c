"""The two crossings every run makes, done directly against wasmtime's C API.

`dispatch` (guest -> host, once per `call_tool`, printed chunk, HTTP request) and `run`
(host -> guest, once per program). wasmtime-py's generic wrappers rebuild the function
type and convert every value through Python objects on each call: about 50 us per
`call_tool`. Here the callback reads the two strings straight out of wasmtime's value
structs and writes the result the same way, and `run` reuses preallocated arguments:
about 8 us per crossing. The field offsets come from wasmtime-py's own ctypes classes,
never hard-coded, and wasmtime is pinned (pyproject.toml); tests/sandbox/test_fastcall.py
checks for leaks. Also here, because wasmtime-py does not wrap it: the per-store
epoch-deadline callback that lets one sandbox stop its program without stopping others.

Memory-ownership rules relied on
--------------------------------
Source: wasmtime crates/c-api/src/component/{linker.rs,func.rs,val.rs} and
crates/c-api/src/vec.rs (the c-api matching wasmtime-py 50), and the header
docs include/wasmtime/component/{func,val,linker}.h.

 R1 Host-function ARGUMENTS are built by Rust into a Vec<wasmtime_component_val_t>
    that Rust drops after the callback returns (linker.rs, add_func:
    ``let mut args = ...collect::<Vec<_>>(); callback(..., args.as_mut_ptr(), ...)``).
    The callback only BORROWS them: never free or modify them, and never keep
    pointers into them after returning.  We copy the strings out.
 R2 Host-function RESULTS: Rust pre-fills the slots with ``Bool(false)`` (owns
    nothing), the callback overwrites them, Rust converts them with
    ``Val::from(&c_val)`` and then DROPS the C values -- also when the
    callback returned an error.  So whatever we put in the slot must be a
    complete value whose every heap part was allocated by wasmtime's Rust
    allocator.  We get that from ``wasmtime_component_val_clone(src, dst)``
    (val.rs: ``dst.write(src.clone())``): a deep copy of `src` into
    Rust-owned memory.  `src` is only borrowed (``&``), so it can live in
    Python-owned scratch memory that Rust never frees, and ``dst.write``
    does not drop the old slot content (it is Bool(false) anyway).
 R3 An error returned by the callback (``wasmtime_error_t*``) is consumed by
    Rust (``Err((*res).into())``): return a fresh ``wasmtime_error_new`` and
    never touch it again.
 R4 ``wasmtime_component_func_call`` only BORROWS ``args`` (func.rs:
    ``c_args.iter().map(Val::from)`` -- a clone).  So the argument string may
    point at memory we own; it must NOT be passed to
    ``wasmtime_component_val_delete``.
 R5 ``wasmtime_component_func_call`` stores results with ``*c_val = ...``,
    which DROPS what the slot held before.  The slot must hold a valid value
    before every call (all-zero bytes == ``Bool(false)``).  After reading a
    result we ``wasmtime_component_val_delete`` it (frees the record, its
    field names and strings) and then zero the slot again, because
    ``val_delete`` destroys in place but leaves the bytes behind.  (For this
    record type the stale bytes happen to be harmless -- vec.rs's Drop nulls
    data/size -- but a stale result/option/variant would hold a dangling Box
    and be double-freed.)
 R6 ``wasmtime_component_func_post_return`` is deprecated and a no-op in
    this c-api ("no longer has any effect"); it is still called (~0.5 us) so
    the code stays correct where it is required.
 R7 Every string given to Rust must be valid UTF-8: Rust converts with
    ``String::from_utf8(..).unwrap()``; a panic in an ``extern "C"`` function
    aborts the process.  We encode with strict ``str.encode('utf-8')`` (lone
    surrogates raise -> handled) and encode error messages with
    errors='replace'.
 R8 The ctypes callback objects must outlive every Linker/Store that may
    call them: they are kept in ``_KEEP`` and dropped by the finalizer that
    wasmtime calls when the last reference to the host function goes away.
    ctypes turns a Python exception escaping a callback into a printed
    traceback plus a 0 (NULL = "success") return, so every callback here
    catches everything itself.

Raw memory access
-----------------
Values are read and written through ``_MEM``, a memoryview spanning the
whole address space, with ``struct`` formats whose offsets are taken from
the ctypes structure definitions in wasmtime/_bindings.py (nothing is
hard-coded, so they follow the installed bindings).  That replaces about
six ctypes foreign calls (~0.7 us each) per crossing with ~0.15 us struct
operations.  Like ``ctypes.string_at``, a wrong address crashes instead of
raising, so every pointer read here comes straight from wasmtime.
"""

# ruff: noqa: ANN001, ANN202 - hot-path callbacks typed by their ctypes prototypes

from __future__ import annotations

import ctypes
import struct
import sys
import threading
from ctypes import c_char, c_char_p, c_size_t, c_void_p

import wasmtime
from wasmtime import _ffi as ffi


# --------------------------------------------------------------------------
# Layout, derived from the ctypes bindings of the installed wasmtime-py.
# --------------------------------------------------------------------------
_VAL = ffi.wasmtime_component_val_t
_VS = ctypes.sizeof(_VAL)
_KIND = _VAL.kind.offset
_OF = _VAL.of.offset
_STR_SIZE = _OF + ffi.wasm_byte_vec_t.size.offset
_STR_DATA = _OF + ffi.wasm_byte_vec_t.data.offset
_RES_OK = _OF + ffi.wasmtime_component_valresult_t.is_ok.offset
_RES_VAL = _OF + ffi.wasmtime_component_valresult_t.val.offset
_REC_SIZE = _OF + ffi.wasmtime_component_valrecord_t.size.offset
_REC_DATA = _OF + ffi.wasmtime_component_valrecord_t.data.offset
_S32 = _OF + ffi.wasmtime_component_valunion_t.s32.offset
_ENTRY = ffi.wasmtime_component_valrecord_entry_t
_ES = ctypes.sizeof(_ENTRY)
_E_NAME_SIZE = _ENTRY.name.offset + ffi.wasm_byte_vec_t.size.offset
_E_NAME_DATA = _ENTRY.name.offset + ffi.wasm_byte_vec_t.data.offset
_E_VAL = _ENTRY.val.offset

_K_S32 = ffi.WASMTIME_COMPONENT_S32.value
_K_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_K_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_K_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value

assert ctypes.sizeof(c_void_p) == 8, "64-bit only"


def _struct(size, fields):
    """struct.Struct for `size` bytes with (offset, code) fields; the rest
    is padding.  Native byte order, no implicit alignment."""
    out, pos = ["="], 0
    for off, code in sorted(fields):
        if off < pos:
            raise AssertionError("overlapping fields")
        if off > pos:
            out.append("%dx" % (off - pos))
        out.append(code)
        pos = off + struct.calcsize("=" + code)
    if size > pos:
        out.append("%dx" % (size - pos))
    s = struct.Struct("".join(out))
    assert s.size == size
    return s


# Two consecutive string values (the dispatch arguments).
_ARGS2 = _struct(2 * _VS, [(_KIND, "B"), (_STR_SIZE, "Q"), (_STR_DATA, "Q"),
                           (_VS + _KIND, "B"), (_VS + _STR_SIZE, "Q"), (_VS + _STR_DATA, "Q")])
# Scratch for a borrowed result<string,string>: [result val][string val][bytes...]
#   val 0: kind=RESULT, is_ok, val -> val 1
#   val 1: kind=STRING, size, data -> payload bytes following it
_RESULT_STR = _struct(2 * _VS, [(_KIND, "B"), (_RES_OK, "?"), (_RES_VAL, "Q"),
                                (_VS + _KIND, "B"), (_VS + _STR_SIZE, "Q"), (_VS + _STR_DATA, "Q")])
# A string value whose bytes live elsewhere.
_STRING = _struct(_VS, [(_KIND, "B"), (_STR_SIZE, "Q"), (_STR_DATA, "Q")])
# Header of a record value.
_RECORD = _struct(_VS, [(_KIND, "B"), (_REC_SIZE, "Q"), (_REC_DATA, "Q")])
# Record entry: name (size, data) + value as a string (kind, size, data) ...
_ENTRY_STR = _struct(_ES, [(_E_NAME_SIZE, "Q"), (_E_NAME_DATA, "Q"), (_E_VAL + _KIND, "B"),
                           (_E_VAL + _STR_SIZE, "Q"), (_E_VAL + _STR_DATA, "Q")])
# ... or as an s32 (kind, value).
_ENTRY_S32 = _struct(_ES, [(_E_VAL + _KIND, "B"), (_E_VAL + _S32, "i")])
_ZERO_VAL = bytes(_VS)  # == Bool(false): owns nothing, safe to drop/overwrite

# The whole address space as a writable byte view (see "Raw memory access").
_MEM = memoryview((ctypes.c_ubyte * sys.maxsize).from_address(0)).cast("B")

# --------------------------------------------------------------------------
# Our own prototypes for the C functions used on the hot path.  Pointer
# arguments are c_void_p (plain ints): cheaper than ctypes POINTER objects.
# Short, non-reentrant helpers go through a PyDLL handle (GIL kept, no
# release/re-acquire per call).  func_call goes through the normal CDLL so
# the GIL IS released while wasm runs.
# --------------------------------------------------------------------------
_CDLL = ffi.dll
_PYDLL = ctypes.PyDLL(ffi.dll._name)


def _proto(lib, name, restype, *argtypes):
    # lib[name] makes a NEW function object.  getattr(lib, name) would return
    # the object cached on ffi.dll that wasmtime-py's own bindings use, and
    # changing its argtypes/restype would break wasmtime-py elsewhere.
    f = lib[name]
    f.restype = restype
    f.argtypes = argtypes
    return f


_val_clone = _proto(_PYDLL, "wasmtime_component_val_clone", None, c_void_p, c_void_p)
_val_delete = _proto(_PYDLL, "wasmtime_component_val_delete", None, c_void_p)
_error_new = _proto(_PYDLL, "wasmtime_error_new", c_void_p, c_char_p)
_func_call = _proto(_CDLL, "wasmtime_component_func_call", c_void_p,
                    c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
_func_call_gil = _proto(_PYDLL, "wasmtime_component_func_call", c_void_p,
                        c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
_post_return = _proto(_CDLL, "wasmtime_component_func_post_return", c_void_p, c_void_p, c_void_p)
_add_func = _proto(_CDLL, "wasmtime_component_linker_instance_add_func", c_void_p,
                   c_void_p, c_char_p, c_size_t, c_void_p, c_void_p, c_void_p)

# Same C signature as ffi.wasmtime_component_func_callback_t
#   (void *env, wasmtime_context_t *, const wasmtime_component_func_type_t *,
#    wasmtime_component_val_t *args, size_t nargs,
#    wasmtime_component_val_t *results, size_t nresults) -> wasmtime_error_t *
# but with every pointer as c_void_p, so ctypes hands us ints (or None).
_CALLBACK_T = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t,
                               c_void_p, c_size_t)
_FINALIZER_T = ctypes.CFUNCTYPE(None, c_void_p)

# R8: keep callback objects alive while wasmtime may call them.
_KEEP = {}
_KEEP_LOCK = threading.Lock()
_NEXT_KEY = [1]


@_FINALIZER_T
def _finalize(key):
    try:  # may run during interpreter shutdown
        with _KEEP_LOCK:
            _KEEP.pop(key or 0, None)
    except Exception:
        pass


def _keep(callback):
    """Keep a ctypes callback alive until wasmtime calls `_finalize` with the returned key."""
    with _KEEP_LOCK:
        key = _NEXT_KEY[0]
        _NEXT_KEY[0] += 1
        _KEEP[key] = callback
    return key


def _register(linker_instance, name, py_impl):
    if linker_instance.locked:
        raise wasmtime.WasmtimeError("linker instance is locked (close nested instances first)")
    cb = _CALLBACK_T(py_impl)
    key = _keep(cb)
    name_b = name.encode("utf-8")
    err = _add_func(ctypes.cast(linker_instance.ptr(), c_void_p).value, name_b, len(name_b),
                    ctypes.cast(cb, c_void_p).value, key, ctypes.cast(_finalize, c_void_p).value)
    if err:
        # wasmtime dropped the closure, which already ran _finalize(key).
        raise _error_from(err)


def _error_from(ptr):
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(ptr, ctypes.POINTER(ffi.wasmtime_error_t)))


def _new_error(msg):
    # R3/R7: a fresh error that wasmtime takes ownership of.  C string: no NULs.
    return _error_new(msg.replace("\0", "?").encode("utf-8", "replace")) or 0


class PendingHostException(Exception):
    """Raised by RunFunc when a host callback hit a BaseException that is not
    an Exception (KeyboardInterrupt, SystemExit); that exception is chained as
    __cause__.  The instance trapped and must be re-instantiated."""


_tls = threading.local()


def _take_pending():
    exc = getattr(_tls, "pending", None)
    if exc is not None:
        _tls.pending = None
    return exc


# --------------------------------------------------------------------------
# Import: dispatch(name: string, args-json: string) -> result<string, string>
# --------------------------------------------------------------------------
def define_dispatch(linker_instance, route, name="dispatch"):
    """Define `name` in `linker_instance` (e.g. the LinkerInstance returned by
    ``root.add_instance("hyperlight:sandbox/tools")``) with a direct callback
    to the handler `route` has for the calling thread (see `Route`).

    ``handler(name: str, args_json: str) -> (ok: bool, payload: str | bytes)``.
    An ``Exception`` from the handler (or a malformed return value) becomes
    ``err("<Type>: <message>")`` for the guest.  A non-Exception
    BaseException (KeyboardInterrupt, SystemExit) traps the guest instead and
    is re-raised by ``RunFunc`` (chained to PendingHostException).
    """
    _register(linker_instance, name, _make_dispatch_impl(route))


# Scratch buffers come in power-of-two size classes whose ctypes array types
# are kept alive here.  ctypes only caches array types weakly (3.11:
# PyDict_SetItemProxy), and creating a new `c_char * n` type costs ~25 us,
# so `(c_char * exact_len)()` per call would be slow for varying lengths.
_SIZE_CLASSES = {}


def _buffer(nbytes):
    """A zeroed, Python-owned ctypes buffer of at least `nbytes` bytes."""
    bl = nbytes.bit_length()
    t = _SIZE_CLASSES.get(bl)
    if t is None:
        t = _SIZE_CLASSES.setdefault(bl, c_char * (1 << bl))
    return t()


# Where a `bytes` object keeps its data: CPython's PyBytesObject ends in `ob_sval`, so the
# data of `b` starts at id(b) + this.  Checked here, once: a result's bytes are handed to
# wasmtime from there, without copying them into a ctypes buffer first.
_BYTES_DATA = bytes.__basicsize__ - 1
_probe = b"codeact-kernel bytes layout probe"
if ctypes.string_at(id(_probe) + _BYTES_DATA, len(_probe)) != _probe:
    raise ImportError("this Python does not lay out bytes objects as CPython does; "
                      "the wasmtime backend needs CPython")
del _probe


def _make_dispatch_impl(route):
    """The raw callback body (a separate function so it can be benchmarked)."""
    MEM, unpack_args, pack_header = _MEM, _ARGS2.unpack_from, _RESULT_STR.pack_into
    STRING, RESULT, VS, DATA = _K_STRING, _K_RESULT, _VS, _BYTES_DATA
    val_clone, local = _val_clone, route._local

    def impl(_env, _ctx, _ty, args, nargs, results, nresults):
        try:
            if nargs != 2 or nresults != 1:
                return _new_error("dispatch: expected 2 params and 1 result")
            # R1: the args are borrowed; read kinds/lengths/pointers, copy
            # the UTF-8 bytes out into Python strings.
            k0, n0, p0, k1, n1, p1 = unpack_args(MEM, args)
            if k0 != STRING or k1 != STRING:
                return _new_error("dispatch: expected (string, string)")
            tool = str(MEM[p0:p0 + n0], "utf-8")
            args_json = str(MEM[p1:p1 + n1], "utf-8")
            try:
                ok, data = local.handler(tool, args_json)
                if data.__class__ is not bytes:
                    data = data.encode("utf-8")           # R7: strict
                ok = ok is True
            except Exception as e:                        # -> err(...) for the guest
                ok = False
                data = ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")
            # R2: describe result{is_ok, Box(String(data))} in this thread's
            # header (Python-owned, never freed by Rust), the string's bytes
            # read in place from `data`, alive until we return; then let
            # wasmtime deep-copy it all into the result slot, which Rust
            # drops after converting (linker.rs).  Nothing runs between the
            # pack and the clone, so a re-entrant run on this thread cannot
            # overwrite the header in between.
            header = local.header
            pack_header(MEM, header, RESULT, ok, header + VS, STRING, len(data), id(data) + DATA)
            val_clone(header, results)
            return 0
        except Exception as e:
            return _new_error("dispatch host error: %s: %s" % (type(e).__name__, e))
        except BaseException as e:   # KeyboardInterrupt/SystemExit: trap, re-raise later
            _tls.pending = e
            return _new_error("dispatch interrupted by %s" % type(e).__name__)

    return impl


# --------------------------------------------------------------------------
# Epoch deadlines: the epoch is one counter for the whole engine.
# --------------------------------------------------------------------------
# (void *env, wasmtime_context_t *, uint64_t *epoch_deadline_delta,
#  wasmtime_update_deadline_kind_t *update_kind) -> wasmtime_error_t *
_EPOCH_CALLBACK_T = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_void_p)
_set_epoch_callback = _proto(_CDLL, "wasmtime_store_epoch_deadline_callback", None,
                             c_void_p, c_void_p, c_void_p, c_void_p)
_U64 = struct.Struct("=Q")
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE, include/wasmtime/store.h
assert ctypes.sizeof(ffi.wasmtime_update_deadline_kind_t) == 1


def on_epoch_deadline(store, should_stop):
    """Make `store` trap at its epoch deadline only if `should_stop()`; else it carries on.

    Stopping a run means bumping the engine's epoch, which every running store sees:
    without this, stopping one sandbox's program would stop every other sandbox's too.
    """
    def impl(_ctx, _env, delta, kind):
        try:
            stop = should_stop()
        except BaseException:  # noqa: BLE001 - never let an exception escape into wasmtime
            stop = True
        if stop:
            return _new_error("stopped by the host")
        _U64.pack_into(_MEM, delta, 1)  # look again at the next tick
        _MEM[kind] = _CONTINUE
        return 0

    cb = _EPOCH_CALLBACK_T(impl)
    key = _keep(cb)
    _set_epoch_callback(ctypes.cast(store.ptr(), c_void_p).value, ctypes.cast(cb, c_void_p).value,
                        key, ctypes.cast(_finalize, c_void_p).value)


# --------------------------------------------------------------------------
# Export: run(code: string) -> record { stdout: string, stderr: string, exit-code: s32 }
# --------------------------------------------------------------------------
class RunFunc:
    """Cached direct caller for ``<interface>#run``.

        run = RunFunc(instance, store)
        exit_code = run("print(1)")

    Errors/traps raise ``wasmtime.WasmtimeError`` (after a trap the instance
    cannot be entered again: re-instantiate).  Not thread-safe -- like the
    Store it wraps, use it from one thread at a time.  With
    ``release_gil=False`` the GIL is held while wasm runs: slightly cheaper
    host-callback re-entry, but no other Python thread (e.g. an epoch
    ticker) can run until the call returns.
    """

    def __init__(self, instance, store, interface="hyperlight:sandbox/executor", name="run",
                 release_gil=True) -> None:
        iface = instance.get_export_index(store, interface)
        if iface is None:
            raise LookupError("no export %r" % interface)
        idx = instance.get_export_index(store, name, iface)
        func = instance.get_func(store, idx) if idx is not None else None
        if func is None:
            raise LookupError("no function %r in %r" % (name, interface))
        self._store = store                      # keeps the store alive
        self._func = func._func                  # wasmtime_component_func_t (plain data)
        self._func_addr = ctypes.addressof(self._func)
        self._ctx = ctypes.cast(store._context(), c_void_p).value  # stable while store lives
        self._args = (_VAL * 1)()                # R4: ours, never val_delete'd
        self._args_addr = ctypes.addressof(self._args)
        self._results = (_VAL * 1)()             # R5: zeroed == Bool(false)
        self._res_addr = ctypes.addressof(self._results)
        self._code = _buffer(4095)               # reusable UTF-8 buffer for `code`
        self._call = _func_call if release_gil else _func_call_gil
        self._fields = None                      # record field order, checked once
        self._lock = threading.Lock()            # refuse concurrent/re-entrant use

    def __call__(self, code):
        data = code.encode("utf-8")              # R7 (strict)
        if not self._lock.acquire(False):
            raise RuntimeError("RunFunc is already running (not re-entrant / thread-safe)")
        try:
            n = len(data)
            if n > len(self._code):
                self._code = _buffer(n)
            cbuf = ctypes.addressof(self._code)
            _MEM[cbuf:cbuf + n] = data
            # R4: a borrowed string value pointing into our own buffer.
            _STRING.pack_into(self._args, 0, _K_STRING, n, cbuf)
            res = self._res_addr
            err = self._call(self._func_addr, self._ctx, self._args_addr, 1, res, 1)
            if err:
                # handle_result only writes results on success: slot untouched.
                pending = _take_pending()
                exc = _error_from(err)
                if pending is not None:
                    raise PendingHostException(str(exc)) from pending
                raise exc
            try:
                out = self._read(res)
            finally:
                # R5: free the record (names + strings), then reset the slot
                # to Bool(false) so the next call's `*c_val = ..` drops nothing.
                _val_delete(res)
                _MEM[res:res + _VS] = _ZERO_VAL
            perr = _post_return(self._func_addr, self._ctx)   # R6
            if perr:
                raise _error_from(perr)
            return out
        finally:
            self._lock.release()

    def _read(self, res):
        mem = _MEM
        kind, n, entries = _RECORD.unpack_from(mem, res)
        if kind != _K_RECORD or n != 3:
            raise TypeError("run: unexpected result (kind %d, %d fields)" % (kind, n))
        if self._fields is None:
            names = []
            for i in range(3):
                ns, nd, _, _, _ = _ENTRY_STR.unpack_from(mem, entries + i * _ES)
                names.append(str(mem[nd:nd + ns], "utf-8"))
            try:
                self._fields = tuple(i * _ES for i in (names.index("stdout"), names.index("stderr"),
                                                      names.index("exit-code")))
            except ValueError:
                raise TypeError("run: unexpected record fields %r" % (names,))
        o_out, o_err, o_code = self._fields
        _, _, k1, n1, p1 = _ENTRY_STR.unpack_from(mem, entries + o_out)
        _, _, k2, n2, p2 = _ENTRY_STR.unpack_from(mem, entries + o_err)
        k3, code = _ENTRY_S32.unpack_from(mem, entries + o_code)
        if k1 != _K_STRING or k2 != _K_STRING or k3 != _K_S32:
            raise TypeError("run: unexpected field kinds")
        return code


class Route:
    """Which handler a `dispatch` from the guest reaches: the run active on this thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self, handler):
        """Make `handler(name, payload) -> (ok, str | UTF-8 bytes)` receive this thread's dispatches."""
        local = self._local
        if not hasattr(local, "header"):
            # The thread's scratch for a result: two values, kept for the thread's life.
            local.scratch = (_VAL * 2)()
            local.header = ctypes.addressof(local.scratch)
        previous = getattr(local, "handler", _no_program)
        local.handler = handler
        return previous

    def leave(self, token) -> None:
        self._local.handler = token


def _no_program(_name, _payload):
    return False, "no program is running"
