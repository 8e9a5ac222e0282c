"""A local GGUF model behind an OpenAI-compatible server: `%model local:PATH.gguf`.

`LocalServer(path).start()` runs llama.cpp's own server (from the `xllamacpp` wheel, the
optional extra `codeact-kernel[local]`) on 127.0.0.1 with an ephemeral port and a random API
key, and blocks until the model is loaded and the server answers. The kernel then talks to it
like any other server: `ModelConfig(model=s.model_name, base_url=s.base_url, api_key=s.api_key)`.

The server runs in a child process of the kernel, not in the kernel itself, because
`xllamacpp.Server(params)` loads the model while holding the GIL (measured: a Python thread
ticking every 50 ms got one tick in during a 0.6 s load). In-process, a large model would
freeze the kernel for the whole load: no progress could be shown, the load could not be
interrupted or bounded by a timeout, and a crash in llama.cpp would take the kernel with it.
As a child, the load is bounded and interruptible, `stop()` gives every byte, thread and the
port back by ending the process, and the child exits by itself when the kernel dies (it
waits on a pipe from the kernel and stops at end of file). It runs in its own session, so a
kernel interrupt (SIGINT to the kernel's process group) does not reach it.
"""

from __future__ import annotations

import atexit
import collections
import importlib.metadata
import importlib.util
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from codeact_kernel.errors import LocalModelError

PREFIX = "local:"
INSTALL_HINT = "pip install 'codeact-kernel[local]'"
GGUF_MAGIC = b"GGUF"
DEFAULT_CONTEXT = 8192  # tokens; 0 would take the model's own, up to 128k and many GB of cache
DEFAULT_START_TIMEOUT = 120.0  # seconds for the child to load the model and answer
STOP_GRACE = 10.0  # seconds for the child to stop cleanly before it is killed
STILL_LOADING_EVERY = 5.0  # seconds between "still loading" reports
LOG_LINES = 40  # llama.cpp log lines kept for error messages and `log()`
_LOAD_ERROR = "error loading model: "  # how llama.cpp's loader states why it failed
_LOG_LEVEL = re.compile(r"^[\d.]+ [EW] ")  # llama.cpp's log lines: "0.00.037.335 E ..."
_ERROR_LINE = re.compile(r"^[\d.]+ E (?:\w{1,4} +)?\w+: (?P<why>.+)$")  # "... E srv  load_model: why"
_MODULE = "xllamacpp"  # the import name; tests change it to see the missing-package error
_CHILD = ("import sys\n"
          "if sys.argv[1] not in sys.path: sys.path.append(sys.argv[1])\n"
          "from codeact_kernel.local_model import _serve\n"
          "sys.exit(_serve())\n")


def parse_local(model: str) -> Path | None:
    """The path in `local:PATH` (with `~` expanded, made absolute); None for any other model name."""
    if not model.startswith(PREFIX):
        return None
    raw = model[len(PREFIX):].strip()
    if not raw:
        raise LocalModelError(
            "`local:` needs the path of a .gguf model file, e.g. `%model local:~/models/model.gguf`."
        )
    return Path(raw).expanduser().absolute()


