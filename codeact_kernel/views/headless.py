"""A headless run (nbclient, nbval, papermill): nobody to ask, everything shown as a notebook shows it.

The approval policy decides alone: a program that needs a person fails before it runs (the
turn says why and what to set), and a call that would ask a person is denied, and named in
the cell. What it shows is NotebookView's (notebook.py), and nothing else.
"""

from __future__ import annotations

from .notebook import NotebookView


class HeadlessView(NotebookView):
    approver = None
