"""The extension's protocol, through a real kernel: the test frontend opens the `codeact` comm
as the notebook extension does, and decides on the card the kernel displays."""

from __future__ import annotations

import json

import pytest

from codeact_kernel.protocol import APPROVAL_MIME, VERSION
from codeact_kernel.testing import Frontend
from tests.conftest import kernel_env

TOOLS = '''%%python
@tool
def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temperature_c": 12.5}

@tool(approval="always")
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return "sent"
'''
PROGRAM = "print(call_tool('get_weather', 'Seattle')['temperature_c'])"


def reply(code: str) -> str:
    return f"Checking.\n```python\n{code}\n```"


@pytest.fixture
def connected(scripted_openai, tmp_path):
    """A kernel with a widget frontend that also runs the extension, tools defined."""
    frontend = Frontend(kernel_env(scripted_openai, CODEACT_TRANSCRIPT=str(tmp_path / "t.jsonl")))
    frontend.open_extension()
    assert frontend.wait_extension("welcome")["accepted"] is True
    assert frontend.execute(TOOLS).status == "ok"
    yield frontend
    frontend.close()


def deciding(action: str, program: str = "", reason: str = ""):
    """An on_message hook: when the card appears, decide on it as a person in the extension would."""
    def on_message(frontend: Frontend, msg: dict) -> None:
        card = msg["content"].get("data", {}).get(APPROVAL_MIME)
        if msg["msg_type"] == "display_data" and card and card["decision"] is None:
            frontend.send_extension("decide", request=card["request"], action=action,
                                    program=program or card["program"], reason=reason)
    return on_message


def cards(cell) -> list[dict]:
    return [m["content"]["data"][APPROVAL_MIME] for m in cell.outputs()
            if APPROVAL_MIME in m["content"].get("data", {})]


def test_state_lists_settings_and_tools_and_follows_each_cell(connected):
    state = connected.wait_extension("state", after=len(connected.extension_messages) - 1)
    assert state["settings"]["model"] == "scripted-model" and state["settings"]["approval"] == "ask"
    tools = {tool["name"]: tool for tool in state["tools"]}
    assert tools["get_weather"]["signature"] == "(city: str) -> dict"
    assert tools["get_weather"]["doc"] == "Current weather for a city." and not tools["get_weather"]["always"]
    assert tools["send_email"]["always"] is True
    assert state["phase"] == "idle" and state["pending"] is None


def test_the_card_shows_the_program_once_and_approving_runs_it(connected, scripted_openai, tmp_path):
    scripted_openai.enqueue(reply(PROGRAM))
    seen = len(connected.extension_messages)
    cell = connected.execute("Weather in Seattle?", allow_stdin=True, on_message=deciding("approve"))
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "12.5\n"
    shown, decided = cards(cell)
    assert shown["program"] == PROGRAM and shown["tools"] == [{"name": "get_weather", "always": False}]
    assert shown["offer"] == ["get_weather"] and shown["decision"] is None
    assert decided["request"] == shown["request"]
    assert decided["decision"]["kind"] == "approved" and decided["decision"]["by"] == "you"
    # Only the card carries the program: no separate Markdown block, no ipywidgets controls.
    markdown_only = [m for m in cell.outputs("display_data") if APPROVAL_MIME not in m["content"]["data"]]
    assert not any(PROGRAM in m["content"]["data"].get("text/markdown", "") for m in markdown_only)
    assert connected.widget_state == {}
    # Every other frontend reads the same record as Markdown.
    update = [m for m in cell.outputs("update_display_data") if APPROVAL_MIME in m["content"]["data"]][-1]
    assert "**Approved** at" in update["content"]["data"]["text/markdown"]
    record = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[-1])
    assert record["approver"] == "extension" and record["decision"] == "approved"
    # The panel saw the phases and the run.
    phases = [m["phase"] for m in connected.extension_messages[seen:] if m["kind"] == "state"]
    assert "asking-model" in phases and "awaiting-approval" in phases and "running" in phases
    assert phases[-1] == "idle"
    last = [m for m in connected.extension_messages if m["kind"] == "state"][-1]
    assert last["runs"][-1]["prompt"] == "Weather in Seattle?" and last["runs"][-1]["by"] == "extension"
    assert last["runs"][-1]["tool_calls"] == 1


