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

from .config import ServerSpec, config_paths, read_config, spec_from_args
from .manager import Manager
from .results import Picture

__all__ = ["Manager", "Picture", "ServerSpec", "config_paths", "read_config", "spec_from_args"]
