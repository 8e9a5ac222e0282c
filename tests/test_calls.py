"""Approval inside a running program: a tool marked approval="each-call" asks at every call.

The kernel tests run a real kernel with the scripted server; the person answers through the
widget's comm messages (as JupyterLab would), the extension's comm, or stdin (as jupyter
console would), or is absent (as nbclient is).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from codeact_kernel import calls
from codeact_kernel.protocol import CALL_MIME
from codeact_kernel.views.text import from_answer
from codeact_kernel.testing import Frontend
from tests.conftest import SLOWDOWN, kernel_env

TOOLS = '''%%python
sent = []

@tool(approval="each-call")
def send_email(to: str, subject: str, body: str = "") -> str:
    """Send an email."""
    sent.append(to)
    return f"sent to {to}"
'''
LOOP = """print("start")
for to in ["ann@example.com", "bob@example.com", "cy@example.com"]:
    try:
        print(call_tool("send_email", to=to, subject="Hello"))
    except ToolError as exc:
        print("not sent:", exc)
print("end")"""


def reply(code: str) -> str:
    return f"Sending them.\n```python\n{code}\n```"


# -- the parts -------------------------------------------------------------------------------

def test_a_request_shows_its_arguments_with_long_values_collapsed():
    request = calls.Request("send_email", (), {"to": "a@example.com", "body": "x" * 5000}, 7)
    assert request.describe().startswith("send_email(to='a@example.com', body='xxx")
    assert "characters left out" in request.describe() and len(request.describe()) < 200
    shown = json.loads(request.pretty())
    assert shown["to"] == "a@example.com" and "4,800 characters" in shown["body"]
    assert request.where() == "line 7"
    # the same arguments, in any order, are the same call for `recorded`
    assert request.sha256 == calls.Request("send_email", (), {"body": "x" * 5000, "to": "a@example.com"}, 1).sha256


def test_console_answers():
    assert from_answer("y") == ("allow", None)
    assert from_answer(" r ") == ("allow-run", None)
    assert from_answer("") == ("deny", None)
    assert from_answer("not to the CEO") == ("deny", "not to the CEO")


def test_the_gate_asks_the_loop_and_applies_what_it_hears():
    """From the program's thread to the cell's loop and back; allow-run covers later calls;
    a recorded decision is applied without asking; closing denies whatever still waits."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        recorded = {("send", calls.Request("send", (), {"to": "old"}, None).sha256): ("deny", "no more")}
        gate = asyncio.run_coroutine_threadsafe(_make_gate(recorded), loop).result()
        done: list[str] = []
        tools = gate.wrap({"send": lambda to: done.append(to) or to, "plain": lambda: "p"}, {"send"})
        assert tools["plain"]() == "p"  # not asked about

        answers = iter([calls.Decision("deny", "person", "not Bob"), calls.Decision("allow-run", "person")])

        async def answer_all() -> list[str]:
            seen = []
            for _ in range(2):
                request, future = await gate.questions()
                seen.append(request.kwargs["to"])
                future.set_result(next(answers))
            return seen

        asked = asyncio.run_coroutine_threadsafe(answer_all(), loop)
        with pytest.raises(PermissionError, match="the user denied this call: no more"):
            tools["send"](to="old")  # decided before: not asked
        with pytest.raises(PermissionError, match="the user denied this call: not Bob"):
            tools["send"](to="bob")
        assert tools["send"](to="ann") == "ann"
        assert tools["send"](to="cy") == "cy"  # allowed for the run: not asked
        assert asked.result(timeout=5) == ["bob", "ann"]
        assert done == ["ann", "cy"]
        assert [(a.decision.action, a.decision.by) for a in gate.asked] == [
            ("deny", "recorded"), ("deny", "person"), ("allow-run", "person"), ("allow", "run")]
        assert gate.asked[1].record().denial.startswith("send(to='bob') at a line the program did not say: the user")

        gate.close(calls.Decision("deny", "interrupt"))
        with pytest.raises(PermissionError, match="interrupted"):
            gate.wrap({"mail": lambda to: to}, {"mail"})["mail"](to="dan")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


async def _make_gate(recorded):  # noqa: ANN001, ANN202
    return calls.Gate(asyncio.get_running_loop(), recorded)


# -- through the kernel ---------------------------------------------------------------------------

def _call_widgets(answers: list[tuple[str, str]], shown: list[str]):
    """An on_message that answers each call's widget in turn: (button, reason); `shown`
    collects the arguments each one showed."""
    pending = list(answers)

    def on_message(fe: Frontend, msg: dict) -> None:
        data = msg["content"].get("data", {})
        if msg["msg_type"] != "display_data" or "application/vnd.jupyter.widget-view+json" not in data:
            return
        pre = next(s["value"] for s in reversed(fe.widget_state.values())
                   if s.get("_model_name") == "HTMLModel" and s.get("value", "").startswith("<pre>"))
        shown.append(pre)
        button, reason = pending.pop(0)
        if reason:
            text = next(c for c, s in reversed(fe.widget_state.items()) if s.get("_model_name") == "TextModel")
            fe.set_value(text, reason)
        fe.click(fe.button(button))

    return on_message


