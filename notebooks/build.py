"""Build the example notebooks and their transcripts (a maintainer's tool, not run by tests).

The model replies below are fixtures written for the examples, not a real model's output:
they are what a capable model answers to these prompts. The script

1. records each notebook's transcript by running its cells through the kernel against a
   scripted OpenAI-compatible server that gives those replies (policy `auto`);
2. writes the notebook, whose first cell switches the kernel to `%model replay` of that
   transcript and `%approval recorded`, so it runs offline and runs only programs that
   ran when recorded;
3. executes it that way and stores the outputs, which nbval compares on every test run.

Run from the repository root: `python notebooks/build.py` (needs the `test` extra).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from codeact_kernel.bench import orders
from codeact_kernel.sandbox.guest_build import CACHE_SETTINGS
from codeact_kernel.testing import ScriptedOpenAI

HERE = Path(__file__).resolve().parent

SETUP_TAG = "replay-setup"


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def setup(name: str) -> nbformat.NotebookNode:
    return code(f"%model replay {name}.jsonl\n%approval recorded", SETUP_TAG)


def reply(prose: str, program: str) -> str:
    return f"{prose}\n\n```python\n{program.strip()}\n```"


WEATHER_TOOLS = '''%%python
@tool
def get_weather(city: str) -> dict:
    """Current weather for a city: temperature in °C and conditions."""
    data = {"Seattle": (12.5, "light rain"), "Amsterdam": (9.0, "cloudy")}
    temperature, conditions = data.get(city, (20.0, "sunny"))
    return {"city": city, "temperature_c": temperature, "conditions": conditions}
'''

# Each notebook: its cells, the model's replies in order, and (where a tool asks at each call)
# what the person recording it answers, in order: a widget button and the reason typed.
NOTEBOOKS: dict[str, tuple[list[nbformat.NotebookNode], list[str]] | tuple[list[nbformat.NotebookNode], list[str], list[tuple[str, str]]]] = {
    "quickstart": ([
        md("""# Quickstart: a prompt, a program, one approval

Each cell of a CodeAct notebook is a prompt. The model answers with **one Python program**
that calls your tools with `call_tool(...)`; you approve it; it runs in a sandbox and
prints the answer. One model turn, however many tool calls.

The first cell replays a recorded session so this notebook runs offline. To use your own
model instead, replace it with `%model gpt-4o-mini` (and set `OPENAI_API_KEY`), or
`%model NAME --base-url http://127.0.0.1:11434/v1` for a local server."""),
        setup("quickstart"),
        md("Tools are ordinary Python functions, defined in a `%%python` cell. The type hints and the "
           "docstring are what the model sees."),
        code(WEATHER_TOOLS),
        code("%tools"),
        code("Get the weather for Seattle and Amsterdam and compare them."),
        md("The program, the decision (with the SHA-256 of exactly what ran) and the output stay in the "
           "notebook as plain text. The conversation carries over to the next prompt:"),
        code("Which of the two is warmer, by how much?"),
    ], [
        reply("I'll fetch both cities and compare them in one program.", '''
cities = ["Seattle", "Amsterdam"]
weather = {city: call_tool("get_weather", city=city) for city in cities}
for city, w in weather.items():
    print(f"{city}: {w['temperature_c']} °C, {w['conditions']}")
warmer = max(cities, key=lambda c: weather[c]["temperature_c"])
diff = abs(weather["Seattle"]["temperature_c"] - weather["Amsterdam"]["temperature_c"])
print(f"{warmer} is warmer by {diff:.1f} °C.")
'''),
        "Seattle is warmer: 12.5 °C against 9.0 °C in Amsterdam, a difference of **3.5 °C**.",
    ]),
    "orders": ([
        md("""# Orders: 36 tool calls in one program

