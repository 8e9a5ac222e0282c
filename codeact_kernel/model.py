"""Talking to the model: one request per prompt cell, through the `openai` client.

Any OpenAI-compatible server works (OpenAI, Azure's v1 endpoint, Ollama, vLLM, LM Studio,
llama.cpp), so everything goes through `openai.AsyncOpenAI` with a `base_url`. The client's own
retries are off: we retry here so the kernel can say "retrying in 1 s (429 rate limited)" and so
every failure becomes one of our `ModelError`s, mapped in `_map_error` and nowhere else, with a
message that says what to do and never contains the API key.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlsplit, urlunsplit

import openai

if TYPE_CHECKING:
    from codeact_kernel.sandbox.base import Grants

from codeact_kernel.clipping import clip
from codeact_kernel.config import DEFAULT_MODEL
from codeact_kernel.markdown import code_block
from codeact_kernel.protocol import Outcome
from codeact_kernel.errors import (BadModelReply, ModelAuthError, ModelError, ModelServerError,
                                   ModelTimeout, ModelUnreachable, NoApiKey, RateLimited, UnknownModel)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client insists on having one.
LOCAL_DUMMY_KEY = "no-key-needed-for-a-local-server"
BACKOFF_BASE = 0.5  # first retry after 0.5 s, then 1 s, 2 s, ...
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 10.0  # a server asking for longer still gets retried after 10 s


@dataclass(frozen=True, repr=False)
class ModelConfig:
    """Which model to ask and how patiently. Immutable: change it with `dataclasses.replace`."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    temperature: float | None = 0.0

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ModelConfig.model must name a model, e.g. 'gpt-4o-mini'")
        if self.timeout <= 0:
            raise ValueError(f"ModelConfig.timeout must be positive, not {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"ModelConfig.max_retries must be 0 or more, not {self.max_retries}")

    def __repr__(self) -> str:
        # Configs end up in logs, tracebacks and notebook outputs: the key must not.
        url = _display_url(self.base_url, self.api_key) if self.base_url else None
        return (f"ModelConfig(model={self.model!r}, base_url={url!r}, "
                f"api_key={repr('***') if self.api_key else None}, timeout={self.timeout!r}, "
                f"max_retries={self.max_retries!r}, temperature={self.temperature!r})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelConfig:
        """The configuration the usual variables describe; empty values count as unset."""
        env = os.environ if environ is None else environ
        return cls(
            model=env.get("CODEACT_MODEL") or DEFAULT_MODEL,
            base_url=env.get("OPENAI_BASE_URL") or None,
            api_key=env.get("OPENAI_API_KEY") or None,
        )


@dataclass
class Reply:
    """What the model said, the program in it (None: show as Markdown, run nothing), and its cost.

    `tokens_in`/`tokens_out` are the server's own `usage` counts (0 when it sent none);
    `elapsed` is the wall time the user waited, retries included; `attempts` counts requests.
    `finish_reason` "length" means the reply (and maybe its program) was cut off.
    """

    text: str
    program: str | None
    tokens_in: int
    tokens_out: int
    elapsed: float
    model: str
    attempts: int
    finish_reason: str | None = None


@dataclass(frozen=True)
class Turn:
    """One earlier prompt cell, as the model should remember it.

    `program` is what ran: for an "edited" turn, the user's version (the model's is in `reply`).
    """

    prompt: str
    reply: str
    program: str | None
    output: str
    error: str | None
    decision: Outcome
    reason: str | None = None  # why the program did not run: the person's words, or the policy
    denied: tuple[str, ...] = ()
    """Calls the user denied while it ran (tools marked approval='each-call'), each with why."""

    def __post_init__(self) -> None:
        if self.decision not in get_args(Outcome):
            raise ValueError(f"Turn.decision must be one of {', '.join(get_args(Outcome))}, not {self.decision!r}")


# --------------------------------------------------------------------------- the request


class _Failed(Exception):
    """A server-side failure of one attempt. Only calls into the client are wrapped (by `_guard`),
    so a bug in a callback, even a ValueError, reaches the caller unchanged."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


async def _guard(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (openai.OpenAIError, ValueError) as exc:  # a broken server's JSON: ValueError
        raise _Failed(exc) from exc


@dataclass
class _Attempt:
    parts: list[str]
    tokens_in: int = 0
    tokens_out: int = 0
    model: str | None = None
    finish_reason: str | None = None
    streamed: bool = False  # a token reached on_token: a retry would show it twice


async def complete(
    config: ModelConfig,
    messages: list[dict[str, Any]],
    *,
    on_token: Callable[[str], object] | None = None,
    on_retry: Callable[[int, float, str], object] | None = None,
    stream: bool = True,
) -> Reply:
    """Ask the model once; retry 429, 5xx and dropped connections with bounded backoff.

    `on_token(delta)` gets the text as it arrives (once, whole, when `stream=False`).
    `on_retry(attempt, delay, reason)` is called before the `attempt`-th retry sleeps `delay`
    seconds. A failure after text has reached `on_token` is not retried, because the user has
    already seen that text. Cancelling the task closes the stream and the client at once.
    Raises a `ModelError` subclass for every way the server can fail.
    """
    base_url = config.base_url or DEFAULT_BASE_URL
    client = _client(base_url, _api_key_for(config, base_url), config.timeout)
    started = time.monotonic()
    attempts = retries = 0
    include_usage = True
    try:
        while True:
            attempts += 1
            attempt = _Attempt(parts=[])
            try:
                await _request(client, config, messages, attempt, stream, include_usage, on_token)
            except _Failed as failed:
                exc = failed.exc
                if stream and include_usage and not attempt.streamed and _rejects_stream_options(exc):
                    include_usage = False  # an older server: ask again without usage counts
                    continue
                reason = _retry_reason(exc)
                if reason is None or attempt.streamed or retries >= config.max_retries:
                    available = await _model_names(client) if _is_unknown_model(exc) else ()
                    raise _map_error(exc, config, base_url, attempts, available) from exc
                retries += 1
                delay = _backoff(retries, exc)
                if on_retry is not None:
                    on_retry(retries, delay, reason)
                await asyncio.sleep(delay)
                continue
            text = "".join(attempt.parts)
            if not text.strip() and attempt.finish_reason == "tool_calls":
                raise BadModelReply("the model answered with a tool call (the tools API) instead of text; "
                                    "this kernel needs the program as text, in a ```python block")
            if not text.strip():
                raise BadModelReply(f"the reply had no text (finish_reason={attempt.finish_reason})")
            return Reply(text=text, program=extract_program(text), tokens_in=attempt.tokens_in,
                         tokens_out=attempt.tokens_out, elapsed=time.monotonic() - started,
                         model=attempt.model or config.model, attempts=attempts,
                         finish_reason=attempt.finish_reason)
    except asyncio.CancelledError:
        _forget_client(client)
        await client.close()
        raise


# A client costs ~25 ms to build (SSL context, connection pool) and a new TLS handshake per
# request without one: keep a few, per event loop, since their connections belong to it.
_CLIENTS: dict[tuple[int, str, str, float], tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI]] = {}
_MAX_CLIENTS = 4


def _client(base_url: str, api_key: str, timeout: float) -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    key = (id(loop), base_url, api_key, timeout)
    entry = _CLIENTS.get(key)
    if entry is not None and entry[0] is loop and not entry[1].is_closed():
        return entry[1]
    while len(_CLIENTS) >= _MAX_CLIENTS:
        _CLIENTS.pop(next(iter(_CLIENTS)))  # the oldest; its connections close when collected
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
    _CLIENTS[key] = (loop, client)
    return client


def _forget_client(client: openai.AsyncOpenAI) -> None:
    for key, (_loop, value) in list(_CLIENTS.items()):
        if value is client:
            del _CLIENTS[key]


async def _request(client: openai.AsyncOpenAI, config: ModelConfig, messages: list[dict[str, Any]],
                   attempt: _Attempt, stream: bool, include_usage: bool,
                   on_token: Callable[[str], object] | None) -> None:
    kwargs: dict[str, Any] = {"model": config.model, "messages": messages}
    if config.temperature is not None:  # some reasoning models reject any temperature
        kwargs["temperature"] = config.temperature
    if not stream:
        response = await _guard(client.chat.completions.create(**kwargs))
        choices = getattr(response, "choices", None)
        if not choices:
            raise _Failed(ValueError("no choices in the reply"))
        _count(attempt, response)
        attempt.finish_reason = getattr(choices[0], "finish_reason", None)
        text = getattr(getattr(choices[0], "message", None), "content", None) or ""
        attempt.parts.append(text)
        if text and on_token is not None:
            on_token(text)
        return
    if include_usage:
        kwargs["stream_options"] = {"include_usage": True}
    chunks = await _guard(client.chat.completions.create(stream=True, **kwargs))
    try:
        while (chunk := await _guard(anext(chunks, None))) is not None:
            _count(attempt, chunk)
            for choice in getattr(chunk, "choices", None) or ():
                attempt.finish_reason = getattr(choice, "finish_reason", None) or attempt.finish_reason
                delta = getattr(getattr(choice, "delta", None), "content", None)
                if delta:
                    attempt.parts.append(delta)
                    attempt.streamed = True
                    if on_token is not None:
                        on_token(delta)
    finally:
        await chunks.close()


def _count(attempt: _Attempt, payload: object) -> None:
    attempt.model = getattr(payload, "model", None) or attempt.model
    usage = getattr(payload, "usage", None)
    if usage is not None:
        attempt.tokens_in = getattr(usage, "prompt_tokens", None) or 0
        attempt.tokens_out = getattr(usage, "completion_tokens", None) or 0


async def _model_names(client: openai.AsyncOpenAI) -> tuple[str, ...]:
    """The server's models, to name in an UnknownModel error; best effort, never raises."""
    try:
        page = await asyncio.wait_for(client.models.list(), timeout=5)
        return tuple(sorted(str(m.id) for m in page.data))[:20]
    except Exception:  # noqa: BLE001 - only decorates an error already being raised
        return ()


# --------------------------------------------------------------------------- failures


def _api_key_for(config: ModelConfig, base_url: str) -> str:
    if config.api_key:
        return config.api_key
    host = (urlsplit(base_url).hostname or "").lower()
    if host in {"localhost", "::1", "0.0.0.0"} or host.startswith("127.") or host.endswith(".localhost"):
        return LOCAL_DUMMY_KEY
    raise NoApiKey(_display_url(base_url, None))


def _retry_reason(exc: BaseException) -> str | None:
    """Why a retry may help ("429 rate limited"), or None when it cannot."""
    if isinstance(exc, openai.RateLimitError):
        return None if exc.code == "insufficient_quota" else "429 rate limited"
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return f"{exc.status_code} server error"
    if isinstance(exc, openai.APITimeoutError):
        return None  # waiting the whole timeout again would double a long wait
    if isinstance(exc, openai.APIConnectionError) and _connect_failure(exc) is None:
        return "connection lost"
    return None


def _backoff(retry: int, exc: BaseException) -> float:
    """Retry-After (or retry-after-ms) when the server sent one, capped; else exponential."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if "retry-after-ms" in headers:
            return min(max(float(headers["retry-after-ms"]) / 1000, 0.0), RETRY_AFTER_CAP)
        if "retry-after" in headers:
            return min(max(float(headers["retry-after"]), 0.0), RETRY_AFTER_CAP)
    except ValueError:
        pass  # an HTTP date, or garbage: the usual backoff will do
    return min(BACKOFF_BASE * 2 ** (retry - 1), BACKOFF_CAP)


def _connect_failure(exc: BaseException) -> str | None:
    """Why no connection was made ('connection refused', 'unknown host'), or None if one was."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:  # bounded: a chain could loop
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "unknown host"
    connect = next((e for e in chain if type(e).__name__ == "ConnectError"), None)  # httpx(2)
    if connect is None:
        return None
    return "connection refused" if "refused" in str(connect).lower() else f"could not connect ({connect})"


def _rejects_stream_options(exc: BaseException) -> bool:
    return isinstance(exc, openai.BadRequestError) and "stream_options" in str(exc)


def _is_unknown_model(exc: BaseException) -> bool:
    return isinstance(exc, openai.NotFoundError) and (
        exc.code == "model_not_found" or "model" in _server_message(exc).lower()
    )


def _server_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body.strip():
        return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", body)).strip()  # an HTML error page
    return str(getattr(exc, "message", "") or exc)


def _map_error(exc: BaseException, config: ModelConfig, base_url: str, attempts: int,
               available: tuple[str, ...] = ()) -> ModelError:
    """The one place where client and server failures become our errors (the key redacted)."""
    url = _display_url(base_url, config.api_key)
    detail = _redact(_server_message(exc), config.api_key)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout(config.timeout, url)
    if isinstance(exc, openai.APIConnectionError):
        why = _connect_failure(exc) or "the connection was lost before the reply was complete"
        return ModelUnreachable(url, _redact(why, config.api_key))
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ModelAuthError(url, status or 401, detail)
    if isinstance(exc, openai.NotFoundError) and _is_unknown_model(exc):
        return UnknownModel(config.model, url, available)
    if isinstance(exc, openai.NotFoundError):
        return ModelError(
            f"The model server at {url} answered 404 ({detail}). Check the base URL (`%model --base-url`): "
            "OpenAI-compatible servers usually serve under a path ending in /v1."
        )
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(detail, attempts, quota=exc.code == "insufficient_quota")
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return ModelServerError(exc.status_code, detail, attempts)
    if isinstance(exc, openai.APIStatusError):
        if exc.code == "context_length_exceeded" or "context length" in detail.lower():
            return ModelError(
                f"The conversation is too long for {config.model} ({detail}). Restart the kernel "
                "to start a fresh conversation, or choose a model with a longer context (`%model NAME`)."
            )
        return ModelError(
            f"The model server at {url} rejected the request ({exc.status_code}: {detail}). "
            "Check the model name and settings (`%model`)."
        )
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
        return BadModelReply(detail or type(exc).__name__)
    if isinstance(exc, openai.APIError):  # an error event sent in the middle of a stream
        return ModelServerError(None, detail, attempts)
    return ModelError(f"The model request failed: {detail}")


_SECRET_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}|(?<=Bearer )\S+", re.I)


def _redact(text: str, api_key: str | None) -> str:
    """Remove the key and anything shaped like one; shorten what a server rambles."""
    if api_key and len(api_key) >= 6:  # shorter "keys" are placeholders, and would shred the text
        text = text.replace(api_key, "***")
    text = _SECRET_LIKE.sub("***", text)
    return text if len(text) <= 400 else text[:400] + "..."


def _display_url(url: str | None, api_key: str | None) -> str:
    """The URL fit for a message: no user:password part, no key."""
    parts = urlsplit(url or DEFAULT_BASE_URL)
    parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return _redact(urlunsplit(parts), api_key)


# --------------------------------------------------------------------------- the program


_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", "pycon", "ipython", "ipython3"})
_THINKING = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.S | re.I)
_DOCTEST = re.compile(r"^(>>>|\.\.\.)( |$)")
_IPYTHON = re.compile(r"^(In \[\d*\]:|\s*\.\.\.:)( |$)")


