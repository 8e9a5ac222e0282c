"""What a notebook shows of a prompt cell: every event as display data, Markdown beside text.

This is all a headless run (nbclient, nbval, papermill) shows, and what a saved notebook keeps
on GitHub or nbviewer: the reply, the program, each decision, the files, the footer. The
views that can ask a person (widgets.py, extension.py) show the same and add their
questions. Each display carries text/markdown made by markdown.py and the same words as
text/plain (render.py).
"""

from __future__ import annotations

import base64
import html
import time
from typing import Any

from IPython.display import HTML, Image, display

from ..events import (Asking, CallDecided, Carried, ConnectingServers, Decided, Event, Figures, FilesSaved, Footer,
                      GuestProgress, LocalModelProgress, NoAnswer, Notice, Output, Pictures, PreparingSandbox,
                      Proposed, Replied, Repairing, Retrying, SandboxReady, ServersReady, StartingLocalModel,
                      Streaming)
from . import render
from .base import View
from .render import Shown

STREAM_REFRESH = 0.1
"""Seconds between updates of the streamed reply."""
IMAGE_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}
INLINE_MIME = ("image/png", "image/jpeg", "image/gif")
"""Images shown as they are; an SVG a tool returned is not (it may carry script)."""


class NotebookView(View):
    """Display data in the cell, updated in place where the frontend shows updates."""

    def __init__(self, io: Any) -> None:
        super().__init__(io)
        self._reply: Any = None
        self._last_update = 0.0
        self._sandbox: Any = None
        self._local: Any = None
        self._servers: Any = None
        self._guest: Any = None

    def show(self, event: Event) -> None:
        match event:
            case StartingLocalModel(name=name):
                self._local = self.display(render.note(f"starting a local model: {name}…"), update=True)
            case LocalModelProgress(message=message):
                self._local.update(render.note(message).bundle(), raw=True)
            case ConnectingServers(names=names):
                self._servers = self.display(
                    render.note(f"connecting MCP server{'s' if len(names) > 1 else ''} {', '.join(names)}…"), update=True)
            case ServersReady(ready=ready):
                self._servers.update(render.note(f"MCP: {', '.join(ready) or 'no server'} ready").bundle(), raw=True)
            case Asking(model=model):
                self._reply = self.display(render.note(f"asking {model}…"), update=True)
            case Streaming(text=text, elapsed=elapsed):
                now = time.monotonic()
                if now - self._last_update >= STREAM_REFRESH:
                    self._last_update = now
                    self._reply.update(render.streaming(text, elapsed).bundle(), raw=True)
            case Retrying(attempt=attempt, delay=delay, reason=reason):
                self._reply.update(render.note(f"{reason}: retrying in {delay:.1f} s (retry {attempt})…").bundle(),
                                   raw=True)
            case NoAnswer(model=model):
                self._reply.update(render.note(f"no answer from {model}").bundle(), raw=True)
            case Replied(prose=prose, note=note):
                shown = render.reply(prose, note)
                if self._reply is not None:
                    self._reply.update(shown.bundle(), raw=True)
                else:  # replayed: nothing streamed
                    self.display(shown)
                self._reply = None
            case Proposed(proposal=proposal):
                self.display(render.program(proposal))
            case Decided(decision=decision):
                self.display(render.decision(decision))
                if decision.kind == "edited":
                    self.display(render.edited(decision))
            case PreparingSandbox():
                self._sandbox = self.display(render.note("preparing the sandbox…"), update=True)
            case SandboxReady(name=name, reason=reason):
                self._sandbox.update(render.sandbox_ready(name, reason).bundle(), raw=True)
            case GuestProgress(message=message, elapsed=elapsed, expected=expected, done=done):
                shown = render.guest_progress(message, elapsed, expected, done)
                if self._guest is None:
                    self._guest = self.display(shown, update=True)
                else:
                    self._guest.update(shown.bundle(), raw=True)
                if done:
                    self._guest = None
            case Figures(pngs=pngs):
                for png in pngs:  # as IPython's inline backend shows a figure
                    display({"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"}, raw=True)
            case Carried(values=values):
                self.display(render.carried(values))
            case Output(stream=stream, text=text):
                self.io.stream(stream, text)
            case CallDecided(asked=asked):
                self.display(render.call_decided(asked))
            case FilesSaved(files=files):
                for saved in files:
                    self._show_file(saved.name, saved.path.suffix.lower(), saved.data)
                self.display(render.files(files))
            case Pictures(pictures=pictures):
                for p in pictures:
                    inline = p.mime_type in INLINE_MIME
                    if inline:
                        display({p.mime_type: base64.b64encode(p.data).decode(), "text/plain": f"[{p.mime_type}]"},
                                 raw=True)
                    self.display(render.picture(p.server, p.tool, p.mime_type, len(p.data), inline))
            case Notice(text=text):
                self.io.stream("stderr", text + "\n")
            case Repairing(error=error, attempt=attempt, of=of):
                self.display(render.failed(error, attempt, of))
            case Footer():
                self.display(render.footer(event))

    def display(self, shown: Shown, update: bool = False) -> Any:
        """Show `shown`; with `update`, return a handle that can replace it later."""
        return display(shown.bundle(), raw=True, display_id=True if update else None)

    @staticmethod
    def _show_file(name: str, suffix: str, data: bytes) -> None:
        if suffix in IMAGE_TYPES:
            display(Image(data=data, format=IMAGE_TYPES[suffix]))
        elif suffix == ".svg":
            # As an <img>, never inline markup: an SVG a program wrote may carry script,
            # which must not run in the user's browser.
            encoded = base64.b64encode(data).decode()
            display(HTML(f'<img alt="{html.escape(name)}" src="data:image/svg+xml;base64,{encoded}"/>'))
