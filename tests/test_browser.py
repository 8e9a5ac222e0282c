"""JupyterLab and Notebook 7 in headless Chromium, end to end, with the notebook extension.

Everything is real: one `jupyter-lab` server on 127.0.0.1 (which serves Notebook 7 too) with
the extension built by ./dev, the CodeAct kernels it starts (one per notebook), the openai
client talking to a scripted server, the card clicked and typed into in Chromium. It uses
Debian's /usr/bin/chromium (never a downloaded browser); `.ci/install-browser` installs it and
the `playwright` package. Each test leaves a screenshot in /tmp/browser-<test>.png; with
CODEACT_SCREENSHOTS=DIR the tests also write the README's pictures of the card and the panel.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact_kernel.install import KERNEL_NAME, kernel_json
from tests.conftest import kernel_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = os.environ.get("CODEACT_SCREENSHOTS")

TOOL_CELL = '''%%python
@tool
def get_weather(city: str) -> dict:
    """Current weather for a city: temperature in °C and conditions."""
    return {"city": city, "temperature_c": 12.5, "conditions": "light rain"}'''
PROMPT = "What is the weather in Seattle?"
PROGRAM = "w = call_tool('get_weather', city='Seattle')\nprint(w['city'], w['temperature_c'])"
REPLY = f"Let me look.\n```python\n{PROGRAM}\n```"

# Bounded waits (milliseconds for Playwright): nothing here can hang.
SERVER_START = 60.0
PAGE_LOAD = 60_000
KERNEL_READY = 60_000
CARD_SHOWN = 60_000
PROGRAM_OUTPUT = 90_000  # the first sandbox run may build the guest (about 30 s on a cold cache)

pytestmark = pytest.mark.timeout(300)


def _requirements():  # noqa: ANN202
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


def _notebook(path: Path, *sources: str) -> str:
    """A CodeAct notebook with these code cells; returns its name."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
              "source": source} for i, source in enumerate(sources)]
    nb = {"cells": cells,
          "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": "CodeAct", "language": "codeact"},
                       "language_info": {"name": "codeact"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path.name


class _Lab:
    """jupyter-lab in its own process group, its log in a file; stop() never hangs."""

    def __init__(self, lab: Path, root: Path, env: dict[str, str], state: Path) -> None:
        self.root = root
        self.transcript = state / "transcript.jsonl"  # every kernel's turns, for what the page does not show
        env = {**env, "CODEACT_TRANSCRIPT": str(self.transcript)}
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log_path = state / "jupyter-lab.log"
        args = [str(lab), "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                f"--LabApp.workspaces_dir={state / 'workspaces'}", f"--LabApp.user_settings_dir={state / 'settings'}",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory, openai_server) -> Iterator[_Lab]:
    """One jupyter-lab for the module, its kernels talking to the module's scripted server."""
    _sync_playwright, lab_exe = _requirements()
    base = tmp_path_factory.mktemp("lab")
    root, state = base / "root", base / "state"
    root.mkdir()
    # This interpreter's kernelspec, found first, whatever is installed elsewhere.
    spec = state / "data" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(kernel_json()), encoding="utf-8")
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
    env = kernel_env(openai_server)  # OPENAI_BASE_URL, OPENAI_API_KEY, CODEACT_MODEL; CODEACT_CACHE_DIR kept
    env.update(JUPYTER_PATH=str(state / "data"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTER_CONFIG_DIR=str(state / "config"))
    server = _Lab(lab_exe, root, env, state)
    try:
        server.wait_ready(SERVER_START)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab):  # noqa: ANN201
    sync_playwright, _lab = _requirements()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab, openai_server, request):  # noqa: ANN201
    """A fresh page; afterwards, no errors in the browser console, and a screenshot in /tmp."""
    openai_server.reset()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and _report(errors, page.url, m.text))
    page.on("pageerror", lambda e: _report(errors, page.url, f"uncaught: {e.stack or e}"))
    try:
        yield page
    finally:  # the page as the test left it, to look at when it failed
        with contextlib.suppress(Exception):  # the screenshot must not hide a failure
            page.screenshot(path=f"/tmp/browser-{request.node.name}.png", full_page=True)
        context.close()
    assert not errors, f"the browser console logged errors: {errors}\njupyter-lab log:\n{lab.log()}"


