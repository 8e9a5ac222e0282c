"""Approval inside a running program: each call to a tool marked `approval="each-call"` waits
for a person.

Approving a whole program is approving blind the arguments its side effects will get (an
email's recipient, an amount). Here the call itself is the question: the program pauses in
`call_tool`, the person sees the tool, its arguments and the line of the program that made
the call, and allows it once, allows the tool for the rest of this run, or denies it with a
reason, which the program gets as a `ToolError` it may catch and the model reads next turn.

The program's thread asks (`Gate.wrap` puts the question into the tool, where the call
arrives on the host); the cell answers on the kernel's event loop (`Gate.questions`), with
whoever can decide there (the cell's view, views/: the extension's card, a widget, a console
prompt, or nobody, which is a denial). The run's timeout stands still meanwhile (`Calling.hold`).
Under the `recorded` policy, a person's earlier decision on the same program, tool and
arguments is applied again without asking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .clipping import clip
from .protocol import Approver, CallAction
from .record import CallRecord
from .sandbox.base import calling

By = Literal["person", "recorded", "run", "nobody", "interrupt"]
"""Who decided: a person now, a person before (`recorded`), the person's "for this run"
earlier in the run, nobody (no one could be asked), or an interrupt."""

NOBODY = "no one can answer here (a headless run: nbclient, nbval, papermill)"
_VALUE_CHARS = 200  # a longer argument is shown collapsed: its head, its tail, what was left out


@dataclass(frozen=True)
class Request:
    """A call waiting for a decision."""

    tool: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    line: int | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments as one JSON value: what is hashed, recorded and shown."""
        return {"args": list(self.args), "kwargs": self.kwargs} if self.args else dict(self.kwargs)

    @property
    def sha256(self) -> str:
        """Of the arguments, canonically: what `recorded` matches a later call by."""
        canonical = json.dumps(self.arguments, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def pretty(self) -> str:
        """The arguments pretty-printed, each long value collapsed."""
        return json.dumps(_collapsed(self.arguments), indent=2, ensure_ascii=False, default=str)

    def describe(self) -> str:
        """One line: `send_email(to='a@example.com', subject='Hi')`, long values collapsed."""
        parts = [repr(_collapsed(value, 60)) for value in self.args]
        parts += [f"{key}={_collapsed(value, 60)!r}" for key, value in self.kwargs.items()]
        return f"{self.tool}({', '.join(parts)})"

    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else "a line the program did not say"


@dataclass(frozen=True)
class Decision:
    action: CallAction
    by: By
    reason: str | None = None
    via: Approver | None = None
    """Where a person decided."""
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def allows(self) -> bool:
        return self.action != "deny"

    def label(self) -> str:
        special = {"nobody": "Denied: nobody could be asked", "interrupt": "Denied: interrupted",
                   "run": "Allowed: you allowed this tool for the run"}
        if self.by in special:
            return special[self.by]
        verb = {"allow": "Allowed", "allow-run": "Allowed for the rest of this run", "deny": "Denied"}[self.action]
        return f"{verb} {'by you' if self.by == 'person' else 'as you decided before (recorded)'}"

    def refusal(self) -> str:
        """What the program's call_tool raises with, and the model reads: the same for a
        person's decision now and its replay under `recorded`, so a replay matches."""
        why = {"nobody": f"the call needs a person's approval and {NOBODY}",
               "interrupt": "the run was interrupted while the call waited for a person"}.get(
                   self.by, "the user denied this call")
        return f"{why}: {self.reason}" if self.reason else why


@dataclass(frozen=True)
class Asked:
    """One call that asked, and what became of it: for the transcript, the panel, the model."""

    request: Request
    decision: Decision

    def record(self) -> CallRecord:
        """As the transcript keeps it (the arguments' SHA-256 and a clipped copy), the panel
        lists it, and the model hears of a denial."""
        d, r = self.decision, self.request
        return CallRecord(tool=r.tool, line=r.line, args_sha256=r.sha256,
                          args=clip(json.dumps(r.arguments, ensure_ascii=False, default=str), 1000),
                          call=r.describe(), decision=d.action, by=d.by, via=d.via, reason=d.reason,
                          label=d.label(), denial=None if d.allows else f"{r.describe()} at {r.where()}: {d.refusal()}",
                          at=d.at.isoformat())


class Gate:
    """Between a running program's thread and the cell: questions one way, decisions back.

    `recorded`: a person's earlier decisions on this program, by (tool, arguments' SHA-256)
    (see transcript.recorded_calls); they are applied without asking.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 recorded: Mapping[tuple[str, str], tuple[CallAction, str | None]] | None = None) -> None:
        self._loop = loop
        self._recorded = dict(recorded or {})
        self._questions: asyncio.Queue[tuple[Request, concurrent.futures.Future[Decision]]] = asyncio.Queue()
        self._waiting: set[concurrent.futures.Future[Decision]] = set()
        self._closed: Decision | None = None
        self._for_run: set[str] = set()
        self.asked: list[Asked] = []

    def wrap(self, tools: Mapping[str, Callable[..., Any]], each_call: set[str]) -> dict[str, Callable[..., Any]]:
        """The tools a run gets: each one in `each_call` asks before it runs."""
        return {name: self._asking(name, fn) if name in each_call else fn for name, fn in tools.items()}

    def _asking(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            current = calling()
            request = Request(name, args, kwargs, current.line if current is not None else None)
            decision = self._decide(request, current.hold() if current is not None else nullcontext())
            self.asked.append(Asked(request, decision))
            if not decision.allows:
                raise PermissionError(decision.refusal())
            if decision.action == "allow-run":
                self._for_run.add(name)
            return fn(*args, **kwargs)

        call.wants_line = True  # type: ignore[attr-defined] - the person is shown where the call is
        return call

    def _decide(self, request: Request, hold: Any) -> Decision:
        """On the program's thread: the decision, asking the cell only when nothing else gives it."""
        if request.tool in self._for_run:
            return Decision("allow", "run")
        recorded = self._recorded.get((request.tool, request.sha256))
        if recorded is not None:
            action, reason = recorded  # "allow" or "deny" (transcript.recorded_calls)
            return Decision(action, "recorded", reason)
        answer: concurrent.futures.Future[Decision] = concurrent.futures.Future()
        with hold:
            if self._closed is not None:
                return self._closed
            self._waiting.add(answer)
            self._loop.call_soon_threadsafe(self._questions.put_nowait, (request, answer))
            try:
                return answer.result()
            finally:
                self._waiting.discard(answer)

    async def questions(self) -> tuple[Request, concurrent.futures.Future[Decision]]:
        """The next call waiting for a decision; answer it with `future.set_result(Decision)`."""
        return await self._questions.get()

    def close(self, decision: Decision) -> None:
        """Answer every waiting call, and any later one, with `decision` (the run is interrupted)."""
        self._closed = decision
        for answer in list(self._waiting):
            if not answer.done():
                answer.set_result(decision)


def _collapsed(value: Any, limit: int = _VALUE_CHARS) -> Any:
    """The value with every long string (or long list) shortened, saying how much was left out."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        return {key: _collapsed(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_collapsed(item, limit) for item in value[:20]]
        return items + [f"… {len(value) - 20} more items"] if len(value) > 20 else items
    return value
