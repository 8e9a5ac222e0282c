"""The kernel end to end: a real kernel process, the real openai client, a scripted server on 127.0.0.1.

Each test reads as a user's session: define tools in a %%python cell, type a prompt, act
on the approval widget through the comm messages JupyterLab would send.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import SLOWDOWN, TEST_API_KEY, kernel_env
from codeact_kernel.testing import Frontend

TOOLS_CELL = '''%%python
import time as _time

@tool
def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temperature_c": {"Seattle": 12.5, "Amsterdam": 9.0}.get(city, 20.0)}

@tool(approval="always")
def delete_everything() -> str:
    """Deletes everything (always asks)."""
    return "deleted"

@tool
async def slow_echo(text: str) -> str:
    """Echo after a short wait."""
    import asyncio
    await asyncio.sleep(0.01)
    return text

calls = []
@tool
def record(x: int) -> int:
    """Remember x."""
    calls.append(x)
    return x
'''

WEATHER = ("I'll fetch both cities.\n```python\n"
           "rows = [call_tool('get_weather', c) for c in ('Seattle', 'Amsterdam')]\n"
           "for r in rows:\n    print(r['city'], r['temperature_c'])\n"
           "set_result({r['city']: r['temperature_c'] for r in rows})\n```")


def program(code: str, prose: str = "") -> str:
    return f"{prose}\n```python\n{code}\n```"


def has_widget(msg: dict) -> bool:
    return msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]


def clicking(*steps):
    """An on_message that performs `steps` (callables taking the frontend) once the widget shows."""
    done = []

    def on_message(frontend: Frontend, msg: dict) -> None:
        if has_widget(msg) and not done:
            done.append(True)
            for step in steps:
                step(frontend)

    return on_message


def approve(fe: Frontend) -> None:
    fe.click(fe.button("Approve"))


@pytest.fixture(scope="module")
def lab(openai_server):
    """A kernel as JupyterLab sees it (widgets, stdin), with the tools cell run."""
    fe = Frontend(kernel_env(openai_server))
    cell = fe.execute(TOOLS_CELL)
    assert cell.status == "ok", cell.error()
    yield fe
    fe.close()


@pytest.fixture
def fresh(lab, openai_server):
    """The lab kernel with an empty conversation, policy ask, and nothing queued on the server."""
    lab.execute("%forget")
    lab.execute("%approval ask")
    openai_server.requests.clear()
    yield lab
    assert openai_server.pending == 0, "a scripted reply was not used"


def test_kernelspec_and_kernel_info(lab):
    lab.client.kernel_info()
    info = lab.client.get_shell_msg(timeout=10)["content"]
    assert info["implementation"] == "codeact"
    assert info["language_info"]["name"] == "codeact"
    assert info["status"] == "ok"
    files = {p.name for p in Path(lab.manager.kernel_spec.resource_dir).iterdir()}
    assert {"logo-32x32.png", "logo-64x64.png", "logo-svg.svg"} <= files  # the launcher's and header's icon


def test_approve_runs_the_program_and_streams_its_output(fresh, openai_server):
    openai_server.enqueue(WEATHER)
    cell = fresh.execute("Get the weather for Seattle and Amsterdam and compare them.",
                         on_message=clicking(approve), allow_stdin=True)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "Seattle 12.5\nAmsterdam 9.0\n"
    text = cell.markdown()
    assert "I'll fetch both cities." in text
    assert "**Program** · calls get_weather" in text and "call_tool('get_weather', c)" in text
    assert "**Approved** at" in text and "sha256" in text
    assert "2 tool calls" in text and "result → `result`" in text and "tokens" in text
    # the program's output comes after the decision, the footer last
    kinds = [m["msg_type"] for m in cell.outputs()]
    assert kinds.index("stream") > kinds.index("display_data")
    assert fresh.execute("%%python\nprint(result['Seattle'] - result['Amsterdam'])").stdout() == "3.5\n"


def test_the_request_carries_instructions_tools_and_the_prompt(fresh, openai_server):
    openai_server.enqueue("No code needed: **hello**.")
    cell = fresh.execute("Say hello", allow_stdin=True)
    assert cell.status == "ok"
    assert "**hello**" in cell.markdown()
    body = openai_server.requests[-1].body
    system = body["messages"][0]["content"]
    assert "call_tool" in system and "get_weather(city: str) -> dict  # Current weather for a city." in system
    assert body["messages"][-1] == {"role": "user", "content": "Say hello"}
    assert body["stream"] is True and body["model"] == "scripted-model"


def test_edit_runs_the_edited_text_and_records_it(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('record', 1))"))
    edited = "print(call_tool('record', 2))"

    def edit(fe: Frontend) -> None:
        fe.click(fe.button("Edit"))
        fe.set_value(fe.widget("TextareaModel"), edited)
        time.sleep(0.2)  # as a person would: the edit reaches the kernel before the click
        fe.click(fe.button("Approve"))

    cell = fresh.execute("record something", on_message=clicking(edit), allow_stdin=True)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "2\n"
    assert "**Approved after editing**" in cell.markdown()
    assert "**Edited program** (what runs)" in cell.markdown() and edited in cell.markdown()
    assert fresh.execute("%%python\nprint(calls[-1])").stdout() == "2\n"


def test_reject_runs_nothing_and_the_reason_reaches_the_model(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('record', 99))"))

    def reject(fe: Frontend) -> None:
        fe.set_value(fe.widget("TextModel"), "use record(7) instead")
        time.sleep(0.2)
        fe.click(fe.button("Reject"))

    before = fresh.execute("%%python\nprint(len(calls))").stdout()
    cell = fresh.execute("record 99", on_message=clicking(reject), allow_stdin=True)
    assert cell.status == "ok"
    assert "**Rejected**" in cell.markdown() and "use record(7) instead" in cell.markdown()
    assert fresh.execute("%%python\nprint(len(calls))").stdout() == before
    openai_server.enqueue("Understood, nothing to run.")
    fresh.execute("ok then", allow_stdin=True)
    last = json.dumps(openai_server.requests[-1].body["messages"])
    assert "use record(7) instead" in last


def test_widgets_close_after_the_decision(fresh, openai_server):
    openai_server.enqueue(program("print(1)"))
    fresh.execute("one", on_message=clicking(approve), allow_stdin=True)
    assert fresh.widget_state == {}, "every widget comm is closed once decided"


def test_auto_policy_runs_and_says_so(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("print(call_tool('get_weather', 'Paris')['temperature_c'])"))
    cell = fresh.execute("weather in Paris", allow_stdin=True)
    assert cell.stdout() == "20.0\n"
    assert "Approved by policy (auto)" in cell.markdown()


def test_auto_still_asks_for_an_always_tool(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("print(call_tool('delete_everything'))"))
    seen = []

    def reject(fe: Frontend) -> None:
        seen.append(True)
        fe.click(fe.button("Reject"))

    cell = fresh.execute("clean up", on_message=clicking(reject), allow_stdin=True)
    assert seen and "**Rejected**" in cell.markdown() and cell.stdout() == ""
    openai_server.enqueue(program("name = 'delete_' + 'everything'\nprint(call_tool(name))"))
    seen.clear()
    cell = fresh.execute("clean up again", on_message=clicking(reject), allow_stdin=True)
    assert seen, "a call_tool whose name is not a literal may reach the always-ask tool"


def test_allowing_a_programs_tools_for_the_session(fresh, openai_server):
    """Approve and allow: later programs calling only those tools run unasked, the guard holds them
    to exactly those tools, and %approval lists and revokes the allowance."""
    fresh.execute("%approval ask")
    openai_server.enqueue(program("print(call_tool('get_weather', 'Oslo')['temperature_c'])"))
    cell = fresh.execute("Oslo", on_message=clicking(lambda fe: fe.click(fe.button("Approve and allow"))))
    assert cell.stdout() == "20.0\n" and "allowed for this session: get_weather" in cell.markdown()
    assert "allowed for this session (programs calling only these run unasked): get_weather" in \
        fresh.execute("%approval").stdout()

    openai_server.enqueue(program("print(call_tool('get_weather', 'Seattle')['temperature_c'])"))
    cell = fresh.execute("Seattle")  # nobody clicks: it must not ask
    assert cell.stdout() == "12.5\n" and "Ran without asking" in cell.markdown()

    # Naming only get_weather but reaching another tool: the guard refuses it.
    before = fresh.execute("%%python\nprint(calls)").stdout()
    openai_server.enqueue(program("call_tool('get_weather', 'x')\n"
                                  "try:\n    globals()['call_' + 'tool']('record', 7)\nexcept ToolError as e:\n"
                                  "    print(e)"))
    cell = fresh.execute("sneak")
    assert cell.stdout().startswith("record: PermissionError: refused: record is not among the tools allowed")
    assert fresh.execute("%%python\nprint(calls)").stdout() == before  # record never ran

    fresh.execute("%approval revoke all")
    openai_server.enqueue(program("print(call_tool('get_weather', 'Oslo')['temperature_c'])"))
    seen = []
    cell = fresh.execute("Oslo again", on_message=clicking(lambda fe: (seen.append(1), fe.click(fe.button("Reject")))))
    assert seen and "**Rejected**" in cell.markdown()


def test_an_always_tool_is_never_offered_for_the_session(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('delete_everything'))"))
    offered = []

    def look(fe: Frontend) -> None:
        buttons = {fe.widget_state[child.removeprefix("IPY_MODEL_")].get("description")
                   for state in fe.widget_state.values() if state.get("_model_name") == "HBoxModel"
                   for child in state["children"]}
        offered.append(buttons)
        fe.click(fe.button("Reject"))

    fresh.execute("%approval ask")
    fresh.execute("clean up", on_message=clicking(look))
    assert offered == [{"Approve", "Edit", "Reject"}]  # nothing to allow: no such button


@pytest.mark.parametrize("bypass", [
    "print(globals()['call_' + 'tool']('delete_everything'))",     # call_tool, never named
    "exec(bytes.fromhex('%s').decode())" % "print(call_tool('delete_everything'))".encode().hex(),
])
def test_auto_cannot_be_outwitted_into_an_always_tool(fresh, openai_server, bypass):
    """The scan reads none of these; the guard where the call arrives refuses each, naming the tool."""
    fresh.execute("%approval auto")
    openai_server.enqueue(program(f"try:\n    {bypass}\nexcept ToolError as e:\n    print(e)"))
    cell = fresh.execute("clean up", allow_stdin=False)
    assert cell.status == "ok", cell.error()
    assert "Approved by policy (auto)" in cell.markdown()
    assert cell.stdout().startswith("delete_everything: PermissionError: refused: delete_everything is marked "
                                    "approval='always' and no person approved this program")
    assert "deleted" not in cell.stdout()


def test_reject_policy_shows_and_runs_nothing(fresh, openai_server):
    fresh.execute("%approval reject")
    openai_server.enqueue(program("print(call_tool('record', 5))"))
    cell = fresh.execute("record 5", allow_stdin=True)
    assert cell.status == "ok" and cell.stdout() == ""
    assert "the approval policy is `reject`" in cell.markdown()


def test_async_tools_work(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("print(call_tool('slow_echo', 'hi'))"))
    assert fresh.execute("echo", allow_stdin=True).stdout() == "hi\n"


def test_repair_asks_the_model_again_with_the_error(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("print(call_tool('get_weather', 'Oslo')['temp'])"))
    openai_server.enqueue(program("print(call_tool('get_weather', 'Oslo')['temperature_c'])"))
    cell = fresh.execute("Oslo temperature", allow_stdin=True)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "20.0\n"
    shown = cell.markdown()
    # the error itself is shown before the repair, not only its type
    assert "**The program failed**" in shown and "KeyError: 'temp'" in shown
    assert shown.index("KeyError: 'temp'") < shown.index("asking the model for a fix (repair 1 of 2)")
    assert "2 programs run (repairs)" in shown  # the footer counts them
    fix_request = json.dumps(openai_server.requests[-1].body["messages"])
    assert "KeyError" in fix_request


def test_repair_gives_up_after_two_attempts_with_the_guest_traceback(fresh, openai_server):
    fresh.execute("%approval auto")
    for _ in range(3):
        openai_server.enqueue(program("def f():\n    return 1 / 0\nf()"))
    cell = fresh.execute("divide", allow_stdin=True)
    assert cell.status == "error"
    assert cell.reply["content"]["ename"] == "ZeroDivisionError"
    traceback = "\n".join(cell.error()["traceback"])
    assert 'File "<program>", line 3' in traceback and 'line 2, in f' in traceback
    assert len(openai_server.requests) == 3


def test_each_fix_needs_its_own_approval(fresh, openai_server):
    openai_server.enqueue(program("1 / 0"))
    openai_server.enqueue(program("print('fixed')"))
    shown = []

    def on_message(fe: Frontend, msg: dict) -> None:
        if has_widget(msg):
            shown.append(True)
            fe.click(fe.button("Approve"))

    cell = fresh.execute("try", on_message=on_message, allow_stdin=True)
    assert len(shown) == 2 and cell.stdout() == "fixed\n"


def test_history_across_cells_and_forget(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("print(6 * 7)"))
    fresh.execute("compute six times seven", allow_stdin=True)
    openai_server.enqueue("It was 42.")
    fresh.execute("what was it?", allow_stdin=True)
    messages = openai_server.requests[-1].body["messages"]
    flat = json.dumps(messages)
    assert "compute six times seven" in flat and "42" in flat
    history = fresh.execute("%history").stdout()
    assert "[1] (whole) compute six times seven" in history and "auto" in history
    assert "history budget 800 tokens: the next request carries about" in history
    assert "forgot 2 turns" in fresh.execute("%forget").stdout()
    assert "empty" in fresh.execute("%history").stdout()


def test_a_long_conversation_stays_within_its_budget(fresh, openai_server):
    fresh.execute("%approval auto")
    # the budget holds the turns and the descriptions of the six tables they leave for the next program
    assert "history budget 400 tokens" in fresh.execute("%codeact history 400").stdout()
    for n in range(6):
        openai_server.enqueue(program(f"table_{n} = [{n} * i for i in range(60)]\nprint(table_{n})"))
        assert fresh.execute(f"table {n}", allow_stdin=True).status == "ok"
    openai_server.enqueue("Done.")
    fresh.execute("show table_0 again", allow_stdin=True)
    first, *_, last = [r.body["messages"] for r in openai_server.requests]
    assert first[0] == last[0]  # instructions and tools: the same bytes, first in every request
    flat = json.dumps(last)
    assert "earlier turn" in flat and "left out to keep the request small" in flat
    prompts = [m["content"].rsplit("Next request:\n", 1)[-1] for m in last if m["role"] == "user"]
    assert prompts[0] == "table 0", "its program set table_0, which the prompt names: kept"
    assert "table_5 = [5 * i" in flat, "the newest: whole"
    history = fresh.execute("%history").stdout()
    assert "(whole) show table_0 again" in history and "(left out) table 1" in history
    assert "none (every turn whole)" in fresh.execute("%codeact history all").stdout()
    assert fresh.execute("%codeact history lots").status == "error"
    fresh.execute("%codeact history 800")


def test_magics(fresh):
    out = fresh.execute("%tools").stdout()
    assert "get_weather(city: str) -> dict  # Current weather for a city." in out
    assert "delete_everything() -> str  # Deletes everything (always asks).  [always asks]" in out
    assert "approval: auto" in fresh.execute("%approval auto").stdout()
    bad = fresh.execute("%approval sometimes")
    assert bad.status == "error" and "approval must be one of ask, auto, reject" in bad.stdout("stderr")
    assert "approval: auto" in fresh.execute("%approval").stdout()
    model = fresh.execute("%model other-model --timeout 5").stdout()
    assert "model other-model" in model and "timeout 5 s" in model and TEST_API_KEY not in model
    fresh.execute("%model scripted-model --timeout 120")
    sandbox = fresh.execute("%sandbox allow 127.0.0.1:9 GET").stdout()
    assert "127.0.0.1:9 (GET)" in sandbox and "backend" in sandbox and "timeout 30 s" in sandbox
    assert "none (no network)" in fresh.execute("%sandbox deny 127.0.0.1:9").stdout()
    assert "timeout 5 s" in fresh.execute("%sandbox timeout 5").stdout()
    fresh.execute("%sandbox timeout 30")
    assert "guest     standard: every program in the standard guest" in fresh.execute("%sandbox guest standard").stdout()
    assert "guest     auto: the scientific guest (numpy, pandas" in fresh.execute("%sandbox guest auto").stdout()
    assert fresh.execute("%sandbox guest gpu").status == "error"
    assert "%%python" in fresh.execute("%codeact").stdout()
    assert "binds `weather`" in fresh.execute("%codeact result weather").stdout()
    fresh.execute("%codeact result result")
    fresh.execute("%%python\n@tool\ndef temporary() -> int:\n    return 1")
    assert "temporary" not in fresh.execute("%tools remove temporary").stdout()


def test_python_cells_are_ipython(fresh):
    cell = fresh.execute("%%python\nx = 40\nx + 2")
    results = cell.outputs("execute_result")
    assert results and results[0]["content"]["data"]["text/plain"] == "42"
    assert fresh.execute("%%python\n%timeit -n1 -r1 pass").status == "ok"
    err = fresh.execute("%%python\nundefined_name")
    assert err.status == "error" and err.reply["content"]["ename"] == "NameError"


def test_completion_inspection_and_is_complete(fresh):
    fresh.execute("%%python\nmy_variable = 1")
    code = "%%python\nmy_var"
    fresh.client.complete(code, len(code))
    reply = fresh.client.get_shell_msg(timeout=10)["content"]
    assert "my_variable" in reply["matches"] and reply["cursor_start"] == len("%%python\n")
    code = "%%python\nget_weather"
    fresh.client.inspect(code, len(code))
    reply = fresh.client.get_shell_msg(timeout=10)["content"]
    assert reply["found"] and "Current weather for a city" in json.dumps(reply["data"])
    fresh.client.is_complete("What is the weather in Paris?")
    assert fresh.client.get_shell_msg(timeout=10)["content"]["status"] == "complete"
    fresh.client.is_complete("%%python\nfor i in range(3):")
    assert fresh.client.get_shell_msg(timeout=10)["content"]["status"] == "incomplete"


def test_output_files_are_shown_and_saved(fresh, openai_server, tmp_path):
    fresh.execute("%approval auto")
    openai_server.enqueue(program(
        "open('/output/table.csv', 'w').write('a,b\\n1,2\\n')\n"
        "open('/output/dot.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"/>')"))
    cell = fresh.execute("write files", allow_stdin=True)
    assert cell.status == "ok", cell.error()
    text = cell.markdown()
    assert "codeact_output/table.csv" in text and "codeact_output/dot.svg" in text
    shown = [m["content"]["data"]["text/html"] for m in cell.outputs("display_data")
             if "text/html" in m["content"].get("data", {})]
    assert len(shown) == 1 and shown[0].startswith('<img alt="dot.svg" src="data:image/svg+xml;base64,')
    assert "<svg" not in shown[0], "a program's SVG is shown as an image, never as live markup"
    cwd = fresh.execute("%%python\nimport os\nprint(open('codeact_output/table.csv').read(), end='')").stdout()
    assert cwd == "a,b\n1,2\n"


def test_the_api_key_never_appears(fresh, openai_server):
    fresh.execute("%approval auto")
    openai_server.enqueue(program("import os\nprint(os.environ.get('OPENAI_API_KEY'))"))
    cell = fresh.execute("show the key", allow_stdin=True)
    everything = json.dumps(cell.messages, default=str) + json.dumps(fresh.execute("%model").messages, default=str)
    assert TEST_API_KEY not in everything


# --- headless runs and frontends without widgets ------------------------------------------

def test_headless_ask_fails_the_cell_and_runs_nothing(openai_server, start_kernel):
    fe = start_kernel(kernel_env(openai_server), widgets=False)
    fe.execute(TOOLS_CELL)
    asked = len(openai_server.requests)
    cell = fe.execute("record 1", allow_stdin=False)
    assert cell.status == "error"
    assert cell.reply["content"]["ename"] == "ApprovalRequired"
    evalue = cell.reply["content"]["evalue"]
    assert "the approval policy is 'ask'" in evalue and "CODEACT_APPROVAL=auto" in evalue
    assert "the model was not asked" in evalue and len(openai_server.requests) == asked
    assert fe.execute("%%python\nprint(calls)").stdout() == "[]\n"


@pytest.mark.parametrize("word", ["exit", "quit()"])
def test_exit_asks_the_console_to_close_as_in_ipython(openai_server, start_kernel, word):
    """As in IPython: the console closes, and the kernel ends with it (not a prompt to the model)."""
    fe = start_kernel(kernel_env(openai_server), widgets=False)
    asked = len(openai_server.requests)
    cell = fe.execute(word, allow_stdin=True)
    assert cell.status == "ok" and {"source": "ask_exit", "keepkernel": False} in cell.reply["content"]["payload"]
    assert len(openai_server.requests) == asked


def test_the_deployers_ceiling_holds_against_magic_and_environment(openai_server, start_kernel):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL_MAX="ask"), widgets=False)
    refused = fe.execute("%approval auto")
    assert refused.status == "error" and "CODEACT_APPROVAL_MAX in the kernel's environment" in refused.stdout("stderr")
    assert fe.execute("%approval").stdout().startswith("approval: ask")
    assert fe.execute("%approval reject").status == "ok"  # stricter is always fine

    chosen = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL_MAX="ask", CODEACT_APPROVAL="auto"), widgets=False)
    cell = chosen.execute("do something")
    assert cell.status == "error" and "'auto' is not allowed here" in cell.reply["content"]["evalue"]
    # The refused start-up leaves the kernel at its defaults, still under the ceiling.
    assert chosen.execute("%approval auto").status == "error"
    assert chosen.execute("%approval").stdout().startswith("approval: ask")

    unreadable = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL_MAX="lenient"), widgets=False)
    assert "must be one of reject, ask, recorded, auto, not 'lenient'" in \
        unreadable.execute("do something").reply["content"]["evalue"]
    refused = unreadable.execute("%approval ask")
    assert refused.status == "error" and "could not be read" in refused.stdout("stderr")
    assert unreadable.execute("%approval").stdout().startswith("approval: reject")


def test_headless_auto_names_the_always_tool_it_cannot_ask_about(openai_server, start_kernel):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto"), widgets=False)
    fe.execute(TOOLS_CELL)
    openai_server.enqueue(program("print(call_tool('delete_everything'))"))
    cell = fe.execute("clean up", allow_stdin=False)
    assert cell.reply["content"]["ename"] == "ApprovalRequired"
    evalue = cell.reply["content"]["evalue"]
    assert "calls delete_everything, marked approval='always'" in evalue and "policy 'auto'" in evalue
    assert "Set CODEACT_APPROVAL=auto" not in evalue  # it is already set


def test_console_gets_a_y_n_prompt(openai_server, start_kernel):
    fe = start_kernel(kernel_env(openai_server), widgets=False)
    fe.execute(TOOLS_CELL)
    openai_server.enqueue(program("print('ran', call_tool('record', 1))"))
    prompts = []
    cell = fe.execute("run it", allow_stdin=True, stdin=lambda p: prompts.append(p) or "y")
    assert prompts == ["Run this program (it calls record)? [y/N/a: yes, and allow record for this session] "]
    assert cell.stdout() == "ran 1\n"
    # What a text-only frontend prints: every display's text/plain, none a placeholder.
    plain = [m["content"]["data"]["text/plain"] for m in cell.outputs()
             if m["msg_type"] in ("display_data", "update_display_data")]
    assert not any("<IPython" in text for text in plain)
    assert any("print('ran', call_tool('record', 1))" in text and "calls record" in text for text in plain)
    assert any(text.startswith("Approved at ") for text in plain)  # plain text, not Markdown source
    assert any("tokens" in text and "1 tool call" in text for text in plain)  # the footer
    # The console shows no display updates: the reply streams to it as text instead.
    assert "```python\nprint('ran', call_tool('record', 1))\n```" in cell.stdout("stderr")
    openai_server.enqueue(program("print('ran again')"))
    cell = fe.execute("run it again", allow_stdin=True, stdin=lambda p: "not now, too risky")
    assert cell.stdout() == "" and "reason: not now, too risky" in cell.markdown()


# --- model errors: one clear message each, the kernel alive afterwards ----------------------

@pytest.mark.parametrize(("script", "env", "ename", "words"), [
    (lambda s: s.enqueue_error(401, "bad key"), {}, "ModelAuthError", "OPENAI_API_KEY"),
    (lambda s: s.enqueue_error(404, "The model `scripted-model` does not exist", code="model_not_found"), {},
     "UnknownModel", "%model"),
    (lambda s: [s.enqueue_error(429, "slow down") for _ in range(4)], {}, "RateLimited", "after 4 attempts"),
    (lambda s: [s.enqueue_error(503, "overloaded") for _ in range(4)], {}, "ModelServerError", "503"),
    (lambda s: s.enqueue_hang(5), {}, "ModelTimeout", "timeout"),
    (lambda s: None, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "ModelUnreachable", "127.0.0.1:9"),
    (lambda s: None, {"OPENAI_BASE_URL": "https://api.example.invalid/v1", "OPENAI_API_KEY": ""}, "NoApiKey",
     "OPENAI_API_KEY"),
])
def test_model_errors_are_clear_and_leave_the_kernel_usable(openai_server, start_kernel, script, env, ename, words):
    fe = start_kernel(kernel_env(openai_server, **env), widgets=True)
    fe.execute("%model scripted-model --timeout 1")
    script(openai_server)
    cell = fe.execute("hello", allow_stdin=True, timeout=60)
    assert cell.status == "error"
    assert cell.reply["content"]["ename"] == ename, cell.reply["content"]
    assert words.lower() in cell.reply["content"]["evalue"].lower()
    assert TEST_API_KEY not in json.dumps(cell.messages, default=str)
    assert fe.execute("%%python\nprint('alive')").stdout() == "alive\n"
    openai_server.requests.clear()
    while openai_server.pending:
        openai_server._pop()


def test_429_then_success_is_retried(fresh, openai_server):
    openai_server.enqueue_error(429, "slow down", headers={"Retry-After": "0"})
    openai_server.enqueue("fine now")
    cell = fresh.execute("hello", allow_stdin=True)
    assert cell.status == "ok" and "fine now" in cell.markdown()


# --- interrupts: within a second, the kernel and its namespace intact -------------------------

def _interrupt_when(predicate, delay: float = 0.2):
    sent = []

    def on_message(fe: Frontend, msg: dict) -> None:
        if predicate(msg) and not sent:
            sent.append(time.monotonic())
            time.sleep(delay)
            sent[0] = time.monotonic()
            fe.interrupt()

    return on_message, sent


@pytest.mark.parametrize("phase", ["streaming", "approval", "running"])
def test_interrupt_in_each_phase(fresh, openai_server, phase):
    fresh.execute("%%python\nkeep_me = 'still here'")
    if phase == "streaming":
        openai_server.enqueue("thinking " * 200, chunk_size=4, delay=0.05)
        predicate = lambda m: m["msg_type"] == "update_display_data"  # noqa: E731
    elif phase == "approval":
        openai_server.enqueue(program("print('never')"))
        predicate = has_widget
    else:
        fresh.execute("%approval auto")
        openai_server.enqueue(program("print('started', flush=True)\nwhile True:\n    pass"))
        predicate = lambda m: m["msg_type"] == "stream"  # noqa: E731
    on_message, sent = _interrupt_when(predicate)
    cell = fresh.execute("go", on_message=on_message, allow_stdin=True, timeout=30)
    finished = time.monotonic()
    assert sent, "the phase was reached"
    assert cell.status == "error" and cell.reply["content"]["ename"] == "KeyboardInterrupt"
    assert finished - sent[0] < 1.0
    assert fresh.execute("%%python\nprint(keep_me)").stdout() == "still here\n"
    while openai_server.pending:
        openai_server._pop()


# --- transcripts, replay, the recorded policy --------------------------------------------

def test_record_then_replay_offline_under_the_recorded_policy(openai_server, start_kernel, tmp_path):
    transcript = tmp_path / "session.jsonl"
    recorder = start_kernel(kernel_env(openai_server, CODEACT_TRANSCRIPT=str(transcript), CODEACT_APPROVAL="auto"))
    recorder.execute(TOOLS_CELL)
    openai_server.enqueue(WEATHER)
    openai_server.enqueue(program("print('second', len(call_tool('get_weather', 'Oslo')))"))
    first = recorder.execute("Get the weather for Seattle and Amsterdam and compare them.", allow_stdin=True)
    second = recorder.execute("and Oslo?", allow_stdin=True)
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["Get the weather for Seattle and Amsterdam and compare them.",
                                              "and Oslo?"]
    assert records[0]["decision"] == "auto" and records[0]["ran_sha256"]
    assert records[0]["tokens"]["in"] > 0 and records[0]["sandbox"] == "wasmtime"
    assert TEST_API_KEY not in transcript.read_text()

    requests_before = len(openai_server.requests)
    replayer = start_kernel(kernel_env(openai_server, CODEACT_MODEL=f"replay:{transcript}",
                                       CODEACT_APPROVAL="recorded", CODEACT_TRANSCRIPT=str(tmp_path / "new.jsonl")),
                            widgets=False)
    replayer.execute(TOOLS_CELL)
    again = replayer.execute("Get the weather for Seattle and Amsterdam and compare them.", allow_stdin=False)
    assert again.status == "ok", again.error()
    assert again.stdout() == first.stdout()
    assert "recorded: ran unasked before" in again.markdown() and "replayed from session.jsonl" in again.markdown()
    assert replayer.execute("and Oslo?").stdout() == second.stdout()
    assert len(openai_server.requests) == requests_before, "replay makes no network call"
    miss = replayer.execute("something never asked")
    assert miss.status == "error" and miss.reply["content"]["ename"] == "ReplayMiss"
    assert "'something never asked'" in miss.reply["content"]["evalue"]


def test_a_kernel_killed_mid_cell_loses_no_earlier_turn(openai_server, start_kernel, tmp_path):
    """kill -9 during a run: every earlier turn stays in the transcript, and a torn last line (what a
    kill during the write itself leaves) is skipped with a warning by the kernel that replays it."""
    transcript = tmp_path / "session.jsonl"
    fe = start_kernel(kernel_env(openai_server, CODEACT_TRANSCRIPT=str(transcript), CODEACT_APPROVAL="auto"))
    for n in (1, 2):
        openai_server.enqueue(program(f"print({n})"))
        assert fe.execute(f"print {n}").stdout() == f"{n}\n"
    openai_server.enqueue(program("print('looping', flush=True)\nwhile True:\n    pass"))
    msg_id = fe.client.execute("loop for ever")
    while not (lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream")(
            fe.client.get_iopub_msg(timeout=60)):
        pass
    os.kill(fe.manager.provisioner.pid, signal.SIGKILL)
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["print 1", "print 2"]

    with open(transcript, "a") as f:
        f.write('{"prompt": "loop for ever", "repl')
    replayer = start_kernel(kernel_env(openai_server, CODEACT_MODEL=f"replay:{transcript}",
                                       CODEACT_APPROVAL="recorded", CODEACT_TRANSCRIPT=str(transcript)),
                            widgets=False)
    cell = replayer.execute("print 1", allow_stdin=False)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "1\n" and "line 3: skipped, not a whole record" in cell.stdout("stderr")
    lines = transcript.read_text().splitlines()
    assert json.loads(lines[-1])["prompt"] == "print 1"  # a line of its own, after the torn one


def test_recorded_policy_asks_for_a_program_never_approved(openai_server, start_kernel, tmp_path):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="recorded",
                                 CODEACT_TRANSCRIPT=str(tmp_path / "t.jsonl")), widgets=False)
    openai_server.enqueue(program("print('new program')"))
    cell = fe.execute("something new", allow_stdin=False)
    assert cell.status == "error" and cell.reply["content"]["ename"] == "ApprovalRequired"
    assert "the approval policy is 'recorded' and no person approved this exact program" in cell.reply["content"]["evalue"]
    assert "transcript" in fe.execute("%transcript").stdout()


def test_recorded_cannot_be_outwitted_by_a_program_that_ran_unasked(openai_server, start_kernel, tmp_path):
    """Under `recorded` a program that `auto` ran before runs again with auto's guard: only a
    person's approval, now or recorded, lets a tool marked approval='always' run."""
    transcript = tmp_path / "t.jsonl"
    bypass = program("try:\n    print(globals()['call_' + 'tool']('delete_everything'))\n"
                     "except ToolError as e:\n    print(e)")
    for policy in ("auto", "recorded"):
        fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL=policy, CODEACT_TRANSCRIPT=str(transcript)),
                          widgets=False)
        fe.execute(TOOLS_CELL)
        openai_server.enqueue(bypass)
        cell = fe.execute("clean up", allow_stdin=False)
        assert cell.status == "ok", cell.error()
        assert "refused: delete_everything is marked approval='always'" in cell.stdout()
        assert "deleted" not in cell.stdout()
    assert "recorded: ran unasked before" in cell.markdown()
    assert "same text ran unasked before" in cell.stdout()


