"""Provider templates (`profiles/*.toml`, shipped in the wheel) and `provider add`, which turns one into a
Codex profile through `configure` (one writer, the same safety).

Template format, one file per provider, the file name is the template's name:

    [template]
    description = "…"                       # one line for `provider list`
    required = ["base_url", "env_key", "model"]   # variables that must end up with a value
    notes = "… {base_url} …"                # shown by `provider show` and after `provider add`

    [template.defaults]                     # variable defaults; options of `provider add` override them
    base_url = "https://…/v1"
    env_key = "SOME_API_KEY"                # the NAME of a variable, never a key
    context = 131072                        # model_context_window
    profile = "name"                        # `codex -p name`
    provider_id = "name"                    # [model_providers.name]

    [provider]                              # body of [model_providers.<provider_id>], "{var}" placeholders
    name = "…"
    base_url = "{base_url}"                 # absent: an Ollama server (--host), context read from the model
    env_key = "{env_key}"
    http_headers = { "X-Team" = "{team}" }  # static, non-secret
    env_http_headers = { "X-User-Token" = "{user_token_env}" }   # header ← variable NAME

    [profile]                               # optional extra top-level keys of the profile file

Variables: `model`, `context`, `base_url`, `env_key`, `host`, `profile`, `provider_id`, and any other name
given with `--set NAME=VALUE`.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcodex.adapters import codex_config, toml_edit
from localcodex.core.configure import ConfigureRequest, configure
from localcodex.core.ports import Live
from localcodex.errors import ConfigError, NotFound, UsageError
from localcodex.paths import profiles_dir

if TYPE_CHECKING:
    from localcodex.core.configure import ConfigureRequest, ConfigureResult

# Keys a template's [provider] may hold: those localcodex maps onto ConfigureRequest fields, and further
# keys Codex 0.169 accepts in [model_providers.<id>] (codex-config.md A1), passed through as they are.
_MAPPED = {"name", "base_url", "env_key", "http_headers", "env_http_headers", "query_params",
           "stream_idle_timeout_ms"}
PASS_THROUGH = {"env_key_instructions", "request_max_retries", "stream_max_retries",
                "websocket_connect_timeout_ms", "supports_websockets", "requires_openai_auth"}
PROFILE_KEYS = {"model_reasoning_effort", "model_reasoning_summary", "model_verbosity", "approval_policy",
                "sandbox_mode"}
_OPTION = {"base_url": "--base-url", "env_key": "--env-key", "model": "--model", "context": "--context",
           "host": "--host", "profile": "--profile", "provider_id": "--provider-id"}


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    description: str
    required: tuple[str, ...]
    notes: str
    defaults: dict[str, Any] = field(default_factory=dict)
    provider: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the file as shipped, for `provider show`

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable the template mentions (placeholders, required, defaults)."""
        found = set(self.required) | set(self.defaults)
        for value in _strings(self.provider) + _strings(self.profile) + [self.notes]:
            found |= {name for _, name, _, _ in string.Formatter().parse(value) if name}
        return tuple(sorted(found))


@dataclass(frozen=True)
class TemplateList:
    folder: Path
    templates: tuple[Template, ...]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    return []


def templates_dir() -> Path:

    return profiles_dir()


def load_template(path: Path) -> Template:
    """Parse and check one template file: a broken template is a ConfigError naming the file."""

    text = codex_config.read_text(path) or ""
    data = toml_edit.load_plain(text, path)
    meta = data.get("template") or {}
    provider = data.get("provider") or {}
    unknown = set(provider) - _MAPPED - PASS_THROUGH
    unknown_profile = set(data.get("profile") or {}) - PROFILE_KEYS
    if not meta.get("description") or unknown or unknown_profile:
        raise ConfigError(
            f"provider template {path} is invalid: "
            + (f"unknown [provider] keys {sorted(unknown)}" if unknown else
               f"unknown [profile] keys {sorted(unknown_profile)}" if unknown_profile else
               "[template] needs a description"),
            f"fix {path}",
        )
    return Template(
        name=path.stem, path=path, description=str(meta["description"]),
        required=tuple(meta.get("required") or ()), notes=str(meta.get("notes") or ""),
        defaults=dict(meta.get("defaults") or {}), provider=dict(provider),
        profile=dict(data.get("profile") or {}), text=text,
    )


def list_templates(folder: Path | None = None) -> TemplateList:
    folder = folder or templates_dir()
    return TemplateList(folder, tuple(load_template(p) for p in sorted(folder.glob("*.toml"))))


