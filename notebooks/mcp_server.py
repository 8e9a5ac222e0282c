"""A small MCP server for notebooks/mcp.ipynb: a team's notes, written with the official SDK.

    python mcp_server.py        (stdio: what `%mcp add notes -- PYTHON mcp_server.py` starts)

Its read-only tools say so (`readOnlyHint`), so the kernel offers them as ordinary tools;
`add_note` does not, so the server's approval setting decides about it. The notes live in
memory: every start begins with the same three.
"""

from __future__ import annotations

import struct
import sys
import zlib

from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
server = MCPServer("notes", log_level="WARNING")
notes = {
    "Budget 2027": "The budget for 2027 is 1.2 M EUR; travel is cut by 10 %.",
    "Offsite": "The team offsite is in Porto in May; the budget allows two nights.",
    "Hiring": "Two engineers join in March.",
}


@server.tool(annotations=READ_ONLY)
def list_notes() -> list[str]:
    """The titles of all notes."""
    return sorted(notes)


@server.tool(annotations=READ_ONLY)
def read_note(title: str) -> str:
    """The text of the note with this exact title."""
    if title not in notes:
        raise ToolError(f"no note titled {title!r}; the titles are: {', '.join(sorted(notes))}")
    return notes[title]


@server.tool(annotations=READ_ONLY)
def search(query: str) -> list[str]:
    """Titles of the notes whose text mentions `query` (case-insensitive)."""
    return sorted(title for title, text in notes.items() if query.lower() in (title + " " + text).lower())


@server.tool(annotations=READ_ONLY)
def chart() -> Image:
    """A bar chart (PNG) of each note's length, in the order of list_notes."""
    lengths = [len(notes[title]) for title in sorted(notes)]
    return Image(data=_bars(lengths), format="png")


@server.tool()
def add_note(title: str, body: str) -> str:
    """Add a note, or replace the note with this title."""
    notes[title] = body
    return f"saved {title!r} ({len(body)} characters)"


def _bars(values: list[int], height: int = 14, scale: float = 2.0) -> bytes:
    """Horizontal bars as a PNG, from the standard library alone (stored, so the bytes never vary)."""
    width = int(max(values) * scale) + 4
    rows = []
    for value in values:
        bar = b"\x4c\x78\xa8" * int(value * scale) + b"\xff\xff\xff" * (width - int(value * scale))
        rows += [b"\x00" + bar] * (height - 4) + [b"\x00" + b"\xff\xff\xff" * width] * 4
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height * len(values), 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 0))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    print(f"notes server: {len(notes)} notes", file=sys.stderr, flush=True)
    server.run("stdio")