@dataclass(frozen=True)
class Found:
    """The program in a reply, and where its fenced block is: the reply's prose is the rest."""

    program: str
    start: int
    end: int
    """The block's span in the reply's text: its opening fence to past its closing fence."""


def find_program(text: str) -> Found | None:
    """The program in a reply: the first ```python block, or a lone untagged block; else None.

    None means the reply is prose: the kernel shows it and runs nothing. Reasoning
    (`<think>`) is ignored, a leading `%%python` line and `>>>`/`In [1]:` prompts are removed,
    and a block cut off before its closing fence still counts (check `Reply.finish_reason`).
    """
    blocks = _fenced_blocks(_THINKING.sub(_blank, text))
    chosen = next((block for block in blocks if block[0] in _PYTHON_TAGS), None)
    if chosen is None and len(blocks) == 1 and blocks[0][0] == "":
        chosen = blocks[0]
    if chosen is None:
        return None
    program = _strip_markers(chosen[1]).strip("\n").rstrip()
    return Found(program, chosen[2], chosen[3]) if program else None


def extract_program(text: str) -> str | None:
    """The program `find_program` finds, or None."""
    found = find_program(text)
    return found.program if found is not None else None


def prose_of(text: str, found: Found | None = None) -> str:
    """What a reply says besides its program (and its reasoning): shown on its own."""
    if found is not None:
        text = text[:found.start] + text[found.end:]
    return _THINKING.sub("", text).strip()


