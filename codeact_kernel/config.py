"""One `Config` for the kernel; the environment, traitlets and magics all edit it.

Precedence, lowest first: defaults, the Jupyter config file (`c.CodeActKernel.model = ...`),
environment variables, then magics in the notebook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError
from .sandbox.base import Grants, Limits
from .sandbox.selection import PROCESSES as SANDBOX_PROCESSES

APPROVAL_POLICIES = ("ask", "auto", "reject", "recorded")
PERMISSIVENESS = ("reject", "ask", "recorded", "auto")  # least permissive first
CEILING_FILE = "codeact.json"  # {"approval_max": "ask"} in a system-wide Jupyter config directory
SANDBOXES = ("auto", "hyperlight", "wasmtime")
GUESTS = ("auto", "standard", "science")
DEFAULT_MODEL = "gpt-4o-mini"

ENVIRONMENT = {
    "OPENAI_API_KEY": "API key for the model server",
    "OPENAI_BASE_URL": "OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 for Ollama",
    "CODEACT_MODEL": f"model name (default {DEFAULT_MODEL}), replay:TRANSCRIPT or local:MODEL.gguf",
    "CODEACT_APPROVAL": "ask (default), auto, reject or recorded",
    "CODEACT_APPROVAL_MAX": "the most permissive approval policy allowed, set by whoever deploys the kernel",
    "CODEACT_SANDBOX": "auto (default), hyperlight or wasmtime",
    "CODEACT_SANDBOX_PROCESS": "inline (default: wasmtime in the kernel's process) or worker (a child process)",
    "CODEACT_DATA_MAX_MB": "the most one shared value may take as data, in MB (default 100)",
    "CODEACT_GUEST": "auto (default: the scientific guest for programs that need numpy, pandas & co.), standard or science",
    "CODEACT_TIMEOUT": "seconds a program may run (default 30)",
    "CODEACT_TRANSCRIPT": "where turns are recorded (default: NOTEBOOK.codeact.jsonl beside the notebook)",
    "CODEACT_HISTORY_TOKENS": "the conversation's budget in each request, in tokens (default 800), or all",
    "CODEACT_MCP_CONFIG": "the MCP servers file to read (default: codeact_mcp.json on Jupyter's config path), or none",
}


@dataclass
class Config:
    """Everything a prompt cell depends on. The API key is never shown."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model_timeout: float = 120.0
    approval: str = "ask"
    sandbox: str = "auto"
    sandbox_process: str = "inline"
    guest: str = "auto"
    """Which guest runs a program: auto (by its imports and inputs), standard or science."""
    timeout: float = 30.0
    memory_mb: int = 512
    data_max_mb: float = 100.0
    """The most one value shared with programs (%share) may take as data."""
    max_repairs: int = 2
    result_name: str = "result"
    history_tokens: int | None = 800
    """The conversation's budget in each request (see history.py); None: all of it, whole."""
    allowed_domains: dict[str, frozenset[str] | None] = field(default_factory=dict)
    input_dir: Path | None = None
    output: bool = True
    transcript: Path | None = None
    approval_max: str = "auto"
    """The ceiling: no setting may pick a policy more permissive than this (see `ceiling`)."""
    approval_max_source: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.approval not in APPROVAL_POLICIES:
            raise ConfigError(f"approval must be one of {', '.join(APPROVAL_POLICIES)}, not {self.approval!r}")
        if PERMISSIVENESS.index(self.approval) > PERMISSIVENESS.index(self.approval_max):
            allowed = ", ".join(PERMISSIVENESS[:PERMISSIVENESS.index(self.approval_max) + 1])
            raise ConfigError(f"the approval policy {self.approval!r} is not allowed here: {self.approval_max_source} "
                              f"sets the most permissive policy to {self.approval_max!r} (allowed: {allowed})")
        if self.sandbox not in SANDBOXES:
            raise ConfigError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {self.sandbox!r}")
        if self.sandbox_process not in SANDBOX_PROCESSES:
            raise ConfigError(f"the sandbox process must be one of {', '.join(SANDBOX_PROCESSES)}, "
                              f"not {self.sandbox_process!r}")
        if self.guest not in GUESTS:
            raise ConfigError(f"the guest must be one of {', '.join(GUESTS)}, not {self.guest!r}")
        if not self.timeout > 0:
            raise ConfigError(f"the timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.history_tokens is not None and not (isinstance(self.history_tokens, int) and self.history_tokens >= 0):
            raise ConfigError(f"the history budget must be a number of tokens or all, not {self.history_tokens!r}")
        if not self.data_max_mb > 0:
            raise ConfigError(f"the data limit must be a positive number of megabytes, not {self.data_max_mb!r}")
        if not self.result_name.isidentifier():
            raise ConfigError(f"the result name must be a Python identifier, not {self.result_name!r}")

    def with_env(self, environ: Mapping[str, str] = os.environ) -> Config:
        """A copy with the environment's settings applied."""
        changes: dict[str, object] = {}
        if environ.get("OPENAI_API_KEY"):
            changes["api_key"] = environ["OPENAI_API_KEY"]
        if environ.get("OPENAI_BASE_URL"):
            changes["base_url"] = environ["OPENAI_BASE_URL"]
        if environ.get("CODEACT_MODEL"):
            changes["model"] = environ["CODEACT_MODEL"]
        if environ.get("CODEACT_APPROVAL"):
            changes["approval"] = environ["CODEACT_APPROVAL"].strip().lower()
        if environ.get("CODEACT_SANDBOX"):
            changes["sandbox"] = environ["CODEACT_SANDBOX"].strip().lower()
        if environ.get("CODEACT_SANDBOX_PROCESS"):
            changes["sandbox_process"] = environ["CODEACT_SANDBOX_PROCESS"].strip().lower()
        if environ.get("CODEACT_GUEST"):
            changes["guest"] = environ["CODEACT_GUEST"].strip().lower()
        if environ.get("CODEACT_TRANSCRIPT"):
            changes["transcript"] = Path(environ["CODEACT_TRANSCRIPT"]).expanduser()
        if environ.get("CODEACT_HISTORY_TOKENS"):
            changes["history_tokens"] = parse_budget(environ["CODEACT_HISTORY_TOKENS"], "CODEACT_HISTORY_TOKENS")
        if environ.get("CODEACT_DATA_MAX_MB"):
            try:
                changes["data_max_mb"] = float(environ["CODEACT_DATA_MAX_MB"])
            except ValueError:
                raise ConfigError("CODEACT_DATA_MAX_MB must be a number of megabytes, not "
                                  f"{environ['CODEACT_DATA_MAX_MB']!r}") from None
        if environ.get("CODEACT_TIMEOUT"):
            changes["timeout"] = parse_seconds(environ["CODEACT_TIMEOUT"], "CODEACT_TIMEOUT")
        return replace(self, **changes)  # type: ignore[arg-type]

    def replay_path(self) -> Path | None:
        """The transcript answering for the model, when the model is `replay:PATH`."""
        if self.model.startswith("replay:"):
            return Path(self.model[len("replay:"):]).expanduser()
        return None

    def limits(self) -> Limits:
        return Limits(timeout=self.timeout, memory_mb=self.memory_mb)

    def grants(self) -> Grants:
        return Grants(input_dir=self.input_dir, output=self.output, allowed_domains=dict(self.allowed_domains))


def ceiling(environ: Mapping[str, str] = os.environ,
            config_dirs: list[str] | None = None) -> tuple[str, str] | None:
    """The most permissive approval policy whoever deploys the kernel allows, and who said so.

    Read from the kernel's environment (`CODEACT_APPROVAL_MAX`, e.g. in the kernelspec's
    `env`) and from `codeact.json` in Jupyter's system-wide and environment config
    directories, never the user's own: the strictest wins. None if nobody set one.
    """
    import json

    if config_dirs is None:
        from jupyter_core.paths import ENV_CONFIG_PATH, SYSTEM_CONFIG_PATH

        config_dirs = [*ENV_CONFIG_PATH, *SYSTEM_CONFIG_PATH]
    found: list[tuple[str, str]] = []
    if environ.get("CODEACT_APPROVAL_MAX"):
        found.append((environ["CODEACT_APPROVAL_MAX"].strip().lower(),
                      "CODEACT_APPROVAL_MAX in the kernel's environment (the kernelspec's env, or whoever started it)"))
    for directory in config_dirs:
        path = Path(directory) / CEILING_FILE
        try:
            value = json.loads(path.read_text()).get("approval_max")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str):
            found.append((value.strip().lower(), f"approval_max in {path}"))
    for policy, source in found:
        if policy not in PERMISSIVENESS:
            raise ConfigError(f"{source} must be one of {', '.join(PERMISSIVENESS)}, not {policy!r}")
    return min(found, key=lambda item: PERMISSIVENESS.index(item[0]), default=None)


def parse_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number of seconds, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{what} must be positive, not {text!r}")
    return value


def parse_budget(text: str, what: str) -> int | None:
    """A history budget: a number of tokens (1500, 1_500, 1,500), or `all` for no budget."""
    value = text.strip().lower().replace(",", "").replace("_", "")
    if value in ("all", "none", "off"):
        return None
    if value.isdigit():
        return int(value)
    raise ConfigError(f"{what} must be a number of tokens or all, not {text.strip()!r}")