def test_an_unwritable_transcript_is_reported_not_fatal(openai_server, start_kernel, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a folder should be")
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto",
                                 CODEACT_TRANSCRIPT=str(blocked / "t.jsonl")))
    openai_server.enqueue(program("print('ran')"))
    cell = fe.execute("run", allow_stdin=True)
    assert cell.status == "ok" and cell.stdout() == "ran\n"
    assert "transcript not written" in cell.stdout("stderr")


@pytest.mark.parametrize(("cell", "is_magic"), [
    ("%model x", True), ("%sandbox\n%tools", True), ("%%timeit\n1", True),
    ("%50 of the users are new: why?", False), ("!ls", False), ("What is 50%?", False),
])
def test_which_cells_are_magics(cell, is_magic):
    from codeact_kernel.kernel import CodeActKernel

    assert CodeActKernel._is_magic(cell) is is_magic


# --- the same session on each sandbox backend -------------------------------------------

BACKEND_ENV = {
    "wasmtime": {"CODEACT_SANDBOX": "wasmtime"},
    "wasmtime-worker": {"CODEACT_SANDBOX": "wasmtime", "CODEACT_SANDBOX_PROCESS": "worker"},
    "hyperlight": {"CODEACT_SANDBOX": "hyperlight"},
    # The scientific guest, through the router the kernel uses: the sandbox announced is the
    # configured one (wasmtime), and every program runs in the scientific guest.
    "science": {"CODEACT_SANDBOX": "wasmtime", "CODEACT_GUEST": "science"},
    "science-worker": {"CODEACT_SANDBOX": "wasmtime", "CODEACT_SANDBOX_PROCESS": "worker", "CODEACT_GUEST": "science"},
}