def _blank(match: re.Match[str]) -> str:
    """A reasoning block with everything but its line breaks blanked: offsets stay true."""
    return re.sub(r"[^\r\n]", " ", match.group())


_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")


def _fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """(tag, body, start, end) of every fenced block, by CommonMark's rules for fences."""
    lines = [(m.group(1), m.start(), m.end()) for m in _LINE.finditer(text) if m.end() > m.start() or m.start() < len(text)]
    blocks: list[tuple[str, str, int, int]] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i][0])
        start = lines[i][1]
        i += 1
        if not opening:
            continue
        fence, info = opening["fence"], opening["info"].strip()
        tag = info.split()[0].strip("{}.").lower() if info else ""
        body: list[str] = []
        end = len(text)
        while i < len(lines):
            line = lines[i][0].strip()
            i += 1
            if len(line) >= len(fence) and set(line) == {fence[0]}:
                end = lines[i - 1][2]
                break
            body.append(lines[i - 1][0])
        blocks.append((tag, textwrap.dedent("\n".join(body)), start, end))
    return blocks


def _strip_markers(program: str) -> str:
    lines = program.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and re.match(r"^\s*%%python3?\b", lines[0]):
        lines.pop(0)
    first = next((line for line in lines if line.strip()), "")
    for marker in (_DOCTEST, _IPYTHON):
        if marker.match(first):
            # A transcript: keep the prompted lines without their prompts, drop printed output.
            kept = [marker.sub("", line, count=1) for line in lines if marker.match(line)]
            return textwrap.dedent("\n".join(kept))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the conversation


