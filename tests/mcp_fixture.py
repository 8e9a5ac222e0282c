"""A real MCP server for the tests, written with the official SDK (`MCPServer`, FastMCP's successor).

    python tests/mcp_fixture.py [stdio]                 over stdin/stdout
    python tests/mcp_fixture.py http [--token T]        Streamable HTTP on 127.0.0.1, a free port,
                                                        printed on stdout's first line
    python tests/mcp_fixture.py stdio --hang            never answers (a server that hangs at start)

Its tools cover what the kernel must handle: read-only and unannotated tools, structured and
text results, an image, an error, a slow call, a large result, its own pid (so a test can kill
it), and one tool whose schema no model can use.
"""

from __future__ import annotations

import os
import struct
import sys
import time
import zlib
from typing import Any, TypedDict

from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
server = MCPServer("fixture", log_level="WARNING")
notes: dict[str, str] = {}


class Weather(TypedDict):
    city: str
    temperature_c: float


@server.tool(annotations=READ_ONLY)
def lookup(city: str, unit: str = "C") -> Weather:
    """The weather in a city.

    More text the model need not read."""
    return {"city": city, "temperature_c": 12.5 if unit == "C" else 54.5}


@server.tool(annotations=READ_ONLY)
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool(annotations=READ_ONLY, structured_output=False)
def two_blocks(text: str) -> list[str]:
    """Two text blocks."""
    return [text, text[::-1]]


@server.tool()
def add_note(title: str, body: str = "") -> str:
    """Add a note (not annotated: the server's approval setting applies)."""
    notes[title] = body
    return f"added {title}"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_note(title: str) -> str:
    """Delete a note."""
    notes.pop(title, None)
    return f"deleted {title}"


@server.tool(name="list-notes", annotations=READ_ONLY)
def list_notes() -> list[str]:
    """Every note's title (a name with a dash)."""
    return sorted(notes)


@server.tool(annotations=READ_ONLY)
def fail(message: str) -> str:
    """Fails with the message."""
    raise ToolError(message)


@server.tool(annotations=READ_ONLY)
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool(annotations=READ_ONLY)
def getenv(name: str) -> str:
    """An environment variable of this server's process ('' if unset)."""
    return os.environ.get(name, "")


@server.tool(annotations=READ_ONLY)
def sleep(seconds: float) -> str:
    """Sleeps, then says so."""
    time.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool(annotations=READ_ONLY)
def big(size: int) -> str:
    """`size` characters of text."""
    return "x" * size


@server.tool(annotations=READ_ONLY)
def chart() -> Image:
    """A 2x2 PNG."""
    return Image(data=png(2, 2), format="png")


@server.tool(annotations=READ_ONLY)
def weird(items: list[int]) -> int:
    """Its schema is replaced below by one no model can call."""
    return len(items)


def png(width: int, height: int) -> bytes:
    """A small red PNG, from the standard library alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


_listed = server.list_tools


async def _list_tools() -> list[Any]:
    tools = await _listed()
    for item in tools:
        if item.name == "weird":
            # call_tool carries positional arguments under "__args__": no program could pass this one
            item.input_schema = {"type": "object", "properties": {"__args__": {"type": "array"}}}
    return tools


server.list_tools = _list_tools  # type: ignore[method-assign]


def serve_http(token: str | None) -> None:
    import socket

    import anyio
    import uvicorn

    app = server.streamable_http_app()

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if token and scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--chatter" in arguments:  # a chatty server's debug output first, as many lines as asked
        for number in range(int(arguments[arguments.index("--chatter") + 1])):
            print(f"debug line {number:07d} " + "." * 80, file=sys.stderr)
    print(f"fixture server ready ({' '.join(arguments) or 'stdio'})", file=sys.stderr, flush=True)
    if "--hang" in arguments:
        time.sleep(3600)
    if arguments[:1] == ["http"]:
        serve_http(arguments[arguments.index("--token") + 1] if "--token" in arguments else None)
    else:
        server.run("stdio")