def get_template(name: str, folder: Path | None = None) -> Template:
    folder = folder or templates_dir()
    path = folder / f"{name}.toml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        names = ", ".join(t.name for t in list_templates(folder).templates)
        raise NotFound(f"no provider template named {name!r}", f"choose one of: {names}")
    return load_template(path)


# ----------------------------------------------------------------------------------------------- add


@dataclass(frozen=True)
class ProviderAddRequest:
    template: str
    model: str | None = None
    context: int | None = None
    base_url: str | None = None
    env_key: str | None = None
    host: str | None = None
    profile: str | None = None
    provider_id: str | None = None
    variables: tuple[tuple[str, str], ...] = ()  # --set NAME=VALUE
    model_catalog: bool = False
    instructions_file: Path | None = None
    make_default: bool = False
    dry_run: bool = False
    codex_home: Path | None = None


def resolve_variables(template: Template, req: ProviderAddRequest) -> dict[str, Any]:
    """Template defaults, overridden by the options given; every required variable must have a value."""
    values = dict(template.defaults)
    values.update(dict(req.variables))
    for name in ("model", "context", "base_url", "env_key", "host", "profile", "provider_id"):
        if getattr(req, name) is not None:
            values[name] = getattr(req, name)
    missing = [name for name in template.required if values.get(name) in (None, "")]
    if missing:
        flags = " ".join(f"{_OPTION[m]} …" if m in _OPTION else f"--set {m}=…" for m in missing)
        raise UsageError(
            f"template {template.name!r} needs {', '.join(missing)}",
            f"pass {flags} (see `localcodex provider show {template.name}`)",
        )
    return values


def render(value: Any, values: Mapping[str, Any], template: Template) -> Any:
    """Fill "{name}" placeholders in strings (recursively in tables)."""
    if isinstance(value, Mapping):
        return {render(k, values, template): render(v, values, template) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    try:
        return value.format_map(_Strict(values))
    except KeyError as exc:
        name = exc.args[0]
        raise UsageError(
            f"template {template.name!r} uses {{{name}}}, which has no value",
            f"pass --set {name}=VALUE",
        ) from None


class _Strict(dict):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def to_configure_request(template: Template, req: ProviderAddRequest) -> ConfigureRequest:
    """The ConfigureRequest that writes this template's profile."""

    values = resolve_variables(template, req)
    provider = render(template.provider, values, template)
    context = values.get("context")
    try:
        context = int(context) if context not in (None, "") else None
    except (TypeError, ValueError):
        raise UsageError(f"--context {context!r} is not a number of tokens", "e.g. --context 32768") from None
    kwargs: dict[str, Any] = {}
    if "stream_idle_timeout_ms" in provider:
        kwargs["stream_idle_timeout_ms"] = int(provider["stream_idle_timeout_ms"])
    return ConfigureRequest(
        model=values.get("model"), context=context, host=values.get("host"),
        base_url=provider.get("base_url") or req.base_url,
        profile=str(values.get("profile") or template.name.replace("-", "_")),
        provider_id=str(values.get("provider_id") or template.name.replace("-", "_")),
        provider_name=provider.get("name"), env_key=provider.get("env_key") or req.env_key,
        http_headers=tuple((provider.get("http_headers") or {}).items()),
        env_http_headers=tuple((provider.get("env_http_headers") or {}).items()),
        query_params=tuple((provider.get("query_params") or {}).items()),
        provider_extra=tuple((k, v) for k, v in provider.items() if k in PASS_THROUGH),
        extra_profile_keys=tuple(render(template.profile, values, template).items()),
        model_catalog=req.model_catalog, instructions_file=req.instructions_file,
        make_default=req.make_default, dry_run=req.dry_run, codex_home=req.codex_home,
        command=f"provider add {template.name}", **kwargs,
    )


@dataclass(frozen=True)
class ProviderAddResult:
    template: str
    notes: str
    result: ConfigureResult


def add_provider(req: ProviderAddRequest, live: Live,
                 on_progress: Callable[[str], None] | None = None) -> ProviderAddResult:
    """Write the profile for a provider template, the same safe way `configure` does."""

    template = get_template(req.template)
    creq = to_configure_request(template, req)
    result = configure(creq, live, on_progress=on_progress)
    if req.context is None and result.context_source == "--context":  # the template's default, not an option
        import dataclasses

        result = dataclasses.replace(result, context_source=f"template {template.name}")
    notes = render(template.notes, {**resolve_variables(template, req), "profile": creq.profile}, template)
    return ProviderAddResult(template.name, notes, result)
