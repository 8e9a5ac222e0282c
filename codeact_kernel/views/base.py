"""The one interface between a turn and whatever shows it: a `View`.

The turn (turn.py) emits events (events.py) to the cell's view and, when a person must
decide, asks it. A view is all that its frontend shows: each module under views/ is one
frontend (extension.py, widgets.py, text.py, headless.py; notebook.py holds what the notebook
views share), and no other code writes displays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .. import approval, calls
from ..events import Event, Proposal
from ..protocol import Approver


@dataclass
class CellIO:
    """What a view needs from the kernel: stream output (to the cell's parent message) and a
    line from stdin (awaited, so it can be cancelled)."""

    stream: Callable[[str, str], None]
    ask: Callable[[str], Awaitable[str]]


class View(ABC):
    """Shows one cell's events; asks a person for decisions where its frontend can."""

    approver: Approver | None = None
    """Where a person decides in this view; None: nobody can be asked (a headless run)."""

    def __init__(self, io: CellIO) -> None:
        self.io = io

    @abstractmethod
    def show(self, event: Event) -> None:
        """Render `event` (events arrive in the order they happen)."""

    async def ask_program(self, proposal: Proposal) -> approval.Decision:
        """A person's decision on the program (shown by the `Proposed` event just before)."""
        raise NotImplementedError(f"{type(self).__name__} cannot ask anyone")

    async def ask_call(self, request: calls.Request) -> calls.Decision:
        """A person's decision on a call the running program waits at."""
        return calls.Decision("deny", "nobody")

    def close(self) -> None:
        """The cell ended: release what the view still holds (widgets)."""

    def _stream(self, name: str, text: str) -> Any:
        self.io.stream(name, text)