The workload from the CodeAct announcement: for every user, total their orders with the
discount for their tier and the tax for their region, using only the tools. With one tool
call per model turn this takes dozens of turns; here the model writes one program."""),
        setup("orders"),
        code('''%%python
from codeact_kernel.bench import orders
for function in orders.TOOLS.values():
    tool(function)'''),
        code("%tools"),
        code("For every user, compute the grand total of their orders. Look up the discount rate (by tier) "
             "and the tax rate (by region) with the tools, compute every order line with compute_line_total, "
             "never hard-code values, apply the discount then the tax, and report user_id, name, grand_total "
             "sorted by grand total, descending."),
    ], [
        reply("One program: list the users, look up each user's rates and orders, total every line.",
              orders.PROGRAM),
    ]),
    "files": ([
        md("""# Files: a program writes to `/output`, the notebook shows it

Programs can write files under `/output` (at most 20 files of 10 MB each). They come back to
the notebook: images and SVG are shown inline, and every file is saved beside the notebook
in `codeact_output/`. Read-only inputs can be mounted at `/input` with `%sandbox input DIR`."""),
        setup("files"),
        code(WEATHER_TOOLS),
        code("Make a CSV of the weather in Seattle, Amsterdam and Lisbon, and an SVG bar chart of the "
             "temperatures."),
    ], [
        reply("I'll write the table as CSV and draw the chart as a small SVG.", '''
import csv
cities = ["Seattle", "Amsterdam", "Lisbon"]
rows = [call_tool("get_weather", city=c) for c in cities]
with open("/output/weather.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["city", "temperature_c", "conditions"])
    writer.writeheader()
    writer.writerows(rows)
bars = []
for i, row in enumerate(rows):
    width = row["temperature_c"] * 10
    y = 10 + i * 30
    bars.append(f'<rect x="90" y="{y}" width="{width}" height="20" fill="#4c78a8"/>'
                f'<text x="5" y="{y + 15}" font-size="14">{row["city"]}</text>'
                f'<text x="{95 + width}" y="{y + 15}" font-size="12">{row["temperature_c"]} °C</text>')
svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="360" height="100">' + "".join(bars) + "</svg>")
with open("/output/temperatures.svg", "w") as f:
    f.write(svg)
print(f"wrote weather.csv ({len(rows)} rows) and temperatures.svg")
'''),
    ]),
    "approval": ([
        md("""# Approval: nothing runs before a decision

In JupyterLab every program appears in a widget with **Approve**, **Edit** and **Reject**.
*Edit* opens the program in a text box and what you approve is exactly what runs (the
notebook records it as edited, with its SHA-256). *Reject* can carry a reason, which the
model reads with your next prompt. *Approve and allow* also lets later programs that call
only the same tools run unasked for the rest of the session (never a tool marked
`approval="always"`; `%approval revoke` takes it back). However a program reaches
`call_tool`, the host refuses a tool marked `approval="always"` in a program no person
approved. This notebook runs headless (nbval), where nobody can click, so it shows the
policies instead:

| policy | what happens |
|---|---|
| `ask` (default) | waits for a person; a headless run fails the cell and runs nothing |
| `auto` | runs and says so; tools marked `@tool(approval="always")` still ask |
| `reject` | shows the program, never runs it |
| `recorded` | runs a program only if this exact text ran before (in the transcript) |"""),
        setup("approval"),
        code(WEATHER_TOOLS),
        md("`recorded` (set in the first cell) runs what ran before: the recorded session ran this "
           "exact program (under `auto`), so it runs again, with auto's guard: a tool marked "
           "`approval=\"always\"` would still need a person."),
        code("What's the weather in Lisbon?"),
        md("`reject` shows the program and runs nothing:"),
        code("%approval reject"),
        code("What's the weather in Seattle?"),
        md("Under `ask`, a run with no one to ask (nbclient, nbval, papermill) stops with a clear error "
           "before the model is asked, and runs nothing:"),
        code("%approval ask"),
        code("And in Amsterdam?", "raises-exception"),
    ], [
        reply("", 'w = call_tool("get_weather", city="Lisbon")\nprint(f"Lisbon: {w[\'temperature_c\']} °C, {w[\'conditions\']}")'),
        reply("", 'print(call_tool("get_weather", city="Seattle"))'),
        # none for Amsterdam: under `ask` with nobody to ask, the model is not asked
    ]),
    "repair": ([
        md("""# Repair: a failing program gets one more try

