"""The protocol between the kernel and CodeAct's notebook extension, declared once on this side.

The extension (`extension/src/protocol.ts` declares the same messages) opens one comm on the
target `codeact` when it connects to a CodeAct kernel. Over it the kernel publishes its state
(settings, tools, runs, the running cell's phase) and receives decisions and setting changes.
An approval request itself is display data of type `APPROVAL_MIME` in the cell's output, so the
card lives in the cell, is saved with the notebook, and beside it a `text/markdown` copy shows in
every other frontend. Every message has a `kind` and an `id`; the comm's opening message carries
the protocol version, and a frontend of another major version is told so and not used (the
kernel then falls back to ipywidgets). A call waiting inside a running program (a tool marked
approval="each-call", calls.py) is display data of type `CALL_MIME`, decided the same way.

Version 2 added the call card, its actions and the runs' asked calls.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypedDict, get_args

if TYPE_CHECKING:
    from .session import Session

TARGET = "codeact"
VERSION = 2
APPROVAL_MIME = "application/vnd.codeact.approval+json"
CALL_MIME = "application/vnd.codeact.call+json"

Phase = Literal["idle", "asking-model", "awaiting-approval", "running", "awaiting-call", "repairing"]
Action = Literal["approve", "approve-allow", "reject", "allow", "allow-run", "deny"]
"""On a program's card: approve, approve-allow, reject. On a call's card: allow, allow-run, deny."""
ACTIONS = get_args(Action)


# -- frontend to kernel ---------------------------------------------------------------------
class Hello(TypedDict):
    """The comm_open data."""

    kind: Literal["hello"]
    id: str
    version: int


class Decide(TypedDict):
    """A person's decision on the card of request `request`. `program` is the text to run (the
    model's, or the person's edit; empty for a call); `reason` goes to the model when
    rejecting or denying."""

    kind: Literal["decide"]
    id: str
    request: str
    action: Action
    program: str
    reason: str


class Set(TypedDict):
    """Change a setting through the same code path as its magic (`%approval`, `%model`)."""

    kind: Literal["set"]
    id: str
    name: Literal["approval", "model"]
    value: str


# -- kernel to frontend ---------------------------------------------------------------------
class Welcome(TypedDict):
    kind: Literal["welcome"]
    id: str
    version: int
    accepted: bool
    reason: str


class ToolInfo(TypedDict):
    name: str
    signature: str
    doc: str
    always: bool
    """Marked approval="always": every program that may call it asks a person."""


class Settings(TypedDict):
    model: str
    base_url: str
    approval: str
    approval_max: str | None
    sandbox: str
    """The backend in use, or the one configured before the first run."""
    sandbox_reason: str
    limits: dict[str, Any]
    mounts: list[str]
    domains: list[str]


class CallInfo(TypedDict):
    """A call that asked a person while the run went on."""

    tool: str
    call: str
    """The call as one line, long values collapsed."""
    line: int | None
    decision: str
    """allow, allow-run or deny."""
    label: str
    reason: str | None


class RunInfo(TypedDict):
    prompt: str
    cell_id: str | None
    decision: str
    by: str
    sha256: str | None
    tool_calls: int
    tokens_in: int
    tokens_out: int
    seconds_model: float
    seconds_sandbox: float
    error: str | None
    calls: list[CallInfo]


class State(TypedDict):
    kind: Literal["state"]
    id: str
    settings: Settings
    tools: list[ToolInfo]
    runs: list[RunInfo]
    phase: Phase
    pending: str | None
    """The approval request awaiting a decision, if any: only its card offers the actions."""


class Result(TypedDict):
    """The answer to a `set`: `ok`, and what the magic printed."""

    kind: Literal["result"]
    id: str
    request: str
    ok: bool
    message: str


# -- the approval card (display data, not a comm message) -----------------------------------------
class CardTool(TypedDict):
    name: str
    always: bool


class CardDecision(TypedDict):
    kind: str
    label: str
    by: str
    """"you" (a person, in the card) or the policy's name."""
    sha256: str | None
    at: str
    program: str
    """What ran (the edit, if edited)."""
    reason: str | None
    allow: list[str]


class ApprovalCard(TypedDict):
    version: int
    request: str
    program: str
    tools: list[CardTool]
    dynamic: bool
    """Some call_tool's name is chosen at run time."""
    offer: list[str]
    """Tools a person may allow for the session with this approval ("Approve and allow")."""
    decision: CardDecision | None


class CallCardDecision(TypedDict):
    action: str
    label: str
    by: str
    at: str
    reason: str | None


class CallCard(TypedDict):
    """A call waiting inside a running program, with its arguments; `decision` once decided."""

    version: int
    request: str
    tool: str
    call: str
    """The call as one line, long values collapsed."""
    arguments: str
    """Pretty-printed JSON, long values collapsed."""
    line: int | None
    decision: CallCardDecision | None


