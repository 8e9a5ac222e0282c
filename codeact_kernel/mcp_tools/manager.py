"""The kernel's MCP servers: connected with the official SDK, their tools offered to programs.

Where things run. The SDK's client sessions are async (anyio), and tools are called from
the sandbox's thread while the kernel's event loop serves the cell (and a person's
decisions), so the sessions live on an event loop of their own, on one thread (`codeact-mcp`)
that lives as long as the kernel: a slow server never blocks the kernel's loop, and a
connection outlives the cell that made it. Each server is one task on that loop holding
its `Client` open (`_hold`); a call is a task in the server's task group, so a server that
goes away takes its calls down with it, with a clear error, instead of leaving them waiting.

Lifecycle. A server starts on `%mcp add` (the magic waits, saying so every few seconds, up
to the server's timeout) or at kernel start from the configuration file (in the background;
the first prompt cell waits for it). If it stops (it exits, its connection drops), the call
in progress fails with MCPToolError saying so, and the next call starts it again. It stops
with the kernel: `close()` ends each session the SDK's way (stdin closed, then SIGTERM,
then SIGKILL to its process group); and a stdio server runs under `reaper.py`, which kills
its process group when the kernel dies without closing (killed, out of memory).

What a server prints on stderr goes to a log file per server (`%mcp log NAME`), never to
a cell, and so do the SDK's own log records about it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import functools
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .. import __version__, scratch
from ..errors import ConfigError, MCPServerError, MCPToolError
from ..tools import Approval, Tool
from . import schema
from .config import SETTINGS, ServerSpec, Setting
from .results import Picture, convert

State = Literal["starting", "ready", "failed", "stopped"]
REAPER = Path(__file__).with_name("reaper.py")
PICTURES_PER_RUN = 20
# A server's log (its stderr) keeps its last half of this, past it (reaper.py; POSIX).
LOG_MAX_BYTES = 4 * 2**20
_TO_APPROVAL: dict[str, Approval] = {"always": "always", "each-call": "each-call", "auto": "policy"}
_STOP_SECONDS = 8.0  # the SDK's own shutdown takes at most about 6 s (2 s for stdin, 2 for SIGTERM, reaping)
_current_server: contextvars.ContextVar[str | None] = contextvars.ContextVar("codeact_mcp_server", default=None)


@dataclass
class ToolDef:
    """One tool as its server lists it, read once per listing."""

    name: str
    title: str | None
    description: str
    parameters: schema.Parameters
    output_schema: Any
    read_only: bool | None
    destructive: bool | None

    @property
    def signature(self) -> str:
        return self.parameters.signature(schema.returns(self.output_schema))


@dataclass
class Server:
    """One configured server and what is known of it."""

    spec: ServerSpec
    log: Path
    state: State = "starting"
    reason: str = ""
    """Why it failed or stopped (said by `%mcp`, and by a call that finds it so)."""
    tools: dict[str, ToolDef] = field(default_factory=dict)
    """The last listing: kept while it is stopped, so programs can still call it (which restarts it)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Tools it lists that the model cannot use, with why."""
    started: concurrent.futures.Future[None] | None = None
    seconds: float = 0.0
    http_error: str = ""
    """The last HTTP error status a Streamable HTTP server answered (the SDK reports only that one came)."""
    _held: concurrent.futures.Future[None] | None = None
    _client: Any = None
    _group: asyncio.Queue[Any] | None = None
    """Where calls go to become tasks of the server's task group (`_dispatch`)."""
    _scope: Any = None
    _entries: list[Tool] | None = None
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _restarting: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.name

    def approval(self, tool: ToolDef) -> Approval:
        """The approval a tool gets (README: *MCP servers*): the user's setting for the tool if
        any; else an ordinary tool if the server annotates it read-only and its annotations
        are trusted; else the server's setting (default `always`)."""
        setting = self.spec.tool_approval.get(tool.name)
        if setting is None:
            setting = "auto" if tool.read_only and self.spec.trust_annotations else self.spec.approval
        return _TO_APPROVAL[setting]

    def note(self, text: str) -> None:
        """A line of the kernel's own in the server's log (beside what the server writes there)."""
        with suppress(OSError), open(self.log, "a", encoding="utf-8") as f:
            f.write(f"[codeact {datetime.now():%H:%M:%S}] {text}\n")

    def log_tail(self, lines: int = 3, limit: int = 400) -> str:
        """The last lines of its log, for an error message (where a server says why it stopped)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if line.strip() and not line.startswith("[codeact")][-lines:]
        tail = " | ".join(line.strip() for line in kept)
        return tail if len(tail) <= limit else "…" + tail[-limit:]


class Manager:
    """The MCP servers of one kernel, and their tools as the registry offers them (a ToolSource)."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self._servers: dict[str, Server] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._log_dir = log_dir
        self._own_log_dir = False
        self._pictures: list[Picture] = []
        self._calls: list[dict[str, Any]] = []
        self._inflight: dict[concurrent.futures.Future[Any], Any] = {}
        self._lock = threading.Lock()
        self._warm: threading.Thread | None = None
        self._unsaid: list[str] = []
        self.problems: list[str] = []
        """What was wrong with the configuration file (a bad file or entry is skipped)."""

    # -- what the registry reads ------------------------------------------------------------
    def tools(self) -> list[Tool]:
        """Every connected (or stopped, restartable) server's usable tools, named as their
        servers name them: the registry resolves clashes (tools.Registry)."""
        entries: list[Tool] = []
        for server in list(self._servers.values()):
            entries.extend(self._entries(server))
        return entries

    def _entries(self, server: Server) -> list[Tool]:
        with server._lock:
            if server._entries is None:
                server._entries = [
                    Tool(name=d.name, function=functools.partial(self.call, server.name, d.name),
                         description=schema.description(d.description, d.parameters), signature=d.signature,
                         approval=server.approval(d), server=server.name, remote_name=d.name)
                    for d in server.tools.values()]
            return server._entries

    # -- servers ----------------------------------------------------------------------------
    def servers(self) -> list[Server]:
        return list(self._servers.values())

    def server(self, name: str) -> Server:
        try:
            return self._servers[name]
        except KeyError:
            raise ConfigError(f"no MCP server named {name!r}; connected: "
                              f"{', '.join(self._servers) or 'none (%mcp add NAME ...)'}") from None

    def load(self, specs: Sequence[ServerSpec], problems: Sequence[str] = ()) -> None:
        """Start the configuration file's servers in the background; a prompt cell (or %tools)
        waits for them (`starting`). Problems are said once, in the first prompt cell."""
        self.problems = list(problems)
        self._unsaid.extend(f"MCP configuration: {p}" for p in problems)
        for spec in specs:
            if spec.name not in self._servers:
                server = Server(spec, self._log_path(spec.name))
                self._servers[spec.name] = server
                self._start(server, at_kernel_start=True)

    def add(self, spec: ServerSpec, progress: Callable[[str], None] = lambda _text: None) -> Server:
        """Connect a server now, waiting for it (saying so every few seconds). On failure it is
        not kept: the session is as it was, and the error says why."""
        if spec.name in self._servers:
            raise MCPServerError(f"an MCP server named {spec.name!r} is already connected "
                                 f"(%mcp remove {spec.name} first, or choose another name)")
        server = Server(spec, self._log_path(spec.name))
        self._servers[spec.name] = server
        started = self._start(server)
        began = time.monotonic()
        try:
            while True:
                try:
                    started.result(timeout=2.0)
                    return server
                except concurrent.futures.TimeoutError:
                    progress(f"{time.monotonic() - began:.0f} s of {spec.timeout:g} s")
                except MCPServerError:
                    self._forget(server)
                    raise
        except KeyboardInterrupt:  # interrupted while it starts: as if never added
            self._stop(server)
            self._forget(server)
            raise
        finally:
            getattr(progress, "done", lambda: None)()

    def remove(self, name: str) -> None:
        server = self.server(name)
        self._stop(server)
        self._wait_stopped([server])
        self._forget(server)

    def _forget(self, server: Server) -> None:
        self._servers.pop(server.name, None)

    def set_approval(self, name: str, setting: str, tool: str | None = None) -> Server:
        """`%mcp approval NAME [TOOL] SETTING`: the user's setting, which wins over annotations."""
        server = self.server(name)
        if setting not in SETTINGS:
            raise ConfigError(f"approval must be one of {', '.join(SETTINGS)}, not {setting!r}")
        value: Setting = setting  # type: ignore[assignment]
        if tool is None:
            server.spec = dataclasses.replace(server.spec, approval=value)
        else:
            if tool not in server.tools and tool.startswith(f"{name}.") and tool[len(name) + 1:] in server.tools:
                tool = tool[len(name) + 1:]  # named as programs call it when it clashes: SERVER.TOOL
            if tool not in server.tools and tool not in server.skipped:
                raise ConfigError(f"{name} has no tool named {tool!r}; it has: {', '.join(server.tools) or 'none'}")
            server.spec = dataclasses.replace(server.spec, tool_approval={**server.spec.tool_approval, tool: value})
        with server._lock:
            server._entries = None
        return server

    def starting(self) -> list[Server]:
        """Servers still connecting (each `started` future resolves when it is up or has failed)."""
        return [s for s in self._servers.values() if s.state == "starting" and s.started is not None]

    def wait_starting(self) -> None:
        """Block until every server that is starting is up or has failed (each within its timeout)."""
        for server in self.starting():
            with suppress(Exception):
                server.started.result(timeout=server.spec.timeout + 15)  # type: ignore[union-attr]

    def unsaid(self) -> list[str]:
        """Problems nobody was shown yet (the configuration file, servers that failed to start at
        kernel start): the first prompt cell shows them."""
        said, self._unsaid = self._unsaid, []
        return said

    def log_text(self, name: str, lines: int = 40) -> str:
        server = self.server(name)
        try:
            text = server.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"{name} has written nothing yet"
        kept = text.splitlines()[-lines:]
        return "\n".join(kept) if kept else f"{name} has written nothing yet"

    # -- calls --------------------------------------------------------------------------------
    def call(self, server_name: str, tool: str, /, *args: Any, **kwargs: Any) -> Any:
        """What `call_tool` runs for an MCP tool, on the sandbox's thread: the arguments mapped
        onto the tool's schema, the server (re)started if it is not up, the call made and its
        result converted (results.py). Every failure is an exception the program gets as ToolError."""
        server = self._servers.get(server_name)
        if server is None:
            raise MCPToolError(f"the MCP server {server_name!r} was removed (%mcp add it again)")
        definition = server.tools.get(tool)
        if definition is None:
            raise MCPToolError(f"the MCP server {server_name} no longer lists a tool {tool!r}")
        arguments = definition.parameters.bind(args, kwargs)
        began = time.perf_counter()
        record: dict[str, Any] = {"server": server_name, "tool": tool, "ok": False}
        try:
            if server.state != "ready":
                self._restart(server)
            result = self._request(server, tool, arguments)
            pictures: list[Picture] = []
            value = convert(result, server=server_name, tool=tool, output_schema=definition.output_schema,
                            cap=server.spec.max_result, pictures=pictures)
            self._keep(pictures)
            record["ok"] = True
            return value
        except MCPToolError as exc:
            record["error"] = str(exc)[:300]
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - began, 4)
            with self._lock:
                self._calls.append(record)

    def _restart(self, server: Server) -> None:
        """Start a server that failed or stopped, from a call (which waits for it)."""
        with server._restarting:  # two threads calling at once start it once
            if server.state in ("failed", "stopped"):
                self._wait_stopped([server])
                self._start(server)
            started = server.started
        try:
            started.result(timeout=server.spec.timeout + 15)  # type: ignore[union-attr]
        except MCPServerError as exc:
            raise MCPToolError(f"the MCP server {server.name} could not be started again: {exc}") from None
        except concurrent.futures.TimeoutError:
            raise MCPToolError(f"the MCP server {server.name} did not start again within "
                               f"{server.spec.timeout:g} s") from None

    def _request(self, server: Server, tool: str, arguments: dict[str, Any]) -> Any:
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._spawn_call, server, tool, arguments, answer)
        try:
            return answer.result(timeout=server.spec.call_timeout + 15)  # the task's own timeout comes first
        except concurrent.futures.TimeoutError:
            raise MCPToolError(f"the MCP server {server.name} did not answer in time") from None

    def _spawn_call(self, server: Server, tool: str, arguments: dict[str, Any],
                    answer: concurrent.futures.Future[Any]) -> None:
        """On the MCP loop: the call goes to the server's dispatcher, which makes it a task of the
        server's task group (anyio starts tasks only from a task)."""
        queue = server._group
        if server.state != "ready" or queue is None:
            answer.set_exception(MCPToolError(f"the MCP server {server.name} stopped just before the call "
                                              f"({server.reason or 'no reason given'}); the next call starts it again"))
            return
        queue.put_nowait((tool, arguments, answer))

    async def _dispatch(self, server: Server, group: Any, queue: asyncio.Queue[Any]) -> None:
        """The server's calls, each started as a task of its group as it arrives."""
        while True:
            tool, arguments, answer = await queue.get()
            group.start_soon(self._call_task, server, tool, arguments, answer)

    async def _call_task(self, server: Server, tool: str, arguments: dict[str, Any],
                         answer: concurrent.futures.Future[Any]) -> None:
        import anyio
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        timeout = server.spec.call_timeout
        with anyio.CancelScope() as scope:
            self._inflight[answer] = scope
            try:
                with anyio.fail_after(timeout):
                    result = await server._client.call_tool(tool, arguments)
                answer.set_result(result)
            except TimeoutError:
                answer.set_exception(MCPToolError(
                    f"no answer from the MCP server {server.name} within {timeout:g} s (its callTimeout; "
                    f"`%mcp add {server.name} --call-timeout S ...` sets it)"))
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    self._mark_stopped(server, "its connection closed during a call")  # before anyone hears of it
                    answer.set_exception(MCPToolError(_stopped_reason(server, "its connection closed during the call")))
                else:  # a protocol error the server sent: an unknown tool, invalid parameters...
                    answer.set_exception(MCPToolError(f"{exc.message} (MCP error {exc.code} from {server.name})"))
            except anyio.get_cancelled_exc_class():
                if not answer.done() and scope.cancel_called:  # an interrupt
                    answer.set_exception(MCPToolError("the call was interrupted"))
                elif not answer.done():  # with the server's whole group: it is going down
                    self._mark_stopped(server, "its connection ended during a call")
                    answer.set_exception(MCPToolError(_stopped_reason(server, "it stopped during the call")))
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the SDK raises becomes the program's ToolError
                answer.set_exception(MCPToolError(f"the call to {server.name} failed: {_describe(exc)}"))
            finally:
                self._inflight.pop(answer, None)

    def cancel_calls(self) -> None:
        """Interrupt: every call in progress ends now (the program gets ToolError; the sandbox is
        being stopped anyway). From any thread."""
        if self._loop is None:
            return
        for scope in list(self._inflight.values()):
            self._loop.call_soon_threadsafe(scope.cancel)

    def _mark_stopped(self, server: Server, reason: str) -> None:
        """On the loop: a connection found dead ends its hold, so the next call starts it again."""
        if server.state == "ready":
            server.state, server.reason = "stopped", _stopped_reason(server, reason)
            server.note(f"stopped: {reason}")
            if server._scope is not None:
                server._scope.cancel()

    def _keep(self, pictures: list[Picture]) -> None:
        with self._lock:
            room = PICTURES_PER_RUN - len(self._pictures)
            self._pictures.extend(pictures[:max(room, 0)])

    # -- what the cell takes after each run -----------------------------------------------------
    def take_pictures(self) -> list[Picture]:
        """Images MCP tools returned since the last take (the cell shows them after the run)."""
        with self._lock:
            taken, self._pictures = self._pictures, []
        return taken

    def take_calls(self) -> list[dict[str, Any]]:
        """Each MCP call since the last take: server, tool, ok, seconds (the transcript's `mcp_calls`)."""
        with self._lock:
            taken, self._calls = self._calls, []
        return taken

    # -- the loop and the servers' tasks ---------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="codeact-mcp", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
            _route_sdk_logs(self)
            # jsonschema, which checks every call's arguments (and the SDK its structured results),
            # takes a second or more to import: it happens while the first server starts, rather
            # than inside the first call, against the program's timeout.
            self._warm = threading.Thread(target=lambda: __import__("jsonschema.validators"),
                                          name="codeact-mcp-warm", daemon=True)
            self._warm.start()
        return self._loop

    def _log_path(self, name: str) -> Path:
        if self._log_dir is None:
            self._log_dir = scratch.folder("mcp-logs")
            self._own_log_dir = True
        return self._log_dir / f"{name}.log"

    def _start(self, server: Server, at_kernel_start: bool = False) -> concurrent.futures.Future[None]:
        loop = self._ensure_loop()
        server.state, server.reason, server._stopping = "starting", "", False
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        server.started = started
        server._held = asyncio.run_coroutine_threadsafe(self._hold(server, started, at_kernel_start), loop)
        return started

    async def _hold(self, server: Server, started: concurrent.futures.Future[None], at_kernel_start: bool) -> None:
        """The server's whole connection, as one task: connect, list its tools, then hold the
        session open until stopped (or until the connection fails)."""
        import anyio
        import anyio.to_thread

        spec = server.spec
        _current_server.set(server.name)
        server.note(f"starting ({spec.transport}: {spec.where()})")
        began = time.monotonic()
        reason = ""
        errlog = open(server.log, "a", encoding="utf-8")  # noqa: SIM115 - the server's stderr, while it runs
        try:
            with anyio.CancelScope() as scope:
                server._scope = scope
                if server._stopping:  # stopped before this task began
                    scope.cancel()
                scope.deadline = anyio.current_time() + spec.timeout
                async with AsyncExitStack() as stack:
                    client = await self._connect(server, errlog, stack)
                    listing = await _list_tools(client)
                    if self._warm is not None and self._warm.is_alive():
                        await anyio.to_thread.run_sync(self._warm.join)
                    scope.deadline = math.inf  # started: from now on only stop() ends it
                    async with anyio.create_task_group() as group:
                        queue: asyncio.Queue[Any] = asyncio.Queue()
                        group.start_soon(self._dispatch, server, group, queue)
                        self._connected(server, client, queue, listing, time.monotonic() - began)
                        if not started.done():
                            started.set_result(None)
                        await anyio.sleep_forever()
            if scope.cancelled_caught and not started.done():
                reason = (f"it did not start within {spec.timeout:g} s (its timeout; `%mcp add {spec.name} "
                          f"--timeout S ...` or \"timeout\" in the config file sets it)")
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none kills the loop
            reason = _describe(exc)
        finally:
            errlog.close()
            queue = server._group
            server._client = server._group = server._scope = None
        if not started.done():
            server.state = "failed"
            server.reason = _failed_reason(server, reason or "it stopped before it was ready")
            server.note(f"failed: {server.reason}")
            started.set_exception(MCPServerError(server.reason))
            if at_kernel_start:
                self._unsaid.append(f"MCP server {server.name} could not start: {server.reason}")
        elif server._stopping:
            server.state, server.reason = "stopped", "stopped by %mcp remove or the kernel's shutdown"
        elif server.state == "ready":  # the connection ended on its own (a server gone, a dropped link)
            server.state, server.reason = "stopped", _stopped_reason(server, reason or "its connection ended")
            server.note(f"stopped: {reason or 'its connection ended'}")
        while queue is not None and not queue.empty():  # calls that arrived as it went down
            _tool, _arguments, answer = queue.get_nowait()
            answer.set_exception(MCPToolError(server.reason or _stopped_reason(server, "it stopped")))

    async def _connect(self, server: Server, errlog: Any, stack: AsyncExitStack) -> Any:
        from mcp import Client, Implementation

        info = Implementation(name="codeact-kernel", version=__version__)
        spec = server.spec
        if spec.command is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            if os.name == "posix":  # the reaper stays as the server's parent, so it dies with the kernel
                command = sys.executable
                args = ["-I", "-S", str(REAPER), str(os.getpid()), str(server.log), str(LOG_MAX_BYTES), "--",
                        spec.command, *spec.args]
            else:  # Windows: the SDK puts the server in a Job Object, which ends with the kernel's process
                command, args = spec.command, list(spec.args)
            params = StdioServerParameters(command=command, args=args, env=dict(spec.env), cwd=spec.cwd)
            transport = stdio_client(params, errlog=errlog)
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            async def on_response(response: Any) -> None:
                if response.status_code >= 400:  # the SDK's error says only that one came: say which
                    server.http_error = f"HTTP {response.status_code} {response.reason_phrase}"
                    server.note(f"{server.http_error} for {response.request.method} {spec.where()}")

            server.http_error = ""
            http = await stack.enter_async_context(httpx2.AsyncClient(
                headers=dict(spec.headers), timeout=httpx2.Timeout(30, read=300),
                event_hooks={"response": [on_response]}))
            transport = streamable_http_client(spec.url or "", http_client=http)
        return await stack.enter_async_context(Client(transport, client_info=info))

    def _connected(self, server: Server, client: Any, queue: asyncio.Queue[Any], listing: list[Any],
                   seconds: float) -> None:
        tools: dict[str, ToolDef] = {}
        skipped: dict[str, str] = {}
        for item in listing:
            why = schema.unusable(item.name, item.input_schema)
            if why is not None:
                skipped[item.name] = why
                continue
            hints = item.annotations
            tools[item.name] = ToolDef(
                name=item.name, title=item.title or (hints.title if hints else None),
                description=item.description or "",
                parameters=schema.Parameters(item.name, item.input_schema), output_schema=item.output_schema,
                read_only=hints.read_only_hint if hints else None,
                destructive=hints.destructive_hint if hints else None)
        with server._lock:
            server.tools, server.skipped, server._entries = tools, skipped, None
            server._client, server._group = client, queue
            server.state, server.reason, server.seconds = "ready", "", seconds
        server.note(f"ready in {seconds:.1f} s: {len(tools)} tools" + (f", {len(skipped)} left out" if skipped else ""))

    def _stop(self, server: Server) -> None:
        server._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: server._scope is not None and server._scope.cancel())

    def _wait_stopped(self, servers: list[Server]) -> None:
        deadline = time.monotonic() + _STOP_SECONDS
        for server in servers:
            if server._held is not None:
                with suppress(Exception):
                    server._held.result(timeout=max(deadline - time.monotonic(), 0.1))

    def close(self) -> None:
        """Stop every server (the SDK's shutdown, at most a few seconds), then the loop. Its thread's
        end is, for every reaper still running, the kernel going away: nothing outlives this."""
        servers = list(self._servers.values())
        for server in servers:
            self._stop(server)
        self._wait_stopped(servers)
        self._servers.clear()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop = self._thread = None
        if self._own_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir, self._own_log_dir = None, False


