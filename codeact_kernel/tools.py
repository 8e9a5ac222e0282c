"""Tools: Python functions the notebook registers for programs to call with `call_tool`.

`@tool` reads the signature and docstring, so the model sees the same description a
person reading the code would. Registering a name again replaces the tool; a tool marked
`approval="always"` makes a program that may call it ask, even under the `auto` policy; one
marked `approval="each-call"` asks a person at every call, with its arguments, while the
program waits (calls.py).

Tools from MCP servers join through `Registry.attach` (mcp_tools): everything that reads the
registry (the model's tool list, %tools, approval's scan, route and guard, the extension's
panel) treats them like @tools. A name two tools share is resolved at every read, whatever
the order they came in: a @tool keeps its name, and an MCP tool whose name another tool
also has is named SERVER.NAME.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from .errors import ToolDefinitionError

if TYPE_CHECKING:  # asyncio costs tens of milliseconds to import; only async tools need it
    import asyncio

F = TypeVar("F", bound=Callable[..., Any])
Approval = Literal["policy", "always", "each-call"]
APPROVALS = ("policy", "always", "each-call")


@dataclass(frozen=True)
class Tool:
    """A registered tool: the function and what the model is told about it."""

    name: str
    function: Callable[..., Any]
    description: str
    signature: str
    approval: Approval = "policy"
    server: str | None = None
    """The MCP server the tool comes from (mcp_tools); None for a notebook's @tool."""
    remote_name: str | None = None
    """Its name on that server (`name` is SERVER.NAME when another tool has the same name)."""

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def describe(self) -> str:
        """One compact line for the prompt: `name(args) -> result  # description`."""
        text = f"{self.name}{self.signature}"
        text = f"{text}  # {self.description}" if self.description else text
        if self.approval == "each-call":  # so the model expects, and handles, a refusal
            text += " [the user approves each call; a denied call raises ToolError with their reason]"
        return text


def _signature(fn: Callable[..., Any]) -> str:
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, ValueError):
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise ToolDefinitionError(f"cannot read the signature of {fn!r}: {exc}") from exc
    text = str(sig)
    # typing's reprs are verbose ("typing.Optional[str]"); the model needs the short form.
    return text.replace("typing.", "").replace("NoneType", "None")


def _parameters(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split())


class ToolSource(Protocol):
    """Tools that come from elsewhere (the MCP servers: mcp_tools.Manager), read at every use."""

    def tools(self) -> list[Tool]:
        """Each tool named as its source names it, with `server` set; clashes are the registry's to resolve."""
        ...


