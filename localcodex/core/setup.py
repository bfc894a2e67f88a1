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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from localcodex.adapters.ollama import OllamaServer
from localcodex.core.setup_state import Choices, load_state, merge_choices, save_state
from localcodex.domain.machine import Machine
from localcodex.errors import ExitCode, LocalcodexError, NoFit, OllamaUnavailable, ServerError
from localcodex.paths import OllamaHost, ollama_host
from localcodex.render.output import ErrorItem, human_bytes

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
    host: str | None = None
    model: str | None = None  # skip the recommendation's pick (still evaluated for fit and context)
    context: int | None = None
    profile: str = "local_ollama"
    bench: bool = True
    dry_run: bool = False
    recheck: bool = False  # prove context, endpoint and speed again even if they were proven before
    vram: int | None = None  # detect's overrides
    ram: int | None = None
    gpu_none: bool = False
    env: Mapping[str, str] | None = None


@dataclass
class SetupHooks:
    """How core asks and reports. Defaults: answer yes, report nothing (what tests and `--yes` want)."""

    confirm: Callable[[str], bool] = lambda _question: True
    can_ask: bool = True  # False: confirm() cannot get an answer (no terminal, no --yes): fail before any work
    on_step: Callable[[Step], None] = lambda _step: None
    on_running: Callable[[str, str], None] = lambda _name, _title: None
    on_pull: Callable[[Any], None] = lambda _event: None
    on_probe: Callable[[Any], None] = lambda _event: None
    on_bench: Callable[[Any], None] = lambda _event: None


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
    dry_run: bool = False
    warnings: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()  # what this run was going to change, as asked in its one question
    remembered: tuple[str, ...] = ()  # options taken from an earlier run

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status == StepStatus.FAILED), None)

    @property
    def ok(self) -> bool:
        return self.failed is None


class _Stop(Exception):
    """Raised inside a step to end it as failed (wraps the step's own LocalcodexError); while planning, `step`
    names the step the failure belongs to."""

    def __init__(self, error: LocalcodexError, step: str = "pull") -> None:
        super().__init__(error.message)
        self.error = error
        self.step = step


@dataclass
class _Run:
    request: SetupRequest
    hooks: SetupHooks
    host: OllamaHost
    server: OllamaServer
    state: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    machine: Machine | None = None
    candidate: Any = None
    base: str | None = None
    digest: str | None = None
    variant: str | None = None
    num_ctx: int | None = None
    placement: str | None = None
    decode_tps: float | None = None
    prompt_tps: float | None = None
    profile_path: str | None = None
    codex_command: str | None = None
    choices: Choices = field(default_factory=Choices)
    given: SetupRequest | None = None  # the request as the user typed it (before remembered choices)
    changes: list[str] = field(default_factory=list)  # what changed since the last run (said, and asked)
    unload: list[Any] = field(default_factory=list)  # loaded models to unload before loading ours
    remove_old: str | None = None  # the variant an earlier setup made that this one replaces
    preview: Any = None  # configure's dry run, made while planning
    context_verified: bool = False  # /api/ps showed the variant loaded with num_ctx (check need not prove it)
    plan: tuple[str, ...] = ()


def setup(request: SetupRequest, hooks: SetupHooks | None = None) -> SetupReport:
    """Plan (detect, recommend, what would change), ask once, then act; stop at the first failure.

    Never raises a LocalcodexError: it is a step result."""
    hooks = hooks or SetupHooks()
    host = ollama_host(request.host, request.env)
    state = load_state(host.native, request.env)
    choices = merge_choices({"model": request.model, "context": request.context, "vram": request.vram,
                             "ram": request.ram, "gpu_none": request.gpu_none}, state)
    effective = replace(request, model=choices.model, context=choices.context, vram=choices.vram,
                        ram=choices.ram, gpu_none=choices.gpu_none)
    run = _Run(effective, hooks, host, OllamaServer(host, timeout=30.0), state, choices=choices)
    run.given = request
    ok = _run_step(run, "detect", _detect) and _run_step(run, "recommend", _recommend)
    if ok and not request.dry_run:
        ok = _confirm_plan(run)
    if ok:
        for name, step in (("pull", _pull), ("variant", _variant), ("check", _check), ("configure", _configure),
                           ("bench", _bench)):
            if not _run_step(run, name, step):
                break
    done = {s.name for s in run.steps}
    run.steps.extend(Step(n, TITLES[n], StepStatus.NOT_RUN, "not run: an earlier step failed")
                     for n in STEPS if n not in done)
    report = SetupReport(
        steps=tuple(sorted(run.steps, key=lambda s: STEPS.index(s.name))),
        host=host.native, machine=run.machine, model=run.base, variant=run.variant,
        context=run.num_ctx, placement=run.placement, decode_tps=run.decode_tps, prompt_tps=run.prompt_tps,
        profile_path=run.profile_path, codex_command=run.codex_command, dry_run=request.dry_run,
        warnings=tuple(run.warnings), plan=run.plan, remembered=choices.remembered,
    )
    if report.ok and not request.dry_run:
        _remember_result(run)
    return report


