"""The host side of one run, the same on every backend.

Whatever isolates the program, it reaches the host through one `dispatch(name, payload)`:
tool calls go to the `ToolDispatcher`, and the names under ``codeact.`` carry printed
output, the uncaught exception, the result value and HTTP requests. Keeping that here
means both backends enforce the same caps and give the same `RunResult`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import GuestError, Grants, Limits, OutputCallback, RunResult, ToolDispatcher, ToolFunction


class RunState:
    """Host-side state of one run: output buffers and caps, events from the guest."""

    def __init__(self, tools: Mapping[str, ToolFunction], limits: Limits, grants: Grants,
                 on_output: OutputCallback | None) -> None:
        self.dispatcher = ToolDispatcher(tools, limits.tool_calls)
        self._call_tool = self.dispatcher.call
        self.allowed_domains = grants.allowed_domains
        self._http: Any = None  # the HttpBroker, made for the first request
        self.limits = limits
        self.on_output = on_output
        self.parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.size = 0
        self.truncated = False
        self.error: GuestError | None = None
        self.value: Any = None
        self.has_value = False

    def dispatch(self, name: str, payload: str) -> tuple[bool, str | bytes]:
        """(ok, the answer as text or UTF-8 JSON) for one request from the guest."""
        if not name.startswith("codeact."):
            return self._call_tool(name, payload)
        event = name[8:]
        if event in ("stdout", "stderr"):
            return self._output(event, payload)
        if event == "error":
            report = json.loads(payload)
            self.error = GuestError(report["type"], report["message"], report["traceback"])
            return True, ""
        if event == "result":
            self.value, self.has_value = json.loads(payload), True
            return True, ""
        if event == "http":
            if self._http is None:
                from .network import HttpBroker  # only programs that use HTTP pay for its import

                self._http = HttpBroker(self.allowed_domains)
            return self._http(payload)
        return False, f"unknown host request {name!r}"

    def _output(self, stream: str, text: str) -> tuple[bool, str]:
        room = self.limits.output_bytes - self.size
        fits = len(text) <= room
        if not fits:
            text = text[: max(room, 0)]
        if text:
            self._emit(stream, text)
            self.size += len(text)
        if fits:
            return True, ""
        if not self.truncated:  # one notice, whichever stream reached the cap
            self.truncated = True
            self._emit("stderr", f"\n[output truncated: the program printed more than "
                                 f"{self.limits.output_bytes:,} characters]\n")
        return False, "output limit reached"

    def _emit(self, stream: str, text: str) -> None:
        self.parts[stream].append(text)
        if self.on_output is not None:
            self.on_output(stream, text)

    def result(self, duration: float) -> RunResult:
        return RunResult(
            stdout="".join(self.parts["stdout"]),
            stderr="".join(self.parts["stderr"]),
            error=self.error,
            duration=duration,
            tool_calls=self.dispatcher.calls,
            value=self.value,
            has_value=self.has_value,
            held=self.dispatcher.held,
        )


def make_output_dir() -> Path:
    """A private host folder to preopen as the guest's /output."""
    import tempfile  # only when /output is granted: it pulls in `random` and friends

    return Path(tempfile.mkdtemp(prefix="codeact-output-"))


def remove_output_dir(path: Path | None) -> None:
    if path is not None:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def collect_outputs(root: Path, limits: Limits) -> tuple[dict[str, bytes], list[str]]:
    """Regular files under /output, within the caps; links and specials are never followed."""
    files: dict[str, bytes] = {}
    notices: list[str] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in sorted(names):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                notices.append(f"/output/{rel} skipped: not a regular file")
                continue
            if st.st_size > limits.output_file_bytes:
                notices.append(f"/output/{rel} skipped: {st.st_size:,} bytes is over the {limits.output_file_bytes:,}-byte limit")
                continue
            if len(files) >= limits.output_files:
                notices.append(f"/output/{rel} skipped: more than {limits.output_files} files")
                continue
            files[rel] = path.read_bytes()
    return files, notices
