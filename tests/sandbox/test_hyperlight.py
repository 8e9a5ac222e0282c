"""The Hyperlight backend: run where a micro-VM boots, skipped elsewhere with the probe's reason.

The guest side of this backend (the executor sent as a program to Hyperlight's packaged
guest) is also exercised here without a VM, by hosting that same packaged guest component
under wasmtime, so its protocol is tested on every machine.
"""

from __future__ import annotations

import json

import pytest

from codeact_kernel.sandbox import guest_build
from codeact_kernel.sandbox.base import Grants, Limits
from codeact_kernel.sandbox.host import RunState
from codeact_kernel.sandbox.hyperlight_backend import HostRefusal, _Crossing
from codeact_kernel.sandbox.selection import cached_probe


@pytest.fixture(scope="module")
def hyperlight(hyperlight_available):
    """The Hyperlight backend as the kernel runs it (in a worker process); what every backend
    promises is in test_contract.py, run on Hyperlight too."""
    from codeact_kernel.sandbox.worker import WorkerSandbox

    box = WorkerSandbox("hyperlight")
    yield box
    box.close()


def test_missing_stdlib_explains_itself(hyperlight, tools):
    result = hyperlight.run("import textwrap\nprint('ok')", tools)
    if result.ok:
        return  # a newer packaged guest has it: nothing to explain
    assert result.error.type == "ImportError"
    assert "Hyperlight" in result.error.message and "CODEACT_SANDBOX=wasmtime" in result.error.message


def test_output_subdirectories_are_a_clear_error(hyperlight, tools):
    """hyperlight-sandbox 0.8.0's /output holds files only; the error says so and what to do."""
    result = hyperlight.run("import os\nos.makedirs('/output/charts', exist_ok=True)", tools,
                            grants=Grants(output=True))
    assert result.error.type == "OSError"
    assert "no subdirectories" in result.error.message and "CODEACT_SANDBOX=wasmtime" in result.error.message


def test_the_memory_limit_is_the_vms(hyperlight, tools):
    """A VM gets its limit plus what the guest itself needs (Hyperlight refused 512 MB with
    its default scratch memory); close to the limit a program still fits (the guest's own
    heap, far smaller, is not what bounds it); past the limit a program gets a MemoryError."""
    result = hyperlight.run("x = bytearray(400 * 2**20)\nprint(len(x) // 2**20)", tools, limits=Limits(memory_mb=512))
    assert result.ok, result.error
    assert result.stdout == "400\n"
    result = hyperlight.run("x = bytearray(2**30)", tools, limits=Limits(memory_mb=128))
    assert result.error.type == "MemoryError"
    assert hyperlight.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"


# --- the bootstrap the Hyperlight backend sends, in the packaged guest, hosted by wasmtime --

@pytest.fixture(scope="module")
def packaged_guest():
    """Run a program in Hyperlight's packaged guest the way the Hyperlight host would."""
    import wasmtime
    import wasmtime.component as wc

    engine = wasmtime.Engine(guest_build.engine_config())
    component = guest_build._type_only_component(engine)
    linker = wc.Linker(engine)
    linker.add_wasip2()
    linker.add_wasi_http()  # the packaged guest imports it; our executor never uses it
    route = {}
    crossing = _Crossing(lambda name, payload: route["handler"](name, payload))  # the Hyperlight host's end

    def dispatch(_store, name, args_json):
        # Hyperlight calls the registered callback with the JSON object's keys as kwargs.
        if name != "codeact.dispatch":
            return wc.Variant("err", f"unknown tool {name}")
        kwargs = json.loads(args_json)
        try:
            return wc.Variant("ok", json.dumps(crossing(kwargs["name"], kwargs["payload"])))
        except HostRefusal as refusal:
            return wc.Variant("err", f"HostRefusal: {refusal}")

    with linker.root() as root, root.add_instance(guest_build.TOOLS_INTERFACE) as inst:
        inst.add_func("dispatch", dispatch)

    def run(program, tools):
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_wasi_http()  # a store not set up for wasi:http would abort on a request
        instance = linker.instantiate(store, component)
        executor = instance.get_export_index(store, guest_build.EXECUTOR_INTERFACE)
        func = instance.get_func(store, instance.get_export_index(store, "run", executor))
        state = RunState(tools, Limits(), Grants(), None)
        route["handler"] = lambda n, p: (True, program) if n == "codeact.program" else state.dispatch(n, p)
        func(store, guest_build.GUEST_SOURCE.read_text())
        return state.result(0.0)

    return run


def test_the_bootstrap_runs_in_the_packaged_guest(packaged_guest, tools):
    result = packaged_guest("print(call_tool('add', 2, b=3))\nset_result({'ok': True})", tools)
    assert result.ok, result.error
    assert result.stdout == "5\n" and result.value == {"ok": True}


def test_the_bootstrap_reports_tool_errors_like_the_fuller_guest(packaged_guest, tools):
    result = packaged_guest("try:\n    call_tool('fail', 'x')\nexcept ToolError as e:\n    print(e)\n1/0", tools)
    assert result.stdout == "fail: ValueError: x\n"
    assert result.error.type == "ZeroDivisionError"
    assert 'File "<program>", line 5' in result.error.traceback


def test_text_longer_than_one_crossing_arrives_whole(packaged_guest, tools):
    """Hyperlight carries each crossing in 16 KiB: longer output, arguments and results go in pieces."""
    tools["size"] = len
    tools["text"] = lambda n: "é" * n
    result = packaged_guest("print('x' * 100_000)\nprint(call_tool('size', 'ü' * 50_000))\n"
                            "print(len(call_tool('text', 60_000)))", tools)
    assert result.ok, result.error
    assert result.stdout == "x" * 100_000 + "\n50000\n60000\n"


def test_the_packaged_guest_clocks_move(packaged_guest, tools):
    """Its monotonic clocks stand still under Hyperlight, so they follow the wall clock there."""
    result = packaged_guest("import time\nstart = time.monotonic()\nx = sum(range(300_000))\n"
                            "print(time.monotonic() > start, time.perf_counter() > 0)", tools)
    assert result.stdout == "True True\n"


def test_the_packaged_guest_explains_a_missing_module(packaged_guest, tools):
    result = packaged_guest("import textwrap", tools)
    assert result.error.type == "ImportError"
    assert "not in Hyperlight's packaged Python guest" in result.error.message
    assert "CODEACT_SANDBOX=wasmtime" in result.error.message


def test_the_native_sandbox_is_only_touched_from_its_owner_thread(tools):
    """hyperlight-sandbox panics ("unsendable") when used from another thread: run() is
    called from any worker thread by the kernel, so one thread owns the VM. Where no VM
    boots, each run still reaches the boot itself and reports its failure, never a panic."""
    import concurrent.futures

    from codeact_kernel.errors import SandboxError
    from codeact_kernel.sandbox.hyperlight_backend import HyperlightSandbox

    probe = cached_probe()
    box = HyperlightSandbox()  # inline: this is what the worker process runs
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(box.run, "print(1)", tools) for _ in range(2)]:
                try:
                    assert future.result().stdout == "1\n"
                except SandboxError as error:
                    assert not probe.ok
                    assert "unsendable" not in str(error)
                    assert "Hyperlight could not run the guest" in str(error)
    finally:
        box.close()
