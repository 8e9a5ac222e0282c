"""Approval as policy: what may run without a person, and what a decision lets run.

Nothing runs before a decision. This module decides nothing about how a person is asked
(each view does that, views/): it says whether a program runs, must be asked about, or is
only shown, and it builds the host-side guard that holds whatever the program does.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .protocol import Approver, DecisionKind, ProgramAction

Route = Literal["run", "ask", "show-only"]
RanBy = Literal["person", "policy"]
"""Who let a recorded program run: a person, or a policy that ran it unasked."""


@dataclass(frozen=True)
class Scan:
    """The tools a program may call, found without running it."""

    tools: tuple[str, ...]
    dynamic: bool
    """True if some call_tool's name is not a string literal, or call_tool is passed around."""

    def describe(self) -> str:
        names = ", ".join(self.tools) or "no tools"
        return names + (" (and tools chosen at run time)" if self.dynamic else "")


def scan(program: str) -> Scan:
    """Statically list `call_tool("name", ...)` targets; anything it cannot read is dynamic."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return Scan((), True)
    names: list[str] = []
    dynamic = False
    direct_calls: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "call_tool":
            direct_calls.add(id(node.func))
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if first.value not in names:
                    names.append(first.value)
            else:
                dynamic = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "call_tool" and id(node) not in direct_calls:
            dynamic = True  # aliased, passed or rebound: the target cannot be read statically
    return Scan(tuple(names), dynamic)


def route(policy: str, *, found: Scan, always_ask: Iterable[str], recorded: RanBy | None = None,
          allowed: Iterable[str] = ()) -> Route:
    """Whether a program runs unasked, needs a person, or is only shown, under `policy`.

    `auto` still asks when the program may call a tool marked `approval="always"`, by name
    or through a call_tool whose name is not a literal. `recorded` runs a program only if
    this exact text ran before (its SHA-256 is in the transcript; `recorded` says who let
    it run), and otherwise asks; one that ran unasked before is treated as `auto` treats
    it. Under either asking policy, a program that calls only tools a person `allowed` for
    the session runs unasked (`covered`). Where nobody can be asked (a headless run), a
    program routed to "ask" fails instead (see `unanswerable`).
    """
    if policy == "reject":
        return "show-only"
    sensitive = set(always_ask)
    needs_person = bool(sensitive & set(found.tools) or (sensitive and found.dynamic))
    if policy == "auto" and not needs_person:
        return "run"
    if policy == "recorded" and (recorded == "person" or recorded == "policy" and not needs_person):
        return "run"
    if covered(found, allowed):
        return "run"
    return "ask"


def covered(found: Scan, allowed: Iterable[str]) -> bool:
    """Whether a program calls only tools allowed for the session, so it may run unasked.

    It must call at least one, all by literal name: a program that chooses at run time is
    asked about. Even so the guard, not this reading, bounds what runs (see `refusal`).
    """
    return bool(found.tools) and not found.dynamic and set(found.tools) <= set(allowed)


def allowable(found: Scan, always_ask: Iterable[str]) -> tuple[str, ...]:
    """The tools a person may allow for the session when approving this program: those it
    calls, if it names each one and none is marked approval="always"; else none."""
    if found.dynamic or set(found.tools) & set(always_ask):
        return ()
    return found.tools


NOBODY = "this run cannot ask anyone (no widget frontend and no stdin: nbclient, nbval, papermill)"


def unanswerable(policy: str, found: Scan = Scan((), False), always_ask: Iterable[str] = (),
                 sha256: str = "") -> str:
    """Why a program that needs a person fails where nobody can answer: the policy in force
    and what in the program needs the person, with what to do. Under 'ask' this is known
    before the model is asked, and it is not."""
    if policy == "auto":
        sensitive = [name for name in found.tools if name in set(always_ask)]
        what = (f"calls {', '.join(sensitive)}, marked approval='always'" if sensitive else
                "chooses a tool at run time, and some tools are marked approval='always' "
                f"({', '.join(sorted(always_ask))})")
        return (f"the program {what}: that needs a person even under the approval policy 'auto', and "
                f"{NOBODY}; nothing ran. Run the notebook interactively to approve it (a later "
                "headless run under CODEACT_APPROVAL=recorded then runs the same program).")
    if policy == "recorded":
        return (f"the approval policy is 'recorded' and no person approved this exact program before "
                f"(sha256 {sha256[:16]}), and {NOBODY}; nothing ran. Approve it once interactively, "
                "or set CODEACT_APPROVAL=auto.")
    return (f"the approval policy is '{policy}' and {NOBODY}; the model was not asked and nothing ran. "
            "Set CODEACT_APPROVAL=auto to run programs unattended, or run the notebook interactively.")


@dataclass(frozen=True)
class Decision:
    """What a human (or a policy) decided, and exactly what will run."""

    kind: DecisionKind
    program: str
    reason: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    allow: tuple[str, ...] = ()
    """Kind "approved": tools the person also allowed for the rest of the session.
    Kind "allowed": the session's allowed tools this program ran under, unasked."""
    via: Approver | None = None
    """Where a person decided; None for a policy."""

    @property
    def runs(self) -> bool:
        return self.kind not in ("rejected", "rejected-by-policy")

    @property
    def by_person(self) -> bool:
        return self.via is not None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.program.encode()).hexdigest()

    def label(self) -> str:
        return {"approved": "Approved", "edited": "Approved after editing", "rejected": "Rejected",
                "auto": "Approved by policy (auto)",
                "recorded": "Approved by policy (recorded: approved before, same SHA-256)",
                "recorded-unasked": "Approved by policy (recorded: ran unasked before, same SHA-256)",
                "allowed": "Ran without asking: it calls only tools allowed for this session",
                "rejected-by-policy": "Not run: the approval policy is reject"}[self.kind]


