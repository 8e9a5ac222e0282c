"""The views: one per kind of frontend, each all that its frontend shows of a prompt cell.

    extension.py   JupyterLab / Notebook 7 with CodeAct's extension: cards, panel, status bar
    widgets.py     any ipywidgets frontend: Markdown, and widgets to decide in
    text.py        jupyter console: text, the reply streamed, questions on stdin
    headless.py    nbclient, nbval, papermill: nobody to ask
    notebook.py    what the notebook views share: every event as Markdown beside text
    render.py      each record as Markdown (markdown.py) and as plain text
    base.py        the View interface the turn talks to
"""

from __future__ import annotations

from ..comm import Extension
from .base import CellIO, View
from .extension import ExtensionView
from .headless import HeadlessView
from .text import TextView
from .widgets import WidgetsView

__all__ = ["CellIO", "View", "pick"]


def pick(io: CellIO, extension: Extension, *, widgets: bool, stdin: bool) -> View:
    """The richest view this frontend supports: the extension's cards, ipywidgets, a console's
    stdin, or nobody to ask."""
    if extension.connected:
        return ExtensionView(io, extension)
    if widgets:
        return WidgetsView(io)
    if stdin:
        return TextView(io)
    return HeadlessView(io)
