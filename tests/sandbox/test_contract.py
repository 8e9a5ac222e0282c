"""What every backend promises, through the public Sandbox interface: each test runs on each backend.

wasmtime in the kernel's process, wasmtime in a worker process, and Hyperlight (in a worker
process; where no VM boots it skips with the probe's reason, and CI runs it in an emulated VM).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from codeact_kernel.sandbox.base import Grants, Limits, calling
from tests.conftest import SLOWDOWN

def test_program_output_and_tool_calls(sandbox, tools):
    seen = []
    result = sandbox.run(
        "w = call_tool('weather', 'Seattle')\nprint(w['city'], w['temperature'])",
        tools, on_output=lambda stream, text: seen.append((stream, text)),
    )
    assert result.ok and result.stdout == "Seattle 21.5\n"
    assert seen == [("stdout", "Seattle 21.5\n")]
    [call] = result.tool_calls
    assert (call.name, call.args, call.kwargs, call.ok) == ("weather", ["Seattle"], {}, True)
    assert call.duration >= 0 and result.duration > 0


def test_output_streams_while_the_program_runs(sandbox, tools):
    stamps = []
    program = "import time\nprint('first', flush=True)\ntime.sleep(0.3)\nprint('second')"
    start = time.monotonic()
    sandbox.run(program, tools, on_output=lambda s, t: stamps.append((t, time.monotonic() - start)))
    assert [t for t, _ in stamps] == ["first\n", "second\n"]
    assert stamps[1][1] - stamps[0][1] >= 0.25


def test_positional_and_keyword_arguments(sandbox, tools):
    result = sandbox.run("print(call_tool('echo', 1, [2], x={'y': None}))", tools)
    assert result.stdout == "{'args': [1, [2]], 'kwargs': {'x': {'y': None}}}\n"


def test_a_tool_may_have_a_parameter_called_name(sandbox, tools):
    tools["greet"] = lambda name, greeting="Hello": f"{greeting}, {name}"
    result = sandbox.run("print(call_tool('greet', name='Bob'), call_tool('greet', 'Ann', greeting='Hi'))", tools)
    assert result.stdout == "Hello, Bob Hi, Ann\n", result.error


def test_values_cross_exactly_both_ways(sandbox, tools):
    """Integers of any size, NaN and infinities arrive as they left, in arguments and in results."""
    tools["big"] = lambda: {"n": 2**100, "inf": float("inf"), "none": None}
    result = sandbox.run(
        "import math\n"
        "print(call_tool('echo', 2**70, -(10**30))['args'] == [2**70, -(10**30)])\n"
        "print(math.isnan(call_tool('echo', float('nan'))['args'][0]))\n"
        "print(call_tool('big') == {'n': 2**100, 'inf': float('inf'), 'none': None})", tools)
    assert result.stdout == "True\nTrue\nTrue\n", result.error


def test_dict_keys_that_json_would_change_are_refused_naming_where(sandbox, tools):
    tools["counts"] = lambda: {"by_id": {1: "a", "1": "b"}}
    result = sandbox.run(
        "try:\n    call_tool('echo', x={'ok': [{2: 'b'}]})\nexcept TypeError as e:\n    print(e)\n"
        "try:\n    call_tool('counts')\nexcept ToolError as e:\n    print(e)", tools)
    lines = result.stdout.splitlines()
    assert lines[0] == ("call_tool('echo') argument x['ok'][0] has the dict key 2 (int); JSON keys are strings, "
                        "so it would arrive changed: use str keys")
    assert lines[1].startswith("counts: TypeError: the result['by_id'] has the dict key 1 (int)")


def test_values_json_cannot_carry(sandbox, tools):
    tools["stamp"] = lambda: {"when": __import__("datetime").date(2026, 11, 21), "tags": {"a"}}
    tools["opaque"] = lambda: object()
    result = sandbox.run(
        "print(call_tool('echo', (1, 2)))\n"
        "print(call_tool('stamp'))\n"
        "try:\n    call_tool('echo', {1, 2})\nexcept TypeError as e:\n    print('TypeError', 'JSON' in str(e))\n"
        "try:\n    call_tool('opaque')\nexcept ToolError as e:\n    print('ToolError', e)\n",
        tools,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "{'args': [[1, 2]], 'kwargs': {}}"
    assert lines[1] == "{'when': '2026-11-21', 'tags': ['a']}"
    assert lines[2] == "TypeError True"
    assert lines[3].startswith("ToolError opaque: TypeError: a value of type object cannot be sent")


def test_a_tool_that_raises_is_catchable_and_named(sandbox, tools, assert_healthy):
    result = sandbox.run(
        "try:\n    call_tool('fail', 'no such city')\nexcept ToolError as e:\n    print('caught:', e)\n"
        "call_tool('fail', 'again')", tools)
    assert result.stdout == "caught: fail: ValueError: no such city\n"
    assert result.error.type == "ToolError"
    assert "fail: ValueError: again" in result.error.message
    assert 'File "<program>", line 5' in result.error.traceback
    assert [c.ok for c in result.tool_calls] == [False, False]
    assert_healthy()


def test_unknown_tool_lists_the_available_ones(sandbox, tools):
    result = sandbox.run("call_tool('wether', 'Paris')", tools)
    assert result.error.type == "ToolError"
    assert "unknown tool 'wether'; available tools: add, echo, fail, weather" in result.error.message


def test_wrong_arguments_reach_the_program_as_a_tool_error(sandbox, tools, assert_healthy):
    result = sandbox.run("call_tool('weather', 'Paris', 'F', 'extra')", tools)
    assert result.error.type == "ToolError"
    assert "weather: TypeError" in result.error.message and "positional" in result.error.message
    result = sandbox.run("call_tool(42)", tools)
    assert result.error.type == "TypeError"
    assert_healthy()


def test_uncaught_exception_has_the_guest_traceback(sandbox, tools):
    result = sandbox.run("x = 1\n\ndef f():\n    return 1 / 0\n\nf()", tools)
    assert not result.ok
    assert (result.error.type, result.error.message) == ("ZeroDivisionError", "division by zero")
    assert 'File "<program>", line 6, in <module>' in result.error.traceback
    assert 'File "<program>", line 4, in f' in result.error.traceback
    assert "executor" not in result.error.traceback


def test_result_value_comes_back(sandbox, tools):
    result = sandbox.run("set_result({'total': 334.15, 'rows': [1, 2]})", tools)
    assert result.has_value and result.value == {"total": 334.15, "rows": [1, 2]}
    assert not sandbox.run("pass", tools).has_value


@pytest.mark.parametrize("tamper", [
    "import json\njson.dumps = None",
    "import builtins\nbuiltins.len = None",
    "import sys\nsys.modules['json'] = None",
])
def test_each_run_starts_fresh(sandbox, tools, tamper):
    sandbox.run(tamper + "\nleaked = 1", tools)
    result = sandbox.run("import json\nprint(json.dumps([len('ab')]), 'leaked' in globals())", tools)
    assert result.stdout == "[2] False\n"


@pytest.mark.parametrize("plant", [
    # a spy on call_tool, through the executor's globals
    "g = call_tool.__globals__\nsend = g['_host']\n"
    "g['_host'] = lambda name, payload: (g.setdefault('SEEN', []).append(payload), send(name, payload))[1]",
    # a module of its own in sys.modules, where no watcher of the executor would look
    "import sys\nsys.modules['planted'] = type(sys)('planted')\nsys.modules['planted'].SEEN = ['planted']",
])
def test_a_program_cannot_watch_the_next_one(sandbox, tools, plant):
    """Every run gets an instance no program has run in: nothing planted survives."""
    assert sandbox.run(plant, tools).ok
    assert sandbox.run("call_tool('echo', secret='s3cret')", tools).ok
    result = sandbox.run("import sys\nprint(call_tool.__globals__.get('SEEN'), 'planted' in sys.modules)", tools)
    assert result.stdout == "None False\n"


def test_a_closed_sandbox_refuses_to_run(new_sandbox, tools):
    from codeact_kernel.errors import SandboxError

    box = new_sandbox()
    assert box.run("print(call_tool('add', 1, 2))", tools).stdout == "3\n"
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.run("pass", tools)


# --- hostile programs: each contained, the host alive, the next run correct -----------

def test_host_files_are_invisible(sandbox, tools, assert_healthy):
    for path in ("/etc/passwd", os.path.expanduser("~/.bashrc"), str(Path(__file__))):
        result = sandbox.run(f"print(open({path!r}).read())", tools)
        assert result.error.type == "FileNotFoundError", path
    result = sandbox.run("import os\nprint(os.listdir('/'))", tools)
    assert result.error is not None
    assert_healthy()


def test_no_host_environment(sandbox, tools, monkeypatch, assert_healthy):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    result = sandbox.run("import os\nprint(dict(os.environ))\nprint(os.getenv('OPENAI_API_KEY'))", tools)
    assert result.stdout == "{}\nNone\n"
    assert_healthy()


def test_no_sockets_no_processes_no_ctypes(sandbox, tools, http_server, assert_healthy):
    port = int(http_server.rsplit(":", 1)[1])
    for program in (
        f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))",
        f"import urllib.request\nurllib.request.urlopen('{http_server}/x')",
        "import subprocess\nsubprocess.run(['id'])",
        "import os\nos.system('id')",
        "import ctypes\nctypes.CDLL(None)",
    ):
        result = sandbox.run(program, tools)
        assert result.error is not None, program
        assert result.error.type in ("ModuleNotFoundError", "AttributeError", "OSError"), result.error
    assert_healthy()


def test_infinite_loop_is_stopped_at_the_deadline(sandbox, tools, assert_healthy):
    start = time.monotonic()
    result = sandbox.run("while True:\n    pass", tools, limits=Limits(timeout=0.5))
    elapsed = time.monotonic() - start
    assert result.error.type == "TimeoutError"
    assert elapsed < 0.5 + 1.0
    assert_healthy()


def test_a_tool_knows_the_line_that_called_it(sandbox, tools):
    """What a person asked about a call is shown: where in the program it was made."""
    lines = []

    def where() -> None:
        lines.append(calling().line)

    where.wants_line = True  # the host asks the guest for the line of these calls only
    tools["where"] = where
    tools["plain"] = lambda: lines.append(calling().line)
    program = ("def helper():\n    call_tool('where')\n\ncall_tool('where')\nhelper()\nfor _ in range(2):\n"
               "    call_tool('where')\ncall_tool('plain')")
    result = sandbox.run(program, tools)
    assert result.ok, result.error
    assert lines == [4, 2, 7, 7, None]
    assert len(result.tool_calls) == 5  # asking for the line is not a call
    assert sandbox.run("call_tool('where', __line__=1)", tools).error.type == "TypeError"  # reserved


def test_time_a_person_holds_a_call_does_not_count_against_the_timeout(sandbox, tools, assert_healthy):
    def ask_a_person() -> str:
        with calling().hold():
            time.sleep(2.5)  # a person deciding, for longer than the timeout and its backstop
        return "allowed"

    tools["ask"] = ask_a_person
    result = sandbox.run("print('before')\nprint(call_tool('ask'))\nx = 0\nfor i in range(10_000):\n    x += i\n"
                         "print('after', x)", tools, limits=Limits(timeout=1.0 * SLOWDOWN))
    assert result.ok, result.error
    assert result.stdout == "before\nallowed\nafter 49995000\n"
    assert result.held >= 2.5 and result.duration >= result.held
    # The program's own time still counts: a loop after a hold is stopped at the deadline.
    result = sandbox.run("call_tool('ask')\nwhile True:\n    pass", tools, limits=Limits(timeout=1.0))
    assert result.error.type == "TimeoutError"
    assert result.duration < result.held + 1.0 + 1.5
    assert_healthy()


def test_allocation_bomb_is_a_memory_error(sandbox, tools, assert_healthy):
    result = sandbox.run("x = bytearray(1024**3)", tools, limits=Limits(memory_mb=128))
    assert result.error.type == "MemoryError"
    result = sandbox.run("x = []\nwhile True:\n    x.append('y' * 10**6)", tools, limits=Limits(memory_mb=128))
    assert result.error.type == "MemoryError"
    assert_healthy()


def test_deep_recursion_is_a_recursion_error(sandbox, tools, assert_healthy):
    result = sandbox.run("def f(n):\n    return f(n + 1)\nf(0)", tools)
    assert result.error.type == "RecursionError"
    assert "Previous line repeated" in result.error.traceback  # counted, as CPython does
    assert result.error.traceback.count('line 2, in f') == 3
    assert_healthy()


def test_output_flood_is_truncated_with_a_notice(sandbox, tools, assert_healthy):
    result = sandbox.run("import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000)", tools,
                         limits=Limits(output_bytes=100_000))
    assert result.ok
    assert len(result.stdout) == 100_000
    assert "output truncated" in result.stderr
    both = sandbox.run("import sys\nfor _ in range(50):\n    print('x' * 10_000)\n"
                       "    print('y' * 10_000, file=sys.stderr, flush=True)", tools,
                       limits=Limits(output_bytes=100_000))
    assert both.stderr.count("output truncated") == 1  # one notice, though both streams hit the cap
    printed_stderr = both.stderr[: both.stderr.index("\n[output truncated")]
    assert len(both.stdout) + len(printed_stderr) == 100_000
    assert_healthy()


def test_tool_call_cap(sandbox, tools, assert_healthy):
    result = sandbox.run("for i in range(10_000):\n    call_tool('add', i, 1)", tools,
                         limits=Limits(tool_calls=1_000))
    assert result.error.type == "ToolError"
    assert "tool call limit reached" in result.error.message
    assert sum(c.ok for c in result.tool_calls) == 1_000
    result = sandbox.run("print(sum(call_tool('add', i, 1) for i in range(2_500)))", tools,
                         limits=Limits(tool_calls=2_500, timeout=300))  # a count, not a speed: emulated VMs are slow
    assert result.stdout == "3126250\n"
    assert_healthy()


def test_interrupt_from_another_thread(sandbox, tools, assert_healthy):
    import threading

    timer = threading.Timer(0.3, sandbox.cancel)
    timer.start()
    start = time.monotonic()
    result = sandbox.run("while True:\n    pass", tools)
    assert result.error.type == "KeyboardInterrupt"
    assert time.monotonic() - start < 1.3
    assert_healthy()


def test_stopping_one_sandbox_leaves_another_running(sandbox, new_sandbox, tools):
    """Sandboxes share a process (wasmtime's epoch is engine-wide): stopping one stops only it."""
    import threading

    other = new_sandbox()
    results = {}
    busy = threading.Thread(target=lambda: results.setdefault("other", other.run(
        "import time\nend = time.monotonic() + 1.5\nn = 0\nwhile time.monotonic() < end:\n    n += 1\n"
        "print(n > 0)", tools)))
    busy.start()
    time.sleep(0.2)
    stopped = sandbox.run("while True:\n    pass", tools, limits=Limits(timeout=0.3))
    threading.Timer(0.2, sandbox.cancel).start()
    interrupted = sandbox.run("while True:\n    pass", tools)
    busy.join()
    assert stopped.error.type == "TimeoutError" and interrupted.error.type == "KeyboardInterrupt"
    assert results["other"].error is None and results["other"].stdout == "True\n"


# --- files --------------------------------------------------------------------------

def test_input_files_are_read_only(sandbox, tools, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    grants = Grants(input_dir=tmp_path)
    result = sandbox.run("print(open('/input/data.csv').read().splitlines())", tools, grants=grants)
    assert result.stdout == "['a,b', '1,2']\n"
    result = sandbox.run("open('/input/new.txt', 'w').write('x')", tools, grants=grants)
    assert result.error.type in ("PermissionError", "OSError")
    assert not (tmp_path / "new.txt").exists()


def test_output_files_come_back_with_caps(sandbox, tools):
    grants = Grants(output=True)
    program = (
        "import os\nos.makedirs('/output', exist_ok=True)\n"
        "open('/output/table.csv', 'w').write('x,y\\n1,2\\n')\n"
        "open('/output/a.svg', 'w').write('<svg/>')\n"
        "open('/output/big.bin', 'wb').write(b'0' * 2000)\n"
    )
    report = "open('/output/report.txt', 'w').write('line\\n' * 20_000)"  # many crossings on Hyperlight
    result = sandbox.run(program + report, tools, grants=grants)
    assert result.ok, result.error
    assert set(result.output_files) == {"table.csv", "a.svg", "big.bin", "report.txt"}
    assert result.output_files["report.txt"] == b"line\n" * 20_000
    result = sandbox.run(program, tools, grants=grants, limits=Limits(output_file_bytes=1000))
    assert result.ok, result.error
    assert result.output_files == {"table.csv": b"x,y\n1,2\n", "a.svg": b"<svg/>"}
    assert any("big.bin" in n and "limit" in n for n in result.notices)
    result = sandbox.run("for i in range(5):\n    open(f'/output/{i}.txt', 'w').write('x')", tools,
                         grants=grants, limits=Limits(output_files=3))
    assert len(result.output_files) == 3
    assert sum("more than 3 files" in n for n in result.notices) == 2


def test_output_without_a_grant_is_unavailable(sandbox, tools):
    result = sandbox.run("open('/output/x.txt', 'w').write('x')", tools)
    assert result.error.type == "FileNotFoundError"
    assert result.output_files == {}


@pytest.mark.parametrize("limit", [200_000])
def test_output_writing_past_the_cap_is_stopped(sandbox, tools, limit):
    program = "f = open('/output/huge.bin', 'wb')\nwhile True:\n    f.write(b'0' * 1_000_000)"
    result = sandbox.run(program, tools, grants=Grants(output=True),
                         limits=Limits(output_files=1, output_file_bytes=limit, timeout=10))
    assert result.error is not None and result.error.type in ("OSError", "TimeoutError")
    assert result.error.type == "OSError"
    assert "huge.bin" not in result.output_files


# --- data in and out: inputs, carried values ----------------------------------------------

def test_inputs_are_bound_before_the_program_runs(sandbox, tools):
    from codeact_kernel import data

    inputs = {"n": data.encode(41), "config": data.encode({"regions": ["EU", "US"], "rate": 0.5, "x": None}),
              "rows": data.encode([[1, "a"], [2, "b"]])}
    result = sandbox.run("print(n + 1, config['regions'][1], config['rate'], rows[1][1], config['x'])", tools,
                         inputs=inputs)
    assert result.ok, result.error
    assert result.stdout == "42 US 0.5 b None\n"


def test_each_run_gets_its_own_copy_of_an_input(sandbox, tools):
    from codeact_kernel import data

    blob = data.encode({"items": [1, 2]})
    first = sandbox.run("config['items'].append(3)\nconfig['new'] = True\nprint(config)", tools,
                        inputs={"config": blob})
    assert first.stdout == "{'items': [1, 2, 3], 'new': True}\n"
    second = sandbox.run("print(config)", tools, inputs={"config": blob})
    assert second.stdout == "{'items': [1, 2]}\n"
    assert data.decode(first.carried["config"]) == {"items": [1, 2, 3], "new": True}  # changed: carried back
    assert data.decode(blob) == {"items": [1, 2]}


def test_a_large_input_crosses_whole(sandbox, tools):
    """Hyperlight carries each crossing in pieces: an input of 300 KB arrives whole, and comes back."""
    from codeact_kernel import data

    text = "".join(chr(0x41 + i % 26) + ("é" if i % 97 == 0 else "") for i in range(300_000))
    result = sandbox.run("print(len(big), big[:3], big.count('é'))", tools, inputs={"big": data.encode(text)})
    assert result.stdout == f"{len(text)} {text[:3]} {text.count('é')}\n", result.error
    assert data.decode(result.carried["big"]) == text


def test_inputs_a_guest_cannot_hold_are_refused_before_anything_runs(sandbox, tools):
    import pandas as pd

    from codeact_kernel import data
    from codeact_kernel.errors import DataError

    frame = data.encode(pd.DataFrame({"a": [1]}))
    if "pandas" in sandbox.data_kinds:  # the scientific guest holds it
        assert sandbox.run("print(int(sales.a.sum()))", tools, inputs={"sales": frame}).stdout == "1\n"
    else:
        with pytest.raises(DataError, match="sales is pandas data, and this sandbox's guest holds only json values"):
            sandbox.run("print('ran')", tools, inputs={"sales": frame})
    for name in ("call_tool", "_private", "not a name", "set_result"):
        with pytest.raises(DataError, match="cannot be an input's name"):
            sandbox.run("print('ran')", tools, inputs={name: data.encode(1)})
    with pytest.raises(DataError):
        sandbox.run("print('ran')", tools, inputs={"x": b"\x80\x04pickle"})
    assert sandbox.run("print('still fine')", tools).stdout == "still fine\n"


def test_a_program_leaves_its_json_variables_carried(sandbox, tools):
    from codeact_kernel import data

    program = (
        "import math\nfrom json import dumps\n"
        "rows = [(1, 'a', 2.5), (2, 'b', float('nan'))]\n"
        "total = sum(r[2] for r in rows[:1])\nlabel = 'é' * 3\nflag = True\nnothing = None\nbig = 2 ** 100\n"
        "nested = {'a': {'b': [1, {'c': []}]}}\n"
        "def helper():\n    pass\nclass Thing:\n    pass\nthing = Thing()\nsquare = lambda x: x * x\n"
        "_private = [1]\nseen = {1, 2}\nraw = b'bytes'\nwhere = 1j\n"
        "by_id = {1: 'a'}\nmixed = {'ok': [1, {2}]}\n"
    )
    result = sandbox.run(program, tools)
    assert result.ok, result.error
    values = {name: data.decode(blob) for name, blob in result.carried.items()}
    assert set(values) == {"rows", "total", "label", "flag", "nothing", "big", "nested"}
    assert values["rows"][0] == [1, "a", 2.5] and math.isnan(values["rows"][1][2])  # a tuple arrives as a list
    assert values["total"] == 2.5 and values["label"] == "ééé" and values["flag"] is True
    assert values["nothing"] is None and values["big"] == 2**100 and values["nested"] == {"a": {"b": [1, {"c": []}]}}
    assert all(data.kind(blob) == "json" for blob in result.carried.values())
    assert sorted(result.notices) == [
        "by_id was not carried: by_id has the key 1 (int): JSON keys are strings, so it would arrive changed",
        "mixed was not carried: mixed['ok'][1] is a set, which is not a JSON value",
    ]  # modules, functions, classes, objects, sets, bytes, complex numbers, _private names: not data, left out


def test_the_runtime_names_are_never_carried(sandbox, tools):
    result = sandbox.run("call_tool = 1\nset_result = [2]\nToolError = 'x'\nhttp_get = {}\nkept = 3", tools)
    assert result.ok and set(result.carried) == {"kept"}


def test_nothing_is_carried_from_a_run_that_fails(sandbox, tools):
    result = sandbox.run("x = 1\nraise ValueError('no')", tools)
    assert result.error.type == "ValueError" and result.carried == {} and result.notices == []
    result = sandbox.run("x = 1\nimport sys\nsys.exit(3)", tools)
    assert result.error is not None and result.carried == {}
    result = sandbox.run("x = 1\nimport sys\nsys.exit(0)", tools)
    assert result.ok and set(result.carried) == {"x"}  # ended without error


def test_nothing_is_carried_from_a_run_stopped_at_its_deadline_or_interrupted(sandbox, tools, assert_healthy):
    import threading

    result = sandbox.run("x = [1, 2]\nwhile True:\n    pass", tools, limits=Limits(timeout=0.5))
    assert result.error.type == "TimeoutError" and result.carried == {}
    threading.Timer(0.3, sandbox.cancel).start()
    result = sandbox.run("x = [1, 2]\nwhile True:\n    pass", tools)
    assert result.error.type == "KeyboardInterrupt" and result.carried == {}
    assert_healthy()


def test_a_carried_value_over_the_limit_is_left_with_a_notice(sandbox, tools):
    # The guest's limit is data.DEFAULT_LIMIT (100 MB); lowered here, inside the guest itself.
    program = "call_tool.__globals__['_CARRY_LIMIT'] = 1000\nsmall = 'x' * 10\nlarge = 'y' * 5000"
    result = sandbox.run(program, tools)
    assert set(result.carried) == {"small"}
    assert result.notices == ["large was not carried: it is 5,002 bytes as JSON, over the limit of 1,000 bytes"]


def test_the_guest_keeps_the_hosts_names_and_limit():
    """The executor cannot import the package: its copies of RUNTIME_NAMES and DEFAULT_LIMIT must agree."""
    import ast

    from codeact_kernel import data
    from codeact_kernel.sandbox import guest_build
    from codeact_kernel.sandbox.base import RUNTIME_NAMES
    from codeact_kernel.sandbox.host import HEADER_MARK

    found = {}
    for node in ast.parse(guest_build.GUEST_SOURCE.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    assert ast.literal_eval(found["_CARRY_LIMIT"]) == data.DEFAULT_LIMIT
    assert set(ast.literal_eval(found["_RUNTIME"].args[0])) == RUNTIME_NAMES
    assert ast.literal_eval(found["_HEADER_MARK"]) == HEADER_MARK


def test_a_program_that_starts_like_the_inputs_header_is_still_only_a_program(sandbox, tools):
    from codeact_kernel.sandbox.host import HEADER_MARK

    result = sandbox.run(HEADER_MARK + '{"inputs":{"x":1}}' + HEADER_MARK + "print(x)", tools)
    assert result.error.type == "SyntaxError" and result.stdout == ""


@pytest.mark.parametrize("payload, carried, notice", [
    ("junk", {}, "what the guest sent is malformed"),
    ('{"values":[["x",999]],"skipped":[]}\n1', {}, "what the guest sent is malformed"),
    ('{"values":[["call_tool",1],["ok",1]],"skipped":[]}\n12', {"ok": 2}, "'call_tool' was not carried"),
    ('{"values":[["x",2]],"skipped":[]}\n[1', {}, "x was not carried: x is not valid JSON"),
    ('{"values":[["x",3]],"skipped":[]}\n1,2', {}, "x was not carried: x is not one valid JSON value"),
    ('{"values":[],"skipped":[["y","' + "z" * 10_000 + '"]]}\n', {}, "y was not carried: zzz"),
])
def test_a_guest_that_sends_malformed_carried_values_gets_a_notice(sandbox, tools, payload, carried, notice):
    """The host reads what the guest sends as untrusted: here the guest's own `_carry` is replaced."""
    from codeact_kernel import data

    program = f"g = call_tool.__globals__\ng['_carry'] = lambda namespace: g['_dispatch']('codeact.carried', {payload!r})"
    result = sandbox.run(program, tools)
    assert result.ok, result.error
    assert {name: data.decode(blob) for name, blob in result.carried.items()} == carried
    [said] = result.notices
    assert notice in said and len(said) < 500


def test_values_a_program_sent_before_it_failed_are_not_carried(sandbox, tools):
    program = ("g = call_tool.__globals__\ng['_dispatch']('codeact.carried', '{\"values\":[[\"x\",1]],\"skipped\":[]}\\n1')\n"
               "raise RuntimeError('after')")
    result = sandbox.run(program, tools)
    assert result.error.type == "RuntimeError" and result.carried == {}
