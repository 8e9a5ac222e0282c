"""One prompt cell's attempt, recorded once: the transcript line, the model's memory of the
turn and the extension's list of runs are each read from this one record.

Built by the turn (turn.py) after each program's fate is known. `to_json` is the transcript
line (transcript.py appends it, and reads it back with `from_json`, so a recording is typed
when it is replayed); `turn()` is what the model remembers (model.Turn); `run_info()` is what
the panel lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from . import __version__
from .clipping import clip
from .model import Turn
from .protocol import Approver, CallAction, CallInfo, Outcome, RunInfo

TRANSCRIPT_OUTPUT_CHARS = 4000
"""How much of a program's stdout and stderr a transcript line keeps (its head and tail)."""


@dataclass(frozen=True)
class CallRecord:
    """A call that asked a person while the program ran (a tool marked approval="each-call")."""

    tool: str
    line: int | None
    args_sha256: str
    args: str
    """The arguments' JSON, clipped."""
    call: str
    """The call as one line, long values collapsed (what the person saw)."""
    decision: CallAction
    by: str
    """person, recorded (a person's earlier decision), run (allowed for the run), nobody, interrupt."""
    via: Approver | None
    reason: str | None
    label: str
    denial: str | None
    """A denied call as the model is told of it next turn: the call, where, and why."""
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "line": self.line, "args_sha256": self.args_sha256, "args": self.args,
                "decision": self.decision, "by": self.by, "via": self.via, "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class TurnRecord:
    prompt: str
    conversation: str
    """The hash of the conversation before this turn (transcript.conversation_hash)."""
    model: str
    base_url: str | None
    temperature: float | None
    reply: str
    program: str | None
    """The model's program, as proposed."""
    decision: Outcome
    approver: Approver | None = None
    reason: str | None = None
    allow: tuple[str, ...] = ()
    ran: str | None = None
    """The program that ran, where a person edited it."""
    ran_sha256: str | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    files: tuple[str, ...] = ()
    tool_calls: int = 0
    calls: tuple[CallRecord, ...] = ()
    mcp_calls: tuple[dict[str, Any], ...] = ()
    """Each call to an MCP server's tool: server, tool, ok, seconds (and the error)."""
    inputs: tuple[dict[str, str], ...] = ()
    """What the program started with: each value's name, origin (shared or carried), kind and
    the SHA-256 of its data, so a replay can tell it got the same."""
    carried: tuple[dict[str, str], ...] = ()
    """What it left for the next program: each value's name, kind and SHA-256."""
    guest: str | None = None
    figures: int = 0
    """How many matplotlib figures the program left open, shown in the cell."""
    tokens_in: int = 0
    tokens_out: int = 0
    seconds_model: float = 0.0
    seconds_sandbox: float = 0.0
    seconds_waiting: float = 0.0
    """Seconds the run waited for a person to decide on its calls."""
    sandbox: str | None = None
    cell_id: str | None = None
    kernel: str = __version__
    recorded_at: str | None = field(default=None, compare=False)

    @property
    def ran_program(self) -> bool:
        return self.ran_sha256 is not None

    @property
    def by(self) -> str:
        """Who decided: where a person did (extension, widgets, stdin), else "policy"."""
        return self.approver or "policy"

    def turn(self) -> Turn:
        """What the model remembers of this turn (history.py chooses how much it is shown)."""
        program = (self.ran or self.program) if self.ran_program else self.program
        reason = "the approval policy is reject" if self.decision == "rejected-by-policy" else self.reason
        denied = tuple(c.denial for c in self.calls if c.denial is not None)
        return Turn(self.prompt, self.reply, program, self.stdout + self.stderr, self.error, self.decision,
                    reason, denied)

    def run_info(self) -> RunInfo:
        """As the extension's panel lists it."""
        return RunInfo(prompt=self.prompt, cell_id=self.cell_id, decision=self.decision, by=self.by,
                       sha256=self.ran_sha256, tool_calls=self.tool_calls, tokens_in=self.tokens_in,
                       tokens_out=self.tokens_out, seconds_model=self.seconds_model,
                       seconds_sandbox=self.seconds_sandbox,
                       error=self.error.strip().splitlines()[-1] if self.error and self.error.strip() else None,
                       calls=[CallInfo(tool=c.tool, call=c.call, line=c.line, decision=c.decision, label=c.label,
                                       reason=c.reason) for c in self.calls])

    def to_json(self) -> dict[str, Any]:
        """The transcript line."""
        return {
            "prompt": self.prompt, "conversation": self.conversation,
            "model": self.model, "base_url": self.base_url,
            "request": {"stream": True, "temperature": self.temperature},
            "reply": self.reply, "program": self.program,
            "decision": self.decision, "approver": self.approver, "reason": self.reason,
            "edited": self.decision == "edited", "allow": list(self.allow),
            "ran": self.ran, "ran_sha256": self.ran_sha256,
            "output": {"stdout": clip(self.stdout, TRANSCRIPT_OUTPUT_CHARS),
                       "stderr": clip(self.stderr, TRANSCRIPT_OUTPUT_CHARS),
                       "error": self.error, "files": list(self.files), "tool_calls": self.tool_calls},
            "calls": [c.to_json() for c in self.calls],
            "mcp_calls": list(self.mcp_calls),
            "inputs": list(self.inputs), "carried": list(self.carried), "guest": self.guest, "figures": self.figures,
            "tokens": {"in": self.tokens_in, "out": self.tokens_out},
            "seconds": {"model": round(self.seconds_model, 4), "sandbox": round(self.seconds_sandbox, 4),
                        "waiting_for_you": round(self.seconds_waiting, 4)},
            "sandbox": self.sandbox, "cell_id": self.cell_id, "kernel": self.kernel,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TurnRecord:
        """A transcript line, typed; what an older kernel did not record takes its default."""
        output = data.get("output") or {}
        tokens = data.get("tokens") or {}
        seconds = data.get("seconds") or {}
        calls = tuple(CallRecord(tool=str(c.get("tool")), line=c.get("line"), args_sha256=str(c.get("args_sha256")),
                                 args=str(c.get("args", "")), call=str(c.get("tool")),
                                 decision=cast(CallAction, c.get("decision")), by=str(c.get("by")), via=c.get("via"),
                                 reason=c.get("reason"), label="", denial=None, at=str(c.get("at", "")))
                      for c in data.get("calls") or () if isinstance(c, dict))
        return cls(prompt=str(data.get("prompt", "")), conversation=str(data.get("conversation", "")),
                   model=str(data.get("model", "")), base_url=data.get("base_url"),
                   temperature=(data.get("request") or {}).get("temperature"),
                   reply=str(data.get("reply", "")), program=data.get("program"),
                   decision=cast(Outcome, data.get("decision", "no-code")), approver=data.get("approver"),
                   reason=data.get("reason"), allow=tuple(data.get("allow") or ()), ran=data.get("ran"),
                   ran_sha256=data.get("ran_sha256"), stdout=str(output.get("stdout", "")),
                   stderr=str(output.get("stderr", "")), error=output.get("error"),
                   files=tuple(output.get("files") or ()), tool_calls=int(output.get("tool_calls") or 0),
                   calls=calls, mcp_calls=tuple(c for c in data.get("mcp_calls") or () if isinstance(c, dict)),
                   inputs=tuple(i for i in data.get("inputs") or () if isinstance(i, dict)),
                   carried=tuple(c for c in data.get("carried") or () if isinstance(c, dict)),
                   guest=data.get("guest"), figures=int(data.get("figures") or 0),
                   tokens_in=int(tokens.get("in") or 0), tokens_out=int(tokens.get("out") or 0),
                   seconds_model=float(seconds.get("model") or 0), seconds_sandbox=float(seconds.get("sandbox") or 0),
                   seconds_waiting=float(seconds.get("waiting_for_you") or 0), sandbox=data.get("sandbox"),
                   cell_id=data.get("cell_id"), kernel=str(data.get("kernel", "")),
                   recorded_at=data.get("recorded_at"))