# Notebook 7.6.5's own page logs these with or without this extension (a plain Python notebook
# logs the first on every load, from notebook_core's settings code); one that names this
# extension is still ours.
NOTEBOOK_7_NOISE = ("Cannot read properties of undefined (reading 'schema')",
                    "Command 'filebrowser:open-path' not registered")


def _report(errors: list[str], url: str, text: str) -> None:
    noise = "/notebooks/" in url and any(known in text for known in NOTEBOOK_7_NOISE)
    if not noise or "codeact" in text.lower():
        errors.append(text)


# -- what a person does ----------------------------------------------------------------------

def _open(page, lab: _Lab, name: str, ui: str = "lab"):  # noqa: ANN001, ANN202
    """Open a notebook and wait until the extension knows its kernel is CodeAct (before that, a
    cell run is dropped): the cells then carry the extension's kind marker."""
    from playwright.sync_api import expect

    path = f"/lab/tree/{name}?reset" if ui == "lab" else f"/notebooks/{name}"
    page.goto(f"{lab.url}{path}{'&' if '?' in path else '?'}token={lab.token}", timeout=PAGE_LOAD)
    notebook = page.locator(".jp-NotebookPanel").first
    expect(notebook).to_be_visible(timeout=PAGE_LOAD)
    try:
        expect(notebook.locator(".jp-CodeCell[data-codeact-kind]").first).to_be_visible(timeout=KERNEL_READY)
    except AssertionError as exc:
        raise AssertionError(f"the extension never connected to the kernel\njupyter-lab log:\n{lab.log()}") from exc
    return notebook


def _run(notebook, index: int):  # noqa: ANN001, ANN202
    """Run the cell at `index` (Shift-Enter in its editor) and return it."""
    cell = notebook.locator(".jp-CodeCell").nth(index)
    cell.locator(".cm-content").click()
    cell.page.keyboard.press("Shift+Enter")
    return cell


PROGRAM_CARD, CALL_CARD = ".jp-CodeActCard:not(.jp-CodeActCallCard)", ".jp-CodeActCallCard"


def _card(cell, lab: _Lab, kind: str = PROGRAM_CARD, action: str = "Approve",  # noqa: ANN001, ANN202
          timeout: float = CARD_SHOWN):
    """The cell's card of this kind (a program's, or a call's), once it offers its actions."""
    from playwright.sync_api import expect

    card = cell.locator(f".jp-OutputArea {kind}")
    try:
        expect(card.get_by_role("button", name=action, exact=True)).to_be_visible(timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"no {kind} card; cell output: {cell.locator('.jp-OutputArea').inner_text()!r}\n"
                             f"jupyter-lab log:\n{lab.log()}") from exc
    return card


def _prompt(page, lab: _Lab, openai_server, name: str, *more: str):  # noqa: ANN001, ANN202
    """A notebook of the weather tool, the prompt and `more` cells; the first two run, the model
    answers REPLY: (the notebook, the prompt's cell, its approval card)."""
    openai_server.enqueue(REPLY)
    notebook = _open(page, lab, _notebook(lab.root / f"{name}.ipynb", TOOL_CELL, PROMPT, *more))
    _run(notebook, 0)
    cell = _run(notebook, 1)
    return notebook, cell, _card(cell, lab)


def _expect_output(cell, text: str, lab: _Lab) -> None:  # noqa: ANN001
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    output = cell.locator(".jp-OutputArea")
    try:
        expect(output).to_contain_text(text, timeout=PROGRAM_OUTPUT)
    except (AssertionError, PlaywrightTimeout) as exc:
        raise AssertionError(f"{text!r} never appeared; cell output: {output.inner_text(timeout=5_000)!r}\n"
                             f"jupyter-lab log:\n{lab.log()}") from exc


def _finished(cell, count: int) -> None:  # noqa: ANN001
    """The cell finished: its execution count, no error output."""
    from playwright.sync_api import expect

    expect(cell.locator(".jp-InputArea-prompt")).to_contain_text(f"[{count}]", timeout=10_000)
    expect(cell.locator("[data-mime-type='application/vnd.jupyter.error']")).to_have_count(0)


def _screenshot(locator, name: str) -> None:  # noqa: ANN001
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        locator.screenshot(path=str(Path(SCREENSHOTS) / name))


