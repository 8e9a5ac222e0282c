"""Which MCP servers to connect: the `mcpServers` file MCP clients share, and `%mcp add`'s words.

The file is the form Claude Desktop, Cursor and other MCP clients read, so a person can copy
a server's entry as it is; the keys this kernel adds (approval, timeouts) sit beside the
shared ones and other clients ignore them:

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
                  "env": {"DEBUG": "0"}, "approval": "each-call"},
        "issues": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}}}

Where it is read from: `CODEACT_MCP_CONFIG` names one file (`none`: no file); otherwise every
`codeact_mcp.json` on Jupyter's config path (`jupyter --paths`: the user's `~/.jupyter`
first, then the environment's and the system's), a server named in several taking the
first one's entry.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

CONFIG_FILE = "codeact_mcp.json"
CONFIG_VARIABLE = "CODEACT_MCP_CONFIG"

Setting = Literal["always", "each-call", "auto"]
SETTINGS: tuple[Setting, ...] = ("always", "each-call", "auto")
"""A server's (or one tool's) approval setting. `always`: a program that may call the tool
needs a person; `each-call`: every call waits for a person; `auto`: an ordinary tool, which
the session's approval policy decides about, like a plain @tool."""

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_CALL_TIMEOUT = 120.0
DEFAULT_MAX_RESULT = 1_000_000
"""Characters of JSON a tool's result may take (the sandbox's cap on printed output, Limits.output_bytes)."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ServerSpec:
    """One MCP server: how to reach it, and how much its tools are trusted."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may carry a token: never shown
    approval: Setting = "always"
    tool_approval: Mapping[str, Setting] = field(default_factory=dict)
    """Per tool, by the name the server gives it: wins over the server's setting and its annotations."""
    trust_annotations: bool = True
    """False: a tool the server annotates read-only is treated like any other of its tools."""
    timeout: float = DEFAULT_START_TIMEOUT
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    max_result: int = DEFAULT_MAX_RESULT
    source: str = "%mcp add"
    """Where it was defined, for messages: `%mcp add` or the file's path."""

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def where(self) -> str:
        """How it is reached, for listings (the URL without its query, never a header)."""
        if self.command is not None:
            return shlex.join([self.command, *self.args])
        return (self.url or "").split("?", 1)[0]

    def validate(self) -> ServerSpec:
        where = f"MCP server {self.name!r} ({self.source})"
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"{where}: a server's name is letters, digits, '_' and '-' (up to 64), so that "
                              "SERVER.TOOL names one of its tools; choose another name")
        if (self.command is None) == (self.url is None):
            raise ConfigError(f"{where}: give either a command (stdio) or a url (Streamable HTTP), not "
                              f"{'both' if self.command else 'neither'}")
        if self.url is not None and not re.match(r"https?://", self.url):
            raise ConfigError(f"{where}: the url must start with http:// or https://, not {self.url!r}")
        if self.command is not None and not self.command.strip():
            raise ConfigError(f"{where}: the command is empty")
        for setting in (self.approval, *self.tool_approval.values()):
            if setting not in SETTINGS:
                raise ConfigError(f"{where}: approval must be one of {', '.join(SETTINGS)}, not {setting!r}")
        for what, value in (("timeout", self.timeout), ("callTimeout", self.call_timeout)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(f"{where}: {what} must be a positive number of seconds, not {value!r}")
        if not (isinstance(self.max_result, int) and self.max_result > 0):
            raise ConfigError(f"{where}: maxResultBytes must be a positive number, not {self.max_result!r}")
        return self


def config_paths(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files servers are read from, highest priority first (see the module's docstring)."""
    named = environ.get(CONFIG_VARIABLE, "").strip()
    if named:
        return [] if named.lower() in ("none", "off") else [Path(named).expanduser()]
    from jupyter_core.paths import jupyter_config_path

    return [Path(directory) / CONFIG_FILE for directory in jupyter_config_path()]


def read_config(paths: list[Path], environ: Mapping[str, str] = os.environ) -> tuple[list[ServerSpec], list[str]]:
    """The servers these files define, and a message for each problem (a bad file or entry is
    skipped, said, and the others still load: one typo must not cost every server)."""
    found: dict[str, ServerSpec] = {}
    problems: list[str] = []
    for path in paths:
        if not path.exists():
            if environ.get(CONFIG_VARIABLE, "").strip() and path == Path(environ[CONFIG_VARIABLE].strip()).expanduser():
                problems.append(f"{CONFIG_VARIABLE} names {path}, which does not exist")
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path} could not be read as JSON: {exc}")
            continue
        servers = document.get("mcpServers") if isinstance(document, dict) else None
        if not isinstance(servers, dict):
            problems.append(f"{path} has no \"mcpServers\" object (the form is "
                            "{\"mcpServers\": {\"NAME\": {\"command\": ..., \"args\": [...]}}})")
            continue
        for name, entry in servers.items():
            if name in found:
                continue  # an earlier (higher-priority) file defined it
            try:
                spec = spec_from_entry(name, entry, str(path), environ)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            if spec is not None:
                found[name] = spec
    return list(found.values()), problems


def spec_from_entry(name: str, entry: Any, source: str,
                    environ: Mapping[str, str] = os.environ) -> ServerSpec | None:
    """One `mcpServers` entry as a ServerSpec; None for one marked `"disabled": true`."""
    where = f"MCP server {name!r} ({source})"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: an entry is an object with \"command\" (and \"args\", \"env\") or \"url\"")
    if entry.get("disabled") is True:
        return None
    kind = entry.get("type", entry.get("transport"))
    if kind is not None and kind not in ("stdio", "http", "streamable-http", "streamableHttp"):
        raise ConfigError(f"{where}: transport {kind!r} is not supported here (stdio and Streamable HTTP are; "
                          "SSE is deprecated by MCP)")

    def strings(key: str, kind: type) -> Any:
        value = entry.get(key, kind())
        ok = (isinstance(value, list) and all(isinstance(v, str) for v in value) if kind is list else
              isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()))
        if not ok:
            shape = "a list of strings" if kind is list else "an object of strings"
            raise ConfigError(f"{where}: \"{key}\" must be {shape}")
        return value

    approval = entry.get("approval", "always")
    tool_approval = entry.get("toolApproval", {})
    if not isinstance(tool_approval, dict):
        raise ConfigError(f"{where}: \"toolApproval\" must map tool names to one of {', '.join(SETTINGS)}")
    annotations = entry.get("annotations", "trust")
    if annotations not in ("trust", "ignore"):
        raise ConfigError(f"{where}: \"annotations\" must be \"trust\" or \"ignore\", not {annotations!r}")
    command = entry.get("command")
    if command is not None and not isinstance(command, str):
        raise ConfigError(f"{where}: \"command\" must be a string")
    url = entry.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{where}: \"url\" must be a string")
    return ServerSpec(
        name=name, command=_expand(command, environ, where),
        args=tuple(_expand(a, environ, where) for a in strings("args", list)),
        env={k: _expand(v, environ, where) for k, v in strings("env", dict).items()},
        cwd=entry.get("cwd"), url=_expand(url, environ, where),
        headers={k: _expand(v, environ, where) for k, v in strings("headers", dict).items()},
        approval=approval, tool_approval=dict(tool_approval), trust_annotations=annotations == "trust",
        timeout=entry.get("timeout", DEFAULT_START_TIMEOUT),
        call_timeout=entry.get("callTimeout", DEFAULT_CALL_TIMEOUT),
        max_result=entry.get("maxResultBytes", DEFAULT_MAX_RESULT), source=source,
    ).validate()


