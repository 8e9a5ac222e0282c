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


def test_the_backends_benchmark_prints_each_backend_beside_wasmtime():
    out = subprocess.run([sys.executable, "-m", "codeact_kernel.bench", "backends", "--runs", "2"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    rows = re.findall(r"^  (wasmtime.*?|hyperlight.*?) {2,}([\d.]+) ms +([\d.]+)x +([\d.]+) ms +([\d.]+)x +"
                      r"([\d.]+) us +([\d.]+)x$", out, re.M)
    assert [r[0] for r in rows][:2] == ["wasmtime (in the kernel's process)", "wasmtime in a worker process"], out
    assert rows[0][2] == rows[0][4] == rows[0][6] == "1.00"  # the reference, against itself
    assert all(float(value) > 0 for row in rows for value in row[1:]), out
