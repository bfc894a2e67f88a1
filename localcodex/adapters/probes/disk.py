"""Free disk where Ollama stores models: a pull needs it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

from localcodex.adapters.probes.base import under
from localcodex.adapters.probes.native import Native
from localcodex.domain.machine import Disk

LINUX_SERVICE_MODELS = "/usr/share/ollama/.ollama/models"


def models_dir(root: Path, env: Mapping[str, str], os_name: str) -> str:
    """`$OLLAMA_MODELS`, else `~/.ollama/models`, else (Linux, when only it exists) the systemd service's
    folder. The same rule as `localcodex.paths.ollama_models_dir`, looked up inside `root`."""
    if root == Path("/") and os_name == _this_os():
        from localcodex.paths import ollama_models_dir

        return str(ollama_models_dir(env))
    value = env.get("OLLAMA_MODELS", "").strip().strip('"').strip("'")
    if value:
        return value
    home = env.get("HOME") or env.get("USERPROFILE") or "/root"
    pure = PureWindowsPath if os_name == "windows" else PurePosixPath
    user = str(pure(home) / ".ollama" / "models")
    if os_name == "linux" and not under(root, user).exists() and under(root, LINUX_SERVICE_MODELS).exists():
        return LINUX_SERVICE_MODELS
    return user


def _this_os() -> str:
    import platform

    return platform.system().lower()


def nearest_existing(root: Path, path: str) -> Path | None:
    """The folder itself, or its nearest parent that exists (a fresh install has no models folder yet)."""
    current = under(root, path)
    while True:
        if current.exists():
            return current
        if current == root or current.parent == current:
            return None
        current = current.parent


def probe_disk(root: Path, env: Mapping[str, str], os_name: str, native: Native, notes: list[str]) -> Disk:
    path = models_dir(root, env, os_name)
    existing = nearest_existing(root, path)
    if existing is None:
        notes.append(f"disk: no part of {path} exists")
        return Disk(path=path, total=None, free=None)
    usage = native.disk_usage(existing)
    if usage is None:
        notes.append(f"disk: cannot measure the filesystem of {existing}")
        return Disk(path=path, total=None, free=None)
    if existing != under(root, path):
        notes.append(f"disk: {path} does not exist yet; measured its nearest existing parent")
    return Disk(path=path, total=usage[0], free=usage[1], source="statvfs")
