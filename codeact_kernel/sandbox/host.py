"""The host side of one run, the same on every backend.

Whatever isolates the program, it reaches the host through one `dispatch(name, payload)`:
tool calls go to the `ToolDispatcher`, and the names under ``codeact.`` carry printed
output, the uncaught exception, the result value, the carried values and HTTP requests.
Keeping that here means both backends enforce the same caps and give the same `RunResult`.

Inputs go the other way with the program itself (`guest_program`), so a run costs no
crossing for them, and a run without inputs pays nothing at all.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import data
from ..errors import DataError
from .base import (RUNTIME_NAMES, GuestError, Grants, Limits, OutputCallback, RunResult, ToolDispatcher,
                   ToolFunction, decode_arguments)

_NOTICE_REASON = 300  # characters of a guest's reason for not carrying a value
HEADER_MARK = "\x01"  # begins and ends the inputs' header before a program (guest/executor.py says the same)


def check_inputs(inputs: Mapping[str, bytes], kinds: frozenset[str]) -> None:
    """Raise `DataError` for an input a guest that holds `kinds` of data cannot be given."""
    if not inputs:
        return
    for name, blob in inputs.items():
        if not (isinstance(name, str) and name.isidentifier()) or name.startswith("_") or name in RUNTIME_NAMES:
            raise DataError(f"{name!r} cannot be an input's name: a program's variable names are identifiers, "
                            "and names starting with _ or the runtime's own (call_tool, set_result...) are "
                            "kept for it")
        found = data.kind(blob)
        if found not in kinds:
            raise DataError(f"{name} is {found} data, and this sandbox's guest holds only "
                            f"{' and '.join(sorted(kinds))} values: share it with a guest that has numpy "
                            "and pandas, or make it a JSON value")


def guest_program(program: str, inputs: Mapping[str, bytes]) -> str:
    """What the standard guest's executor runs: the program, after a header holding the
    inputs when there are any (checked with `check_inputs` first).

    The header travels with the program (wasmtime: the argument of `run`; Hyperlight: the
    answer to ``codeact.program``), so inputs cost no crossing of their own. It is
    ``SOH {"inputs": {name: value}} SOH`` before the program: SOH (U+0001) can start no
    program (Python refuses a control character outside a string) and appears in no JSON
    text (JSON escapes control characters), so the guest tells the two apart by the first
    character alone, and a run without inputs is given its program as it is.
    """
    if not inputs and not program.startswith(HEADER_MARK):
        return program
    fields = [f"{json.dumps(name)}:{data.json_text(blob)}" for name, blob in inputs.items()]
    return HEADER_MARK + '{"inputs":{' + ",".join(fields) + "}}" + HEADER_MARK + program


def carry(payload: str) -> tuple[dict[str, bytes], list[str]]:
    """(blobs, notices) from what the standard guest sent as ``codeact.carried``, read as
    untrusted: a line of JSON, ``{"values": [[name, length]...], "skipped": [[name, why]...]}``,
    then each value's JSON text, `length` characters each, one after the other (so each
    becomes a blob as it is, without being read into objects and written again)."""
    try:
        line, _, texts = payload.partition("\n")
        sent = decode_arguments(line)
        values, skipped = sent["values"], sent["skipped"]
        if type(values) is not list or type(skipped) is not list:
            raise TypeError("not two lists")
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        return {}, [f"the program's variables could not be carried: what the guest sent is malformed ({exc})"]
    carried: dict[str, bytes] = {}
    notices: list[str] = []
    for entry in skipped:
        if type(entry) is list and len(entry) == 2 and all(type(part) is str for part in entry):
            notices.append(f"{entry[0][:80]} was not carried: {entry[1][:_NOTICE_REASON]}")
    at = 0
    for entry in values:
        if not (type(entry) is list and len(entry) == 2 and type(entry[0]) is str and type(entry[1]) is int
                and 0 <= entry[1] <= len(texts) - at):
            return {}, ["the program's variables could not be carried: what the guest sent is malformed"]
        name, length = entry
        text = texts[at:at + length]
        at += length
        if not name.isidentifier() or name.startswith("_") or name in RUNTIME_NAMES:
            notices.append(f"{name[:80]!r} was not carried: not a name a program's variable may have")
            continue
        try:
            carried[name] = data.json_blob(text, name=name)
        except DataError as exc:
            notices.append(f"{name} was not carried: {exc}")
    return carried, notices


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
        self.carried: str | None = None  # read in `result`, and only if the run ended well

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
        if event == "carried":
            self.carried = payload
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
        """The run's result; carried values only if it ended without error (set `error` first)."""
        result = RunResult(
            stdout="".join(self.parts["stdout"]),
            stderr="".join(self.parts["stderr"]),
            error=self.error,
            duration=duration,
            tool_calls=self.dispatcher.calls,
            value=self.value,
            has_value=self.has_value,
            held=self.dispatcher.held,
        )
        if self.carried is not None and self.error is None:
            result.carried, notices = carry(self.carried)
            result.notices.extend(notices)
        return result


def make_output_dir() -> Path:
    """A private host folder to preopen as the guest's /output."""
    from .. import scratch  # only when /output is granted: tempfile pulls in `random` and friends

    return scratch.folder("output")


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
