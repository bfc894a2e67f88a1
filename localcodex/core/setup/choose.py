"""setup's choice: the model and context to set up (remembered, pinned or recommended), what loaded models
stand in its way, and what a successful run remembers."""

from __future__ import annotations

from localcodex.core.recommend.rank import Candidate
from localcodex.core.setup.model import (
    TITLES,
    Run,
    Step,
    StepStatus,
    ollama_reachable,
    require_ollama,
    save_facts,
)
from localcodex.domain.machine import LoadedModel, Machine
from localcodex.domain.units import format_bytes
from localcodex.errors import LocalcodexError, NoFit


def recommend_step(run: Run) -> Step:
    from localcodex.domain.names import normalize_name
    from localcodex.errors import NotFound

    req = run.request
    pinned = pinned_choice(run)
    model = pinned[0] if pinned else req.model
    try:
        if pinned:
            pick, warnings = pick_candidate(run, pinned[0], context=pinned[1])
        else:
            pick, warnings = pick_candidate(run, model, context=req.context)
    except NotFound:
        if req.model:
            require_ollama(run)  # a model the catalog does not know may well exist: Ollama is what is missing
        if not (req.model and ollama_reachable(run)):
            raise
        # A model the catalog does not know (an hf.co GGUF, a private tag): download it first, then evaluate it
        # from its own numbers (/api/show) right after the pull.
        run.base = normalize_name(req.model)
        return Step("recommend", TITLES["recommend"], StepStatus.DONE,
                    f"{run.base} is not in the catalog: it will be evaluated from its own numbers once downloaded",
                    warnings=tuple(run.changes))
    take(run, pick, pinned[1] if pinned else req.context)
    run.unload = to_unload(run)
    summary = f"{pick.model}: {format_bytes(pick.size, decimal=True)}, {run.num_ctx:,} tokens, {run.placement}, "
    summary += f"est. {pick.decode_tps:.0f} tok/s" if pick.decode_tps else "speed unknown"
    if pinned:
        summary += " (as set up before)"
    elif run.choices.remembered:
        summary += f" (remembered: {' '.join(run.choices.remembered)})"
    return Step("recommend", TITLES["recommend"], StepStatus.DONE, summary, warnings=(*run.changes, *warnings))


def free_machine(run: Run) -> Machine:
    """The machine with the memory of every model Ollama has loaded counted as free: setup unloads what stands
    in its way (as part of the plan it asks about), so a loaded model never makes a model look as if it did not
    fit."""
    from localcodex.core.recommend.fit import Settings
    from localcodex.core.recommend.rank import machine_without

    machine = run.machine
    assert machine is not None  # detect ran first
    state = machine.ollama
    if state is None or not state.loaded:
        return machine
    settings = Settings.from_env(run.live.inv.env, state.version)
    for loaded in state.loaded:
        machine = machine_without(machine, loaded.name, settings)
    return machine


def pick_candidate(run: Run, model: str | None, *, context: int | None,
                   free: bool = True) -> tuple[Candidate, tuple[str, ...]]:
    """The candidate to set up (the recommendation's pick, or `model` evaluated on this machine). The pick on
    the freed machine also sets `run.next_models`, the runners-up offered when tool calling fails."""
    from localcodex.core.recommend.rank import recommend_here

    machine = free_machine(run) if free else run.machine
    assert machine is not None  # detect ran first
    result = recommend_here(machine, run.live, context=context, model=model)
    if result.pick is None and model and result.candidates:
        reason = result.candidates[0].excluded or "it is not offered"
        raise NoFit(f"{model} cannot serve Codex here: {reason}",
                    "run `localcodex recommend` to see what fits, or pass another --model")
    if result.pick is None:
        raise NoFit(f"no model with tool calling fits this machine at {result.minimum_context:,} tokens of context",
                    "see `localcodex recommend --all` for every model and why")
    # when Ollama is down the pull step says so, with the fix: no need to warn about it here too
    warnings = tuple(w for w in result.warnings if ollama_reachable(run) or "not reachable" not in w)
    if free:
        pick = result.pick.model
        others = result if not model else recommend_here(machine, run.live, context=context)
        run.next_models = tuple(c.model for c in others.candidates if c.offered and c.model != pick)[:3]
    return result.pick, warnings


def take(run: Run, pick: Candidate, context: int | None = None) -> None:
    run.candidate = pick
    run.base = pick.model
    run.num_ctx = context or pick.num_ctx
    run.placement = {"gpu": "on the GPU", "multi_gpu": "split across GPUs", "unified": "in unified memory",
                     "cpu": "on the CPU", "partial": "partly on the CPU (slow)"}.get(pick.placement, pick.placement)


def to_unload(run: Run) -> list[LoadedModel]:
    """Loaded models to unload before ours loads: the ones it replaces (another variant of it, the model an
    earlier setup configured), and any other whose memory it needs (the pick would not sit where it does)."""
    from localcodex.core.variant import base_of, variant_name
    from localcodex.domain.names import same_model

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
            as_is, _ = pick_candidate(run, run.base, context=run.num_ctx, free=False)
            blocking = run.candidate is None or as_is.placement != run.candidate.placement
        except LocalcodexError:
            blocking = True
        if not blocking:
            rest = []
    return replaced + rest


def pinned_choice(run: Run) -> tuple[str, int] | None:
    """(model, context) the last successful run set up, when a plain re-run should keep it: same profile, no
    new --model/--context, the model and its variant still installed, same hardware, same Ollama. Whatever
    changed goes to `run.changes` (said, and asked about)."""
    from localcodex.domain.fingerprint import fingerprint

    result = run.state.get("result")
    given = run.given or run.request
    if not isinstance(result, dict) or result.get("profile") != run.request.profile or not ollama_reachable(run):
        return None
    model, num_ctx, variant = result.get("model"), result.get("num_ctx"), result.get("variant")
    if not (isinstance(model, str) and isinstance(num_ctx, int) and isinstance(variant, str)):
        return None
    if (given.model and given.model != model) or (run.request.context and run.request.context != num_ctx):
        return None  # a new choice: decided afresh, no "what changed" to report
    if "model" in run.request.forget or "context" in run.request.forget:
        return None  # `--model auto` / `--context auto`: recommend again
    changes = []
    assert run.machine is not None  # detect ran first
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


def remember_result(run: Run) -> None:
    """After a successful run: the explicit choices, and what was set up on which facts."""
    from localcodex.domain.fingerprint import fingerprint

    if not run.base or not run.variant or not run.num_ctx or run.machine is None:
        return
    hardware = fingerprint(run.machine)
    version = run.machine.ollama.version if run.machine.ollama else None
    result = {"model": run.base, "num_ctx": run.num_ctx, "variant": run.variant, "profile": run.request.profile,
              "hardware": hardware.hash, "hardware_label": hardware.label, "version": version}
    if run.state.get("result") == result and run.state.get("choices") == run.choices.as_state():
        return
    save_facts(run, result=result, choices=run.choices.as_state())
