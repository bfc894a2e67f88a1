"""doctor's checks of the environment and the machine: OLLAMA_ORIGINS, the Ollama service's bind address and
listening sockets, and who can read Codex's files."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

from localcodex.core.doctor.providers import holds_secret
from localcodex.core.doctor.types import (
    ConfigFile,
    DoctorRun,
    Finding,
)

# -- environment and machine ------------------------------------------------------------------------------------


def environment_findings(run: DoctorRun, files: Iterable[ConfigFile]) -> None:
    run.add(*_origins_env(run))
    run.add(*_service_findings(run))
    run.add(*_file_mode_findings(run, files))


def _wildcard_origins(value: str) -> bool:
    return any(part.strip().strip("\"'") in ("*", "http://*", "https://*") for part in value.split(","))


def _origins_env(run: DoctorRun) -> Iterator[Finding]:
    value = run.env.get("OLLAMA_ORIGINS", "")
    if _wildcard_origins(value):
        yield Finding(
            "ollama-origins-wildcard", "warning",
            f"OLLAMA_ORIGINS={value} in this environment: an Ollama started from it lets any website you visit "
            "call it from your browser", None, "OLLAMA_ORIGINS", None,
            "unset it, or list only the origins that need access (e.g. chrome-extension://ID)")


def _service_findings(run: DoctorRun) -> Iterator[Finding]:
    settings = run.hostenv.service_environment()
    host = settings.get("OLLAMA_HOST")
    exposed = _exposed_bind(host.value) if host else None
    port = _service_port(host.value if host else None)
    if host is not None and exposed:
        yield Finding(
            "ollama-exposed", "warning",
            f"the Ollama service listens on {exposed}:{port} (Environment=OLLAMA_HOST={host.value}): anyone who can "
            "reach this machine can use it and pull or delete models (Ollama has no authentication)",
            str(host.file), "OLLAMA_HOST", host.line, _EXPOSED_FIX)
    else:
        yield from _socket_findings(run, port)
    origins = settings.get("OLLAMA_ORIGINS")
    if origins is not None and _wildcard_origins(origins.value):
        yield Finding(
            "ollama-origins-wildcard", "warning",
            f"the Ollama service allows every web origin (Environment=OLLAMA_ORIGINS={origins.value}): any website "
            "you visit can call your Ollama from the browser", str(origins.file), "OLLAMA_ORIGINS", origins.line,
            "remove OLLAMA_ORIGINS=* (or list only the origins that need it), then `sudo systemctl daemon-reload "
            "&& sudo systemctl restart ollama`")


_EXPOSED_FIX = (
    "bind it to loopback (OLLAMA_HOST=127.0.0.1:11434; `sudo systemctl edit ollama`, then "
    "`sudo systemctl restart ollama`), or keep port 11434 firewalled behind an authenticating reverse proxy"
)


def _exposed_bind(value: str) -> str | None:
    """The address an OLLAMA_HOST value binds when that is not loopback (`0.0.0.0`, `::`, a LAN address)."""
    import ipaddress

    text = value.strip().strip("\"'")
    if text.startswith(":"):
        return "0.0.0.0"
    host = urllib.parse.urlsplit(text if "://" in text else f"http://{text}").hostname or ""
    if host in ("", "localhost"):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a host name the service resolves: not loopback as far as we can tell
    return None if address.is_loopback else str(address)


def _service_port(value: str | None) -> int:
    if not value:
        return 11434
    text = value.strip().strip("\"'")
    try:
        split = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
        return split.port or 11434
    except ValueError:
        return 11434


def _socket_findings(run: DoctorRun, service_port: int) -> Iterator[Finding]:
    from localcodex.paths import ollama_host

    host = ollama_host(run.req.host, run.env)
    if not host.is_local:
        return
    port = urllib.parse.urlsplit(host.native).port or service_port
    addresses = run.hostenv.listening_addresses(port) or ()
    exposed = [a for a in addresses if _exposed_bind(a if ":" not in a else f"[{a}]")]
    if exposed:
        shown = ", ".join(f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in exposed)
        yield Finding(
            "ollama-exposed", "warning",
            f"a server (Ollama, at the configured port) listens on {shown}: anyone who can reach this machine can "
            "use it (Ollama has no authentication)", None, "OLLAMA_HOST", None, _EXPOSED_FIX)


def _file_mode_findings(run: DoctorRun, files: Iterable[ConfigFile]) -> Iterator[Finding]:
    for file in files:
        if file.kind == "project":
            continue
        mode = run.hostenv.file_mode(file.path)
        if mode is not None and mode & 0o077:
            yield _mode_finding(file.path, mode, holds_secret(file))
    auth = run.codex_home / "auth.json"
    if run.hostenv.exists(auth):
        mode = run.hostenv.file_mode(auth)
        if mode is not None and mode & 0o077:
            yield _mode_finding(auth, mode, True)


def _mode_finding(path: Path, mode: int, secret: bool) -> Finding:
    writable = bool(mode & 0o022)
    who = "other users can change it (and point Codex at their server)" if writable else "other users can read it"
    holds = " It holds credentials." if secret else ""
    return Finding(
        "config-permissions", "warning" if (secret or writable) else "info",
        f"{path.name} has mode {mode:04o}: {who}.{holds}", str(path), None, None,
        f"make it private: `chmod 600 {path}`", f"chmod 600 {path}")
