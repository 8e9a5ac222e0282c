"""MCP servers' tools, below the kernel: the schema mapping, the configuration, the name rule,
the approval rule, and the manager against real servers written with the official SDK
(tests/mcp_fixture.py), over stdio and Streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codeact_kernel.errors import ConfigError, MCPServerError, MCPToolError
from codeact_kernel.mcp_tools import Manager, read_config, spec_from_args
from codeact_kernel.mcp_tools.config import config_paths
from codeact_kernel.mcp_tools.manager import Server, ToolDef
from codeact_kernel.mcp_tools.schema import Parameters, returns, type_text, unusable
from codeact_kernel.tools import Registry, Tool
from tests.conftest import SLOWDOWN

FIXTURE = str(Path(__file__).with_name("mcp_fixture.py"))
START = 60 * SLOWDOWN  # a server's start: importing the SDK takes seconds on a busy machine
FX = {"command": sys.executable, "args": [FIXTURE], "timeout": START}  # the fixture server, configured


def write_config(path: Path, **servers: dict) -> str:
    """An `mcpServers` file with these servers, as a kernel reads from CODEACT_MCP_CONFIG."""
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def gone(pids: list[int], within: float = 10) -> bool:
    deadline = time.monotonic() + within * SLOWDOWN
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def hanging_servers() -> list[int]:
    """Fixture servers started with --hang that are still running (none should outlive a test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if FIXTURE.encode() in command and b"--hang" in command and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# -- a tool's schema as a Python call ------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {
    "limit": {"type": "integer", "default": 10, "description": "How many."},
    "path": {"type": "string", "description": "The file,\n relative to the root."},
    "mode": {"enum": ["r", "w"]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "note": {"type": ["string", "null"]},
}, "required": ["path", "mode"]}


def test_the_signature_shows_required_parameters_first_in_schema_order():
    params = Parameters("read", SCHEMA)
    assert params.names == ("path", "mode", "limit", "tags", "note")
    assert params.signature("str") == ("(path: str, mode: Literal['r', 'w'], limit: int = 10, tags: list[str] = None, "
                                       "note: str | None = None) -> str")
    assert params.describe_parameters() == "path: The file, relative to the root.; limit: How many."


def test_arguments_map_onto_the_schema_positionally_then_by_name():
    params = Parameters("read", SCHEMA)
    assert params.bind(("a.txt", "r", 5), {}) == {"path": "a.txt", "mode": "r", "limit": 5}
    assert params.bind(("a.txt",), {"mode": "w", "tags": ["x"]}) == {"path": "a.txt", "mode": "w", "tags": ["x"]}
    # None for an optional parameter means "not given", unless its schema takes null
    assert params.bind((), {"path": "p", "mode": "r", "limit": None, "note": None}) == \
        {"path": "p", "mode": "r", "note": None}


@pytest.mark.parametrize(("args", "kwargs", "words"), [
    (("a", "r", 1, [], None, "extra"), {}, "takes at most 5 positional arguments, 6 given"),
    (("a",), {"path": "b", "mode": "r"}, "got two values for 'path'"),
    ((), {"path": "a", "mode": "r", "lmit": 3}, "has no parameter 'lmit'"),
    ((), {"path": "a"}, "is missing 'mode'"),
    ((), {"path": "a", "mode": "x"}, "argument 'mode': 'x' is not one of ['r', 'w']"),
    ((), {"path": "a", "mode": "r", "tags": ["ok", 3]}, "argument 'tags'[1]: 3 is not of type 'string'"),
])
def test_arguments_that_do_not_match_say_what_and_list_the_parameters(args, kwargs, words):
    with pytest.raises(TypeError) as caught:
        Parameters("read", SCHEMA).bind(args, kwargs)
    assert words in str(caught.value)
    assert "read(path: str, mode: Literal['r', 'w'], limit: int = 10" in str(caught.value)
    assert "(required: path, mode)" in str(caught.value)


def test_a_schema_that_allows_more_takes_other_names():
    params = Parameters("anything", {"type": "object", "additionalProperties": True})
    assert params.bind((), {"x": 1}) == {"x": 1}
    assert params.signature("str") == "() -> str"


