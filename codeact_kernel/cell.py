"""One prompt cell, from prompt to output: the turn loop.

cell -> messages -> model (streamed) -> program -> approval -> sandbox (streamed) -> output,
repaired up to `max_repairs` times when the program fails, and each attempt remembered for
the next cell and appended to the transcript. While a program runs, each call to a tool
marked approval="each-call" comes back here to be decided (calls.py). The kernel (kernel.py)
routes cells here and owns what outlives a cell; this module owns what happens inside one.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import html
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from IPython.display import HTML, Image, display
from IPython.display import Markdown as _RichMarkdown

from . import __version__, approval, calls, comm, history
from .errors import ModelError
from .mcp_tools import show_pictures  # MCP
from .model import Reply, Turn, build_messages, codeact_instructions, complete, extract_program
from .sandbox.base import RunResult
from .session import Session
from .transcript import Transcript, conversation_hash

OUTPUT_DIR = "codeact_output"
_IMAGE_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}
_STREAM_REFRESH = 0.1  # seconds between updates of the streamed reply

Approver = Literal["extension", "widgets", "stdin"]
"""Who can decide in this cell, richest first; None when nobody can (a headless run)."""


class Markdown(_RichMarkdown):
    """Markdown whose text/plain is its source, so a text-only frontend (jupyter console, a
    saved notebook's plain view) shows what the rich one does, not `<Markdown object>`."""

    def __repr__(self) -> str:
        return str(self.data)


class Failure(Exception):
    """A prompt cell ends with an error output; carries what the reply should say."""

    def __init__(self, ename: str, evalue: str, traceback: list[str] | None = None) -> None:
        super().__init__(evalue)
        self.ename, self.evalue = ename, evalue
        self.traceback = traceback or [f"{ename}: {evalue}"]


@dataclass
class CellIO:
    """What a cell needs from the kernel: its stream output (to the cell's parent message),
    a line from stdin (awaited, so it can be cancelled), and the user's namespace."""

    stream: Callable[[str, str], None]
    ask: Callable[[str], Awaitable[str]]
    namespace: dict[str, Any]


class PromptCell:
    """Answers one prompt. `cancel()` (from the kernel's SIGINT handler) stops a running program."""

    def __init__(self, session: Session, extension: comm.Extension, io: CellIO, *,
                 approver: Approver | None, cell_id: str | None) -> None:
        self.session = session
        self.extension = extension
        self.io = io
        self.approver = approver
        self.cell_id = cell_id
        self._cancel: Callable[[], None] | None = None
        self._decided: list[approval.ApprovalWidget] = []

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel()

    def close(self) -> None:
        """Closing a decided widget's controls sends a dozen comm messages: done when the cell
        ends, so the program starts at once."""
        while self._decided:
            self._decided.pop().close()

    async def answer(self, prompt: str) -> None:
        config = self.session.config
        if config.approval == "ask" and self.approver is None:
            # Known before the model is asked: no one could approve its program.
            raise Failure("ApprovalRequired", approval.unanswerable("ask"))
        totals = {"in": 0, "out": 0, "model": 0.0, "sandbox": 0.0, "calls": 0, "attempts": 0}
        request = prompt
        bound: str | None = None
        failure: Failure | None = None
        for attempt in range(config.max_repairs + 1):
            conversation = conversation_hash(self.session.history)
            self.extension.set_phase("asking-model" if attempt == 0 else "repairing")
            reply = await self._ask_model(request, conversation, text_only=self.approver == "stdin")
            totals["in"] += reply.tokens_in
            totals["out"] += reply.tokens_out
            totals["model"] += reply.elapsed
            try:
                decision = await self._decide(reply.program) if reply.program else None
            except Failure as unapproved:  # headless under "ask": remembered, so a replay meets it too
                self._remember(request, conversation, reply,
                               approval.Decision("rejected", reply.program or "", unapproved.evalue), None)
                raise
            result, asked = await self._run(decision) if decision is not None and decision.runs else (None, [])
            self._remember(request, conversation, reply, decision, result, asked)
            if result is None:
                break
            totals["sandbox"] += result.duration - result.held
            totals["calls"] += len(result.tool_calls)
            totals["attempts"] += 1
            if result.has_value:
                self.io.namespace[config.result_name] = result.value
                bound = config.result_name
            if result.error is None:
                failure = None
                break
            failure = Failure(result.error.type, result.error.message, str(result.error).splitlines())
            if any(not a.decision.allows for a in asked):
                break  # a person said no to a call: the model hears why next turn, rather than retrying now
            if attempt < config.max_repairs:
                display(Markdown(f"**The program failed**\n\n```\n{_tail(str(result.error))}\n```\n\n"
                                 f"_asking the model for a fix (repair {attempt + 1} of {config.max_repairs})._"))
                request = ("The program failed with the error above. Fix it: answer with the whole "
                           "corrected program.")
        self._footer(totals, bound)
        if failure is not None:
            raise failure

    def _remember(self, request: str, conversation: str, reply: Reply, decision: approval.Decision | None,
                  result: RunResult | None, asked: Sequence[calls.Asked] = ()) -> None:
        """Add the turn to the conversation, append it to the transcript, tell the panel."""
        session = self.session
        error = str(result.error) if result is not None and result.error else None
        output = (result.stdout + result.stderr) if result is not None else ""
        if reply.program is None:
            kind, reason = "no-code", None
        elif decision is None:
            kind, reason = "rejected", "the approval policy is reject"
        else:
            kind = "auto" if decision.kind in ("recorded", "recorded-unasked", "allowed") else decision.kind  # ran, unasked
            reason = decision.reason
        program = decision.program if decision is not None and decision.runs else reply.program
        session.history.append(Turn(request, reply.text, program, output, error, kind, reason, calls.denials(asked)))
        choice = session.current_sandbox()
        decided = ("rejected-by-policy" if reply.program and decision is None else
                   decision.kind if decision is not None else "no-code")
        ran_sha256 = decision.sha256 if decision is not None and decision.runs else None
        record = {
            "prompt": request, "conversation": conversation,
            "model": session.config.model, "base_url": session.config.base_url,
            "request": {"stream": True, "temperature": session.model_config().temperature},
            "reply": reply.text, "program": reply.program,
            "decision": decided, "approver": decision.via if decision is not None else None,
            "reason": reason, "edited": decision is not None and decision.kind == "edited",
            "allow": list(decision.allow) if decision is not None else [],
            "ran": decision.program if decision is not None and decision.runs and decision.kind == "edited" else None,
            "ran_sha256": ran_sha256,
            "output": {"stdout": _clip(result.stdout) if result else "", "stderr": _clip(result.stderr) if result else "",
                       "error": error, "files": sorted(result.output_files) if result else [],
                       "tool_calls": len(result.tool_calls) if result else 0},
            "calls": [a.record() for a in asked],
            "mcp_calls": session.mcp.take_calls(),  # MCP: each call's server and tool (mcp_tools.Manager)
            "tokens": {"in": reply.tokens_in, "out": reply.tokens_out},
            "seconds": {"model": round(reply.elapsed, 4),
                        "sandbox": round(result.duration - result.held, 4) if result else 0.0,
                        "waiting_for_you": round(result.held, 4) if result else 0.0},
            "sandbox": choice.sandbox.name if choice is not None and result is not None else None,
            "kernel": __version__,
        }
        session.runs.append(comm.RunInfo(
            prompt=request, cell_id=self.cell_id, decision=decided,
            by=(decision.via or "policy") if decision is not None else "policy", sha256=ran_sha256,
            tool_calls=record["output"]["tool_calls"], tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
            seconds_model=record["seconds"]["model"], seconds_sandbox=record["seconds"]["sandbox"],
            error=error.strip().splitlines()[-1] if error else None,
            calls=[comm.CallInfo(tool=a.request.tool, call=a.request.describe(), line=a.request.line,
                                 decision=a.decision.action, label=a.decision.label(), reason=a.decision.reason)
                   for a in asked]))
        self.extension.publish()
        try:
            Transcript(session.transcript_path()).append(record)
        except OSError as exc:  # the turn happened; losing its record must not fail the cell
            self.io.stream("stderr", f"[transcript not written: {exc}; choose another place with %transcript PATH]\n")

    async def _ask_model(self, request: str, conversation: str, text_only: bool = False) -> Reply:
        """The model's reply, shown as it streams: by updating a display, or, for a text-only
        frontend with stdin (jupyter console, which shows no display updates), as stderr text."""
        session = self.session
        await self._start_local_model()  # or stop one the model setting no longer names
        replay = session.config.replay_path()
        if replay is not None:
            record = session.replay(replay).reply(conversation, request)
            reply = Reply(record["reply"], extract_program(record["reply"]), 0, 0, 0.0, session.config.model, 0)
            display(_reply_markdown(reply, f"_replayed from {replay.name}_"))
            return reply
        window = history.fit(session.history, request, session.config.history_tokens)
        messages = build_messages(codeact_instructions(session.config.grants()), session.registry.describe(),
                                  window.turns, request, max_output_chars=history.OUTPUT_CHARS,
                                  left_out=window.left_out)
        start = time.monotonic()
        handle = display(Markdown(f"_asking {session.config.model}…_"), display_id=True)
        text: list[str] = []
        last = [0.0]

        def on_token(delta: str) -> None:
            text.append(delta)
            if text_only:
                self.io.stream("stderr", delta)
                return
            now = time.monotonic()
            if now - last[0] >= _STREAM_REFRESH:
                last[0] = now
                handle.update(Markdown("".join(text) + f"\n\n_{now - start:.1f} s_"))

        def on_retry(attempt: int, delay: float, reason: str) -> None:
            handle.update(Markdown(f"_{reason}: retrying in {delay:.1f} s (retry {attempt})…_"))

        try:
            reply = await complete(session.model_config(), messages, on_token=on_token, on_retry=on_retry)
        except ModelError:
            handle.update(Markdown(f"_no answer from {session.config.model}_"))
            raise
        if text_only:
            self.io.stream("stderr", "\n")
        handle.update(_reply_markdown(reply, f"_{reply.model} · {reply.elapsed:.1f} s_"))
        return reply

    async def _start_local_model(self) -> None:
        """For `local:PATH`: load the model in its server process, showing progress; once per model."""
        server = self.session.local_server()
        if server is None or server.running:
            return
        loop = asyncio.get_running_loop()
        handle = display(Markdown(f"_starting a local model: {server.path.name}…_"), display_id=True)
        server.on_progress = lambda message: loop.call_soon_threadsafe(handle.update, Markdown(f"_{message}_"))
        future = loop.run_in_executor(None, server.start)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            server.stop()
            await asyncio.wait([future], timeout=15)
            raise

    # -- approval --------------------------------------------------------------------------
    async def _decide(self, program: str) -> approval.Decision | None:
        session = self.session
        found = approval.scan(program)
        sha256 = approval.Decision("approved", program).sha256
        recorded = session.recorded_approvals().get(sha256) if session.config.approval == "recorded" else None
        always_ask = session.registry.always_ask()
        allowed = tuple(sorted(session.allowed_tools - always_ask))
        where = approval.route(session.config.approval, widgets=self.approver in ("extension", "widgets"),
                               stdin=self.approver is not None, found=found, always_ask=always_ask,
                               recorded=recorded, allowed=allowed)
        offer = approval.allowable(found, always_ask)
        if where == "widget" and self.approver == "extension":
            # The card shows the program itself (once), and becomes the record after.
            decision = await self._ask_card(program, found, offer, always_ask)
            session.allowed_tools.update(decision.allow)
            return decision
        display(Markdown(f"**Program** · calls {found.describe()}\n\n```python\n{program.rstrip()}\n```"))
        if where == "show-only":
            display(Markdown("**Not run**: the approval policy is `reject` (`%approval ask` to decide yourself)."))
            return None
        if where == "fail-headless":
            raise Failure("ApprovalRequired", approval.unanswerable(session.config.approval, found, always_ask, sha256))
        if where == "run" and recorded:
            decision = approval.Decision("recorded" if recorded == "person" else "recorded-unasked", program)
        elif where == "run" and session.config.approval != "auto":
            decision = approval.Decision("allowed", program, allow=allowed)
        elif where == "run":
            decision = approval.Decision("auto", program)
        elif where == "widget":
            decision = await self._ask_widget(program, found, offer)
        else:
            decision = await self._ask_stdin(program, offer)
        session.allowed_tools.update(decision.allow)  # for "allowed", what it already holds
        if where != "widget":
            display(Markdown(decision.record()))
        if decision.kind == "edited":
            display(Markdown(f"**Edited program** (what runs)\n\n```python\n{decision.program.rstrip()}\n```"))
        return decision

    async def _ask_card(self, program: str, found: approval.Scan, offer: tuple[str, ...],
                        always_ask: set[str]) -> approval.Decision:
        """The extension's card: display data in this cell, decided over the extension's comm."""
        card = comm.ApprovalCard(
            version=comm.VERSION, request=comm.new_id(), program=program,
            tools=[comm.CardTool(name=name, always=name in always_ask) for name in found.tools],
            dynamic=found.dynamic, offer=list(offer), decision=None)
        waiting = f"**Program** · calls {found.describe()}\n\n```python\n{program.rstrip()}\n```\n\n_awaiting approval_"
        handle = display(_bundle(comm.APPROVAL_MIME, card, waiting), raw=True, display_id=True)
        choice = await self.extension.ask(card["request"])
        decision = dataclasses.replace(
            approval.decided(choice["action"], program, choice["program"] or program, choice["reason"], offer),
            via="extension")
        card["decision"] = comm.CardDecision(
            kind=decision.kind, label=decision.label(), by="you", sha256=decision.sha256 if decision.runs else None,
            at=decision.at.isoformat(), program=decision.program, reason=decision.reason, allow=list(decision.allow))
        record = f"**Program** · calls {found.describe()}\n\n```python\n{program.rstrip()}\n```\n\n{decision.record()}"
        if decision.kind == "edited":
            record += f"\n\n**Edited program** (what runs)\n\n```python\n{decision.program.rstrip()}\n```"
        handle.update(_bundle(comm.APPROVAL_MIME, card, record), raw=True)
        return decision

    async def _ask_widget(self, program: str, found: approval.Scan, offer: tuple[str, ...]) -> approval.Decision:
        loop = asyncio.get_running_loop()
        widget = approval.ApprovalWidget(program, found, loop, offer)
        handle = display(widget.view, display_id=True)
        self.extension.set_phase("awaiting-approval")
        try:
            decision = await widget.decide()
        except BaseException:
            widget.close()
            raise
        handle.update(Markdown(decision.record()))
        self._decided.append(widget)
        return dataclasses.replace(decision, via="widgets")

    async def _ask_stdin(self, program: str, offer: tuple[str, ...]) -> approval.Decision:
        """For frontends with stdin but no widgets (jupyter console): y, a (yes, and allow its
        tools for the session, when offered), or anything else to reject.

        An answer other than y/n/a is taken as the reason for rejecting, for the model.
        """
        found = approval.scan(program)
        choices = f"[y/N/a: yes, and allow {', '.join(offer)} for this session]" if offer else "[y/N]"
        self.extension.set_phase("awaiting-approval")
        answer = (await self.io.ask(f"Run this program (it calls {found.describe()})? {choices} ")).strip()
        if answer.lower() in ("y", "yes"):
            decision = approval.Decision("approved", program)
        elif offer and answer.lower() == "a":
            decision = approval.Decision("approved", program, allow=offer)
        else:
            decision = approval.Decision("rejected", program, None if answer.lower() in ("", "n", "no") else answer)
        return dataclasses.replace(decision, via="stdin")

    # -- the sandbox -------------------------------------------------------------------------
    async def _run(self, decision: approval.Decision) -> tuple[RunResult, list[calls.Asked]]:
        """The program's run, and the calls it asked about (answered here while it waits)."""
        session = self.session
        loop = asyncio.get_running_loop()
        self.extension.set_phase("running")
        if not session.announced:
            # The first time, the backend is probed and may build its guest (about 30 s once
            # per installation): off the event loop, so the cell stays interruptible.
            handle = display(Markdown("_preparing the sandbox…_"), display_id=True)
            choice = await loop.run_in_executor(None, session.sandbox)
            handle.update(Markdown(f"_sandbox: **{choice.sandbox.name}** · {choice.reason}_"))
            session.announced = True
            self.extension.publish()  # the backend is known now
        choice = session.sandbox()

        def on_output(stream: str, text: str) -> None:
            loop.call_soon_threadsafe(self.io.stream, stream, text)

        config = session.config
        recorded = session.recorded_calls(decision.sha256) if config.approval == "recorded" else {}
        gate = calls.Gate(loop, recorded)
        # Both guards sit in the tools themselves, where each call arrives on the host, so they
        # hold on every backend and however the program reaches call_tool.
        tools = gate.wrap(session.registry.callables(loop), session.registry.each_call())
        tools = approval.guard(tools, decision, session.registry.always_ask())
        run = functools.partial(choice.sandbox.run, decision.program, tools,
                                limits=config.limits(), grants=config.grants(), on_output=on_output)
        future = loop.run_in_executor(None, run)
        self._cancel = choice.sandbox.cancel
        try:
            while not future.done():
                question = asyncio.ensure_future(gate.questions())
                try:
                    await asyncio.wait({future, question}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    question.cancel()
                if question.done() and not question.cancelled():
                    call, answer = question.result()
                    await asyncio.sleep(0)  # output the program printed before the call comes first
                    answer.set_result(await self._decide_call(call))
                    self.extension.set_phase("running")
            result = future.result()
        except asyncio.CancelledError:
            gate.close(calls.Decision("deny", "interrupt"))
            choice.sandbox.cancel()
            await asyncio.wait([future], timeout=5)  # the sandbox stops within milliseconds
            raise
        finally:
            self._cancel = None
        await asyncio.sleep(0)  # let queued output reach IOPub before what follows
        for asked in gate.asked:  # decided without asking anyone now: said, so the notebook shows it
            if asked.decision.by == "recorded":
                display(Markdown(asked.markdown()))
        self._show_files(result)
        show_pictures(session.mcp.take_pictures())  # MCP: the images MCP tools returned in this run
        for notice in result.notices:
            self.io.stream("stderr", notice + "\n")
        return result, gate.asked

    async def _decide_call(self, request: calls.Request) -> calls.Decision:
        """A call waiting in the running program, decided by whoever can here; then its record."""
        if self.approver == "extension":
            return await self._call_card(request)
        if self.approver == "widgets":
            widget = calls.CallWidget(request, asyncio.get_running_loop())
            handle = display(widget.view, display_id=True)
            self.extension.set_phase("awaiting-call")
            try:
                decision = await widget.decide()
            finally:
                widget.close()
            handle.update(Markdown(calls.Asked(request, decision).markdown()))
            return decision
        if self.approver == "stdin":
            self.extension.set_phase("awaiting-call")
            action, reason = calls.from_answer(await self.io.ask(calls.ask_line(request)))
            decision = calls.Decision(action, "person", reason, via="stdin")
        else:
            decision = calls.Decision("deny", "nobody")
        display(Markdown(calls.Asked(request, decision).markdown()))
        return decision

    async def _call_card(self, request: calls.Request) -> calls.Decision:
        """The extension's card for a call: display data in this cell, decided over its comm."""
        card = comm.CallCard(version=comm.VERSION, request=request.id, tool=request.tool, call=request.describe(),
                             arguments=request.pretty(), line=request.line, decision=None)
        waiting = (f"**The program wants to call** `{request.describe()}` at {request.where()}\n\n"
                   f"```json\n{request.pretty()}\n```\n\n_awaiting your decision_")
        handle = display(_bundle(comm.CALL_MIME, card, waiting), raw=True, display_id=True)
        choice = await self.extension.ask(request.id, "awaiting-call")
        action: calls.Action = choice["action"] if choice["action"] in ("allow", "allow-run") else "deny"
        decision = calls.Decision(action, "person", choice["reason"].strip() or None if action == "deny" else None,
                                  via="extension")
        card["decision"] = comm.CallCardDecision(action=action, label=decision.label(), by="you",
                                                 at=decision.at.isoformat(), reason=decision.reason)
        handle.update(_bundle(comm.CALL_MIME, card, calls.Asked(request, decision).markdown()), raw=True)
        return decision

    def _show_files(self, result: RunResult) -> None:
        if not result.output_files:
            return
        saved = []
        for name, data in result.output_files.items():
            target = Path.cwd() / OUTPUT_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            saved.append(f"[`{OUTPUT_DIR}/{name}`]({OUTPUT_DIR}/{name}) ({len(data):,} bytes)")
            suffix = target.suffix.lower()
            if suffix in _IMAGE_TYPES:
                display(Image(data=data, format=_IMAGE_TYPES[suffix]))
            elif suffix == ".svg":
                # As an <img>, never inline markup: an SVG a program wrote may carry script,
                # which must not run in the user's browser.
                encoded = base64.b64encode(data).decode()
                display(HTML(f'<img alt="{html.escape(name)}" src="data:image/svg+xml;base64,{encoded}"/>'))
        display(Markdown("**Files from /output**, saved beside the notebook: " + ", ".join(saved)))

    def _footer(self, totals: dict[str, Any], bound: str | None) -> None:
        config = self.session.config
        replay = config.replay_path()
        if replay is not None:
            parts = [f"replayed from {replay.name}"]
        else:
            parts = [f"model {config.model}", f"tokens {totals['in']:,} in / {totals['out']:,} out",
                     f"model {totals['model']:.2f} s"]
        if totals["calls"] or totals["sandbox"]:
            calls = totals["calls"]
            parts += [f"sandbox {totals['sandbox'] * 1000:.0f} ms", f"{calls} tool call{'s' if calls != 1 else ''}"]
        if totals["attempts"] > 1:
            parts.append(f"{totals['attempts']} programs run (repairs)")
        if bound:
            parts.append(f"result → `{bound}`")
        display(Markdown("<sub>" + " · ".join(parts) + "</sub>"))


def _bundle(mime: str, card: Any, markdown: str) -> dict[str, Any]:
    """A card for the extension, and the same content as Markdown for every other view."""
    return {mime: card, "text/markdown": markdown, "text/plain": markdown}


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit:,} more characters]"


def _tail(text: str, lines: int = 15) -> str:
    """The end of a traceback, where the error is: what a person needs before the repair."""
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([f"[... {len(kept) - lines} earlier lines]", *kept[-lines:]])


def _reply_markdown(reply: Reply, note: str) -> Markdown:
    """What the model said besides its program (shown on its own, with the tools it calls), and a note."""
    prose = _without_program(reply.text, reply.program)
    return Markdown(f"{prose}\n\n{note}" if prose else note)


def _without_program(text: str, program: str | None) -> str:
    """The reply's prose: everything but the fenced block the program came from."""
    if not program:
        return text.strip()
    start = text.find("```")
    end = text.find("```", start + 3)
    if start < 0 or end < 0:
        return ""
    return (text[:start] + text[end + 3:]).strip()
