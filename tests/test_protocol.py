"""Jupyter's own protocol conformance suite (jupyter_kernel_test) against the CodeAct kernel.

`CodeActProtocolTests` is the suite's `KernelTests`, fed `%%python` cells: every message it
receives is validated against the protocol schema (jupyter_kernel_test.msgspec_v5). The
`test_prompt_*` methods add what the suite cannot know about: prompt cells answered by a
scripted model (codeact_kernel.testing.ScriptedOpenAI) whose programs run in the real sandbox, with
every shell and IOPub message of each cell validated the same way, plus the checks on
display ids, parents and error replies that the schema leaves open.

The kernel is started the way the suite starts it (`start_new_kernel`), with the
environment of a headless run: the scripted server, CODEACT_APPROVAL=auto, a temporary
folder as its working directory and a private IPYTHONDIR (its history database).
"""

from __future__ import annotations

import contextlib
import struct
import tempfile
import threading
import time
import unittest
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import jupyter_kernel_test
from jupyter_client.manager import start_new_kernel
from jsonschema import Draft4Validator
from jupyter_kernel_test.msgspec_v5 import msg_structure_validator, schema_fragments, validate_message

from tests.conftest import kernel_env
from codeact_kernel.testing import ScriptedOpenAI

KERNEL = "codeact"
PROMPT_TIMEOUT = 120  # a prompt cell: model + the first sandbox start (the guest may be compiled)
OUTPUT_TYPES = {"stream", "display_data", "update_display_data", "execute_result", "error", "clear_output"}


def program(code: str, prose: str = "") -> str:
    """A model reply whose program is `code`."""
    return f"{prose}\n```python\n{code}\n```"


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


# The suite's input_request schema says `password` is a number; the protocol says a boolean, and
# ipykernel's own input() sends False. Everything else is the suite's fragment.
INPUT_REQUEST = Draft4Validator({
    "type": "object",
    "properties": {**schema_fragments["input_request"]["properties"], "password": {"type": "boolean"}},
    "required": ["password", "prompt"],
})


@contextlib.contextmanager
def _section(*args: Any, **kwargs: Any) -> Iterator[None]:
    """A subTest whose failures fail the test; a SkipTest skips only the block."""
    try:
        yield
    except unittest.SkipTest:
        pass


def _environment(folder: str, base_url: str) -> dict[str, str]:
    env = kernel_env(SimpleNamespace(base_url=base_url), CODEACT_APPROVAL="auto")
    env["IPYTHONDIR"] = str(Path(folder) / "ipython")  # history and profile of this kernel only
    return env


class CodeActProtocolTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL
    language_name = "codeact"
    file_extension = ".md"

    # -- the suite's samples: %%python cells are IPython --------------------------------
    code_hello_world = "%%python\nprint('hello, world')"
    code_stderr = "%%python\nimport sys\nprint('oops', file=sys.stderr)"
    # the suite asks at the end of the text; matches are compared as sets
    completion_samples = [
        {"text": "%%python\nimport functoo", "matches": {"functools"}},
        {"text": "%%python\nisinstan", "matches": {"isinstance"}},
        {"text": "%%python\nzzz_nothing_is_called_th", "matches": set()},
        {"text": "%approv", "matches": {"%approval"}},
        {"text": "What is the weather in Par", "matches": set()},  # prompts complete nothing
    ]
    complete_code_samples = [
        "%%python\nx = 1",
        "%%python\nfor i in range(3):\n    print(i)\n\n",
        "What is the weather in Paris?",
        "for i in range(3):",  # a prompt, not Python: Enter sends it
        "%approval auto",
    ]
    incomplete_code_samples = [
        "%%python\nfor i in range(3):",
        "%%python\ndef f(\n",
        "%%python\n",
    ]
    invalid_code_samples = ["%%python\n1 = )"]
    code_page_something = "%%python\nprint?"
    code_generate_error = "%%python\nraise ValueError('boom')"
    code_execute_result = [
        {"code": "%%python\n6 * 7", "result": "42"},
        {"code": "%%python\n'code' + 'act'", "result": "'codeact'"},
        {"code": "%%python\nfrom IPython.display import Markdown\nMarkdown('**bold**')",
         "mime": "text/markdown", "result": "**bold**"},
    ]
    code_display_data = [
        {"code": "%%python\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))",
         "mime": "text/html"},
        {"code": "%%python\nfrom IPython.display import Markdown, display\ndisplay(Markdown('*hi*'))",
         "mime": "text/markdown"},
    ]
    code_history_pattern = "%%python\n6 [*] 7"  # a sqlite GLOB: the first execute_result sample only
    # not "range": IPython answers the current session as session 0, not the number tail gave
    # (the stock python3 kernel fails it too), so the suite's range check cannot hold for ipykernel
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "%%python\nprint"
    code_clear_output = "%%python\nfrom IPython.display import clear_output\nprint('x')\nclear_output()"

    server: ScriptedOpenAI
    folder: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ScriptedOpenAI().start()
        cls.addClassCleanup(cls.server.stop)
        tmp = tempfile.TemporaryDirectory(prefix="codeact-protocol-")
        cls.addClassCleanup(tmp.cleanup)
        cls.folder = tmp.name
        # the suite's own start, with an environment and a working directory
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name,
                                          env=_environment(cls.folder, cls.server.base_url), cwd=cls.folder)

    def setUp(self) -> None:
        self.server.requests.clear()
        self.flush_channels()
        reply, _ = self.execute_helper("%forget")  # each test starts a new conversation
        self.assertEqual(reply["content"]["status"], "ok")

    def test_history(self) -> None:
        # The suite's subtests record failures without raising, which would hide them from xfail:
        # run them as plain blocks, so the first failure fails the test (a skipped block is skipped).
        with mock.patch.object(self, "subTest", _section):
            super().test_history()

    # -- helpers for prompt cells ---------------------------------------------------------
    def run_cell(self, code: str, *replies: str, timeout: float = PROMPT_TIMEOUT,
                 **kwargs: Any) -> tuple[dict, list[dict]]:
        """Run a cell with the suite's execute_helper (which validates the reply and every IOPub
        message against the schema), having queued `replies` for the model; then check what the
        schema does not: parents, display ids, the error output against the error reply."""
        time.sleep(0.05)  # let the previous request's last IOPub status arrive, then drop it
        self.flush_channels()
        for reply_text in replies:
            self.server.enqueue(reply_text, chunk_size=6, delay=0.01)
        reply, outputs = self.execute_helper(code, timeout=timeout, **kwargs)  # type: ignore[arg-type]
        self.check_cell(reply, outputs)
        return reply, outputs

    def collect(self, code: str, msg_id: str, timeout: float = PROMPT_TIMEOUT) -> tuple[dict, list[dict]]:
        """What execute_helper does after sending, for a request sent by hand (to answer stdin)."""
        reply = self.get_non_kernel_info_reply(timeout=timeout)
        validate_message(reply, "execute_reply", msg_id)
        assert reply is not None
        busy = self.kc.get_iopub_msg(timeout=1)
        validate_message(busy, "status", msg_id)
        self.assertEqual(busy["content"]["execution_state"], "busy")
        outputs = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=1)
            validate_message(msg, msg["msg_type"], msg_id)
            if msg["msg_type"] == "status":
                self.assertEqual(msg["content"]["execution_state"], "idle")
                break
            if msg["msg_type"] == "execute_input":
                self.assertEqual(msg["content"]["code"], code)
                continue
            outputs.append(msg)
        self.check_cell(reply, outputs)
        return reply, outputs

    def check_cell(self, reply: dict, outputs: list[dict]) -> None:
        """What the schema leaves open: parents, display ids, the error output against the error reply."""
        self.assertEqual(self.server.pending, 0, "every scripted reply was asked for")
        request_id = reply["parent_header"]["msg_id"]
        shown: set[str] = set()
        for msg in outputs:
            validate_message(msg, msg["msg_type"], request_id)
            self.assertIn(msg["msg_type"], OUTPUT_TYPES)
            self.assertEqual(msg["parent_header"].get("msg_id"), request_id, msg)
            self.assertEqual(msg["header"]["msg_type"], msg["msg_type"])
            content = msg["content"]
            if msg["msg_type"] == "display_data" and "display_id" in content.get("transient", {}):
                self.assertIsInstance(content["transient"]["display_id"], str)
                shown.add(content["transient"]["display_id"])
            if msg["msg_type"] == "update_display_data":
                self.assertIn(content["transient"].get("display_id"), shown,
                              "an update names a display shown earlier in the cell")
        content = reply["content"]
        self.assertIsInstance(content["execution_count"], int)
        if content["status"] == "error":
            errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
            self.assertEqual(len(errors), 1, "one error output for an error reply")
            for key in ("ename", "evalue", "traceback"):
                self.assertEqual(errors[0][key], content[key])
        else:
            self.assertEqual(content["status"], "ok")
            self.assertIsInstance(content.get("user_expressions", {}), dict)
            self.assertIsInstance(content.get("payload", []), list)
            self.assertFalse([m for m in outputs if m["msg_type"] == "error"], "no error output in an ok cell")

    @staticmethod
    def markdown(outputs: list[dict]) -> str:
        return "\n".join(m["content"]["data"].get("text/markdown", "") for m in outputs
                         if m["msg_type"] in ("display_data", "update_display_data"))

    @staticmethod
    def stream(outputs: list[dict], name: str) -> str:
        return "".join(m["content"]["text"] for m in outputs
                       if m["msg_type"] == "stream" and m["content"]["name"] == name)

    def assert_streamed_reply(self, outputs: list[dict]) -> None:
        """The model's reply: a display with a display id, then updates of that display."""
        first = next(m for m in outputs if m["msg_type"] == "display_data")
        display_id = first["content"]["transient"]["display_id"]
        updates = [m for m in outputs if m["msg_type"] == "update_display_data"
                   and m["content"]["transient"]["display_id"] == display_id]
        self.assertTrue(updates, "the streamed reply updates its display")

    # -- prompt cells -------------------------------------------------------------------------
    def test_prompt_program_that_prints(self) -> None:
        reply, outputs = self.run_cell(
            "Say hello from the sandbox",
            program("import sys\nprint('hello from the sandbox')\nprint('careful', file=sys.stderr)",
                    "I'll print a greeting, and a warning on stderr."))
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(self.stream(outputs, "stdout"), "hello from the sandbox\n")
        self.assertIn("careful", self.stream(outputs, "stderr"))
        self.assert_streamed_reply(outputs)
        text = self.markdown(outputs)
        self.assertIn("I'll print a greeting", text)
        self.assertIn("**Program**", text)
        self.assertIn("tokens", text)  # the footer
        body = self.server.requests[-1].body
        self.assertEqual(body["messages"][-1], {"role": "user", "content": "Say hello from the sandbox"})

    def test_prompt_without_code(self) -> None:
        reply, outputs = self.run_cell("Just say hi", "Hi! No code needed: **hello**.")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(self.stream(outputs, "stdout"), "")
        self.assert_streamed_reply(outputs)
        self.assertIn("**hello**", self.markdown(outputs))

    def test_prompt_program_that_raises(self) -> None:
        failing = program("def f():\n    raise ValueError('nope')\nf()")
        reply, outputs = self.run_cell("Fail, please", failing, failing, failing)  # the first run and 2 repairs
        content = reply["content"]
        self.assertEqual(content["status"], "error")
        self.assertEqual(content["ename"], "ValueError")
        self.assertIn("nope", content["evalue"])
        self.assertTrue(all(isinstance(line, str) for line in content["traceback"]))
        self.assertEqual(outputs[-1]["msg_type"], "error", "the error is the cell's last output")
        self.assertIn("asking the model for a fix", self.markdown(outputs))
        self.assertEqual(len(self.server.requests), 3)

    def test_prompt_program_that_writes_output_files(self) -> None:
        png = _png_1x1()
        code = ("open('/output/note.txt', 'w').write('a note\\n')\n"
                "open('/output/dot.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"/>')\n"
                f"open('/output/pixel.png', 'wb').write({png!r})\n"
                "print('wrote 3 files')")
        reply, outputs = self.run_cell("Write three files", program(code))
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(self.stream(outputs, "stdout"), "wrote 3 files\n")
        data = [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"]
        self.assertTrue(any("image/png" in d for d in data), "the PNG is shown")
        self.assertTrue(any(d.get("text/html", "").startswith("<img") and "data:image/svg+xml;base64," in d["text/html"]
                            for d in data), "the SVG is shown, as an image")
        self.assertIn("codeact_output/note.txt", self.markdown(outputs))
        saved = Path(self.folder) / "codeact_output"
        self.assertEqual((saved / "note.txt").read_text(), "a note\n")
        self.assertEqual((saved / "pixel.png").read_bytes(), png)

    def test_prompt_model_error(self) -> None:
        self.server.enqueue_error(401, "Incorrect API key provided")
        reply, outputs = self.run_cell("hello")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "ModelAuthError")
        updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
        self.assertTrue(updates and "no answer" in updates[-1]["content"]["data"]["text/markdown"])

    def test_prompt_policies_reject_and_headless_ask(self) -> None:
        try:
            self.assertEqual(self.run_cell("%approval reject")[0]["content"]["status"], "ok")
            reply, outputs = self.run_cell("Run something", program("print('never')"))
            self.assertEqual(reply["content"]["status"], "ok")
            self.assertEqual(self.stream(outputs, "stdout"), "")
            self.assertIn("**Not run**", self.markdown(outputs))

            # as nbclient runs a notebook: no widget comm (the suite's client opens none), no stdin
            self.run_cell("%approval ask")
            self.kc.allow_stdin = False
            asked = len(self.server.requests)
            reply, outputs = self.run_cell("Run something")
            self.assertEqual(reply["content"]["status"], "error")
            self.assertEqual(reply["content"]["ename"], "ApprovalRequired")
            self.assertEqual(len(self.server.requests), asked, "no one could approve: the model is not asked")
            self.assertEqual(self.stream(outputs, "stdout"), "")
        finally:
            self.kc.allow_stdin = True
            self.run_cell("%approval auto")

    def test_prompt_approved_on_stdin(self) -> None:
        """As jupyter console: no widgets, stdin allowed, so the kernel asks y/N with an input_request."""
        self.run_cell("%approval ask")
        try:
            self.flush_channels()
            code = "Ask me on stdin first"
            self.server.enqueue(program("print('approved on stdin')"))
            msg_id = self.kc.execute(code, allow_stdin=True)
            request = self.kc.get_stdin_msg(timeout=PROMPT_TIMEOUT)
            msg_structure_validator.validate(request)
            self.assertEqual(request["msg_type"], "input_request")
            self.assertEqual(request["parent_header"]["msg_id"], msg_id)
            INPUT_REQUEST.validate(request["content"])
            self.assertEqual(request["content"]["prompt"], "Run this program (it calls no tools)? [y/N] ")
            self.kc.input("y")
            reply, outputs = self.collect(code, msg_id)
            self.assertEqual(reply["content"]["status"], "ok")
            self.assertEqual(self.stream(outputs, "stdout"), "approved on stdin\n")
        finally:
            self.run_cell("%approval auto")

    def test_prompt_interrupted(self) -> None:
        code = "print('started', flush=True)\nwhile True:\n    pass"
        timer = threading.Timer(3.0, self.km.interrupt_kernel)
        timer.start()
        try:
            reply, outputs = self.run_cell("Loop forever", program(code))
        finally:
            timer.cancel()
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        after, _ = self.run_cell("%%python\nprint('alive')")
        self.assertEqual(after["content"]["status"], "ok")

    def test_prompt_execution_count_follows_store_history(self) -> None:
        """execute_reply.execution_count: the counter increases only with requests that store history."""
        before = self.run_cell("%%python\n1")[0]["content"]["execution_count"]
        python, _ = self.run_cell("%%python\n1", store_history=False)
        reply, _ = self.run_cell("no history, please", "Fine.", store_history=False)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(reply["content"]["execution_count"], python["content"]["execution_count"],
                         "a prompt cell reports the counter as IPython does for a %%python cell")
        after = self.run_cell("%%python\n2")[0]["content"]["execution_count"]
        self.assertEqual(after, before + 1, "a prompt run with store_history=False does not advance the counter")

    def test_prompt_stored_history_is_the_cell(self) -> None:
        """history_reply gives back a prompt cell as typed."""
        self.run_cell("Say history please", "Said.")
        self.flush_channels()
        msg_id = self.kc.history(output=False, raw=True, hist_access_type="tail", n=1)
        reply = self.get_non_kernel_info_reply(timeout=jupyter_kernel_test.TIMEOUT)
        validate_message(reply, "history_reply", msg_id)
        self.assertEqual([h[2] for h in reply["content"]["history"]], ["Say history please"])

    def test_prompt_user_expressions(self) -> None:
        """execute_request.user_expressions are evaluated after a prompt cell too."""
        self.flush_channels()
        self.server.enqueue("Nothing to run.")
        msg_id = self.kc.execute("Evaluate my expressions afterwards", user_expressions={"two": "1 + 1"})
        reply = self.get_non_kernel_info_reply(timeout=PROMPT_TIMEOUT)
        validate_message(reply, "execute_reply", msg_id)
        self.flush_channels()
        self.assertEqual(reply["content"]["status"], "ok")
        result = reply["content"]["user_expressions"].get("two", {})
        self.assertEqual(result.get("status"), "ok", reply["content"]["user_expressions"])
        self.assertEqual(result["data"]["text/plain"], "2")


class CodeActIopubWelcomeTests(jupyter_kernel_test.IopubWelcomeTests):
    """ipykernel 7 sends iopub_welcome on subscription (JEP 65); so does the CodeAct kernel."""

    kernel_name = KERNEL
    support_iopub_welcome = True

    @classmethod
    def setUpClass(cls) -> None:
        from jupyter_client.manager import KernelManager

        tmp = tempfile.TemporaryDirectory(prefix="codeact-protocol-")
        cls.addClassCleanup(tmp.cleanup)
        cls.km = KernelManager(kernel_name=cls.kernel_name)
        cls.km.start_kernel(env=_environment(tmp.name, "http://127.0.0.1:9/v1"), cwd=tmp.name)
        # The test asserts the welcome is the first message a new subscriber gets; wait until
        # the kernel has finished starting, so nothing it prints while starting (seen once on
        # a loaded machine: a stream message) can arrive first.
        probe = cls.km.client()
        probe.start_channels()
        probe.wait_for_ready(timeout=60)
        probe.stop_channels()
        cls.kc = cls.km.client()


if __name__ == "__main__":
    unittest.main()
