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
        "orders program leaving no variables, wasmtime",
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
    assert re.search(r"carrying its 8 variables costs -?\d+\.\d{3} ms",
                     rows["orders program leaving no variables, wasmtime"][1])
    assert all(ms > 0 for ms, _ in rows.values()), out


def test_the_backends_benchmark_prints_each_backend_beside_wasmtime():
    out = subprocess.run([sys.executable, "-m", "codeact_kernel.bench", "backends", "--runs", "2"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    rows = re.findall(r"^  (wasmtime.*?|hyperlight.*?) {2,}([\d.]+) ms +([\d.]+)x +([\d.]+) ms +([\d.]+)x +"
                      r"([\d.]+) us +([\d.]+)x$", out, re.M)
    assert [r[0] for r in rows][:2] == ["wasmtime (in the kernel's process)", "wasmtime in a worker process"], out
    assert rows[0][2] == rows[0][4] == rows[0][6] == "1.00"  # the reference, against itself
    assert all(float(value) > 0 for row in rows for value in row[1:]), out


def test_the_wiring_benchmark_measures_each_wiring_on_each_task(tmp_path):
    """Offline the oracle makes turns and tokens exact: they are facts of the wiring, asserted."""
    from codeact_kernel.bench import wiring

    results = wiring.run(runs=1)
    assert {task: {w: f.turns for w, f in per.items()} for task, per in results.items()} == {
        "orders": {"tool calling": 37, "execute_code": 2, "this kernel": 1},
        "shipping": {"tool calling": 17, "execute_code": 2, "this kernel": 1},
        "restock": {"tool calling": 13, "execute_code": 2, "this kernel": 1},
        "payroll": {"tool calling": 10, "execute_code": 2, "this kernel": 1},
        "revenue": {"tool calling": 2, "execute_code": 2, "this kernel": 1},  # data: pandas, a chart
    }
    for per in results.values():
        assert all(f.right for f in per.values()), per
        assert len({f.tool_calls for f in per.values()}) == 1, "every wiring makes the same tool calls"
        assert per["this kernel"].tokens < per["execute_code"].tokens < per["tool calling"].tokens
    text = wiring.table(results)
    assert "| orders | this kernel | 1 |" in text and "| total | tool calling | 79 |" in text
    wiring.plot(results, tmp_path / "wiring.png")
    assert (tmp_path / "wiring.png").read_bytes()[:4] == b"\x89PNG"
    assert wiring.from_json(wiring.to_json(results)) == results


def test_a_wrong_answer_is_marked_wrong():
    from dataclasses import replace

    from codeact_kernel.bench import tasks, wiring

    wrong = replace(tasks.SHIPPING, answer="total 999.99")
    assert not any(f.right for f in wiring.run([wrong], runs=1)["shipping"].values())


def test_the_growth_benchmark_stays_flat_and_keeps_its_prefix():
    out = subprocess.run([sys.executable, "-m", "codeact_kernel.bench", "growth"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    ratio = float(re.search(r"cell 40 against cell 2: ([\d.]+)x within the budget", out)[1])
    peer = float(re.search(r"([\d.]+)x with all history", out)[1])
    assert ratio < peer, out
    assert "byte for byte: yes" in out and "kept in its request" in out, out


def test_the_science_benchmark_prints_each_figure_beside_its_peer():
    from codeact_kernel.sandbox.science.artifacts import available

    if available() is not None:
        import pytest

        pytest.skip(available())
    out = subprocess.run([sys.executable, "-m", "codeact_kernel.bench", "science", "--runs", "2"],
                         capture_output=True, text=True, timeout=900, check=True).stdout
    rows = {m[1]: (float(m[2]), m[4]) for m in re.finditer(r"^ +(\S.*?) {2,}([\d.]+) (ms|MB) +(.*)$", out, re.M)}
    assert re.search(r"\+[\d.]+ ms over the stdlib program", rows["pandas program, scientific guest"][1]), out
    assert re.search(r"[\d.]+x native pandas", rows["groupby-sum, 1,000,000 rows, inside"][1]), out
    assert re.search(r"[\d.]+x the standard guest's", rows["call_tool round trip, scientific guest"][1]), out
    assert "resident memory with a prepared scientific instance, MB" in rows
    assert all(value > 0 for value, _ in rows.values()), out
