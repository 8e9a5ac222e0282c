"""Shared fixtures: real sandboxes, real tools, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator

import pytest

from codeact_kernel.sandbox.base import RunResult, Sandbox

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
    for machine in ("CODEACT_CACHE_DIR", "CODEACT_PROBE_TIMEOUT"):  # facts of this machine, not settings
        if machine in os.environ:
            env[machine] = os.environ[machine]
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, CODEACT_MODEL="scripted-model")
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
