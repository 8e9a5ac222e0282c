"""Bad model replies and bad tool traffic, generated: the real kernel, the real client, the
scripted server sending what a broken or hostile server (or program) would.

Seeded and bounded (CODEACT_FUZZ_SEED, CODEACT_FUZZ_CASES): every cell must end with a reply
that says what happened, the kernel must stay alive with its namespace intact, and the
transcript must stay valid JSONL. The counts per kind of case are printed.
"""

from __future__ import annotations

import collections
import json
import os
import random

import pytest

from codeact_kernel.errors import CodeActError
from tests.conftest import kernel_env

SEED = int(os.environ.get("CODEACT_FUZZ_SEED", "20261203"))
CASES = int(os.environ.get("CODEACT_FUZZ_CASES", "500"))  # each kind of case about 25 times; more: set it
FALLBACK = "```python\nprint('fallback')\n```"  # for a repair the case caused, so no request goes unanswered

TOOLS = '''%%python
import math
@tool
def echo(value=None):
    """Return what it was given."""
    return value

@tool
def weird(kind: str):
    """Return a value JSON cannot carry as such."""
    return {"nan": math.nan, "inf": math.inf, "set": {1, 2}, "object": object(), "bytes": b"\\xff\\x00",
            "deep": eval("[" * 200 + "]" * 200), "huge": "h" * 3_000_000, "tuple": (1, (2, 3))}[kind]

sentinel = "intact"
'''

# What a cell may end with when the server misbehaves: a model error (they say what to do).
MODEL_ERRORS = {cls.__name__ for cls in CodeActError.__subclasses__()} | {
    sub.__name__ for cls in CodeActError.__subclasses__() for sub in cls.__subclasses__()}


def _sse(events: list[dict | str]) -> bytes:
    lines = [b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events]
    return b"".join(lines) + b"data: [DONE]\n\n"


