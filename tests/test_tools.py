"""Registering tools: what the model is told, replacing, removing, async tools."""

from __future__ import annotations

import asyncio
import threading
from typing import Optional

import pytest

from codeact_kernel.errors import ToolDefinitionError
from codeact_kernel.tools import Registry


def get_weather(city: str, unit: str = "C") -> dict[str, float | str]:
    """Return the current weather for a city.

    Longer notes that the model does not need.
    """
    return {"city": city}


def test_description_comes_from_signature_and_docstring():
    reg = Registry()
    reg.add(get_weather)
    assert reg.describe() == (
        "get_weather(city: str, unit: str = 'C') -> dict[str, float | str]  "
        "# Return the current weather for a city."
    )


def test_short_type_names_and_overrides():
    reg = Registry()

    def lookup(key: Optional[str] = None) -> None:
        pass

    reg.add(lookup, name="find", description="Find a thing.")
    assert reg.describe() == "find(key: Optional[str] = None) -> None  # Find a thing."


def test_redefining_replaces_and_tools_can_be_removed():
    reg = Registry()
    reg.add(lambda: 1, name="value")
    reg.add(lambda: 2, name="value")
    assert len(reg) == 1 and reg["value"].function() == 2
    reg.remove("value")
    assert "value" not in reg
    with pytest.raises(KeyError, match="no tool named 'value'"):
        reg.remove("value")


def test_bad_names_are_refused_with_the_fix():
    reg = Registry()
    with pytest.raises(ToolDefinitionError, match=r"@tool\(name='...'\)"):
        reg.add(lambda: 1)  # "<lambda>"
    with pytest.raises(ToolDefinitionError):
        reg.add(lambda: 1, name="class")
    with pytest.raises(ToolDefinitionError, match="callable"):
        reg.add(42)  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="'__args__' is call_tool's own"):
        reg.add(lambda __args__: 1, name="clash")
    reg.add(lambda name: name, name="greet")  # call_tool's own `name` is positional-only: no clash


def test_always_ask_tools():
    reg = Registry()
    reg.add(get_weather)
    reg.add(lambda: None, name="delete_everything", approval="always")
    assert reg.always_ask() == {"delete_everything"}


def test_async_tools_run_on_the_given_loop():
    reg = Registry()
    seen = []

    async def fetch(x: int) -> int:
        seen.append(threading.current_thread().name)
        await asyncio.sleep(0)
        return x * 2

    reg.add(fetch)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kernel-loop", daemon=True)
    thread.start()
    try:
        assert reg.callables(loop)["fetch"](21) == 42
        assert seen == ["kernel-loop"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
    with pytest.raises(ToolDefinitionError, match="needs an event loop"):
        reg.callables(None)


def test_the_decorator_returns_the_function_and_registers_it():
    from codeact_kernel.tools import REGISTRY, tool

    @tool
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    @tool(name="triple_it", approval="always")
    def triple(x: int) -> int:
        return 3 * x

    try:
        assert double(2) == 4 and triple(2) == 6
        assert REGISTRY["double"].description == "Twice x."
        assert REGISTRY["triple_it"].approval == "always"
    finally:
        REGISTRY.remove("double")
        REGISTRY.remove("triple_it")
