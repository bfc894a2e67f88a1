"""What the Ollama server says about itself: version and the models holding memory (`/api/ps`).

An unreachable server is a normal answer here, not an error. A plain TCP connect goes first so that the
common "nothing listens" case costs a millisecond and imports neither httpx nor the ollama client.
"""

from __future__ import annotations

import socket
import urllib.parse

from localcodex.domain.machine import LoadedModel, OllamaState
from localcodex.paths import OllamaHost


def probe_ollama(host: OllamaHost, timeout: float = 2.0) -> OllamaState:
    url = host.native
    split = urllib.parse.urlsplit(url)
    port = split.port or (443 if split.scheme == "https" else 80)
    try:
        with socket.create_connection((split.hostname or "127.0.0.1", port), timeout=min(timeout, 1.5)):
            pass
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
        return OllamaState(host=url, reachable=False, error=f"not reachable at {url}: {reason}")

    from localcodex.adapters.ollama import OllamaServer
    from localcodex.errors import LocalcodexError

    server = OllamaServer(host, timeout=timeout)
    try:
        version = server.version()
    except LocalcodexError as exc:
        return OllamaState(host=url, reachable=False, error=exc.message)
    try:
        running = server.ps()
    except LocalcodexError as exc:
        return OllamaState(host=url, reachable=True, version=version, error=f"/api/ps: {exc.message}")
    loaded = tuple(LoadedModel(m.name, m.size, m.size_vram, m.context_length) for m in running)
    return OllamaState(host=url, reachable=True, version=version, loaded=loaded)