def test_an_edited_program_runs_and_is_recorded_as_edited(connected, scripted_openai, tmp_path):
    scripted_openai.enqueue(reply(PROGRAM))
    edited = "print('edited', call_tool('get_weather', 'Oslo')['city'])"
    cell = connected.execute("Weather?", allow_stdin=True, on_message=deciding("approve", program=edited))
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "edited Oslo\n"
    decision = cards(cell)[-1]["decision"]
    assert decision["kind"] == "edited" and decision["program"] == edited
    record = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[-1])
    assert record["edited"] is True and record["ran"] == edited


def test_a_rejection_reason_reaches_the_models_next_request(connected, scripted_openai):
    scripted_openai.enqueue(reply(PROGRAM))
    cell = connected.execute("Weather?", allow_stdin=True,
                             on_message=deciding("reject", reason="use Celsius and Oslo instead"))
    assert cell.status == "ok" and cell.stdout() == ""
    assert cards(cell)[-1]["decision"]["kind"] == "rejected"
    scripted_openai.enqueue("Understood.")
    assert connected.execute("Try again", allow_stdin=True).status == "ok"
    sent = json.dumps(scripted_openai.requests[-1].body["messages"])
    assert "use Celsius and Oslo instead" in sent


def test_a_stale_decision_is_ignored(connected, scripted_openai):
    scripted_openai.enqueue(reply(PROGRAM))

    def stale_then_real(frontend: Frontend, msg: dict) -> None:
        card = msg["content"].get("data", {}).get(APPROVAL_MIME)
        if msg["msg_type"] == "display_data" and card and card["decision"] is None:
            frontend.send_extension("decide", request="an-old-card", action="approve", program="print('stale')",
                                    reason="")
            frontend.send_extension("decide", request=card["request"], action="reject", program=card["program"],
                                    reason="no")
    cell = connected.execute("Weather?", allow_stdin=True, on_message=stale_then_real)
    assert cell.stdout() == "" and cards(cell)[-1]["decision"]["kind"] == "rejected"


def test_the_panel_changes_the_policy_through_the_magic(connected):
    seen = len(connected.extension_messages)
    connected.send_extension("set", name="approval", value="auto")
    result = connected.wait_extension("result", after=seen)
    assert result["ok"] and result["message"].startswith("approval: auto")
    assert connected.execute("%approval").stdout().startswith("approval: auto")
    seen = len(connected.extension_messages)
    connected.send_extension("set", name="approval", value="sometimes")
    result = connected.wait_extension("result", after=seen)
    assert not result["ok"] and "approval must be one of" in result["message"]
    seen = len(connected.extension_messages)
    connected.send_extension("set", name="transcript", value="/tmp/elsewhere")
    assert not connected.wait_extension("result", after=seen)["ok"]


def test_an_extension_of_another_version_is_refused_and_widgets_approve(scripted_openai):
    frontend = Frontend(kernel_env(scripted_openai))
    try:
        frontend.open_extension(version=VERSION + 1)
        welcome = frontend.wait_extension("welcome")
        assert welcome["accepted"] is False and "falls back to ipywidgets" in welcome["reason"]
        scripted_openai.enqueue(reply("print('via widgets')"))

        def click_approve(fe: Frontend, msg: dict) -> None:
            if msg["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]:
                fe.click(fe.button("Approve"))
        cell = frontend.execute("Say it", allow_stdin=True, on_message=click_approve)
        assert cell.status == "ok" and cell.stdout() == "via widgets\n"
        assert not cards(cell)
    finally:
        frontend.close()