async def _list_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _page in range(100):  # a server that pages for ever cannot hang the start (its timeout also holds)
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    inner_exceptions = getattr(exc, "exceptions", None)  # an exception group (3.11's, or the backport's)
    if isinstance(inner_exceptions, (list, tuple)):
        for inner in inner_exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    """The exception that says what happened, out of the groups anyio wraps it in."""
    import anyio

    leaves = [e for e in _leaves(exc) if not isinstance(e, anyio.get_cancelled_exc_class())] or [exc]
    first = leaves[0]
    message = getattr(first, "message", None) or str(first) or type(first).__name__
    name = type(first).__name__
    if name in ("ConnectError", "ConnectTimeout"):
        return f"cannot connect: {message}"
    if name == "HTTPStatusError":
        return f"the server answered {message}"
    return message if name == "MCPError" else f"{name}: {message}"


def _failed_reason(server: Server, reason: str) -> str:
    if server.http_error:
        advice = " (check its headers: a token?)" if server.http_error[5:8] in ("401", "403") else ""
        reason = f"{reason}: the server answered {server.http_error}{advice}"
    where = f"{server.spec.transport} {server.spec.where()}"
    tail = server.log_tail()
    said = f"; its log ends: {tail}" if tail else ""
    return f"{reason} ({where}){said}. `%mcp log {server.name}` shows the whole log"


def _stopped_reason(server: Server, what: str) -> str:
    tail = server.log_tail(2)
    said = f"; its log ends: {tail}" if tail else ""
    return (f"the MCP server {server.name} stopped: {what}{said}. The next call starts it again "
            f"(`%mcp log {server.name}` shows its log)")


class _ServerLogs(logging.Handler):
    """The SDK's log records about a server, into that server's log rather than a cell."""

    def __init__(self, manager: Manager) -> None:
        super().__init__(logging.INFO)
        self.manager = manager

    def emit(self, record: logging.LogRecord) -> None:
        name = _current_server.get()
        server = self.manager._servers.get(name) if name else None
        if server is not None:
            with suppress(Exception):
                server.note(f"{record.levelname.lower()} (mcp SDK): {record.getMessage()}")


def _route_sdk_logs(manager: Manager) -> None:
    sdk = logging.getLogger("mcp")
    for handler in [h for h in sdk.handlers if isinstance(h, _ServerLogs)]:
        sdk.removeHandler(handler)
    sdk.addHandler(_ServerLogs(manager))
    sdk.setLevel(logging.INFO)
    sdk.propagate = False  # a cell's stderr is where the root logger's fallback would write
