"""The direct crossings into and out of wasmtime: correct values, no leaks, errors contained."""

from __future__ import annotations

import resource

from codeact_kernel.sandbox.base import Limits


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_many_crossings_do_not_leak(wasmtime_sandbox, tools):
    program = ("for i in range(50):\n    call_tool('echo', 'x' * 1000, i=i)\n"
               "try:\n    call_tool('fail', 'boom')\nexcept ToolError:\n    pass\nprint('y' * 2000)")
    limits = Limits(tool_calls=100)
    for _ in range(50):  # warm up allocator pools and caches
        wasmtime_sandbox.run(program, tools, limits=limits)
    before = _rss_mb()
    for _ in range(400):  # 20,000 successful and 400 failed tool calls, 400 outputs
        result = wasmtime_sandbox.run(program, tools, limits=limits)
    assert result.ok and len(result.stdout) == 2001
    assert _rss_mb() - before < 20, "memory grows with crossings"


def test_non_ascii_and_large_payloads_cross_intact(wasmtime_sandbox, tools):
    text = "héllo 🌍 " + "∑" * 100_000
    result = wasmtime_sandbox.run(f"r = call_tool('echo', {text!r})\nprint(len(r['args'][0]), r['args'][0][:8])", tools)
    assert result.stdout == f"{len(text)} {text[:8]}\n"


def test_a_lone_surrogate_is_an_error_not_a_crash(sandbox, tools, assert_healthy):
    result = sandbox.run("print(call_tool('echo', '\\ud800'))", tools)
    assert result.error is not None
    assert_healthy()