When a program raises, the model sees the error and proposes a fix, which needs its own
approval (at most two attempts). The error shown is the program's own traceback, from
inside the sandbox."""),
        setup("repair"),
        code(WEATHER_TOOLS),
        code("Print the temperature in Seattle in Fahrenheit."),
    ], [
        reply("Converting the temperature:", '''
w = call_tool("get_weather", city="Seattle")
print(f"Seattle: {w['temperature'] * 9 / 5 + 32:.1f} °F")
'''),
        reply("The field is called `temperature_c`; here is the corrected program.", '''
w = call_tool("get_weather", city="Seattle")
print(f"Seattle: {w['temperature_c'] * 9 / 5 + 32:.1f} °F")
'''),
    ]),
    "network": ([
        md("""# Network: nothing unless you allow it

Programs have no network by default. `%sandbox allow DOMAIN [METHODS]` opens exactly that
host (and port); the sandbox's host makes the request and enforces the list, so a program
cannot reach anything else. Here two small servers run on 127.0.0.1; only one is allowed."""),
        setup("network"),
        code('''%%python
import http.server, threading

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the allowed server"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello) for _ in range(2)]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
allowed, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)

@tool
def server_urls() -> dict:
    """The URLs of the two local servers: 'allowed' and 'other'."""
    return {"allowed": allowed, "other": other}

get_ipython().run_line_magic("sandbox", f"allow {allowed.split('//')[1]} GET")'''),
        code("Fetch both local servers and tell me what each one says."),
    ], [
        reply("I'll try both; a refused request raises PermissionError.", '''
urls = call_tool("server_urls")
for name in ("allowed", "other"):
    try:
        response = http_get(urls[name] + "/")
        print(f"{name}: {response['status']} {response['body']}")
    except PermissionError as error:
        print(f"{name}: refused ({error})")
'''),
    ]),
    "emails": ([
        md("""# Emails: a person decides each call, while the program waits

Approving a whole program before it runs means approving blind the arguments it will pass:
who an email goes to, what it says. A tool marked `@tool(approval="each-call")` asks at every
call instead: the program pauses inside `call_tool`, and you see the tool, its arguments and
the line of the program that made the call, under what the program printed so far. You
**allow** it once, **allow the tool for the rest of this run**, or **deny** it with a reason;
a denied call raises `ToolError` in the program (which may catch it), and the model reads
your reason with the next prompt. The program's timeout does not count the time you take.

In JupyterLab the question is a card in the cell (Ctrl/Cmd-Enter allows); in other widget
frontends a widget; in jupyter console a `y/N/r` prompt. Run headless (nbclient, papermill)
nobody can answer, so each such call is denied, and says so.