SCIENCE_PACKAGES = ("numpy", "pandas", "scipy", "sklearn", "statsmodels", "matplotlib")


def codeact_instructions(grants: Grants | None = None, *, science: bool = False) -> str:
    """The CodeAct system instructions (prompts/codeact.md), telling the model of the files
    and network this run grants (None: as if all were), of the packages a program may import
    (`science`: the scientific guest is there for programs that import them), and of nothing
    it cannot use. The values a program starts with change from cell to cell, so they go with
    the request (build_messages), keeping these bytes the same for providers' prefix caches."""
    lines, files = [], []
    if grants is None or grants.input_dir is not None:
        files.append("read from /input")
    if grants is None or grants.output:
        files.append("write to /output (the user sees those files)")
    if files:
        lines.append(f"- Files: {'; '.join(files)}.")
    if grants is None or grants.allowed_domains:
        domains = "allowed domains" if grants is None else ", ".join(sorted(grants.allowed_domains))
        lines.append("- `http_get(url, headers=None)` and `http_post(url, body, headers=None)` return "
                     f"`{{status, headers, body}}` and work only for {domains}.")
    if science:
        lines.append("- Open matplotlib figures are shown; `set_result` takes a DataFrame too.")
    lines.append("- Top-level data variables (not functions, classes, modules) stay defined for the next program.")
    packages = f"; {', '.join(SCIENCE_PACKAGES)}"
    return (_instructions_template().replace("{grants}", "".join(line + "\n" for line in lines))
            .replace("{science}", packages if science else ""))