def _chunk(delta: dict, finish: str | None = None, choices: bool = True) -> dict:
    return {"id": "chatcmpl-fuzz", "object": "chat.completion.chunk", "created": 0, "model": "scripted-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(["orders", "total", "the", "sum", "of", "é", "日本", "`x`", "|", "#"]) for _ in range(n))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _program_case(rng: random.Random) -> tuple[str, str]:
    """A program sending or receiving what JSON cannot carry; it catches what it gets, then says done."""
    kind = rng.choice(["set", "object", "bytes", "nan", "inf", "deep", "huge", "result"])
    argument = {
        "set": "{1, 2}", "object": "object()", "bytes": "b'\\xff'", "nan": "float('nan')",
        "inf": "[float('-inf')]", "deep": _nested(rng.choice([50, 300, 3000])),
        "huge": f"'x' * {rng.choice([10_000, 1_000_000, 5_000_000])}",
    }.get(kind)
    call = (f"call_tool('weird', {rng.choice(['nan', 'inf', 'set', 'object', 'bytes', 'deep', 'huge', 'tuple'])!r})"
            if kind == "result" else f"call_tool('echo', {argument})")
    code = (f"try:\n    value = {call}\n    print('got', type(value).__name__)\n"
            f"except Exception as exc:\n    print('refused', type(exc).__name__)\nprint('done')")
    return f"tool-{kind}", f"```python\n{code}\n```"


def _reply_case(rng: random.Random, server) -> str:
    """Queue one malformed reply on `server`; return its kind."""
    kind = rng.choice(["prose", "unclosed", "several", "huge", "nul", "utf8", "tool-calls", "empty-choices",
                       "cut", "content-type", "no-usage", "not-json"])
    if kind == "prose":
        server.enqueue(_words(rng, rng.randint(1, 50)))
    elif kind == "unclosed":
        server.enqueue("Here:\n```python\nprint('unclosed')\n" + _words(rng, 5))
    elif kind == "several":
        server.enqueue("```python\nprint('one')\n```\nand\n```python\nprint('two')\n```")
    elif kind == "huge":
        server.enqueue(_words(rng, rng.choice([20_000, 60_000])) + "\n```python\nprint('after a lot')\n```",
                       chunk_size=4096)
    elif kind == "nul":
        server.enqueue("nul\x00here\n```python\nprint('a\\x00b', 'c\x00d')\n```")
    elif kind == "utf8":
        body = _sse([_chunk({"role": "assistant", "content": ""})]).replace(b"data: [DONE]\n\n", b"")
        body += b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,' \
                b'"delta":{"content":"\xff\xfe bad \xc3"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
        server.enqueue_raw(body, content_type="text/event-stream")
    elif kind == "tool-calls":
        call = {"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "echo", "arguments": '{"value": 1}'}}
        server.enqueue_raw(_sse([_chunk({"role": "assistant", "tool_calls": [call]}),
                                 _chunk({}, "tool_calls")]), content_type="text/event-stream")
    elif kind == "empty-choices":
        server.enqueue_raw(_sse([_chunk({}, choices=False)] * rng.randint(1, 3)), content_type="text/event-stream")
    elif kind == "cut":
        server.enqueue("```python\nprint('never whole')\n```" + "x" * 200, chunk_size=4, reset_after=rng.randint(2, 6))
    elif kind == "content-type":
        server.enqueue_raw("<html><body>502 Bad Gateway</body></html>", content_type="text/html")
    elif kind == "no-usage":
        server.enqueue_raw(_sse([_chunk({"role": "assistant", "content": "```python\nprint('no usage')\n```"}),
                                 _chunk({}, "stop")]), content_type="text/event-stream")
    else:
        server.enqueue_raw(b"data: {not json\n\n", content_type="text/event-stream")
    return kind


@pytest.mark.timeout(1200)  # five hundred cells: about ninety seconds on two cores
def test_bad_replies_and_tool_traffic_leave_the_kernel_whole(openai_server, start_kernel, tmp_path, capsys):
    transcript = tmp_path / "fuzz.jsonl"
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto", CODEACT_TRANSCRIPT=str(transcript)),
                      widgets=False)
    assert fe.execute(TOOLS).status == "ok"
    rng = random.Random(SEED)
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for number in range(CASES):
        if rng.random() < 0.4:
            kind, reply = _program_case(rng)
            openai_server.enqueue(reply)
        else:
            kind = _reply_case(rng, openai_server)
        for _ in range(2):
            openai_server.enqueue(FALLBACK)
        cell = fe.execute(f"case {number}: {kind}", allow_stdin=False, timeout=120)
        while openai_server.pending:
            openai_server._pop()
        content = cell.reply["content"]
        where = f"case {number} ({kind}, seed {SEED})"
        if cell.status == "error":
            assert content["ename"] in MODEL_ERRORS, f"{where}: {content['ename']}: {content['evalue']}"
            assert len(content["evalue"]) > 20, where  # a sentence, not a bare type
        else:
            assert cell.status == "ok", where
            if kind.startswith("tool-"):
                assert cell.stdout().endswith("done\n") or "fallback" in cell.stdout(), f"{where}: {cell.stdout()[-300:]}"
        outcomes[(kind, cell.status if cell.status == "ok" else content["ename"])] += 1
        if os.environ.get("CODEACT_FUZZ_SHOW") and cell.status == "error":
            print(kind, content["evalue"][:300])
        if number % 100 == 99:
            assert fe.execute("%%python\nprint(sentinel)").stdout() == "intact\n", where
    assert fe.execute("%%python\nprint(sentinel, echo(3))").stdout() == "intact 3\n"
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= sum(n for (_, status), n in outcomes.items() if status == "ok")
    with capsys.disabled():
        print(f"\nfuzz: {CASES} cells, seed {SEED}, {len(records)} transcript records, all valid JSON")
        for (kind, status), n in sorted(outcomes.items()):
            print(f"  {kind:<16} {status:<20} {n:>5}")
