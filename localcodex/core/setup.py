"""`setup`: the whole pipeline, in order, reusing each step's own core function (no second implementation).

    detect → recommend → pull → context variant → check → configure → bench

Each step ends as one `Step` (done / unchanged / skipped / planned / failed / not run) with a one-line summary;
the first failure stops the run, keeps the steps before it, and names the command that retries that step.

Re-running is cheap and changes nothing: every step is idempotent on its own (an installed model is not
pulled, an existing variant is not re-created, an unchanged profile is not rewritten), and what is expensive
to prove again — loading the model to verify its context, the probe series of `check`, the benchmark — is
remembered in a small state file (`setup-state.json` in the data folder) keyed by host, model and digest, so
it is redone only when one of those changed (or with `recheck`). An interrupted run continues where it
stopped: Ollama resumes a pull from its partial layers, and completed steps are recognised as done.

Questions (pull this many GB? write this file?) go through `hooks.confirm`, which the command answers with
a prompt or `--yes`; core code never prompts by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

from localcodex.adapters.codex_cli import find_codex
from localcodex.adapters.ollama import OllamaServer, normalize_name
from localcodex.adapters.setup_state import SetupState
from localcodex.core.bench.command import setup_benchmark
from localcodex.core.check.run import CheckRequest, check
from localcodex.core.check.types import Probe, ProbeStarted
from localcodex.core.configure import ConfigureRequest, configure
from localcodex.core.detect import Overrides, detect
from localcodex.core.ports import Live
from localcodex.core.pull import pull
from localcodex.core.recommend.rank import Candidate, recommend_here
from localcodex.core.variant import Verification, ensure_variant, variant_name, verify_variant
from localcodex.domain.bench import BenchEvent
from localcodex.domain.envelope import ErrorItem
from localcodex.domain.machine import Machine
from localcodex.domain.progress import PullEvent, PullPlan
from localcodex.domain.units import format_bytes
from localcodex.errors import ExitCode, LocalcodexError, NoFit, NotFound, OllamaUnavailable, ServerError
from localcodex.paths import OllamaHost

STEPS = ("detect", "recommend", "pull", "variant", "check", "configure", "bench")
TITLES = {
    "detect": "Measure this machine",
    "recommend": "Choose a model that fits",
    "pull": "Download the model",
    "variant": "Give it a context for Codex",
    "check": "Prove the /v1 endpoint",
    "configure": "Write the Codex profile",
    "bench": "Measure tokens per second",
}


class StepStatus(str, Enum):
    DONE = "done"
    UNCHANGED = "unchanged"  # already true: nothing to do
    SKIPPED = "skipped"  # not wanted (--no-bench)
    PLANNED = "planned"  # --dry-run: what would happen
    FAILED = "failed"
    NOT_RUN = "not run"  # an earlier step failed


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    status: StepStatus
    summary: str
    seconds: float = 0.0
    retry: str | None = None  # the command that runs this step again on its own
    error: ErrorItem | None = None
    warnings: tuple[str, ...] = ()
    exit_code: int = 0  # of the error that failed the step


@dataclass(frozen=True)
class SetupRequest:
    model: str | None = None  # skip the recommendation's pick (still evaluated for fit and context)
    context: int | None = None
    profile: str = "local_ollama"
    bench: bool = True
    dry_run: bool = False
    recheck: bool = False  # prove context, endpoint and speed again even if they were proven before
    vram: int | None = None  # detect's overrides
    ram: int | None = None
    gpu_none: bool = False
    host: str | None = None  # --host as typed, only to name it in retry commands (the server is the invocation's)


@dataclass
class SetupHooks:
    """How core asks and reports. Defaults: answer yes, report nothing (what tests and `--yes` want)."""

    confirm: Callable[[str], bool] = lambda _question: True
    on_step: Callable[[Step], None] = lambda _step: None
    on_running: Callable[[str, str], None] = lambda _name, _title: None
    on_pull: Callable[[PullPlan | PullEvent], None] = lambda _event: None
    on_probe: Callable[[ProbeStarted | Probe], None] = lambda _event: None
    on_bench: Callable[[BenchEvent], None] = lambda _event: None


@dataclass(frozen=True)
class SetupReport:
    steps: tuple[Step, ...]
    host: str
    machine: Machine | None = None
    model: str | None = None  # the base model (as pulled)
    variant: str | None = None  # the model Codex uses (base with num_ctx baked in)
    context: int | None = None
    placement: str | None = None  # where it runs, as verified after loading (or as estimated)
    decode_tps: float | None = None  # measured
    prompt_tps: float | None = None
    profile_path: str | None = None
    codex_command: str | None = None
    next_models: tuple[str, ...] = ()  # the recommendation's runners-up, offered when tool calling fails
    dry_run: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status == StepStatus.FAILED), None)

    @property
    def ok(self) -> bool:
        return self.failed is None


T = TypeVar("T")


def _known(value: T | None, what: str) -> T:
    """A fact an earlier step established: the steps run in order, so a later one finds it set."""
    if value is None:
        raise LocalcodexError(f"internal error: {what} is not known at this step", "please report it")
    return value


class _Stop(Exception):
    """Raised inside a step to end it as failed (wraps the step's own LocalcodexError)."""

    def __init__(self, error: LocalcodexError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Run:
    request: SetupRequest
    hooks: SetupHooks
    live: Live
    host: OllamaHost
    server: OllamaServer
    store: SetupState
    state: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    machine: Machine | None = None
    candidate: Candidate | None = None
    base: str | None = None
    digest: str | None = None
    variant: str | None = None
    num_ctx: int | None = None
    placement: str | None = None
    decode_tps: float | None = None
    prompt_tps: float | None = None
    profile_path: str | None = None
    codex_command: str | None = None
    next_models: tuple[str, ...] = ()  # the recommendation's runners-up, offered when tool calling fails


def setup(request: SetupRequest, live: Live, hooks: SetupHooks | None = None) -> SetupReport:
    """Run every step in order; stop at the first failure. Never raises a LocalcodexError: it is a step result.

    `live` gives the invocation (environment, parsed host) and the adapters; the state file is read through it.
    """
    hooks = hooks or SetupHooks()
    host, store = live.inv.host, live.setup_state()
    run = _Run(request, hooks, live, host, live.ollama(timeout=30.0), store, store.load(host.native))
    for name, step in (
        ("detect", _detect), ("recommend", _recommend), ("pull", _pull), ("variant", _variant),
        ("check", _check), ("configure", _configure), ("bench", _bench),
    ):  # fmt: skip
        if not _run_step(run, name, step):
            break
    done = {s.name for s in run.steps}
    run.steps.extend(Step(n, TITLES[n], StepStatus.NOT_RUN, "not run: an earlier step failed")
                     for n in STEPS if n not in done)
    return SetupReport(
        steps=tuple(run.steps), host=host.native, machine=run.machine, model=run.base, variant=run.variant,
        context=run.num_ctx, placement=run.placement, decode_tps=run.decode_tps, prompt_tps=run.prompt_tps,
        profile_path=run.profile_path, codex_command=run.codex_command, dry_run=request.dry_run,
        warnings=tuple(run.warnings),
    )


def _run_step(run: _Run, name: str, step: Callable[[_Run], Step]) -> bool:
    run.hooks.on_running(name, TITLES[name])
    start = time.monotonic()
    try:
        if run.request.dry_run and run.base and run.num_ctx is None and name in _AFTER_PULL:
            result = Step(name, TITLES[name], StepStatus.PLANNED, f"decided once {run.base} is downloaded")
        else:
            with run.server.deadline(STEP_LIMITS[name], f"setup step `{name}`"):
                result = step(run)
    except _Stop as stop:
        result = _failed(name, stop.error)
    except LocalcodexError as err:
        result = _failed(name, err)
    result = replace(result, seconds=round(time.monotonic() - start, 3), retry=_retry(run, name))
    run.steps.append(result)
    run.warnings.extend(result.warnings)
    run.hooks.on_step(result)
    return result.status != StepStatus.FAILED


# Total seconds each step may spend talking to Ollama (the benchmark bounds each of its requests itself).
STEP_LIMITS = {"detect": 120.0, "recommend": 300.0, "pull": 6 * 3600.0, "variant": 1800.0, "check": 1800.0,
               "configure": 300.0, "bench": 6 * 3600.0}

_AFTER_PULL = ("variant", "check", "configure", "bench")  # need the model's context, known after a download


def _failed(name: str, err: LocalcodexError) -> Step:
    item = ErrorItem(err.code, err.message, err.hint)
    return Step(name, TITLES[name], StepStatus.FAILED, err.message, error=item, exit_code=int(err.exit_code))


def _retry(run: _Run, name: str) -> str:
    """The command that runs one step again on its own, with this run's model and host."""
    host = f" --host {run.request.host}" if run.request.host else ""
    base, variant, ctx = run.base or "MODEL", run.variant or "MODEL", run.num_ctx or 65536
    commands = {
        "detect": "localcodex detect",
        "recommend": "localcodex recommend" + (f" --model {run.request.model}" if run.request.model else ""),
        "pull": f"localcodex pull {base}",
        "variant": f"localcodex models context {base} --ctx {ctx}",
        "check": f"localcodex check --model {variant}",
        "configure": f"localcodex configure --model {variant} --context {ctx} --profile {run.request.profile}",
        "bench": f"localcodex bench {variant}",
    }
    return commands[name] + host


def exit_code(report: SetupReport) -> ExitCode:
    failed = report.failed
    return ExitCode(failed.exit_code) if failed is not None else ExitCode.OK


# -- the steps ------------------------------------------------------------------------------------------------


def _detect(run: _Run) -> Step:
    req = run.request
    overrides = Overrides(vram=req.vram, ram=req.ram, gpu_none=req.gpu_none)
    run.machine = machine = detect(overrides=overrides, ollama_host=run.host, env=run.live.inv.env)
    parts = [f"{format_bytes(machine.ram_total)} RAM"]
    gpus = [g for g in machine.gpus if g.used_by_ollama]
    parts.append(", ".join(f"{g.name} ({format_bytes(g.memory_total)})" for g in gpus) if gpus else "no GPU for Ollama")
    state = machine.ollama
    if state is not None and state.reachable:
        parts.append(f"Ollama {state.version} at {run.host.native}")
    else:
        parts.append(f"Ollama not reachable at {run.host.native}")
    warnings: tuple[str, ...] = ()
    if machine.remote:
        warnings = (f"Ollama runs on another machine ({run.host.native}): its memory is known only from what "
                    "the server reports; pass --vram/--ram to describe it",)
    return Step("detect", TITLES["detect"], StepStatus.DONE, "; ".join(parts), warnings=warnings)


def _ollama_reachable(run: _Run) -> bool:
    state = run.machine.ollama if run.machine else None
    return bool(state and state.reachable)


def _recommend(run: _Run) -> Step:
    req = run.request
    remembered = None if req.model else _remembered_model(run)
    model = req.model or remembered
    try:
        pick, warnings = _pick(run, model)
    except NotFound:
        if req.model:
            _require_ollama(run)  # a model the catalog does not know may well exist: Ollama is what is missing
        if not (req.model and _ollama_reachable(run)):
            raise
        # A model the catalog does not know (an hf.co GGUF, a private tag): download it first, then evaluate it
        # from its own numbers (/api/show) right after the pull.
        run.base = normalize_name(req.model)
        return Step("recommend", TITLES["recommend"], StepStatus.DONE,
                    f"{run.base} is not in the catalog: it will be evaluated from its own numbers once downloaded")
    _take(run, pick)
    summary = f"{pick.model}: {format_bytes(pick.size, decimal=True)}, {run.num_ctx:,} tokens, {run.placement}, "
    summary += f"est. {pick.decode_tps:.0f} tok/s" if pick.decode_tps else "speed unknown"
    if remembered:
        summary += " (chosen by the previous run)"
    return Step("recommend", TITLES["recommend"], StepStatus.DONE, summary, warnings=warnings)


def _pick(run: _Run, model: str | None) -> tuple[Candidate, tuple[str, ...]]:
    """The candidate to set up (the recommendation's pick, or `model` evaluated on this machine)."""
    req = run.request
    result = recommend_here(_known(run.machine, "the machine"), run.live, context=req.context, model=model)
    if result.pick is None and model and result.candidates:
        reason = result.candidates[0].excluded or "it is not offered"
        raise NoFit(f"{model} cannot serve Codex here: {reason}",
                    "run `localcodex recommend` to see what fits, or pass another --model")
    if result.pick is None:
        raise NoFit(f"no model with tool calling fits this machine at {result.minimum_context:,} tokens of context",
                    "see `localcodex recommend --all` for every model and why")
    # when Ollama is down the pull step says so, with the fix: no need to warn about it here too
    warnings = tuple(w for w in result.warnings if _ollama_reachable(run) or "not reachable" not in w)
    if not model:
        run.next_models = tuple(c.model for c in result.candidates if c.offered and c.model != result.pick.model)[:3]
    else:
        others = recommend_here(_known(run.machine, "the machine"), run.live, context=req.context)
        run.next_models = tuple(c.model for c in others.candidates if c.offered and c.model != result.pick.model)[:3]
    return result.pick, warnings


def _take(run: _Run, pick: Candidate) -> None:
    run.candidate = pick
    run.base = pick.model
    run.num_ctx = run.request.context or pick.num_ctx
    run.placement = {"gpu": "on the GPU", "multi_gpu": "split across GPUs", "unified": "in unified memory",
                     "cpu": "on the CPU", "partial": "partly on the CPU (slow)"}.get(pick.placement, pick.placement)


def _remembered_model(run: _Run) -> str | None:
    """The base model a previous run set up on this host, if it is still installed there."""
    model = run.state.get("model")
    if not model or not _ollama_reachable(run):
        return None
    try:
        return model if run.server.find(model) is not None else None
    except LocalcodexError:
        return None


def _require_ollama(run: _Run) -> None:
    if not _ollama_reachable(run):
        state = run.machine.ollama if run.machine else None
        why = f" ({state.error.rsplit(': ', 1)[-1]})" if state and state.error else ""
        raise OllamaUnavailable(
            f"Ollama is not running at {run.host.native}{why}: the model cannot be downloaded",
            "install Ollama from https://ollama.com/download and start it (`ollama serve` or the app), "
            "then run `localcodex setup` again; or point --host / OLLAMA_HOST at the machine that runs it",
        )


def _pull(run: _Run) -> Step:
    _require_ollama(run)
    name, retry = _known(run.base, "the model"), _retry(run, "pull")
    installed = run.server.find(name)
    if installed is not None:
        run.digest = installed.digest
        if run.candidate is None:
            _take(run, _pick(run, name)[0])
        return Step("pull", TITLES["pull"], StepStatus.UNCHANGED,
                    f"{name} is installed ({format_bytes(installed.size, decimal=True)})")
    size = format_bytes(run.candidate.size, decimal=True) if run.candidate else "size unknown"
    if run.request.dry_run:
        return Step("pull", TITLES["pull"], StepStatus.PLANNED, f"would download {name} ({size})")
    if not run.hooks.confirm(f"Download {name} ({size}) into Ollama at {run.host.native}?"):
        raise _Stop(LocalcodexError(f"stopped before downloading {name}: not confirmed",
                                    f"run `{retry}` when you are ready, or `localcodex setup --yes`",
                                    code="declined"))
    result = pull(run.server, name, on_progress=run.hooks.on_pull)
    run.digest = result.digest
    took = f" in {result.seconds:.0f} s" if result.seconds else ""
    summary = f"downloaded {name} ({format_bytes(result.size, decimal=True)}){took}"
    if run.candidate is None:  # not in the catalog: evaluate it now, from what Ollama says about it
        pick, _warnings = _pick(run, name)
        _take(run, pick)
        summary += f"; fits with {run.num_ctx:,} tokens, {run.placement}"
    return Step("pull", TITLES["pull"], StepStatus.DONE, summary, warnings=tuple(result.notes))


def _variant(run: _Run) -> Step:
    num_ctx, base = _known(run.num_ctx, "the context"), _known(run.base, "the model")
    retry = _retry(run, "variant")
    run.variant = variant_name(base, num_ctx)
    if run.request.dry_run:
        exists = _ollama_reachable(run) and run.server.find(run.variant) is not None
        status = StepStatus.UNCHANGED if exists else StepStatus.PLANNED
        text = f"{run.variant} exists" if exists else f"would create {run.variant} (num_ctx {num_ctx:,})"
        return Step("variant", TITLES["variant"], status, text)
    made = ensure_variant(run.server, base, num_ctx, **_variant_extra(run))
    key = {"variant": made.name, "num_ctx": num_ctx, "digest": run.digest}
    warnings = list(made.warnings)
    if run.state.get("verified") == key and not run.request.recheck and made.action == "unchanged":
        run.placement = run.state.get("placement") or run.placement
        summary = f"{made.name} carries num_ctx {num_ctx:,} (verified before: {run.placement})"
        return Step("variant", TITLES["variant"], StepStatus.UNCHANGED, summary)
    verified = verify_variant(run.server, made.name, num_ctx)
    warnings.extend(verified.warnings)
    if verified.status == "mismatch":
        raise _Stop(LocalcodexError(verified.message, f"run `{retry}` after freeing memory, or pick a smaller "
                                    "--context", code="server_error", exit_code=ExitCode.SERVER_ERROR))
    if verified.status == "ok":
        run.placement = _where(verified)
        _save_state(run, verified=key, placement=run.placement)
    else:
        warnings.append(verified.message)
    status = StepStatus.DONE if made.action != "unchanged" else StepStatus.UNCHANGED
    verb = {"created": "created", "updated": "updated"}.get(made.action, "kept")
    summary = f"{verb} {made.name} (num_ctx {num_ctx:,}); loaded: {run.placement}"
    return Step("variant", TITLES["variant"], status, summary, warnings=tuple(warnings))


def _variant_extra(run: _Run) -> dict[str, Any]:
    num_batch = getattr(run.candidate, "num_batch", None)
    return {"num_batch": num_batch} if num_batch else {}


def _where(verified: Verification) -> str:
    """Where the loaded model sits, from `/api/ps` (size_vram against size)."""
    fraction = verified.gpu_fraction
    if fraction is None:
        return "placement unknown"
    if fraction >= 0.999:
        return "100% on the GPU"
    if fraction <= 0.001:
        return "100% on the CPU"
    return f"{fraction * 100:.0f}% GPU / {(1 - fraction) * 100:.0f}% CPU (slow: it spilled to the CPU)"


def _check(run: _Run) -> Step:
    retry = _retry(run, "check")
    if run.request.dry_run:
        return Step("check", TITLES["check"], StepStatus.PLANNED,
                    f"would probe {run.host.openai} with {run.variant}")
    version = run.machine.ollama.version if run.machine and run.machine.ollama else None
    key = {"variant": run.variant, "digest": run.digest, "version": version, "num_ctx": run.num_ctx}
    if run.state.get("checked") == key and not run.request.recheck:
        return Step("check", TITLES["check"], StepStatus.UNCHANGED,
                    "passed before for this model and server (--recheck to probe again)")
    report = check(CheckRequest(model=run.variant, host=run.host.native, env=run.live.inv.env),
                   on_progress=run.hooks.on_probe)
    if not report.ok:
        first = report.failed[0]
        raise _Stop(LocalcodexError(f"{first.title}: {first.detail}", first.fix or f"run `{retry}` for details",
                                    code="check_failed", exit_code=ExitCode.CHECK_FAILED))
    _save_state(run, checked=key)
    warned = tuple(f"{p.title}: {p.detail}" for p in report.probes if p.status.value == "warn")
    tools = next((p for p in report.probes if p.name == "tools"), None)
    if tools is not None and tools.status.value == "warn":
        nxt = run.next_models[0] if run.next_models else None
        offer = f"; try the next model: `localcodex setup --model {nxt}`" if nxt else ""
        warned += (f"tool calling does not work with {run.base} here: Codex cannot run commands or edit files "
                   f"with it{offer}",)
    summary = f"{report.counts.get('pass', 0)} probes passed" + (f", {len(warned)} warned" if warned else "")
    return Step("check", TITLES["check"], StepStatus.DONE, summary, warnings=warned)


def _configure(run: _Run) -> Step:
    req = run.request
    retry = _retry(run, "configure")
    # With Codex installed, a model catalog for the profile stops its "Model metadata … not found" warning
    # and gives it the real context window (it takes Codex's own default prompt, so nothing else changes).
    creq = ConfigureRequest(model=run.variant, context=run.num_ctx, host=run.host.native, profile=req.profile,
                            dry_run=True, command="setup", ask_ollama=not req.dry_run,
                            model_catalog=find_codex(run.live.inv.env) is not None)
    preview = configure(creq, run.live)
    run.codex_command = preview.run
    run.profile_path = str(next((f.path for f in preview.files if f.role == "profile"), ""))
    if not preview.changed:
        return Step("configure", TITLES["configure"], StepStatus.UNCHANGED,
                    f"{run.profile_path} is up to date", warnings=preview.warnings)
    if req.dry_run:
        return Step("configure", TITLES["configure"], StepStatus.PLANNED, f"would write {run.profile_path}",
                    warnings=preview.warnings)
    if not run.hooks.confirm(f"Write the Codex profile {run.profile_path}?"):
        raise _Stop(LocalcodexError(f"stopped before writing {run.profile_path}: not confirmed",
                                    f"run `{retry}` when you are ready", code="declined"))
    result = configure(replace(creq, dry_run=False), run.live)
    backup = f" (backup {result.backup_id})" if result.backup_id else ""
    return Step("configure", TITLES["configure"], StepStatus.DONE, f"wrote {run.profile_path}{backup}",
                warnings=result.warnings)


def _bench(run: _Run) -> Step:
    retry = _retry(run, "bench")
    if not run.request.bench:
        return Step("bench", TITLES["bench"], StepStatus.SKIPPED, "skipped (--no-bench)")
    if run.request.dry_run:
        return Step("bench", TITLES["bench"], StepStatus.PLANNED, f"would benchmark {run.variant}")
    key = {"variant": run.variant, "digest": run.digest}
    remembered = run.state.get("benched")
    if remembered and remembered.get("key") == key and not run.request.recheck:
        run.decode_tps, run.prompt_tps = remembered.get("decode_tps"), remembered.get("prompt_tps")
        return Step("bench", TITLES["bench"], StepStatus.UNCHANGED,
                    f"measured before: {_speed(run)} (`{retry}` to measure again)")
    outcome = setup_benchmark(_known(run.variant, "the variant"), run.live, machine=run.machine,
                              on_progress=run.hooks.on_bench)
    if not outcome.decode_tps:
        why = outcome.warnings[0] if outcome.warnings else "no run finished"
        raise ServerError(f"the benchmark of {run.variant} measured nothing: {why}",
                          f"run `{retry}` to see each run, or `localcodex setup --no-bench` to skip it")
    run.decode_tps, run.prompt_tps = outcome.decode_tps, outcome.prompt_tps
    _save_state(run, benched={"key": key, "decode_tps": run.decode_tps, "prompt_tps": run.prompt_tps})
    return Step("bench", TITLES["bench"], StepStatus.DONE, _speed(run), warnings=outcome.warnings)


def _speed(run: _Run) -> str:
    decode = f"{run.decode_tps:.1f} tok/s decode" if run.decode_tps else "decode not measured"
    prompt = f", {run.prompt_tps:,.0f} tok/s prompt" if run.prompt_tps else ""
    return decode + prompt


# -- remembered state -----------------------------------------------------------------------------------------


def _save_state(run: _Run, **facts: Any) -> None:
    run.state.update(facts, model=run.base)
    run.store.save(run.host.native, run.state)
