"""Widget frontends without CodeAct's extension (VS Code, Voilà, JupyterLab with another
protocol version): everything as a notebook shows it (notebook.py), and ipywidgets controls
where a person decides.

The controls are plain ipywidgets (Button, Textarea, Text, HTML), so every widget frontend
shows them and tests drive them with the comm messages a browser sends. The program is also
shown as Markdown above its widget, so a saved notebook (which keeps no widget state) shows
what was asked; once decided, the widget is replaced by the decision's record.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any, Generic, TypeVar

from .. import approval, calls
from ..events import CallDecided, Decided, Event, Proposal, Proposed
from ..protocol import CallAction, ProgramAction
from . import render
from .notebook import NotebookView

D = TypeVar("D")


class WidgetsView(NotebookView):
    approver = "widgets"

    def __init__(self, io: Any) -> None:
        super().__init__(io)
        self._asking: dict[str, tuple[Any, _Choice[Any]]] = {}
        """What is being asked, by proposal or request id: its display handle and widget."""
        self._decided: list[_Choice[Any]] = []

    def show(self, event: Event) -> None:
        match event:
            case Proposed(proposal=proposal, asking=True):
                self.display(render.program(proposal))
                widget = ProgramWidget(proposal, asyncio.get_running_loop())
                self._asking[proposal.id] = (self.display_widget(widget), widget)
            case Decided(proposal=proposal, decision=decision) if proposal.id in self._asking:
                handle, widget = self._asking.pop(proposal.id)
                handle.update(render.decision(decision).bundle(), raw=True)
                self._decided.append(widget)
                if decision.kind == "edited":
                    self.display(render.edited(decision))
            case CallDecided(asked=asked) if asked.request.id in self._asking:
                handle, widget = self._asking.pop(asked.request.id)
                widget.close()
                handle.update(render.call_decided(asked).bundle(), raw=True)
            case _:
                super().show(event)

    async def ask_program(self, proposal: Proposal) -> approval.Decision:
        _handle, widget = self._asking[proposal.id]
        try:
            return await widget.decide()
        except BaseException:
            widget.close()
            raise

    async def ask_call(self, request: calls.Request) -> calls.Decision:
        widget = CallWidget(request, asyncio.get_running_loop())
        self._asking[request.id] = (self.display_widget(widget), widget)
        try:
            return await widget.decide()
        except BaseException:
            widget.close()
            raise

    def close(self) -> None:
        """Closing a decided widget's controls sends a dozen comm messages: done when the cell
        ends, so the program starts at once."""
        while self._decided:
            self._decided.pop().close()
        for _handle, widget in self._asking.values():
            widget.close()
        self._asking.clear()

    @staticmethod
    def display_widget(widget: _Choice[Any]) -> Any:
        from IPython.display import display

        return display(widget.view, display_id=True)


class _Choice(Generic[D]):
    """Buttons a person clicks once; `decide()` awaits the click. Comm handlers may run on
    another thread than the cell: the decision is resolved through the cell's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import ipywidgets as w

        self._w = w
        self._loop = loop
        self._future: asyncio.Future[D] = loop.create_future()
        self.view: Any = None

    def _button(self, description: str, decide: Any, **style: Any) -> Any:
        button = self._w.Button(description=description, **style)
        button.on_click(lambda _b: self._resolve(decide()))
        return button

    def _resolve(self, decision: D) -> None:
        self._loop.call_soon_threadsafe(lambda: self._future.done() or self._future.set_result(decision))

    async def decide(self) -> D:
        return await self._future

    def close(self) -> None:
        """Close every control and its layout and style, so no comm outlives the decision."""
        _close_tree(self.view)


class ProgramWidget(_Choice[approval.Decision]):
    """Approve, Edit and Reject (and Approve and allow, when offered) over the highlighted program."""

    def __init__(self, proposal: Proposal, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        w = self._w
        self.proposal = proposal
        program = proposal.program
        self.code = w.HTML(_highlight(program))
        self.editor = w.Textarea(value=program, rows=min(30, program.count("\n") + 3),
                                 layout=w.Layout(width="100%", display="none"))
        self.reason = w.Text(placeholder="Reason for rejecting (optional, sent to the model)",
                             layout=w.Layout(width="100%"))
        self.edit = w.Button(description="Edit", icon="pencil", tooltip="Edit the program before running it")
        self.edit.on_click(lambda _b: self._start_editing())
        buttons = [self._button("Approve", lambda: self._decided("approve"), button_style="success", icon="check",
                                tooltip="Run this program in the sandbox"),
                   self.edit,
                   self._button("Reject", lambda: self._decided("reject"), button_style="danger", icon="times",
                                tooltip="Do not run; the reason goes to the model")]
        if proposal.offer:  # only then: every control made is shown, and closed with the view
            buttons.insert(1, self._button(
                "Approve and allow", lambda: self._decided("approve-allow"), icon="check-double",
                tooltip=f"Run this, and later programs that call only {', '.join(proposal.offer)}, "
                        "without asking (this session)"))
        calls_line = w.HTML(f"<b>Calls:</b> {html.escape(proposal.found.describe())}")
        self.view = w.VBox([calls_line, self.code, self.editor, w.HBox(buttons), self.reason])

    def _start_editing(self) -> None:
        self.editor.layout.display = ""
        self.code.layout.display = "none"
        self.edit.disabled = True

    def _decided(self, action: ProgramAction) -> approval.Decision:
        p = self.proposal
        return approval.decided(action, p.program, self.editor.value, self.reason.value, p.offer, via="widgets")


class CallWidget(_Choice[calls.Decision]):
    """Allow, Allow for this run and Deny over a call the running program waits at."""

    def __init__(self, request: calls.Request, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        w = self._w
        summary = (f"<b>The program wants to call <code>{html.escape(request.tool)}</code></b> "
                   f"at {html.escape(request.where())}; it waits for you:")
        self.reason = w.Text(placeholder="Reason for denying (optional; the program and the model see it)",
                             layout=w.Layout(width="100%"))
        buttons = [self._button("Allow", lambda: self._decided("allow"), button_style="success", icon="check",
                                tooltip="Run this call; ask again at the next one"),
                   self._button(f"Allow {request.tool} for this run", lambda: self._decided("allow-run"),
                                icon="check-double",
                                tooltip=f"Run this call and every later call to {request.tool} in this run"),
                   self._button("Deny", lambda: self._decided("deny"), button_style="danger", icon="times",
                                tooltip="The call raises ToolError in the program, with your reason")]
        self.view = w.VBox([w.HTML(summary), w.HTML(f"<pre>{html.escape(request.pretty())}</pre>"),
                            w.HBox(buttons), self.reason])

    def _decided(self, action: CallAction) -> calls.Decision:
        reason = self.reason.value.strip() or None if action == "deny" else None
        return calls.Decision(action, "person", reason, via="widgets")


def _highlight(program: str) -> str:
    """The program as self-contained HTML (inline styles, so any frontend renders it); every
    character of it escaped by pygments."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(program, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))


def _close_tree(widget: Any) -> None:
    from ipywidgets import Widget

    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(part, Widget):
            part.close()
    widget.close()