def decided(action: ProgramAction, program: str, text: str, reason: str, offer: tuple[str, ...],
            via: Approver) -> Decision:
    """A person's choice on `program` as a Decision: "approve" runs `text` (edited if it
    differs), "approve-allow" also allows the offered tools the text calls (never more than
    `offer`), anything else rejects with `reason` for the model."""
    if action not in ("approve", "approve-allow"):
        return Decision("rejected", program, reason.strip() or None, via=via)
    allow = allowable(scan(text), ()) if action == "approve-allow" else ()
    allow = tuple(name for name in allow if name in offer)
    return Decision("edited" if text != program else "approved", text, allow=allow, via=via)


def refusal(decision: Decision, tool: str, always_ask: Iterable[str]) -> str | None:
    """Why `tool` may not run inside the program `decision` let run, or None if it may.

    This, not `scan`, is the guard: the kernel applies it where each call arrives on the
    host (see `guard`), so it holds however the program reaches `call_tool`. A tool
    marked `approval="always"` runs only in a program a person approved, now or (under
    `recorded`) the same text before.
    """
    if tool in always_ask and decision.kind == "auto":
        return (f"{tool} is marked approval='always' and no person approved this program: "
                "the approval policy 'auto' ran it unasked, because its text names no such tool")
    if tool in always_ask and decision.kind == "recorded-unasked":
        return (f"{tool} is marked approval='always' and no person approved this program: the approval "
                "policy 'recorded' ran it because the same text ran unasked before")
    if decision.kind == "allowed" and tool not in decision.allow:
        return (f"{tool} is not among the tools allowed for this session ({', '.join(decision.allow)}), "
                "and this program ran unasked because it named only those")
    return None


def guard(tools: Mapping[str, Callable[..., Any]], decision: Decision,
          always_ask: Iterable[str]) -> dict[str, Callable[..., Any]]:
    """The tools a run gets: each one `refusal` forbids raises PermissionError instead of running."""
    sensitive = set(always_ask)
    guarded = dict(tools)
    for name in tools:
        reason = refusal(decision, name, sensitive)
        if reason is not None:
            guarded[name] = _refuse(reason)
    return guarded


def _refuse(reason: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(f"refused: {reason}")

    return refused
