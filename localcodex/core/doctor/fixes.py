"""The commands doctor suggests as fixes: `localcodex configure ...` for a profile or provider table."""

from __future__ import annotations

from localcodex.core.doctor.types import (
    ConfigFile,
)
from localcodex.domain.urls import (
    repair_base_url,
)

DEFAULT_ROOTS = ("http://127.0.0.1:11434", "http://localhost:11434")
CONFIGURE_PROVIDER = "local_ollama"  # configure's default --provider-id


def configure_command(profile: str | None, *, provider: str | None = None, model: str | None = None,
                      host: str | None = None) -> str:
    """The `localcodex configure …` that rewrites a local Ollama provider's keys (base_url, wire_api, model,
    model_context_window) in a profile file, or with `--default` in config.toml.

    >>> configure_command("work", provider="my_ollama", model="qwen3.5:27b", host="http://gpu:11434")
    'localcodex configure --profile work --provider-id my_ollama --model qwen3.5:27b --host http://gpu:11434'
    >>> configure_command(None, provider="local_ollama", host="http://localhost:11434")
    'localcodex configure --default'
    """
    parts = ["localcodex configure", f"--profile {profile}" if profile else "--default"]
    if provider and provider != CONFIGURE_PROVIDER:
        parts.append(f"--provider-id {provider}")
    if model:
        parts.append(f"--model {model}")
    return " ".join(parts) + host_flag(host)


def host_flag(host: str | None) -> str:
    """` --host ROOT` when the Ollama server is not the default one, else nothing."""
    return f" --host {host.rstrip('/')}" if host and host.rstrip("/") not in DEFAULT_ROOTS else ""


def file_configure(file: ConfigFile, provider: str | None = None, host: str | None = None) -> str:
    """configure_command for a provider table in this file (the model too, when this file selects it)."""
    model = file.get(("model",)) if provider and file.get(("model_provider",)) == provider else None
    profile = file.profile if file.kind == "profile" else None
    return configure_command(profile, provider=provider, model=model if isinstance(model, str) else None, host=host)


def ollama_root(base_url: str) -> str:
    """Where Ollama lives for a /v1 base URL (what configure's --host takes).

    >>> ollama_root("http://localhost:11434/v1/v1/")
    'http://localhost:11434'
    """
    return repair_base_url(base_url).native
