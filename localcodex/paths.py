"""Every path and host localcodex uses, in one place, each with its environment override.

Nothing here reads the environment at import time: each function takes an `env` mapping (default:
`os.environ`) so tests can pass their own. `localcodex paths` prints all of them.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localcodex.domain.urls import DEFAULT_OLLAMA_PORT, Locality, locality, parse_ollama_host  # noqa: F401 (re-exported)


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    e = _env(env)
    home = e.get("HOME") or e.get("USERPROFILE")
    return Path(home) if home else Path.home()


def codex_home(env: Mapping[str, str] | None = None) -> Path:
    """`$CODEX_HOME`, else `~/.codex` (where Codex reads config.toml and NAME.config.toml profiles)."""
    value = _env(env).get("CODEX_HOME", "").strip()
    return Path(value).expanduser() if value else home_dir(env) / ".codex"


def data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The toolkit's own folder (receipts, backups, state): `$LOCALCODEX_HOME`, else the platform default.

    >>> data_dir({"LOCALCODEX_HOME": "/tmp/lc"}).as_posix()
    '/tmp/lc'
    >>> data_dir({"HOME": "/home/u"}, platform="linux").as_posix()
    '/home/u/.local/share/localcodex'
    >>> data_dir({"HOME": "/home/u", "XDG_DATA_HOME": "/data"}, platform="linux").as_posix()
    '/data/localcodex'
    >>> data_dir({"HOME": "/Users/u"}, platform="darwin").as_posix()
    '/Users/u/Library/Application Support/localcodex'
    """
    e = _env(env)
    value = e.get("LOCALCODEX_HOME", "").strip()
    if value:
        return Path(value).expanduser()
    platform = platform or sys.platform
    if platform == "darwin":
        return home_dir(e) / "Library" / "Application Support" / "localcodex"
    if platform.startswith("win"):
        base = e.get("LOCALAPPDATA") or str(home_dir(e) / "AppData" / "Local")
        return Path(base) / "localcodex"
    xdg = e.get("XDG_DATA_HOME", "").strip()
    return (Path(xdg) if xdg else home_dir(e) / ".local" / "share") / "localcodex"


def receipts_db(env: Mapping[str, str] | None = None) -> Path:
    return data_dir(env) / "receipts.sqlite3"


def backups_dir(env: Mapping[str, str] | None = None) -> Path:
    return data_dir(env) / "backups"


def ollama_models_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Where Ollama keeps models: `$OLLAMA_MODELS`, else `~/.ollama/models`.

    On Linux, when the user's folder does not exist but the systemd service's does
    (`/usr/share/ollama/.ollama/models`), that one is where pulls land.
    """
    e = _env(env)
    value = e.get("OLLAMA_MODELS", "").strip().strip('"').strip("'")
    if value:
        return Path(value).expanduser()
    user = home_dir(e) / ".ollama" / "models"
    platform = platform or sys.platform
    service = Path("/usr/share/ollama/.ollama/models")
    if platform.startswith("linux") and not user.exists() and service.exists():
        return service
    return user


@dataclass(frozen=True)
class OllamaHost:
    """An Ollama server address in the three forms localcodex needs.

    `url` is what the Python client would use; `native` is where `/api/*` lives (a listen-all address
    becomes loopback, a mistaken trailing `/v1` is dropped); `openai` is the `/v1` base URL for Codex.
    """

    url: str
    native: str
    openai: str
    source: str  # "--host", "OLLAMA_HOST" or "default"

    @property
    def locality(self) -> Locality:
        return locality(self.native)

    @property
    def is_local(self) -> bool:
        """On this machine (loopback): its disk, memory and GPUs are the ones detect measures."""
        return self.locality.on_this_machine


def ollama_host(explicit: str | None = None, env: Mapping[str, str] | None = None) -> OllamaHost:
    """The Ollama server to talk to: `--host`, else `$OLLAMA_HOST`, else http://127.0.0.1:11434.

    >>> h = ollama_host(None, {"OLLAMA_HOST": "0.0.0.0"})
    >>> h.native, h.openai, h.source
    ('http://127.0.0.1:11434', 'http://127.0.0.1:11434/v1', 'OLLAMA_HOST')
    >>> ollama_host("http://localhost:11434/v1/", {}).native
    'http://localhost:11434'
    >>> ollama_host("[::]:9999", {}).native
    'http://[::1]:9999'
    >>> ollama_host(None, {}).is_local
    True
    >>> ollama_host("gpu-box.lan", {}).is_local
    False
    """
    e = _env(env)
    if explicit:
        raw, source = explicit, "--host"
    elif e.get("OLLAMA_HOST", "").strip():
        raw, source = e["OLLAMA_HOST"].strip().strip('"').strip("'"), "OLLAMA_HOST"
    else:
        raw, source = None, "default"
    url = parse_ollama_host(raw)
    split = urllib.parse.urlsplit(url)
    path = split.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    netloc = split.netloc
    hostname = split.hostname or ""
    if hostname in ("0.0.0.0", "::"):
        connect = "127.0.0.1" if hostname == "0.0.0.0" else "[::1]"
        netloc = f"{connect}:{split.port}"
    native = urllib.parse.urlunsplit((split.scheme, netloc, path, "", ""))
    return OllamaHost(url=url, native=native, openai=f"{native}/v1", source=source)


def profiles_dir() -> Path:
    """The provider templates: inside the installed package, or `profiles/` of a source checkout."""
    packaged = Path(__file__).parent / "profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "profiles"


@dataclass(frozen=True)
class Paths:
    codex_home: Path
    codex_config: Path
    data_dir: Path
    receipts_db: Path
    backups_dir: Path
    ollama_models: Path
    ollama_host: OllamaHost
    profiles: Path


def resolve(env: Mapping[str, str] | None = None, host: str | None = None) -> Paths:
    ch = codex_home(env)
    return Paths(
        codex_home=ch,
        codex_config=ch / "config.toml",
        data_dir=data_dir(env),
        receipts_db=receipts_db(env),
        backups_dir=backups_dir(env),
        ollama_models=ollama_models_dir(env),
        ollama_host=ollama_host(host, env),
        profiles=profiles_dir(),
    )