@functools.cache
def _instructions_template() -> str:
    return (resources.files("codeact_kernel") / "prompts" / "codeact.md").read_text(encoding="utf-8")


def build_messages(instructions: str, tools: str, history: Sequence[Turn], prompt: str, *,
                   max_output_chars: int = 2000, left_out: int = 0, data: str = "") -> list[dict[str, str]]:
    """The chat for a new prompt: system, then user/assistant pairs, then the new prompt.

    The system message (instructions, then tools) comes first and changes only when they
    do, so providers' prefix caching applies. What happened to each earlier program (its
    output, error, rejection or edit) opens the next user message rather than being a
    message of its own: roles then strictly alternate, which several local chat templates
    (Mistral, Gemma) require. Long output and errors keep their head and tail; `left_out`
    earlier turns (see history.py) are said to exist, so the model knows it has not seen them.
    `data` (workspace.py's lines: the values the next program starts with) goes with the new
    prompt only: it is true of this cell, and the system message stays byte-stable.
    """
    system = instructions.strip()
    if tools.strip():
        system += "\n\n## Tools\n\n" + tools.strip()
    messages = [{"role": "system", "content": system}]
    outcome: str | None = None
    if left_out:
        outcome = (f"({left_out} earlier turn{'s' if left_out != 1 else ''} of this notebook "
                   "left out to keep the request small.)")
    for turn in history:
        messages.append({"role": "user", "content": _with_outcome(outcome, turn.prompt)})
        reply = _THINKING.sub("", turn.reply).strip() or "(no reply)"
        messages.append({"role": "assistant", "content": reply})
        outcome = _outcome(turn, max_output_chars)
    if data.strip():
        values = ("These values are already defined when your program starts (use them by name; do not "
                  "load or rebuild them):\n" + "\n".join("  " + line for line in data.splitlines()))
        outcome = values if outcome is None else f"{outcome}\n\n{values}"
    messages.append({"role": "user", "content": _with_outcome(outcome, prompt)})
    return messages


