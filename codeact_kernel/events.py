"""What happens in a prompt cell, as the turn (turn.py) tells it to whoever shows it.

The turn decides nothing about how anything looks: it emits these events, in order, to the
cell's view (views/), which renders each one for its frontend and is the only code that
writes displays. Every field is data (no Markdown): text from the model, a program, a tool
or a file stays raw here, and each view makes it safe (markdown.py) as it shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from . import approval, calls
from .mcp_tools import Picture
from .model import Reply
from .protocol import Phase
from .record import TurnRecord
from .workspace import Input


@dataclass(frozen=True)
class PhaseChanged:
    """Where the cell is now (the extension's status bar shows it)."""

    phase: Phase


@dataclass(frozen=True)
class StartingLocalModel:
    name: str


@dataclass(frozen=True)
class LocalModelProgress:
    message: str


@dataclass(frozen=True)
class ConnectingServers:
    """MCP servers the kernel started are still connecting: the prompt waits for their tools."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class ServersReady:
    ready: tuple[str, ...]
    """Each server that is ready, with how many tools it offers."""


@dataclass(frozen=True)
class Asking:
    """The model was asked; its reply streams next."""

    model: str


@dataclass(frozen=True)
class Streaming:
    """A piece of the reply arrived: `delta`, and all of it so far."""

    delta: str
    text: str
    elapsed: float


@dataclass(frozen=True)
class Retrying:
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True)
class NoAnswer:
    """The model failed (the error itself ends the cell)."""

    model: str


@dataclass(frozen=True)
class Replied:
    """The whole reply: `prose` is the reply without its program (shown on its own), `note`
    says where it came from (the model and its time, or the replayed transcript)."""

    reply: Reply
    prose: str
    note: str


@dataclass(frozen=True)
class Proposal:
    """A program waiting for a decision, with what a person needs to make it."""

    program: str
    found: approval.Scan
    offer: tuple[str, ...]
    """Tools a person may allow for the session along with approving it."""
    always_ask: frozenset[str]
    id: str
    guest: str = "standard"
    """The guest it runs in: standard, or science (numpy, pandas & co.)."""
    guest_reason: str = ""
    inputs: tuple[Input, ...] = ()
    """The values it starts with: shared from the notebook, carried from earlier programs."""


@dataclass(frozen=True)
class Proposed:
    """The program, shown; `asking` when a person is asked next (`View.ask_program`)."""

    proposal: Proposal
    asking: bool


@dataclass(frozen=True)
class Decided:
    proposal: Proposal
    decision: approval.Decision


@dataclass(frozen=True)
class PreparingSandbox:
    """The first run of the session: the backend is probed, its guest may be built."""


@dataclass(frozen=True)
class SandboxReady:
    name: str
    reason: str


@dataclass(frozen=True)
class GuestProgress:
    """Making the scientific guest, the first time (a compile once per machine, an image once
    per process): how far it has got."""

    message: str
    elapsed: float
    expected: float | None
    done: bool


@dataclass(frozen=True)
class Output:
    """Text the running program printed."""

    stream: str
    text: str


@dataclass(frozen=True)
class CallDecided:
    """A call that asked, decided: by the person the view asked, or without asking (nobody
    could be asked, or a person's recorded decision applied again)."""

    asked: calls.Asked


@dataclass(frozen=True)
class SavedFile:
    name: str
    """As the program wrote it under /output: the program chose it."""
    path: Path
    """Where it was saved, relative to the notebook's folder."""
    data: bytes


@dataclass(frozen=True)
class FilesSaved:
    files: tuple[SavedFile, ...]


@dataclass(frozen=True)
class Figures:
    """The matplotlib figures the program left open, as PNG, in order."""

    pngs: tuple[bytes, ...]


@dataclass(frozen=True)
class Carried:
    """Data the program left that the next program starts with (names and what each is)."""

    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Pictures:
    """Images MCP tools returned while the program ran (a program sees a stand-in string)."""

    pictures: tuple[Picture, ...]


@dataclass(frozen=True)
class Notice:
    """Something the sandbox said about the run (a limit reached, an output cut)."""

    text: str


@dataclass(frozen=True)
class Repairing:
    """The program failed: its error, and the model is asked for a fix."""

    error: str
    attempt: int
    of: int


@dataclass(frozen=True)
class Footer:
    model: str
    replayed_from: str | None
    tokens_in: int
    tokens_out: int
    seconds_model: float
    seconds_sandbox: float
    tool_calls: int
    programs: int
    result_name: str | None
    """The variable set_result bound, if it did."""
    isolation: str | None = None
    """Where the last program ran, when not in the session's sandbox (the scientific guest,
    which Hyperlight cannot host, runs on wasmtime): the cell says which isolation it got."""


@dataclass(frozen=True)
class Remembered:
    """The turn is in the conversation, the transcript and the session's runs."""

    record: TurnRecord = field(repr=False)


Event = Union[PhaseChanged, StartingLocalModel, LocalModelProgress, ConnectingServers, ServersReady, Asking,
              Streaming, Retrying, NoAnswer, Replied, Proposed, Decided, PreparingSandbox, SandboxReady, Output, CallDecided, FilesSaved,
              Pictures, Notice, Repairing, Footer, Remembered]
