"""The servers a Codex configuration points at, as doctor probes them: one `Endpoint` per target's provider,
grouped so each (base_url, model, env_key) is probed once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localcodex.core.doctor.fixes import configure_command, ollama_root
from localcodex.core.doctor.offline import provider_table
from localcodex.core.doctor.types import DoctorRun, Finding, Target, dotted

CODEX_FALLBACK_WINDOW = 272_000  # Codex's context window for a model slug it has no metadata for


@dataclass(frozen=True)
class Endpoint:
    """A provider one or more targets use, as check will probe it."""

    target: Target
    provider: str
    base_url: str
    model: str | None
    env_key: str | None
    headers: Mapping[str, str]

    @property
    def base_key(self) -> tuple[str, ...]:
        return ("model_providers", self.provider, "base_url")

    def located(self, key: tuple[str, ...], id: str, severity: Any, message: str, fix: str,
                command: str | None = None) -> Finding:
        origin = self.target.origin(key) or self.target.origin(("model_provider",))
        if origin is None:
            return Finding(id, severity, message, None, dotted(key), None, fix, command)
        return origin.finding(id, severity, message, key, fix, command)

    def configure(self, base_url: str | None = None) -> str | None:
        """The localcodex command that rewrites this provider (at `base_url`, default its own), when the
        provider is a local Ollama one configure can write."""
        origin = self.target.origin(("model_provider",))
        url = base_url or self.base_url
        if origin is None or origin.kind == "project" or self.provider in ("ollama", "lmstudio"):
            return None
        return configure_command(self.target.profile, provider=self.provider, model=self.model,
                                 host=ollama_root(url))


def endpoint_groups(run: DoctorRun, targets: tuple[Target, ...]) -> list[list[Endpoint]]:
    """The targets' endpoints, grouped by what check needs to probe (base_url, model, env_key): each group is
    probed once, and per-target findings (base_url, model_context_window) are still reported for every one."""
    groups: dict[tuple[str, str | None, str | None], list[Endpoint]] = {}
    for target in targets:
        endpoint = _endpoint(run, target)
        if endpoint is not None:
            key = (endpoint.base_url.rstrip("/"), endpoint.model, endpoint.env_key)
            groups.setdefault(key, []).append(endpoint)
    return list(groups.values())


def _endpoint(run: DoctorRun, target: Target) -> Endpoint | None:
    provider = target.merged.get("model_provider")
    if not isinstance(provider, str):
        return None
    model = target.merged.get("model")
    model = model if isinstance(model, str) and model.strip() else None
    if provider in ("ollama", "lmstudio"):
        return Endpoint(target, provider, _oss_base(run, provider), model, None, {})
    table = provider_table(target, provider)
    base = table.get("base_url") if table else None
    if not isinstance(base, str) or not base.strip():
        return None  # a built-in cloud provider, or a custom one without base_url (reported offline)
    env_key = table.get("env_key") if table else None
    headers = table.get("http_headers") if table else None
    return Endpoint(
        target, provider, base.strip(), model, env_key if isinstance(env_key, str) else None,
        {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {},
    )


def _oss_base(run: DoctorRun, provider: str) -> str:
    """Where Codex's built-in `ollama`/`lmstudio` provider goes: $CODEX_OSS_BASE_URL, else localhost:PORT/v1."""
    explicit = run.env.get("CODEX_OSS_BASE_URL", "").strip()
    if explicit:
        return explicit
    port = run.env.get("CODEX_OSS_PORT", "").strip() or ("11434" if provider == "ollama" else "1234")
    return f"http://localhost:{port}/v1"

