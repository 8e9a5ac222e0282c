"""The model client against a scripted OpenAI-compatible server, through the real `openai` client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeact_kernel import errors
from codeact_kernel.model import (
    LOCAL_DUMMY_KEY,
    ModelConfig,
    Reply,
    Turn,
    build_messages,
    codeact_instructions,
    complete,
    extract_program,
    find_program,
    prose_of,
)

KEY = "sk-test-7f3a9c2e1b8d4f6a0e5c3b9d"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add two and three"}]
PROGRAM_REPLY = "I'll add them.\n\n```python\nprint(call_tool('add', 2, 3))\n```\n"


def config(server, **overrides) -> ModelConfig:
    return ModelConfig(**{"model": "scripted-model", "base_url": server.base_url, "api_key": KEY, **overrides})


def run(cfg: ModelConfig, **kwargs) -> Reply:
    return asyncio.run(complete(cfg, MESSAGES, **kwargs))


def fail(cfg: ModelConfig, kind: type[errors.ModelError], **kwargs) -> errors.ModelError:
    with pytest.raises(kind) as info:
        run(cfg, **kwargs)
    assert isinstance(info.value, errors.CodeActError)
    return info.value


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --------------------------------------------------------------------------- configuration



async def cancel_and_time(task: asyncio.Task) -> float:
    """Cancel `task` and return how long it took to end (it must end cancelled)."""
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started

def test_config_repr_masks_the_key():
    cfg = ModelConfig(model="m", base_url="https://user:pw@example.com/v1", api_key=KEY)
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        assert KEY not in text and "pw" not in text
        assert "api_key='***'" in text and "https://example.com/v1" in text
    assert "api_key=None" in repr(ModelConfig(model="m"))


def test_config_from_env():
    cfg = ModelConfig.from_env({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://h/v1", "CODEACT_MODEL": "x"})
    assert (cfg.model, cfg.base_url, cfg.api_key) == ("x", "http://h/v1", KEY)
    default = ModelConfig.from_env({"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    assert (default.model, default.base_url, default.api_key) == ("gpt-4o-mini", None, None)


def test_config_rejects_nonsense():
    for bad in ({"model": ""}, {"model": "m", "timeout": 0}, {"model": "m", "max_retries": -1}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)


# --------------------------------------------------------------------------- replies


def test_streaming_tokens_arrive_in_order_with_usage(scripted_openai):
    scripted_openai.enqueue(PROGRAM_REPLY, chunk_size=5, usage=(42, 17))
    tokens: list[str] = []
    reply = run(config(scripted_openai), on_token=tokens.append)
    assert tokens == [PROGRAM_REPLY[i:i + 5] for i in range(0, len(PROGRAM_REPLY), 5)]
    assert reply.text == PROGRAM_REPLY
    assert reply.program == "print(call_tool('add', 2, 3))"
    assert (reply.tokens_in, reply.tokens_out, reply.attempts) == (42, 17, 1)
    assert reply.model == "scripted-model" and reply.finish_reason == "stop"
    assert 0 < reply.elapsed < 5
    body = scripted_openai.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == MESSAGES and body["temperature"] == 0.0
    assert scripted_openai.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_usage_is_the_servers_count(scripted_openai):
    scripted_openai.enqueue("one two three four")  # the server counts words: 6 in, 4 out
    reply = run(config(scripted_openai))
    assert (reply.tokens_in, reply.tokens_out) == (6, 4)
    assert reply.program is None


def test_non_streaming(scripted_openai):
    scripted_openai.enqueue(PROGRAM_REPLY, usage=(30, 12))
    tokens: list[str] = []
    reply = run(config(scripted_openai, temperature=None), on_token=tokens.append, stream=False)
    assert tokens == [PROGRAM_REPLY]  # once, whole, so the kernel can render it the same way
    assert (reply.text, reply.tokens_in, reply.tokens_out) == (PROGRAM_REPLY, 30, 12)
    assert reply.program == "print(call_tool('add', 2, 3))"
    body = scripted_openai.requests[0].body
    assert not body.get("stream") and "temperature" not in body and "stream_options" not in body


def test_truncated_reply_reports_length(scripted_openai):
    scripted_openai.enqueue("```python\nfor i in range(", finish_reason="length")
    reply = run(config(scripted_openai))
    assert reply.finish_reason == "length"


def test_server_without_stream_options_is_asked_again_without(scripted_openai):
    scripted_openai.enqueue_error(400, "Unrecognized request argument supplied: stream_options")
    scripted_openai.enqueue("fine")
    reply = run(config(scripted_openai), on_retry=lambda *a: pytest.fail("not a retry"))
    assert reply.text == "fine" and reply.attempts == 2
    assert "stream_options" not in scripted_openai.requests[1].body


def test_local_server_needs_no_key(scripted_openai):
    scripted_openai.enqueue("hi")
    scripted_openai.enqueue("hi again")
    assert run(config(scripted_openai, api_key=None)).text == "hi"
    localhost = scripted_openai.base_url.replace("127.0.0.1", "localhost")
    assert run(config(scripted_openai, api_key=None, base_url=localhost)).text == "hi again"
    assert {r.headers["authorization"] for r in scripted_openai.requests} == {f"Bearer {LOCAL_DUMMY_KEY}"}


def test_callback_errors_are_not_model_errors(scripted_openai):
    scripted_openai.enqueue("hello world")

    def broken(delta: str) -> None:
        raise ValueError("a bug in the caller")

    with pytest.raises(ValueError, match="a bug in the caller"):
        run(config(scripted_openai), on_token=broken)
    assert len(scripted_openai.requests) == 1


# --------------------------------------------------------------------------- errors


def test_no_key_for_a_remote_server():
    started = time.monotonic()
    err = fail(ModelConfig(model="m", base_url="https://api.example.com/v1"), errors.NoApiKey)
    assert time.monotonic() - started < 1  # decided before any network access
    assert "OPENAI_API_KEY" in str(err) and "https://api.example.com/v1" in str(err)
    assert "api.openai.com" in str(fail(ModelConfig(model="m"), errors.NoApiKey))


def test_unreachable_port():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    started = time.monotonic()
    err = fail(ModelConfig(model="m", base_url=url), errors.ModelUnreachable, on_retry=lambda *a: pytest.fail())
    assert time.monotonic() - started < 2  # refused is not retried
    assert url in str(err) and "connection refused" in str(err)
    assert isinstance(err.__cause__, Exception) and err.base_url == url


def test_wrong_key_is_401(scripted_openai):
    scripted_openai.expect_key("sk-the-right-one-0000")
    err = fail(config(scripted_openai), errors.ModelAuthError)
    assert err.status == 401 and "OPENAI_API_KEY" in str(err)
    assert len(scripted_openai.requests) == 1  # not retried


def test_forbidden_is_an_auth_error(scripted_openai):
    scripted_openai.enqueue_error(403, "Project does not have access to this model")
    err = fail(config(scripted_openai), errors.ModelAuthError)
    assert err.status == 403 and "does not have access" in str(err)


def test_unknown_model_names_it_and_lists_the_servers(scripted_openai):
    scripted_openai.known_models = {"qwen2.5-coder", "llama3.2"}
    err = fail(config(scripted_openai, model="gpt-9"), errors.UnknownModel)
    assert "'gpt-9'" in str(err) and "%model NAME" in str(err)
    assert err.available == ("llama3.2", "qwen2.5-coder") and "llama3.2, qwen2.5-coder" in str(err)


def test_404_for_a_wrong_path_points_at_the_base_url(scripted_openai):
    cfg = config(scripted_openai, base_url=scripted_openai.base_url.removesuffix("/v1"))
    err = fail(cfg, errors.ModelError)
    assert type(err) is errors.ModelError and "%model --base-url" in str(err) and "/v1" in str(err)


def test_429_is_retried_then_succeeds(scripted_openai):
    scripted_openai.enqueue_error(429, "Rate limit reached", headers={"Retry-After": "0"})
    scripted_openai.enqueue_error(429, "Rate limit reached", headers={"retry-after-ms": "20"})
    scripted_openai.enqueue("done")
    retries: list[tuple] = []
    reply = run(config(scripted_openai), on_retry=lambda *a: retries.append(a))
    assert reply.text == "done" and reply.attempts == 3
    assert retries == [(1, 0.0, "429 rate limited"), (2, 0.02, "429 rate limited")]


def test_429_exhausted(scripted_openai):
    for _ in range(3):
        scripted_openai.enqueue_error(429, "Rate limit reached for requests", headers={"Retry-After": "0"})
    err = fail(config(scripted_openai, max_retries=2), errors.RateLimited)
    assert err.attempts == 3 and "3 attempts" in str(err) and not err.quota
    assert scripted_openai.pending == 0


def test_used_up_quota_is_not_retried(scripted_openai):
    scripted_openai.enqueue_error(429, "You exceeded your current quota", code="insufficient_quota")
    err = fail(config(scripted_openai), errors.RateLimited, on_retry=lambda *a: pytest.fail("retried"))
    assert err.quota and "billing" in str(err)


def test_500_is_retried_with_exponential_backoff(scripted_openai):
    scripted_openai.enqueue_error(500, "The server had an error")
    scripted_openai.enqueue_error(502, "Bad gateway")
    scripted_openai.enqueue("recovered")
    retries: list[tuple] = []
    started = time.monotonic()
    reply = run(config(scripted_openai), on_retry=lambda *a: retries.append(a))
    assert reply.text == "recovered" and reply.attempts == 3
    assert retries == [(1, 0.5, "500 server error"), (2, 1.0, "502 server error")]
    assert 1.4 < time.monotonic() - started < 5 and reply.elapsed > 1.4


def test_500_exhausted(scripted_openai):
    scripted_openai.enqueue_error(503, "overloaded", headers={"Retry-After": "0"})
    scripted_openai.enqueue_error(503, "still overloaded", headers={"Retry-After": "0"})
    err = fail(config(scripted_openai, max_retries=1), errors.ModelServerError)
    assert err.status == 503 and err.attempts == 2 and "still overloaded" in str(err)


def test_empty_queue_fails_loudly(scripted_openai):
    err = fail(config(scripted_openai, max_retries=0), errors.ModelServerError)
    assert "no scripted reply" in str(err)


def test_retry_after_is_capped_and_the_wait_cancellable(scripted_openai):
    scripted_openai.enqueue_error(429, "slow down", headers={"Retry-After": "3600"})

    async def scenario() -> float:
        retried = asyncio.Event()
        delays: list[float] = []
        task = asyncio.create_task(complete(config(scripted_openai), MESSAGES,
                                            on_retry=lambda n, d, r: (delays.append(d), retried.set())))
        await asyncio.wait_for(retried.wait(), 5)
        assert delays == [10.0]
        return await cancel_and_time(task)

    assert asyncio.run(scenario()) < 0.5


def test_dropped_connection_is_retried(scripted_openai):
    scripted_openai.enqueue_drop()
    scripted_openai.enqueue("second time lucky")
    retries: list[tuple] = []
    reply = run(config(scripted_openai), on_retry=lambda *a: retries.append(a))
    assert reply.text == "second time lucky" and [r[2] for r in retries] == ["connection lost"]


def test_reset_after_text_was_shown_is_not_retried(scripted_openai):
    scripted_openai.enqueue("abcdefghijklmnopqrstuvwxyz", chunk_size=4, reset_after=2)
    scripted_openai.enqueue("must not be requested")
    tokens: list[str] = []
    err = fail(config(scripted_openai), errors.ModelUnreachable, on_token=tokens.append)
    assert tokens == ["abcd", "efgh"] and "lost" in str(err)
    assert scripted_openai.pending == 1


def test_timeout(scripted_openai):
    scripted_openai.enqueue_hang(10)
    started = time.monotonic()
    err = fail(config(scripted_openai, timeout=0.3), errors.ModelTimeout)
    assert time.monotonic() - started < 3 and err.timeout == 0.3
    assert "0.3 s" in str(err) and "%model --timeout" in str(err) and "CODEACT_TIMEOUT" in str(err)
    assert len(scripted_openai.requests) == 1  # a timeout is not retried


def test_timeout_mid_stream(scripted_openai):
    scripted_openai.enqueue("slow " * 10, chunk_size=5, delay=2)
    tokens: list[str] = []
    err = fail(config(scripted_openai, timeout=0.3), errors.ModelTimeout, on_token=tokens.append)
    assert tokens == ["slow "] and err.timeout == 0.3


def test_malformed_stream(scripted_openai):
    scripted_openai.enqueue_raw('data: {"choices": [\n\n', content_type="text/event-stream")
    assert "cannot be used" in str(fail(config(scripted_openai), errors.BadModelReply))


def test_malformed_non_streaming_reply(scripted_openai):
    scripted_openai.enqueue_raw(json.dumps({"id": "x", "object": "chat.completion", "choices": []}))
    fail(config(scripted_openai), errors.BadModelReply, stream=False)


def test_empty_reply(scripted_openai):
    scripted_openai.enqueue("")
    assert "no text" in str(fail(config(scripted_openai), errors.BadModelReply))


def test_context_too_long(scripted_openai):
    scripted_openai.enqueue_error(400, "This model's maximum context length is 8192 tokens.",
                                  code="context_length_exceeded")
    err = fail(config(scripted_openai), errors.ModelError)
    assert "too long" in str(err) and "scripted-model" in str(err)


def test_the_key_never_appears_in_errors(scripted_openai):
    """Every kind of failure, including servers that echo the key back; scan all we expose."""
    collected: list[BaseException] = []

    def catch(cfg: ModelConfig, **kwargs) -> None:
        with pytest.raises(errors.ModelError) as info:
            run(cfg, **kwargs)
        collected.append(info.value)

    cfg = config(scripted_openai, max_retries=0)
    scripted_openai.expect_key("sk-something-else-entirely")
    catch(cfg)
    scripted_openai.expect_key(None)
    for status in (400, 401, 403, 404, 429, 500):
        scripted_openai.enqueue_error(status, f"proxy says: bad key {KEY} (Bearer {KEY})")
        catch(cfg)
    scripted_openai.enqueue_raw(f"data: {KEY}\n\n", content_type="text/event-stream")
    catch(cfg)
    scripted_openai.enqueue_hang(5)
    catch(dataclasses.replace(cfg, timeout=0.2))
    catch(dataclasses.replace(cfg, base_url=f"http://127.0.0.1:{closed_port()}/v1?key={KEY}"))
    catch(dataclasses.replace(cfg, base_url=f"http://{KEY}:x@127.0.0.1:{closed_port()}/v1"))
    assert len(collected) == 11
    for err in collected:
        exposed = [str(err), repr(err), *map(repr, err.args), *map(repr, vars(err).values())]
        assert all(KEY not in text for text in exposed), exposed


# --------------------------------------------------------------------------- cancellation


def test_cancel_mid_stream_is_prompt_and_closes_the_stream(scripted_openai):
    scripted_openai.enqueue("word " * 200, chunk_size=5, delay=0.05)  # ten seconds of tokens

    async def scenario() -> float:
        first = asyncio.Event()
        task = asyncio.create_task(complete(config(scripted_openai), MESSAGES, on_token=lambda d: first.set()))
        await asyncio.wait_for(first.wait(), 5)
        return await cancel_and_time(task)

    assert asyncio.run(scenario()) < 0.5
    deadline = time.monotonic() + 3
    while scripted_openai.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert scripted_openai.disconnects == 1  # the server saw the stream closed


def test_cancel_while_waiting_for_the_server(scripted_openai):
    scripted_openai.enqueue_hang(10)

    async def scenario() -> float:
        task = asyncio.create_task(complete(config(scripted_openai), MESSAGES))
        while not scripted_openai.requests:
            await asyncio.sleep(0.01)
        return await cancel_and_time(task)

    assert asyncio.run(scenario()) < 0.5


# --------------------------------------------------------------------------- the scripted server as a process


def test_scripted_server_runs_as_a_process(tmp_path: Path):
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["first", {"error": 429, "message": "busy", "headers": {"Retry-After": "0"}},
                                  {"text": "second", "usage": [3, 1]}]))
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "codeact_kernel.testing.scripted_openai",
                             "--script", str(script), "--port-file", str(port_file), "--models", "scripted-model"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        cfg = ModelConfig(model="scripted-model", base_url=f"http://127.0.0.1:{port_file.read_text()}/v1")
        assert run(cfg).text == "first"
        reply = run(cfg)
        assert (reply.text, reply.attempts, reply.tokens_in, reply.tokens_out) == ("second", 2, 3, 1)
        with pytest.raises(errors.UnknownModel):
            run(dataclasses.replace(cfg, model="other"))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0


# --------------------------------------------------------------------------- extract_program


@pytest.mark.parametrize(
    ("text", "program"),
    [
        (PROGRAM_REPLY, "print(call_tool('add', 2, 3))"),
        ("```py\nx = 1\nprint(x)\n```", "x = 1\nprint(x)"),
        ("```Python3 title=\"a.py\"\nprint(1)\n```", "print(1)"),
        ("```{.python}\nprint(1)\n```", "print(1)"),
        ("First:\n```python\nprint(1)\n```\nOr:\n```python\nprint(2)\n```", "print(1)"),
        ("Data:\n```json\n{}\n```\nCode:\n```python\nprint(2)\n```", "print(2)"),
        ("```\nprint('untagged')\n```", "print('untagged')"),
        ("~~~python\nprint(1)\n~~~", "print(1)"),
        ("````python\ns = '''\n```\n'''\nprint(s)\n````", "s = '''\n```\n'''\nprint(s)"),
        ("1. Run this:\n   ```python\n   for i in range(2):\n       print(i)\n   ```", "for i in range(2):\n    print(i)"),
        ("```python\n%%python\nprint(1)\n```", "print(1)"),
        ("```python\n\n%%python\n\nprint(1)\n```", "print(1)"),
        ("```pycon\n>>> x = [1,\n...      2]\n>>> print(x)\n[1, 2]\n```", "x = [1,\n     2]\nprint(x)"),
        ("```python\nIn [1]: x = 2\n   ...: print(x)\n2\n```", "x = 2\nprint(x)"),
        ("```python\ndef f():\n    ...\nprint(f())\n```", "def f():\n    ...\nprint(f())"),
        ("```python\nprint(1)\r\nprint(2)\r\n```\r\n", "print(1)\nprint(2)"),
        ("Here it is:\n```python\nrows = call_tool('orders')\nfor r in rows:", "rows = call_tool('orders')\nfor r in rows:"),
        ("<think>Maybe ```python\nprint('no')\n```</think>\n```python\nprint('yes')\n```", "print('yes')"),
    ],
)
def test_extract_program(text, program):
    assert extract_program(text) == program


@pytest.mark.parametrize(
    "text",
    [
        "The answer is **5**.",
        "",
        "Use ```print(1)``` inline.",
        "```bash\nls -la\n```",
        "```\nfirst\n```\nand\n```\nsecond\n```",
        "```json\n{}\n```\n```\nprint(1)\n```",
        "```python\n\n```",
        "```python\n%%python\n```",
        "<think>\n```python\nprint('thinking only')\n```\n",
    ],
)
def test_extract_program_finds_none(text):
    assert extract_program(text) is None


# --------------------------------------------------------------------------- build_messages


def turn(decision: str, **kw) -> Turn:
    values = {"prompt": "p", "reply": "```python\nprint(1)\n```", "program": "print(1)", "output": "1\n",
              "error": None, "decision": decision}
    return Turn(**{**values, **kw})


def test_build_messages_shape():
    history = [
        turn("approved", prompt="first?", output="42\n"),
        turn("no-code", prompt="why?", reply="Because.", program=None, output=""),
        turn("auto", prompt="third?", output="", error="ToolError: boom"),
    ]
    messages = build_messages("INSTRUCTIONS", "add(a, b): adds", history, "now?")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[0]["content"] == "INSTRUCTIONS\n\n## Tools\n\nadd(a, b): adds"
    assert messages[1]["content"] == "first?"
    assert messages[2]["content"] == "```python\nprint(1)\n```"
    assert "42" in messages[3]["content"] and messages[3]["content"].endswith("Next request:\nwhy?")
    assert messages[4]["content"] == "Because."
    assert messages[5]["content"] == "third?"  # nothing ran after a no-code reply
    last = messages[7]["content"]
    assert "printed nothing" in last and "ToolError: boom" in last and last.endswith("now?")
    assert build_messages("I", "", [], "q") == [{"role": "system", "content": "I"}, {"role": "user", "content": "q"}]
    # the values the program starts with go with the new prompt, never into the system message
    with_data = build_messages("INSTRUCTIONS", "add(a, b): adds", history, "now?", data="`t`: DataFrame 3 × 2")
    assert with_data[0] == messages[0] and with_data[1:7] == messages[1:7]
    assert "already defined" in with_data[-1]["content"] and "`t`: DataFrame" in with_data[-1]["content"]
    assert with_data[-1]["content"].endswith("Next request:\nnow?") and "ToolError: boom" in with_data[-1]["content"]


def test_build_messages_truncates_output_and_errors():
    output = "HEAD" + "x" * 10_000 + "TAIL"
    error = "Traceback" + "y" * 10_000 + "ValueError: last line"
    messages = build_messages("I", "T", [turn("approved", output=output, error=error)], "next", max_output_chars=300)
    content = messages[3]["content"]
    assert "HEAD" in content and "TAIL" in content and "ValueError: last line" in content
    assert "[... 9,708 characters left out ...]" in content and "[... 9,730 characters left out ...]" in content
    assert len(content) < 1000


def test_build_messages_rejected_and_edited():
    history = [
        turn("rejected", reason="do not touch production", output=""),
        turn("rejected", output=""),
        turn("edited", program="print(2)", output="2\n"),
    ]
    messages = build_messages("I", "T", history, "q")
    assert "rejected" in messages[3]["content"] and "do not touch production" in messages[3]["content"]
    assert "no reason given" in messages[5]["content"]
    assert "edited" in messages[7]["content"] and "```python\nprint(2)\n```" in messages[7]["content"]
    assert "2" in messages[7]["content"].split("printed")[1]


def test_build_messages_drops_reasoning_from_replies():
    messages = build_messages("I", "T", [turn("no-code", reply="<think>long musing</think>Hello.")], "q")
    assert messages[2]["content"] == "Hello."


def test_turn_rejects_unknown_decision():
    with pytest.raises(ValueError, match="decision"):
        turn("maybe")


def test_codeact_instructions_are_short_and_complete():
    text = codeact_instructions()
    assert len(text.split()) < 250
    for needed in ("call_tool", "set_result", "/input", "/output", "http_get", "```python", "Markdown", "uuid"):
        assert needed in text


def test_the_instructions_mention_only_what_the_run_grants():
    from codeact_kernel.sandbox import Grants

    bare = codeact_instructions(Grants())
    assert "/input" not in bare and "/output" not in bare and "http_get" not in bare
    granted = codeact_instructions(Grants(output=True, allowed_domains={"api.example.com": None}))
    assert "write to /output" in granted and "/input" not in granted
    assert "work only for api.example.com" in granted


def test_the_prose_is_the_reply_without_its_program_wherever_it_is():
    """One parser says where the program is; the prose is the rest (a bash block before it is
    kept and the program is not shown twice; a ~~~ fence keeps the prose around it)."""
    text = "First:\n```bash\npip list\n```\nThen:\n```python\nprint(1)\n```\nDone."
    found = find_program(text)
    assert found is not None and found.program == "print(1)"
    assert prose_of(text, found) == "First:\n```bash\npip list\n```\nThen:\nDone."
    tilde = "Before.\n~~~python\nx = 1\n~~~\nAfter."
    assert prose_of(tilde, find_program(tilde)) == "Before.\nAfter."
    thinking = "<think>```python\nwrong()\n```</think>Here:\n```\nright()\n```"
    assert find_program(thinking).program == "right()" and prose_of(thinking, find_program(thinking)) == "Here:"
