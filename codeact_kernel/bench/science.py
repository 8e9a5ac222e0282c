"""`python -m codeact_kernel.bench science`: the scientific guest beside the standard one and native pandas.

Every figure is a median over repeated runs measured in this one process, beside its peer
(the standard guest for the same program, native pandas for the same groupby), so the ratios
hold on a busy machine where absolute times do not. As in the sandbox benchmark, each timed
run starts once its instance is ready, as in a kernel, where the next instance is made while
the user reads the answer; making one is a figure of its own.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from .sandbox import _median, _per_call_us

TARGETS = {"pandas_extra_ms": 50.0, "groupby_ratio": 2.0}

STDLIB = "import json, statistics\nrows = [{'v': i} for i in range(100)]\nprint(json.dumps(statistics.mean(r['v'] for r in rows)))"
PANDAS = "import pandas as pd\nrows = [{'v': i} for i in range(100)]\nprint(pd.DataFrame(rows).v.mean())"
FIGURE = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('one figure')"
ROWS = 1_000_000
GROUPBY_SETUP = f"""
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
df = pd.DataFrame({{"key": rng.integers(0, 1000, {ROWS}), "value": rng.random({ROWS})}})
"""
GROUPBY = "df.groupby('key')['value'].sum()"


def _groupby_timed(repeats: int) -> str:
    """The groupby program: the frame made, then the groupby timed inside, its median printed."""
    return GROUPBY_SETUP + (
        "import time\ntimes = []\n"
        f"for _ in range({repeats}):\n"
        "    start = time.perf_counter()\n"
        f"    {GROUPBY}\n"
        "    times.append(time.perf_counter() - start)\n"
        "times.sort()\nprint(times[len(times) // 2])\n"
    )


_COLD = """
import time
t0 = time.perf_counter()
from codeact_kernel.sandbox.{module} import {cls}
box = {cls}()
result = box.run({program!r}, {{}})
assert result.ok, result.error
print(f"{{(time.perf_counter() - t0) * 1000:.3f}}")
"""

_RSS = """
import gc
def rss():
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
import wasmtime
from codeact_kernel.sandbox.wasmtime_backend import WasmtimeSandbox
from codeact_kernel.sandbox.science import ScienceSandbox
base = rss()
standard = WasmtimeSandbox()
standard.prepare()
with_standard = rss()
science = ScienceSandbox()
science.prepare()
print(base, with_standard, rss())
"""


def _spawned(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _time_image(box) -> float:  # type: ignore[no-untyped-def]
    """Seconds to make an image (import numpy, pandas, matplotlib in a fresh instance), which a
    process does once (or never, when the cache has one)."""
    from ..sandbox.base import Grants
    from ..sandbox.science.backend import _Guest

    runtime = box._runtime
    kept = dict(runtime._images)
    saved = os.environ.get("CODEACT_CACHE_DIR")
    with tempfile.TemporaryDirectory() as scratch_cache:
        os.environ["CODEACT_CACHE_DIR"] = scratch_cache  # no image on disk either
        runtime._images.clear()
        try:
            start = time.perf_counter()
            _Guest(runtime, Grants(), 512, lambda: False).discard()
            return time.perf_counter() - start
        finally:
            runtime._images.clear()
            runtime._images.update(kept)
            if saved is None:
                os.environ.pop("CODEACT_CACHE_DIR", None)
            else:
                os.environ["CODEACT_CACHE_DIR"] = saved


def bench_science(runs: int, compile_too: bool = False) -> None:
    import pandas  # the native peer: in the bench extra

    from ..sandbox.science import ScienceSandbox
    from ..sandbox.science.artifacts import find
    from ..sandbox.wasmtime_backend import WasmtimeSandbox

    rows: list[tuple[str, float, str]] = []  # (what, milliseconds, note); memory rows say MB in their label
    if compile_too:  # minutes: the once-per-machine compile, into a cache of its own
        import wasmtime

        from ..sandbox import guest_build

        with tempfile.TemporaryDirectory() as cache:
            saved = os.environ.get("CODEACT_CACHE_DIR")
            os.environ["CODEACT_CACHE_DIR"] = cache
            try:
                config = guest_build.engine_config()
                config.epoch_interruption = True
                start = time.perf_counter()
                guest_build.compiled(wasmtime.Engine(config), find().snapshot, "science")
                rows.append(("compiling the scientific guest (once per machine)", (time.perf_counter() - start) * 1e3,
                             f"{os.cpu_count()} cores, cached afterwards"))
            finally:
                if saved is None:
                    os.environ.pop("CODEACT_CACHE_DIR", None)
                else:
                    os.environ["CODEACT_CACHE_DIR"] = saved

    science = ScienceSandbox()
    standard = WasmtimeSandbox()
    for box, program in ((science, PANDAS), (science, STDLIB), (standard, STDLIB)):
        check = box.run(program, {})
        assert check.ok, check.error

    def timed(box, program: str, tools: dict | None = None) -> Callable[[], float]:  # type: ignore[no-untyped-def]
        def once() -> float:
            box.prepare()
            start = time.perf_counter()
            result = box.run(program, tools or {})
            elapsed = time.perf_counter() - start
            assert result.ok, result.error
            return elapsed

        return once

    # The three cells interleaved, round by round, so a machine that changes speed changes them alike.
    peers = {"stdlib, standard guest": timed(standard, STDLIB), "stdlib, scientific guest": timed(science, STDLIB),
             "pandas, scientific guest": timed(science, PANDAS)}
    times: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(runs):
        for name, once in peers.items():
            times[name].append(once())
    medians = {name: statistics.median(values) for name, values in times.items()}
    extra = statistics.median(p - s for p, s in zip(times["pandas, scientific guest"], times["stdlib, standard guest"]))
    figure = statistics.median(timed(science, FIGURE)() for _ in range(max(3, runs // 3)))
    making = _median(science.prepare, runs, lambda: science.run("", {}))
    making_standard = _median(standard.prepare, runs, lambda: standard.run("", {}))
    image = _time_image(science)

    def run_median(box):  # type: ignore[no-untyped-def]
        return lambda program, tools: _median(lambda: box.run(program, tools), runs, box.prepare)

    call_science, call_standard = _per_call_us(run_median(science)), _per_call_us(run_median(standard))

    repeats = 7
    inside_runs, native_runs = [], []
    namespace: dict = {}
    exec(GROUPBY_SETUP, namespace)  # noqa: S102 - the same frame natively
    for _ in range(max(5, runs // 4)):  # alternately, each with nothing made in the background
        science.prepare()
        result = science.run(_groupby_timed(repeats), {})
        assert result.ok, result.error
        inside_runs.append(float(result.stdout))
        science.prepare()
        native = []
        for _ in range(repeats):
            start = time.perf_counter()
            eval(GROUPBY, namespace)  # noqa: S307
            native.append(time.perf_counter() - start)
        native_runs.append(statistics.median(native))
    inside, native_time = statistics.median(inside_runs), statistics.median(native_runs)
    groupby_ratio = statistics.median(a / b for a, b in zip(inside_runs, native_runs))

    cold_science, cold_standard = [], []
    for _ in range(max(3, runs // 5)):  # alternately, so both see the same machine
        cold_science.append(float(_spawned(_COLD.format(module="science", cls="ScienceSandbox", program=PANDAS))))
        cold_standard.append(float(_spawned(_COLD.format(module="wasmtime_backend", cls="WasmtimeSandbox",
                                                         program=STDLIB))))
    base, with_standard, with_science = (float(x) for x in _spawned(_RSS).split())

    rows += [
        ("stdlib program, standard guest", medians["stdlib, standard guest"] * 1e3, "peer"),
        ("stdlib program, scientific guest", medians["stdlib, scientific guest"] * 1e3,
         f"{medians['stdlib, scientific guest'] / medians['stdlib, standard guest']:.1f}x the standard guest"),
        ("pandas program, scientific guest", medians["pandas, scientific guest"] * 1e3,
         f"+{extra * 1e3:.1f} ms over the stdlib program in the standard guest "
         f"(target <= {TARGETS['pandas_extra_ms']:g} ms; median of per-round differences)"),
        ("a program that draws one figure (PNG back)", figure * 1e3, "scientific guest"),
        (f"groupby-sum, {ROWS:,} rows, inside", inside * 1e3,
         f"{groupby_ratio:.2f}x native pandas {pandas.__version__} (target <= {TARGETS['groupby_ratio']:g}x; median of "
         "per-round ratios)"),
        (f"groupby-sum, {ROWS:,} rows, native pandas", native_time * 1e3, "peer, this process"),
        ("call_tool round trip, scientific guest", call_science / 1e3,
         f"{call_science:.1f} us, {call_science / call_standard:.2f}x the standard guest's"),
        ("call_tool round trip, standard guest", call_standard / 1e3, f"{call_standard:.1f} us, peer"),
        ("making the next run's instance, scientific guest", making * 1e3,
         f"from the image, on a background thread between runs ({making / making_standard:.0f}x the standard's)"),
        ("making the image: import numpy, pandas, matplotlib", image * 1e3,
         "once per machine (kept in the cache), else once per process"),
        ("cold start, scientific guest: import, load, first pandas run", statistics.median(cold_science),
         f"{statistics.median(cold_science) / statistics.median(cold_standard):.1f}x the standard guest's, "
         "image cached"),
        ("cold start, standard guest: import, load, first run", statistics.median(cold_standard), "peer"),
        ("resident memory with a prepared scientific instance, MB", with_science,
         f"+{with_science - with_standard:.0f} MB over a process with a prepared standard instance "
         f"({with_standard:.0f} MB; {base:.0f} MB before either)"),
    ]
    print(f"science benchmark: medians over {runs} runs, {science.describe()}")
    width = max(len(r[0]) for r in rows)
    for label, value, note in rows:
        unit = "MB" if label.endswith(", MB") else "ms"
        print(f"  {label:<{width}}  {value:9.3f} {unit}   {note}")
    science.close()
    standard.close()