def test_prompt_cells_on_each_backend(backend, openai_server, start_kernel, tmp_path):
    """Approve, a runaway stopped at its deadline and repaired, an interrupt, then a program calling
    a notebook tool and an MCP server's: on every backend. One kernel for all of it, because in
    CI's emulated VM each Hyperlight kernel takes minutes to start."""
    from tests.test_mcp import FX, write_config

    config = write_config(tmp_path / "codeact_mcp.json", fx=dict(FX, approval="auto"))
    fe = start_kernel(kernel_env(openai_server, CODEACT_MCP_CONFIG=config, **BACKEND_ENV[backend]))
    assert fe.execute(TOOLS_CELL).status == "ok"
    openai_server.enqueue(WEATHER)
    cell = fe.execute("Compare Seattle and Amsterdam.", on_message=clicking(approve), allow_stdin=True,
                      timeout=300)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "Seattle 12.5\nAmsterdam 9.0\n"
    assert f"sandbox: **{backend.removesuffix('-worker').replace('science', 'wasmtime')}**" in cell.markdown()

    fe.execute("%approval auto")
    fe.execute(f"%sandbox timeout {SLOWDOWN:g}")  # 1 s, or in an emulated VM long enough for a run to start
    openai_server.enqueue(program("while True:\n    pass"))
    openai_server.enqueue(program("print('fixed')"))
    cell = fe.execute("Loop for ever.", timeout=300)
    assert cell.status == "ok", cell.error()
    assert "**The program failed**" in cell.markdown() and "TimeoutError" in cell.markdown()
    assert cell.stdout() == "fixed\n"

    fe.execute("%sandbox timeout 30")
    fe.execute("%%python\nkeep_me = 'still here'")
    openai_server.enqueue(program("print('started', flush=True)\nwhile True:\n    pass"))
    on_message, sent = _interrupt_when(lambda m: m["msg_type"] == "stream")
    cell = fe.execute("go", on_message=on_message, timeout=300)
    assert sent and cell.status == "error" and cell.reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - sent[0] < 5.0
    assert fe.execute("%%python\nprint(keep_me)").stdout() == "still here\n"
    openai_server.enqueue(program("print(call_tool('get_weather', 'Seattle')['temperature_c'], "
                                  "call_tool('lookup', 'Oslo')['temperature_c'], call_tool('add_note', 'n'))"))
    cell = fe.execute("Seattle, Oslo, and a note.", timeout=300)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "12.5 12.5 added n\n"
    if backend.startswith("science"):  # Hyperlight cannot host it: the footer says where it ran
        assert "wasmtime (scientific guest)" in cell.markdown()
