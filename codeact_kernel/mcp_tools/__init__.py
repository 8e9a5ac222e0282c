"""Tools from MCP servers: any Model Context Protocol server's tools, callable from programs.

    config.py    which servers: the shared `mcpServers` file, and `%mcp add`'s words
    manager.py   the connections (the official `mcp` SDK, on a thread of their own), the calls,
                 the lifecycle; the tools the registry offers (tools.Registry.attach)
    schema.py    a tool's input schema as a Python signature, and arguments mapped back onto it
    results.py   a tool's result as the program's value; images kept for the cell
    reaper.py    runs a stdio server so that it dies with the kernel, however the kernel ends

Named `mcp_tools`, not `mcp`, so it never shadows the SDK. Importing this package does not
import the SDK (which takes a second or more): that happens when the first server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ServerSpec, config_paths, read_config, spec_from_args
from .manager import Manager

if TYPE_CHECKING:
    from .results import Picture

__all__ = ["Manager", "ServerSpec", "config_paths", "read_config", "spec_from_args", "show_pictures"]


def show_pictures(pictures: list[Picture]) -> None:
    """Show in the current cell the images MCP tools returned during a run (`Manager.take_pictures`),
    each under a line naming the server and tool it came from."""
    if not pictures:
        return
    import base64

    from IPython.display import display

    for picture in pictures:
        said = (f"image from `{picture.tool}` (MCP server {picture.server}), {picture.mime_type}, "
                f"{len(picture.data):,} bytes")
        if picture.mime_type in ("image/png", "image/jpeg", "image/gif"):
            display({picture.mime_type: base64.b64encode(picture.data).decode(), "text/plain": f"[{said}]"}, raw=True)
        else:  # SVG and the rest are not shown inline: a server's SVG may carry script
            said += ": not shown inline"
        display({"text/markdown": f"_{said}_", "text/plain": said}, raw=True)
