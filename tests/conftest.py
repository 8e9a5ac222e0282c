"""Shared fixtures: real sandboxes, real tools, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator

import pytest

from codeact_kernel.sandbox.base import RunResult, Sandbox
from codeact_kernel.sandbox.guest_build import CACHE_SETTINGS

BACKENDS = ("wasmtime", "wasmtime-worker", "hyperlight", "science", "science-worker")
# How much slower than usual this machine is: CI's emulated VM (.ci/hyperlight-job) sets it, so
# waits for a kernel to start or a cell to finish scale; what a test asserts does not change.
SLOWDOWN = float(os.environ.get("CODEACT_TEST_SLOWDOWN", "1"))


def _available(backend: str) -> None:
    """Skip (or, where CODEACT_SANDBOX=hyperlight demands it, fail) a backend that cannot run here.

    CI's Hyperlight step sets CODEACT_SANDBOX=hyperlight in an emulated VM where Hyperlight
    boots: there only the Hyperlight backend is tested, and a probe that fails is a failure.
    """
    only = os.environ.get("CODEACT_SANDBOX", "").strip().lower()
    if only == "hyperlight" and backend != "hyperlight":
        pytest.skip("CODEACT_SANDBOX=hyperlight: this run tests the Hyperlight backend only")
    if backend.startswith("science"):
        from codeact_kernel.sandbox.science.artifacts import available

        missing = available()
        if missing is not None:
            pytest.skip(f"the scientific guest cannot be made here: {missing}")
    if backend == "hyperlight":
        from codeact_kernel.sandbox.selection import cached_probe

        probe = cached_probe()
        if not probe.ok:
            if only == "hyperlight":
                pytest.fail(f"CODEACT_SANDBOX=hyperlight, but Hyperlight cannot boot: {probe.reason}")
            pytest.skip(f"Hyperlight cannot boot here: {probe.reason}")


def _make(backend: str) -> Sandbox:
    if backend == "wasmtime":
        from codeact_kernel.sandbox.wasmtime_backend import WasmtimeSandbox

        return WasmtimeSandbox()
    if backend == "science":
        from codeact_kernel.sandbox.science import ScienceSandbox

        return ScienceSandbox()
    from codeact_kernel.sandbox.worker import WorkerSandbox

    return WorkerSandbox(backend.removesuffix("-worker"))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    """Each backend in turn: wasmtime in this process, wasmtime in a worker, Hyperlight, and the
    scientific guest in this process and in a worker (its first use on a machine compiles it,
    about 1.5 minutes, once)."""
    _available(request.param)
    return request.param


_shared: dict[str, Sandbox] = {}


@pytest.fixture(scope="session", autouse=True)
def _close_shared_sandboxes() -> Iterator[None]:
    yield
    while _shared:
        _shared.popitem()[1].close()


@pytest.fixture
def sandbox(backend) -> Sandbox:
    """One sandbox per backend, shared by the session's tests (as a kernel shares its sandbox)."""
    if backend not in _shared:
        _shared[backend] = _make(backend)
    return _shared[backend]


@pytest.fixture
def new_sandbox(backend) -> Iterator[Callable[[], Sandbox]]:
    """Make further sandboxes of the same backend; all are closed after the test."""
    made: list[Sandbox] = []

    def make() -> Sandbox:
        made.append(_make(backend))
        return made[-1]

    yield make
    for box in made:
        box.close()


@pytest.fixture(scope="session")
def hyperlight_available() -> None:
    """Skip where Hyperlight cannot boot (with the probe's reason)."""
    _available("hyperlight")


@pytest.fixture(scope="session")
def science_sandbox() -> Sandbox:
    """The scientific guest, shared with the contract tests' (one compile, one image per session)."""
    _available("science")
    if "science" not in _shared:
        _shared["science"] = _make("science")
    return _shared["science"]