@pytest.mark.parametrize(("name", "schema", "words"), [
    ("has space", {"type": "object"}, "characters outside"),
    ("x" * 129, {"type": "object"}, "longer than 128"),
    ("t", {"type": "array"}, "not an object of named arguments"),
    ("t", [], "not a JSON object"),
    ("t", {"type": "object", "properties": {"__line__": {}}}, "'__line__', which call_tool reserves"),
    ("t", {"type": "object", "properties": {}, "required": ["ghost"]}, "requires parameters it does not describe"),
])
def test_a_tool_the_model_cannot_use_is_left_out_with_a_reason(name, schema, words):
    assert words in unusable(name, schema)


def test_names_with_dashes_and_dots_are_usable():
    assert unusable("list-notes", {"type": "object"}) is None
    assert unusable("files.read_v2", {"type": "object", "properties": {"a": {}}}) is None


def test_types_and_return_types():
    assert type_text({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == "int | None"
    assert type_text({"type": "object", "additionalProperties": {"type": "number"}}) == "dict[str, float]"
    assert type_text({"$ref": "#/defs/x"}) == "Any"
    assert returns(None) == "str"
    assert returns({"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}) == "int"
    assert returns({"type": "object", "properties": {"a": {}}}) == "dict"


# -- which servers, and how they are trusted ----------------------------------------------------

def test_mcp_add_words():
    spec = spec_from_args(["files", "--approval", "each-call", "--timeout", "5", "--env", "A=1",
                           "--", "npx", "-y", "server", "--flag"])
    assert (spec.command, spec.args, spec.env, spec.approval, spec.timeout) == \
        ("npx", ("-y", "server", "--flag"), {"A": "1"}, "each-call", 5.0)
    http = spec_from_args(["issues", "https://mcp.example.com/mcp", "--header", "Authorization: Bearer t"])
    assert http.transport == "http" and http.headers == {"Authorization": "Bearer t"}
    assert "Bearer" not in repr(http)  # headers may carry a token


@pytest.mark.parametrize(("words", "message"), [
    ([], "usage: %mcp add NAME"),
    (["x"], "no server given"),
    (["x", "--"], "no command after `--`"),
    (["x", "--approval", "sometimes", "--", "cmd"], "approval must be one of always, each-call, auto"),
    (["has.dot", "--", "cmd"], "letters, digits, '_' and '-'"),
    (["x", "ftp://host"], "neither an option nor a URL"),
    (["x", "--timeout", "soon", "--", "cmd"], "--timeout must be a number of seconds"),
    (["x", "--timeout", "-1", "--", "cmd"], "timeout must be a positive number"),
])
def test_bad_mcp_add_words_say_what_is_wrong(words, message):
    with pytest.raises(ConfigError, match=None) as caught:
        spec_from_args(words)
    assert message in str(caught.value)


def test_the_config_file_in_the_shared_form(tmp_path):
    path = tmp_path / "codeact_mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "fs", "${DATA}"], "env": {"K": "v"}, "approval": "each-call",
                  "toolApproval": {"read": "always"}, "annotations": "ignore", "timeout": 9, "callTimeout": 3},
        "web": {"type": "http", "url": "https://h/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
        "off": {"command": "x", "disabled": True},
        "bad": {"command": "x", "approval": "never"},
        "old": {"type": "sse", "url": "https://h/sse"},
        "unset": {"command": "x", "env": {"A": "${NOT_SET_ANYWHERE}"}},
    }}))
    specs, problems = read_config([path], {"DATA": "/data", "TOKEN": "secret"})
    files, web = specs
    assert files.args == ("-y", "fs", "/data") and files.env == {"K": "v"} and files.approval == "each-call"
    assert files.tool_approval == {"read": "always"} and not files.trust_annotations
    assert (files.timeout, files.call_timeout, files.source) == (9, 3, str(path))
    assert web.url == "https://h/mcp" and web.headers == {"Authorization": "Bearer secret"}
    assert len(problems) == 3
    assert "'bad'" in problems[0] and "approval must be one of" in problems[0]
    assert "'sse' is not supported" in problems[1]
    assert "${NOT_SET_ANYWHERE} is not set" in problems[2]


