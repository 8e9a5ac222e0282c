"""The kernel's end of the extension's comm: one per connected browser tab.

The messages are declared in protocol.py; this module only moves them. It publishes the
state that `state()` builds (views/extension.py reads it from the session), hands a person's
decision on a card to the cell waiting for it, and applies a setting change the way its
magic would (`on_set`). Comm handlers may run on another thread than the cell: a decision
reaches the waiting cell through its event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from .protocol import ACTIONS, TARGET, VERSION, Decide, Phase, Result, State, Welcome


def new_id() -> str:
    return uuid.uuid4().hex


class Extension:
    """The comms of every connected tab, and the one card (if any) awaiting a decision."""

    def __init__(self, state: Callable[[Phase, str | None], State],
                 on_set: Callable[[str, str], tuple[bool, str]]) -> None:
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
