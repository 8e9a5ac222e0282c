"""`python -m codeact_kernel.bench sandbox`: the sandbox beside its peers.

Every figure is a median over repeated runs, measured in one process beside its peers
(smolagents' LocalPythonExecutor, the usual in-process CodeAct executor; plain `exec`, the
no-isolation floor; wasmtime-py's own host functions for `call_tool`; importing wasmtime-py
for cold start), so ratios hold on a noisy machine where absolute times do not.

Every sandbox run gets a new guest instance, which the sandbox makes on a background
thread after the previous run, while a kernel's user reads the answer. Back to back, as
here, a run would wait for it; so each timed run starts once its instance is ready, as in
the kernel, and the time to make one is a figure of its own.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from contextlib import redirect_stdout

from . import orders

TARGETS = {"orders_ratio": 0.85, "call_us": 12.0, "empty_ms": 0.25, "cold_ms": 90.0}

_COLD = """
import time
t0 = time.perf_counter()
from codeact_kernel.sandbox.wasmtime_backend import WasmtimeSandbox
box = WasmtimeSandbox()
result = box.run("print(1)", {})
assert result.stdout == "1\\n", result
print(f"{(time.perf_counter() - t0) * 1000:.3f}")
"""

_IMPORT_WASMTIME = """
import time
t0 = time.perf_counter()
import wasmtime.component
print(f"{(time.perf_counter() - t0) * 1000:.3f}")
"""


def _median(fn: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None) -> float:
    """Median seconds of `fn` over `runs` calls, each after an untimed `before()`."""
    before()
    fn()
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


_ECHO = {"echo": lambda x: x}
_N_CALLS = 1000


def _per_call_us(median_seconds: Callable[[str, dict], float]) -> float:
    """µs per `call_tool`: a loop of calls to `echo` less the same loop without them.

    `median_seconds(program, tools)` is the median time of one way of running a program.
    """
    with_calls = median_seconds(f"for i in range({_N_CALLS}):\n    call_tool('echo', x=i)", _ECHO)
    without = median_seconds(f"for i in range({_N_CALLS}):\n    pass", _ECHO)
    return (with_calls - without) / _N_CALLS * 1e6


def _standard_call_us(runs: int) -> float:
    """µs per `call_tool` through wasmtime-py's generic host functions, the path the sandbox avoids.

    The same guest, tool and host logic, each timed run in a fresh instance as the sandbox
    does; only the crossing differs (the sandbox's targets were set against this path).
    """
    import wasmtime
    import wasmtime.component as wc

    from ..sandbox.base import Grants, Limits
    from ..sandbox.host import RunState
    from ..sandbox.wasmtime_backend import _EXECUTOR, _TOOLS, _Runtime

    runtime = _Runtime.get()
    linker = wc.Linker(runtime.engine)
    linker.add_wasip2()
    states: list[RunState] = []

    def dispatch(_store: object, name: str, payload: str) -> wc.Variant:
        ok, data = states[-1].dispatch(name, payload)
        return wc.Variant("ok" if ok else "err", data if isinstance(data, str) else data.decode())

    with linker.root() as root, root.add_instance(_TOOLS) as tools:
        tools.add_func("dispatch", dispatch)

    def run(program: str, tools: dict) -> float:
        store = wasmtime.Store(runtime.engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(2**62)
        instance = linker.instantiate(store, runtime.component)
        func = instance.get_func(store, instance.get_export_index(store, "run", instance.get_export_index(
            store, _EXECUTOR)))
        assert func is not None
        states.append(RunState(tools, Limits(), Grants(), None))
        func(store, "pass")  # one warm-up run, as the sandbox's instances get
        func.post_return(store)
        start = time.perf_counter()
        func(store, program)
        elapsed = time.perf_counter() - start
        func.post_return(store)
        return elapsed

    return _per_call_us(lambda program, tools: statistics.median(run(program, tools) for _ in range(runs)))


def _call_tool_exec(tools: dict) -> Callable[..., object]:
    def call_tool(name: str, *args: object, **kwargs: object) -> object:
        return tools[name](*args, **kwargs)

    return call_tool


def bench_sandbox(runs: int) -> None:
    from smolagents.local_python_executor import LocalPythonExecutor

    from ..sandbox.wasmtime_backend import WasmtimeSandbox

    tools = orders.TOOLS
    box = WasmtimeSandbox()
    check = box.run(orders.PROGRAM, tools)
    assert check.ok and f"sum {orders.EXPECTED_SUM}" in check.stdout, check
    assert len(check.tool_calls) == 36
    # The same program, leaving nothing to carry to the next one: what carrying its variables
    # (a kernel session's cell 2 may use them) costs the run.
    leaving_nothing = orders.PROGRAM + f"del {', '.join(check.carried)}\n"
    assert box.run(leaving_nothing, tools).carried == {}

    smol = LocalPythonExecutor([], additional_functions={"call_tool": _call_tool_exec(tools)})
    smol.send_tools({})
    compiled = compile(orders.PROGRAM, "<orders>", "exec")

    def run_exec() -> None:
        with redirect_stdout(io.StringIO()):
            exec(compiled, {"call_tool": _call_tool_exec(tools)})

    def run_smol() -> None:
        smol.state.clear()
        smol.state["__name__"] = "__main__"
        smol(orders.PROGRAM)

    # Interleave the three executors so a machine that speeds up or slows down mid-run
    # affects them alike.
    sandbox_t: list[float] = []
    smol_t: list[float] = []
    exec_t: list[float] = []
    bare_t: list[float] = []
    peers = ((lambda: box.run(orders.PROGRAM, tools), sandbox_t), (run_smol, smol_t), (run_exec, exec_t),
             (lambda: box.run(leaving_nothing, tools), bare_t))

    def same_past() -> None:
        """What every peer's timed run follows: a sandbox run, then waiting for its next instance.

        So each runs after the same history (the other core just made an instance, this
        one waited), as a kernel's run does, and nothing is made in the background during
        any timed run.
        """
        box.run("", {})
        box.prepare()

    for fn, _ in peers:  # warm up
        same_past()
        fn()
    for _ in range(runs):
        for fn, out in peers:
            same_past()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    sandbox_orders, smol_orders, exec_orders = (statistics.median(t) for t in (sandbox_t, smol_t, exec_t))
    # Each round runs the peers back to back: their ratio is steadier than a ratio of medians
    # when the machine's speed drifts during the benchmark.
    ratio = statistics.median(a / b for a, b in zip(sandbox_t, smol_t))
    floor_ratio = statistics.median(a / b for a, b in zip(sandbox_t, exec_t))
    carry_ms = statistics.median(a - b for a, b in zip(sandbox_t, bare_t)) * 1e3
    empty = _median(lambda: box.run("", {}), runs, box.prepare)
    # Making the next instance: what a run waits for when it follows the last at once.
    making = _median(box.prepare, runs, lambda: box.run("", {}))
    call_us = _per_call_us(lambda program, tools: _median(lambda: box.run(program, tools), runs, box.prepare))
    standard_us = _standard_call_us(runs)

    cold_inside, cold_spawn, runtime_import = [], [], []
    for _ in range(runs):  # alternately, so both see the same machine
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, check=True)
        cold_spawn.append((time.perf_counter() - start) * 1000)
        cold_inside.append(float(proc.stdout.strip()))
        proc = subprocess.run([sys.executable, "-c", _IMPORT_WASMTIME], capture_output=True, text=True,
                              check=True)
        runtime_import.append(float(proc.stdout.strip()))
    cold_ms = statistics.median(cold_inside)
    spawn_ms = statistics.median(cold_spawn)
    import_ms = statistics.median(runtime_import)

    rows = [
        ("orders program (36 call_tool), wasmtime sandbox", sandbox_orders * 1e3,
         f"{ratio:.2f}x smolagents (target <= {TARGETS['orders_ratio']}x), {floor_ratio:.1f}x exec "
         "(medians of per-round ratios)"),
        ("orders program, smolagents LocalPythonExecutor", smol_orders * 1e3, "peer"),
        ("orders program, plain exec (no isolation)", exec_orders * 1e3, "floor"),
        ("orders program leaving no variables, wasmtime", statistics.median(bare_t) * 1e3,
         f"carrying its {len(check.carried)} variables costs {carry_ms:.3f} ms (median of per-round differences)"),
        ("warm empty run", empty * 1e3, f"target <= {TARGETS['empty_ms']} ms"),
        ("making the next run's instance", making * 1e3, "on a background thread, between runs"),
        ("call_tool round trip", call_us / 1e3, f"{call_us:.1f} us (target <= {TARGETS['call_us']:g} us), "
         f"{call_us / standard_us:.2f}x wasmtime-py's own host functions"),
        ("call_tool through wasmtime-py's own host functions", standard_us / 1e3,
         f"{standard_us:.1f} us, peer (the notes measured 49 us)"),
        ("cold start: import, load, instantiate, first run", cold_ms, f"target <= {TARGETS['cold_ms']:g} ms"),
        ("  of which importing wasmtime-py alone", import_ms, "floor for any wasmtime-py host, measured alternately"),
        ("cold start from process spawn", spawn_ms, "includes the interpreter's own start"),
    ]
    print(f"sandbox benchmark: medians over {runs} runs, wasmtime backend ({box.describe()})")
    width = max(len(r[0]) for r in rows)
    for label, ms, note in rows:
        print(f"  {label:<{width}}  {ms:9.3f} ms   {note}")
    box.close()


def bench_backends(runs: int) -> None:
    """Each backend beside wasmtime in this process, measured in the same run: ratios only.

    Run inside CI's emulated VM (where Hyperlight boots, and everything is 10x to 50x
    slower), only the ratios mean anything.
    """
    from ..sandbox.selection import cached_probe
    from ..sandbox.wasmtime_backend import WasmtimeSandbox
    from ..sandbox.worker import WorkerSandbox

    probe = cached_probe()
    makers: dict[str, Callable[[], object]] = {
        "wasmtime (in the kernel's process)": WasmtimeSandbox,
        "wasmtime in a worker process": lambda: WorkerSandbox("wasmtime"),
    }
    if probe.ok:
        makers["hyperlight (in a worker process)"] = lambda: WorkerSandbox("hyperlight")
    figures: dict[str, tuple[float, float, float]] = {}
    for label, make in makers.items():
        box: Any = make()
        check = box.run(orders.PROGRAM, orders.TOOLS)
        assert check.ok and f"sum {orders.EXPECTED_SUM}" in check.stdout, check

        def timed(program: str, tools: dict) -> float:
            return _median(lambda: box.run(program, tools), runs, box.prepare)

        figures[label] = (timed(orders.PROGRAM, orders.TOOLS), timed("", {}), _per_call_us(timed))
        box.close()
    base = next(iter(figures.values()))
    print(f"backends: medians over {runs} runs, each beside wasmtime in this process"
          + ("" if probe.ok else f"; Hyperlight not measured: {probe.reason}"))
    width = max(map(len, figures))
    print(f"  {'backend':<{width}}  {'orders program':>22}  {'empty run':>22}  {'call_tool':>22}")
    for label, values in figures.items():
        cells = [f"{v * 1e3:9.3f} ms {v / b:5.2f}x" for v, b in zip(values[:2], base[:2])]
        cells.append(f"{values[2]:9.1f} us {values[2] / base[2]:5.2f}x")
        print(f"  {label:<{width}}  " + "  ".join(f"{c:>22}" for c in cells))