This notebook replays a session in which a person answered: under `recorded` (first cell) a
person's earlier decision on the same program, tool and arguments is applied again."""),
        setup("emails"),
        code('''%%python
outbox = []

@tool(approval="each-call")
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email (here: add it to `outbox`)."""
    outbox.append({"to": to, "subject": subject})
    return f"sent to {to}"'''),
        code("Invite Ann, Bob and Cy to lunch on Friday at noon, one email each."),
        md("Bob's invitation was denied, with a reason; the program caught the `ToolError` and went "
           "on. Nothing was sent that the person did not allow:"),
        code("%%python\nprint(outbox)"),
        code("Did everyone get the invitation?"),
    ], [
        reply("One email per person; a denied call is reported and the others still go out.", '''
for name in ["Ann", "Bob", "Cy"]:
    try:
        print(call_tool("send_email", to=f"{name.lower()}@example.com", subject="Lunch on Friday",
                        body=f"Hi {name}, lunch on Friday at noon?"))
    except ToolError as error:
        print(f"not sent to {name}: {error}")
'''),
        "Ann and Cy got it. Bob's was not sent: you denied it because he is on leave this week.",
    ], [("Allow", ""), ("Deny", "he is on leave this week"), ("Allow", "")]),
    "mcp": ([
        md("""# MCP servers: their tools in programs, approved by what each tool does

Many tools already exist as MCP (Model Context Protocol) servers: files, databases, issue
trackers. `%mcp add` connects one with the official MCP SDK; each of its tools is then
callable from programs with `call_tool("TOOL", ...)` like a `@tool`, and the model sees it
like one. The server beside this notebook, `mcp_server.py`, keeps a team's notes: four tools
it annotates read-only, and `add_note`, which it does not.

A tool annotated read-only is an ordinary tool. Every other tool follows the server's approval
setting: `always` (the default: a program that may call it needs a person), `each-call` (every
call waits for a person) or `auto` (ordinary). Annotations come from the server, which may
lie, so your setting, for the server or for one tool (`%mcp approval`), always wins."""),
        setup("mcp"),
        md("The server runs on the kernel's own Python, which has the MCP SDK. `%mcp add` waits for it "
           "to start and lists its tools, with what each needs:"),
        code("%%python\nimport sys\n%mcp add notes -- {sys.executable} mcp_server.py"),
        md("Its tools sit beside the notebook's own. A name two tools share stays the notebook's `@tool`'s, "
           "and the server's tool is then called `notes.search` (whatever order they came in):"),
        code('''%%python
@tool
def search(term: str) -> str:
    """Look a term up in the team's glossary."""
    return {"OKR": "objectives and key results"}.get(term, "not in the glossary")'''),
        code("%tools"),
        code("Which notes mention the budget? Show what they say."),
        md("A tool's error (the server's `isError`) is a `ToolError` the program can catch, carrying the "
           "server's message. An image a tool returns is shown in the cell after the run; the program gets "
           "a line saying what it was:"),
        code("Read the note about holidays, then chart how long the notes are."),
        md("`add_note` is not annotated read-only, so the server's setting, `always`, applies: a program "
           "that may call it needs a person, even under `%approval auto`. This notebook runs headless "
           "(nbval), where nobody can approve, so the cell fails, naming the tool:"),
        code("%approval auto"),
        code("Add a note titled 'Offsite agenda': day one planning, day two hiking.", "raises-exception"),
        md("Your setting wins over the server's annotations. Trusting this server whole makes every one of "
           "its tools ordinary, and the same request runs:"),
        code("%mcp approval notes auto"),
        code("Add a note titled 'Offsite agenda': day one planning, day two hiking. Then list the notes."),
        md("`%mcp` lists the servers, their state and tools; `%mcp log notes` shows what the server wrote "
           "on stderr (never a cell); `%mcp remove notes` disconnects it. The server stops with the kernel, "
           "even a killed one."),
    ], [
        reply("I'll search the notes through the server and read each match.", '''
titles = call_tool("notes.search", "budget")
for title in titles:
    print(f"{title}: {call_tool('read_note', title)}")
'''),
        reply("Reading the note (the server says if there is none), then the chart.", '''
try:
    print(call_tool("read_note", "Holidays"))
except ToolError as error:
    print(f"no holiday note: {error}")
print(call_tool("chart"))
'''),
        reply("Saving the note with the server's add_note.", '''
print(call_tool("add_note", "Offsite agenda", "Day one: planning. Day two: hiking."))
'''),
        reply("Saving the note, then listing the titles.", '''
print(call_tool("add_note", "Offsite agenda", "Day one: planning. Day two: hiking."))
print(call_tool("list_notes"))
'''),
    ]),
    "explore": ([
        md("""# Exploring data: pandas and matplotlib in the sandbox, data shared and carried

A program may import numpy, pandas, scipy, scikit-learn, statsmodels and matplotlib: it then
runs in the **scientific guest** (a CPython with that stack compiled to WebAssembly, as isolated
as the standard one). `%share NAME` hands a notebook value to every later program under the
same name, as a copy, and the model is told its columns and dtypes, never its rows. What a
program leaves that is data (a DataFrame, a dict) is there for the next program: cell 2
builds on cell 1. A figure a program leaves open is shown in the cell, and `set_result` hands
a DataFrame back to the notebook."""),
        setup("explore"),
        code('''%%python
import pandas as pd
sales = pd.read_csv("sales.csv", parse_dates=["date"])
sales.head(3)'''),
        code("%share sales"),
        code("Revenue by region and month, with a chart."),
        md("The program named `sales`, so it started with the shared table; what it left, `by_region_month`, "
           "starts the next one:"),
        code("Which region grew most from January to March? Hand me the growth table."),
        code('''%%python
result.sort_values("growth_pct")'''),
        code("%share"),
    ], [
        reply("One pivot of revenue (units × unit price) by month and region, and a bar chart of it.", '''
import matplotlib.pyplot as plt
revenue = sales.assign(revenue=sales["units"] * sales["unit_price"], month=sales["date"].dt.strftime("%Y-%m"))
by_region_month = revenue.pivot_table(index="month", columns="region", values="revenue", aggfunc="sum").round(2)
print(by_region_month.to_string())
ax = by_region_month.plot.bar(figsize=(7, 3.5), title="Revenue by region and month", rot=0)
ax.set_ylabel("revenue")
'''),
        reply("Growth from the January column to the March one of the table from before.", '''
growth = ((by_region_month.loc["2026-03"] / by_region_month.loc["2026-01"] - 1) * 100).round(1)
growth = growth.rename("growth_pct").sort_values(ascending=False)
print(growth.to_string())
print(f"{growth.index[0]} grew most: {growth.iloc[0]} %")
set_result(growth.to_frame())
'''),
    ]),
    "results": ([
        md("""# Results: a value handed back to Python

A program can hand a JSON value back with `set_result(value)`; the kernel binds it as
`result` (choose another name with `%codeact result NAME`), so a `%%python` cell can use it."""),
        setup("results"),
        code(WEATHER_TOOLS),
        code("Get the weather for Seattle, Amsterdam and Lisbon and hand the temperatures back to me."),
        code('''%%python
coldest = min(result, key=result.get)
print(f"coldest: {coldest} at {result[coldest]} °C; mean {sum(result.values()) / len(result):.2f} °C")'''),
    ], [
        reply("Fetching the three cities and returning a dict of temperatures.", '''
temperatures = {c: call_tool("get_weather", city=c)["temperature_c"] for c in ["Seattle", "Amsterdam", "Lisbon"]}
print(temperatures)
set_result(temperatures)
'''),
    ]),
}


