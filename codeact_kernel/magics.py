"""Line magics: see and change the session from the notebook (%model, %approval, %sandbox ...).

Each magic prints what is now in force, so a notebook records its own settings.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .config import (APPROVAL_POLICIES, ENVIRONMENT, GUESTS, SANDBOX_PROCESSES, SANDBOXES, parse_budget,
                     parse_seconds)
from .errors import ConfigError, DataError, MCPServerError
from .history import describe, fit
from .markdown import emphasis, printable
from .mcp_tools import config_paths, spec_from_args
from .mcp_tools.manager import Server
from .sandbox.network import Rule
from .session import Session
from .tools import Tool

HELP = """\
CodeAct kernel: each cell is a prompt. The model answers with one Python program that
calls your tools; you approve it; it runs in a sandbox and prints the answer.

  %%python              first line of a cell that is ordinary Python (define tools here)
  @tool                 register a function as a tool (type hints + docstring describe it)
  %model [NAME] [--base-url URL] [--timeout S]   (or: %model replay TRANSCRIPT, %model local MODEL.gguf)
  %approval [ask|auto|reject|recorded]
  %transcript [PATH]    where every turn is recorded
  %sandbox [backend auto|hyperlight|wasmtime | process inline|worker | guest auto|standard|science |
            timeout S | memory MB | allow DOMAIN [METHOD,...] | deny DOMAIN | input DIR|off | output on|off]
  %tools [remove NAME]  registered tools, as the model sees them
  %mcp                  MCP servers: their state and tools
  %mcp add NAME [--approval always|each-call|auto] [--timeout S] ... (-- COMMAND [ARGS] | URL)
  %mcp remove NAME, %mcp log NAME [LINES], %mcp approval NAME [TOOL] always|each-call|auto
  %share [NAME ...] [--rows N], %unshare NAME   notebook values programs start with (as copies)
  %history, %forget     the conversation the model remembers, and clearing it (and carried data)
  %codeact history TOKENS|all   the conversation's budget in each request (default 800)
  %codeact result NAME  the variable a program's set_result(value) is bound to

