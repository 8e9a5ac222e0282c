"""The conversation the model sees, within a budget, so a long notebook's requests stay flat.

Every prompt re-sends the conversation; kept whole, a notebook's cost would grow with the
square of its length. Within the budget (`%codeact history TOKENS`) the newest turns go
whole, older ones condensed (the program to the tools it called, its output to head and
tail), the oldest are left out with a note saying how many, except a turn the new prompt
names (a variable its program set, a file it wrote), which stays at least condensed.
Only the request changes: the transcript, replay and `%history` keep every turn.

No tokenizer ships with the kernel, so tokens are estimated by a pattern shaped like BPE
pre-tokenization (a word with its leading space, runs of up to 3 digits, short runs of
punctuation): on the benchmarks' sessions it is within 25 % of tiktoken's cl100k_base, on
the high side, where characters / 4 undercounts numeric tables by half.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .approval import scan
from .clipping import clip
from .model import Turn, find_program

OUTPUT_CHARS = 2000
"""How much of a whole turn's output (and error) the model sees: head and tail."""
CONDENSED_CHARS = 240
"""How much of a condensed turn's output (and error) the model still sees: head and tail."""

Form = Literal["whole", "condensed", "left out"]
_TOKEN = re.compile(r" ?[A-Za-z]+|\d{1,3}| ?[^\sA-Za-z\d]{1,3}|\s+(?!\S)|\s")


@dataclass(frozen=True)
class Window:
    """What the next request carries of the conversation."""

    turns: tuple[Turn, ...]
    """The turns the model sees, oldest first, condensed ones condensed."""
    forms: tuple[Form, ...]
    """For each turn of the conversation, how it is carried."""
    tokens: int
    """The estimated tokens of the turns carried."""

    @property
    def left_out(self) -> int:
        return self.forms.count("left out")


def fit(history: Sequence[Turn], prompt: str, budget: int | None) -> Window:
    """Choose, newest first, how each turn is carried so the whole stays within `budget`
    tokens (None: everything whole)."""
    if budget is None:
        return Window(tuple(history), ("whole",) * len(history), sum(_tokens(t) for t in history))
    named = _named_in(prompt)
    forms: list[Form] = []
    used = 0
    # Whole turns may fill half the budget (the newest one all of it), so older turns still
    # have room in brief: the model keeps the thread of the notebook, not only its end.
    room: dict[Form, int] = {"whole": budget // 2, "condensed": budget}
    stage: Form = "whole"
    for turn in reversed(history):
        if stage == "left out" and not named:
            forms.append(stage)  # and so is every older turn: nothing to measure
            continue
        form: Form = stage
        if stage != "left out":
            cost = _costs(turn)
            while stage != "left out" and used + cost[stage] > (budget if not forms else room[stage]):
                stage = "condensed" if stage == "whole" else "left out"  # older turns never get more
            form = stage
        if form == "left out" and named & _names(turn):
            form = "condensed"  # the prompt refers to it: kept, even past the budget
        if form != "left out":
            used += _costs(turn)[form]
        forms.append(form)
    forms.reverse()
    turns = tuple(turn if form == "whole" else condense(turn)
                  for turn, form in zip(history, forms) if form != "left out")
    return Window(turns, tuple(forms), used)


@functools.lru_cache(maxsize=4096)  # a turn never changes; every later prompt measures it again
def _costs(turn: Turn) -> dict[Form, int]:
    return {"whole": _tokens(turn), "condensed": _tokens(condense(turn))}


@functools.lru_cache(maxsize=4096)
def condense(turn: Turn) -> Turn:
    """The turn in brief: its reply's program as one line naming the tools it called, its
    output and error to head and tail."""
    summary = f"[program: {_describe(turn.program)}]" if turn.program else ""
    found = find_program(turn.reply) if turn.program else None
    reply = turn.reply[:found.start] + summary + turn.reply[found.end:] if found is not None else turn.reply
    return replace(turn, reply=reply.strip() or summary,
                   program=f"# {_describe(turn.program)}" if turn.decision == "edited" and turn.program else turn.program,
                   output=_clip(turn.output), error=_clip(turn.error) if turn.error else None)


def _clip(text: str) -> str:
    return clip(text.rstrip("\n"), CONDENSED_CHARS, head=1 / 2)


def describe(window: Window, budget: int | None) -> str:
    """For `%history`: the budget, and what the next request carries."""
    if budget is None:
        return (f"history budget: none: the next request carries all {len(window.forms)} turns whole "
                f"(about {window.tokens:,} tokens)")
    counts = {form: window.forms.count(form) for form in ("whole", "condensed", "left out")}
    return (f"history budget {budget:,} tokens: the next request carries about {window.tokens:,} "
            f"({counts['whole']} whole, {counts['condensed']} condensed, {counts['left out']} left out)")


def _describe(program: str | None) -> str:
    lines = len((program or "").strip().splitlines())
    tools = scan(program or "").tools
    return f"{lines} lines" + (f"; called {', '.join(tools)}" if tools else "")


@functools.lru_cache(maxsize=4096)
def _names(turn: Turn) -> frozenset[str]:
    """What a later prompt may call this turn's work by: names its program assigned or
    defined at top level, and the files it wrote."""
    names: set[str] = set()
    program = turn.program or ""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        for target in getattr(node, "targets", []) + [getattr(node, "target", None)]:
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name):
                    names.add(name.id)
    names.update(re.findall(r"/output/([\w.-]+)", program + "\n" + turn.output))
    return frozenset(name for name in names if len(name) >= 3)


def _named_in(prompt: str) -> set[str]:
    return {word.rstrip(".-") for word in re.findall(r"[A-Za-z_][\w.-]*", prompt)}


def _tokens(turn: Turn) -> int:
    shown = OUTPUT_CHARS  # what the request shows of a whole turn's output and error at most
    texts = [turn.prompt, turn.reply, turn.output[:shown], (turn.error or "")[:shown]]
    if turn.decision == "edited":
        texts.append(turn.program or "")
    return sum(estimate(text) for text in texts) + 16  # the messages' framing and the outcome's words


def estimate(text: str) -> int:
    """About how many tokens `text` is (see the module docstring)."""
    return len(_TOKEN.findall(text))
