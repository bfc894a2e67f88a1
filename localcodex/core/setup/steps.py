"""setup's steps after the plan: each one the command's own core function, ending as one `Step`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localcodex.core.setup.choose import (
    pick_candidate,
    take,
)
from localcodex.core.setup.model import (
    TITLES,
    Run,
    Step,
    StepStatus,
    Stop,
    configure_request,
    ollama_reachable,
    require_ollama,
    retry_command,
    save_facts,
)
from localcodex.domain.units import format_bytes
from localcodex.errors import ExitCode, LocalcodexError, ServerError

if TYPE_CHECKING:
    from localcodex.core.variant import Verification


def detect_step(run: Run) -> Step:
    from localcodex.core.detect import Overrides, detect

    req = run.request
    overrides = Overrides(vram=req.vram, ram=req.ram, gpu_none=req.gpu_none)
    run.machine = machine = detect(overrides=overrides, ollama_host=run.host, env=run.live.inv.env)
    parts = [f"{format_bytes(machine.ram_total)} RAM"]
    gpus = [g for g in machine.gpus if g.used_by_ollama]
    parts.append(", ".join(f"{g.name} ({format_bytes(g.memory_total)})" for g in gpus) if gpus else "no GPU for Ollama")
    state = machine.ollama
    if state is not None and state.reachable:
        parts.append(f"Ollama {state.version} at {run.host.native}")
    elif not req.dry_run:
        require_ollama(run, "setup needs it for every step after this one")  # fail here, not after two ✓
    else:
        parts.append(f"Ollama not reachable at {run.host.native}")
    warnings: tuple[str, ...] = ()
    if machine.remote:
        warnings = (f"Ollama runs on another machine ({run.host.native}): its memory is known only from what "
                    "the server reports; pass --vram/--ram to describe it",)
    return Step("detect", TITLES["detect"], StepStatus.DONE, "; ".join(parts), warnings=warnings)


def pull_step(run: Run) -> Step:
    from localcodex.core.pull import pull

    require_ollama(run)
    name, retry = run.base, retry_command(run, "pull")
    assert name is not None  # the choice ran first
    installed = run.server.find(name)
    if installed is not None:
        run.digest = installed.digest
        if run.candidate is None:
            take(run, pick_candidate(run, name, context=run.request.context)[0], run.request.context)
        return Step("pull", TITLES["pull"], StepStatus.UNCHANGED,
                    f"{name} is installed ({format_bytes(installed.size, decimal=True)})")
    size = format_bytes(run.candidate.size, decimal=True) if run.candidate else "size unknown"
    if run.request.dry_run:
        return Step("pull", TITLES["pull"], StepStatus.PLANNED, f"would download {name} ({size})")
    del retry  # the one question was asked before any step changed anything
    result = pull(run.server, name, on_progress=run.hooks.on_pull)
    run.digest = result.digest
    took = f" in {result.seconds:.0f} s" if result.seconds else ""
    summary = f"downloaded {name} ({format_bytes(result.size, decimal=True)}){took}"
    if run.candidate is None:  # not in the catalog: evaluate it now, from what Ollama says about it
        pick, _warnings = pick_candidate(run, name, context=run.request.context)
        take(run, pick, run.request.context)
        summary += f"; fits with {run.num_ctx:,} tokens, {run.placement}"
    return Step("pull", TITLES["pull"], StepStatus.DONE, summary, warnings=tuple(result.notes))


def variant_step(run: Run) -> Step:
    from localcodex.core.variant import ensure_variant, variant_name, verify_variant

    num_ctx, base = run.num_ctx, run.base
    assert num_ctx is not None and base is not None  # known after the choice (or the download)
    retry = retry_command(run, "variant")
    run.variant = variant_name(base, num_ctx)
    if run.request.dry_run:
        exists = ollama_reachable(run) and run.server.find(run.variant) is not None
        status = StepStatus.UNCHANGED if exists else StepStatus.PLANNED
        text = f"{run.variant} exists" if exists else f"would create {run.variant} (num_ctx {num_ctx:,})"
        return Step("variant", TITLES["variant"], status, text)
    for loaded in run.unload:
        run.server.unload(loaded.name)
    made = ensure_variant(run.server, base, num_ctx, **variant_extra(run))
    if made.action != "unchanged" or made.name not in (run.state.get("variants") or []):
        save_facts(run, variants=sorted({*(run.state.get("variants") or []), made.name}))
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
        raise Stop(LocalcodexError(verified.message, f"run `{retry}` after freeing memory, or pick a smaller "
                                    "--context", code="server_error", exit_code=ExitCode.SERVER_ERROR))
    if verified.status == "ok":
        run.context_verified = True
        run.placement = where(verified)
        save_facts(run, verified=key, placement=run.placement)
    else:
        warnings.append(verified.message)
    status = StepStatus.DONE if made.action != "unchanged" else StepStatus.UNCHANGED
    verb = {"created": "created", "updated": "updated"}.get(made.action, "kept")
    summary = f"{verb} {made.name} (num_ctx {num_ctx:,}); loaded: {run.placement}"
    return Step("variant", TITLES["variant"], status, summary, warnings=tuple(warnings))


def variant_extra(run: Run) -> dict[str, Any]:
    num_batch = getattr(run.candidate, "num_batch", None)
    return {"num_batch": num_batch} if num_batch else {}


def where(verified: Verification) -> str:
    """Where the loaded model sits, from `/api/ps` (size_vram against size)."""
    fraction = verified.gpu_fraction
    if fraction is None:
        return "placement unknown"
    if fraction >= 0.999:
        return "100% on the GPU"
    if fraction <= 0.001:
        return "100% on the CPU"
    return f"{fraction * 100:.0f}% GPU / {(1 - fraction) * 100:.0f}% CPU (slow: it spilled to the CPU)"


def check_step(run: Run) -> Step:
    from localcodex.core.check.run import PROBES, CheckRequest, check

    retry = retry_command(run, "check")
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
    report = check(CheckRequest(model=run.variant, host=run.host.native, only=only), run.live,
                   on_progress=run.hooks.on_probe)
    if not report.ok:
        late = bool(report.timed_out)  # a probe hit its time limit: exit 10, as every step's deadline does
        first = (report.timed_out or report.failed)[0]
        raise Stop(LocalcodexError(f"{first.title}: {first.detail}", first.fix or f"run `{retry}` for details",
                                    code="timeout" if late else "check_failed",
                                    exit_code=ExitCode.TIMEOUT if late else ExitCode.CHECK_FAILED))
    save_facts(run, checked=key)
    warned = tuple(f"{p.title}: {p.detail}" for p in report.probes if p.status.value == "warn")
    tools = next((p for p in report.probes if p.name == "tools"), None)
    if tools is not None and tools.status.value == "warn":
        nxt = run.next_models[0] if run.next_models else None
        offer = f"; try the next model: `localcodex setup --model {nxt}`" if nxt else ""
        warned += (f"tool calling does not work with {run.base} here: Codex cannot run commands or edit files "
                   f"with it{offer}",)
    summary = f"{report.counts.get('pass', 0)} probes passed" + (f", {len(warned)} warned" if warned else "")
    if only is not None:
        summary += " (context: verified in /api/ps)"
    return Step("check", TITLES["check"], StepStatus.DONE, summary, warnings=warned)


def configure_step(run: Run) -> Step:
    from localcodex.core.configure import configure

    req = run.request
    preview = run.preview
    if preview is None or preview.model != run.variant:
        preview = configure(configure_request(run, dry_run=True, ask_ollama=not req.dry_run), run.live)
    run.codex_command = preview.run
    run.profile_path = str(next((f.path for f in preview.files if f.role == "profile"), ""))
    if not preview.changed:
        # already said when the profile was written: a re-run that changes nothing says nothing again
        return Step("configure", TITLES["configure"], StepStatus.UNCHANGED, f"{run.profile_path} is up to date",
                    warnings=remove_old_variant(run))
    if req.dry_run:
        return Step("configure", TITLES["configure"], StepStatus.PLANNED, f"would write {run.profile_path}",
                    warnings=preview.warnings)
    result = configure(configure_request(run, dry_run=False, ask_ollama=True), run.live)
    existed = any(f.changed and not f.created for f in result.files)
    backup = f" (backup {result.backup_id})" if result.backup_id and existed else ""
    summary = f"wrote {run.profile_path}{backup}"
    return Step("configure", TITLES["configure"], StepStatus.DONE, summary,
                warnings=(*result.warnings, *remove_old_variant(run)))


def remove_old_variant(run: Run) -> tuple[str, ...]:
    """Remove the variant this run replaces (it was in the plan), now that no profile points at it."""
    old = run.remove_old
    if not old or run.request.dry_run:
        return ()
    try:
        run.server.delete(old)
    except LocalcodexError as err:
        return (f"could not remove {old}, which an earlier setup made: {err.message}",)
    save_facts(run, variants=[v for v in run.state.get("variants") or [] if v != old])
    return ()


def bench_step(run: Run) -> Step:
    from localcodex.core.bench.command import setup_benchmark

    retry = retry_command(run, "bench")
    if not run.request.bench:
        return Step("bench", TITLES["bench"], StepStatus.SKIPPED, "skipped (--no-bench)")
    if run.request.dry_run:
        return Step("bench", TITLES["bench"], StepStatus.PLANNED, f"would benchmark {run.variant}")
    key = {"variant": run.variant, "digest": run.digest}
    remembered = run.state.get("benched")
    if remembered and remembered.get("key") == key and not run.request.recheck:
        run.decode_tps, run.prompt_tps = remembered.get("decode_tps"), remembered.get("prompt_tps")
        return Step("bench", TITLES["bench"], StepStatus.UNCHANGED,
                    f"measured before: {speed_text(run)} (`{retry}` to measure again)")
    assert run.variant is not None  # the variant step ran first
    outcome = setup_benchmark(run.variant, run.live, machine=run.machine, on_progress=run.hooks.on_bench)
    if not outcome.decode_tps:
        why = outcome.warnings[0] if outcome.warnings else "no run finished"
        raise ServerError(f"the benchmark of {run.variant} measured nothing: {why}",
                          f"run `{retry}` to see each run, or `localcodex setup --no-bench` to skip it")
    run.decode_tps, run.prompt_tps = outcome.decode_tps, outcome.prompt_tps
    save_facts(run, benched={"key": key, "decode_tps": run.decode_tps, "prompt_tps": run.prompt_tps})
    return Step("bench", TITLES["bench"], StepStatus.DONE, speed_text(run), warnings=outcome.warnings)


def speed_text(run: Run) -> str:
    decode = f"{run.decode_tps:.1f} tok/s decode" if run.decode_tps else "decode not measured"
    prompt = f", {run.prompt_tps:,.0f} tok/s prompt" if run.prompt_tps else ""
    return decode + prompt
