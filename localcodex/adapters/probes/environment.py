"""Where this process runs: inside a container, under WSL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.probes.base import read_text, under

_CONTAINER_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio")


@dataclass(frozen=True)
class Environment:
    container: str | None = None  # "docker", "podman", "kubernetes", ... or None
    wsl: int | None = None  # 1 or 2, None when not under WSL
    notes: tuple[str, ...] = ()


def probe_environment(root: Path, env: Mapping[str, str]) -> Environment:
    return Environment(container=_container(root, env), wsl=_wsl(root, env))


def os_version(root: Path, os_name: str, sysctl: Mapping[str, str], release: str | None) -> str | None:
    """The distribution or OS release people know the machine by."""
    if os_name == "linux":
        text = read_text(under(root, "/etc/os-release")) or ""
        for line in text.splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
        return None
    if os_name == "darwin":
        version = sysctl.get("kern.osproductversion")
        return f"macOS {version}" if version else None
    if os_name == "windows" and release:
        return f"Windows {release}"
    return None


def _container(root: Path, env: Mapping[str, str]) -> str | None:
    if under(root, "/.dockerenv").exists():
        return "docker"
    if under(root, "/run/.containerenv").exists():
        return "podman"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if env.get("container"):  # systemd-nspawn, podman and LXC set it for PID 1
        return env["container"]
    text = read_text(under(root, "/proc/1/cgroup")) or ""
    for marker in _CONTAINER_MARKERS:
        if marker in text:
            return marker
    return None


def _wsl(root: Path, env: Mapping[str, str]) -> int | None:
    version = (read_text(under(root, "/proc/version")) or "").lower()
    if "microsoft" not in version and not env.get("WSL_DISTRO_NAME") and not env.get("WSL_INTEROP"):
        return None
    # WSL2 kernels are "...-microsoft-standard-WSL2"; WSL1 has no real Linux kernel ("4.4.0-19041-Microsoft")
    # and no GPU access. Without a version string, the variables alone are taken as WSL2.
    if "microsoft" in version and "wsl2" not in version and "microsoft-standard" not in version:
        return 1
    return 2