def _run_step(run: _Run, name: str, step: Callable[[_Run], Step]) -> bool:
    run.hooks.on_running(name, TITLES[name])
    start = time.monotonic()
    try:
        if run.request.dry_run and run.base and run.num_ctx is None and name in _AFTER_PULL:
            result = Step(name, TITLES[name], StepStatus.PLANNED, f"decided once {run.base} is downloaded")
        else:
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


_AFTER_PULL = ("variant", "check", "configure", "bench")  # need the model's context, known after a download


def _failed(name: str, err: LocalcodexError) -> Step:
    item = ErrorItem(err.code, err.message, err.hint)
    return Step(name, TITLES[name], StepStatus.FAILED, err.message, error=item, exit_code=int(err.exit_code))


def _retry(run: _Run, name: str) -> str:
    """The command that runs one step again on its own, with this run's model and host."""
    host = f" --host {run.request.host}" if run.request.host else ""
    base, variant, ctx = run.base or "MODEL", run.variant or _planned_variant(run) or "MODEL", run.num_ctx or 65536
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
    from localcodex.core.detect import Overrides, detect

    req = run.request
    overrides = Overrides(vram=req.vram, ram=req.ram, gpu_none=req.gpu_none)
    run.machine = machine = detect(overrides=overrides, ollama_host=req.host, env=req.env)
    parts = [f"{human_bytes(machine.ram_total)} RAM"]
    gpus = [g for g in machine.gpus if g.used_by_ollama]
    parts.append(", ".join(f"{g.name} ({human_bytes(g.memory_total)})" for g in gpus) if gpus else "no GPU for Ollama")
    state = machine.ollama
    if state is not None and state.reachable:
        parts.append(f"Ollama {state.version} at {run.host.native}")
    else:
        parts.append(f"Ollama not reachable at {run.host.native}")
    warnings = ()
    if machine.remote:
        warnings = (f"Ollama runs on another machine ({run.host.native}): its memory is known only from what "
                    "the server reports; pass --vram/--ram to describe it",)
    return Step("detect", TITLES["detect"], StepStatus.DONE, "; ".join(parts), warnings=warnings)


def _ollama_reachable(run: _Run) -> bool:
    state = run.machine.ollama if run.machine else None
    return bool(state and state.reachable)


def _recommend(run: _Run) -> Step:
    from localcodex.adapters.ollama import normalize_name
    from localcodex.errors import NotFound

    req = run.request
    pinned = _pinned(run)
    model = pinned[0] if pinned else req.model
    try:
        if pinned:
            pick, warnings = _pick(run, pinned[0], context=pinned[1])
        else:
            pick, warnings = _pick(run, model, context=req.context)
    except NotFound:
        if not (req.model and _ollama_reachable(run)):
            raise
        # A model the catalog does not know (an hf.co GGUF, a private tag): download it first, then evaluate it
        # from its own numbers (/api/show) right after the pull.
        run.base = normalize_name(req.model)
        return Step("recommend", TITLES["recommend"], StepStatus.DONE,
                    f"{run.base} is not in the catalog: it will be evaluated from its own numbers once downloaded",
                    warnings=tuple(run.changes))
    _take(run, pick, pinned[1] if pinned else req.context)
    run.unload = _to_unload(run)
    summary = f"{pick.model}: {human_bytes(pick.size, decimal=True)}, {run.num_ctx:,} tokens, {run.placement}, "
    summary += f"est. {pick.decode_tps:.0f} tok/s" if pick.decode_tps else "speed unknown"
    if pinned:
        summary += " (as set up before)"
    elif run.choices.remembered:
        summary += f" (remembered: {' '.join(run.choices.remembered)})"
    return Step("recommend", TITLES["recommend"], StepStatus.DONE, summary, warnings=(*run.changes, *warnings))


