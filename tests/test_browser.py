"""JupyterLab in headless Chromium, end to end: a prompt cell, the extension's approval card,
Approve, the output, the record, the status bar's phase.

Everything is real: `jupyter-lab` on 127.0.0.1 with the extension built by ./dev, the CodeAct
kernel it starts, the openai client talking to a scripted server, the card clicked in Chromium.
It uses Debian's /usr/bin/chromium (never a downloaded browser); `.ci/install-browser` installs
it and the `playwright` package. A screenshot is saved to /tmp/browser-test.png on failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from codeact_kernel.install import KERNEL_NAME, kernel_json
from tests.conftest import kernel_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = "/tmp/browser-test.png"
PROMPT = "What is the temperature in Seattle?"
REPLY = "Let me look.\n```python\nprint('Seattle', 12.5)\n```"
CONTROL_COMM = "jupyter.widget.control"

# Bounded waits (milliseconds for Playwright): nothing here can hang.
SERVER_START = 60.0
PAGE_LOAD = 60_000
KERNEL_IDLE = 60_000
WIDGET_SHOWN = 60_000
PROGRAM_OUTPUT = 90_000  # the first sandbox run may build the guest (about 30 s on a cold cache)

pytestmark = pytest.mark.timeout(240)


def _requirements():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/install-browser does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (pip install playwright; .ci/install-browser does it)")
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists():
        pytest.fail(f"{lab} is missing: JupyterLab must be installed in the test environment")
    return sync_playwright, lab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path: Path) -> None:
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "prompt-cell", "metadata": {},
                   "outputs": [], "source": [PROMPT]}],
        "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": "CodeAct", "language": "codeact"},
                     "language_info": {"name": "codeact"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


class _Lab:
    """jupyter-lab in its own process group, its log in a file; stop() never hangs."""

    def __init__(self, lab: Path, root: Path, env: dict[str, str], state: Path) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log_path = state / "jupyter-lab.log"
        args = [str(lab), "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                f"--LabApp.workspaces_dir={state / 'workspaces'}", f"--LabApp.user_settings_dir={state / 'settings'}",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter-lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"jupyter-lab did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self, tail: int = 60) -> str:
        self._log.flush()
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # a clean shutdown also shuts down the kernels (each in its own session)
                request = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(request, timeout=5).close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


@pytest.mark.parametrize("approve_by", ["click", "shortcut"])
def test_prompt_cell_approved_in_jupyterlab(tmp_path, scripted_openai, approve_by):
    sync_playwright, lab_exe = _requirements()
    scripted_openai.enqueue(REPLY)

    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    _notebook(root / "prompt.ipynb")
    # This interpreter's kernelspec, found first, whatever is installed elsewhere.
    spec = state / "data" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(kernel_json()), encoding="utf-8")
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
    env = kernel_env(scripted_openai)  # OPENAI_BASE_URL, OPENAI_API_KEY, CODEACT_MODEL; CODEACT_CACHE_DIR kept
    env.update(JUPYTER_PATH=str(state / "data"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTER_CONFIG_DIR=str(state / "config"))

    lab = _Lab(lab_exe, root, env, state)
    control_opens: list[float] = []  # when the page opened ipywidgets' control comm, for the failure message
    try:
        lab.wait_ready(SERVER_START)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)

            def on_websocket(ws) -> None:  # noqa: ANN001
                def record(payload) -> None:  # noqa: ANN001
                    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
                    if "comm_open" in text and CONTROL_COMM in text:
                        control_opens.append(time.monotonic())
                ws.on("framesent", record)

            page.on("websocket", on_websocket)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            try:
                _run_the_cell(page, lab, control_opens, approve_by)
                ours = [e for e in errors if "codeact" in e.lower()]
                assert not ours, f"the extension logged errors: {ours}"
            except BaseException:
                try:
                    page.screenshot(path=SCREENSHOT, full_page=True)
                except Exception:  # noqa: BLE001 - the screenshot must not hide the failure
                    pass
                raise
            finally:
                browser.close()
    finally:
        lab.stop()


def _run_the_cell(page, lab: _Lab, control_opens: list[float], approve_by: str) -> None:  # noqa: ANN001
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/prompt.ipynb?reset&token={lab.token}", timeout=PAGE_LOAD)
    notebook = page.locator(".jp-NotebookPanel").first
    expect(notebook).to_be_visible(timeout=PAGE_LOAD)
    # A cell run before the kernel is connected is silently dropped: wait for the status bar's
    # "CodeAct | Idle", shown after kernel_info_reply. (The toolbar's execution indicator says
    # "idle" before any kernel exists, so it is no signal.)
    idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"^\s*CodeAct \| Idle\s*$"))
    try:
        expect(idle).to_have_count(1, timeout=KERNEL_IDLE)
    except AssertionError as exc:
        raise AssertionError(f"the kernel never became Idle\njupyter-lab log:\n{lab.log()}") from exc

    cell = notebook.locator(".jp-CodeCell").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")

    output = cell.locator(".jp-OutputArea")
    card = output.locator(".jp-CodeActCard")
    approve = card.get_by_role("button", name="Approve", exact=True)
    try:
        expect(approve).to_be_visible(timeout=WIDGET_SHOWN)
    except AssertionError as exc:
        raise AssertionError(
            "no approval card in the cell output. "
            f"The page opened {CONTROL_COMM} {len(control_opens)} time(s). "
            f"Cell output: {output.inner_text(timeout=5_000)!r}\njupyter-lab log:\n{lab.log()}") from exc
    # The program appears once: in the card's editor, in Python mode; not also as Markdown.
    expect(card.locator(".cm-content")).to_contain_text("print('Seattle', 12.5)")
    expect(card.locator(".cm-content[data-language='python']")).to_have_count(1)
    expect(output.locator(".jp-RenderedMarkdown", has_text="print('Seattle'")).to_have_count(0)
    expect(output.locator(".widget-button")).to_have_count(0)
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("awaiting approval", timeout=10_000)
    expect(card).to_be_focused(timeout=10_000)

    if approve_by == "click":
        approve.click()
    else:  # codeact:approve, bound to Accel Enter on the focused card (schema/card.json)
        page.keyboard.press("Control+Enter")
    try:
        expect(output).to_contain_text("Seattle 12.5", timeout=PROGRAM_OUTPUT)
    except (AssertionError, PlaywrightTimeout) as exc:
        raise AssertionError(f"the program's output never appeared; cell output: "
                             f"{output.inner_text(timeout=5_000)!r}\njupyter-lab log:\n{lab.log()}") from exc
    # The card became the record: no actions left, the decision and who made it.
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("Approved · by you", timeout=10_000)
    expect(card.locator("button")).to_have_count(0)
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("idle", timeout=10_000)
    # The cell finished: an execution count, no error output.
    expect(cell.locator(".jp-InputArea-prompt")).to_contain_text("[1]", timeout=10_000)
    expect(output.locator("[data-mime-type='application/vnd.jupyter.error']")).to_have_count(0)