def _expand(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """`${NAME}` from the kernel's environment, so a file can name a token without holding it."""
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        if match.group(1) not in environ:
            raise ConfigError(f"{where}: ${{{match.group(1)}}} is not set in the kernel's environment")
        return environ[match.group(1)]

    return _VARIABLE.sub(lookup, value)


ADD_USAGE = ("%mcp add NAME [--approval always|each-call|auto] [--timeout S] [--call-timeout S] "
             "[--annotations trust|ignore] [--env K=V]... [--header 'K: V']... [--max-result N] "
             "(-- COMMAND [ARGS...] | URL)")


def spec_from_args(words: list[str], environ: Mapping[str, str] = os.environ) -> ServerSpec:
    """`%mcp add`'s words (after `add`) as a ServerSpec: options, then `-- COMMAND ARGS` or a URL."""
    if not words or words[0].startswith("-"):
        raise ConfigError(f"usage: {ADD_USAGE}")
    name, rest = words[0], words[1:]
    options: dict[str, Any] = {"env": {}, "headers": {}}
    command: list[str] | None = None
    url: str | None = None
    while rest:
        word = rest.pop(0)
        if word == "--":
            command = rest
            break
        if not word.startswith("--"):
            if url is not None or not re.match(r"https?://", word):
                raise ConfigError(f"%mcp add: {word!r} is neither an option nor a URL; a command comes after "
                                  f"`--`. Usage: {ADD_USAGE}")
            url = word
            continue
        if not rest:
            raise ConfigError(f"%mcp add: {word} needs a value. Usage: {ADD_USAGE}")
        value = rest.pop(0)
        if word == "--approval":
            options["approval"] = value
        elif word in ("--timeout", "--call-timeout"):
            try:
                seconds = float(value)
            except ValueError:
                raise ConfigError(f"%mcp add: {word} must be a number of seconds, not {value!r}") from None
            options["timeout" if word == "--timeout" else "call_timeout"] = seconds
        elif word == "--annotations":
            if value not in ("trust", "ignore"):
                raise ConfigError(f"%mcp add: --annotations is trust or ignore, not {value!r}")
            options["trust_annotations"] = value == "trust"
        elif word == "--env" and "=" in value:
            key, _, text = value.partition("=")
            options["env"][key] = _expand(text, environ, "%mcp add --env")
        elif word == "--header" and ":" in value:
            key, _, text = value.partition(":")
            options["headers"][key.strip()] = _expand(text.strip(), environ, "%mcp add --header")
        elif word == "--max-result" and value.isdigit():
            options["max_result"] = int(value)
        else:
            raise ConfigError(f"%mcp add: cannot understand {word} {value}. Usage: {ADD_USAGE}")
    if command is not None and url is not None:
        raise ConfigError("%mcp add: give a URL or `-- COMMAND`, not both")
    if command is not None and not command:
        raise ConfigError(f"%mcp add: no command after `--`. Usage: {ADD_USAGE}")
    if command is None and url is None:
        raise ConfigError(f"%mcp add: no server given: `-- COMMAND [ARGS]` (stdio) or a URL (Streamable HTTP). "
                          f"Usage: {ADD_USAGE}")
    return ServerSpec(name=name, command=command[0] if command else None, args=tuple(command[1:]) if command else (),
                      url=url, **options).validate()