def _free_machine(run: _Run) -> Machine:
    """The machine with the memory of every model Ollama has loaded counted as free: setup unloads what stands
    in its way (as part of the plan it asks about), so a loaded model never makes a model look as if it did not
    fit."""
    import os

    from localcodex.core.recommend.fit import Settings
    from localcodex.core.recommend.rank import machine_without

    machine = run.machine
    state = machine.ollama if machine else None
    if machine is None or state is None or not state.loaded:
        return machine
    settings = Settings.from_env(os.environ if run.request.env is None else run.request.env, state.version)
    for loaded in state.loaded:
        machine = machine_without(machine, loaded.name, settings)
    return machine


def _pick(run: _Run, model: str | None, *, context: int | None, free: bool = True) -> tuple[Any, tuple[str, ...]]:
    """The candidate to set up (the recommendation's pick, or `model` evaluated on this machine)."""
    from localcodex.core.recommend.rank import recommend_here

    req = run.request
    machine = _free_machine(run) if free else run.machine
    result = recommend_here(machine, host=req.host, context=context, model=model, env=req.env)
    if result.pick is None and model and result.candidates:
        reason = result.candidates[0].excluded or "it is not offered"
        raise NoFit(f"{model} cannot serve Codex here: {reason}",
                    "run `localcodex recommend` to see what fits, or pass another --model")
    if result.pick is None:
        raise NoFit(f"no model with tool calling fits this machine at {result.minimum_context:,} tokens of context",
                    "see `localcodex recommend --all` for every model and why")
    # when Ollama is down the pull step says so, with the fix: no need to warn about it here too
    warnings = tuple(w for w in result.warnings if _ollama_reachable(run) or "not reachable" not in w)
    return result.pick, warnings


def _take(run: _Run, pick: Any, context: int | None = None) -> None:
    run.candidate = pick
    run.base = pick.model
    run.num_ctx = context or pick.num_ctx
    run.placement = {"gpu": "on the GPU", "multi_gpu": "split across GPUs", "unified": "in unified memory",
                     "cpu": "on the CPU", "partial": "partly on the CPU (slow)"}.get(pick.placement, pick.placement)


def _to_unload(run: _Run) -> list[Any]:
    """Loaded models to unload before ours loads: the ones it replaces (another variant of it, the model an
    earlier setup configured), and any other whose memory it needs (the pick would not sit where it does)."""
    from localcodex.adapters.ollama import same_model
    from localcodex.core.variant import base_of, variant_name

    state = run.machine.ollama if run.machine else None
    if state is None or not state.loaded or not run.base or not run.num_ctx:
        return []
    target = variant_name(run.base, run.num_ctx)
    others = [m for m in state.loaded if not same_model(m.name, target)]
    previous = (run.state.get("result") or {}).get("variant")
    replaced = [m for m in others if same_model(base_of(m.name), run.base) or same_model(m.name, run.base)
                or (previous and same_model(m.name, previous))]
    rest = [m for m in others if m not in replaced]
    if rest:
        try:
            as_is, _ = _pick(run, run.base, context=run.num_ctx, free=False)
            blocking = as_is.placement != run.candidate.placement
        except LocalcodexError:
            blocking = True
        if not blocking:
            rest = []
    return replaced + rest


def _pinned(run: _Run) -> tuple[str, int] | None:
    """(model, context) the last successful run set up, when a plain re-run should keep it: same profile, no
    new --model/--context, the model and its variant still installed, same hardware, same Ollama. Whatever
    changed goes to `run.changes` (said, and asked about)."""
    from localcodex.core.fingerprint import fingerprint

    result = run.state.get("result")
    given = run.given or run.request
    if not isinstance(result, dict) or result.get("profile") != run.request.profile or not _ollama_reachable(run):
        return None
    model, num_ctx, variant = result.get("model"), result.get("num_ctx"), result.get("variant")
    if not (isinstance(model, str) and isinstance(num_ctx, int) and isinstance(variant, str)):
        return None
    if (given.model and given.model != model) or (run.request.context and run.request.context != num_ctx):
        return None  # a new choice: decided afresh, no "what changed" to report
    changes = []
    hardware = fingerprint(run.machine)
    if result.get("hardware") and result["hardware"] != hardware.hash:
        changes.append(f"the hardware changed since the last setup (was: {result.get('hardware_label')}; "
                       f"now: {hardware.label})")
    version = run.machine.ollama.version if run.machine and run.machine.ollama else None
    if result.get("version") and version and result["version"] != version:
        changes.append(f"Ollama changed from {result['version']} to {version} since the last setup")
    try:
        if run.server.find(model) is None:
            changes.append(f"{model}, set up last time, is no longer installed")
        elif run.server.find(variant) is None:
            changes.append(f"{variant}, set up last time, is no longer installed")
    except LocalcodexError:
        return None
    run.changes.extend(changes)
    return None if changes else (model, num_ctx)


