"""The one interface the kernel uses to run a model's program, whatever isolates it.

A backend takes a program, the tools it may call, limits and grants, and returns a
`RunResult`. A program that fails is a normal result (`RunResult.error`), never a host
exception: the host raises only when the sandbox itself cannot work (`SandboxError`).

The JSON contract of `call_tool` (the same on every backend):
- the guest sends the tool name and a JSON object; keyword arguments are its keys, and
  positional arguments, if any, travel as a list under the reserved key ``"__args__"``;
  for a tool that shows its calls to a person (`wants_line`), the host first answers
  `LINE_WANTED`, and the guest sends the call again with the line of the program that
  made it under ``"__line__"`` (information, like the static scan, never a guard);
- the host answers with the JSON of the tool's return value, or an error message that the
  guest raises as `ToolError` (a `RuntimeError`) naming the tool;
- values JSON cannot carry: in arguments, tuples become lists and anything else (sets,
  bytes, objects) raises `TypeError` in the program before the call; in results, the host
  converts dataclasses to dicts, sets and tuples to lists, dates and times to ISO strings,
  `Decimal` and `Path` to strings, NaN and infinities to null, and reports any other
  type as a tool error.

Data crosses too, never as a pickle (`codeact_kernel.data` blobs): `inputs` are bound in the
program's globals before it runs, a new copy each run; after a program that ends without
error, its top-level variables that are data come back as `RunResult.carried`. The standard
guest holds JSON values only (`Sandbox.data_kinds`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import pathlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import monotonic, perf_counter
from typing import Any

import orjson

OutputCallback = Callable[[str, str], None]
"""Called with ("stdout" | "stderr", text) as the program prints, where the backend streams."""

ToolFunction = Callable[..., Any]

ARGS_KEY = "__args__"
LINE_KEY = "__line__"
LINE_WANTED = "codeact: the line, please"
"""The answer that makes the guest send a call again with its line (guest/executor.py says the same)."""
RUNTIME_NAMES = frozenset(("call_tool", "ToolError", "http_get", "http_post", "set_result"))
"""What the guest defines in a program's globals: never an input's name, never carried."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run; the defaults are safe for model-written programs."""

    timeout: float = 30.0
    memory_mb: int = 512
    output_bytes: int = 1_000_000
    tool_calls: int = 1_000
    output_files: int = 20
    output_file_bytes: int = 10_000_000

    @property
    def shape(self) -> tuple[int, int, int]:
        """The limits a guest is built for (Hyperlight: the VM's memory and /output quota):
        a run with another shape needs another guest, built before its deadline starts."""
        return self.memory_mb, self.output_files, self.output_file_bytes


@dataclass(frozen=True)
class Grants:
    """What the user lets a program reach beyond `call_tool`; nothing by default.

    `allowed_domains` maps a host name (optionally ``host:port``) to the HTTP methods
    allowed on it, or to None for any method.
    """

    input_dir: pathlib.Path | None = None
    output: bool = False
    allowed_domains: Mapping[str, frozenset[str] | None] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCall:
    """One `call_tool` the program made."""

    name: str
    args: Sequence[Any]  # as the program sent them (a JSON list), or () for none
    kwargs: dict[str, Any]
    duration: float
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class GuestError:
    """An exception the program did not catch, or the limit that stopped it."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return self.traceback or f"{self.type}: {self.message}"


@dataclass
class RunResult:
    """Everything a run produced, in the order the program produced it."""

    stdout: str = ""
    stderr: str = ""
    error: GuestError | None = None
    duration: float = 0.0
    tool_calls: list[ToolCall] = field(default_factory=list)
    output_files: dict[str, bytes] = field(default_factory=dict)
    value: Any = None
    has_value: bool = False
    notices: list[str] = field(default_factory=list)
    held: float = 0.0
    """Seconds of `duration` the run waited for a person (calls asked about; see `Calling.hold`)."""
    carried: dict[str, bytes] = field(default_factory=dict)
    """The program's top-level variables that are data, each a `codeact_kernel.data` blob; only
    after a run that ended without error (a value that could not be carried is in `notices`)."""
    figures: list[bytes] = field(default_factory=list)
    """PNG images of the matplotlib figures the program showed or left open, in order (the
    scientific guest; the others have no matplotlib)."""
    backend: str = ""
    """The sandbox that ran it (its `Sandbox.name`), where that is not simply the one asked:
    a router sends programs that need the scientific stack to "wasmtime (scientific guest)"."""

    @property
    def ok(self) -> bool:
        return self.error is None


class Sandbox(ABC):
    """A place to run untrusted Python programs with `call_tool` bound to host functions."""

    name: str = "abstract"
    streams_output: bool = False
    """True when `on_output` is called while the program runs, not only at the end."""
    data_kinds: frozenset[str] = frozenset({"json"})
    """The kinds of data (`codeact_kernel.data.kind`) its guest can hold, as inputs and carried values."""

    @abstractmethod
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
        """Run `program` in a fresh guest; never raises for a failing program.

        `inputs` maps names to `codeact_kernel.data` blobs, bound in the program's globals
        before it runs; a name that is not an identifier, starts with ``_`` or is one of
        `RUNTIME_NAMES`, or a blob of a kind not in `data_kinds`, raises `DataError` and
        nothing runs.
        """

    def cancel(self) -> None:
        """Stop the current run as soon as possible, from any thread (an interrupt)."""

    def close(self) -> None:
        """Release the backend's resources."""

    def describe(self) -> str:
        """What this backend is and what it can do, for `%sandbox`."""
        return self.name


