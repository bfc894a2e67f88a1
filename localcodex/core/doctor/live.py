"""The online half of `doctor`: what the servers behind each configured provider say.

For every distinct (base_url, model, env_key) the configuration uses, `check` runs its quick probes (reachable,
right URL, server version, model pulled + tools, auth); `deep=True` adds the generating ones (Responses API,
tool call, context truncation, chat). When the server is Ollama, doctor then reads the model's real context
(`/api/show` num_ctx, `/api/ps` context_length) to compare with `model_context_window`, where the loaded model
sits (`/api/ps` size_vram vs size), and, on this machine, whether it fits the memory budget `detect` measures.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.core.doctor.fixes import configure_command, host_flag, ollama_root
from localcodex.core.doctor.offline import provider_table
from localcodex.core.doctor.types import (
    CODEX_MIN_CONTEXT,
    DoctorRun,
    DoctorStep,
    Finding,
    Severity,
    Target,
    dotted,
)
from localcodex.domain.units import format_bytes
from localcodex.domain.urls import is_loopback_url
from localcodex.errors import LocalcodexError

if TYPE_CHECKING:
    from localcodex.adapters.ollama import ModelDetails, OllamaServer, RunningModel
    from localcodex.core.check.run import CheckReport, Probe
    from localcodex.domain.machine import Machine

QUICK_PROBES = frozenset({"reachable", "url", "server", "model", "auth"})
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


# -- the run ----------------------------------------------------------------------------------------------------


def live_findings(run: DoctorRun, targets: tuple[Target, ...]) -> None:
    from localcodex.paths import ollama_host

    probed_roots: set[str] = set()
    for group in endpoint_groups(run, targets):
        run.report(DoctorStep("probe", f"{group[0].target.command}: {group[0].base_url}"))
        root = _probe_group(run, group)
        if root:
            probed_roots.add(root.rstrip("/"))
    default = ollama_host(run.req.host, run.env)
    if default.native.rstrip("/") not in probed_roots:
        run.report(DoctorStep("probe", default.native))
        run.add(*_default_server(run, default.native, bool(targets)))


def _probe_group(run: DoctorRun, group: list[Endpoint]) -> str | None:
    """Run check once for a group of endpoints and turn its probes into findings; returns Ollama's root.

    What concerns a file (base_url, auth) is reported at every target's own file; what concerns the server or
    the model once, at the first. When the base_url is wrong but check found the right one, the rest is probed
    there: the user learns in one run what would still be wrong after fixing the URL.
    """
    first = group[0]
    report = _check(run, first, first.base_url, _probes(run, first))
    for endpoint in group:
        run.add(*(f for f in probe_findings(run, endpoint, report) if endpoint is first or f.id in _PER_FILE))
    url_failed = any(report.probe(n).status.value == "fail" for n in ("reachable", "url"))
    if url_failed and report.suggested_base_url:
        report = _check(run, first, report.suggested_base_url, _probes(run, first) - {"reachable", "url"})
        run.add(*(f for f in probe_findings(run, first, report) if f.id not in _URL_FINDINGS))
    return _ollama_facts(run, group, report)


_URL_FINDINGS = ("base-url-unreachable", "base-url-wrong")
_PER_FILE = (*_URL_FINDINGS, "auth-rejected")


def _probes(run: DoctorRun, endpoint: Endpoint) -> frozenset[str]:
    from localcodex.core.check.run import PROBES

    if endpoint.model is None:
        return frozenset({"reachable", "url", "server"})
    return frozenset(name for name, _ in PROBES) if run.req.deep else QUICK_PROBES


def _check(run: DoctorRun, endpoint: Endpoint, base_url: str, only: frozenset[str]) -> CheckReport:
    from localcodex.core.check.run import CheckRequest, check

    return check(CheckRequest(
        model=endpoint.model or "-", host=run.req.host, base_url=base_url, env_key=endpoint.env_key,
        min_context=CODEX_MIN_CONTEXT, timeout=run.req.probe_timeout, headers=endpoint.headers, env=run.env,
        only=only,
    ))


def _ollama_facts(run: DoctorRun, group: list[Endpoint], report: CheckReport) -> str | None:
    from localcodex.domain.urls import native_root

    if report.server != "ollama":
        return None
    root = native_root(report.suggested_base_url or report.base_url)
    run.ollama_version = run.ollama_version or report.server_version
    model_probe = report.probe("model")
    if group[0].model and model_probe.status.value in ("pass", "warn"):
        run.add(*ollama_model_findings(run, group, root))
    return root


# -- check's probes as findings ---------------------------------------------------------------------------------


def probe_findings(run: DoctorRun, endpoint: Endpoint, report: CheckReport) -> Iterator[Finding]:
    for probe in report.probes:
        if probe.status.value not in ("fail", "warn") or probe.data.get("requested") is False:
            continue
        handler = _HANDLERS.get(probe.name, _generic)
        yield from handler(run, endpoint, report, probe)


def _reachable(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    suggested = probe.data.get("suggested")
    local = is_loopback_url(endpoint.base_url)
    message = (f"{endpoint.target.command} cannot reach its server: {probe.detail}. Codex retries a dead server "
               "forever (\"Reconnecting... waiting for network\")")
    if suggested:
        message += f"; {suggested} answers instead (wrong port?)"
    command = endpoint.configure(str(suggested)) if suggested and local else None
    if not suggested and local and _ollama_port(endpoint.base_url):
        fix, command = "start Ollama (`ollama serve`, or open the Ollama app), then run doctor again", "ollama serve"
    else:
        fix = probe.fix or "check the host and port in base_url"
    _drop_static_base_url(run, endpoint)
    yield endpoint.located(endpoint.base_key, "base-url-unreachable", "error", message, fix, command)


def _ollama_port(url: str) -> bool:
    return urllib.parse.urlsplit(url).port == 11434


def _url(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    if probe.status.value == "warn":  # a trailing slash: Codex trims it
        return
    suggested = probe.data.get("suggested")
    answered = probe.data.get("answered")
    message = f"base_url is wrong for {endpoint.target.command}: {probe.detail}"
    if answered and str(answered) not in message:
        message += f" (answered: {answered})"
    command = endpoint.configure(str(suggested)) if suggested and is_loopback_url(str(suggested)) else None
    _drop_static_base_url(run, endpoint)
    yield endpoint.located(endpoint.base_key, "base-url-wrong", "error", message,
                           probe.fix or "correct base_url", command)


def _drop_static_base_url(run: DoctorRun, endpoint: Endpoint) -> None:
    """The probe's finding says the same as the offline one, with what actually answered: keep only it."""
    origin = endpoint.target.origin(endpoint.base_key)
    where, key = (str(origin.path) if origin else None), dotted(endpoint.base_key)
    run.findings[:] = [f for f in run.findings if not (f.id == "base-url-wrong" and f.file == where and f.key == key)]