def _requests_text(openai_server) -> list[str]:  # noqa: ANN001
    """Each chat request's messages, as one string."""
    return [json.dumps(r.body["messages"]) for r in openai_server.requests
            if r.method == "POST" and isinstance(r.body, dict) and "messages" in r.body]


# -- JupyterLab --------------------------------------------------------------------------------

@pytest.mark.parametrize("approve_by", ["click", "shortcut"])
def test_the_card_shows_the_program_once_and_is_approved(page, lab, openai_server, approve_by):
    from playwright.sync_api import expect

    _, cell, card = _prompt(page, lab, openai_server, f"approve-{approve_by}")
    output = cell.locator(".jp-OutputArea")
    # The program appears once: in the card's editor, in Python mode; not also as Markdown.
    expect(card.locator(".cm-content")).to_contain_text("call_tool('get_weather', city='Seattle')")
    expect(card.locator(".cm-content[data-language='python']")).to_have_count(1)
    expect(output.locator(".jp-RenderedMarkdown", has_text="call_tool(")).to_have_count(0)
    expect(output.locator(".widget-button")).to_have_count(0)  # not the ipywidgets fallback as well
    expect(card.locator(".jp-CodeActCard-chip")).to_have_text(["get_weather"])
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("awaiting approval", timeout=10_000)
    expect(card).to_be_focused(timeout=10_000)
    if approve_by == "click":
        _screenshot(card, "card.png")
        card.get_by_role("button", name="Approve", exact=True).click()
    else:  # codeact:approve, bound to Accel Enter on the focused card (schema/card.json)
        page.keyboard.press("Control+Enter")
    _expect_output(cell, "Seattle 12.5", lab)
    # The card became the record: no actions left, the decision and who made it.
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("Approved · by you", timeout=10_000)
    expect(card.locator("button")).to_have_count(0)
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("idle", timeout=10_000)
    _finished(cell, 2)


def test_an_edited_program_runs_and_is_recorded_as_edited(page, lab, openai_server):
    from playwright.sync_api import expect

    _, cell, card = _prompt(page, lab, openai_server, "edit")
    expect(card).to_be_focused(timeout=10_000)
    page.keyboard.press("e")  # codeact:edit: the same editor, now editable and focused
    expect(card).to_have_class(re.compile(r"\bjp-mod-editing\b"))
    editor = card.locator(".cm-content")
    expect(editor).to_have_attribute("contenteditable", "true")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("w = call_tool('get_weather', city='Lisbon')\nprint('edited:', w['city'])")
    # Before approving, the diff against the model's version is visible.
    diff = card.locator(".jp-CodeActCard-diff")
    expect(diff).to_be_visible()
    expect(diff.locator(".jp-CodeActCard-diff-removed")).to_contain_text(["city='Seattle'", "print(w['city']"])
    expect(diff.locator(".jp-CodeActCard-diff-added")).to_contain_text(["city='Lisbon'", "print('edited:'"])
    card.get_by_role("button", name="Approve", exact=True).click()
    _expect_output(cell, "edited: Lisbon", lab)
    expect(cell.locator(".jp-OutputArea")).not_to_contain_text("Seattle 12.5")
    record = card.locator(".jp-CodeActCard-record")
    expect(record).to_contain_text("Approved after editing · by you", timeout=10_000)
    expect(card.locator(".cm-content")).to_contain_text("city='Lisbon'")  # the record shows what ran
    expect(card.locator(".jp-CodeActCard-diff")).not_to_have_attribute("open", "")  # collapsed
    _finished(cell, 2)
    # The transcript says what ran, and that it was an edit.
    records = [json.loads(line) for line in lab.transcript.read_text(encoding="utf-8").splitlines() if line.strip()]
    edited = [r for r in records if r.get("edited")]
    assert edited and "city='Lisbon'" in edited[-1]["ran"] and edited[-1]["approver"] == "extension"


