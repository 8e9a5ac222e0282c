"""A minimal notebook frontend for tests: runs cells on a real kernel through jupyter_client.

It speaks the messages JupyterLab sends: it can announce widget support (opening
ipywidgets' control comm), click buttons and edit text fields by comm id, connect as
CodeAct's notebook extension (its comm, its cards, its decisions), answer stdin prompts,
and interrupt the kernel.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client import BlockingKernelClient, KernelManager


@dataclass
class Cell:
    """Everything one execute_request produced."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def outputs(self, kind: str | None = None) -> list[dict[str, Any]]:
        types = {"stream", "display_data", "update_display_data", "execute_result", "error"}
        return [m for m in self.messages if m["msg_type"] in types and (kind is None or m["msg_type"] == kind)]

    def stdout(self, name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in self.outputs("stream") if m["content"]["name"] == name)

    def markdown(self) -> str:
        """Every Markdown or plain-text display, in order, updates included."""
        parts = []
        for m in self.outputs():
            data = m["content"].get("data", {})
            if "text/markdown" in data:
                parts.append(data["text/markdown"])
            elif m["msg_type"] in ("display_data", "execute_result") and "text/plain" in data \
                    and "application/vnd.jupyter.widget-view+json" not in data:
                parts.append(data["text/plain"])
        return "\n".join(parts)

    def error(self) -> dict[str, Any] | None:
        errors = self.outputs("error")
        return errors[-1]["content"] if errors else None


class Frontend:
    """One kernel, one client. `widgets=True` behaves like JupyterLab, False like nbclient."""

    def __init__(self, env: dict[str, str], *, widgets: bool = True, kernel_name: str = "codeact",
                 cwd: str | None = None, slowdown: float = 1.0, quiet: bool = False) -> None:
        """`slowdown` scales every wait, for machines far slower than usual (an emulated VM);
        `quiet` keeps the kernel's log warnings off stderr (a benchmark run inside a notebook)."""
        self._tmp = None
        if cwd is None:  # like a notebook's folder: files the kernel saves land here, not in the repo
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="codeact-test-")
            cwd = self._tmp.name
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(env=env, cwd=cwd, extra_arguments=["--log-level=ERROR"] if quiet else [])
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.slowdown = slowdown
        self.client.wait_for_ready(timeout=60 * slowdown)
        self.widget_state: dict[str, dict[str, Any]] = {}
        self.extension_comm: str | None = None
        self.extension_messages: list[dict[str, Any]] = []
        """What the kernel sent the extension (welcome, state, result), in order."""
        if widgets:
            self._open_control_comm()

    def _open_control_comm(self) -> None:
        content = {"comm_id": uuid.uuid4().hex, "target_name": "jupyter.widget.control", "data": {}}
        msg = self.client.session.msg("comm_open", content, metadata={"version": "1.0.0"})
        self.client.shell_channel.send(msg)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- driving widgets like a browser ------------------------------------------------
    def button(self, description: str) -> str:
        """The comm id of the newest button with this label (older ones are no longer shown)."""
        for comm_id, state in reversed(self.widget_state.items()):
            if state.get("_model_name") == "ButtonModel" and state.get("description") == description:
                return comm_id
        raise LookupError(f"no button {description!r} on screen")

    def widget(self, model_name: str) -> str:
        """The comm id of the newest widget of this model."""
        for comm_id, state in reversed(self.widget_state.items()):
            if state.get("_model_name") == model_name:
                return comm_id
        raise LookupError(f"no {model_name} on screen")

    def click(self, comm_id: str) -> None:
        self._comm_msg(comm_id, {"method": "custom", "content": {"event": "click"}})

    def set_value(self, comm_id: str, value: str) -> None:
        self._comm_msg(comm_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

    def _comm_msg(self, comm_id: str, data: dict[str, Any]) -> None:
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(msg)

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    # -- acting as the notebook extension ------------------------------------------------
    def open_extension(self, version: int | None = None) -> None:
        """Open the extension's comm as the extension does when it finds a CodeAct kernel
        (speaking this kernel's protocol version unless told another)."""
        from ..comm import TARGET, VERSION, new_id

        version = VERSION if version is None else version
        self.extension_comm = uuid.uuid4().hex
        content = {"comm_id": self.extension_comm, "target_name": TARGET,
                   "data": {"kind": "hello", "id": new_id(), "version": version}}
        self.client.shell_channel.send(self.client.session.msg("comm_open", content))

    def send_extension(self, kind: str, **fields: Any) -> None:
        from ..comm import new_id

        assert self.extension_comm is not None, "open_extension() first"
        self._comm_msg(self.extension_comm, {"kind": kind, "id": new_id(), **fields})

    def wait_extension(self, kind: str, timeout: float = 10, after: int = 0) -> dict[str, Any]:
        """The first message of `kind` the extension received at index `after` or later."""
        deadline = time.monotonic() + timeout * self.slowdown
        while time.monotonic() < deadline:
            for message in self.extension_messages[after:]:
                if message.get("kind") == kind:
                    return message
            try:
                self._track_widgets(self.client.iopub_channel.get_msg(timeout=0.05))
            except queue.Empty:
                pass
        raise TimeoutError(f"the extension received no {kind!r} message")

    # -- running cells ----------------------------------------------------------------
    def execute(self, code: str, *, allow_stdin: bool = False, timeout: float = 60,
                on_message: Callable[[Frontend, dict[str, Any]], None] | None = None,
                stdin: Callable[[str], str] | None = None) -> Cell:
        """Run a cell; `on_message` sees every IOPub message (to click, interrupt...)."""
        msg_id = self.client.execute(code, allow_stdin=allow_stdin, store_history=True)
        cell_messages: list[dict[str, Any]] = []
        timeout *= self.slowdown
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:60]!r}")
            if stdin is not None:
                try:
                    request = self.client.stdin_channel.get_msg(timeout=0.01)
                    self.client.input(stdin(request["content"]["prompt"]))
                except queue.Empty:
                    pass
            try:
                msg = self.client.iopub_channel.get_msg(timeout=0.05)
            except queue.Empty:
                continue
            self._track_widgets(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            cell_messages.append(msg)
            if on_message is not None:
                on_message(self, msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        reply = self.client.get_shell_msg(timeout=10 * self.slowdown)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=10 * self.slowdown)
        return Cell(reply, cell_messages)

    def _track_widgets(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_msg" and content.get("comm_id") == self.extension_comm:
            self.extension_messages.append(content.get("data", {}))
            return
        if msg["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.widget_state[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] in self.widget_state:
            data = content.get("data", {})
            if data.get("method") == "update":
                self.widget_state[content["comm_id"]].update(data.get("state", {}))
        elif msg["msg_type"] == "comm_close":
            self.widget_state.pop(content["comm_id"], None)
