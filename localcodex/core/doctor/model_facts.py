"""doctor's facts about a model on an Ollama server: the context it really runs with (`/api/ps`, its num_ctx,
else Ollama's default), against `model_context_window`, and where it sits (GPU, CPU) or would fit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.core.doctor.endpoints import CODEX_FALLBACK_WINDOW, Endpoint
from localcodex.core.doctor.fixes import configure_command, host_flag
from localcodex.core.doctor.types import CODEX_MIN_CONTEXT, DoctorRun, Finding
from localcodex.domain.units import format_bytes
from localcodex.domain.urls import is_loopback_url
from localcodex.errors import LocalcodexError, StepTimeout

if TYPE_CHECKING:
    from localcodex.adapters.ollama import ModelDetails, OllamaServer, RunningModel
    from localcodex.domain.machine import Machine

@dataclass(frozen=True)
class ModelFacts:
    details: ModelDetails
    running: RunningModel | None
    context: int | None  # what the model gets: /api/ps when loaded, else its PARAMETER num_ctx
    source: str
    root: str  # Ollama's native root
    default_context: int | None = None  # Ollama's default when the model has no num_ctx (an estimate)
    size: int = 0  # its size as installed (/api/tags), 0 when unknown


def ollama_model_findings(run: DoctorRun, group: list[Endpoint], root: str, server: OllamaServer
                          ) -> Iterator[Finding]:
    """Context and placement of the model (once, at the first target), model_context_window (every target),
    read from `server` (the Ollama at `root`). A time limit hit (StepTimeout) is the caller's to report."""
    first = group[0]
    try:
        facts = _facts(run, server, first.model or "", root)
    except StepTimeout:
        raise
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
    size = _installed_size(server, model)
    if running is not None and running.context_length:
        return ModelFacts(details, running, running.context_length, "loaded now, /api/ps", root, size=size)
    if details.num_ctx:
        return ModelFacts(details, running, details.num_ctx, "its num_ctx parameter", root, size=size)
    default = _default_context(run, root, details)
    return ModelFacts(details, running, None, "", root, default, size=size)


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
    installed = InstalledModel(name=endpoint.model or "", size=facts.size or size,
                               digest="", modified_at="")
    try:
        return resolve_installed(LiveModel(installed, facts.details), load_catalog())
    except (ValueError, LocalcodexError):
        return None


def _installed_size(server: OllamaServer, model: str) -> int:
    try:
        found = server.find(model)
    except StepTimeout:
        raise
    except LocalcodexError:
        return 0
    return found.size if found else 0


def _server_env(run: DoctorRun) -> dict[str, str]:
    """The Ollama server's memory settings: its service's Environment= wins over this shell's variables."""
    merged = dict(run.env)
    merged.update({name: s.value for name, s in run.hostenv.service_environment().items()})
    return merged