def test_the_card_says_which_lines_hold_characters_a_reader_cannot_see(page, lab, openai_server):
    """A direction override makes code read otherwise than it runs ("Trojan Source"): the card
    says which line holds one, in the model's program and in a person's edit."""
    from playwright.sync_api import expect

    trojan = PROGRAM.replace("city='Seattle')", "city='Seattle')  # \u202e)'nodnoL'=ytic")
    openai_server.enqueue(f"Let me look.\n```python\n{trojan}\n```")
    notebook = _open(page, lab, _notebook(lab.root / "hidden.ipynb", TOOL_CELL, PROMPT))
    _run(notebook, 0)
    cell = _run(notebook, 1)
    card = _card(cell, lab)
    warning = card.locator(".jp-CodeActCard-warning")
    expect(warning).to_have_text("Line 1 holds invisible or direction-changing characters: the code may read "
                                 "otherwise than it runs.")
    expect(card).to_be_focused(timeout=10_000)
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(PROGRAM)  # the person's edit, without it
    expect(warning).to_be_hidden()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("\nprint('\u200b')")  # a zero-width space on line 3
    expect(warning).to_have_text(re.compile(r"^Line 3 holds "))
    card.get_by_role("button", name="Approve", exact=True).click()
    _expect_output(cell, "Seattle 12.5", lab)
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("Approved after editing", timeout=10_000)
    expect(warning).to_have_text(re.compile(r"^Line 3 holds "))  # the record says it of what ran
    _finished(cell, 2)


def test_a_rejection_reason_reaches_the_models_next_request(page, lab, openai_server):
    from playwright.sync_api import expect

    notebook, cell, card = _prompt(page, lab, openai_server, "reject", "Then what now?")
    openai_server.enqueue("Understood: I will not look it up.")
    expect(card).to_be_focused(timeout=10_000)
    reason = card.locator(".jp-CodeActCard-reasonInput")
    expect(reason).to_be_hidden()  # until asked for
    page.keyboard.press("r")  # codeact:reject: the reason box, focused
    expect(reason).to_be_focused()
    page.keyboard.type("no network lookups today")
    page.keyboard.press("Enter")
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("Rejected · by you", timeout=10_000)
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("reason: no network lookups today")
    _run(notebook, 2)
    _expect_output(notebook.locator(".jp-CodeCell").nth(2), "Understood", lab)
    requests = _requests_text(openai_server)
    assert len(requests) == 2
    assert "no network lookups today" not in requests[0]
    assert "no network lookups today" in requests[1]


def test_cells_by_kind_and_the_panel(page, lab, openai_server):
    from playwright.sync_api import expect

    openai_server.enqueue(REPLY)
    notebook = _open(page, lab, _notebook(lab.root / "panel.ipynb", TOOL_CELL, PROMPT))
    tool_cell, prompt_cell = notebook.locator(".jp-CodeCell").nth(0), notebook.locator(".jp-CodeCell").nth(1)
    # A %%python cell is edited as Python, a prompt as Markdown, each marked with its kind.
    expect(tool_cell.locator(".cm-content[data-language='python']")).to_have_count(1)
    expect(prompt_cell.locator(".cm-content[data-language='markdown']")).to_have_count(1, timeout=10_000)
    expect(tool_cell).to_have_attribute("data-codeact-kind", "python")
    expect(prompt_cell).to_have_attribute("data-codeact-kind", "prompt")
    # The shortcut turns the active cell into Python, and back.
    prompt_cell.locator(".cm-content").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Alt+y")
    expect(prompt_cell).to_have_attribute("data-codeact-kind", "python")
    expect(prompt_cell.locator(".cm-content")).to_contain_text("%%python")
    page.keyboard.press("Control+Alt+y")
    expect(prompt_cell).to_have_attribute("data-codeact-kind", "prompt")
    expect(prompt_cell.locator(".cm-content")).not_to_contain_text("%%python")

    _run(notebook, 0)
    cell = _run(notebook, 1)
    card = _card(cell, lab)
    card.get_by_role("button", name="Approve", exact=True).click()
    _expect_output(cell, "Seattle 12.5", lab)
    _finished(cell, 2)
    # The status bar item opens the panel: settings, the tools, this session's run.
    page.locator(".jp-CodeActStatus").click()
    panel = page.locator("#codeact-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-CodeActPanel-model")).to_have_value("scripted-model")
    expect(panel.locator(".jp-CodeActPanel-policy")).to_have_value("ask")
    expect(panel.locator(".jp-CodeActPanel-settings")).to_contain_text(openai_server.base_url)
    expect(panel.locator(".jp-CodeActPanel-tool")).to_contain_text(["get_weather(city: str) -> dict"])
    expect(panel.locator(".jp-CodeActPanel-doc")).to_contain_text(["Current weather for a city"])
    run = panel.locator(".jp-CodeActPanel-run")
    expect(run).to_have_count(1)
    expect(run).to_contain_text(PROMPT)
    expect(run).to_contain_text("approved (extension)")
    expect(run).to_contain_text("1 tool call")
    _screenshot(panel, "panel.png")
    # Its run links to its cell.
    notebook.locator(".jp-CodeCell").nth(0).locator(".cm-content").click()
    run.locator(".jp-CodeActPanel-prompt").click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
    # Changing the policy there goes through %approval, as typed.
    panel.locator(".jp-CodeActPanel-policy").select_option("auto")
    expect(panel.locator(".jp-CodeActPanel-result")).to_contain_text("auto", timeout=10_000)
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("auto")