Environment:
""" + "\n".join(f"  {name:<17} {text}" for name, text in ENVIRONMENT.items())


def _usage_errors(method: Callable[..., None]) -> Callable[..., None]:
    """A bad setting prints one line (IPython's UsageError), not a traceback."""

    @functools.wraps(method)
    def wrapper(self: Any, line: str) -> None:
        try:
            method(self, line)
        except (ConfigError, MCPServerError, KeyError, ValueError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None

    return wrapper


@magics_class
class CodeActMagics(Magics):
    def __init__(self, shell, session: Session) -> None:  # type: ignore[no-untyped-def]
        super().__init__(shell)
        self.session = session

    @line_magic
    @_usage_errors
    def codeact(self, line: str) -> None:
        """Help, `%codeact result NAME` and `%codeact history TOKENS|all`."""
        args = shlex.split(line)
        if args[:1] == ["result"] and len(args) == 2:
            self._set(result_name=args[1])
            print(f"set_result(value) binds `{args[1]}`")
            return
        if args[:1] == ["history"] and len(args) == 2:
            self._set(history_tokens=parse_budget(args[1], "%codeact history"))
            budget = self.session.config.history_tokens
            print("history budget: none (every turn whole)" if budget is None else
                  f"history budget {budget:,} tokens: newest turns whole, older ones condensed, the oldest left out")
            return
        print(HELP)

    @line_magic
    @_usage_errors
    def model(self, line: str) -> None:
        """`%model [NAME] [--base-url URL] [--timeout S]`: the model, and where it is served."""
        args = shlex.split(line)
        changes: dict[str, object] = {}
        if args[:1] in (["replay"], ["local"]) and len(args) == 2:
            path = Path(args[1]).expanduser()
            if not path.exists():
                raise ConfigError(f"%model {args[0]}: {path} does not exist")
            args = [f"{args[0]}:{path}"]
        while args:
            arg = args.pop(0)
            if arg == "--base-url" and args:
                changes["base_url"] = args.pop(0) or None
            elif arg == "--timeout" and args:
                changes["model_timeout"] = parse_seconds(args.pop(0), "--timeout")
            elif not arg.startswith("--"):
                changes["model"] = arg
            else:
                raise ConfigError(f"%model: unknown option {arg!r}; usage: %model [NAME] [--base-url URL] [--timeout S]")
        self._set(**changes)
        c = self.session.config
        if c.replay_path() is not None:
            print(f"model {c.model}: answers come from the transcript, no network call")
            return
        key = "set" if c.api_key else "not set (OPENAI_API_KEY)"
        print(f"model {c.model} at {c.base_url or 'the OpenAI API'}; API key {key}; timeout {c.model_timeout:g} s")

    @line_magic
    @_usage_errors
    def approval(self, line: str) -> None:
        """`%approval [ask|auto|reject|recorded]`: who decides whether a program runs;
        `%approval revoke TOOL|all`: take back tools allowed for the session."""
        args = line.strip().split()
        allowed = self.session.allowed_tools
        if args[:1] == ["revoke"]:
            names = set(allowed) if args[1:] == ["all"] else set(args[1:])
            unknown = names - allowed
            if not names or unknown:
                raise UsageError(f"%approval revoke TOOL... | all: {', '.join(sorted(unknown)) or 'nothing'} "
                                 f"is not allowed now (allowed: {', '.join(sorted(allowed)) or 'none'})")
            allowed -= names
        elif args:
            self._set(approval=args[0].lower())
        descriptions = {"ask": "each program waits for Approve, Edit or Reject",
                        "auto": "programs run without asking (tools marked approval='always' still ask)",
                        "reject": "programs are shown, never run",
                        "recorded": "a program approved before (same SHA-256 in the transcript) runs; "
                                    "any other asks"}
        current = self.session.config.approval
        print(f"approval: {current}: {descriptions[current]} (choices: {', '.join(APPROVAL_POLICIES)})")
        if self.session.config.approval_max_source:
            print(f"ceiling: {self.session.config.approval_max} ({self.session.config.approval_max_source})")
        if allowed:
            print(f"allowed for this session (programs calling only these run unasked): {', '.join(sorted(allowed))}"
                  " · %approval revoke TOOL|all")

    @line_magic
    @_usage_errors
    def sandbox(self, line: str) -> None:
        """`%sandbox [SETTING VALUE]`: the backend and why, limits, files and network."""
        args = shlex.split(line)
        if args:
            self._change_sandbox(args)
        print(self._describe_sandbox())

    def _change_sandbox(self, args: list[str]) -> None:
        what, rest = args[0], args[1:]
        config = self.session.config
        if what == "backend" and len(rest) == 1 and rest[0] in SANDBOXES:
            self._set(sandbox=rest[0])
        elif what == "process" and len(rest) == 1 and rest[0] in SANDBOX_PROCESSES:
            self._set(sandbox_process=rest[0])
        elif what == "guest" and len(rest) == 1 and rest[0] in GUESTS:
            self._set(guest=rest[0])
            choice = self.session.current_sandbox()
            router = choice.sandbox if choice is not None else None
            if hasattr(router, "setting"):
                router.setting = rest[0]  # type: ignore[union-attr]
        elif what == "timeout" and len(rest) == 1:
            self._set(timeout=parse_seconds(rest[0], "%sandbox timeout"))
        elif what == "memory" and len(rest) == 1 and rest[0].isdigit():
            self._set(memory_mb=int(rest[0]))
        elif what == "allow" and rest:
            methods = frozenset(m.strip().upper() for m in rest[1].split(",")) if len(rest) > 1 else None
            try:
                Rule.parse(rest[0], methods)
            except ValueError as exc:
                raise ConfigError(f"%sandbox allow: {exc}") from None
            config.allowed_domains[rest[0]] = methods
        elif what == "deny" and len(rest) == 1:
            if config.allowed_domains.pop(rest[0], "missing") == "missing":
                raise ConfigError(f"%sandbox deny: {rest[0]!r} is not allowed; allowed: "
                                  f"{', '.join(config.allowed_domains) or 'none'}")
        elif what == "input" and len(rest) == 1:
            if rest[0] == "off":
                self._set(input_dir=None)
            else:
                path = Path(rest[0]).expanduser().resolve()
                if not path.is_dir():
                    raise ConfigError(f"%sandbox input: {path} is not a directory")
                self._set(input_dir=path)
        elif what == "output" and rest in (["on"], ["off"]):
            self._set(output=rest[0] == "on")
        else:
            raise ConfigError(f"%sandbox: cannot understand {' '.join(args)!r}; see %codeact")

    def _describe_sandbox(self) -> str:
        c = self.session.config
        choice = self.session.current_sandbox()
        if choice is None:
            backend = f"{c.sandbox} (chosen when the first program runs)"
        else:
            backend = f"{choice.sandbox.name}: {choice.reason}"
        domains = ", ".join(f"{d} ({','.join(sorted(m)) if m else 'any method'})"
                            for d, m in c.allowed_domains.items()) or "none (no network)"
        return "\n".join([
            f"backend   {backend}",
            f"process   {c.sandbox_process}" + (" (Hyperlight always runs in a worker process)"
                                                 if c.sandbox_process == "inline" else ""),
            f"guest     {self._describe_guest(choice)}",
            f"limits    timeout {c.timeout:g} s, memory {c.memory_mb} MB",
            f"/input    {c.input_dir or 'not mounted'} (read-only)",
            f"/output   {'on: files come back to the notebook' if c.output else 'off'}",
            f"network   {domains}",
        ])

    def _describe_guest(self, choice: Any) -> str:
        """The guest setting, what it means, and which guest the last program got and why."""
        from .sandbox.science.artifacts import INSTALL, available

        setting = self.session.config.guest
        meaning = {
            "auto": "the scientific guest (numpy, pandas, scipy, sklearn, statsmodels, matplotlib) for programs "
                    "that import them or are given a DataFrame or array; the standard guest for the rest",
            "standard": "every program in the standard guest (the standard library only)",
            "science": "every program in the scientific guest",
        }[setting]
        text = f"{setting}: {meaning}"
        if setting != "standard" and available() is not None:
            text += f"; the scientific guest is not installed here ({INSTALL})"
        last = getattr(choice.sandbox, "last", None) if choice is not None else None
        if last is not None:
            text += f"\n          last program: the {last.guest} guest, as {last.reason}"
        return text

    @line_magic
    @_usage_errors
    def tools(self, line: str) -> None:
        """`%tools [remove NAME]`: registered tools as the model sees them."""
        args = shlex.split(line)
        registry = self.session.registry
        if args[:1] == ["remove"] and len(args) == 2:
            registry.remove(args[1])
        elif args:
            raise ConfigError("%tools: usage: %tools [remove NAME]")
        self._wait_for_mcp()
        for entry in registry:
            print(entry.describe() + _mark(entry))
        if not len(registry):
            print("no tools yet: define one in a %%python cell with @tool, or connect an MCP server (%mcp add)")

    @line_magic
    @_usage_errors
    def mcp(self, line: str) -> None:
        """`%mcp`: MCP servers and their tools; `%mcp add|remove|log|approval ...` (see %codeact)."""
        args = shlex.split(line)
        manager = self.session.mcp
        if args[:1] == ["add"]:
            spec = spec_from_args(args[1:])
            waiting = _progress(f"connecting {spec.name} ({spec.transport}: {spec.where()})…")
            server = manager.add(spec, progress=waiting)
            print(self._describe_server(server))
        elif args[:1] == ["remove"] and len(args) == 2:
            manager.remove(args[1])
            print(f"{args[1]}: disconnected; its tools are gone")
        elif args[:1] == ["log"] and len(args) in (2, 3):
            lines = int(args[2]) if len(args) == 3 and args[2].isdigit() else 40
            print(manager.log_text(args[1], lines))
        elif args[:1] == ["approval"] and len(args) in (3, 4):
            tool = args[2] if len(args) == 4 else None
            print(self._describe_server(manager.set_approval(args[1], args[-1], tool)))
        elif args:
            raise ConfigError(f"%mcp: cannot understand {line.strip()!r}. Usage: %mcp | %mcp add NAME ... "
                              "(-- COMMAND [ARGS] | URL) | %mcp remove NAME | %mcp log NAME [LINES] | "
                              "%mcp approval NAME [TOOL] always|each-call|auto")
        else:
            self._wait_for_mcp()
            servers = manager.servers()
            for problem in manager.problems:
                print(f"configuration: {problem}")
            if not servers:
                where = ", ".join(str(p) for p in config_paths()) or "none (CODEACT_MCP_CONFIG=none)"
                print(f"no MCP servers: %mcp add NAME -- COMMAND [ARGS] (stdio) or %mcp add NAME URL "
                      f"(Streamable HTTP); the configuration file is read from {where}")
            for server in servers:
                print(self._describe_server(server))

    def _describe_server(self, server: Server) -> str:
        """A server's state, how it is reached, its approval setting, and its tools as programs call them."""
        spec = server.spec
        state = {"ready": f"ready, {len(server.tools)} tool{'s' if len(server.tools) != 1 else ''}",
                 "starting": "starting", "failed": f"failed: {server.reason}",
                 "stopped": f"stopped: {server.reason}"}[server.state]
        setting = {"always": "a program that may call one needs a person",
                   "each-call": "each call waits for a person", "auto": "ordinary tools"}[spec.approval]
        hints = ("tools annotated read-only are ordinary" if spec.trust_annotations
                 else "read-only annotations ignored (--annotations ignore)")
        lines = [f"{server.name}: {state} ({spec.transport}: {spec.where()})",
                 f"  approval {spec.approval}: {setting}; {hints}"
                 + "".join(f"; {tool}: {value}" for tool, value in spec.tool_approval.items())]
        entries = [t for t in self.session.registry if t.server == server.name]
        for entry in entries:
            lines.append(f"  {entry.name}{entry.signature}{_mark(entry, with_server=False)}")
        for name, why in server.skipped.items():
            lines.append(f"  left out: {name}: {why}")
        return "\n".join(lines)

    def _wait_for_mcp(self) -> None:
        """Servers the configuration file started at kernel start may still be connecting."""
        starting = self.session.mcp.starting()
        if starting:
            print(f"waiting for MCP server{'s' if len(starting) > 1 else ''} "
                  f"{', '.join(s.name for s in starting)} to start…", flush=True)
            self.session.mcp.wait_starting()

    @line_magic
    @_usage_errors
    def transcript(self, line: str) -> None:
        """`%transcript [PATH]`: where each turn is recorded (one JSON line per turn)."""
        if line.strip():
            self._set(transcript=Path(line.strip()).expanduser().resolve())
        path = self.session.transcript_path()
        print(f"transcript {path} (appended to after every prompt cell)")

    @line_magic
    @_usage_errors
    def history(self, line: str) -> None:
        """`%history`: the conversation, and how much of it the next request carries."""
        if not self.session.history:
            print("the conversation is empty")
            return
        budget = self.session.config.history_tokens
        window = fit(self.session.history, "", budget)
        print(describe(window, budget))
        for number, (turn, form) in enumerate(zip(self.session.history, window.forms), 1):
            print(f"[{number}] ({form}) {turn.prompt}")
            print(f"    {turn.decision}" + (f": {turn.reason}" if turn.reason else ""))
            if turn.error:
                print("    error: " + turn.error.strip().splitlines()[-1])
            elif turn.output:
                first = turn.output.strip().splitlines()
                print("    output: " + (first[0] if first else "") + (" ..." if len(first) > 1 else ""))

    @line_magic
    @_usage_errors
    def forget(self, line: str) -> None:
        """`%forget`: clear the conversation and the data programs carried (tools, settings and
        shared names stay)."""
        count = len(self.session.history)
        self.session.history.clear()
        carried = self.session.workspace.forget()
        print(f"forgot {count} turn{'s' if count != 1 else ''}"
              + (f" and {carried} carried value{'s' if carried != 1 else ''}" if carried else ""))

    @line_magic
    @_usage_errors
    def share(self, line: str) -> None:
        """`%share [NAME ...] [--rows N]`: hand notebook values (DataFrames, Series, arrays, JSON
        values) to every later program under the same names, as copies; alone, list what programs
        start with. The model is told each one's type, shape and columns; with --rows N also its
        first N rows."""
        args = shlex.split(line)
        rows = None
        if "--rows" in args:
            at = args.index("--rows")
            try:
                rows = int(args[at + 1])
            except (IndexError, ValueError):
                raise ConfigError("%share: --rows takes a number of rows, e.g. %share sales --rows 5") from None
            del args[at:at + 2]
        workspace = self.session.workspace
        workspace.limit = int(self.session.config.data_max_mb * 2**20)
        namespace = self.shell.user_ns
        if args:
            for said in workspace.share(namespace, args, rows):
                print(f"shared {said}")
            return
        lines = workspace.listing(namespace)
        print("\n".join(lines) if lines else "nothing shared or carried: %share NAME hands a notebook value to programs")

    @line_magic
    @_usage_errors
    def unshare(self, line: str) -> None:
        """`%unshare NAME`: programs no longer get it."""
        names = shlex.split(line)
        if len(names) != 1:
            raise ConfigError("%unshare: usage: %unshare NAME")
        self.session.workspace.unshare(names[0])
        print(f"{names[0]} is no longer shared")

    def _set(self, **changes: object) -> None:
        """Apply and validate; on a bad value nothing changes."""
        config = self.session.config
        old = {k: getattr(config, k) for k in changes}
        for key, value in changes.items():
            setattr(config, key, value)
        try:
            config.validate()
        except ConfigError:
            for key, value in old.items():
                setattr(config, key, value)
            raise


def _mark(entry: Tool, with_server: bool = True) -> str:
    """What %tools adds to a tool's line: where it comes from, and who decides about it."""
    parts = []
    if entry.server is not None and with_server:
        renamed = f" tool {entry.remote_name}" if entry.remote_name != entry.name else ""
        parts.append(f"MCP {entry.server}{renamed}")
    elif entry.server is not None and entry.remote_name != entry.name:
        parts.append(f"{entry.remote_name} on the server: another tool has that name")
    if entry.approval == "always":
        parts.append("always asks")
    elif entry.approval == "each-call" and entry.server is not None:
        parts.append("asks at each call")
    elif entry.server is not None:
        parts.append("ordinary")
    return f"  [{' · '.join(parts)}]" if parts else ""


def _progress(first: str) -> Callable[[str], None]:
    """A line that says what is being waited for, updated while it lasts (a server's start), so a
    cell shows progress without keeping it: it ends as it began, whatever the wait took."""
    from IPython.display import display

    def bundle(text: str) -> dict[str, str]:
        return {"text/plain": printable(text), "text/markdown": emphasis(text)}

    handle = display(bundle(first), raw=True, display_id=True)
    if handle is None:  # no display here (a plain terminal): say it once
        print(first, flush=True)
        return lambda text: print(text, flush=True)

    def update(text: str) -> None:
        handle.update(bundle(f"{first} {text}" if text else first), raw=True)

    update.done = lambda: handle.update(bundle(first), raw=True)  # type: ignore[attr-defined]
    return update