def _with_outcome(outcome: str | None, prompt: str) -> str:
    return prompt if outcome is None else f"{outcome}\n\nNext request:\n{prompt}"


def _outcome(turn: Turn, limit: int) -> str | None:
    """What happened to the program in `turn`, for the model; None if nothing was proposed."""
    if turn.decision in ("rejected", "rejected-by-policy"):
        reason = turn.reason or "no reason given"
        return f"The user rejected your previous program, so it did not run: {reason}."
    if turn.decision == "no-code" or turn.program is None:
        return None
    told = "Your previous program"
    if turn.decision == "edited":
        # Fenced as the user sees it (markdown.code_block): no line of what ran, printed or
        # raised can close the block it is quoted in and pass for the conversation's own text.
        told = ("The user edited your previous program before running it; what ran was:\n"
                + code_block(turn.program, "python") + "\nIt")
    output = clip(turn.output.rstrip("\n"), limit)
    told += " printed:\n" + code_block(output, "text") if output.strip() else " printed nothing."
    if turn.error:
        told += "\nIt failed with:\n" + code_block(clip(turn.error.rstrip("\n"), limit), "text")
    if turn.denied:
        told += "\nThe user denied these tool calls while it ran:\n" + "\n".join(f"- {d}" for d in turn.denied)
    return told