EMAIL_CELL = '''%%python
@tool(approval="each-call")
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}"'''
EMAIL_PROGRAM = ("print('drafted')\n"
                 "print(call_tool('send_email', to='ann@example.com', subject='Lunch', body='Noon at the usual place?'))")


def test_a_paused_call_is_shown_focused_and_allowed_by_keyboard(page, lab, openai_server):
    from playwright.sync_api import expect

    openai_server.enqueue(f"Sending it.\n```python\n{EMAIL_PROGRAM}\n```")
    notebook = _open(page, lab, _notebook(lab.root / "call.ipynb", EMAIL_CELL, "Ask Ann to lunch."))
    _run(notebook, 0)
    cell = _run(notebook, 1)
    program_card = _card(cell, lab)
    expect(program_card).to_be_focused(timeout=10_000)
    page.keyboard.press("Control+Enter")  # the program runs, and waits at the call
    call_card = _card(cell, lab, CALL_CARD, "Allow")
    expect(call_card).to_contain_text("send_email")
    expect(call_card).to_contain_text("at line 2")
    expect(call_card.locator(".jp-CodeActCallCard-arguments")).to_contain_text('"to": "ann@example.com"')
    expect(cell.locator(".jp-OutputArea")).to_contain_text("drafted")  # what it printed before the call
    expect(page.locator(".jp-CodeActStatus")).to_contain_text("a call awaits your decision", timeout=10_000)
    expect(call_card).to_be_focused(timeout=10_000)
    _screenshot(call_card, "callcard.png")
    page.keyboard.press("Control+Enter")  # codeact:approve on the focused call card: allow once
    _expect_output(cell, "sent to ann@example.com", lab)
    expect(call_card.locator(".jp-CodeActCard-record")).to_contain_text("Allowed by you", timeout=10_000)
    expect(call_card.locator("button")).to_have_count(0)
    _finished(cell, 2)
    # The panel lists the call under its run.
    page.locator(".jp-CodeActStatus").click()
    expect(page.locator("#codeact-panel .jp-CodeActPanel-call")).to_contain_text(
        ["Allowed by you: send_email(to='ann@example.com', subject='Lunch', body='Noon at the usual place?') (line 2)"])


# -- Notebook 7 --------------------------------------------------------------------------------

def test_notebook_7_shows_the_card_and_approves_by_keyboard(page, lab, openai_server):
    from playwright.sync_api import expect

    openai_server.enqueue(REPLY)
    notebook = _open(page, lab, _notebook(lab.root / "nb7.ipynb", TOOL_CELL, PROMPT), ui="notebook")
    tool_cell = notebook.locator(".jp-CodeCell").nth(0)
    expect(tool_cell.locator(".cm-content[data-language='python']")).to_have_count(1)
    _run(notebook, 0)
    cell = _run(notebook, 1)
    card = _card(cell, lab)
    expect(card.locator(".cm-content")).to_contain_text("call_tool('get_weather', city='Seattle')")
    expect(cell.locator(".jp-OutputArea .jp-RenderedMarkdown", has_text="call_tool(")).to_have_count(0)
    expect(card).to_be_focused(timeout=10_000)
    page.keyboard.press("Control+Enter")
    _expect_output(cell, "Seattle 12.5", lab)
    expect(card.locator(".jp-CodeActCard-record")).to_contain_text("Approved · by you", timeout=10_000)
    _finished(cell, 2)


# -- nothing is fetched before a click ---------------------------------------------------------

