"""The wire between the kernel and CodeAct's notebook extension: types only, importing nothing.

The extension opens one comm on `TARGET` when it connects to a CodeAct kernel. Over it the
kernel publishes its state (settings, tools, runs, the running cell's phase) and receives
decisions and setting changes. An approval request is display data of type `APPROVAL_MIME`
in the cell's output, so the card lives in the cell and is saved with the notebook; beside it
a `text/markdown` copy shows in every other frontend. A call waiting inside a running program
(a tool marked approval="each-call") is display data of type `CALL_MIME`, decided the same
way. Every message has a `kind` and an `id`; the comm's opening message carries the protocol
version, and a frontend of another major version is told so and not used.

The extension's `src/protocol.ts` is generated from this file (`python -m codeact_kernel.protocol
> extension/src/protocol.ts`), and a test checks it is up to date: the two sides cannot drift.

Version 2 added the call card, its actions and the runs' asked calls; version 3 the kernel's
policies and settable names in the state, one type for decision kinds, and on the approval
card the guest a program runs in and the values it starts with.
"""

from typing import Any, Literal, TypedDict, Union, get_args

TARGET = "codeact"
VERSION = 3
APPROVAL_MIME = "application/vnd.codeact.approval+json"
CALL_MIME = "application/vnd.codeact.call+json"

# How the kernel reads a cell (kernel.py routes by these; the extension's editor modes follow them).
PYTHON_MARKER = "%%python"
"""A cell whose first line is this is ordinary Python in the kernel's namespace."""
MAGIC = r"^%{1,2}[A-Za-z_]"
"""A line that is a magic: a cell of only such lines (or starting with a cell magic) is magics."""
EXIT = ("exit", "quit", "exit()", "quit()")
"""Cells that ask a console to close, as in IPython: Python, not prompts."""

Phase = Literal["idle", "asking-model", "awaiting-approval", "running", "awaiting-call", "repairing"]
ProgramAction = Literal["approve", "approve-allow", "reject"]
"""What a person does on a program's card."""
CallAction = Literal["allow", "allow-run", "deny"]
"""What a person does on a call's card."""
Action = Literal[ProgramAction, CallAction]
DecisionKind = Literal["approved", "edited", "rejected", "auto", "recorded", "recorded-unasked", "allowed",
                       "rejected-by-policy"]
"""What became of a program: a person approved it (as it was, or edited), rejected it, or a
policy ran it unasked (auto, recorded, a session allowance) or refused it (reject)."""
Outcome = Literal[DecisionKind, Literal["no-code"]]
"""What became of a turn: a decision on its program, or "no-code" (the reply had none)."""
Approver = Literal["extension", "widgets", "stdin"]
"""Where a person decided: the extension's card, ipywidgets, or a console prompt."""
Settable = Literal["approval", "model"]
"""What the extension's panel may change, through the magic a person would type."""

ACTIONS = get_args(Action)
SETTABLE = get_args(Settable)


# -- frontend to kernel ---------------------------------------------------------------------
class Hello(TypedDict):
    """The comm_open data."""

    kind: Literal["hello"]
    id: str
    version: int


class Decide(TypedDict):
    """A person's decision on the card of request `request`."""

    kind: Literal["decide"]
    id: str
    request: str
    action: Action
    program: str
    """What runs: the model's program, or the person's edit (empty for a call)."""
    reason: str
    """Why, when rejecting or denying; it reaches the model's next request."""


class Set(TypedDict):
    """Change a setting through the same code path as its magic (`%approval`, `%model`)."""

    kind: Literal["set"]
    id: str
    name: Settable
    value: str


class Refresh(TypedDict):
    """Ask for the state again."""

    kind: Literal["refresh"]
    id: str


FrontendMessage = Union[Hello, Decide, Set, Refresh]


# -- kernel to frontend ---------------------------------------------------------------------
class Welcome(TypedDict):
    kind: Literal["welcome"]
    id: str
    version: int
    accepted: bool
    reason: str


class ToolInfo(TypedDict):
    name: str
    signature: str
    doc: str
    always: bool
    """Marked approval="always": every program that may call it asks a person."""


class Settings(TypedDict):
    model: str
    base_url: str
    approval: str
    approval_max: str | None
    policies: list[str]
    """The approval policies the kernel knows, most careful first."""
    settable: list[Settable]
    sandbox: str
    """The backend in use, or the one configured before the first run."""
    sandbox_reason: str
    limits: dict[str, Any]
    mounts: list[str]
    domains: list[str]


class CallInfo(TypedDict):
    """A call that asked a person while the run went on."""

    tool: str
    call: str
    """The call as one line, long values collapsed."""
    line: int | None
    decision: CallAction
    label: str
    reason: str | None


class RunInfo(TypedDict):
    prompt: str
    cell_id: str | None
    decision: Outcome
    by: str
    sha256: str | None
    tool_calls: int
    tokens_in: int
    tokens_out: int
    seconds_model: float
    seconds_sandbox: float
    error: str | None
    calls: list[CallInfo]


class State(TypedDict):
    kind: Literal["state"]
    id: str
    settings: Settings
    tools: list[ToolInfo]
    runs: list[RunInfo]
    phase: Phase
    pending: str | None
    """The approval request awaiting a decision, if any: only its card offers the actions."""