def _remember_result(run: _Run) -> None:
    """After a successful run: the explicit choices, and what was set up on which facts."""
    from localcodex.core.fingerprint import fingerprint

    if not run.base or not run.variant or not run.num_ctx or run.machine is None:
        return
    hardware = fingerprint(run.machine)
    version = run.machine.ollama.version if run.machine.ollama else None
    result = {"model": run.base, "num_ctx": run.num_ctx, "variant": run.variant, "profile": run.request.profile,
              "hardware": hardware.hash, "hardware_label": hardware.label, "version": version}
    if run.state.get("result") == result and run.state.get("choices") == run.choices.as_state():
        return
    _save_state(run, result=result, choices=run.choices.as_state())


# -- the plan and its one question ----------------------------------------------------------------------------


def _confirm_plan(run: _Run) -> bool:
    """Work out everything this run would change, ask once (nothing to ask when nothing changes), and record
    a refusal, or the lack of a terminal to ask on, as the failure of the first step that would change
    something. Nothing has been changed when this returns False."""
    start = time.monotonic()
    try:
        items = _plan_items(run)
        if not items and not run.changes:
            return True
        run.plan = tuple(items)
        question = _question(run, items)
        waited = time.monotonic()
        if not run.hooks.confirm(question):
            raise LocalcodexError("stopped before changing anything: the plan was not confirmed",
                                  "run `localcodex setup` again when you are ready, or see it with --dry-run",
                                  code="declined")
        start += time.monotonic() - waited
    except (LocalcodexError, _Stop) as failure:
        first, err = (failure.step, failure.error) if isinstance(failure, _Stop) else ("pull", failure)
        result = replace(_failed(first, err), seconds=round(time.monotonic() - start, 3), retry=_retry(run, first))
        run.steps.append(result)
        run.hooks.on_step(result)
        return False
    return True


def _question(run: _Run, items: list[str]) -> str:
    lines = [f"note: {c}" for c in run.changes]
    lines += ["localcodex setup will:"] + [f"  - {item}" for item in items] if items else []
    lines.append("Go ahead?")
    return "\n".join(lines)


def _plan_items(run: _Run) -> list[str]:
    """What acting on this plan changes, one line each (the profile's diff indented below its line)."""
    from localcodex.core.variant import variant_name

    _require_ollama(run)
    items = []
    base = run.base
    installed = run.server.find(base)
    if installed is None:
        size = human_bytes(run.candidate.size, decimal=True) if run.candidate else "size unknown"
        items.append(f"download {base} ({size}) into Ollama at {run.host.native}")
    if run.num_ctx:
        name = variant_name(base, run.num_ctx)
        if installed is None or run.server.find(name) is None:
            items.append(f"create {name} (num_ctx {run.num_ctx:,})")
    for m in run.unload:
        items.append(f"unload {m.name}, which holds {human_bytes(m.size)} (as `ollama stop {m.name}` does)")
    if items and not run.hooks.can_ask:
        return items  # the question cannot be answered: no need to work out the rest first
    if run.num_ctx:
        from localcodex.core.configure import configure

        try:
            run.preview = configure(_configure_request(run, dry_run=True, ask_ollama=False))
        except LocalcodexError as err:
            raise _Stop(err, "configure") from None
        if run.preview.changed:
            for f in run.preview.files:
                if f.changed and f.role == "profile":
                    items.append(f"write the Codex profile {f.path}")
                    items.extend("      " + line for line in _diff_lines(f.diff))
                elif f.changed:
                    items.append(f"write {f.path}")
        old = _old_variant(run, variant_name(base, run.num_ctx))
        if old:
            run.remove_old = old
            items.append(f"remove {old}, made by an earlier setup and used by no Codex profile")
    return items


