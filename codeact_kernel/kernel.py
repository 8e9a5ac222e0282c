"""The CodeAct kernel: the one place where prompt, model, approval and sandbox meet.

A cell is a prompt unless it starts with `%%python` (ordinary IPython code in the kernel's
namespace) or is a line magic. For a prompt the data flows one way:
cell -> messages -> model (streamed) -> program -> approval -> sandbox (streamed) -> output,
and the turn is remembered for the next cell.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import html
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.display import HTML, Image, display
from IPython.display import Markdown as _RichMarkdown
from ipykernel.ipkernel import IPythonKernel
from traitlets import CaselessStrEnum, Float, Unicode

from . import __version__, approval, history
from .config import APPROVAL_POLICIES, PERMISSIVENESS, SANDBOX_PROCESSES, SANDBOXES, Config, ceiling
from .errors import CodeActError, ConfigError, ModelError
from .magics import CodeActMagics
from .model import Reply, Turn, build_messages, codeact_instructions, complete, extract_program
from .sandbox.base import RunResult
from .session import Session
from .tools import tool
from .transcript import Transcript, conversation_hash

PYTHON_MARKER = "%%python"
_MAGIC = re.compile(r"%{1,2}[A-Za-z_]")
OUTPUT_DIR = "codeact_output"
_IMAGE_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}
_EXIT = ("exit", "quit", "exit()", "quit()")
_STREAM_REFRESH = 0.1  # seconds between updates of the streamed reply


class Markdown(_RichMarkdown):
    """Markdown whose text/plain is its source, so a text-only frontend (jupyter console, a
    saved notebook's plain view) shows what the rich one does, not `<Markdown object>`."""

    def __repr__(self) -> str:
        return str(self.data)


class _Failure(Exception):
    """A prompt cell ends with an error output; carries what the reply should say."""

    def __init__(self, ename: str, evalue: str, traceback: list[str] | None = None) -> None:
        super().__init__(evalue)
        self.ename, self.evalue = ename, evalue
        self.traceback = traceback or [f"{ename}: {evalue}"]


class CodeActKernel(IPythonKernel):
    """IPython, plus prompt cells answered by a model's program that runs in a sandbox."""

    implementation = "codeact"
    implementation_version = __version__
    banner = (f"CodeAct kernel {__version__}: each cell is a prompt; start a cell with "
              f"{PYTHON_MARKER} for Python, %codeact for help.")
    language_info = {
        "name": "codeact",
        "version": __version__,
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "pygments_lexer": "markdown",
        "codemirror_mode": "markdown",
        "nbconvert_exporter": "markdown",
    }
    help_links = [{"text": "CodeAct kernel", "url": "https://pypi.org/project/codeact-kernel/"}]

    model = Unicode(None, allow_none=True, help="Model name (CODEACT_MODEL).").tag(config=True)
    base_url = Unicode(None, allow_none=True, help="OpenAI-compatible server (OPENAI_BASE_URL).").tag(config=True)
    approval = CaselessStrEnum(APPROVAL_POLICIES, None, allow_none=True,
                               help="ask, auto or reject (CODEACT_APPROVAL).").tag(config=True)
    sandbox = CaselessStrEnum(SANDBOXES, None, allow_none=True,
                              help="auto, hyperlight or wasmtime (CODEACT_SANDBOX).").tag(config=True)
    sandbox_process = CaselessStrEnum(SANDBOX_PROCESSES, None, allow_none=True,
                                      help="inline or worker: where wasmtime runs programs "
                                           "(CODEACT_SANDBOX_PROCESS).").tag(config=True)
    timeout = Float(None, allow_none=True, help="Seconds a program may run (CODEACT_TIMEOUT).").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._config_error: ConfigError | None = None
        try:
            config = self._initial_config()
        except ConfigError as exc:  # reported by every prompt cell; the kernel still starts
            self._config_error = exc
            config = Config()
        self.codeact = Session(config)
        assert self.shell is not None
        self.shell.register_magics(CodeActMagics(self.shell, self.codeact))
        self.shell.input_transformers_cleanup.insert(0, _strip_python_marker)
        self.shell.user_ns["tool"] = tool
        self._cancel: Callable[[], None] | None = None
        self._decided: list[approval.ApprovalWidget] = []
        # Importing ipywidgets registers its comm targets, so a widget frontend's control
        # comm (opened when it connects) is seen: that is how we know Approve can be clicked.
        import ipywidgets  # noqa: F401

    def _initial_config(self) -> Config:
        traits = {"model": self.model, "base_url": self.base_url,
                  "sandbox": self.sandbox, "sandbox_process": self.sandbox_process, "timeout": self.timeout}
        config = Config(**{k: v for k, v in traits.items() if v is not None})
        limit = ceiling()
        if limit is not None:  # the default policy yields to it; a chosen one is refused above it
            policy, source = limit
            config.approval_max, config.approval_max_source = policy, source
            if PERMISSIVENESS.index(config.approval) > PERMISSIVENESS.index(policy):
                config.approval = policy
        if self.approval is not None:
            config.approval = self.approval
        return config.with_env()  # validated, the ceiling included

    # -- routing cells -------------------------------------------------------------
    @staticmethod
    def _python_body(code: str) -> str | None:
        stripped = code.lstrip()
        if stripped.startswith(PYTHON_MARKER):
            first, _, rest = stripped.partition("\n")
            if first.strip() == PYTHON_MARKER:
                return rest
        return None

    @staticmethod
    def _is_magic(code: str) -> bool:
        """Line magics only (`%model x`), or a cell magic (`%%timeit`); "%50 of them..." is a prompt."""
        lines = [line.strip() for line in code.strip().splitlines() if line.strip()]
        if lines and _MAGIC.match(lines[0]) and lines[0].startswith("%%"):
            return True
        return bool(lines) and all(_MAGIC.match(line) for line in lines)

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         *, cell_meta: dict | None = None, cell_id: str | None = None) -> dict:
        if (self._python_body(code) is not None or not code.strip() or self._is_magic(code)
                or code.strip() in _EXIT):  # exit/quit ask the console to close, as in IPython
            # IPython sees the whole cell, so history keeps the %%python marker;
            # _strip_python_marker (an input transformer) removes it before it runs.
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)
        reply = await self._prompt_cell(code.strip(), store_history and not silent, allow_stdin)
        if reply["status"] == "ok":
            reply["user_expressions"] = self.shell.user_expressions(user_expressions or {})  # type: ignore[union-attr]
        return reply

    async def _prompt_cell(self, prompt: str, store_history: bool, allow_stdin: bool) -> dict:
        shell = self.shell
        assert shell is not None
        count = shell.execution_count
        if store_history:  # as IPython does: only a stored cell advances the count
            shell.history_manager.store_inputs(count, prompt)  # type: ignore[union-attr]
            shell.execution_count += 1
        else:
            count -= 1
        task = asyncio.ensure_future(self._answer(prompt, allow_stdin))
        restore = self._interrupt_cancels(task)
        try:
            await task
            status: dict[str, Any] = {"status": "ok", "user_expressions": {}}
        except asyncio.CancelledError:
            status = self._error("KeyboardInterrupt", "interrupted: the kernel and its variables are intact")
        except _Failure as failure:
            status = self._error(failure.ename, failure.evalue, failure.traceback)
        except (CodeActError, ConfigError) as exc:
            status = self._error(type(exc).__name__, str(exc))
        finally:
            restore()
            while self._decided:
                self._decided.pop().close()
        return {**status, "execution_count": count, "payload": []}

    def _interrupt_cancels(self, task: asyncio.Future) -> Callable[[], None]:
        """Make SIGINT cancel this cell (and its sandbox run) within milliseconds."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()

        def on_sigint(_signum: int, _frame: object) -> None:
            if self._cancel is not None:
                self._cancel()
            loop.call_soon_threadsafe(task.cancel)

        previous = signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _error(self, ename: str, evalue: str, traceback: list[str] | None = None) -> dict:
        content = {"ename": ename, "evalue": evalue, "traceback": traceback or [f"{ename}: {evalue}"]}
        self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", **content}

    # -- one prompt ------------------------------------------------------------------
    async def _answer(self, prompt: str, allow_stdin: bool) -> None:
        if self._config_error is not None:
            raise self._config_error
        config = self.codeact.config
        widgets = _frontend_renders_widgets()
        if config.approval == "ask" and not allow_stdin and not widgets:
            # Known before the model is asked: no one could approve its program.
            raise _Failure("ApprovalRequired", approval.unanswerable("ask"))
        totals = {"in": 0, "out": 0, "model": 0.0, "sandbox": 0.0, "calls": 0, "attempts": 0}
        request = prompt
        bound: str | None = None
        failure: _Failure | None = None
        for attempt in range(config.max_repairs + 1):
            conversation = conversation_hash(self.codeact.history)
            reply = await self._ask_model(request, conversation, text_only=allow_stdin and not widgets)
            totals["in"] += reply.tokens_in
            totals["out"] += reply.tokens_out
            totals["model"] += reply.elapsed
            try:
                decision = await self._decide(reply.program, allow_stdin) if reply.program else None
            except _Failure as unapproved:  # headless under "ask": remembered, so a replay meets it too
                self._remember(request, conversation, reply,
                               approval.Decision("rejected", reply.program or "", unapproved.evalue), None)
                raise
            result = await self._run(decision) if decision is not None and decision.runs else None
            self._remember(request, conversation, reply, decision, result)
            if result is None:
                break
            totals["sandbox"] += result.duration
            totals["calls"] += len(result.tool_calls)
            totals["attempts"] += 1
            if result.has_value:
                self.shell.user_ns[config.result_name] = result.value  # type: ignore[union-attr]
                bound = config.result_name
            if result.error is None:
                failure = None
                break
            failure = _Failure(result.error.type, result.error.message, str(result.error).splitlines())
            if attempt < config.max_repairs:
                display(Markdown(f"**The program failed**\n\n```\n{_tail(str(result.error))}\n```\n\n"
                                 f"_asking the model for a fix (repair {attempt + 1} of {config.max_repairs})._"))
                request = ("The program failed with the error above. Fix it: answer with the whole "
                           "corrected program.")
        self._footer(totals, bound)
        if failure is not None:
            raise failure

    def _remember(self, request: str, conversation: str, reply: Reply,
                  decision: approval.Decision | None, result: RunResult | None) -> None:
        """Add the turn to the conversation and append it to the transcript."""
        session = self.codeact
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
        session.history.append(Turn(request, reply.text, program, output, error, kind, reason))
        choice = session.current_sandbox()
        record = {
            "prompt": request, "conversation": conversation,
            "model": session.config.model, "base_url": session.config.base_url,
            "request": {"stream": True, "temperature": session.model_config().temperature},
            "reply": reply.text, "program": reply.program,
            "decision": "rejected-by-policy" if reply.program and decision is None else
                        (decision.kind if decision is not None else "no-code"),
            "reason": reason, "edited": decision is not None and decision.kind == "edited",
            "allow": list(decision.allow) if decision is not None else [],
            "ran": decision.program if decision is not None and decision.runs and decision.kind == "edited" else None,
            "ran_sha256": decision.sha256 if decision is not None and decision.runs else None,
            "output": {"stdout": _clip(result.stdout) if result else "", "stderr": _clip(result.stderr) if result else "",
                       "error": error, "files": sorted(result.output_files) if result else [],
                       "tool_calls": len(result.tool_calls) if result else 0},
            "tokens": {"in": reply.tokens_in, "out": reply.tokens_out},
            "seconds": {"model": round(reply.elapsed, 4), "sandbox": round(result.duration, 4) if result else 0.0},
            "sandbox": choice.sandbox.name if choice is not None and result is not None else None,
            "kernel": __version__,
        }
        try:
            Transcript(session.transcript_path()).append(record)
        except OSError as exc:  # the turn happened; losing its record must not fail the cell
            self._publish_stream(self.get_parent("shell"), "stderr",
                                 f"[transcript not written: {exc}; choose another place with %transcript PATH]\n")

    async def _ask_model(self, request: str, conversation: str, text_only: bool = False) -> Reply:
        """The model's reply, shown as it streams: by updating a display, or, for a text-only
        frontend with stdin (jupyter console, which shows no display updates), as stderr text."""
        session = self.codeact
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

        parent = self.get_parent("shell")

        def on_token(delta: str) -> None:
            text.append(delta)
            if text_only:
                self._publish_stream(parent, "stderr", delta)
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
            self._publish_stream(parent, "stderr", "\n")
        handle.update(_reply_markdown(reply, f"_{reply.model} · {reply.elapsed:.1f} s_"))
        return reply

    async def _start_local_model(self) -> None:
        """For `local:PATH`: load the model in its server process, showing progress; once per model."""
        server = self.codeact.local_server()
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

    async def _decide(self, program: str, allow_stdin: bool) -> approval.Decision | None:
        session = self.codeact
        found = approval.scan(program)
        display(Markdown(f"**Program** · calls {found.describe()}\n\n```python\n{program.rstrip()}\n```"))
        sha256 = approval.Decision("approved", program).sha256
        recorded = session.recorded_approvals().get(sha256) if session.config.approval == "recorded" else None
        always_ask = session.registry.always_ask()
        allowed = tuple(sorted(session.allowed_tools - always_ask))
        where = approval.route(session.config.approval, widgets=_frontend_renders_widgets(),
                               stdin=allow_stdin, found=found, always_ask=always_ask,
                               recorded=recorded, allowed=allowed)
        if where == "show-only":
            display(Markdown("**Not run**: the approval policy is `reject` (`%approval ask` to decide yourself)."))
            return None
        if where == "fail-headless":
            raise _Failure("ApprovalRequired", approval.unanswerable(session.config.approval, found, always_ask, sha256))
        offer = approval.allowable(found, always_ask)
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

    async def _ask_widget(self, program: str, found: approval.Scan, offer: tuple[str, ...]) -> approval.Decision:
        loop = asyncio.get_running_loop()
        widget = approval.ApprovalWidget(program, found, loop, offer)
        handle = display(widget.view, display_id=True)
        try:
            decision = await widget.decide()
        except BaseException:
            widget.close()
            raise
        handle.update(Markdown(decision.record()))
        # Closing the controls sends a dozen comm messages: done when the cell ends, so the
        # program starts at once.
        self._decided.append(widget)
        return decision

    async def _ask_stdin(self, program: str, offer: tuple[str, ...]) -> approval.Decision:
        """For frontends with stdin but no widgets (jupyter console): y, a (yes, and allow its
        tools for the session, when offered), or anything else to reject.

        An answer other than y/n/a is taken as the reason for rejecting, for the model.
        """
        found = approval.scan(program)
        choices = f"[y/N/a: yes, and allow {', '.join(offer)} for this session]" if offer else "[y/N]"
        answer = (await self._input(f"Run this program (it calls {found.describe()})? {choices} ")).strip()
        if answer.lower() in ("y", "yes"):
            return approval.Decision("approved", program)
        if offer and answer.lower() == "a":
            return approval.Decision("approved", program, allow=offer)
        return approval.Decision("rejected", program, None if answer.lower() in ("", "n", "no") else answer)

    async def _input(self, prompt: str) -> str:
        """An input_request on stdin that waits without blocking the event loop (so it can be cancelled)."""
        import zmq

        parent = self.get_parent("shell")
        ident = self._get_shell_context_var(self._shell_parent_ident)
        assert self.session is not None
        self.session.send(self.stdin_socket, "input_request", {"prompt": prompt, "password": False},
                          parent, ident=ident)
        while True:
            try:
                _ident, reply = self.session.recv(self.stdin_socket, zmq.NOBLOCK)
            except zmq.ZMQError:
                reply = None
            if reply is not None:
                return str(reply["content"].get("value", ""))
            await asyncio.sleep(0.02)

    async def _run(self, decision: approval.Decision) -> RunResult:
        session = self.codeact
        loop = asyncio.get_running_loop()
        if not session.announced:
            # The first time, the backend is probed and may build its guest (about 30 s once
            # per installation): off the event loop, so the cell stays interruptible.
            handle = display(Markdown("_preparing the sandbox…_"), display_id=True)
            choice = await loop.run_in_executor(None, session.sandbox)
            handle.update(Markdown(f"_sandbox: **{choice.sandbox.name}** ({choice.reason})_"))
            session.announced = True
        choice = session.sandbox()
        parent = self.get_parent("shell")

        def on_output(stream: str, text: str) -> None:
            loop.call_soon_threadsafe(self._publish_stream, parent, stream, text)

        config = session.config
        # The approval guard sits in the tools themselves, so it holds on every backend and
        # however the program reaches call_tool.
        tools = approval.guard(session.registry.callables(loop), decision, session.registry.always_ask())
        run = functools.partial(choice.sandbox.run, decision.program, tools,
                                limits=config.limits(), grants=config.grants(), on_output=on_output)
        future = loop.run_in_executor(None, run)
        self._cancel = choice.sandbox.cancel
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            choice.sandbox.cancel()
            await asyncio.wait([future], timeout=5)  # the sandbox stops within milliseconds
            raise
        finally:
            self._cancel = None
        await asyncio.sleep(0)  # let queued output reach IOPub before what follows
        self._show_files(result)
        for notice in result.notices:
            self._publish_stream(parent, "stderr", notice + "\n")
        return result

    def _publish_stream(self, parent: dict, name: str, text: str) -> None:
        assert self.session is not None
        self.session.send(self.iopub_socket, "stream", {"name": name, "text": text}, parent=parent,
                          ident=self._topic("stream"))

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
        config = self.codeact.config
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

    # -- the rest of the protocol ---------------------------------------------------------
    def do_shutdown(self, restart: bool) -> dict:
        self.codeact.close()
        return super().do_shutdown(restart)


    def do_complete(self, code: str, cursor_pos: int) -> dict:
        body = self._python_body(code)
        if body is None:
            if self._is_magic(code):
                return super().do_complete(code, cursor_pos)
            return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos,
                    "metadata": {}}
        shift = len(code) - len(body)
        reply = super().do_complete(body, max(cursor_pos - shift, 0))
        reply["cursor_start"] += shift
        reply["cursor_end"] += shift
        return reply

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: tuple = ()) -> dict:
        body = self._python_body(code)
        if body is None and not self._is_magic(code):
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        if body is None:
            return super().do_inspect(code, cursor_pos, detail_level, omit_sections)
        shift = len(code) - len(body)
        return super().do_inspect(body, max(cursor_pos - shift, 0), detail_level, omit_sections)

    def do_is_complete(self, code: str) -> dict:
        body = self._python_body(code)
        if body is not None:
            return super().do_is_complete(body) if body.strip() else {"status": "incomplete", "indent": ""}
        if self._is_magic(code):
            return super().do_is_complete(code)
        return {"status": "complete"}  # a prompt is complete as typed: Enter sends it


def _strip_python_marker(lines: list[str]) -> list[str]:
    """IPython input transformer: a cell's leading `%%python` line marks it as Python here."""
    for index, line in enumerate(lines):
        if line.strip():
            return lines[index + 1:] if line.strip() == PYTHON_MARKER else lines
    return lines


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit:,} more characters]"


def _tail(text: str, lines: int = 15) -> str:
    """The end of a traceback, where the error is: what a person needs before the repair."""
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([f"[... {len(kept) - lines} earlier lines]", *kept[-lines:]])


def _frontend_renders_widgets() -> bool:
    """A widget frontend (JupyterLab, Notebook 7, VS Code) opens ipywidgets' control comm."""
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    return getattr(Widget, "_control_comm", None) is not None


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