def test_where_the_config_file_is_found(tmp_path):
    assert config_paths({"CODEACT_MCP_CONFIG": "none"}) == []
    assert config_paths({"CODEACT_MCP_CONFIG": str(tmp_path / "x.json")}) == [tmp_path / "x.json"]
    found = config_paths({})
    assert found and all(p.name == "codeact_mcp.json" for p in found)
    specs, problems = read_config([tmp_path / "x.json"], {"CODEACT_MCP_CONFIG": str(tmp_path / "x.json")})
    assert specs == [] and "does not exist" in problems[0]
    (tmp_path / "broken.json").write_text("{not json")
    assert "could not be read as JSON" in read_config([tmp_path / "broken.json"])[1][0]


def test_a_server_in_two_files_takes_the_first_files_entry(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"mcpServers": {"s": {"command": "mine"}}}))
    second.write_text(json.dumps({"mcpServers": {"s": {"command": "theirs"}, "t": {"url": "http://h/mcp"}}}))
    specs, _ = read_config([first, second])
    assert [(s.name, s.command or s.url) for s in specs] == [("s", "mine"), ("t", "http://h/mcp")]


def _definition(name: str, read_only: bool | None) -> ToolDef:
    return ToolDef(name, None, "", Parameters(name, {"type": "object"}), None, read_only, None)


@pytest.mark.parametrize(("setting", "annotations", "per_tool", "read_only", "expected"), [
    ("always", "trust", None, True, "policy"),       # annotated read-only: an ordinary tool
    ("always", "trust", None, None, "always"),       # the default: a program that may call it needs a person
    ("always", "trust", None, False, "always"),
    ("each-call", "trust", None, False, "each-call"),
    ("each-call", "trust", None, True, "policy"),
    ("auto", "trust", None, False, "policy"),
    ("always", "ignore", None, True, "always"),      # annotations not trusted: read-only means nothing
    ("always", "trust", "always", True, "always"),   # the user's setting for the tool wins over its annotation
    ("always", "trust", "auto", False, "policy"),
    ("auto", "trust", "each-call", True, "each-call"),
])
def test_the_approval_rule(setting, annotations, per_tool, read_only, expected):
    words = ["s", "--approval", setting, "--annotations", annotations, "--", "cmd"]
    spec = spec_from_args(words)
    if per_tool:
        spec = spec.__class__(**{**spec.__dict__, "tool_approval": {"t": per_tool}})
    assert Server(spec, Path("/dev/null")).approval(_definition("t", read_only)) == expected


# -- the name rule: clashes resolved whatever the order --------------------------------------------

class _Source:
    def __init__(self, *tools: Tool) -> None:
        self._tools = list(tools)

    def tools(self) -> list[Tool]:
        return self._tools


def _mcp_tool(server: str, name: str) -> Tool:
    return Tool(name, lambda: f"{server}:{name}", f"from {server}", "() -> str", server=server, remote_name=name)


def test_a_name_two_tools_share_is_resolved_the_same_whatever_the_order():
    def search() -> str:
        return "mine"

    for order in ([("a", "search"), ("a", "only_a"), ("b", "search"), ("b", "x")],
                  [("b", "x"), ("b", "search"), ("a", "only_a"), ("a", "search")]):
        registry = Registry()
        registry.attach(_Source(*[_mcp_tool(s, n) for s, n in order]))
        assert registry.names() == ["a.search", "b.search", "only_a", "x"]
        registry.add(search)  # a @tool keeps its name
        assert registry.names() == ["a.search", "b.search", "only_a", "search", "x"]
        assert registry["search"].function() == "mine" and registry["a.search"].function() == "a:search"
        assert registry["a.search"].remote_name == "search" and registry["a.search"].server == "a"


def test_a_qualified_name_that_meets_a_bare_one_is_qualified_too():
    registry = Registry()
    registry.attach(_Source(_mcp_tool("a", "b.c"), _mcp_tool("b", "c"), _mcp_tool("z", "c")))
    assert registry.names() == ["a.b.c", "b.c", "z.c"]