def _diff_lines(diff: str, limit: int = 24) -> list[str]:
    lines = [line.rstrip() for line in diff.splitlines() if line.strip() and not line.startswith(("---", "+++"))]
    return lines[:limit] + ([f"… {len(lines) - limit} more lines"] if len(lines) > limit else [])


def _old_variant(run: _Run, new: str) -> str | None:
    from localcodex.adapters.ollama import same_model
    from localcodex.core.models import profile_models

    old = (run.state.get("result") or {}).get("variant")
    if not old or same_model(old, new) or old not in (run.state.get("variants") or []):
        return None
    users = {p for p in profile_models(run.request.env).get(old, ()) if p != run.request.profile}
    if users:
        return None
    try:
        return old if run.server.find(old) is not None else None
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
    from localcodex.core.pull import pull

    _require_ollama(run)
    name, retry = run.base, _retry(run, "pull")
    installed = run.server.find(name)
    if installed is not None:
        run.digest = installed.digest
        if run.candidate is None:
            _take(run, _pick(run, name, context=run.request.context)[0], run.request.context)
        return Step("pull", TITLES["pull"], StepStatus.UNCHANGED,
                    f"{name} is installed ({human_bytes(installed.size, decimal=True)})")
    size = human_bytes(run.candidate.size, decimal=True) if run.candidate else "size unknown"
    if run.request.dry_run:
        return Step("pull", TITLES["pull"], StepStatus.PLANNED, f"would download {name} ({size})")
    del retry  # the one question was asked before any step changed anything
    result = pull(run.server, name, on_progress=run.hooks.on_pull)
    run.digest = result.digest
    took = f" in {result.seconds:.0f} s" if result.seconds else ""
    summary = f"downloaded {name} ({human_bytes(result.size, decimal=True)}){took}"
    if run.candidate is None:  # not in the catalog: evaluate it now, from what Ollama says about it
        pick, _warnings = _pick(run, name, context=run.request.context)
        _take(run, pick, run.request.context)
        summary += f"; fits with {run.num_ctx:,} tokens, {run.placement}"
    return Step("pull", TITLES["pull"], StepStatus.DONE, summary, warnings=tuple(result.notes))


def _variant(run: _Run) -> Step:
    from localcodex.core.variant import ensure_variant, variant_name, verify_variant

    num_ctx, base = run.num_ctx, run.base
    retry = _retry(run, "variant")
    run.variant = variant_name(base, num_ctx)
    if run.request.dry_run:
        exists = _ollama_reachable(run) and run.server.find(run.variant) is not None
        status = StepStatus.UNCHANGED if exists else StepStatus.PLANNED
        text = f"{run.variant} exists" if exists else f"would create {run.variant} (num_ctx {num_ctx:,})"
        return Step("variant", TITLES["variant"], status, text)
    for loaded in run.unload:
        run.server.unload(loaded.name)
    made = ensure_variant(run.server, base, num_ctx, **_variant_extra(run))
    if made.action != "unchanged" or made.name not in (run.state.get("variants") or []):
        _save_state(run, variants=sorted({*(run.state.get("variants") or []), made.name}))
    key = {"variant": made.name, "num_ctx": num_ctx, "digest": run.digest}
    warnings = list(made.warnings)
    if run.state.get("verified") == key and not run.request.recheck and made.action == "unchanged":
        run.placement = run.state.get("placement") or run.placement
        run.context_verified = True
        summary = f"{made.name} carries num_ctx {num_ctx:,} (verified before: {run.placement})"
        return Step("variant", TITLES["variant"], StepStatus.UNCHANGED, summary)
    verified = verify_variant(run.server, made.name, num_ctx)
    warnings.extend(verified.warnings)
    if verified.status == "mismatch":
        raise _Stop(LocalcodexError(verified.message, f"run `{retry}` after freeing memory, or pick a smaller "
                                    "--context", code="server_error", exit_code=ExitCode.SERVER_ERROR))
    if verified.status == "ok":
        run.context_verified = True
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


