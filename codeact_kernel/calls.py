"""Approval inside a running program: each call to a tool marked `approval="each-call"` waits
for a person.

Approving a whole program is approving blind the arguments its side effects will get (an
email's recipient, an amount). Here the call itself is the question: the program pauses in
`call_tool`, the person sees the tool, its arguments and the line of the program that made
the call, and allows it once, allows the tool for the rest of this run, or denies it with a
reason, which the program gets as a `ToolError` it may catch and the model reads next turn.

The program's thread asks (`Gate.wrap` puts the question into the tool, where the call
arrives on the host); the cell answers on the kernel's event loop (`Gate.questions`), with
whoever can decide there (cell.py: the extension's card, the widget below, a stdin prompt,
or nobody, which is a denial). The run's timeout stands still meanwhile (`Calling.hold`).
Under the `recorded` policy, a person's earlier decision on the same program, tool and
arguments is applied again without asking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import html
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .sandbox.base import calling

Action = Literal["allow", "allow-run", "deny"]
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
    action: Action
    by: By
    reason: str | None = None
    via: str | None = None
    """Where a person decided: "extension", "widgets" or "stdin"."""
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

    def record(self) -> dict[str, Any]:
        """As the transcript keeps it: the arguments' SHA-256 and a clipped copy."""
        d, r = self.decision, self.request
        return {"tool": r.tool, "line": r.line, "args_sha256": r.sha256,
                "args": _clip(json.dumps(r.arguments, ensure_ascii=False, default=str), 1000),
                "decision": d.action, "by": d.by, "via": d.via, "reason": d.reason, "at": d.at.isoformat()}

    def markdown(self) -> str:
        """One line that survives in a saved notebook, in every frontend."""
        when = self.decision.at.astimezone().strftime("%H:%M:%S")
        text = f"**{self.decision.label()}** at {when} · `{_clip(self.request.describe(), 160)}`, {self.request.where()}"
        return text + (f" · reason: {self.decision.reason}" if self.decision.reason else "")


class Gate:
    """Between a running program's thread and the cell: questions one way, decisions back.

    `recorded`: a person's earlier decisions on this program, by (tool, arguments' SHA-256)
    (see transcript.recorded_calls); they are applied without asking.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 recorded: Mapping[tuple[str, str], tuple[Action, str | None]] | None = None) -> None:
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


def denials(asked: Iterable[Asked]) -> tuple[str, ...]:
    """The calls denied in a run, as the model is told of them next turn."""
    return tuple(f"{a.request.describe()} at {a.request.where()}: {a.decision.refusal()}"
                 for a in asked if not a.decision.allows)


def ask_line(request: Request) -> str:
    """The question at a console prompt (jupyter console): the call, then the choices."""
    return (f"The program wants to call {_clip(request.describe(), 300)} at {request.where()}. "
            f"Allow it? [y/N/r: yes, and {request.tool} for the rest of this run; anything else is "
            "a reason for denying] ")


def from_answer(answer: str) -> tuple[Action, str | None]:
    """A console answer as a decision: y, r (for the run), else a denial with the answer as reason."""
    text = answer.strip()
    if text.lower() in ("y", "yes"):
        return "allow", None
    if text.lower() == "r":
        return "allow-run", None
    return "deny", None if text.lower() in ("", "n", "no") else text


def _collapsed(value: Any, limit: int = _VALUE_CHARS) -> Any:
    """The value with every long string (or long list) shortened, saying how much was left out."""
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, dict):
        return {key: _collapsed(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_collapsed(item, limit) for item in value[:20]]
        return items + [f"… {len(value) - 20} more items"] if len(value) > 20 else items
    return value


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]}… [{len(text) - limit:,} characters] …{text[len(text) - (limit - head):]}"


class CallWidget:
    """Allow, Allow for this run and Deny over the call; for widget frontends without the extension."""

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        import ipywidgets as w

        self._loop = loop
        self._future: asyncio.Future[Decision] = loop.create_future()
        summary = (f"<b>The program wants to call <code>{html.escape(request.tool)}</code></b> "
                   f"at {html.escape(request.where())}; it waits for you:")
        self.allow = w.Button(description="Allow", button_style="success", icon="check",
                              tooltip="Run this call; ask again at the next one")
        self.allow_run = w.Button(description=f"Allow {request.tool} for this run", icon="check-double",
                                  tooltip=f"Run this call and every later call to {request.tool} in this run")
        self.deny = w.Button(description="Deny", button_style="danger", icon="times",
                             tooltip="The call raises ToolError in the program, with your reason")
        self.reason = w.Text(placeholder="Reason for denying (optional; the program and the model see it)",
                             layout=w.Layout(width="100%"))
        self.allow.on_click(lambda _b: self._decide("allow"))
        self.allow_run.on_click(lambda _b: self._decide("allow-run"))
        self.deny.on_click(lambda _b: self._decide("deny"))
        self.view = w.VBox([w.HTML(summary), w.HTML(f"<pre>{html.escape(request.pretty())}</pre>"),
                            w.HBox([self.allow, self.allow_run, self.deny]), self.reason])

    def _decide(self, action: Action) -> None:
        reason = self.reason.value.strip() or None if action == "deny" else None
        decision = Decision(action, "person", reason, via="widgets")
        # Comm handlers may run on another thread: resolve through the loop.
        self._loop.call_soon_threadsafe(lambda: self._future.done() or self._future.set_result(decision))

    async def decide(self) -> Decision:
        return await self._future

    def close(self) -> None:
        from .approval import close_tree

        close_tree(self.view)
