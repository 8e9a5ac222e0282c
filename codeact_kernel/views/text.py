"""A frontend with stdin but no widgets (jupyter console): text, and questions on stdin.

A console prints each display's text/plain and the streams, and ignores display updates. So
the reply streams to stderr as it arrives (and, for a notebook frontend without widgets,
which does show updates, replaces its "asking" display once whole); the program, each
decision and the footer are displays whose text/plain says what the Markdown copy does; a
decision is a line typed at a prompt that names what it decides.
"""

from __future__ import annotations

from .. import approval, calls
from ..clipping import clip
from ..events import Event, Proposal, Replied, Retrying, Streaming
from ..markdown import printable
from ..protocol import CallAction
from . import render
from .notebook import NotebookView


class TextView(NotebookView):
    approver = "stdin"

    def show(self, event: Event) -> None:
        match event:
            case Streaming(delta=delta):
                self.io.stream("stderr", printable(delta))
            case Retrying(attempt=attempt, delay=delay, reason=reason):
                self.io.stream("stderr", f"\n[{reason}: retrying in {delay:.1f} s (retry {attempt})]\n")
            case Replied() if self._reply is not None:  # it streamed: end its line, then as a notebook does
                self.io.stream("stderr", "\n")
                super().show(event)
            case _:
                super().show(event)

    async def ask_program(self, proposal: Proposal) -> approval.Decision:
        """y, a (yes, and allow its tools for the session, when offered), or anything else to
        reject: an answer other than y/n/a is the reason, for the model."""
        offer = proposal.offer
        choices = f"[y/N/a: yes, and allow {', '.join(offer)} for this session]" if offer else "[y/N]"
        answer = (await self.io.ask(f"Run this program (it calls {printable(proposal.found.describe())})? "
                                    f"{choices} ")).strip()
        if answer.lower() in ("y", "yes"):
            return approval.Decision("approved", proposal.program, via="stdin")
        if offer and answer.lower() == "a":
            return approval.Decision("approved", proposal.program, allow=offer, via="stdin")
        reason = None if answer.lower() in ("", "n", "no") else answer
        return approval.Decision("rejected", proposal.program, reason, via="stdin")

    async def ask_call(self, request: calls.Request) -> calls.Decision:
        action, reason = from_answer(await self.io.ask(ask_line(request)))
        return calls.Decision(action, "person", reason, via="stdin")


def ask_line(request: calls.Request) -> str:
    """The question at a console prompt: the call, then the choices."""
    return (f"The program wants to call {printable(clip(request.describe(), 300))} at {request.where()}. "
            f"Allow it? [y/N/r: yes, and {request.tool} for the rest of this run; anything else is "
            "a reason for denying] ")


def from_answer(answer: str) -> tuple[CallAction, str | None]:
    """A console answer as a decision: y, r (for the run), else a denial with the answer as reason."""
    text = answer.strip()
    if text.lower() in ("y", "yes"):
        return "allow", None
    if text.lower() == "r":
        return "allow-run", None
    return "deny", None if text.lower() in ("", "n", "no") else text