@pytest.fixture(scope="session")
def wasmtime_sandbox() -> Iterator[Sandbox]:
    """The wasmtime backend in this process, for what only it does."""
    _available("wasmtime")
    box = _make("wasmtime")
    yield box
    box.close()


def _weather(city: str, unit: str = "C") -> dict:
    """The current weather in `city`."""
    return {"city": city, "temperature": 21.5 if city == "Seattle" else 14.0, "unit": unit}


def _fail(message: str) -> None:
    raise ValueError(message)


@pytest.fixture
def tools() -> dict:
    return {
        "add": lambda a, b: a + b,
        "weather": _weather,
        "fail": _fail,
        "echo": lambda *args, **kwargs: {"args": list(args), "kwargs": kwargs},
    }


@pytest.fixture
def assert_healthy(sandbox, tools):
    """After anything hostile: the host is alive and the next program runs correctly."""

    def check() -> None:
        result: RunResult = sandbox.run("print(call_tool('add', 2, 3))", tools)
        assert result.ok, result.error
        assert result.stdout == "5\n"

    return check


def every_dtype() -> dict:
    """One value of every kind `codeact_kernel.data` carries exactly, with missing values and names
    where they can be (a function, not a fixture: the scientific guest's test builds them too)."""
    import numpy as np
    import pandas as pd

    n = 6
    frame = pd.DataFrame({
        "int64": np.array([1, -2, 3, 2**62, 0, -(2**63)], dtype="int64"),
        "int8": np.array([1, -2, 3, 4, 5, 127], dtype="int8"),
        "uint64": np.array([0, 1, 2, 3, 4, 2**64 - 1], dtype="uint64"),
        "float64": [1.5, np.nan, -0.0, np.inf, -np.inf, 1e-300],
        "float32": np.array([1.5, np.nan, 2.25, 0, 1, 2], dtype="float32"),
        "bool": [True, False, True, True, False, False],
        "when_utc": pd.to_datetime(["2026-01-01 10:00", None, "2026-03-01 00:00", "2026-04-01 00:00", "2026-05-01 00:00",
                                    "2026-06-01 00:00"], utc=True).as_unit("ns"),
        "when_paris": pd.date_range("2026-03-29 00:30", periods=n, freq="h", tz="Europe/Paris"),
        "when_offset": pd.date_range("2026-01-01", periods=n, freq="D", tz="+05:30").as_unit("s"),
        "naive": pd.to_datetime(["2026-01-01", None, "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"]),
        "delta": pd.to_timedelta([1, 2, None, 4, 5, 6], unit="s"),
        "category": pd.Categorical(["b", "a", None, "a", "b", "b"], categories=["b", "a"]),
        "ordered": pd.Categorical([3, 1, 2, 1, None, 3], categories=[3, 2, 1], ordered=True),
        "category_dates": pd.Categorical(pd.to_datetime(["2026-01-01", "2026-01-02"] * 3)),
        "string": pd.array(["x", None, "zé", "", "日本", "a\nb"], dtype="string"),
        "string_python": pd.array(["x", None, "y", "", "z", "w"], dtype=pd.StringDtype("python")),
        "str": pd.array(["x", None, "y", "", "ü", "€"], dtype="str"),
        "Int64": pd.array([1, None, 3, 4, None, 2**62], dtype="Int64"),
        "Int8": pd.array([1, None, 3, 4, None, -128], dtype="Int8"),
        "UInt64": pd.array([1, None, 3, 4, None, 2**64 - 1], dtype="UInt64"),
        "Float64": pd.array([1.5, None, 3, 4, None, 6], dtype="Float64"),
        "Float32": pd.array([1.5, None, 3, 4, None, 6], dtype="Float32"),
        "boolean": pd.array([True, None, False, True, None, False], dtype="boolean"),
    }, index=pd.Index([f"r{i}" for i in range(n)], name="row"))
    frame["object"] = pd.Series(["a", None, np.nan, pd.NA, "b", ""], dtype=object, index=frame.index)
    frame.columns.name = "field"
    sales = pd.DataFrame({
        "region": pd.Series(["EU", "US", "EU", "APAC", "US", "EU"], dtype="str"),
        "month": pd.to_datetime(["2026-01", "2026-01", "2026-02", "2026-02", "2026-02", "2026-01"]),
        "revenue": [10.0, 20.5, 30.25, 5.0, 7.5, 1.0],
        "units": np.array([1, 2, 3, 4, 5, 6], dtype="int64"),
    })
    grouped = sales.groupby(["region", "month"]).agg({"revenue": ["sum", "mean"], "units": "max"})
    return {
        "frame": frame,
        "grouped": grouped,  # a MultiIndex on rows (two keys) and on columns
        "ranged": pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=pd.RangeIndex(10, 40, 10, name="step")),
        "empty": pd.DataFrame({"a": pd.Series([], dtype="Int64"), "b": pd.Series([], dtype="str")}),
        "no_columns": pd.DataFrame(index=pd.RangeIndex(3)),
        "series": pd.Series(pd.array([1, None, 3], dtype="Int64"), name="revenue",
                            index=pd.date_range("2026-01-01", periods=3, freq="D", name="day")),
        "tuple_named": grouped[("revenue", "sum")],
        "unnamed": pd.Series([0.5, 1.5]),
        "index": pd.Index(["a", None, "c"], name="letters"),
        "multi_index": grouped.index,
        "timestamp": pd.Timestamp("2026-03-29 01:30:00.123456789", tz="Europe/Paris"),
        "naive_timestamp": pd.Timestamp("2026-03-29 01:30").as_unit("s"),
        "timedelta": pd.Timedelta("1 days 00:00:01.5"),
        "matrix": np.arange(24, dtype="float64").reshape(2, 3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype="int32").reshape(2, 3)),
        "zero_d": np.array(7.25),
        "empty_array": np.zeros((0, 3), dtype="int16"),
        "bools": np.array([[True, False], [False, True]]),
        "complex": np.array([1 + 2j, np.nan], dtype="complex128"),
        "half": np.array([0.5, 1.5], dtype="float16"),
        "dates": np.array(["2026-01-01", "NaT"], dtype="datetime64[D]"),
        "stamps": np.array(["2026-01-01T10:00:00.123456789"], dtype="datetime64[ns]"),
        "deltas": np.array([1, -2, "NaT"], dtype="timedelta64[ms]"),
        "texts": np.array([["a", "bé"], ["日本", ""]]),
        "bytes": np.array([b"a", b"bc"]),
        "variable_texts": np.array(["x", "yz", ""], dtype=np.dtypes.StringDType()),
        "float_scalar": np.float64(1.25),
        "int_scalar": np.int16(-3),
        "bool_scalar": np.bool_(True),
        "date_scalar": np.datetime64("2026-01-01T10:00", "m"),
        "json": {"a": [1, 2.5, None, True, "x", {"b": []}], "big": 2**100, "nan": float("nan"), "é": "ü"},
        "json_list": [1, "two", [3.0]],
        "json_str": "hello",
        "json_int": 42,
        "json_none": None,
    }