class Result(TypedDict):
    """The answer to a `set`: `ok`, and what the magic printed."""

    kind: Literal["result"]
    id: str
    request: str
    """The id of the `set` this answers."""
    ok: bool
    message: str


KernelMessage = Union[Welcome, State, Result]


# -- the cards (display data, not comm messages) ------------------------------------------------
class CardTool(TypedDict):
    name: str
    always: bool


class CardInput(TypedDict):
    """A value the program starts with: shared from the notebook, or left by an earlier program."""

    name: str
    origin: Literal["shared", "carried"]
    description: str
    """Type, shape and columns, never values."""


class CardDecision(TypedDict):
    kind: DecisionKind
    label: str
    by: str
    """"you" (a person, in the card) or the policy's name."""
    sha256: str | None
    at: str
    program: str
    """What ran (the edit, if edited)."""
    reason: str | None
    allow: list[str]


class ApprovalCard(TypedDict):
    version: int
    request: str
    program: str
    tools: list[CardTool]
    dynamic: bool
    """Some call_tool's name is chosen at run time."""
    offer: list[str]
    """Tools a person may allow for the session with this approval ("Approve and allow")."""
    guest: str
    """The guest it runs in: standard, or science (numpy, pandas, scipy, scikit-learn, statsmodels, matplotlib)."""
    guest_reason: str
    inputs: list[CardInput]
    decision: CardDecision | None


class CallCardDecision(TypedDict):
    action: CallAction
    label: str
    by: str
    at: str
    reason: str | None


class CallCard(TypedDict):
    """A call waiting inside a running program, with its arguments; `decision` once decided."""

    version: int
    request: str
    tool: str
    call: str
    """The call as one line, long values collapsed."""
    arguments: str
    """Pretty-printed JSON, long values collapsed."""
    line: int | None
    decision: CallCardDecision | None


# -- the TypeScript side, generated -----------------------------------------------------------
_ALIASES = ("Phase", "ProgramAction", "CallAction", "Action", "DecisionKind", "Outcome", "Approver", "Settable")
_UNIONS = ("FrontendMessage", "KernelMessage")
_CONSTANTS = ("TARGET", "VERSION", "APPROVAL_MIME", "CALL_MIME", "PYTHON_MARKER", "MAGIC", "EXIT")


def typescript() -> str:
    """`extension/src/protocol.ts`: the same declarations, for the extension."""
    import ast
    import inspect
    import sys
    import typing

    module = sys.modules[__name__]
    docs = _docstrings(ast.parse(inspect.getsource(module)))
    out = ["// Generated from codeact_kernel/protocol.py by `python -m codeact_kernel.protocol`: do not edit.",
           "// tests/test_protocol_types.py fails when the two differ.", ""]
    for name in _CONSTANTS:
        out += [*_jsdoc(docs.get(name), ""), f"export const {name} = {_constant(getattr(module, name))};"]
    for name in _ALIASES:
        out += ["", *_jsdoc(docs.get(name), ""), f"export type {name} = {_ts(getattr(module, name), top=True)};"]
    for name, cls in vars(module).items():
        if isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__") and name not in ("dict",):
            out += ["", *_jsdoc(inspect.cleandoc(cls.__doc__) if cls.__doc__ else None, ""),
                    f"export interface I{name} {{"]
            for field, hint in typing.get_type_hints(cls).items():
                out += [*_jsdoc(docs.get(f"{name}.{field}"), "  "), f"  {field}: {_ts(hint)};"]
            out.append("}")
    for name in _UNIONS:
        out += ["", f"export type {name} = {' | '.join('I' + t.__name__ for t in get_args(getattr(module, name)))};"]
    return "\n".join(out) + "\n"


def _docstrings(tree: Any) -> dict[str, str]:
    """The string after each module-level alias and each class field: their documentation."""
    import ast

    found: dict[str, str] = {}

    def scan(body: list, prefix: str) -> None:
        for before, after in zip(body, body[1:]):
            target = getattr(before, "target", None) or (getattr(before, "targets", None) or [None])[0]
            if (isinstance(target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                found[prefix + target.id] = " ".join(after.value.value.split())
        for node in body:
            if isinstance(node, ast.ClassDef):
                scan(node.body, node.name + ".")

    scan(tree.body, "")
    return found


def _constant(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_constant(item) for item in value) + "] as const"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def _jsdoc(doc: str | None, indent: str) -> list[str]:
    return [f"{indent}/** {' '.join(doc.split())} */"] if doc else []


def _ts(hint: Any, top: bool = False) -> str:
    """A Python type of this module as TypeScript."""
    import types
    import typing

    module = globals()
    if not top:
        for name in _ALIASES:
            if hint is module[name]:
                return name
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(f"'{value}'" for value in get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(_ts(arg) for arg in get_args(hint))
    if origin is list:
        inner = _ts(get_args(hint)[0])
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if origin is dict:
        return "{ [key: string]: unknown }"
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, dict):
        return "I" + hint.__name__
    return {str: "string", int: "number", float: "number", bool: "boolean", Any: "unknown"}[hint]


if __name__ == "__main__":
    print(typescript(), end="")
