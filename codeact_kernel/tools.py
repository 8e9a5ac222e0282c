"""Tools: Python functions the notebook registers for programs to call with `call_tool`.

`@tool` reads the signature and docstring, so the model sees the same description a
person reading the code would. Registering a name again replaces the tool; a tool marked
`approval="always"` makes a program that may call it ask, even under the `auto` policy; one
marked `approval="each-call"` asks a person at every call, with its arguments, while the
program waits (calls.py).
"""

from __future__ import annotations

import inspect
import keyword
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

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


class Registry:
    """The tools a kernel offers to programs; safe to read while a program runs."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()

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
            if self._tools.pop(name, None) is None:
                raise KeyError(f"no tool named {name!r}; registered: {', '.join(self.names()) or 'none'}")

    def clear(self) -> None:
        with self._lock:
            self._tools.clear()

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self) -> Iterator[Tool]:
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)

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
