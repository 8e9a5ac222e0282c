"""What a program gets back from an MCP tool, and what the cell shows beside it.

- Structured content comes back as the JSON value it is (a value the SDKs wrap as
  `{"result": value}` comes back as the value itself: schema.wrapped).
- Otherwise the content: one block as itself, several as a list, none as None. Text is a
  string; an image (or audio) is a string saying what it is, and the image itself is kept for
  the cell to show after the run; a resource link is a dict of its uri, name and type; an
  embedded resource is its text, or a string saying what its bytes are.
- `isError` raises MCPToolError with the server's text, which the program gets as ToolError.
- A result whose JSON is longer than the server's cap (1,000,000 characters, like a program's
  printed output) is an MCPToolError too: a program cannot page through what never arrives.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from ..errors import MCPToolError
from .schema import wrapped

IMAGE_BYTES = 10_000_000  # an image larger than this is described, not kept (the /output file cap)


@dataclass(frozen=True)
class Picture:
    """An image a tool returned, for the cell to show after the run."""

    server: str
    tool: str
    mime_type: str
    data: bytes


def convert(result: Any, *, server: str, tool: str, output_schema: Any, cap: int,
            pictures: list[Picture]) -> Any:
    """The program's value for a `CallToolResult`; images go to `pictures`."""
    content = list(result.content or [])
    if result.is_error:
        texts = [block.text for block in content if getattr(block, "type", None) == "text" and block.text]
        message = " ".join(" ".join(texts).split()) or "the tool reported an error and said nothing more"
        raise MCPToolError(f"{message} (from MCP server {server})")
    if result.structured_content is not None:
        value = result.structured_content
        if wrapped(output_schema) and isinstance(value, dict) and set(value) == {"result"}:
            value = value["result"]
    else:
        items = [_block(block, server, tool, pictures) for block in content]
        value = None if not items else items[0] if len(items) == 1 else items
    size = len(json.dumps(value, ensure_ascii=False, default=str))
    if size > cap:
        raise MCPToolError(f"the result is {size:,} characters of JSON, over the {cap:,} an MCP result may bring "
                           f"into a program: ask for less (a page, a range, a filter), or raise the cap with "
                           f"`%mcp add {server} --max-result N ...` (maxResultBytes in the config file)")
    return value


def _block(block: Any, server: str, tool: str, pictures: list[Picture]) -> Any:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind in ("image", "audio"):
        data = _decode(block.data)
        if data is None:
            return f"[{block.mime_type}: data that is not valid base64, left out]"
        if kind == "image" and len(data) <= IMAGE_BYTES:
            pictures.append(Picture(server, tool, block.mime_type, data))
            return f"[{block.mime_type} image, {len(data):,} bytes: shown in the cell after the program ends]"
        return f"[{block.mime_type} {kind}, {len(data):,} bytes: not shown]"
    if kind == "resource_link":
        return {"uri": str(block.uri), "name": block.name, "mimeType": block.mime_type,
                "description": block.description}
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return text
        data = _decode(getattr(resource, "blob", "")) or b""
        return f"[resource {resource.uri} ({resource.mime_type or 'bytes'}), {len(data):,} bytes: not shown]"
    return f"[content of type {kind!r}: not shown]"


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return None