def test_an_mcp_tool_is_removed_with_its_server():
    registry = Registry()
    source = _Source(_mcp_tool("a", "t"))
    registry.attach(source)
    with pytest.raises(KeyError, match="comes from the MCP server a: `%mcp remove a`"):
        registry.remove("t")
    registry.detach(source)
    assert len(registry) == 0


# -- the manager, against real servers ---------------------------------------------------------------

@pytest.fixture(scope="module")
def manager():
    """One stdio fixture server for the module's calls (a server starts in seconds)."""
    m = Manager()
    m.add(spec_from_args(["fx", "--timeout", str(START), "--call-timeout", str(10 * SLOWDOWN),
                          "--", sys.executable, FIXTURE]))
    registry = Registry()
    registry.attach(m)
    m.registry = registry  # type: ignore[attr-defined]
    yield m
    m.close()


def call(manager: Manager, name: str, *args, **kwargs):
    return manager.registry[name].function(*args, **kwargs)  # type: ignore[attr-defined]


def test_the_tools_as_programs_see_them(manager):
    registry = manager.registry
    assert registry["lookup"].signature == "(city: str, unit: str = 'C') -> dict"
    assert registry["lookup"].description == "The weather in a city."
    assert registry["shout"].signature == "(text: str) -> str"
    assert "list-notes" in registry and "weird" not in registry
    assert manager.server("fx").skipped == {"weird": "it has a parameter named '__args__', which call_tool "
                                                     "reserves for itself"}
    approvals = {t.name: t.approval for t in registry}
    assert approvals["lookup"] == "policy" and approvals["add_note"] == "always" and approvals["delete_note"] == "always"


def test_results_come_back_as_json_values_and_strings(manager):
    assert call(manager, "lookup", "Oslo") == {"city": "Oslo", "temperature_c": 12.5}
    assert call(manager, "lookup", city="Oslo", unit="F") == {"city": "Oslo", "temperature_c": 54.5}
    assert call(manager, "shout", "hi") == "HI"  # {"result": "HI"} on the wire
    assert call(manager, "two_blocks", "abc") == ["abc", "cba"]
    assert call(manager, "add_note", "t", body="b") == "added t"
    assert call(manager, "list-notes") == ["t"]


def test_an_image_is_described_and_kept_for_the_cell(manager):
    manager.take_pictures()
    said = call(manager, "chart")
    assert said.startswith("[image/png image, ") and "shown in the cell after the program ends" in said
    pictures = manager.take_pictures()
    assert len(pictures) == 1 and pictures[0].data.startswith(b"\x89PNG") and pictures[0].tool == "chart"
    assert manager.take_pictures() == []


def test_errors_are_mcp_tool_errors_with_the_servers_message(manager):
    with pytest.raises(MCPToolError, match="no such note here.*from MCP server fx"):
        call(manager, "fail", "no such note here")
    with pytest.raises(TypeError, match="lookup has no parameter 'town'"):
        call(manager, "lookup", town="Oslo")
    with pytest.raises(TypeError, match="argument 'city': 3 is not of type 'string'"):
        call(manager, "lookup", 3)


def test_a_protocol_error_is_a_tool_error(manager):
    server = manager.server("fx")
    with pytest.raises(MCPToolError, match="Unknown tool: nothing"):
        from codeact_kernel.mcp_tools.results import convert
        convert(manager._request(server, "nothing", {}), server="fx", tool="nothing", output_schema=None,
                cap=100, pictures=[])


def test_a_result_over_the_cap_is_refused(manager):
    assert len(call(manager, "big", 1000)) == 1000
    with pytest.raises(MCPToolError, match="over the 1,000,000 an MCP result may bring into a program"):
        call(manager, "big", 1_000_001)


def test_each_call_is_journaled_with_its_server_and_tool(manager):
    manager.take_calls()
    call(manager, "shout", "x")
    with pytest.raises(MCPToolError):
        call(manager, "fail", "no")
    calls = manager.take_calls()
    assert [(c["server"], c["tool"], c["ok"]) for c in calls] == [("fx", "shout", True), ("fx", "fail", False)]