class LocalServer:
    """llama.cpp serving one GGUF file on 127.0.0.1, in a child process; see the module docstring.

    `on_progress(message)` hears each phase of `start()` (loading N MB, still loading,
    listening, ready), on the calling thread. `n_ctx` is the context in tokens (the model's
    own limit if 0), `max_tokens` caps every reply server-side (None: until the model stops or
    the context is full), `threads` is llama.cpp's CPU threads (None: its default, one per core).
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 on_progress: Callable[[str], None] | None = None,
                 n_ctx: int = DEFAULT_CONTEXT, max_tokens: int | None = None,
                 threads: int | None = None, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        if n_ctx < 0:
            raise ValueError(f"n_ctx must be 0 (the model's own) or more, not {n_ctx}")
        if max_tokens is not None and max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive or None, not {max_tokens}")
        if threads is not None and threads <= 0:
            raise ValueError(f"threads must be positive or None, not {threads}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.path = Path(path).expanduser().absolute()
        self.api_key = secrets.token_urlsafe(32)
        # The server answers to this name (its alias); /v1/models confirms it at start.
        self.model_name = self.path.name.removesuffix(".gguf") or self.path.name
        self.n_ctx = n_ctx
        self.n_ctx_train: int | None = None  # the model's training context, known once loaded
        self.max_tokens = max_tokens
        self.threads = threads
        self.timeout = timeout
        self.load_seconds: float | None = None  # start() to ready, once started
        self.exit_code: int | None = None  # the child's, once stopped: 0 is a clean stop
        self.on_progress = on_progress
        self._address: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._log_lock = threading.Lock()  # the reader appends while start() reads
        self._readers: list[threading.Thread] = []

    # ------------------------------------------------------------------ public

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, e.g. http://127.0.0.1:41234/v1 (only while running)."""
        if self._address is None:
            raise LocalModelError(f"The local model server for {self.path.name} is not running: "
                                  "call start() first.")
        return f"{self._address}/v1"

    @property
    def running(self) -> bool:
        """Started, not stopped, and the child process is still alive."""
        return self._address is not None and self._process is not None and self._process.poll() is None

    def log(self) -> list[str]:
        """The last lines llama.cpp logged (it logs each load and request), for diagnosis."""
        with self._log_lock:
            return list(self._log)

    def start(self) -> None:
        """Load the model and wait until the server answers; raise LocalModelError if it cannot.

        Blocks for at most `timeout` seconds (plus a few to clean up). Calling it again while
        running does nothing. Interrupting it (KeyboardInterrupt) stops the child.
        """
        if self.running:
            return
        if self._process is not None:
            self.stop()  # the child died: clean up before starting a fresh one
        size = _check_model_file(self.path)
        version = _xllamacpp_version()
        started = time.monotonic()
        self._say(f"Loading {self.path.name} ({size / 2**20:,.0f} MB) with llama.cpp (xllamacpp {version})...")
        try:
            self._spawn()
            self._address = self._wait_until_listening(started)
            self._say(f"llama.cpp server listening on {self._address}")
            self._wait_until_ready(started)
        except BaseException:
            self._end(graceful=False)
            raise
        self.load_seconds = time.monotonic() - started
        atexit.register(self.stop)
        trained = f" (model trained on {self.n_ctx_train:,})" if self.n_ctx_train else ""
        self._say(f"Model ready in {self.load_seconds:.1f} s: {self.model_name}, "
                  f"context {self.n_ctx:,} tokens{trained}")

    def stop(self) -> None:
        """End the server and its process (killed after STOP_GRACE s); the port is free after.

        Safe to call at any time, more than once, and from atexit.
        """
        self._end(graceful=True)

    def _end(self, *, graceful: bool) -> None:
        atexit.unregister(self.stop)
        self._address = None
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # the child stops its server at end of file
        except OSError:
            pass  # it is already gone
        if not graceful:
            process.terminate()  # a load that failed or was interrupted: nothing to save
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.exit_code = process.returncode
        for reader in self._readers:
            reader.join(timeout=5)
        self._readers = []
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:  # no key
        state = f"running at {self._address}" if self.running else "stopped"
        return f"LocalServer({str(self.path)!r}, {state})"

    # ------------------------------------------------------------------ starting

    def _say(self, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(message)

    def _spawn(self) -> None:
        options: dict[str, Any] = {}
        if os.name == "posix":
            options["start_new_session"] = True  # a kernel interrupt must not stop the server
        else:
            options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        self._events = queue.Queue()
        with self._log_lock:
            self._log.clear()
        # The child finds codeact_kernel as we did (same cwd and PYTHONPATH), or else where this
        # file is; appended, so that site-packages can never shadow the standard library.
        package_root = str(Path(__file__).resolve().parents[1])
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, package_root],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", **options,
        )
        self._readers = [
            threading.Thread(target=self._read_events, args=(self._process.stdout,),
                             name="codeact-local-model-events", daemon=True),
            threading.Thread(target=self._read_log, args=(self._process.stderr,),
                             name="codeact-local-model-log", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        settings = {
            "path": str(self.path), "api_key": self.api_key, "alias": self.model_name,
            "n_ctx": self.n_ctx, "n_predict": self.max_tokens or -1, "threads": self.threads or -1,
        }
        assert self._process.stdin is not None
        # The key goes through the pipe, not the command line, where `ps` would show it.
        self._process.stdin.write(json.dumps(settings) + "\n")
        self._process.stdin.flush()

    def _read_events(self, stream: Any) -> None:
        for line in stream:
            try:
                self._events.put(("event", json.loads(line)))
            except ValueError:
                self._remember(line)  # stray output: keep it for diagnosis
        self._events.put(("exit", None))

    def _read_log(self, stream: Any) -> None:
        # Drained for the child's whole life: a full pipe would block llama.cpp's logging.
        for line in stream:
            self._remember(line)

    def _remember(self, line: str) -> None:
        with self._log_lock:
            self._log.append(line.rstrip("\n"))

    def _wait_until_listening(self, started: float) -> str:
        deadline = started + self.timeout
        next_report = started + STILL_LOADING_EVERY
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise self._failure(f"it did not finish loading within {self.timeout:g} s "
                                    "(a larger model may need a longer timeout)")
            try:
                kind, event = self._events.get(timeout=min(deadline, next_report) - now)
            except queue.Empty:
                if time.monotonic() >= next_report:
                    self._say(f"Still loading {self.path.name} ({time.monotonic() - started:.0f} s)...")
                    next_report += STILL_LOADING_EVERY
                continue
            if kind == "exit":
                assert self._process is not None
                try:
                    code = self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                raise self._failure(f"its process ended (exit code {code}) before the server started")
            if event.get("event") == "error":
                # llama.cpp's first error (the cause) beats the binding's "Failed to init server".
                errors = [m for line in self.log() if (m := _ERROR_LINE.match(line))]
                why = errors[0]["why"].split(_LOAD_ERROR)[-1] if errors else str(event.get("message"))
                raise self._failure(why)
            if event.get("event") == "listening":
                return str(event["address"]).rstrip("/")

    def _wait_until_ready(self, started: float) -> None:
        """Poll /health, then read the model's name and context from /v1/models (key required)."""
        assert self._address is not None
        deadline = started + self.timeout
        while True:
            try:
                status, _ = _http_get(f"{self._address}/health", None)
            except OSError as exc:
                status, detail = None, str(exc)
            else:
                detail = f"/health answered {status}"
            if status == 200:
                break
            if time.monotonic() >= deadline or not self.running:
                raise self._failure(f"the server did not become ready ({detail})")
            time.sleep(0.1)
        status, body = _http_get(f"{self._address}/v1/models", self.api_key)
        if status != 200:
            raise self._failure(f"/v1/models answered {status}: {body[:200]!r}")
        try:
            model = json.loads(body)["data"][0]
            self.model_name = str(model["id"])
            meta = model.get("meta") or {}
            self.n_ctx = int(meta.get("n_ctx") or self.n_ctx)
            self.n_ctx_train = int(meta["n_ctx_train"]) if meta.get("n_ctx_train") else None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._failure(f"/v1/models sent an unexpected reply ({exc!r})") from exc

    def _failure(self, why: str) -> LocalModelError:
        """The error to raise, with llama.cpp's last warnings and errors (or last lines) attached."""
        time.sleep(0.1)  # let the log reader catch the last lines
        lines = [line for line in self.log() if line.strip()]
        problems = [line for line in lines if _LOG_LEVEL.search(line)]
        tail = list(dict.fromkeys(problems or lines))[-8:]  # the loader repeats itself
        log = "\n--- llama.cpp log (last lines) ---\n" + "\n".join(tail) if tail else ""
        return LocalModelError(f"llama.cpp could not serve {self.path}: {why.rstrip('.')}.{log}")


def _check_model_file(path: Path) -> int:
    """The file's size, after checking it is a readable GGUF file."""
    if not path.exists():
        raise LocalModelError(f"No model file at {path}. `%model local:PATH` needs the path of a "
                              ".gguf file (Hugging Face has GGUF builds of most open models).")
    if not path.is_file():
        raise LocalModelError(f"{path} is a directory, not a model file: give the path of a .gguf file.")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise LocalModelError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from exc
    if magic != GGUF_MAGIC:
        raise LocalModelError(
            f"{path} is not a GGUF model file (it does not start with b'GGUF'). llama.cpp needs "
            "GGUF: download a .gguf build of the model, or convert it with llama.cpp's "
            "convert_hf_to_gguf.py."
        )
    return path.stat().st_size


def _xllamacpp_version() -> str:
    if importlib.util.find_spec(_MODULE) is None:
        raise LocalModelError(f"Local models need the xllamacpp package (llama.cpp's server): {INSTALL_HINT}")
    try:
        return importlib.metadata.version(_MODULE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _http_get(url: str, api_key: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(url, headers=headers)
    # Straight to 127.0.0.1: an http_proxy in the environment must not be asked.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# ---------------------------------------------------------------------- the child process


def _serve() -> int:
    """The child: read settings from stdin, serve, report on stdout, exit at stdin's end."""
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything native code prints goes to the log, not into the events
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send(**event: Any) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    settings = json.loads(sys.stdin.readline())
    try:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = settings["path"]
        params.model_alias = [settings["alias"]]
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the system picks a free port; listening_address tells which
        params.api_keys = [settings["api_key"]]
        params.n_ctx = settings["n_ctx"]
        params.n_predict = settings["n_predict"]
        params.n_parallel = 1  # one kernel, one conversation: one slot's worth of cache
        params.cpuparams.n_threads = settings["threads"]
        params.cpuparams_batch.n_threads = settings["threads"]
        params.ui = False
        send(event="loading")
        server = xllamacpp.Server(params)  # returns once the model is loaded and listening
    except Exception as exc:  # noqa: BLE001 - reported to the kernel, which raises it
        send(event="error", message=f"{type(exc).__name__}: {exc}")
        return 1
    send(event="listening", address=server.listening_address)
    for _ in sys.stdin:  # until the kernel closes the pipe, or dies
        pass
    # Ending the process frees the model, the threads and the port at once. `del server` would
    # be gentler but can hang: xllamacpp returns before llama.cpp's main loop starts, and the
    # loop's start sets `running = true`, undoing a terminate() that came first (seen under load).
    events.close()
    os._exit(0)
