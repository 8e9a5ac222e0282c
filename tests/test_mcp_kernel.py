"""MCP servers' tools through a real kernel: the scripted model writes programs that call them.

The servers are real (tests/mcp_fixture.py, written with the official SDK), started by the
kernel from a configuration file or `%mcp add`; the person acts through the widgets' comm
messages, as JupyterLab would, or is absent, as nbclient is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from codeact_kernel.testing import Frontend
from tests.conftest import SLOWDOWN, kernel_env
from tests.test_kernel import approve, clicking, has_widget, program
from tests.test_mcp import FIXTURE, FX, START, alive, gone, hanging_servers, parent_of, write_config


def env(server, **settings: str) -> dict:
    """A test kernel's environment, on wasmtime (what is tested here does not depend on the backend,
    and `auto` would probe Hyperlight in every new kernel) unless the test says otherwise."""
    return kernel_env(server, **{"CODEACT_SANDBOX": "wasmtime", **settings})


@pytest.fixture(scope="module")
def lab(openai_server, tmp_path_factory):
    """A kernel as JupyterLab sees it, with the fixture server `fx` from a configuration file."""
    folder = tmp_path_factory.mktemp("mcp-lab")
    config = write_config(folder / "codeact_mcp.json", fx=FX)
    fe = Frontend(env(openai_server, CODEACT_MCP_CONFIG=config,
                             CODEACT_TRANSCRIPT=str(folder / "t.jsonl")), slowdown=SLOWDOWN)
    fe.transcript = folder / "t.jsonl"
    yield fe
    fe.close()


@pytest.fixture
def fresh(lab, openai_server):
    lab.execute("%forget")
    lab.execute("%approval auto")
    openai_server.requests.clear()
    yield lab
    assert openai_server.pending == 0, "a scripted reply was not used"


def records(fe: Frontend) -> list[dict]:
    return [json.loads(line) for line in fe.transcript.read_text().splitlines()]


def test_a_configured_server_starts_with_the_kernel_and_the_model_sees_its_tools(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('lookup', 'Oslo'))\nprint(call_tool('list-notes'))"))
    cell = fresh.execute("Weather in Oslo?", timeout=120)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == "{'city': 'Oslo', 'temperature_c': 12.5}\n[]\n"
    system = openai_server.requests[-1].body["messages"][0]["content"]
    assert "lookup(city: str, unit: str = 'C') -> dict  # The weather in a city." in system
    assert "add_note(title: str, body: str = '') -> str  # Add a note" in system
    assert "list-notes() -> list[str]" in system and "weird" not in system
    assert records(fresh)[-1]["mcp_calls"][0] == {"server": "fx", "tool": "lookup", "ok": True,
                                                  "seconds": records(fresh)[-1]["mcp_calls"][0]["seconds"]}
    assert [c["tool"] for c in records(fresh)[-1]["mcp_calls"]] == ["lookup", "list-notes"]


def test_a_server_sees_only_the_environment_it_is_given(fresh, openai_server):
    openai_server.enqueue(program("print(repr(call_tool('getenv', 'OPENAI_API_KEY')), "
                                  "call_tool('getenv', 'PATH') != '')"))
    assert fresh.execute("Environment?").stdout() == "'' True\n"  # the kernel has a key; the server does not


def test_tools_and_mcp_list_them(fresh):
    tools = fresh.execute("%tools").stdout()
    assert "lookup(city: str, unit: str = 'C') -> dict  # The weather in a city.  [MCP fx · ordinary]" in tools
    assert "add_note(title: str, body: str = '') -> str  # Add a note" in tools and "[MCP fx · always asks]" in tools
    listing = fresh.execute("%mcp").stdout()
    assert f"fx: ready, 12 tools (stdio: {sys.executable} {FIXTURE})" in listing
    assert "approval always: a program that may call one needs a person; tools annotated read-only are ordinary" \
        in listing
    assert "  delete_note(title: str) -> str  [always asks]" in listing
    assert "  left out: weird: it has a parameter named '__args__'" in listing
    log = fresh.execute("%mcp log fx").stdout()
    assert "fixture server ready (stdio)" in log and "ready in" in log


def test_a_tool_not_annotated_read_only_asks_a_person_even_under_auto(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('add_note', 'groceries', body='milk'))"))
    seen = []

    def reject(fe: Frontend) -> None:
        seen.append(True)
        fe.click(fe.button("Reject"))

    cell = fresh.execute("Note: buy milk", on_message=clicking(reject))
    assert seen and "**Rejected**" in cell.markdown() and cell.stdout() == ""
    openai_server.enqueue(program("print(call_tool('add_note', 'groceries', body='milk'))"))
    cell = fresh.execute("Note: buy milk, really", on_message=clicking(approve))
    assert cell.stdout() == "added groceries\n"
    # however a program reaches it, the host's guard refuses it where no person approved
    openai_server.enqueue(program("try:\n    globals()['call_' + 'tool']('delete_note', 'groceries')\n"
                                  "except ToolError as e:\n    print(e)"))
    cell = fresh.execute("clean up")
    assert cell.stdout().startswith("delete_note: PermissionError: refused: delete_note is marked approval='always' "
                                    "and no person approved this program")


def test_the_users_setting_wins_over_the_servers_annotations(fresh, openai_server):
    try:
        listing = fresh.execute("%mcp approval fx lookup always").stdout()
        assert "; lookup: always" in listing and "  lookup(city: str, unit: str = 'C') -> dict  [always asks]" in listing
        openai_server.enqueue(program("print(call_tool('lookup', 'Oslo')['city'])"))
        seen = []
        cell = fresh.execute("Oslo?", on_message=clicking(lambda fe: (seen.append(1), fe.click(fe.button("Approve")))))
        assert seen and cell.stdout() == "Oslo\n"

        fresh.execute("%mcp approval fx add_note each-call")
        openai_server.enqueue(program("print(call_tool('add_note', 'a'))\n"
                                      "try:\n    call_tool('add_note', 'b')\nexcept ToolError as e:\n    print(e)"))
        answers = iter(["Allow", "Deny"])
        shown = []

        def person(fe: Frontend, msg: dict) -> None:
            if has_widget(msg):
                shown.append(True)
                fe.click(fe.button(next(answers)))

        cell = fresh.execute("Two notes", on_message=person)
        assert len(shown) == 2
        assert cell.stdout() == "added a\nadd_note: PermissionError: the user denied this call\n"

        fresh.execute("%mcp approval fx auto")  # a server trusted whole: every tool ordinary
        openai_server.enqueue(program("print(call_tool('delete_note', 'a'))"))
        assert fresh.execute("Delete a").stdout() == "deleted a\n"
    finally:
        fresh.execute("%mcp approval fx always")
        fresh.execute("%mcp approval fx lookup auto")
        fresh.execute("%mcp approval fx add_note always")


def test_results_errors_and_images_in_a_program(fresh, openai_server):
    openai_server.enqueue(program(
        "print(call_tool('shout', text='hi'))\n"
        "print(call_tool('two_blocks', 'ab'))\n"
        "print(call_tool('chart'))\n"
        "for bad in [lambda: call_tool('fail', 'no such note'), lambda: call_tool('lookup', town='Oslo'),\n"
        "            lambda: call_tool('big', 2_000_000)]:\n"
        "    try:\n        bad()\n    except ToolError as e:\n        print(e)"))
    cell = fresh.execute("Try things", timeout=120)
    assert cell.status == "ok", cell.error()
    out = cell.stdout().splitlines()
    assert out[:3] == ["HI", "['ab', 'ba']", "[image/png image, 73 bytes: shown in the cell after the program ends]"]
    assert out[3] == "fail: MCPToolError: Error executing tool fail: no such note (from MCP server fx)"
    assert out[4].startswith("lookup: TypeError: lookup has no parameter 'town'; lookup(city: str, unit: str = 'C')")
    assert out[5].startswith("big: MCPToolError: the result is 2,000,002 characters of JSON, over the 1,000,000")
    images = [m for m in cell.outputs("display_data") if "image/png" in m["content"]["data"]]
    assert len(images) == 1 and "image from `chart` (MCP server fx)" in cell.markdown()
    assert [c["ok"] for c in records(fresh)[-1]["mcp_calls"]] == [True, True, True, False, False]


def test_names_that_clash_and_a_streamable_http_server(fresh, openai_server, tmp_path):
    process = subprocess.Popen([sys.executable, FIXTURE, "http", "--token", "t0k"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{int(process.stdout.readline())}/mcp"  # type: ignore[union-attr]
    try:
        fresh.execute("%%python\n@tool\ndef shout(text: str) -> str:\n    \"\"\"Mine.\"\"\"\n    return text + '!'")
        tools = fresh.execute("%tools").stdout()
        assert "shout(text: str) -> str  # Mine." in tools
        assert "fx.shout(text: str) -> str  # The text in capitals.  [MCP fx tool shout · ordinary]" in tools
        added = fresh.execute(f"%mcp add web {url} --header 'Authorization: Bearer t0k' --approval auto "
                              f"--timeout {START}")
        assert added.status == "ok", added.stdout("stderr")
        assert "web: ready, 12 tools (http: " in added.stdout() and "  web.lookup(city: str" in added.stdout()
        names = fresh.execute("%tools").stdout()
        assert "fx.lookup(" in names and "web.lookup(" in names and "\nlookup(" not in names
        openai_server.enqueue(program("print(call_tool('shout', 'a'), call_tool('fx.shout', 'b'), "
                                      "call_tool('web.shout', 'c'), call_tool('web.add_note', 'x'))"))
        cell = fresh.execute("Shout", timeout=120)
        assert cell.stdout() == "a! B C added x\n"
        assert [(c["server"], c["tool"]) for c in records(fresh)[-1]["mcp_calls"]] == [
            ("fx", "shout"), ("web", "shout"), ("web", "add_note")]
        assert "web: disconnected" in fresh.execute("%mcp remove web").stdout()
        fresh.execute("%tools remove shout")
        assert "\nlookup(" in "\n" + fresh.execute("%tools").stdout()
    finally:
        process.kill()


def test_a_server_killed_mid_session(fresh, openai_server):
    openai_server.enqueue(program("print(call_tool('pid'))"))
    pid = int(fresh.execute("pid?").stdout())
    openai_server.enqueue(program(
        "print('calling', flush=True)\n"
        "try:\n    call_tool('sleep', 30)\nexcept ToolError as e:\n    print('first:', e)\n"
        "print('second:', call_tool('shout', 'back'))"))

    def kill(fe: Frontend, msg: dict) -> None:
        if msg["msg_type"] == "stream" and "calling" in msg["content"]["text"]:
            time.sleep(0.5 * SLOWDOWN)  # the call is under way
            os.kill(pid, signal.SIGKILL)

    cell = fresh.execute("Sleep then shout", on_message=kill, timeout=120)
    assert cell.status == "ok", cell.error()
    _calling, first, second = cell.stdout().splitlines()
    assert first.startswith("first: sleep: MCPToolError: the MCP server fx stopped") and "starts it again" in first
    assert second == "second: BACK"
    assert "fx: ready" in fresh.execute("%mcp").stdout()


def test_bad_input_is_a_clear_error_and_changes_nothing(fresh):
    before = fresh.execute("%mcp").stdout()
    bad = fresh.execute("%mcp frobnicate")
    assert bad.status == "error" and "%mcp: cannot understand 'frobnicate'" in bad.stdout("stderr")
    hang = fresh.execute(f"%mcp add stuck --timeout 2 -- {sys.executable} {FIXTURE} stdio --hang", timeout=60)
    assert hang.status == "error" and "did not start within 2 s" in hang.stdout("stderr")
    assert "connecting stuck (stdio: " in hang.markdown()  # the progress line, ended as it began
    nothing = fresh.execute("%mcp add nothing -- no-such-mcp-server-command --flag", timeout=60)
    assert nothing.status == "error" and "cannot start the MCP server 'no-such-mcp-server-command'" in \
        nothing.stdout("stderr")
    refused = fresh.execute("%mcp add down http://127.0.0.1:9/mcp --timeout 20", timeout=60)
    assert refused.status == "error" and "cannot connect" in refused.stdout("stderr")
    missing = fresh.execute("%mcp remove nothere")
    assert missing.status == "error" and "no MCP server named 'nothere'; connected: fx" in missing.stdout("stderr")
    assert fresh.execute("%mcp").stdout() == before
    assert gone(hanging_servers() or [-1]) and hanging_servers() == []


def test_headless_a_tool_that_needs_a_person_is_refused_by_name(openai_server, start_kernel, tmp_path):
    config = write_config(tmp_path / "c.json", fx=FX, ask=dict(FX, approval="each-call"))
    fe = start_kernel(env(openai_server, CODEACT_APPROVAL="auto", CODEACT_MCP_CONFIG=config), widgets=False)
    openai_server.enqueue(program("print(call_tool('fx.add_note', 'x'))"))
    cell = fe.execute("add a note", allow_stdin=False, timeout=120)
    assert cell.reply["content"]["ename"] == "ApprovalRequired"
    assert "calls fx.add_note, marked approval='always'" in cell.reply["content"]["evalue"]
    openai_server.enqueue(program("print(call_tool('ask.lookup', 'Oslo')['city'])\n"
                                  "try:\n    call_tool('ask.add_note', 'x')\nexcept ToolError as e:\n    print(e)"))
    cell = fe.execute("look up, then add", allow_stdin=False)
    assert cell.status == "ok", cell.error()
    assert cell.stdout() == ("Oslo\nask.add_note: PermissionError: the call needs a person's approval and no one can "
                             "answer here (a headless run: nbclient, nbval, papermill)\n")


def test_a_bad_configuration_file_is_said_and_the_kernel_works(openai_server, start_kernel, tmp_path):
    config = tmp_path / "c.json"
    config.write_text("{\"mcpServers\": {\"fx\": ")
    fe = start_kernel(env(openai_server, CODEACT_APPROVAL="auto", CODEACT_MCP_CONFIG=str(config)),
                      widgets=False)
    openai_server.enqueue(program("print('fine')"))
    cell = fe.execute("anything")
    assert cell.stdout() == "fine\n" and "could not be read as JSON" in cell.stdout("stderr")
    assert "could not be read as JSON" in fe.execute("%mcp").stdout()


def test_recorded_replays_programs_that_call_mcp_tools(openai_server, start_kernel, tmp_path):
    config = write_config(tmp_path / "c.json", fx=FX)
    transcript = tmp_path / "session.jsonl"
    recorder = start_kernel(env(openai_server, CODEACT_APPROVAL="auto", CODEACT_MCP_CONFIG=config,
                                       CODEACT_TRANSCRIPT=str(transcript)), widgets=False)
    openai_server.enqueue(program("print(call_tool('lookup', 'Rome'), call_tool('shout', 'x'))"))
    first = recorder.execute("Rome", timeout=120)
    assert first.status == "ok", first.error()
    requests = len(openai_server.requests)
    replayer = start_kernel(env(openai_server, CODEACT_MODEL=f"replay:{transcript}", CODEACT_APPROVAL="recorded",
                                       CODEACT_MCP_CONFIG=config, CODEACT_TRANSCRIPT=str(tmp_path / "new.jsonl")),
                            widgets=False)
    again = replayer.execute("Rome", timeout=120)
    assert again.status == "ok", again.error()
    assert again.stdout() == first.stdout() and len(openai_server.requests) == requests


# -- no server outlives its kernel ---------------------------------------------------------------

def _server_pids(fe: Frontend, openai_server) -> list[int]:
    openai_server.enqueue(program("print(call_tool('pid'))"))
    cell = fe.execute("pid", timeout=120)
    assert cell.status == "ok", cell.error()
    server = int(cell.stdout())
    return [server, parent_of(server)]  # the server, and the reaper that is its parent


@pytest.mark.parametrize("how", ["sigkill", "shutdown", "restart", "kill-group"])
def test_no_server_process_outlives_the_kernel(how, openai_server, start_kernel, tmp_path):
    config = write_config(tmp_path / "c.json", fx=FX)
    fe = start_kernel(env(openai_server, CODEACT_APPROVAL="auto", CODEACT_MCP_CONFIG=config), widgets=False)
    pids = _server_pids(fe, openai_server)
    kernel = fe.manager.provisioner.pid  # type: ignore[union-attr]
    assert all(alive(p) for p in pids) and parent_of(pids[1]) == kernel
    if how == "sigkill":  # the kernel alone, as an OOM killer would
        os.kill(kernel, signal.SIGKILL)
    elif how == "shutdown":
        fe.manager.shutdown_kernel(now=False)
    elif how == "kill-group":  # what jupyter_client does to a kernel that will not stop: its process group
        fe.manager.shutdown_kernel(now=True)
    else:
        fe.manager.restart_kernel(now=False)
        fe.client.wait_for_ready(timeout=60 * SLOWDOWN)
        assert gone(pids), "the old kernel's server is gone"
        assert _server_pids(fe, openai_server)[0] not in pids, "the new kernel started its own"
        return
    assert gone(pids), f"after {how}, still running: {[p for p in pids if alive(p)]}"
