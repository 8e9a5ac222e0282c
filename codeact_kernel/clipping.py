"""The one way long text is shortened: its head and its tail, saying how much was left out.

Outputs, tracebacks and arguments can be megabytes; a person, a transcript line or the
model's next request needs the start (what it is) and the end (where it failed, how it
finished), and must be told that something is missing.
"""

from __future__ import annotations

from typing import Literal


def clip(text: str, limit: int, *, head: float = 2 / 3, unit: Literal["chars", "lines"] = "chars") -> str:
    """`text` if it is within `limit` characters (or lines), else `head` of the limit from its
    start and the rest from its end, with a marker between that counts what was left out.
    `head=0` keeps only the end (a traceback, where the error is)."""
    if unit == "lines":
        lines = text.rstrip("\n").split("\n")
        if len(lines) <= limit:
            return "\n".join(lines)
        first = int(limit * head)
        last = limit - first
        marker = f"[... {len(lines) - limit:,} lines left out ...]"
        return "\n".join([*lines[:first], marker, *lines[len(lines) - last:]])
    if len(text) <= limit:
        return text
    first = int(limit * head)
    last = limit - first
    return f"{text[:first]}[... {len(text) - limit:,} characters left out ...]{text[len(text) - last:]}"