def new_id() -> str:
    return uuid.uuid4().hex


class Extension:
    """The kernel's end of the extension's comms: one per connected browser tab.

    `state(phase, pending)` builds the State to publish; `on_set` applies a setting as its magic does and
    returns what the magic printed. Handlers may run on another thread than the cell: a
    decision reaches the waiting cell through its event loop.
    """

    def __init__(self, state: Callable[[Phase, str | None], State], on_set: Callable[[str, str], tuple[bool, str]]) -> None:
        self._state = state
        self._on_set = on_set
        self._comms: dict[str, Any] = {}
        self._pending: tuple[str, asyncio.AbstractEventLoop, asyncio.Future[Decide]] | None = None
        self.phase: Phase = "idle"

    def register(self, comm_manager: Any) -> None:
        comm_manager.register_target(TARGET, self._opened)

    @property
    def connected(self) -> bool:
        return bool(self._comms)

    @property
    def pending(self) -> str | None:
        return self._pending[0] if self._pending else None

    # -- what the kernel calls ---------------------------------------------------------
    def publish(self) -> None:
        """Send the whole state to every connected tab (it is small: settings, tools, runs)."""
        if self._comms:
            self._broadcast(self._state(self.phase, self.pending))

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self.publish()

    async def ask(self, request: str, phase: Phase = "awaiting-approval") -> Decide:
        """Wait for the decision on the card already displayed for `request`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decide] = loop.create_future()
        self._pending = (request, loop, future)
        self.set_phase(phase)
        try:
            return await future
        finally:
            self._pending = None

    # -- comm handlers -------------------------------------------------------------------
    def _opened(self, comm: Any, msg: dict) -> None:
        hello = msg["content"].get("data") or {}
        version = hello.get("version")
        accepted = isinstance(version, int) and version == VERSION
        reason = "" if accepted else (f"this kernel speaks protocol version {VERSION}, the extension {version!r}: "
                                      "approval falls back to ipywidgets; update the extension")
        comm.send(Welcome(kind="welcome", id=new_id(), version=VERSION, accepted=accepted, reason=reason))
        if not accepted:
            return
        self._comms[comm.comm_id] = comm
        comm.on_msg(self._received)
        comm.on_close(lambda _msg: self._comms.pop(comm.comm_id, None))
        comm.send(self._state(self.phase, self.pending))

    def _received(self, msg: dict) -> None:
        data = msg["content"].get("data") or {}
        kind = data.get("kind")
        if kind == "decide":
            self._decided(data)
        elif kind == "set":
            ok, message = self._on_set(str(data.get("name")), str(data.get("value", "")))
            self._broadcast(Result(kind="result", id=new_id(), request=str(data.get("id", "")), ok=ok,
                                   message=message))
            self.publish()
        elif kind == "refresh":
            self.publish()

    def _decided(self, data: dict) -> None:
        if self._pending is None or data.get("request") != self._pending[0]:
            return  # a stale card (an earlier cell, another tab that already decided): ignored
        if data.get("action") not in ACTIONS:
            return
        decide = Decide(kind="decide", id=str(data.get("id", "")), request=str(data["request"]),
                        action=data["action"], program=str(data.get("program", "")),
                        reason=str(data.get("reason", "")))
        _request, loop, future = self._pending
        loop.call_soon_threadsafe(lambda: future.done() or future.set_result(decide))

    def _broadcast(self, message: Any) -> None:
        for comm in list(self._comms.values()):
            comm.send(message)


def state(session: Session, phase: Phase, pending: str | None) -> State:
    """What the panel and the status bar show, read from the session."""
    c = session.config
    choice = session.current_sandbox()
    settings = Settings(
        model=c.model, base_url=c.base_url or "the OpenAI API", approval=c.approval,
        approval_max=c.approval_max if c.approval_max_source else None,
        sandbox=choice.sandbox.name if choice is not None else c.sandbox,
        sandbox_reason=choice.reason if choice is not None else "chosen when the first program runs",
        limits={"timeout_s": c.timeout, "memory_mb": c.memory_mb, "process": c.sandbox_process},
        mounts=[f"/input <- {c.input_dir} (read-only)"] * (c.input_dir is not None)
        + ["/output -> the notebook's folder"] * c.output,
        domains=[f"{d} ({','.join(sorted(m)) if m else 'any method'})" for d, m in c.allowed_domains.items()])
    tools = [ToolInfo(name=t.name, signature=t.signature, doc=t.description, always=t.approval == "always")
             for t in session.registry]
    return State(kind="state", id=new_id(), settings=settings, tools=tools, runs=list(session.runs),
                 phase=phase, pending=pending)