def test_a_call_that_takes_too_long_and_an_interrupted_call(manager):
    slow = Manager()
    try:
        slow.add(spec_from_args(["slow", "--timeout", str(START), "--call-timeout", "1", "--",
                                 sys.executable, FIXTURE]))
        registry = Registry()
        registry.attach(slow)
        began = time.monotonic()
        with pytest.raises(MCPToolError, match="no answer from the MCP server slow within 1 s"):
            registry["sleep"].function(30)
        assert time.monotonic() - began < 5 * SLOWDOWN
    finally:
        slow.close()
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(errors, lambda: call(manager, "sleep", 30)))
    thread.start()
    time.sleep(1 * SLOWDOWN)
    manager.cancel_calls()
    thread.join(10 * SLOWDOWN)
    assert not thread.is_alive() and "the call was interrupted" in str(errors[0])
    assert call(manager, "shout", "still fine") == "STILL FINE"


def _catch(errors: list[BaseException], fn) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def test_a_server_killed_mid_call_fails_that_call_and_the_next_call_restarts_it(manager):
    first = call(manager, "pid")
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(errors, lambda: call(manager, "sleep", 30)))
    thread.start()
    time.sleep(1 * SLOWDOWN)
    os.kill(first, signal.SIGKILL)
    thread.join(20 * SLOWDOWN)
    assert not thread.is_alive()
    message = str(errors[0])
    assert "the MCP server fx stopped" in message and "The next call starts it again" in message
    assert manager.server("fx").state == "stopped"
    assert call(manager, "shout", "back") == "BACK"
    assert call(manager, "pid") != first and manager.server("fx").state == "ready"
    assert "fixture server ready" in manager.log_text("fx")


def test_stderr_goes_to_the_log_and_close_leaves_no_process():
    m = Manager()
    m.add(spec_from_args(["own", "--timeout", str(START), "--", sys.executable, FIXTURE]))
    registry = Registry()
    registry.attach(m)
    server_pid = registry["pid"].function()
    reaper_pid = parent_of(server_pid)
    assert alive(server_pid) and alive(reaper_pid) and reaper_pid != os.getpid()
    log = m.log_text("own")
    assert "fixture server ready (stdio)" in log and f"MCP server started, pid {server_pid}" in log
    m.close()
    assert gone([server_pid, reaper_pid])


def test_a_chatty_servers_log_keeps_its_newest_lines_within_its_bound(monkeypatch):
    from codeact_kernel.mcp_tools import manager as module

    monkeypatch.setattr(module, "LOG_MAX_BYTES", 64 * 1024)
    m = Manager()
    try:  # 15,000 lines of debug output (1.4 MB), then its "ready" line
        m.add(spec_from_args(["chatty", "--timeout", str(START), "--", sys.executable, FIXTURE, "stdio",
                              "--chatter", "15000"]))
        deadline = time.monotonic() + 10 * SLOWDOWN
        while "fixture server ready" not in m.log_text("chatty", 3) and time.monotonic() < deadline:
            time.sleep(0.1)  # the reaper copies the server's stderr as it comes
        assert m.server("chatty").log.stat().st_size <= 64 * 1024 + 100
        text = m.log_text("chatty", 10_000)
        assert "older output removed, the log keeps its last 32 KB" in text
        assert "debug line 0014999 " in text and "debug line 0000000" not in text  # the newest kept
        server_lines = [line for line in text.splitlines() if not line.startswith("[codeact")]
        assert server_lines[-1].startswith("fixture server ready")
    finally:
        m.close()


def test_a_server_that_hangs_at_start_times_out_and_is_not_kept():
    m = Manager()
    try:
        began = time.monotonic()
        with pytest.raises(MCPServerError) as caught:
            m.add(spec_from_args(["stuck", "--timeout", "2", "--", sys.executable, FIXTURE, "stdio", "--hang"]))
        message = str(caught.value)
        assert "did not start within 2 s" in message and "--timeout S" in message
        assert "fixture server ready (stdio --hang)" in message  # what it said before it hung
        assert time.monotonic() - began < 15 * SLOWDOWN
        assert m.servers() == []
        assert gone(hanging_servers() or [-1], within=10) and hanging_servers() == []
    finally:
        m.close()