def _where(verified: Any) -> str:
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
    from localcodex.core.check.run import PROBES, CheckRequest, check

    retry = _retry(run, "check")
    if run.request.dry_run:
        return Step("check", TITLES["check"], StepStatus.PLANNED,
                    f"would probe {run.host.openai} with {run.variant}")
    version = run.machine.ollama.version if run.machine and run.machine.ollama else None
    key = {"variant": run.variant, "digest": run.digest, "version": version, "num_ctx": run.num_ctx}
    if run.state.get("checked") == key and not run.request.recheck:
        return Step("check", TITLES["check"], StepStatus.UNCHANGED,
                    "passed before for this model and server (--recheck to probe again)")
    # The variant step saw the model loaded with its context in /api/ps: the long-prompt probe (seconds of
    # prefill) would prove it a second time. `localcodex check` runs it.
    only = frozenset(n for n, _ in PROBES if n != "context") if run.context_verified else None
    report = check(CheckRequest(model=run.variant, host=run.request.host, env=run.request.env, only=only),
                   on_progress=run.hooks.on_probe)
    if not report.ok:
        first = report.failed[0]
        raise _Stop(LocalcodexError(f"{first.title}: {first.detail}", first.fix or f"run `{retry}` for details",
                                    code="check_failed", exit_code=ExitCode.CHECK_FAILED))
    _save_state(run, checked=key)
    warned = tuple(f"{p.title}: {p.detail}" for p in report.probes if p.status.value == "warn")
    summary = f"{report.counts.get('pass', 0)} probes passed" + (f", {len(warned)} warned" if warned else "")
    if only is not None:
        summary += " (context: verified in /api/ps)"
    return Step("check", TITLES["check"], StepStatus.DONE, summary, warnings=warned)


def _configure_request(run: _Run, *, dry_run: bool, ask_ollama: bool) -> Any:
    from localcodex.adapters.codex_cli import find_codex
    from localcodex.core.configure import ConfigureRequest

    req = run.request
    # With Codex installed, a model catalog for the profile stops its "Model metadata … not found" warning
    # and gives it the real context window (it takes Codex's own default prompt, so nothing else changes).
    # `localcodex configure` decides the same way, so the two never undo each other.
    return ConfigureRequest(model=run.variant or _planned_variant(run), context=run.num_ctx, host=req.host,
                            profile=req.profile, dry_run=dry_run, command="setup", ask_ollama=ask_ollama,
                            model_catalog=find_codex(req.env) is not None)


def _planned_variant(run: _Run) -> str | None:
    from localcodex.core.variant import variant_name

    return variant_name(run.base, run.num_ctx) if run.base and run.num_ctx else None


def _configure(run: _Run) -> Step:
    from localcodex.core.configure import configure

    req = run.request
    preview = run.preview
    if preview is None or preview.model != run.variant:
        preview = configure(_configure_request(run, dry_run=True, ask_ollama=not req.dry_run))
    run.codex_command = preview.run
    run.profile_path = str(next((f.path for f in preview.files if f.role == "profile"), ""))
    if not preview.changed:
        # already said when the profile was written: a re-run that changes nothing says nothing again
        return Step("configure", TITLES["configure"], StepStatus.UNCHANGED, f"{run.profile_path} is up to date",
                    warnings=_removed_old(run))
    if req.dry_run:
        return Step("configure", TITLES["configure"], StepStatus.PLANNED, f"would write {run.profile_path}",
                    warnings=preview.warnings)
    result = configure(_configure_request(run, dry_run=False, ask_ollama=True))
    existed = any(f.changed and not f.created for f in result.files)
    backup = f" (backup {result.backup_id})" if result.backup_id and existed else ""
    summary = f"wrote {run.profile_path}{backup}"
    return Step("configure", TITLES["configure"], StepStatus.DONE, summary,
                warnings=(*result.warnings, *_removed_old(run)))


def _removed_old(run: _Run) -> tuple[str, ...]:
    """Remove the variant this run replaces (it was in the plan), now that no profile points at it."""
    old = run.remove_old
    if not old or run.request.dry_run:
        return ()
    try:
        run.server.delete(old)
    except LocalcodexError as err:
        return (f"could not remove {old}, which an earlier setup made: {err.message}",)
    _save_state(run, variants=[v for v in run.state.get("variants") or [] if v != old])
    return ()


def _bench(run: _Run) -> Step:
    from localcodex.core.bench.run import setup_benchmark

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
    outcome = setup_benchmark(run.variant, host=run.request.host, machine=run.machine, on_progress=run.hooks.on_bench)
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
    run.state.update(facts)
    save_state(run.host.native, run.state, run.request.env)
