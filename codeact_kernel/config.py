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
SANDBOXES = ("auto", "hyperlight", "wasmtime")
DEFAULT_MODEL = "gpt-4o-mini"

ENVIRONMENT = {
    "OPENAI_API_KEY": "API key for the model server",
    "OPENAI_BASE_URL": "OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 for Ollama",
    "CODEACT_MODEL": f"model name (default {DEFAULT_MODEL}), replay:TRANSCRIPT or local:MODEL.gguf",
    "CODEACT_APPROVAL": "ask (default), auto, reject or recorded",
    "CODEACT_SANDBOX": "auto (default), hyperlight or wasmtime",
    "CODEACT_SANDBOX_PROCESS": "inline (default: wasmtime in the kernel's process) or worker (a child process)",
    "CODEACT_TIMEOUT": "seconds a program may run (default 30)",
    "CODEACT_TRANSCRIPT": "where turns are recorded (default: NOTEBOOK.codeact.jsonl beside the notebook)",
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
    timeout: float = 30.0
    memory_mb: int = 512
    max_repairs: int = 2
    result_name: str = "result"
    allowed_domains: dict[str, frozenset[str] | None] = field(default_factory=dict)
    input_dir: Path | None = None
    output: bool = True
    transcript: Path | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.approval not in APPROVAL_POLICIES:
            raise ConfigError(f"approval must be one of {', '.join(APPROVAL_POLICIES)}, not {self.approval!r}")
        if self.sandbox not in SANDBOXES:
            raise ConfigError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {self.sandbox!r}")
        if self.sandbox_process not in SANDBOX_PROCESSES:
            raise ConfigError(f"the sandbox process must be one of {', '.join(SANDBOX_PROCESSES)}, "
                              f"not {self.sandbox_process!r}")
        if not self.timeout > 0:
            raise ConfigError(f"the timeout must be a positive number of seconds, not {self.timeout!r}")
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
        if environ.get("CODEACT_TRANSCRIPT"):
            changes["transcript"] = Path(environ["CODEACT_TRANSCRIPT"]).expanduser()
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


def parse_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number of seconds, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{what} must be positive, not {text!r}")
    return value