def _kernel_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEACT_", "OPENAI_"))}
    for keep in CACHE_SETTINGS:
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env.update(extra)
    return env


def _execute(nb: nbformat.NotebookNode, env: dict[str, str]) -> None:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # nbclient's kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="codeact", timeout=120, allow_errors=True,
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _record_with_a_person(nb: nbformat.NotebookNode, env: dict[str, str], answers: list[tuple[str, str]]) -> None:
    """Run the cells in a kernel with a widget frontend, where this script plays the person who
    answers each call's widget (the button, and the reason typed before it)."""
    from codeact_kernel.testing import Frontend

    pending = list(answers)

    def person(frontend: Frontend, msg: dict) -> None:
        if msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]:
            button, reason = pending.pop(0)
            if reason:
                text = next(c for c, s in reversed(frontend.widget_state.items()) if s.get("_model_name") == "TextModel")
                frontend.set_value(text, reason)
            frontend.click(frontend.button(button))

    with tempfile.TemporaryDirectory() as cwd:
        frontend = Frontend(env, cwd=cwd)
        try:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    frontend.execute(cell.source, on_message=person, timeout=120)
        finally:
            frontend.close()
    assert not pending, f"{len(pending)} answers were not asked for"


def build(name: str) -> None:
    cells, replies, *person = NOTEBOOKS[name]
    transcript = HERE / f"{name}.jsonl"
    transcript.unlink(missing_ok=True)
    with ScriptedOpenAI() as server, tempfile.TemporaryDirectory() as scratch:
        for text in replies:
            server.enqueue(text, usage=None)
        # Recording runs every cell but the replay set-up, with `recorded` standing for `auto`:
        # the programs it runs are the ones a replay under `recorded` may run.
        recording = nbformat.v4.new_notebook(cells=[
            code(c.source.replace("%approval recorded", "%approval auto"), *c.metadata.get("tags", []))
            if c.cell_type == "code" else c
            for c in cells if SETUP_TAG not in c.metadata.get("tags", [])])
        env = _kernel_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-fixture",
                          CODEACT_MODEL="fixture-model", CODEACT_APPROVAL="auto", CODEACT_TRANSCRIPT=str(transcript))
        if person:
            _record_with_a_person(recording, env, person[0])
        else:
            _execute(recording, env)
        assert server.pending == 0, f"{name}: {server.pending} scripted replies were not used"
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "codeact", "display_name": "CodeAct", "language": "codeact"}
        nb.metadata["language_info"] = {"name": "codeact"}
        _execute(nb, _kernel_env(CODEACT_TRANSCRIPT=str(Path(scratch) / "t.jsonl")))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, HERE / f"{name}.ipynb")
    print(f"built {name}.ipynb and {name}.jsonl")


