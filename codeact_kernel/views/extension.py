"""JupyterLab and Notebook 7 with CodeAct's extension: cards in the cell, the panel, the status bar.

A program a person must decide on is shown once, on the approval card (display data of the
protocol's APPROVAL_MIME, protocol.py), decided over the extension's comm (comm.py) and then
updated into the record; a call the running program waits at gets a call card the same way.
Each card's display data also carries the same content as Markdown and text (render.py), so a
saved notebook shows it on GitHub and in any other frontend. Everything else is shown as a
notebook shows it (notebook.py). The cell's phase goes to the status bar, each remembered
turn to the panel, whose whole state `state()` reads from the session.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from .. import approval, calls
from ..comm import Extension, new_id
from ..config import PERMISSIVENESS
from ..events import CallDecided, Decided, Event, PhaseChanged, Proposal, Proposed, Remembered, SandboxReady
from ..protocol import (APPROVAL_MIME, CALL_MIME, SETTABLE, VERSION, ApprovalCard, CallCard, CallCardDecision,
                        CardDecision, CardInput, CardTool, Phase, ProgramAction, Settings, State, ToolInfo)
from ..session import Session
from . import render
from .notebook import NotebookView


class ExtensionView(NotebookView):
    approver = "extension"

    def __init__(self, io: Any, extension: Extension) -> None:
        super().__init__(io)
        self.extension = extension
        self._cards: dict[str, tuple[Any, Any]] = {}
        """Cards awaiting or just given a decision, by proposal or request id: display handle, card."""

    def show(self, event: Event) -> None:
        match event:
            case PhaseChanged(phase=phase):
                self.extension.set_phase(phase)
            case Remembered():
                self.extension.publish()
            case SandboxReady():
                super().show(event)
                self.extension.publish()  # the backend is known now
            case Proposed(proposal=p, asking=True):
                card = ApprovalCard(version=VERSION, request=p.id, program=p.program,
                                    tools=[CardTool(name=name, always=name in p.always_ask) for name in p.found.tools],
                                    dynamic=p.found.dynamic, offer=list(p.offer), guest=p.guest,
                                    guest_reason=p.guest_reason,
                                    inputs=[CardInput(name=i.name, origin=i.origin, description=i.description)
                                            for i in p.inputs],
                                    decision=None)
                handle = display(_bundle(APPROVAL_MIME, card, render.program(p, waiting=True)), raw=True,
                                 display_id=True)
                self._cards[p.id] = (handle, card)
            case Decided(proposal=p, decision=d) if p.id in self._cards:
                handle, card = self._cards.pop(p.id)
                card["decision"] = CardDecision(
                    kind=d.kind, label=d.label(), by="you", sha256=d.sha256 if d.runs else None,
                    at=d.at.isoformat(), program=d.program, reason=d.reason, allow=list(d.allow))
                handle.update(_bundle(APPROVAL_MIME, card, render.decided(p, d)), raw=True)
            case CallDecided(asked=asked) if asked.request.id in self._cards:
                handle, card = self._cards.pop(asked.request.id)
                d = asked.decision
                card["decision"] = CallCardDecision(action=d.action, label=d.label(), by="you",
                                                    at=d.at.isoformat(), reason=d.reason)
                handle.update(_bundle(CALL_MIME, card, render.call_decided(asked)), raw=True)
            case _:
                super().show(event)

    async def ask_program(self, proposal: Proposal) -> approval.Decision:
        choice = await self.extension.ask(proposal.id)
        action: ProgramAction = choice["action"] if choice["action"] in ("approve", "approve-allow") else "reject"
        return approval.decided(action, proposal.program, choice["program"] or proposal.program, choice["reason"],
                                proposal.offer, via="extension")

    async def ask_call(self, request: calls.Request) -> calls.Decision:
        card = CallCard(version=VERSION, request=request.id, tool=request.tool, call=request.describe(),
                        arguments=request.pretty(), line=request.line, decision=None)
        handle = display(_bundle(CALL_MIME, card, render.call_waiting(request)), raw=True, display_id=True)
        self._cards[request.id] = (handle, card)
        choice = await self.extension.ask(request.id, "awaiting-call")
        if choice["action"] in ("allow", "allow-run"):
            return calls.Decision(choice["action"], "person", via="extension")  # type: ignore[arg-type]
        return calls.Decision("deny", "person", choice["reason"].strip() or None, via="extension")


def _bundle(mime: str, card: Any, shown: render.Shown) -> dict[str, Any]:
    """A card for the extension, and the same content as Markdown and text for every other view."""
    return {mime: card, **shown.bundle()}


def state(session: Session, phase: Phase, pending: str | None) -> State:
    """What the panel and the status bar show, read from the session."""
    c = session.config
    choice = session.current_sandbox()
    settings = Settings(
        model=c.model, base_url=c.base_url or "the OpenAI API", approval=c.approval,
        approval_max=c.approval_max if c.approval_max_source else None,
        policies=list(PERMISSIVENESS), settable=list(SETTABLE),
        sandbox=choice.sandbox.name if choice is not None else c.sandbox,
        sandbox_reason=choice.reason if choice is not None else "chosen when the first program runs",
        limits={"timeout_s": c.timeout, "memory_mb": c.memory_mb, "process": c.sandbox_process},
        mounts=[f"/input <- {c.input_dir} (read-only)"] * (c.input_dir is not None)
        + ["/output -> the notebook's folder"] * c.output,
        domains=[f"{d} ({','.join(sorted(m)) if m else 'any method'})" for d, m in c.allowed_domains.items()])
    tools = [ToolInfo(name=t.name, signature=t.signature, doc=t.description, always=t.approval == "always")
             for t in session.registry]
    return State(kind="state", id=new_id(), settings=settings, tools=tools,
                 runs=[record.run_info() for record in session.records], phase=phase, pending=pending)