def test_a_command_that_does_not_exist():
    m = Manager()
    try:
        with pytest.raises(MCPServerError) as caught:
            m.add(spec_from_args(["nothing", "--timeout", str(START), "--", "no-such-mcp-server-command"]))
        assert "cannot start the MCP server 'no-such-mcp-server-command'" in str(caught.value)
        assert "%mcp log nothing" in str(caught.value)
        assert m.servers() == []
    finally:
        m.close()


def test_the_servers_logs_are_the_kernels_own_and_removed_when_it_closes():
    """Kept in the process's own temporary folder (`scratch`), which a later kernel removes
    if this one is killed."""
    from codeact_kernel import scratch

    m = Manager()
    try:
        with pytest.raises(MCPServerError):
            m.add(spec_from_args(["nothing", "--timeout", str(START), "--", "no-such-mcp-server-command"]))
        [log] = scratch._process_folder().glob("mcp-logs-*/nothing.log")
        assert log.exists()
    finally:
        m.close()
    assert not log.parent.exists(), "a kernel that ends removes its servers' logs"


@pytest.fixture(scope="module")
def http_server():
    """The fixture server over Streamable HTTP on 127.0.0.1 (a free port), requiring a token."""
    process = subprocess.Popen([sys.executable, FIXTURE, "http", "--token", "t0ken"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    port = int(process.stdout.readline())  # type: ignore[union-attr]
    yield process, f"http://127.0.0.1:{port}/mcp"
    process.kill()
    process.wait()


def test_streamable_http_with_a_header(http_server):
    _process, url = http_server
    m = Manager()
    try:
        m.add(spec_from_args(["web", url, "--header", "Authorization: Bearer t0ken", "--timeout", str(START)]))
        registry = Registry()
        registry.attach(m)
        assert registry["lookup"].function("Oslo") == {"city": "Oslo", "temperature_c": 12.5}
        with pytest.raises(MCPToolError, match="boom.*from MCP server web"):
            registry["fail"].function("boom")
    finally:
        m.close()
    refused = Manager()
    try:
        with pytest.raises(MCPServerError, match="401"):
            refused.add(spec_from_args(["web", url, "--timeout", str(START)]))  # no token
    finally:
        refused.close()


def test_a_url_that_refuses():
    m = Manager()
    try:
        with pytest.raises(MCPServerError) as caught:
            m.add(spec_from_args(["down", "http://127.0.0.1:9/mcp", "--timeout", str(START)]))
        assert "cannot connect" in str(caught.value) and "http://127.0.0.1:9/mcp" in str(caught.value)
        assert m.servers() == []
    finally:
        m.close()


def test_an_http_server_that_goes_away_fails_the_call_clearly():
    process = subprocess.Popen([sys.executable, FIXTURE, "http"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    url = f"http://127.0.0.1:{int(process.stdout.readline())}/mcp"  # type: ignore[union-attr]
    m = Manager()
    try:
        m.add(spec_from_args(["web", url, "--timeout", str(START)]))
        registry = Registry()
        registry.attach(m)
        assert registry["shout"].function("a") == "A"
        process.kill()
        process.wait()
        with pytest.raises(MCPToolError, match="web"):
            registry["shout"].function("b")
        with pytest.raises(MCPToolError, match="could not be started again: cannot connect"):
            registry["shout"].function("c")
    finally:
        m.close()
        process.kill()


def test_the_users_setting_for_one_tool_by_either_of_its_names(manager):
    try:
        manager.set_approval("fx", "always", "lookup")
        assert manager.registry["lookup"].approval == "always"
        manager.set_approval("fx", "each-call", "fx.lookup")  # as it is called when its name clashes
        assert manager.registry["lookup"].approval == "each-call"
        with pytest.raises(ConfigError, match="fx has no tool named 'nothing'; it has: "):
            manager.set_approval("fx", "always", "nothing")
        with pytest.raises(ConfigError, match="approval must be one of always, each-call, auto"):
            manager.set_approval("fx", "sometimes")
    finally:
        manager.set_approval("fx", "auto", "lookup")
    assert manager.registry["lookup"].approval == "policy"