BENCHMARK = [
    md("""# CodeAct against tool calling, measured

The same four tasks (`codeact_kernel/bench/tasks.py`), the same tools and the same model, wired
three ways: **tool calling** (a function schema per tool, one call per model turn),
**execute_code** (the reference implementation's shape: one tool that runs a program, whose
output goes back to the model for the answer) and **this kernel** (one prompt cell: one
program whose printed output is the answer).

This is a recorded offline run: an oracle plays the ideal model of each wiring, so turns and
tokens (tiktoken's cl100k_base over exactly what each request carries) are exact and
repeatable. It was made with

    python -m codeact_kernel.bench wiring --json notebooks/benchmark.json --plot notebooks/benchmark.png"""),
    code("""%%python
import json, pathlib
from IPython.display import Markdown
from codeact_kernel.bench import wiring

recorded = wiring.from_json(json.loads(pathlib.Path("benchmark.json").read_text()))
Markdown(wiring.table(recorded))"""),
    md("![Model turns, tokens and wall time per task and wiring](benchmark.png)\n\n"
       "Offline the oracle answers at once, so wall time is each wiring's own overhead (for this "
       "kernel, a cell through a real kernel process and its sandbox); with a real model every "
       "turn adds the model's latency, which is where tool calling's 37 turns cost most."),
    md("Turns and tokens do not depend on the machine: the oracle, run again here, gives the same."),
    code("""%%python
again = wiring.run(runs=1)
exact = lambda results: {task: {w: (f.turns, f.tokens, f.tool_calls, f.right) for w, f in per.items()}
                         for task, per in results.items()}
print("the same turns, tokens, tool calls and answers:", exact(again) == exact(recorded))"""),
    md("""## With your model

Users are advised to measure CodeAct on their own tools and model before adopting it. Against
any OpenAI-compatible server (the key from `OPENAI_API_KEY`):

    python -m codeact_kernel.bench wiring --model gpt-4o-mini --runs 3
    python -m codeact_kernel.bench wiring --model qwen2.5-coder --base-url http://127.0.0.1:11434/v1

Add your own task to `TASKS` in `codeact_kernel/bench/tasks.py`: data, tools, a prompt, the
program an ideal model writes, and the text a right answer contains."""),
]


def build_benchmark() -> None:
    """The recorded run (figures and plot) and the notebook that shows it."""
    from codeact_kernel.bench import wiring

    wiring.bench_wiring(3, json_path=HERE / "benchmark.json", plot_path=HERE / "benchmark.png")
    nb = nbformat.v4.new_notebook(cells=BENCHMARK)
    nb.metadata["kernelspec"] = {"name": "codeact", "display_name": "CodeAct", "language": "codeact"}
    nb.metadata["language_info"] = {"name": "codeact"}
    with tempfile.TemporaryDirectory() as scratch:
        _execute(nb, _kernel_env(CODEACT_TRANSCRIPT=str(Path(scratch) / "t.jsonl")))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, HERE / "benchmark.ipynb")
    print("built benchmark.ipynb, benchmark.json and benchmark.png")


if __name__ == "__main__":
    for notebook in sys.argv[1:] or [*NOTEBOOKS, "benchmark"]:
        build_benchmark() if notebook == "benchmark" else build(notebook)