def _server(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    severity: Severity = "error" if probe.status.value == "fail" else "warning"
    yield Finding("ollama-too-old", severity, f"{endpoint.base_url}: {probe.detail}", None, None, None,
                  probe.fix or "upgrade Ollama: https://ollama.com/download", None)


def _model(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    model = endpoint.model or ""
    if probe.status.value == "warn":
        yield endpoint.located(("model",), "model-unverified", "warning", probe.detail, probe.fix or "")
    elif "capabilities" in probe.data:
        yield endpoint.located(("model",), "model-no-tools", "error", probe.detail,
                               probe.fix or "pick a model that can call tools", "localcodex recommend")
    else:
        yield endpoint.located(("model",), "model-not-pulled", "error",
                               f"{endpoint.target.command} uses {model}, which is not on the server: {probe.detail}",
                               f"pull it: `localcodex pull {model}{host_flag(_root(report))}`",
                               f"localcodex pull {model}{host_flag(_root(report))}")


def _root(report: CheckReport) -> str:
    from localcodex.domain.urls import native_root

    return native_root(report.suggested_base_url or report.base_url)


def _auth(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    key = ("model_providers", endpoint.provider, "env_key")
    if any(f.id == "env-key-unset" and f.key == dotted(key) for f in run.findings):
        return  # already reported offline, with the shell start-up story
    severity = "error" if probe.status.value == "fail" else "warning"
    if probe.data.get("host_check"):  # Ollama's allowed-host check, not a key: point at base_url
        yield endpoint.located(endpoint.base_key, "host-rejected", severity,
                               f"{endpoint.target.command}: {probe.detail}", probe.fix or "")
        return
    yield endpoint.located(key if endpoint.env_key else endpoint.base_key, "auth-rejected", severity,
                           f"{endpoint.target.command}: {probe.detail}", probe.fix or "check the key")


def _generic(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    severity = "error" if probe.status.value == "fail" else "warning"
    yield endpoint.located(("model",), f"endpoint-{probe.name}", severity,
                           f"{endpoint.target.command}: {probe.title}: {probe.detail}", probe.fix or "")


_HANDLERS = {"reachable": _reachable, "url": _url, "server": _server, "model": _model, "auth": _auth}


# -- the default Ollama host, when no configured provider pointed at it -----------------------------------------


def _default_server(run: DoctorRun, native: str, configured: bool) -> Iterator[Finding]:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.core.check.run import judge_version
    from localcodex.paths import ollama_host

    server = OllamaServer(ollama_host(native, {}), timeout=5.0)
    try:
        version = server.version()
    except LocalcodexError as exc:
        quiet: Severity = "info" if configured else "warning"
        yield Finding("ollama-unreachable", quiet, f"no Ollama answers at {native} ({exc.message})", None,
                      "OLLAMA_HOST", None, "start it (`ollama serve`, or open the Ollama app), or pass --host",
                      "ollama serve")
        return
    run.ollama_version = run.ollama_version or version
    verdict = judge_version(version)
    if verdict.status.value in ("fail", "warn"):
        old: Severity = "error" if verdict.status.value == "fail" else "warning"
        yield Finding("ollama-too-old", old, f"{native}: {verdict.detail}", None, None, None,
                      verdict.fix or "upgrade Ollama", None)


# -- Ollama model facts: context, placement, fit ----------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    details: ModelDetails
    running: RunningModel | None
    context: int | None  # what the model gets: /api/ps when loaded, else its PARAMETER num_ctx
    source: str
    root: str  # Ollama's native root
    default_context: int | None = None  # Ollama's default when the model has no num_ctx (an estimate)


def ollama_model_findings(run: DoctorRun, group: list[Endpoint], root: str) -> Iterator[Finding]:
    """Context and placement of the model (once, at the first target), model_context_window (every target)."""
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.paths import ollama_host

    first = group[0]
    server = OllamaServer(ollama_host(root, {}), timeout=10.0)
    try:
        facts = _facts(run, server, first.model or "", root)
    except LocalcodexError as exc:
        yield first.located(("model",), "model-unverified", "warning",
                            f"could not read {first.model} from {root}: {exc.message}", exc.hint or "")
        return
    context = facts.context if facts.context is not None else facts.default_context
    if context is not None and context < CODEX_MIN_CONTEXT:
        yield _context_small(run, first, facts, context)
    for endpoint in group:
        yield from _window_findings(endpoint, facts)
    yield from _placement_findings(run, first, root, facts)


def _facts(run: DoctorRun, server: OllamaServer, model: str, root: str) -> ModelFacts:
    from localcodex.adapters.ollama import same_model

    details = server.show(model)
    running = next((m for m in server.ps() if same_model(m.name, model)), None)
    if running is not None and running.context_length:
        return ModelFacts(details, running, running.context_length, "loaded now, /api/ps", root)
    if details.num_ctx:
        return ModelFacts(details, running, details.num_ctx, "its num_ctx parameter", root)
    default = _default_context(run, root, details)
    return ModelFacts(details, running, None, "", root, default)


def _default_context(run: DoctorRun, root: str, details: ModelDetails) -> int:
    """Ollama's context for a model without num_ctx: OLLAMA_CONTEXT_LENGTH, else the VRAM tier (fact sheet §3)."""
    service = run.hostenv.service_environment().get("OLLAMA_CONTEXT_LENGTH")
    text = service.value if service else run.env.get("OLLAMA_CONTEXT_LENGTH", "")
    try:
        value = int(text.strip().strip("\"'"))
    except ValueError:
        value = 0
    if value <= 0:
        vram = _total_vram(run) if is_loopback_url(root) else 0
        value = 262_144 if vram >= 47 * 1024**3 else 32_768 if vram >= 23 * 1024**3 else 4_096
    return min(value, details.context_length) if details.context_length else value


def _total_vram(run: DoctorRun) -> int:
    machine = _machine(run)
    if machine is None:
        return 0
    return sum(g.memory_total or 0 for g in machine.gpus if g.used_by_ollama)


def _machine(run: DoctorRun) -> Machine | None:
    """This machine as detect measures it (once per run), or the one the caller passed."""
    if run.req.machine is not None:
        return run.req.machine
    if not run.machine_detected:
        from localcodex.core.detect import detect
        from localcodex.paths import ollama_host

        run.machine_detected = True
        try:
            run.machine = detect(env=run.env, ollama_host=ollama_host(run.req.host, run.env), root=run.req.root)
        except LocalcodexError:
            run.machine = None
    return run.machine


def _window_findings(endpoint: Endpoint, facts: ModelFacts) -> Iterator[Finding]:
    """model_context_window against the context the model really runs with (known, not estimated)."""
    window = endpoint.target.merged.get("model_context_window")
    if facts.context is None:
        return
    if isinstance(window, int) and not isinstance(window, bool):
        yield from _window_mismatch(endpoint, facts, window)
    elif window is None and facts.context < CODEX_FALLBACK_WINDOW:
        yield endpoint.located(
            ("model",), "context-window-unset", "warning",
            f"no model_context_window for {endpoint.model} ({endpoint.target.command}): Codex assumes "
            f"{CODEX_FALLBACK_WINDOW:,} tokens for a model it has no metadata for, but the model holds "
            f"{facts.context:,} ({facts.source}); long sessions overflow it and Ollama cuts the start of the "
            "prompt silently",
            f"set model_context_window = {facts.context}", endpoint.configure())


def _context_small(run: DoctorRun, endpoint: Endpoint, facts: ModelFacts, context: int) -> Finding:
    model = endpoint.model or ""
    if facts.context is None:
        how = (f"has no num_ctx of its own, so Ollama gives it its default context, {context:,} tokens here "
               "(4,096 below 23 GiB of VRAM unless OLLAMA_CONTEXT_LENGTH says otherwise)")
    else:
        how = f"runs with a context of {context:,} tokens ({facts.source})"
    from localcodex.core.variant import variant_name

    size = _suggested_context(run, endpoint, facts)
    create = f"localcodex models context {model} --ctx {size}{host_flag(facts.root)}"
    variant = variant_name(model, size)
    point = configure_command(endpoint.target.profile, provider=endpoint.provider, model=variant, host=facts.root)
    return endpoint.located(
        ("model",), "model-context-small", "error",
        f"{model} {how}: Codex needs at least {CODEX_MIN_CONTEXT:,} (its instructions and tools alone take 4-6k "
        "tokens) and longer prompts are cut silently",
        f"`{create}` creates {variant}, which carries {size:,} tokens (a size that fits this machine); then point "
        f"the profile at it: `{point}`", create)


def _suggested_context(run: DoctorRun, endpoint: Endpoint, facts: ModelFacts) -> int:
    """A context that fits this machine (fit.choose_context), else 32,768."""
    resolved = _resolved(run, endpoint, facts)
    machine = _machine(run) if is_loopback_url(endpoint.base_url) else None
    if resolved is None or machine is None:
        return 32_768
    from localcodex.core.recommend.context import choose_context
    from localcodex.core.recommend.fit import Settings

    choice = choose_context(resolved.model, machine, Settings.from_env(_server_env(run)))
    return choice.num_ctx if choice.num_ctx and choice.num_ctx >= CODEX_MIN_CONTEXT else 32_768


def _window_mismatch(endpoint: Endpoint, facts: ModelFacts, window: int) -> Iterator[Finding]:
    assert facts.context is not None
    if window == facts.context:
        return
    model = endpoint.model or ""
    if window > facts.context:
        yield endpoint.located(
            ("model_context_window",), "context-window-mismatch", "error",
            f"model_context_window = {window:,} but {model} holds only {facts.context:,} tokens ({facts.source}): "
            "Codex keeps filling past what the model sees, and Ollama cuts the start of the prompt silently",
            f"set model_context_window = {facts.context}", endpoint.configure())
    else:
        yield endpoint.located(
            ("model_context_window",), "context-window-mismatch", "warning",
            f"model_context_window = {window:,} but {model} holds {facts.context:,} tokens ({facts.source}): Codex "
            "compacts the conversation long before it needs to",
            f"set model_context_window = {facts.context}", endpoint.configure())


def _placement_findings(run: DoctorRun, endpoint: Endpoint, root: str, facts: ModelFacts) -> Iterator[Finding]:
    running = facts.running
    if running is not None and running.size:
        yield from _on_cpu(run, endpoint, running, is_loopback_url(root))
        return
    if is_loopback_url(root):
        yield from _fit(run, endpoint, facts)


def _on_cpu(run: DoctorRun, endpoint: Endpoint, running: RunningModel, local: bool) -> Iterator[Finding]:
    if running.size_vram >= running.size:
        return
    machine = _machine(run) if local else None
    has_gpu = machine is not None and any(g.used_by_ollama for g in machine.gpus)
    if running.size_vram == 0 and not has_gpu:
        return  # a CPU-only machine: nothing better is possible
    share = 100 * (running.size - running.size_vram) / running.size
    yield endpoint.located(
        ("model",), "model-on-cpu", "warning",
        f"{endpoint.model} is loaded with {share:.0f}% of it on the CPU ({format_bytes(running.size_vram)} of "
        f"{format_bytes(running.size)} in VRAM, /api/ps): every token waits for the CPU-resident layers",
        "use a smaller context or a smaller model that fits the GPU (`localcodex recommend` shows what fits)",
        "localcodex recommend")


def _fit(run: DoctorRun, endpoint: Endpoint, facts: ModelFacts) -> Iterator[Finding]:
    context = facts.context or facts.default_context
    machine = _machine(run)
    resolved = _resolved(run, endpoint, facts)
    if machine is None or resolved is None or context is None:
        return
    from localcodex.core.recommend.fit import Settings, place
    fit = place(resolved.model, context, machine, Settings.from_env(_server_env(run), run.ollama_version))
    others = machine.ollama.loaded if machine.ollama else ()
    held = f" ({len(others)} other loaded model(s) hold memory now; Ollama unloads idle ones)" if others else ""
    if not fit.fits:
        yield endpoint.located(
            ("model",), "model-no-fit", "warning" if others else "error",
            f"{endpoint.model} at {context:,} tokens needs about {format_bytes(fit.need.total)}, more than this "
            f"machine can give it ({_budget_text(machine)}){held}: it will fail to load or swap",
            "pick a model that fits (`localcodex recommend`), or a smaller context", "localcodex recommend")
    elif fit.slow:
        yield endpoint.located(
            ("model",), "model-on-cpu", "warning",
            f"{endpoint.model} at {context:,} tokens would run partly on the CPU ({fit.gpu_fraction:.0%} on the GPU, "
            f"estimated: {fit.reason}){held}",
            "use a smaller context or model (`localcodex recommend` shows what fits fully)", "localcodex recommend")


def _budget_text(machine: Machine) -> str:
    budget = machine.budget
    if budget is None:
        return "budget unknown"
    gpu = f"GPU {format_bytes(budget.gpu_total)}, " if budget.gpu else ""
    return f"{gpu}RAM {format_bytes(budget.ram)}"


def _resolved(run: DoctorRun, endpoint: Endpoint, facts: ModelFacts) -> Any:
    """The model as fit sees it (catalog entry, live-overridden), or None when there is too little to go on."""
    from localcodex.adapters.ollama import InstalledModel
    from localcodex.core.recommend.live import LiveModel, resolve_installed
    from localcodex.domain.catalog import load_catalog

    size = facts.running.size if facts.running else 0
    installed = InstalledModel(name=endpoint.model or "", size=_installed_size(facts.root, endpoint) or size,
                               digest="", modified_at="")
    try:
        return resolve_installed(LiveModel(installed, facts.details), load_catalog())
    except (ValueError, LocalcodexError):
        return None


def _installed_size(root: str, endpoint: Endpoint) -> int:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.paths import ollama_host

    try:
        found = OllamaServer(ollama_host(root, {}), timeout=10.0).find(endpoint.model or "")
    except LocalcodexError:
        return 0
    return found.size if found else 0


def _server_env(run: DoctorRun) -> dict[str, str]:
    """The Ollama server's memory settings: its service's Environment= wins over this shell's variables."""
    merged = dict(run.env)
    merged.update({name: s.value for name, s in run.hostenv.service_environment().items()})
    return merged
