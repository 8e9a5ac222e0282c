"""An MCP tool's JSON Schema as a Python call: the signature the model reads, and the
arguments a program passes mapped back onto the schema.

The rules (the README says the same):
- positional arguments fill the parameters in the order the signature shows: the required
  ones in the order the schema lists them, then the optional ones in the same order;
- keywords name parameters; a name the schema does not list is refused, unless the schema
  explicitly allows additional properties;
- an optional parameter given None is left out (the signature shows `= None` for an optional
  parameter without a default), unless its schema accepts null;
- then the arguments are checked against the schema, so a mismatch is a `TypeError` naming
  the argument and listing the parameters, before anything reaches the server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sandbox.base import ARGS_KEY, LINE_KEY

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # the MCP specification's tool-name characters
_SIMPLE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None",
           "array": "list", "object": "dict"}
_DESCRIPTION_CHARS = 400


def unusable(name: str, input_schema: Any) -> str | None:
    """Why the model cannot be offered this tool, or None. Such a tool is left out and listed,
    with this reason, by `%mcp`."""
    if not _TOOL_NAME.fullmatch(name):
        return ("its name has characters outside the MCP specification's A-Z, a-z, 0-9, '_', '-' and '.' "
                "(or is longer than 128)")
    if not isinstance(input_schema, dict):
        return "its input schema is not a JSON object"
    if input_schema.get("type", "object") != "object":
        return f"its input schema describes {input_schema.get('type')!r}, not an object of named arguments"
    properties = input_schema.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(v, dict) for v in properties.values()):
        return "its input schema's properties are not an object of schemas"
    reserved = {ARGS_KEY, LINE_KEY} & set(properties)
    if reserved:
        return f"it has a parameter named {sorted(reserved)[0]!r}, which call_tool reserves for itself"
    required = input_schema.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(properties) and not _allows_more(input_schema):
        return "its input schema requires parameters it does not describe"
    return None


def _allows_more(schema: Mapping[str, Any]) -> bool:
    extra = schema.get("additionalProperties")
    return extra is True or isinstance(extra, dict)


@dataclass
class Parameters:
    """A tool's parameters, in call order, read from its input schema."""

    tool: str
    schema: dict[str, Any]
    names: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()
    _validator: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        properties = self.schema.get("properties", {}) or {}
        required = [n for n in self.schema.get("required", []) if n in properties]
        self.required = frozenset(required)
        self.names = (*[n for n in properties if n in self.required],
                      *[n for n in properties if n not in self.required])

    @property
    def properties(self) -> dict[str, Any]:
        return self.schema.get("properties", {}) or {}

    def signature(self, returns: str) -> str:
        """`(path: str, limit: int = 10) -> str`: how the model and %tools see the tool."""
        parts = []
        for name in self.names:
            prop = self.properties[name]
            text = f"{name}: {type_text(prop)}" if name.isidentifier() else repr(name)
            if name not in self.required:
                text += f" = {prop['default']!r}" if "default" in prop else " = None"
            parts.append(text)
        return f"({', '.join(parts)}) -> {returns}"

    def describe_parameters(self) -> str:
        """The parameters' own descriptions, for the model: `path: the file, relative to the root`."""
        notes = []
        for name in self.names:
            text = self.properties[name].get("description")
            if isinstance(text, str) and text.strip():
                notes.append(f"{name}: {' '.join(text.split())}")
        return "; ".join(notes)

    def listing(self) -> str:
        """The parameters as an error message lists them."""
        if not self.names:
            return f"{self.tool} takes no arguments"
        shown = self.signature("").removesuffix(" -> ")
        required = ", ".join(n for n in self.names if n in self.required) or "none"
        return f"{self.tool}{shown} (required: {required})"

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON object to send for `call_tool(tool, *args, **kwargs)`, or a TypeError saying what is wrong."""
        if len(args) > len(self.names):
            raise TypeError(f"{self.tool} takes at most {len(self.names)} positional argument"
                            f"{'s' if len(self.names) != 1 else ''}, {len(args)} given; {self.listing()}")
        arguments = dict(zip(self.names, args))
        for key, value in kwargs.items():
            if key in arguments:
                raise TypeError(f"{self.tool} got two values for {key!r} (positionally and by name); {self.listing()}")
            if key not in self.properties and not _allows_more(self.schema):
                raise TypeError(f"{self.tool} has no parameter {key!r}; {self.listing()}")
            arguments[key] = value
        for key in [k for k, v in arguments.items() if v is None and k not in self.required]:
            if not _accepts_null(self.properties.get(key, {})):
                del arguments[key]  # None means "not given", as the signature's `= None` promises
        missing = [n for n in self.names if n in self.required and n not in arguments]
        if missing:
            raise TypeError(f"{self.tool} is missing {', '.join(map(repr, missing))}; {self.listing()}")
        self._check(arguments)
        return arguments

    def _check(self, arguments: dict[str, Any]) -> None:
        validator = self._compiled()
        if validator is None:
            return
        error = _best(validator, arguments)
        if error is not None:
            where = "".join(f"[{p!r}]" for p in list(error.path)[1:])
            place = f"argument {error.path[0]!r}{where}: " if error.path else ""
            raise TypeError(f"{self.tool}: {place}{error.message}; {self.listing()}")

    def _compiled(self) -> Any:
        """The schema's validator, made once (importing jsonschema takes a second or two; the
        manager warms it up in the background after a server connects)."""
        with self._lock:
            if self._validator is None:
                from jsonschema import SchemaError
                from jsonschema.validators import validator_for

                cls = validator_for(self.schema)
                try:
                    cls.check_schema(self.schema)
                except SchemaError as exc:
                    raise TypeError(f"{self.tool} cannot be called: the server's input schema is not valid "
                                    f"JSON Schema ({exc.message}); tell the server's authors") from None
                self._validator = cls(self.schema)
            return self._validator


def _best(validator: Any, instance: Any) -> Any:
    from jsonschema.exceptions import best_match

    return best_match(validator.iter_errors(instance))


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or isinstance(kind, list) and "null" in kind:
        return True
    return any(_accepts_null(s) for key in ("anyOf", "oneOf") for s in schema.get(key, []) if isinstance(s, dict))


def type_text(schema: Any, depth: int = 0) -> str:
    """A JSON Schema as the Python type a model reads: `str`, `list[int]`, `Literal['a', 'b']`, `int | None`."""
    if not isinstance(schema, dict) or depth > 3:
        return "Any"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return f"Literal[{', '.join(map(repr, schema['enum']))}]"
    if "const" in schema:
        return f"Literal[{schema['const']!r}]"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return _union([type_text(s, depth + 1) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([type_text({**schema, "type": k}, depth + 1) for k in kind])
    if kind == "array":
        items = schema.get("items")
        return f"list[{type_text(items, depth + 1)}]" if isinstance(items, dict) and items else "list"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return f"dict[str, {type_text(extra, depth + 1)}]"
        return "dict"
    return _SIMPLE.get(kind, "Any") if isinstance(kind, str) else "Any"


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return "Any" if "Any" in unique else " | ".join(unique)


def wrapped(output_schema: Any) -> bool:
    """True for an output schema that only wraps a value as `{"result": value}` (what the MCP
    SDKs send for a tool returning a string, number or list, since structured content had to
    be an object): the program then gets the value itself."""
    if not isinstance(output_schema, dict) or output_schema.get("type") != "object":
        return False
    properties = output_schema.get("properties")
    return (isinstance(properties, dict) and list(properties) == ["result"]
            and output_schema.get("required") == ["result"])


def returns(output_schema: Any) -> str:
    """The return type shown in the signature: what a program gets back (see results.py)."""
    if output_schema is None:
        return "str"  # text content comes back as a string
    if wrapped(output_schema):
        return type_text(output_schema["properties"]["result"])
    return type_text(output_schema)


def description(text: str | None, parameters: Parameters) -> str:
    """The tool's description as the model reads it: its first paragraph, then what the
    schema says of each parameter, clipped (a server's description can run to pages)."""
    first = " ".join((text or "").strip().split("\n\n", 1)[0].split())
    notes = parameters.describe_parameters()
    combined = f"{first} ({notes})" if first and notes else first or notes
    return combined if len(combined) <= _DESCRIPTION_CHARS else combined[:_DESCRIPTION_CHARS - 1] + "…"
