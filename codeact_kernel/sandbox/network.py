"""Outgoing HTTP for programs: nothing unless the user allowed the domain (and method).

A rule is ``host``, ``host:port`` or a URL (``https://api.example.com/v1``): a URL also
fixes the scheme and a path prefix. The host makes the request itself (the guest has no
sockets), so the allow-list is enforced outside the program's reach, redirects included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 16 * 2**20
REQUEST_TIMEOUT = 30.0
DENIED = "denied: "


@dataclass(frozen=True)
class Rule:
    """One allow-list entry, parsed."""

    host: str
    port: int | None
    scheme: str | None
    path: str
    methods: frozenset[str] | None

    @classmethod
    def parse(cls, target: str, methods: frozenset[str] | None = None) -> Rule:
        text = target.strip()
        parts = urlsplit(text if "://" in text else f"//{text}")
        if not parts.hostname:
            raise ValueError(f"not a domain or URL: {target!r}")
        scheme = parts.scheme.lower() or None
        if scheme not in (None, "http", "https"):
            raise ValueError(f"only http and https can be allowed, not {scheme!r}")
        upper = frozenset(m.upper() for m in methods) if methods else None
        return cls(parts.hostname.lower(), parts.port, scheme, parts.path.rstrip("/"), upper)

    def allows(self, method: str, scheme: str, host: str, port: int, path: str) -> bool:
        if host != self.host or (self.scheme and scheme != self.scheme):
            return False
        if self.port is not None and port != self.port:
            return False
        if self.path and not (path == self.path or path.startswith(self.path + "/")):
            return False
        return self.methods is None or method in self.methods

    def urls(self) -> list[str]:
        """The rule as Hyperlight's `allow_domain` wants it: full URLs."""
        netloc = self.host + (f":{self.port}" if self.port else "")
        schemes = [self.scheme] if self.scheme else ["http", "https"]
        return [f"{s}://{netloc}{self.path}" for s in schemes]


def parse_rules(allowed: Mapping[str, frozenset[str] | None]) -> list[Rule]:
    return [Rule.parse(target, methods) for target, methods in allowed.items()]


class HttpBroker:
    """Host side of `http_get`/`http_post`: check the allow-list, then make the request."""

    def __init__(self, allowed: Mapping[str, frozenset[str] | None]) -> None:
        self._rules = parse_rules(allowed)
        self._opener: Any = None

    def check(self, method: str, url: str) -> str | None:
        """None if allowed, else the reason it is refused."""
        parts = urlsplit(url)
        scheme = (parts.scheme or "").lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return f"{DENIED}only http(s) URLs can be requested, not {url!r}"
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname.lower()
        if any(r.allows(method, scheme, host, port, parts.path or "/") for r in self._rules):
            return None
        if not self._rules:
            return f"{DENIED}network access is off; the user can allow a domain with %sandbox allow"
        return f"{DENIED}{method} {host}:{port} is not in the allowed domains"

    def __call__(self, payload: str) -> tuple[bool, str]:
        request = json.loads(payload)
        method = str(request.get("method", "GET")).upper()
        url = str(request.get("url", ""))
        refusal = self.check(method, url)
        if refusal:
            return False, refusal
        import urllib.error
        import urllib.request  # here, not at the top: it adds 15 ms to every kernel start

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None  # a redirect reaches the program as a 3xx; following it is its call

        body = request.get("body")
        data = body.encode() if isinstance(body, str) else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=dict(request.get("headers") or {}))
        if self._opener is None:  # built on first use: it costs a millisecond
            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
        try:
            with self._opener.open(req, timeout=REQUEST_TIMEOUT) as resp:
                status, headers, raw = resp.status, dict(resp.headers), resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, dict(exc.headers or {}), exc.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return False, f"failed: {method} {url}: {reason}"
        if len(raw) > MAX_RESPONSE_BYTES:
            return False, f"failed: the response from {url} is over {MAX_RESPONSE_BYTES:,} bytes"
        text = raw.decode("utf-8", errors="replace")
        return True, json.dumps({"status": status, "headers": headers, "body": text})