@pytest.fixture
def kernel(openai_server, start_kernel, tmp_path, request):
    """A kernel under `auto` (programs run unasked; the calls ask), the tool defined."""
    env = {"CODEACT_APPROVAL": "auto", "CODEACT_TRANSCRIPT": str(tmp_path / "t.jsonl"),
           **getattr(request, "param", {})}
    fe = start_kernel(kernel_env(openai_server, **env))
    assert fe.execute(TOOLS).status == "ok"
    fe.transcript = tmp_path / "t.jsonl"
    return fe


def _records(fe: Frontend) -> list[dict]:
    return [json.loads(line) for line in fe.transcript.read_text().splitlines()]


@pytest.mark.parametrize("kernel", [{}, {"CODEACT_SANDBOX_PROCESS": "worker"}], ids=["inline", "worker"],
                         indirect=True)
def test_three_calls_three_questions_allow_deny_allow(kernel, openai_server):
    openai_server.enqueue(reply(LOOP))
    shown: list[str] = []
    on_message = _call_widgets([("Allow", ""), ("Deny", "not Bob, he is on leave"), ("Allow", "")], shown)
    cell = kernel.execute("Email the team.", on_message=on_message, timeout=120)
    assert cell.status == "ok", cell.error()
    assert [("ann" in s, "bob" in s, "cy" in s) for s in shown] == [
        (True, False, False), (False, True, False), (False, False, True)]
    assert all("Hello" in s for s in shown)
    assert cell.stdout() == ("start\nsent to ann@example.com\n"
                             "not sent: send_email: PermissionError: the user denied this call: not Bob, he is on leave\n"
                             "sent to cy@example.com\nend\n")
    assert kernel.execute("%%python\nprint(sent)").stdout() == "['ann@example.com', 'cy@example.com']\n"
    # Each call's record in the cell, and in the transcript.
    markdown = cell.markdown()
    assert markdown.count("**Allowed by you**") == 2 and markdown.count("**Denied by you**") == 1
    assert "`send_email(to='bob@example.com', subject='Hello')`, line 4 · reason: not Bob" in markdown
    [record] = _records(kernel)
    assert [(c["tool"], c["decision"], c["by"], c["line"]) for c in record["calls"]] == [
        ("send_email", "allow", "person", 4), ("send_email", "deny", "person", 4), ("send_email", "allow", "person", 4)]
    assert "bob@example.com" in record["calls"][1]["args"] and len(record["calls"][1]["args_sha256"]) == 64
    assert record["calls"][1]["reason"] == "not Bob, he is on leave" and record["calls"][0]["via"] == "widgets"
    # The model reads the denial next turn.
    openai_server.enqueue("Noted.")
    kernel.execute("What happened?")
    assert "not Bob, he is on leave" in json.dumps(openai_server.requests[-1].body["messages"][-1])


def test_allow_for_the_run_asks_once(kernel, openai_server):
    openai_server.enqueue(reply(LOOP))
    shown: list[str] = []
    cell = kernel.execute("Email the team.", on_message=_call_widgets([("Allow send_email for this run", "")], shown),
                          timeout=120)
    assert cell.status == "ok", cell.error()
    assert len(shown) == 1 and cell.stdout().count("sent to") == 3
    [record] = _records(kernel)
    assert [(c["decision"], c["by"]) for c in record["calls"]] == [("allow-run", "person"), ("allow", "run"),
                                                                   ("allow", "run")]


def test_a_person_s_time_does_not_count_against_the_timeout(kernel, openai_server):
    kernel.execute(f"%sandbox timeout {SLOWDOWN:g}")
    openai_server.enqueue(reply("print(call_tool('send_email', to='ann@example.com', subject='Hi'))\nprint('after')"))

    def slow_person(fe: Frontend, msg: dict) -> None:
        if msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]:
            time.sleep(2.0 * SLOWDOWN)  # twice the program's whole timeout
            fe.click(fe.button("Allow"))

    cell = kernel.execute("Email Ann.", on_message=slow_person, timeout=120)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "sent to ann@example.com\nafter\n"
    [record] = _records(kernel)
    assert record["seconds"]["waiting_for_you"] >= 2.0 * SLOWDOWN > record["seconds"]["sandbox"]


