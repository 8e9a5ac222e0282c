"""The worker process: killed at the deadline or on interrupt and replaced, and told nothing secret.

What a program sees through a worker is the contract (test_contract.py runs on
`wasmtime-worker` and on Hyperlight, which always runs in one); here is what only the
process boundary gives.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from codeact_kernel.sandbox.base import Limits
from codeact_kernel.sandbox.worker import WorkerSandbox

pytestmark = pytest.mark.parametrize("backend", ["wasmtime-worker", "hyperlight"], indirect=True)


def _workers() -> list[int]:
    """Pids of this process's worker children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"codeact_kernel.sandbox.worker" in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture
def worker(backend):
    box = WorkerSandbox(backend.removesuffix("-worker"))
    yield box
    box.close()


def test_the_worker_inherits_no_secret(backend, tools, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-in-the-worker")
    before = set(_workers())
    box = WorkerSandbox(backend.removesuffix("-worker"))
    try:
        [pid] = set(_workers()) - before
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"sk-test-never-in-the-worker" not in environ and b"OPENAI" not in environ
        assert box.run("print(1)", tools).stdout == "1\n"
    finally:
        box.close()


def test_a_runaway_is_killed_at_the_deadline_and_the_worker_replaced(worker, tools):
    assert worker.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"
    before = set(_workers())
    start = time.monotonic()
    result = worker.run("while True:\n    pass", tools, limits=Limits(timeout=0.5))
    assert time.monotonic() - start < 0.5 + 1.0
    assert result.error.type == "TimeoutError"
    assert worker.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"
    assert before - set(_workers()), "the stopped worker is gone (and another ran the last program)"


def test_an_interrupt_kills_the_worker_and_the_next_run_is_correct(worker, tools):
    started = []

    def interrupt_once_started(_stream, _text):
        started.append(time.monotonic())
        threading.Timer(0.2, worker.cancel).start()

    result = worker.run("print('started', flush=True)\nwhile True:\n    pass", tools,
                        on_output=interrupt_once_started)
    assert time.monotonic() - started[0] < 0.2 + 1.0
    assert result.error.type == "KeyboardInterrupt" and result.stdout == "started\n"
    assert worker.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"


def test_a_worker_that_dies_mid_run_is_reported_and_replaced(worker, tools):
    def kill_the_worker() -> str:
        for pid in _workers():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        return "gone"

    tools["kill_the_worker"] = kill_the_worker
    result = worker.run("print('before', flush=True)\ncall_tool('kill_the_worker')\nprint('after')", tools)
    assert result.stdout == "before\n"
    assert result.error.type == "SandboxError" and "killed by SIGKILL" in result.error.message
    assert worker.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"


def test_tools_run_in_the_kernel(worker, tools):
    """The worker is never sent a tool: calls come back to this process, which runs them."""
    seen = []
    tools["where"] = lambda: seen.append(os.getpid()) or os.getpid()
    result = worker.run("print(call_tool('where'))", tools)
    assert result.stdout == f"{os.getpid()}\n" and seen == [os.getpid()]