def assert_same(expected, got, name: str = "value") -> None:
    """`got` is `expected` exactly, as `codeact_kernel.data` promises: values, dtypes, names,
    index and column types, missing values of each kind, and the Python type."""
    import json

    import numpy as np
    import pandas as pd
    import pandas.testing as pdt

    assert type(got) is type(expected), (name, type(expected), type(got))
    if isinstance(expected, pd.DataFrame):
        pdt.assert_frame_equal(expected, got, check_exact=True, check_index_type=True, check_column_type=True,
                               check_names=True, check_freq=True, check_flags=True, obj=name)
        assert list(expected.dtypes) == list(got.dtypes), name
        for label in expected.columns[(expected.dtypes == object).to_numpy()]:
            _same_objects(expected[label], got[label], f"{name}[{label!r}]")
        _same_index(expected.index, got.index, f"{name}.index")
        _same_index(expected.columns, got.columns, f"{name}.columns")
    elif isinstance(expected, pd.Series):
        pdt.assert_series_equal(expected, got, check_exact=True, check_index_type=True, check_names=True,
                                check_freq=True, obj=name)
        assert expected.dtype == got.dtype and expected.name == got.name, name
        _same_index(expected.index, got.index, f"{name}.index")
    elif isinstance(expected, pd.Index):
        _same_index(expected, got, name)
    elif isinstance(expected, (pd.Timestamp, pd.Timedelta)):
        assert expected == got and expected.unit == got.unit, (name, expected, got)
        assert str(getattr(expected, "tz", None)) == str(getattr(got, "tz", None)), name
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert expected.dtype == got.dtype and expected.shape == got.shape, (name, expected.dtype, got.dtype)
        np.testing.assert_array_equal(expected, got, strict=True)
        if isinstance(got, np.ndarray):
            assert got.flags.writeable, name  # its own memory, not a view of the blob
    else:  # JSON: its text says everything (1 from 1.0, True from 1, NaN, key order)
        assert json.dumps(expected) == json.dumps(got), name