class _LeakServer:
    """An HTTP server on 127.0.0.1 that records every path asked of it (and answers a 1x1 GIF):
    a browser that renders a hostile image or HTML fetches from it."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append(self.path)
                body = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HOSTILE_TOOLS = '''%%python
@tool(approval="each-call")
def send(to: str) -> str:
    """Send a note."""
    return "sent"'''


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_hostile_text_fetches_nothing_and_the_users_own_markdown_does(page, lab, openai_server, ui):
    """A model reply, an error, a call's arguments and file names, each carrying a Markdown image
    and an <img>, cause no request; the user's own Markdown in a %%python cell, the control,
    is fetched: the test can see a leak."""
    from playwright.sync_api import expect

    leak = _LeakServer()
    try:
        base, slashless = f"{leak.url}/{ui}", f"http:/127.0.0.1:{leak.url.rsplit(':', 1)[1]}/{ui}"
        program = "\n".join([
            "import os",
            f"for path in ['/output/![f]({slashless}/file-md.png)', '/output/<img src={slashless}/file-html.png>']:",
            "    os.makedirs(os.path.dirname(path), exist_ok=True)",
            "    open(path, 'w').write('x')",
            f"call_tool('send', to='![a]({base}/args-md.png) <img src={base}/args-html.png>')",
            f"raise ValueError('![e]({base}/error-md.png) <img src={base}/error-html.png>')"])
        openai_server.enqueue(f"Here ![r]({base}/reply-md.png) and <img src=\"{base}/reply-html.png\">:\n"
                              f"```python\n{program}\n```")
        openai_server.enqueue(f"Fixed ![r2]({base}/repair-md.png)\n```python\nprint('fixed')\n```")
        control = f"%%python\nfrom IPython.display import Markdown\nMarkdown('![control]({base}/control.png)')"
        notebook = _open(page, lab, _notebook(lab.root / f"leak-{ui}.ipynb", HOSTILE_TOOLS, "%approval auto",
                                              "Send the note", control), ui=ui)
        _run(notebook, 0)
        _run(notebook, 1)
        cell = _run(notebook, 2)
        call = _card(cell, lab, CALL_CARD, "Allow", PROGRAM_OUTPUT)  # after the sandbox started
        expect(call).to_contain_text("args-md.png")  # the arguments are shown, as text
        call.get_by_role("button", name="Allow", exact=True).click()
        _expect_output(cell, "fixed", lab)
        expect(cell.locator(".jp-OutputArea")).to_contain_text("error-md.png")  # the error is shown, as text
        expect(cell.locator(".jp-OutputArea")).to_contain_text("file-html.png")
        _run(notebook, 3)
        deadline = time.monotonic() + 30
        while f"/{ui}/control.png" not in leak.seen and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # anything else the page would fetch has had its chance
        assert f"/{ui}/control.png" in leak.seen, f"the control was not fetched: the test cannot see a leak {leak.seen}"
        assert [path for path in leak.seen if path != f"/{ui}/control.png"] == []
        assert not cell.locator(".jp-OutputArea img").count(), "no image element in the prompt cell's output"
        expect(cell.locator(".jp-OutputArea")).to_contain_text("not loaded; from 127.0.0.1")  # the reply's image
    finally:
        leak.close()


# -- last: it leaves the server's settings dark ------------------------------------------------

def _luminance(locator) -> float:  # noqa: ANN001
    """The relative luminance (0 black, 1 white) of an element's own background colour."""
    rgb = locator.evaluate("e => getComputedStyle(e).backgroundColor.match(/[\\d.]+/g).slice(0, 3).map(Number)")
    return sum(weight * value / 255 for weight, value in zip((0.2126, 0.7152, 0.0722), rgb))


def test_the_card_follows_the_dark_theme(page, lab, openai_server):
    from playwright.sync_api import expect

    _, cell, card = _prompt(page, lab, openai_server, "dark")
    assert _luminance(card) > 0.5 and _luminance(card.locator(".jp-CodeActCard-editor")) > 0.5
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).click()  # Settings > Theme > Dark
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=30_000)
    page.wait_for_function("() => getComputedStyle(document.querySelector('.jp-CodeActCard')).backgroundColor"
                           " !== 'rgb(255, 255, 255)'", timeout=30_000)
    assert _luminance(card) < 0.3
    assert _luminance(card.locator(".jp-CodeActCard-editor")) < 0.3
    card.get_by_role("button", name="Approve", exact=True).click()
    _expect_output(cell, "Seattle 12.5", lab)
