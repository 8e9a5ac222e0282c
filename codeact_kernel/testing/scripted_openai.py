"""A scripted OpenAI-compatible server: real HTTP and SSE on 127.0.0.1, replies from a queue.

Tests of the model client and the kernel talk to it through the real `openai` client, so the
wire format, streaming, status codes and headers are exercised for real, offline and
deterministically. Each request to /v1/chat/completions takes the next scripted item; an empty
queue answers 500 "no scripted reply" so a test that expects fewer requests fails loudly.

In a test:

    with ScriptedOpenAI() as server:
        server.enqueue("```python\\nprint(1)\\n```", usage=(12, 5))
        ... ModelConfig(model="m", base_url=server.base_url) ...

As a process (for a kernel subprocess or a notebook run):

    python -m codeact_kernel.testing.scripted_openai --script replies.json --port-file port.txt

where replies.json is a list of items: a string (a text reply), {"text": ..., "chunk_size": ...,
"delay": ..., "usage": [in, out], "finish_reason": ...}, {"error": STATUS, "message": ...,
"headers": {...}, "code": ...}, {"hang": SECONDS}, {"drop": true} or {"raw": BODY, "status": ...}.
Only the standard library is used, so it runs from any interpreter.

Instead of a queue, `answer_with(oracle)` answers each request by reading it: `oracle(body)`
returns an `Answer` (text or tool calls, and the usage to report). The wiring benchmark's
ideal models are such oracles.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScriptedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the decoded JSON body (None for GET)


@dataclass(frozen=True)
class Answer:
    """What an oracle replies: text, or tool calls (`[{"id", "name", "arguments"}]`, the
    arguments a JSON string), with the usage the server reports."""

    text: str = ""
    tool_calls: tuple[dict[str, str], ...] = ()
    usage: tuple[int, int] | None = None


@dataclass
class _Item:
    kind: str  # text | error | hang | drop | raw
    text: str = ""
    tool_calls: tuple[dict[str, str], ...] = ()
    chunk_size: int = 8
    delay: float = 0.0
    usage: tuple[int, int] | None = None
    finish_reason: str = "stop"
    reset_after: int | None = None
    status: int = 200
    message: str = ""
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    raw: bytes = b""
    content_type: str = "application/json"


class ScriptedOpenAI:
    """The server; see the module docstring. Thread-safe: the handler runs on its own threads."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._queue: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[ScriptedRequest] = []
        self.known_models: set[str] | None = None  # set it to answer 404 for other names
        self.disconnects = 0  # streams the client closed before the end
        self._key: str | None = None
        self._oracle: Callable[[dict[str, Any]], Answer] | None = None

    # -- lifecycle

    def start(self) -> ScriptedOpenAI:
        if self._server is not None:
            return self
        server = http.server.ThreadingHTTPServer((self._host, self._port), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends hangs and slow streams at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedOpenAI is not started: call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pending(self) -> int:
        """Scripted items not yet consumed."""
        with self._lock:
            return len(self._queue)

    # -- scripting

    def enqueue(
        self,
        text: str,
        *,
        chunk_size: int = 8,
        delay: float = 0.0,
        usage: tuple[int, int] | None = None,
        finish_reason: str = "stop",
        reset_after: int | None = None,
    ) -> None:
        """A reply: streamed in `chunk_size`-character deltas `delay` seconds apart.

        `usage=None` counts words: the request's message contents in, `text` out.
        `reset_after=N` resets the connection after N deltas (a stream cut off mid-reply).
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._push(_Item("text", text=text, chunk_size=chunk_size, delay=delay, usage=usage,
                         finish_reason=finish_reason, reset_after=reset_after))

    def enqueue_error(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, code: str | None = None
    ) -> None:
        """An error with OpenAI's JSON body ({"error": {"message", "type", "param", "code"}})."""
        self._push(_Item("error", status=status, message=message, headers=dict(headers or {}), code=code))

    def enqueue_hang(self, seconds: float) -> None:
        """Say nothing for `seconds` (or until stop), then close the connection: a timeout."""
        self._push(_Item("hang", seconds=seconds))

    def enqueue_drop(self) -> None:
        """Close the connection without answering: a connection reset."""
        self._push(_Item("drop"))

    def enqueue_raw(
        self, body: str | bytes, *, status: int = 200, content_type: str = "application/json"
    ) -> None:
        """Send exactly `body`: for malformed replies."""
        raw = body.encode() if isinstance(body, str) else body
        self._push(_Item("raw", raw=raw, status=status, content_type=content_type))

    def answer_with(self, oracle: Callable[[dict[str, Any]], Answer] | None) -> None:
        """Answer every request the queue does not with `oracle(request body)`."""
        self._oracle = oracle

    def expect_key(self, key: str | None) -> None:
        """Answer 401 to any request whose Authorization is not `Bearer key` (None: accept any)."""
        self._key = key

    def reset(self) -> None:
        """Forget the script and the requests received: for a server shared by several tests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def _push(self, item: _Item) -> None:
        with self._lock:
            self._queue.append(item)

    def _pop(self) -> _Item | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None


def _error_body(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def _words(messages: Iterable[Any]) -> int:
    total = 0
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):  # content parts
            total += sum(len(str(p.get("text", "")).split()) for p in content if isinstance(p, dict))
    return total


def _make_handler(owner: ScriptedOpenAI) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "ScriptedOpenAI/1.0"

        def log_message(self, *args: object) -> None:
            pass

        # -- plumbing

        def _record(self, body: Any) -> None:
            with owner._lock:
                owner.requests.append(
                    ScriptedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )

        def _send(self, status: int, body: bytes, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if owner._key is None or self.headers.get("Authorization") == f"Bearer {owner._key}":
                return True
            got = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            shown = f"{got[:3]}***{got[-4:]}" if len(got) > 8 else "***"  # masked, as OpenAI does
            self._send(401, _error_body(f"Incorrect API key provided: {shown}.", "invalid_request_error",
                                        "invalid_api_key"))
            return False

        # -- routes

        def do_GET(self) -> None:  # noqa: N802
            self._record(None)
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/v1/models":
                self._send(404, _error_body(f"Unknown path {self.path}", "invalid_request_error", None))
                return
            names = sorted(owner.known_models) if owner.known_models is not None else ["scripted-model"]
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in names]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            self._record(body)
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, _error_body(f"Unknown path {self.path}", "invalid_request_error", None))
                return
            if not isinstance(body, dict):
                self._send(400, _error_body("The request body is not a JSON object.", "invalid_request_error", None))
                return
            model = str(body.get("model", ""))
            if owner.known_models is not None and model not in owner.known_models:
                self._send(404, _error_body(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error", "model_not_found"))
                return
            item = owner._pop()
            if item is None and owner._oracle is not None:
                answer = owner._oracle(body)
                finish = "tool_calls" if answer.tool_calls else "stop"
                item = _Item("text", text=answer.text, tool_calls=answer.tool_calls, usage=answer.usage,
                             finish_reason=finish, chunk_size=max(len(answer.text), 1))
            if item is None:
                count = len(owner.requests)
                self._send(500, _error_body(
                    f"scripted server: no scripted reply left for request {count}", "server_error", None))
                return
            getattr(self, f"_answer_{item.kind}")(item, body, model)

        # -- answers

        def _answer_error(self, item: _Item, body: dict, model: str) -> None:
            type_ = "server_error" if item.status >= 500 else "invalid_request_error"
            if item.status == 429:
                type_ = "rate_limit_exceeded" if item.code is None else item.code
            self._send(item.status, _error_body(item.message, type_, item.code), headers=item.headers)

        def _answer_hang(self, item: _Item, body: dict, model: str) -> None:
            owner._stopping.wait(item.seconds)
            self.close_connection = True

        def _answer_drop(self, item: _Item, body: dict, model: str) -> None:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

        def _answer_raw(self, item: _Item, body: dict, model: str) -> None:
            self._send(item.status, item.raw, content_type=item.content_type)

        def _answer_text(self, item: _Item, body: dict, model: str) -> None:
            tokens_in, tokens_out = item.usage or (_words(body.get("messages", [])), len(item.text.split()))
            usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                     "total_tokens": tokens_in + tokens_out}
            ident, created = f"chatcmpl-scripted-{len(owner.requests)}", int(time.time())
            if not body.get("stream"):
                if item.delay:
                    owner._stopping.wait(item.delay)
                message: dict[str, Any] = {"role": "assistant",
                                           "content": (item.text or None) if item.tool_calls else item.text}
                if item.tool_calls:
                    message["tool_calls"] = [
                        {"id": call["id"], "type": "function",
                         "function": {"name": call["name"], "arguments": call["arguments"]}}
                        for call in item.tool_calls]
                reply = {"id": ident, "object": "chat.completion", "created": created, "model": model,
                         "choices": [{"index": 0, "message": message,
                                      "finish_reason": item.finish_reason, "logprobs": None}],
                         "usage": usage}
                self._send(200, json.dumps(reply).encode())
                return
            with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            def chunk(delta: dict, finish: str | None = None, choices: bool = True, **extra: Any) -> dict:
                data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
                        if choices else []}
                if with_usage:
                    data["usage"] = None
                data.update(extra)
                return data

            pieces = [item.text[i:i + item.chunk_size] for i in range(0, len(item.text), item.chunk_size)]
            events = [chunk({"role": "assistant", "content": ""})]
            events += [chunk({"content": piece}) for piece in pieces]
            events.append(chunk({}, item.finish_reason))
            if with_usage:
                events.append(chunk({}, choices=False, usage=usage))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.close_connection = True  # HTTP/1.0: the end of the body is the end of the connection
            try:
                for n, event in enumerate(events):
                    if item.delay and 1 < n <= len(pieces) and owner._stopping.wait(item.delay):
                        return
                    if item.reset_after is not None and n == item.reset_after + 1:
                        # SO_LINGER 0: close with a TCP reset, as a crashed proxy would. A reset
                        # discards what the client has not read yet, so give it time to read first.
                        owner._stopping.wait(0.2)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        return
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                with owner._lock:
                    owner.disconnects += 1

    return Handler


def _items_from_script(script: list[Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for entry in script:
        if isinstance(entry, str):
            yield "enqueue", {"text": entry}
        elif "text" in entry:
            args = dict(entry)
            if "usage" in args and args["usage"] is not None:
                args["usage"] = tuple(args["usage"])
            yield "enqueue", args
        elif "error" in entry:
            yield "enqueue_error", {"status": entry["error"], "message": entry.get("message", "scripted error"),
                                    "headers": entry.get("headers"), "code": entry.get("code")}
        elif "hang" in entry:
            yield "enqueue_hang", {"seconds": entry["hang"]}
        elif entry.get("drop"):
            yield "enqueue_drop", {}
        elif "raw" in entry:
            yield "enqueue_raw", {"body": entry["raw"], "status": entry.get("status", 200),
                                  "content_type": entry.get("content_type", "application/json")}
        else:
            raise ValueError(f"unknown script entry: {entry!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--script", required=True, help="JSON file: a list of replies (see the module docstring)")
    parser.add_argument("--port-file", required=True, help="the port is written here once the server listens")
    parser.add_argument("--port", type=int, default=0, help="default: an ephemeral port")
    parser.add_argument("--key", help="answer 401 unless requests carry this API key")
    parser.add_argument("--models", help="comma-separated known model names (others get 404)")
    parser.add_argument("--requests-file", help="append each received request here as a JSON line")
    args = parser.parse_args(argv)

    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    if not isinstance(script, list):
        parser.error("--script must hold a JSON list of replies")
    server = ScriptedOpenAI(port=args.port)
    for method, kwargs in _items_from_script(script):
        getattr(server, method)(**kwargs)
    server.expect_key(args.key)
    if args.models:
        server.known_models = {m.strip() for m in args.models.split(",") if m.strip()}

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.port))
    os.replace(tmp, args.port_file)  # readers never see a half-written port
    print(f"scripted OpenAI server at {server.base_url} with {server.pending} replies", flush=True)
    written = 0

    def flush_requests() -> None:
        nonlocal written
        if args.requests_file and len(server.requests) > written:
            with open(args.requests_file, "a", encoding="utf-8") as f:
                for request in server.requests[written:]:
                    f.write(json.dumps(request.__dict__) + "\n")
            written = len(server.requests)

    while not done.wait(0.05):
        flush_requests()
    server.stop()
    flush_requests()
    return 0


if __name__ == "__main__":
    sys.exit(main())
