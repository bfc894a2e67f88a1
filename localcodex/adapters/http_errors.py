"""Limits and typed failures of an HTTP call to an OpenAI-compatible server (see `openai_compat`): the per-call
timeouts, and the one error a user can act on for each transport failure (refused, DNS, TLS, timeout, reset,
an HTTP error status, a malformed answer, a missing API key variable).
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.errors import ExitCode, LocalcodexError, OllamaUnavailable, ServerError, StepTimeout, UsageError

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Timeouts:
    """Per-call limits, in seconds: `connect` to open the connection, `read` the longest silence between two
    chunks, `total` the deadline for the whole call including the streamed body."""

    connect: float = 5.0
    read: float = 60.0
    total: float = 120.0
    limit: float | None = None  # the caller's own limit to name in messages, when this call gets what is left of it

    @property
    def named(self) -> str:
        """The deadline as people should read it (`60 s`, not `59.9731 s`)."""
        return f"{self.limit if self.limit is not None else self.total:.3g} s"

    def httpx(self, remaining: float) -> httpx.Timeout:
        import httpx

        limit = max(0.001, remaining)
        return httpx.Timeout(
            connect=min(self.connect, limit), read=min(self.read, limit), write=min(self.read, limit), pool=limit
        )


# -- errors -----------------------------------------------------------------------------------------------------


class EndpointError(LocalcodexError):
    """A failure talking to an OpenAI-compatible endpoint. `kind` is stable for scripts and tests."""

    kind = "error"

    def __init__(self, message: str, hint: str | None = None, *, url: str, **kw: Any) -> None:
        super().__init__(message, hint, **kw)
        self.url = url


class Unreachable(EndpointError, OllamaUnavailable):
    code = "unreachable"
    kind = "unreachable"


class ConnectionRefused(Unreachable):
    kind = "refused"


class DNSFailure(Unreachable):
    kind = "dns"


class TLSFailure(Unreachable):
    kind = "tls"


class BadURL(EndpointError, UsageError):
    code = "bad_url"
    kind = "bad_url"


class EndpointTimeout(EndpointError, StepTimeout):
    kind = "timeout"

    def __init__(self, message: str, hint: str | None = None, *, url: str, phase: str, seconds: float) -> None:
        super().__init__(message, hint, url=url)
        self.phase = phase  # "connect", "read" (silence) or "deadline" (the whole call)
        self.seconds = seconds


class ConnectionReset(EndpointError, ServerError):
    kind = "reset"


class MalformedAnswer(EndpointError, ServerError):
    kind = "malformed"


class StreamCut(EndpointError, ServerError):
    """A stream ended without its terminator (`data: [DONE]`, `response.completed`): a failed answer.

    Ollama does not forward an error once a `/v1` stream has started: chat completions get one empty chunk,
    Responses nothing more, then the connection ends (server/routes.go ~2120, middleware/openai.go ~80-131)."""

    kind = "stream_cut"

    def __init__(self, url: str, terminator: str) -> None:
        super().__init__(
            f"{url}: the stream ended without {terminator}: the server failed in the middle of the answer "
            "(Ollama does not forward the error once a /v1 stream has started)",
            "check the server's log (out of memory? runner crashed?) and retry", url=url)


class MissingEnvKey(LocalcodexError):
    """The `env_key` variable is unset or blank: Codex refuses to send a request, and so do we."""

    code = "missing_env_key"
    exit_code = ExitCode.CONFIG

    def __init__(self, var: str) -> None:
        super().__init__(
            f"Missing environment variable: `{var}`.",
            f"export {var}=<your key> in the shell that runs Codex (the key is never printed or stored)",
        )
        self.var = var


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host_port(url: str) -> str:
    """`host:port` of a URL, the port made explicit (IPv6 hosts keep their brackets).

    >>> _host_port("http://[::1]/v1"), _host_port("https://gw.example/v1")
    ('[::1]:80', 'gw.example:443')
    """
    split = urllib.parse.urlsplit(url)
    default = 443 if split.scheme == "https" else 80
    try:
        port = split.port or default
    except ValueError:
        port = default
    host = split.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tls_hint(reason: str) -> str:
    if "WRONG_VERSION_NUMBER" in reason or "record layer" in reason or "HTTP_REQUEST" in reason:
        return "this port speaks plain HTTP: use http:// instead of https://"
    if "CERTIFICATE" in reason.upper():
        return "the certificate is not trusted here: point SSL_CERT_FILE at the CA that signed it"
    return "check that the server really serves HTTPS on this port"


def classify(exc: Exception, url: str, timeouts: Timeouts, *, streaming: bool = False) -> EndpointError:
    """Turn an httpx/OS exception into the one typed error a user can act on."""
    import httpx

    where = _host_port(url)
    causes = list(_chain(exc))
    if isinstance(exc, httpx.UnsupportedProtocol):
        return BadURL(
            f"{url} is not a URL Codex can use: it needs http:// or https://",
            "start the URL with http:// (or https:// when the server has a certificate)",
            url=url,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return EndpointTimeout(
            f"no answer from {where} within {timeouts.connect:.3g} s while connecting to {url}",
            "check the host and port, and that no firewall drops the connection",
            url=url, phase="connect", seconds=timeouts.connect,
        )
    if isinstance(exc, httpx.TimeoutException):
        silence = f"{timeouts.read:.3g} s" if timeouts.limit is None else f"the {timeouts.named} time limit"
        return EndpointTimeout(
            f"{url} stopped answering: nothing within {silence}",
            "the server or model may be stuck or very slow: check the server log, or raise --timeout",
            url=url, phase="read", seconds=timeouts.read,
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        host = urllib.parse.urlsplit(url).hostname or "?"
        return DNSFailure(
            f"cannot resolve the host name {host!r} of {url} (DNS failure)",
            "check the spelling of the host in the URL, or use an IP address",
            url=url,
        )
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        reason = str(tls)
        return TLSFailure(f"TLS handshake with {url} failed: {reason}", _tls_hint(reason), url=url)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return ConnectionRefused(
            f"connection refused at {url}: nothing listens on {where}",
            "start the server (for Ollama: `ollama serve` or the app), or fix the host and port",
            url=url,
        )
    if any(isinstance(c, ConnectionResetError) for c in causes) or isinstance(
        exc, (httpx.RemoteProtocolError, httpx.ReadError)
    ):
        moment = "in the middle of the answer" if streaming else "before the answer was complete"
        return ConnectionReset(
            f"the connection to {url} was reset {moment} ({exc})",
            "the server dropped the request: check its log (out of memory? crashed?) and retry",
            url=url,
        )
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot connect to {url}: {exc}", "check the host, port and network", url=url)
    return EndpointError(f"talking to {url} failed: {type(exc).__name__}: {exc}", url=url)
