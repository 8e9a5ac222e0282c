"""The CodeAct kernel: where cells are routed and the parts are wired together.

A cell is a prompt unless it starts with `%%python` (ordinary IPython code in the kernel's
namespace) or is a line magic. A prompt goes to a `Turn` (turn.py), which carries it through
model, approval and sandbox; the kernel gives it the view of the richest frontend present
(views/: the extension's cards, ipywidgets, a console's stdin, or nobody), turns its failures
into error replies, and makes an interrupt cancel it. The extension's comm (comm.py) is
served from here.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from ipykernel.ipkernel import IPythonKernel
from traitlets import CaselessStrEnum, Float, Unicode

from . import __version__, comm
from .config import APPROVAL_POLICIES, PERMISSIVENESS, SANDBOX_PROCESSES, SANDBOXES, Config, ceiling
from .errors import CodeActError, ConfigError
from .magics import CodeActMagics
from .mcp_tools import config_paths, read_config
from .protocol import EXIT, MAGIC, PYTHON_MARKER, SETTABLE
from .session import Session
from .tools import tool
from .turn import Failure, Turn
from .views import CellIO, pick
from .views.extension import state

_MAGIC = re.compile(MAGIC)


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
            config = self._fallback_config()
        self.codeact = Session(config)
        # The configuration file's MCP servers start now, in the background (the first prompt
        # cell waits for them); with none configured nothing is imported or started.
        self.codeact.mcp.load(*read_config(config_paths()))
        assert self.shell is not None
        self.shell.register_magics(CodeActMagics(self.shell, self.codeact))
        self.shell.input_transformers_cleanup.insert(0, _strip_python_marker)
        self.shell.user_ns["tool"] = tool
        self._cell: Turn | None = None
        self.extension = comm.Extension(lambda phase, pending: state(self.codeact, phase, pending),
                                        self._apply_setting)
        self.extension.register(self.comm_manager)
        # Importing ipywidgets registers its comm targets, so a widget frontend's control
        # comm (opened when it connects) is seen: that is how we know Approve can be clicked.
        import ipywidgets  # noqa: F401

    def _initial_config(self) -> Config:
        traits = {"model": self.model, "base_url": self.base_url,
                  "sandbox": self.sandbox, "sandbox_process": self.sandbox_process, "timeout": self.timeout}
        config = _under(Config(**{k: v for k, v in traits.items() if v is not None}), ceiling())
        if self.approval is not None:
            config.approval = self.approval
        return config.with_env()  # validated, the ceiling included

    @staticmethod
    def _fallback_config() -> Config:
        """What magics and the panel work with when the start-up configuration was refused: the
        defaults, under the ceiling still (a magic must not get past it meanwhile); under the
        strictest policy if the ceiling itself could not be read."""
        try:
            limit = ceiling()
        except ConfigError as exc:
            limit = (PERMISSIVENESS[0], f"the deployer's ceiling, which could not be read ({exc}),")
        return _under(Config(), limit)

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
                or code.strip() in EXIT):  # exit/quit ask the console to close, as in IPython
            # IPython sees the whole cell, so history keeps the %%python marker;
            # _strip_python_marker (an input transformer) removes it before it runs.
            try:
                return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                                cell_meta=cell_meta, cell_id=cell_id)
            finally:
                self.extension.publish()  # a tool defined, a setting changed: the panel follows
        reply = await self._prompt_cell(code.strip(), store_history and not silent, allow_stdin, cell_id)
        if reply["status"] == "ok":
            reply["user_expressions"] = self.shell.user_expressions(user_expressions or {})  # type: ignore[union-attr]
        return reply

    async def _prompt_cell(self, prompt: str, store_history: bool, allow_stdin: bool, cell_id: str | None) -> dict:
        shell = self.shell
        assert shell is not None
        count = shell.execution_count
        if store_history:  # as IPython does: only a stored cell advances the count
            shell.history_manager.store_inputs(count, prompt)  # type: ignore[union-attr]
            shell.execution_count += 1
        else:
            count -= 1
        parent = self.get_parent("shell")
        io = CellIO(stream=lambda name, text: self._publish_stream(parent, name, text), ask=self._input)
        view = pick(io, self.extension, widgets=_frontend_renders_widgets(), stdin=allow_stdin)
        self._cell = cell = Turn(self.codeact, view, shell.user_ns, cell_id=cell_id)
        task = asyncio.ensure_future(self._answer(cell, prompt))
        restore = self._interrupt_cancels(task)
        try:
            await task
            status: dict[str, Any] = {"status": "ok", "user_expressions": {}}
        except asyncio.CancelledError:
            status = self._error("KeyboardInterrupt", "interrupted: the kernel and its variables are intact")
        except Failure as failure:
            status = self._error(failure.ename, failure.evalue, failure.traceback)
        except (CodeActError, ConfigError) as exc:
            status = self._error(type(exc).__name__, str(exc))
        finally:
            restore()
            view.close()
            self._cell = None
            self.extension.set_phase("idle")
        return {**status, "execution_count": count, "payload": []}

    async def _answer(self, cell: Turn, prompt: str) -> None:
        if self._config_error is not None:
            raise self._config_error
        await cell.answer(prompt)

    def _apply_setting(self, name: str, value: str) -> tuple[bool, str]:
        """A change from the extension's panel, made by the magic a person would type."""
        if name not in SETTABLE:
            return False, f"the panel cannot set {name!r} (only {', '.join(SETTABLE)})"
        assert self.shell is not None
        try:
            with capture_output() as captured:
                self.shell.run_line_magic(name, value)
        except UsageError as exc:
            return False, str(exc)
        return True, captured.stdout.strip()

    def _interrupt_cancels(self, task: asyncio.Future) -> Callable[[], None]:
        """Make SIGINT cancel this cell (and its sandbox run) within milliseconds."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()

        def on_sigint(_signum: int, _frame: object) -> None:
            if self._cell is not None:
                self._cell.cancel()
            self.codeact.mcp.cancel_calls()  # a program waiting on an MCP call stops now, not when it answers
            loop.call_soon_threadsafe(task.cancel)

        previous = signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _error(self, ename: str, evalue: str, traceback: list[str] | None = None) -> dict:
        content = {"ename": ename, "evalue": evalue, "traceback": traceback or [f"{ename}: {evalue}"]}
        self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", **content}

    def _publish_stream(self, parent: dict, name: str, text: str) -> None:
        assert self.session is not None
        self.session.send(self.iopub_socket, "stream", {"name": name, "text": text}, parent=parent,
                          ident=self._topic("stream"))

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


def _frontend_renders_widgets() -> bool:
    """A widget frontend (JupyterLab, Notebook 7, VS Code) opens ipywidgets' control comm."""
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    return getattr(Widget, "_control_comm", None) is not None


def _under(config: Config, limit: tuple[str, str] | None) -> Config:
    """`config` under the deployer's ceiling: the default policy yields to it; a policy chosen
    later is refused above it."""
    if limit is not None:
        policy, source = limit
        config.approval_max, config.approval_max_source = policy, source
        if PERMISSIVENESS.index(config.approval) > PERMISSIVENESS.index(policy):
            config.approval = policy
    return config