def _same_index(expected, got, name: str) -> None:
    import pandas as pd
    import pandas.testing as pdt

    assert type(expected) is type(got), (name, type(expected), type(got))
    pdt.assert_index_equal(expected, got, exact=True, check_exact=True, check_names=True, obj=name)
    assert list(expected.names) == list(got.names), name
    if isinstance(expected, pd.MultiIndex):
        for at, (left, right) in enumerate(zip(expected.levels, got.levels)):
            pdt.assert_index_equal(left, right, exact=True, obj=f"{name} level {at}")
    elif isinstance(expected, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        assert expected.freq == got.freq, name
    elif expected.dtype == object:
        _same_objects(expected, got, name)


def _same_objects(expected, got, name: str) -> None:
    """An object column's missing values stay the ones they were: None, NaN or pd.NA."""
    import pandas as pd

    for at, (left, right) in enumerate(zip(expected, got)):
        if left is None or left is pd.NA:
            assert right is left, (name, at, right)
        elif isinstance(left, float):
            assert isinstance(right, float) and right != right, (name, at, right)
        else:
            assert type(left) is type(right) and left == right, (name, at, right)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """A live server on 127.0.0.1; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def scripted_openai():
    """A scripted OpenAI-compatible server on 127.0.0.1 (codeact_kernel.testing.ScriptedOpenAI), stopped after the test."""
    from codeact_kernel.testing import ScriptedOpenAI

    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def openai_server():
    """One scripted server shared by a test module's kernel."""
    from codeact_kernel.testing import ScriptedOpenAI

    with ScriptedOpenAI() as server:
        yield server


TEST_API_KEY = "sk-test-4f1c9e-never-print-me"


def kernel_env(server, **overrides: str) -> dict:
    """The environment a test kernel starts in: the scripted server, a test key, no inherited config."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEACT_", "OPENAI_"))}
    for machine in (*CACHE_SETTINGS, "CODEACT_PROBE_TIMEOUT"):  # facts of this machine, not settings
        if machine in os.environ:
            env[machine] = os.environ[machine]
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, CODEACT_MODEL="scripted-model")
    env.update(CODEACT_MCP_CONFIG="none")  # no MCP servers from this machine's Jupyter config path
    env.update(overrides)
    return env


@pytest.fixture
def start_kernel():
    """Start CodeAct kernels (`start_kernel(env, widgets=True)`); all are shut down after the test."""
    from codeact_kernel.testing import Frontend

    started: list[Frontend] = []

    def start(env: dict, *, widgets: bool = True) -> Frontend:
        frontend = Frontend(env, widgets=widgets, slowdown=SLOWDOWN)
        started.append(frontend)
        return frontend

    yield start
    for frontend in started:
        frontend.close()
