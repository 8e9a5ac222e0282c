"""Every exception codeact-kernel raises on purpose, in one tree.

    CodeActError                  base: catch this to catch everything below
    ├── SandboxError              the sandbox could not run a program at all
    │   ├── SandboxUnavailable    the requested backend cannot work on this machine (carries the reason)
    │   └── GuestBuildError       the fuller guest component could not be built
    ├── ToolDefinitionError       a tool cannot be registered (bad name, unusable signature)
    ├── ConfigError               a setting has a value the kernel cannot use
    ├── DataError                 a value cannot cross as data, or a blob is not valid data (also a ValueError)
    └── ModelError                the model server gave no usable reply (other 4xx land here)
        ├── NoApiKey              no API key and the server is not on this machine
        ├── ModelUnreachable      connection refused, unknown host, connection lost
        ├── ModelAuthError        401/403: the key was refused
        ├── UnknownModel          404: the server has no model by that name
        ├── RateLimited           429 after every retry, or the quota is used up
        ├── ModelServerError      5xx after every retry, or an error sent mid-reply
        ├── ModelTimeout          the server sent nothing for `timeout` seconds
        ├── BadModelReply         the reply could not be parsed or was empty
        ├── ReplayMiss            replaying a transcript, this prompt was not recorded
        └── LocalModelError       a local model (local:PATH.gguf) could not be started

A program that fails *inside* the sandbox is not an exception on the host: it is a
`GuestError` in the run's result, because a failing program is an ordinary outcome.
Each message says how to fix the problem. Model errors never contain the API key: the
model client redacts it from anything a server sends back before building them.
"""

from __future__ import annotations


class CodeActError(Exception):
    """Base class of every error raised by codeact-kernel."""


class SandboxError(CodeActError):
    """The sandbox could not run a program at all."""


class SandboxUnavailable(SandboxError):
    """The requested backend cannot work here; `reason` says why (from the probe)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(
            f"The {backend} sandbox is not available here: {reason}. "
            "Use CODEACT_SANDBOX=auto (or wasmtime) to run programs in the wasmtime fallback."
        )


class GuestBuildError(SandboxError):
    """componentize-py failed to build the guest; the build log is attached."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        super().__init__(message + (f"\n--- build log ---\n{log}" if log else ""))


class ToolDefinitionError(CodeActError):
    """A function cannot be registered as a tool."""


class ConfigError(CodeActError):
    """A setting has a value the kernel cannot use; the message names the accepted ones."""


class DataError(CodeActError, ValueError):
    """A value cannot cross between the kernel and a program as data (`codeact_kernel.data`):
    the message names it (and the column or item) and why; or a blob is malformed or too big.

    Also a ValueError, which is what it is to a program (where data.py defines its own)."""


class ModelError(CodeActError):
    """The model server gave no usable reply; the message says what to do next."""


class NoApiKey(ModelError):
    """No key is configured and the server is not local, so a request could only fail with 401."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        super().__init__(
            f"No API key is configured for the model server at {base_url}. Set OPENAI_API_KEY. "
            "A local server (Ollama, vLLM, llama.cpp) needs none: point OPENAI_BASE_URL at it, "
            "e.g. http://127.0.0.1:11434/v1; a remote server that needs no key accepts any "
            "value, e.g. OPENAI_API_KEY=none."
        )


class ModelUnreachable(ModelError):
    """The server could not be reached (refused, unknown host) or dropped the connection."""

    def __init__(self, base_url: str, detail: str) -> None:
        self.base_url = base_url
        self.detail = detail
        super().__init__(
            f"Cannot reach the model server at {base_url}: {detail}. Check that the server is "
            "running and that OPENAI_BASE_URL (or `%model --base-url URL`) points at it."
        )


class ModelAuthError(ModelError):
    """401 or 403: the key was refused or may not use this model."""

    def __init__(self, base_url: str, status: int, detail: str) -> None:
        self.base_url = base_url
        self.status = status
        self.detail = detail
        what = "rejected the API key" if status == 401 else "refused access with this API key"
        super().__init__(
            f"The model server at {base_url} {what} ({status}: {detail}). "
            "Check OPENAI_API_KEY (and that the key may use this model)."
        )


class UnknownModel(ModelError):
    """404 for the model name; lists the server's models when it could tell us."""

    def __init__(self, model: str, base_url: str, available: tuple[str, ...] = ()) -> None:
        self.model = model
        self.base_url = base_url
        self.available = available
        listing = f" It offers: {', '.join(available)}." if available else ""
        super().__init__(
            f"The model server at {base_url} has no model named {model!r}.{listing} "
            "Choose another with `%model NAME`."
        )


class RateLimited(ModelError):
    """429 after every retry, or at once when the account's quota is used up (retrying cannot help)."""

    def __init__(self, detail: str, attempts: int, *, quota: bool = False) -> None:
        self.detail = detail
        self.attempts = attempts
        self.quota = quota
        if quota:
            advice = "The account's quota is used up: check the plan and billing, or use another key."
        else:
            advice = (
                f"Gave up after {attempts} attempt{'s' if attempts != 1 else ''}: "
                "wait a minute and run the cell again."
            )
        super().__init__(f"The model server is rate limiting requests (429: {detail}). {advice}")


class ModelServerError(ModelError):
    """The server failed (5xx) on every attempt, or reported an error in the middle of a reply."""

    def __init__(self, status: int | None, detail: str, attempts: int) -> None:
        self.status = status
        self.detail = detail
        self.attempts = attempts
        what = f"failed with status {status}" if status is not None else "reported an error mid-reply"
        super().__init__(
            f"The model server {what} ({detail}); {attempts} attempt{'s' if attempts != 1 else ''} "
            "made. This is usually temporary: run the cell again in a moment."
        )


class ModelTimeout(ModelError):
    """The server sent nothing for `timeout` seconds (the model's limit, not the sandbox's)."""

    def __init__(self, timeout: float, base_url: str) -> None:
        self.timeout = timeout
        self.base_url = base_url
        super().__init__(
            f"The model server at {base_url} sent nothing for {timeout:g} s. A slow or loading "
            f"model may need longer: raise the limit with `%model --timeout {max(2 * timeout, 120):g}` "
            "(CODEACT_TIMEOUT is the sandbox's limit, not the model's)."
        )


class BadModelReply(ModelError):
    """The reply could not be parsed, or held no text at all."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"The model server sent a reply that cannot be used: {detail}. Run the cell again; "
            "if it keeps happening the server may not be fully OpenAI-compatible."
        )


class ReplayMiss(ModelError):
    """Replaying a transcript, the prompt (at this point of the conversation) was not recorded."""


class LocalModelError(ModelError):
    """A local model (`local:PATH.gguf`) could not be started: no such file, not GGUF,
    xllamacpp missing, or llama.cpp failed to load it in time (the message quotes its log)."""