def _to_json(value: Any) -> Any:
    """The `default` for json.dumps on tool results: the conversions the contract promises."""
    import datetime
    import decimal  # here, not at the top: only unusual tool results need them

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, pathlib.PurePath)):
        return str(value)
    dump = getattr(value, "model_dump", None)  # pydantic models, without importing pydantic
    if callable(dump):
        return dump()
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent to the program as JSON")


# Every tool call crosses here twice; orjson does it in a tenth of the stdlib's time. The
# stdlib is the fallback wherever orjson would not be exact: integers over 64 bits (orjson
# refuses them, and reads them as floats), NaN and infinities (it writes them as null and
# cannot read them), dict keys that are not strings (refused, naming where). Its error
# messages are the contract's.
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_LONG_NUMBER = re.compile(r"\d{19}")  # could be past 64 bits: orjson would make it a float


def decode_arguments(text: str) -> Any:
    """The arguments a program sent, exactly as the guest's JSON wrote them."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # NaN or an infinity, which Python's JSON (the guest's) writes and reads
    return json.loads(text)


def encode_result(value: Any) -> bytes:
    """JSON of a tool's return value, exactly as the guest will read it (UTF-8)."""
    try:
        payload = orjson.dumps(value, default=_to_json, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        payload = None
    if payload is not None and b"null" not in payload:
        return payload  # nothing orjson might have changed
    _check_keys(value, "the result")
    return json.dumps(value, default=_to_json, ensure_ascii=False).encode()


def _check_keys(value: Any, where: str) -> None:
    """Refuse a dict key that is not a string, naming where: JSON would turn it into one."""
    value = _as_json(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the dict key {key!r} ({type(key).__name__}); JSON keys are "
                                "strings, so it would reach the program changed: use str keys")
            _check_keys(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_keys(item, f"{where}[{index}]")


def _as_json(value: Any) -> Any:
    """What `_to_json` makes of a value json cannot write as it is (a dict, list or scalar)."""
    if isinstance(value, (dict, list, str, int, float, bool, type(None))):
        return value
    try:
        return _to_json(value)
    except TypeError:
        return value  # json.dumps says why, with the contract's message


class Calling:
    """The `call_tool` this thread is serving, as a tool sees it (`calling()`): where in the
    program it was made, and `hold()` for time a person spends deciding, which does not
    count against the run's timeout."""

    def __init__(self, dispatcher: ToolDispatcher, line: int | None) -> None:
        self._dispatcher = dispatcher
        self.line = line

    @contextmanager
    def hold(self) -> Iterator[None]:
        dispatcher = self._dispatcher
        dispatcher.holding_since = monotonic()
        try:
            yield
        finally:
            dispatcher.held += monotonic() - dispatcher.holding_since
            dispatcher.holding_since = None


_serving = threading.local()


def calling() -> Calling | None:
    """The call this thread is serving, for a tool to ask from inside its call (outside one,
    this thread's last call, or None). Made on demand: most tools never ask, and every call
    crosses the dispatcher."""
    dispatcher = getattr(_serving, "dispatcher", None)
    return Calling(dispatcher, dispatcher.line) if dispatcher is not None else None


class ToolDispatcher:
    """Host side of `call_tool`: decode, call, record, encode, enforce the call cap.

    Shared by every backend so a tool behaves identically whichever sandbox runs it.
    """

    def __init__(self, tools: Mapping[str, ToolFunction], max_calls: int) -> None:
        self._tools = tools
        self._max_calls = max_calls
        self.calls: list[ToolCall] = []
        self.held = 0.0
        """Seconds tools held the run waiting for a person (see `Calling.hold`)."""
        self.holding_since: float | None = None
        self.line: int | None = None
        """The program line of the call being served, where its tool `wants_line`."""
        self._want_line = {name for name, fn in tools.items() if getattr(fn, "wants_line", False)}

    def held_at(self, now: float) -> float:
        """Seconds held so far, a hold in progress included: what a deadline moves by."""
        since = self.holding_since
        return self.held + (now - since if since is not None else 0.0)

    def call(self, name: str, args_json: str) -> tuple[bool, str | bytes]:
        """Return (ok, payload): the result's JSON (UTF-8), or an error message for the program."""
        calls = self.calls
        if len(calls) >= self._max_calls:
            return False, f"tool call limit reached: a program may make at most {self._max_calls} calls"
        fn = self._tools.get(name)
        args: Any = ()
        kwargs: Any = {}
        start = perf_counter()
        try:
            kwargs = decode_arguments(args_json) if args_json else {}
            if type(kwargs) is not dict:
                raise TypeError("tool arguments must be a JSON object")
            args = kwargs.pop(ARGS_KEY, ())
            line = kwargs.pop(LINE_KEY, None)
            if fn is None:
                available = ", ".join(sorted(self._tools)) or "none"
                raise LookupError(f"unknown tool {name!r}; available tools: {available}")
            if line is None and name in self._want_line:
                return False, LINE_WANTED  # not a call yet: the guest sends it again, with its line
            self.line = line if type(line) is int and line > 0 else None
            _serving.dispatcher = self
            payload = encode_result(fn(*args, **kwargs))
        except Exception as exc:  # the program sees the tool's failure, the host carries on
            message = f"{type(exc).__name__}: {exc}"
            calls.append(ToolCall(name, list(args), kwargs, perf_counter() - start, False, message))
            return False, message
        calls.append(ToolCall(name, args, kwargs, perf_counter() - start, True))
        return True, payload
