"""What a kernel remembers between cells: settings, the conversation, the sandbox in use.

The kernel, the magics and each cell's turn share one `Session`; none reaches into another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .approval import RanBy
from .config import Config
from .local_model import LocalServer, parse_local
from .mcp_tools import Manager
from .model import ModelConfig, Turn
from .protocol import CallAction
from .record import TurnRecord
from .sandbox.selection import Choice, choose
from .tools import REGISTRY, Registry
from .transcript import Replay, Transcript, approved_programs, default_path, recorded_calls
from .workspace import Workspace


@dataclass
class Session:
    config: Config
    registry: Registry = field(default_factory=lambda: REGISTRY)
    history: list[Turn] = field(default_factory=list)
    """The conversation the model remembers (`%forget` clears it)."""
    records: list[TurnRecord] = field(default_factory=list)
    """Every attempt of this session, as recorded (the extension's panel lists them)."""
    _choice: Choice | None = None
    _choice_for: tuple[str, str] | None = None
    announced: bool = False
    _replay: Replay | None = None
    local: LocalServer | None = None
    allowed_tools: set[str] = field(default_factory=set)
    """Tools a person allowed for the session: programs that call only these run unasked."""
    workspace: Workspace = field(default_factory=Workspace)
    """The values programs start with: shared from the notebook (%share), carried from earlier programs."""
    mcp: Manager = field(default_factory=Manager)
    """The MCP servers (mcp_tools): their tools are offered through the registry like @tools."""

    def __post_init__(self) -> None:
        self.registry.attach(self.mcp)

    def remember(self, record: TurnRecord) -> None:
        """Add an attempt to the conversation and the session's runs, and append it to the
        transcript. Raises OSError when the transcript cannot be written (the rest is done)."""
        self.history.append(record.turn())
        self.records.append(record)
        Transcript(self.transcript_path()).append(record)

    def replay(self, path: Path) -> Replay:
        """The transcript standing in for the model, loaded once per path."""
        if self._replay is None or self._replay.path != path:
            self._replay = Replay(path)
        return self._replay

    def transcript_path(self) -> Path:
        return self.config.transcript or default_path()

    def recorded_approvals(self) -> dict[str, RanBy]:
        """SHA-256 of programs that ran before, with who let them run: in this session's
        transcript and the replayed one."""
        return approved_programs(self._recordings())

    def recorded_calls(self, program_sha256: str) -> dict[tuple[str, str], tuple[CallAction, str | None]]:
        """A person's earlier decisions on the calls this program asked about (see calls.py)."""
        return recorded_calls(self._recordings(), program_sha256)

    def _recordings(self) -> list[Path]:
        paths = [self.transcript_path()]
        replay = self.config.replay_path()
        if replay is not None:
            paths.append(replay)
        return paths

    def sandbox(self) -> Choice:
        """The sandbox for the configured backend, created (and probed) on first use."""
        wanted = (self.config.sandbox, self.config.sandbox_process)
        if self._choice is None or self._choice_for != wanted:
            self.close_sandbox()
            self._choice = choose(*wanted, guest=self.config.guest)
            self._choice_for = wanted
            self.announced = False
        from .sandbox.router import GuestRouter  # imported with the sandbox, not with the kernel

        router = self._choice.sandbox
        if isinstance(router, GuestRouter):  # another guest setting needs no new sandbox
            router.setting = self.config.guest
        return self._choice

    def current_sandbox(self) -> Choice | None:
        return self._choice

    def close_sandbox(self) -> None:
        if self._choice is not None:
            self._choice.sandbox.close()
            self._choice = None

    def local_server(self) -> LocalServer | None:
        """The local model server `local:PATH` asks for (created, not started); stops any other."""
        path = parse_local(self.config.model)
        if self.local is not None and (path is None or self.local.path != path.expanduser().absolute()):
            self.local.stop()
            self.local = None
        if path is not None and self.local is None:
            self.local = LocalServer(path)
        return self.local

    def model_config(self) -> ModelConfig:
        c = self.config
        if self.local is not None and self.local.running:
            # A model on this machine's CPU may read a long prompt for minutes before answering.
            return ModelConfig(model=self.local.model_name, base_url=self.local.base_url,
                               api_key=self.local.api_key, timeout=max(c.model_timeout, 600.0))
        return ModelConfig(model=c.model, base_url=c.base_url, api_key=c.api_key, timeout=c.model_timeout)

    def close(self) -> None:
        """Stop what the session started: the MCP servers, the local model server and the sandbox."""
        self.mcp.close()
        self.registry.detach(self.mcp)
        if self.local is not None:
            self.local.stop()
            self.local = None
        self.close_sandbox()