def test_an_interrupt_during_the_pause_stops_the_program_cleanly(kernel, openai_server):
    kernel.execute("%%python\nkeep_me = 'still here'")
    openai_server.enqueue(reply("print('before', flush=True)\ncall_tool('send_email', to='ann@example.com', "
                                "subject='Hi')\nprint('never')"))
    interrupted = []

    def interrupt(fe: Frontend, msg: dict) -> None:
        if msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]:
            interrupted.append(time.monotonic())
            fe.interrupt()

    cell = kernel.execute("Email Ann.", on_message=interrupt, timeout=60)
    assert interrupted and time.monotonic() - interrupted[0] < 5.0 * SLOWDOWN
    assert cell.status == "error" and cell.reply["content"]["ename"] == "KeyboardInterrupt"
    assert cell.stdout() == "before\n"
    assert kernel.execute("%%python\nprint(keep_me, sent)").stdout() == "still here []\n"
    # and the next program runs, asking again
    openai_server.enqueue(reply("print(call_tool('send_email', to='ann@example.com', subject='Hi'))"))
    cell = kernel.execute("Again.", on_message=_call_widgets([("Allow", "")], []), timeout=60)
    assert cell.stdout() == "sent to ann@example.com\n"


def test_headless_nobody_can_answer_so_the_call_is_denied_and_named(openai_server, start_kernel, tmp_path):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto", CODEACT_TRANSCRIPT=str(tmp_path / "t.jsonl")),
                      widgets=False)
    fe.execute(TOOLS)
    openai_server.enqueue(reply(LOOP))
    cell = fe.execute("Email the team.")  # no stdin, no widgets: nbclient, nbval, papermill
    assert cell.status == "ok", cell.error()
    assert cell.stdout().count("not sent: send_email: PermissionError: the call needs a person's approval and "
                               "no one can answer here (a headless run") == 3
    assert cell.markdown().count("**Denied: nobody could be asked**") == 3
    assert fe.execute("%%python\nprint(sent)").stdout() == "[]\n"
    record = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert {c["by"] for c in record["calls"]} == {"nobody"}


def test_at_the_console_the_prompt_shows_the_call(openai_server, start_kernel):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto"), widgets=False)
    fe.execute(TOOLS)
    openai_server.enqueue(reply(LOOP))
    prompts: list[str] = []
    answers = iter(["y", "no, Bob is on leave", "r"])

    def person(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    cell = fe.execute("Email the team.", allow_stdin=True, stdin=person)
    assert cell.status == "ok", cell.error()
    assert len(prompts) == 3
    assert "send_email(to='bob@example.com', subject='Hello') at line 4" in prompts[1]
    assert "[y/N/r" in prompts[0]
    assert cell.stdout().count("sent to") == 2 and "Bob is on leave" in cell.stdout()


def test_the_extension_s_card_decides_calls(kernel, openai_server):
    kernel.open_extension()
    assert kernel.wait_extension("welcome")["accepted"] is True
    openai_server.enqueue(reply(LOOP))
    cards: list[dict] = []
    actions = iter([("allow", ""), ("deny", "not Bob"), ("allow-run", "")])

    def person(fe: Frontend, msg: dict) -> None:
        card = msg["content"].get("data", {}).get(CALL_MIME)
        if msg["msg_type"] == "display_data" and card and card["decision"] is None:
            cards.append(card)
            action, reason = next(actions)
            fe.send_extension("decide", request=card["request"], action=action, program="", reason=reason)

    cell = kernel.execute("Email the team.", on_message=person, timeout=120)
    assert cell.status == "ok", cell.error()
    assert [c["call"] for c in cards] == [f"send_email(to='{n}@example.com', subject='Hello')" for n in ("ann", "bob", "cy")]
    assert all(c["line"] == 4 and '"to"' in c["arguments"] for c in cards)
    decided = [m["content"]["data"][CALL_MIME]["decision"] for m in cell.outputs("update_display_data")
               if CALL_MIME in m["content"]["data"]]
    assert [d["label"] for d in decided] == ["Allowed by you", "Denied by you", "Allowed for the rest of this run by you"]
    assert cell.stdout().count("sent to") == 2
    # The panel's runs list the calls.
    state = kernel.wait_extension("state", after=len(kernel.extension_messages) - 1)
    assert [c["decision"] for c in state["runs"][-1]["calls"]] == ["allow", "deny", "allow-run"]


def test_recorded_replays_a_person_s_decisions_on_the_same_program_and_arguments(kernel, openai_server, start_kernel):
    openai_server.enqueue(reply(LOOP))
    kernel.execute("Email the team.", timeout=120,
                   on_message=_call_widgets([("Allow", ""), ("Deny", "not Bob"), ("Allow", "")], []))
    # Headless, under recorded: the same program, the same calls, decided as before without asking.
    replayer = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="recorded",
                                       CODEACT_TRANSCRIPT=str(kernel.transcript)), widgets=False)
    replayer.execute(TOOLS)
    openai_server.enqueue(reply(LOOP))
    cell = replayer.execute("Email the team.")
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == ("start\nsent to ann@example.com\n"
                             "not sent: send_email: PermissionError: the user denied this call: not Bob\n"
                             "sent to cy@example.com\nend\n")
    assert cell.markdown().count("as you decided before (recorded)") == 3
    replayed = _records(kernel)[-1]
    assert [(c["decision"], c["by"]) for c in replayed["calls"]] == [("allow", "recorded"), ("deny", "recorded"),
                                                                     ("allow", "recorded")]