class Registry:
    """The tools a kernel offers to programs; safe to read while a program runs."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._sources: list[ToolSource] = []
        self._lock = threading.Lock()

    def attach(self, source: ToolSource) -> None:
        """Offer a source's tools beside the registered ones, from now on."""
        if source not in self._sources:
            self._sources.append(source)

    def detach(self, source: ToolSource) -> None:
        if source in self._sources:
            self._sources.remove(source)

    def _entries(self) -> dict[str, Tool]:
        """Every tool by the name programs call it: the registered ones, then each source's
        under `resolve`'s names."""
        own = dict(self._tools)
        external = [t for source in list(self._sources) for t in source.tools()]
        return {**own, **resolve(own, external)} if external else own

    def add(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
            approval: Approval = "policy") -> Tool:
        if not callable(fn):
            raise ToolDefinitionError(f"a tool must be callable, not {type(fn).__name__}")
        tool_name = name or getattr(fn, "__name__", "")
        if not tool_name.isidentifier() or keyword.iskeyword(tool_name):
            raise ToolDefinitionError(
                f"tool name {tool_name!r} must be a Python identifier: pass @tool(name='...')")
        if approval not in APPROVALS:
            raise ToolDefinitionError(f"approval must be one of {', '.join(map(repr, APPROVALS))}, "
                                      f"not {approval!r}")
        if "__args__" in _parameters(fn):
            raise ToolDefinitionError(f"tool {tool_name!r}: the parameter name '__args__' is call_tool's own "
                                      "(it carries positional arguments): rename it")
        entry = Tool(tool_name, fn, description if description is not None else _first_paragraph(fn.__doc__),
                     _signature(fn), approval)
        with self._lock:
            self._tools[tool_name] = entry
        return entry

    def remove(self, name: str) -> None:
        with self._lock:
            if self._tools.pop(name, None) is not None:
                return
        entry = self._entries().get(name)
        if entry is not None and entry.server is not None:
            raise KeyError(f"{name} comes from the MCP server {entry.server}: `%mcp remove {entry.server}` "
                           "disconnects the server")
        raise KeyError(f"no tool named {name!r}; registered: {', '.join(self.names()) or 'none'}")

    def clear(self) -> None:
        with self._lock:
            self._tools.clear()

    def names(self) -> list[str]:
        return sorted(self._entries())

    def __contains__(self, name: object) -> bool:
        return name in self._entries()

    def __getitem__(self, name: str) -> Tool:
        return self._entries()[name]

    def __iter__(self) -> Iterator[Tool]:
        return iter(sorted(self._entries().values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._entries())

    def describe(self) -> str:
        """The tool list as the model sees it."""
        return "\n".join(t.describe() for t in self) or "(no tools registered)"

    def always_ask(self) -> set[str]:
        return {t.name for t in self if t.approval == "always"}

    def each_call(self) -> set[str]:
        """Tools whose every call a person decides on, while the program waits."""
        return {t.name for t in self if t.approval == "each-call"}

    def callables(self, loop: asyncio.AbstractEventLoop | None = None) -> dict[str, Callable[..., Any]]:
        """Plain callables for the sandbox, which calls tools from its worker thread.

        An `async def` tool runs on `loop` (the kernel's), so it can use the notebook's
        clients and sessions; the worker waits for it.
        """
        result: dict[str, Callable[..., Any]] = {}
        for entry in self:
            if entry.is_async:
                if loop is None:
                    raise ToolDefinitionError(f"async tool {entry.name!r} needs an event loop to run on")
                result[entry.name] = _on_loop(entry.function, loop)
            else:
                result[entry.name] = entry.function
        return result


def resolve(own: dict[str, Tool], external: list[Tool]) -> dict[str, Tool]:
    """Names for tools from sources, beside the registered `own`: each keeps its own name when
    no other tool has it, and is named SERVER.NAME when one does (a @tool, or a tool of another
    server). Repeated until no two share a name; a @tool never changes its name. The result
    depends only on which tools there are, never on the order servers connected in."""
    qualified: set[int] = set()
    while True:
        names = [f"{t.server}.{t.name}" if i in qualified else t.name for i, t in enumerate(external)]
        counts = Counter([*own, *names])
        clashing = {i for i, name in enumerate(names) if counts[name] > 1 and i not in qualified}
        if not clashing:
            break
        qualified |= clashing
    return {name: dataclasses.replace(tool, name=name) if name != tool.name else tool
            for name, tool in zip(names, external)}


def _on_loop(fn: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    import asyncio

    def call(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), loop).result()

    call.__name__ = getattr(fn, "__name__", "tool")
    return call


REGISTRY = Registry()
"""The registry `@tool` adds to; the kernel offers these to every program."""


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(*, name: str | None = None, description: str | None = None,
         approval: Approval = "policy") -> Callable[[F], F]: ...


def tool(fn: Any = None, /, *, name: str | None = None, description: str | None = None,
         approval: Approval = "policy") -> Any:
    """Register a function as a tool: `@tool`, or `@tool(name=..., description=..., approval=...)`.

    approval: "policy" (the default: the session's policy decides about programs that call
    it), "always" (a program that may call it needs a person's approval, even under `auto`),
    or "each-call" (every call waits for a person, who sees its arguments).

    The function itself is returned unchanged, so the notebook can still call it directly.
    """

    def register(f: F) -> F:
        REGISTRY.add(f, name=name, description=description, approval=approval)
        return f

    return register(fn) if fn is not None else register
