"""`python -m codeact_kernel.bench growth`: what each request of a 40-cell session costs.

A real kernel answers 40 prompt cells of an exploring session (each program calls a tool
and prints a table) from the scripted server, once within the default history budget and
once with `%codeact history all`, the peer. Every request the server received is counted
with the wiring benchmark's tokenizer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..testing import Frontend, ScriptedOpenAI
from .kernel import kernel_env
from .wiring import ENCODING, count_request

CELLS = 40
NAMED = (35, 3)
"""Cell 35's prompt names what cell 3's program computed."""
TARGET_RATIO = 2.0

_TOOLS = '''%%python
@tool
def monthly_sales(region: int) -> list[dict]:
    """Units and revenue per month for a sales region."""
    return [{"month": m, "units": (region * 37 + m * 11) % 90 + 10,
             "revenue": round(((region * 37 + m * 11) % 90 + 10) * 19.5, 2)} for m in range(1, 13)]
'''


def _cell(n: int) -> tuple[str, str]:
    if n == NAMED[0]:
        a = NAMED[1]
        return (f"compare totals_{a} with the latest region's total",
                f"rows = call_tool('monthly_sales', region={a})\ntotals_{a} = sum(r['revenue'] for r in rows)\n"
                f"latest = sum(r['revenue'] for r in call_tool('monthly_sales', region={n - 1}))\n"
                f"print(f'region {a}: {{totals_{a}:.2f}}; region {n - 1}: {{latest:.2f}}')")
    return (f"monthly sales for region {n}, and the year's total",
            f"rows = call_tool('monthly_sales', region={n})\n"
            "for r in rows:\n    print(f\"{r['month']:>2}  {r['units']:>4}  {r['revenue']:>9.2f}\")\n"
            f"totals_{n} = sum(r['revenue'] for r in rows)\nprint(f'total {{totals_{n}:.2f}}')")


def session(budget: str | None) -> list[dict[str, Any]]:
    """The bodies of the 40 requests one session sends; `budget` as `%codeact history` takes it."""
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAI() as server:
        fe = Frontend(kernel_env(server.base_url, "scripted", Path(tmp) / "growth.jsonl"), widgets=False, quiet=True)
        try:
            assert fe.execute(_TOOLS).status == "ok"
            if budget is not None:
                fe.execute(f"%codeact history {budget}")
            for n in range(1, CELLS + 1):
                prompt, program = _cell(n)
                server.enqueue(f"```python\n{program}\n```", chunk_size=10_000)
                cell = fe.execute(prompt, allow_stdin=False)
                assert cell.status == "ok", cell.error()
        finally:
            fe.close()
        return [r.body for r in server.requests if r.method == "POST"]


def bench_growth() -> None:
    kept = session(None)
    whole = session("all")
    sizes, peers = [count_request(b) for b in kept], [count_request(b) for b in whole]
    print(f"growth benchmark: a {CELLS}-cell session through a real kernel; tokens of each request "
          f"(tiktoken {ENCODING})")
    print("  cell   within the default budget   all history whole (peer)")
    for n in (1, 2, 5, 10, 20, 30, 40):
        print(f"  {n:>4}   {sizes[n - 1]:>23,}   {peers[n - 1]:>24,}")
    ratio = sizes[-1] / sizes[1]
    print(f"  cell 40 against cell 2: {ratio:.2f}x within the budget (target <= {TARGET_RATIO:g}x), "
          f"{peers[-1] / peers[1]:.2f}x with all history; the whole session: {sum(sizes):,} against "
          f"{sum(peers):,} tokens ({sum(sizes) / sum(peers):.2f}x)")
    stable = all(a["messages"][0] == b["messages"][0] for a, b in zip(kept, kept[1:]))
    system = count_request({"messages": kept[0]["messages"][:1]})
    print(f"  consecutive requests share their first message (instructions + tools, {system:,} tokens) "
          f"byte for byte: {'yes' if stable else 'NO'}")
    cell, named = NAMED
    carried = any(m["content"].endswith(_cell(named)[0]) for m in kept[cell - 1]["messages"] if m["role"] == "user")
    print(f"  cell {cell} names totals_{named} from cell {named}: "
          f"{'kept in its request' if carried else 'LEFT OUT of its request'}")
