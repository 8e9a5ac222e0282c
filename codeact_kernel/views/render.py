"""What each record of a cell looks like, as Markdown and as plain text: shared by the views.

Every function returns a `Shown`: the Markdown (made with markdown.py, so text from the model,
a program, a tool or a file cannot become markup) and the plain text a console or a saved
notebook's text/plain shows (hostile lines behind a gutter, control characters shown). Both
say the same thing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from .. import approval, calls
from ..clipping import clip
from ..events import Footer, Proposal, SavedFile
from ..markdown import (Markdown, blocks, code_block, code_span, emphasis, join, plain_block, plain_join, printable,
                        prose, relative_link, small, strong)

GUEST_NAMES = {"standard": "the standard guest", "science": "the scientific guest"}
ERROR_LINES = 15
"""How much of a failed program's traceback is shown before the repair: its end."""


@dataclass(frozen=True)
class Shown:
    markdown: Markdown
    plain: str

    def bundle(self) -> dict[str, str]:
        """Display data for a notebook: Markdown, and the same as text for every other view."""
        return {"text/markdown": self.markdown, "text/plain": self.plain}


def _when(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def note(message: str) -> Shown:
    """A line of the kernel's own about what is happening (asking, retrying, preparing)."""
    return Shown(emphasis(message), message)


def reply(text: str, note_text: str) -> Shown:
    """The model's prose (formatting kept, nothing fetched), and where it came from."""
    if not text.strip():
        return note(note_text)
    return Shown(blocks(prose(text), emphasis(note_text)), note_text + "\n" + plain_block(text, "  > "))


def streaming(text: str, elapsed: float) -> Shown:
    return reply(text, f"{elapsed:.1f} s")


def program(proposal: Proposal, waiting: bool = False) -> Shown:
    """The program with the tools it calls; `waiting` while a person decides. Where a line holds
    characters a reader cannot see (direction overrides, zero-width and control characters:
    code that reads otherwise than it runs), a warning says which lines."""
    head = join(strong("Program"), " · calls ", proposal.found.describe())
    guest = GUEST_NAMES.get(proposal.guest, proposal.guest)
    runs_in = f"runs in {guest}" + (f": {proposal.guest_reason}" if proposal.guest_reason else "")
    starts = [(i.name, f"{i.name} ({'shared' if i.origin == 'shared' else 'from an earlier program'}): {i.description}")
              for i in proposal.inputs]
    hidden = hidden_lines(proposal.program)
    lines = f"Lines {', '.join(map(str, hidden))} hold" if len(hidden) > 1 else f"Line {hidden[0]} holds" if hidden else ""
    warning = f"{lines} invisible or direction-changing characters: the code may read otherwise than it runs." \
        if hidden else None
    start_md = Markdown("\n".join(Markdown("- ") + join(code_span(name), text[len(name):]) for name, text in starts)) \
        if starts else None
    md = blocks(head, emphasis(runs_in), Markdown(join("starts with:")) if starts else None, start_md,
                code_block(proposal.program, "python"), strong(warning) if warning else None,
                emphasis("awaiting approval") if waiting else None)
    plain = (f"Program · calls {printable(proposal.found.describe())}\n{runs_in}\n"
             + "".join(f"starts with {printable(text)}\n" for _name, text in starts) + plain_block(proposal.program)
             + (f"\n{warning}" if warning else "") + ("\nawaiting approval" if waiting else ""))
    return Shown(md, plain)


def hidden_lines(text: str) -> list[int]:
    """The lines (from 1) holding a format or control character other than a tab."""
    return [number for number, line in enumerate(text.split("\n"), 1)
            if any(unicodedata.category(c) in ("Cf", "Cc") and c != "\t" for c in line)]


def decision(decision: approval.Decision) -> Shown:
    """One line that survives in a saved notebook without widget state: what was decided,
    when, the SHA-256 of what runs, the reason."""
    if decision.kind == "rejected-by-policy":
        return Shown(join(strong("Not run"), ": the approval policy is ", code_span("reject"), " (",
                          code_span("%approval ask"), " to decide yourself)."),
                     "Not run: the approval policy is reject (%approval ask to decide yourself).")
    parts: list[object] = [strong(decision.label()), f" at {_when(decision.at)}"]
    plain = [f"{decision.label()} at {_when(decision.at)}"]
    if decision.kind in ("approved", "edited") and decision.allow:
        parts += [" · allowed for this session: ", ", ".join(decision.allow)]
        plain.append("allowed for this session: " + ", ".join(decision.allow))
    if decision.runs:
        parts += [" · sha256 ", code_span(decision.sha256[:16])]
        plain.append(f"sha256 {decision.sha256[:16]}")
    if decision.reason:
        parts += [" · reason: ", decision.reason]
        plain.append(f"reason: {decision.reason}")
    return Shown(join(*parts), plain_join(plain))


def edited(decision: approval.Decision) -> Shown:
    """The person's edit: what runs."""
    return Shown(blocks(join(strong("Edited program"), " (what runs)"), code_block(decision.program, "python")),
                 "Edited program (what runs)\n" + plain_block(decision.program))


def decided(proposal: Proposal, made: approval.Decision) -> Shown:
    """The program and its decision together (a card's Markdown copy, once decided)."""
    shown = [program(proposal), decision(made)] + ([edited(made)] if made.kind == "edited" else [])
    return Shown(blocks(*(s.markdown for s in shown)), "\n".join(s.plain for s in shown))


def call_waiting(request: calls.Request) -> Shown:
    """A call the running program waits at, with its arguments."""
    head = join(strong("The program wants to call"), " ", code_span(request.describe()), f" at {request.where()}")
    return Shown(blocks(head, code_block(request.pretty(), "json"), emphasis("awaiting your decision")),
                 f"The program wants to call {printable(request.describe())} at {request.where()}\n"
                 + plain_block(request.pretty()) + "\nawaiting your decision")


def call_decided(asked: calls.Asked) -> Shown:
    """One line per call that asked: what was decided, the call, where, why."""
    d, r = asked.decision, asked.request
    call = clip(r.describe(), 160)
    parts: list[object] = [strong(d.label()), f" at {_when(d.at)} · ", code_span(call), f", {r.where()}"]
    plain = [f"{d.label()} at {_when(d.at)}", f"{call}, {r.where()}"]
    if d.reason:
        parts += [" · reason: ", d.reason]
        plain.append(f"reason: {d.reason}")
    return Shown(join(*parts), plain_join(plain))


def picture(server: str, tool: str, mime_type: str, size: int, shown_inline: bool) -> Shown:
    """What an image an MCP tool returned is, and where it came from."""
    tail = "" if shown_inline else ": not shown inline"
    return Shown(emphasis(join("image from ", code_span(tool), f" (MCP server {server}), {mime_type}, {size:,} bytes{tail}")),
                 f"image from {printable(tool)} (MCP server {printable(server)}), {printable(mime_type)}, "
                 f"{size:,} bytes{tail}")


def guest_progress(message: str, elapsed: float, expected: float | None, done: bool) -> Shown:
    """Making the scientific guest the first time: how long so far, and about how long in all."""
    said = f"{message}: {elapsed:.0f} s" + (f" of about {expected:.0f} s" if expected else "") + (" (done)" if done else "…")
    return note(said)


def carried(values: tuple[tuple[str, str], ...]) -> Shown:
    """What the next program starts with, from this one."""
    items = [join(code_span(name), f": {what}") for name, what in values]
    return Shown(join(emphasis("for the next program: "), *_semicolons(items)),
                 "for the next program: " + "; ".join(f"{printable(name)}: {printable(what)}" for name, what in values))


def _semicolons(parts: list[Markdown]) -> list[object]:
    out: list[object] = []
    for index, part in enumerate(parts):
        out += ["; "] * (index > 0) + [part]
    return out


def sandbox_ready(name: str, reason: str) -> Shown:
    return Shown(Markdown(f"_{join('sandbox: ', strong(name), ' · ', reason)}_"), f"sandbox: {name} · {reason}")


def failed(error: str, attempt: int, of: int) -> Shown:
    """A program that failed, with the end of its traceback, before the model is asked for a fix."""
    tail = clip(error.rstrip(), ERROR_LINES, head=0, unit="lines")
    then = f"asking the model for a fix (repair {attempt} of {of})."
    return Shown(blocks(strong("The program failed"), code_block(tail), emphasis(then)),
                 "The program failed:\n" + plain_block(tail) + "\n" + then)


def files(saved: tuple[SavedFile, ...]) -> Shown:
    """The files a program wrote to /output, each linked where it was saved."""
    links = [join(relative_link(code_span(f.path.as_posix()), f.path.as_posix()), f" ({len(f.data):,} bytes)")
             for f in saved]
    return Shown(join(strong("Files from /output"), ", saved beside the notebook: ", *_commas(links)),
                 "Files from /output, saved beside the notebook: "
                 + ", ".join(f"{printable(f.path.as_posix())} ({len(f.data):,} bytes)" for f in saved))


def _commas(parts: list[Markdown]) -> list[object]:
    out: list[object] = []
    for index, part in enumerate(parts):
        out += [", "] * (index > 0) + [part]
    return out


def footer(f: Footer) -> Shown:
    """Where the cell's time and tokens went."""
    if f.replayed_from is not None:
        parts = [f"replayed from {f.replayed_from}"]
    else:
        parts = [f"model {f.model}", f"tokens {f.tokens_in:,} in / {f.tokens_out:,} out", f"model {f.seconds_model:.2f} s"]
    if f.tool_calls or f.seconds_sandbox:
        parts += [f"{f.isolation or 'sandbox'} {f.seconds_sandbox * 1000:.0f} ms", f"{f.tool_calls} tool call{'s' if f.tool_calls != 1 else ''}"]
    if f.programs > 1:
        parts.append(f"{f.programs} programs run (repairs)")
    md_parts: list[object] = [join(*_with_dots(parts))]
    if f.result_name:
        md_parts += [" · result → ", code_span(f.result_name)]
        parts.append(f"result → {f.result_name}")
    return Shown(small(*md_parts), plain_join(parts))


def _with_dots(parts: list[str]) -> list[str]:
    return [part if index == 0 else " · " + part for index, part in enumerate(parts)]
