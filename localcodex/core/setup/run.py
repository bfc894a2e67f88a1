"""`setup` itself: detect and choose, plan and ask once, then act step by step; stop at the first failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from localcodex.core.ports import Live
from localcodex.core.setup.model import (
    STEPS,
    TITLES,
    Run,
    SetupHooks,
    SetupReport,
    SetupRequest,
    Step,
    StepStatus,
    Stop,
    failed_step,
    retry_command,
)
from localcodex.core.setup.plan import confirm_plan, refuse_early
from localcodex.core.setup.state import Choices, merge_choices
from localcodex.errors import ExitCode, LocalcodexError


def setup(request: SetupRequest, live: Live, hooks: SetupHooks | None = None) -> SetupReport:
    """Plan (detect, recommend, what would change), ask once, then act; stop at the first failure.

    Never raises a LocalcodexError: it is a step result. `live` gives the invocation (environment, parsed host)
    and the adapters; the state file is read through it."""
    hooks = hooks or SetupHooks()
    host, store = live.inv.host, live.setup_state()
    state = store.load(host.native)
    choices = merge_choices({"model": request.model, "context": request.context, "vram": request.vram,
                             "ram": request.ram, "gpu_none": request.gpu_none}, state, forget=request.forget)
    effective = replace(request, model=choices.model, context=choices.context, vram=choices.vram,
                        ram=choices.ram, gpu_none=choices.gpu_none)
    run = Run(effective, hooks, live, host, live.ollama(timeout=30.0), store, state, choices=choices)
    run.given = request
    if not refuse_early(run):  # before importing the steps: a refusal without a terminal is meant to be quick
        return _report(run, choices)
    from localcodex.core.setup.choose import recommend_step, remember_result
    from localcodex.core.setup.steps import (
        bench_step,
        check_step,
        configure_step,
        detect_step,
        pull_step,
        variant_step,
    )

    ok = run_step(run, "detect", detect_step) and run_step(run, "recommend", recommend_step)
    if ok and not request.dry_run:
        ok = confirm_plan(run)
    if ok:
        for name, step in (("pull", pull_step), ("variant", variant_step), ("check", check_step),
                           ("configure", configure_step), ("bench", bench_step)):
            if not run_step(run, name, step):
                break
    report = _report(run, choices)
    if report.ok and not request.dry_run:
        remember_result(run)
    return report


def _report(run: Run, choices: Choices) -> SetupReport:
    done = {s.name for s in run.steps}
    failed = next((s.name for s in run.steps if s.status == StepStatus.FAILED), None)
    run.steps.extend(Step(n, TITLES[n], StepStatus.NOT_RUN, f"not run: setup stopped at `{failed}`")
                     for n in STEPS if n not in done)
    return SetupReport(
        steps=tuple(sorted(run.steps, key=lambda s: STEPS.index(s.name))),
        host=run.host.native, machine=run.machine, model=run.base, variant=run.variant,
        context=run.num_ctx, placement=run.placement, decode_tps=run.decode_tps, prompt_tps=run.prompt_tps,
        profile_path=run.profile_path, codex_command=run.codex_command, next_models=run.next_models,
        dry_run=run.request.dry_run,
        warnings=tuple(run.warnings), plan=run.plan, remembered=choices.remembered,
    )


def run_step(run: Run, name: str, step: Callable[[Run], Step]) -> bool:
    run.hooks.on_running(name, TITLES[name])
    start = time.monotonic()
    try:
        if run.request.dry_run and run.base and run.num_ctx is None and name in AFTER_PULL:
            result = Step(name, TITLES[name], StepStatus.PLANNED, f"decided once {run.base} is downloaded")
        else:
            with run.server.deadline(STEP_LIMITS[name], f"setup step `{name}`"):
                result = step(run)
    except Stop as stop:
        result = failed_step(name, stop.error)
    except LocalcodexError as err:
        result = failed_step(name, err)
    result = replace(result, seconds=round(time.monotonic() - start, 3), retry=retry_command(run, name))
    run.steps.append(result)
    run.warnings.extend(result.warnings)
    run.hooks.on_step(result)
    return result.status != StepStatus.FAILED


# Total seconds each step may spend talking to Ollama (the benchmark bounds each of its requests itself).
STEP_LIMITS = {"detect": 120.0, "recommend": 300.0, "pull": 6 * 3600.0, "variant": 1800.0, "check": 1800.0,
               "configure": 300.0, "bench": 6 * 3600.0}

AFTER_PULL = ("variant", "check", "configure", "bench")  # need the model's context, known after a download


def exit_code(report: SetupReport) -> ExitCode:
    failed = report.failed
    return ExitCode(failed.exit_code) if failed is not None else ExitCode.OK
