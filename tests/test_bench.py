"""The benchmarks run and print each figure beside its peer (figures are read, not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_sandbox_benchmark_prints_every_figure_with_its_peer():
    out = subprocess.run([sys.executable, "-m", "codeact_kernel.bench", "sandbox", "--runs", "2"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    rows = {m[1]: (float(m[2]), m[3]) for m in re.finditer(r"^ +(\S.*?) {2,}([\d.]+) ms +(.*)$", out, re.M)}
    assert set(rows) == {
        "orders program (36 call_tool), wasmtime sandbox",
        "orders program, smolagents LocalPythonExecutor",
        "orders program, plain exec (no isolation)",
        "warm empty run",
        "making the next run's instance",
        "call_tool round trip",
        "call_tool through wasmtime-py's own host functions",
        "cold start: import, load, instantiate, first run",
        "of which importing wasmtime-py alone",
        "cold start from process spawn",
    }, out
    assert re.search(r"\d+\.\d\dx smolagents .*\d+\.\dx exec", rows["orders program (36 call_tool), wasmtime sandbox"][1])
    assert re.search(r"\d+\.\d\dx wasmtime-py's own host functions", rows["call_tool round trip"][1])
    assert all(ms > 0 for ms, _ in rows.values()), out
