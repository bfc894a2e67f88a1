"""URL rules in one place: Ollama host parsing, base-URL repair, locality, version numbers.

Pure: no I/O, no environment. `localcodex.paths` reads `$OLLAMA_HOST` and calls `parse_ollama_host` here;
`check` and `doctor` both judge a provider's `base_url` with `repair_base_url`; every "is this server on this
machine / on my network?" question goes through `locality`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from enum import Enum

DEFAULT_OLLAMA_PORT = 11434

# Codex 0.134.0 and later read `-p NAME` from `$CODEX_HOME/NAME.config.toml` and reject `profile = …`.
PROFILE_FILES_SINCE = (0, 134, 0)


# -- version numbers --------------------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """The first x.y.z in a version string (`codex --version`, Ollama's /api/version), or None.

    >>> parse_version("codex-cli 0.169.0")
    (0, 169, 0)
    >>> parse_version("v0.33.0-rc2")
    (0, 33, 0)
    >>> parse_version("codex-cli 0.134.0-alpha.2\\n")
    (0, 134, 0)
    >>> parse_version("dev") is None, parse_version(None) is None, parse_version("0.13") is None
    (True, True, True)
    """
    match = _VERSION_RE.search(text or "")
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def supports_profile_files(version: tuple[int, int, int] | None) -> bool:
    """Does this Codex read NAME.config.toml profiles? (An unknown version is taken to be a current one.)

    >>> supports_profile_files((0, 169, 0)), supports_profile_files((0, 133, 9)), supports_profile_files(None)
    (True, False, True)
    """
    return version is None or version >= PROFILE_FILES_SINCE


# -- Ollama host ------------------------------------------------------------------------------------------------


def parse_ollama_host(value: str | None) -> str:
    """Parse an `OLLAMA_HOST` value the way Ollama's Python client does.

    Missing scheme means http; missing port means 11434 (80 for an explicit http://, 443 for https://).

    >>> parse_ollama_host(None)
    'http://127.0.0.1:11434'
    >>> parse_ollama_host('')
    'http://127.0.0.1:11434'
    >>> parse_ollama_host('1.2.3.4')
    'http://1.2.3.4:11434'
    >>> parse_ollama_host(':1234')
    'http://127.0.0.1:1234'
    >>> parse_ollama_host('0.0.0.0')
    'http://0.0.0.0:11434'
    >>> parse_ollama_host('example.com:8080')
    'http://example.com:8080'
    >>> parse_ollama_host('https://example.com')
    'https://example.com:443'
    >>> parse_ollama_host('http://example.com')
    'http://example.com:80'
    >>> parse_ollama_host('example.com/path/')
    'http://example.com:11434/path'
    >>> parse_ollama_host('http://localhost:11434/')
    'http://localhost:11434'
    >>> parse_ollama_host('[::1]:11434')
    'http://[::1]:11434'
    >>> parse_ollama_host('::1')
    'http://[::1]:11434'
    >>> parse_ollama_host('http://[fe80::1]')
    'http://[fe80::1]:80'
    >>> parse_ollama_host('http://localhost:11434/v1')
    'http://localhost:11434/v1'
    """
    raw = value or ""
    scheme, sep, rest = raw.partition("://")
    port = DEFAULT_OLLAMA_PORT
    if not sep:
        scheme, rest = "http", raw
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    # A bare IPv6 address has colons that urlsplit would read as a port.
    try:
        if isinstance(ipaddress.ip_address(rest), ipaddress.IPv6Address):
            rest = f"[{rest}]"
    except ValueError:
        pass
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    host = split.hostname or "127.0.0.1"
    with contextlib.suppress(ValueError):  # an out-of-range port keeps the default, as Ollama does
        port = split.port or port
    if ":" in host:
        host = f"[{host}]"
    path = split.path.strip("/")
    return f"{scheme}://{host}:{port}/{path}" if path else f"{scheme}://{host}:{port}"


class Locality(str, Enum):
    """Where a server is, seen from this machine.

    LOOPBACK: this machine (its memory, disk and GPUs are the ones detect measures).
    PRIVATE: another machine on the local network (RFC 1918 / unique-local / link-local addresses, `.local`,
    `.lan`, `.home.arpa` and single-label host names). PUBLIC: anything else.
    """

    LOOPBACK = "loopback"
    PRIVATE = "private"
    PUBLIC = "public"

    @property
    def on_this_machine(self) -> bool:
        return self is Locality.LOOPBACK

    @property
    def on_local_network(self) -> bool:
        """This machine or the LAN: a server that is down will not come back by waiting."""
        return self is not Locality.PUBLIC


_PRIVATE_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal")


def host_of(url_or_host: str) -> str:
    """The host name of a URL, or of a bare `host[:port]`, lower-cased and without brackets.

    >>> host_of("http://[::1]:11434/v1"), host_of("gpu-box.lan:11434"), host_of("LOCALHOST")
    ('::1', 'gpu-box.lan', 'localhost')
    """
    text = url_or_host.strip()
    if "://" not in text:
        with contextlib.suppress(ValueError):
            if isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address):
                return text.lower()
        text = f"http://{text}"
    try:
        return (urllib.parse.urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


def locality(url_or_host: str) -> Locality:
    """Loopback, private network or public, judged from the text alone (no DNS).

    A listen-all address (0.0.0.0, ::) is reached on loopback, so it counts as this machine.

    >>> [locality(u).value for u in ("http://127.0.0.1:11434", "http://localhost:1/v1", "http://[::1]:1",
    ...                               "0.0.0.0:11434", "http://app.localhost")]
    ['loopback', 'loopback', 'loopback', 'loopback', 'loopback']
    >>> [locality(u).value for u in ("http://192.168.1.20:8080/v1", "10.0.0.5", "http://172.20.0.1",
    ...                               "http://[fe80::1]:11434", "http://[fd00::5]", "http://gpu-box.local:11434",
    ...                               "http://gpu-box:11434")]
    ['private', 'private', 'private', 'private', 'private', 'private', 'private']
    >>> [locality(u).value for u in ("https://openrouter.ai/api/v1", "http://8.8.8.8", "http://172.32.0.1", "")]
    ['public', 'public', 'public', 'public']
    """
    host = host_of(url_or_host)
    if not host:
        return Locality.PUBLIC
    if host == "localhost" or host.endswith(".localhost"):
        return Locality.LOOPBACK
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[a-z0-9_.-]+", host):
            return Locality.PUBLIC  # not a host name: nothing to call local
        if host.endswith(_PRIVATE_SUFFIXES) or "." not in host:
            return Locality.PRIVATE
        return Locality.PUBLIC
    if address.is_loopback or address.is_unspecified:
        return Locality.LOOPBACK
    if address.is_private or address.is_link_local:
        return Locality.PRIVATE
    return Locality.PUBLIC


def is_loopback_url(url: str) -> bool:
    """Is this server on this machine?

    >>> is_loopback_url("http://127.0.0.1:11434"), is_loopback_url("http://192.168.1.2:11434")
    (True, False)
    """
    return locality(url).on_this_machine


# -- base URL repair --------------------------------------------------------------------------------------------

ENDPOINT_SUFFIXES = ("/responses", "/chat/completions", "/completions", "/models")


class BaseUrlMistake(str, Enum):
    """The classic base_url mistakes. The values are what `check --json` reports as `mistake`."""

    NOT_A_URL = "not a URL"
    DOUBLE_SLASH = "double slash"  # Ollama answers 301 to the cleaned path (server/routes.go ~2000, ~2018)
    DOUBLED_V1 = "doubled /v1"
    ENDPOINT_PATH = "endpoint path in base_url"
    OLLAMA_ROOT = "Ollama port without /v1"
    MISSING_V1 = "missing /v1"
    WRONG_SERVER = "wrong server or port"


@dataclass(frozen=True)
class BaseUrl:
    """A base URL as given, repaired, and where Ollama's native `/api` would live for it.

    `mistake` is what the text alone shows (None when it looks right); `check` refines it with what the server
    answered (`diagnose`).
    """

    given: str
    fixed: str
    native: str
    mistake: BaseUrlMistake | None

    @property
    def ok(self) -> bool:
        return self.mistake is None


def strip_endpoint(url: str) -> str:
    """A base URL without trailing slashes or a pasted endpoint path.

    >>> strip_endpoint("http://h:1/v1/chat/completions/")
    'http://h:1/v1'
    """
    text = url.strip().rstrip("/")
    for suffix in ENDPOINT_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip("/")
    return text


def native_root(base: str) -> str:
    """Where Ollama's native `/api` lives for a `/v1` base URL (every trailing `/v1` dropped).

    >>> native_root("http://h:11434/v1/v1/")
    'http://h:11434'
    >>> native_root("https://gw.example/ollama/v1")
    'https://gw.example/ollama'
    """
    text = strip_endpoint(base)
    while text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


def fixed_base(base: str) -> str:
    """The base URL with the classic mistakes repaired: no scheme, pasted endpoint, doubled or missing `/v1`.

    >>> fixed_base("http://h:11434")
    'http://h:11434/v1'
    >>> fixed_base("http://h:11434/v1/v1/")
    'http://h:11434/v1'
    >>> fixed_base("http://h:8080/v1/responses")
    'http://h:8080/v1'
    >>> fixed_base("localhost:11434")
    'http://localhost:11434/v1'
    """
    text = strip_endpoint(base)
    if "://" not in text:
        text = f"http://{text}"
    split = urllib.parse.urlsplit(text)
    path = re.sub(r"(/v1)+(?=/|$)", "/v1", re.sub(r"/{2,}", "/", split.path))
    if not re.search(r"/v1(/|$)", path):
        path = f"{path}/v1"
    return urllib.parse.urlunsplit((split.scheme, split.netloc, path, "", ""))


def static_mistake(url: str) -> BaseUrlMistake | None:
    """The mistake the text alone shows, or None when it looks right (a gateway may serve an API without /v1,
    so a missing /v1 counts only on Ollama's port or with no path at all).

    >>> static_mistake("http://localhost:11434/v1/v1")
    <BaseUrlMistake.DOUBLED_V1: 'doubled /v1'>
    >>> static_mistake("http://localhost:11434").value, static_mistake("http://gw.example").value
    ('Ollama port without /v1', 'missing /v1')
    >>> static_mistake("http://localhost:11434/v1/responses").value
    'endpoint path in base_url'
    >>> static_mistake("https://openrouter.ai/api/v1") is None, static_mistake("https://gw.example/api") is None
    (True, True)
    >>> static_mistake("localhost:11434").value
    'not a URL'
    >>> static_mistake("http://localhost:11434//v1").value, fixed_base("http://localhost:11434//v1")
    ('double slash', 'http://localhost:11434/v1')
    """
    try:
        split = urllib.parse.urlsplit(url.strip())
        port = split.port
    except ValueError:
        return BaseUrlMistake.NOT_A_URL
    if split.scheme not in ("http", "https") or not split.hostname:
        return BaseUrlMistake.NOT_A_URL
    path = split.path.rstrip("/")
    if "//" in path:
        return BaseUrlMistake.DOUBLE_SLASH
    if re.search(r"/v1/v1(/|$)", path):
        return BaseUrlMistake.DOUBLED_V1
    if any(path.endswith(e) for e in ENDPOINT_SUFFIXES):
        return BaseUrlMistake.ENDPOINT_PATH
    if not re.search(r"/v1(/|$)", path):
        if port == DEFAULT_OLLAMA_PORT:
            return BaseUrlMistake.OLLAMA_ROOT
        if not path:
            return BaseUrlMistake.MISSING_V1
    return None


def diagnose(given: str, is_ollama_root: bool) -> BaseUrlMistake:
    """What is wrong with a base URL whose /models did not answer like an OpenAI API.

    >>> diagnose("http://h:11434", True).value, diagnose("http://h:8080", False).value
    ('Ollama port without /v1', 'missing /v1')
    >>> diagnose("http://h:8080/v1", False).value
    'wrong server or port'
    """
    path = urllib.parse.urlsplit(given.strip()).path
    if "//" in path.rstrip("/"):
        return BaseUrlMistake.DOUBLE_SLASH
    if re.search(r"/v1/v1(/|$)", path):
        return BaseUrlMistake.DOUBLED_V1
    stripped = path.rstrip("/")
    if any(stripped.endswith(s) for s in ENDPOINT_SUFFIXES):
        return BaseUrlMistake.ENDPOINT_PATH
    if not re.search(r"/v1(/|$)", path):
        return BaseUrlMistake.OLLAMA_ROOT if is_ollama_root else BaseUrlMistake.MISSING_V1
    return BaseUrlMistake.WRONG_SERVER


def repair_base_url(url: str) -> BaseUrl:
    """The one base-URL repair `check` and `doctor` share.

    >>> r = repair_base_url("http://localhost:11434/v1/v1/")
    >>> r.fixed, r.native, r.mistake.value
    ('http://localhost:11434/v1', 'http://localhost:11434', 'doubled /v1')
    """
    fixed = fixed_base(url)
    return BaseUrl(given=url, fixed=fixed, native=fixed[: -len("/v1")] if fixed.endswith("/v1") else native_root(url),
                   mistake=static_mistake(url))


# -- base URLs given on the command line ---------------------------------------------------------------------

CREDENTIAL_FIX = ("localcodex never writes credentials into Codex's files: drop it from the URL and pass "
                   "--env-key VARIABLE (Codex sends its value as a bearer token) or --env-header NAME=VARIABLE")


def normalize_base_url(url: str, option: str = "--base-url") -> str:
    """An http(s) URL without a trailing slash (Codex appends `/responses`), refused (UsageError, naming no
    secret) when Codex could not use it or it carries a credential.

    >>> normalize_base_url("http://gpu-box:8080/v1/")
    'http://gpu-box:8080/v1'
    >>> normalize_base_url("http://[::1:8080/v1")
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: --base-url is not a valid URL (Invalid IPv6 URL)
    """
    from localcodex.errors import UsageError

    text = url.strip()
    example = "give a full URL such as http://127.0.0.1:8080/v1"
    if not text:
        raise UsageError(f"{option} is empty", example)
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise UsageError(f"{option} contains a space or a control character", example)
    try:
        split = urllib.parse.urlsplit(text)
        port = split.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            raise UsageError(f"{option} has a port out of range (1-65535)", example) from None
        raise UsageError(f"{option} is not a valid URL ({exc})",
                         f"{example} (an IPv6 host goes in brackets: http://[::1]:8080/v1)") from None
    if split.scheme not in ("http", "https") or not split.hostname:
        raise UsageError(f"{option} is not an http(s) URL with a host", example)
    if port == 0:
        raise UsageError(f"{option} has port 0", "give the port the server listens on (1-65535)")
    found = url_credentials(text)
    if found:
        raise UsageError(f"{option} holds {found[0]}", CREDENTIAL_FIX)
    if "//" in split.path:  # Ollama answers 301 for it (server/routes.go ~2000, ~2018); Codex's POST fails
        raise UsageError(f"{option} {text!r} has // in its path: servers redirect it and Codex's POST fails",
                         f"use {option} {fixed_base(text)}")
    if static_mistake(text) is BaseUrlMistake.DOUBLED_V1:
        raise UsageError(f"{option} has /v1 twice; Codex would POST to …/v1/v1/responses",
                         f"use {fixed_base(text)}")
    return text.rstrip("/")


# -- credentials in URLs ---------------------------------------------------------------------------------------

REDACTED = "\u2026"  # what stands in for a secret query value


def url_credentials(url: str) -> list[str]:
    """Where a URL carries a credential, in words that name no secret: a user name or password, a query
    parameter that is (or is named like) a key. Empty for an unreadable URL (other rules report those).

    >>> for where in url_credentials("http://alice:pw@h:8080/v1?api_key=x&team=a&key=AIzaSy012345"):
    ...     print(where)
    a user name or password
    a credential in its query parameter 'api_key'
    a credential in its query parameter 'key'
    >>> url_credentials("https://gw.example/v1?api-version=2024-10-21"), url_credentials("http://[::1")
    ([], [])
    """
    from localcodex.domain.codex import is_secret_query_param

    try:
        split = urllib.parse.urlsplit(url.strip())
        found = ["a user name or password"] if split.username is not None or split.password is not None else []
    except ValueError:
        return []
    found += [f"a credential in its query parameter {name!r}"
              for name, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
              if is_secret_query_param(name, value)]
    return found


def redact_url(url: str, *, drop: bool = False) -> str:
    """The URL as it may be shown or stored: no user name or password, and "…" for the value of any query
    parameter that carries a credential (or is long enough to be one); with `drop`, no such parameter at all
    (the URL to use instead); everything else as it was.

    >>> redact_url("http://bob:pw@10.0.0.2:8080/v1?token=sk-live-0123456789&team=a")
    'http://10.0.0.2:8080/v1?token=…&team=a'
    >>> redact_url("https://gw.example/v1?api-version=2024-10-21"), redact_url("http://[::1")
    ('https://gw.example/v1?api-version=2024-10-21', '(unreadable URL)')
    >>> redact_url("http://h:1/v1?api_key=x&team=a", drop=True)
    'http://h:1/v1?team=a'
    """
    from localcodex.domain.codex import is_secret_query_param

    try:
        split = urllib.parse.urlsplit(url)
        host = split.hostname or ""
        port = f":{split.port}" if split.port else ""
    except ValueError:
        return "(unreadable URL)"
    netloc = (f"[{host}]" if ":" in host else host) + port if "@" in split.netloc else split.netloc
    params = []
    for part in split.query.split("&") if split.query else []:
        name, sep, value = part.partition("=")
        plain = urllib.parse.unquote_plus(value)
        secret = is_secret_query_param(urllib.parse.unquote_plus(name), plain) or len(plain) >= 20
        if secret and (drop or sep):
            params += [] if drop else [f"{name}{sep}{REDACTED}"]
        else:
            params.append(part)
    return urllib.parse.urlunsplit((split.scheme, netloc, split.path, "&".join(params), split.fragment))


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>`]+?(?=[.,:;)\]]*(?:[\s'\"<>`]|$))")  # trailing punctuation is prose


def redact_urls(text: str) -> str:
    """A message with every URL in it redacted (`redact_url`): for text that quotes a URL from a config file
    or an option, so no credential reaches the terminal whatever the message says about it.

    >>> redact_urls("connection refused at http://alice:s3cr3t@127.0.0.1:9/v1/models: nothing listens")
    'connection refused at http://127.0.0.1:9/v1/models: nothing listens'
    >>> redact_urls("base_url (masked: http://h:1/v1?key=AIza0123456789).")
    'base_url (masked: http://h:1/v1?key=…).'
    """
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
