"""`recommend`: the best Ollama model for Codex on this machine, why, and the alternatives.

Policy (each rule is tested in tests/test_recommend.py):
- Only models with the `tools` capability are recommended: Codex drives everything through tool calls.
  Others are listed, marked why, with `include_no_tools` / `include_all`.
- Context: the target is 65,536 tokens (Codex's instructions and tool schemas alone take 4-6k; Ollama's
  docs ask >= 64k for coding agents), or `context`. When the target does not fit, the largest context that
  does (a multiple of 1,024, at least 16,384) is used and the candidate says so; below 16,384 the model
  does not qualify. A trained context below the target caps it.
- Disk: a model that is not installed and whose download does not fit in the free space of Ollama's model
  folder (with 1 GiB to spare) is not offered.
- Ranking, in groups:
    1. runs fully on GPU / unified memory (or in RAM on a CPU-only machine) at >= 16k context with usable
       speed (estimated decode >= `usable_tps`, default 8 tok/s, and prompt processing >= `usable_prompt_tps`,
       default 50 tok/s, so a 5k-token Codex prompt is read in under two minutes): quality tier first (the
       catalog's coding tier, 1 = best), then full-quality quantizations before 2-3-bit rungs, then context
       (the target reached, else >= 32k, else >= 16k), then installed (no download), then speed up to a
       comfortable 20 tok/s, then the higher SWE-bench Verified figure the catalog cites, then the bigger
       model (within a tier, more parameters know more; a MoE counts as sqrt(total x active)), then raw
       speed. So a 24 GiB GPU gets Qwen3.6 27B (SWE-bench Verified 77.2) rather than Qwen3.5 27B (72.4) of
       the same size, while a 36 GB Mac, where the 27B dense model crawls, gets the 35B MoE;
    2. runs fully but below usable speed: fastest first;
    3. partial offload to the CPU (only reached when nothing fits fully): fastest first.
  CPU-only machines thus get the best model among the small ones that are fast enough there.
- Quantization ladder: a model published in several quantizations (`quant_of` in the catalog) is offered
  once, at the best rung that fits with a Codex-sized context (ladder.py); `--all` lists the other
  rungs with the one offered instead. A MoE that misses the budget at Q4_K_M is offered at a smaller
  published rung; a machine with room gets the Q8_0 rung.
- Installed models: the live `/api/show` data overrides the catalog (see core/live.py), installed models
  the catalog does not know are evaluated from their architecture numbers, and being installed wins ties
  within a quality tier ("installed: no download" in `why`).
- A model Ollama has loaded right now is evaluated with the memory it holds counted as free
  (`machine_without`); other loaded models stay subtracted from the budget (detect).
- When only a pinned batch lets a model fit fully, the candidate carries `num_batch` (512 or 256): the
  context variant must set `PARAMETER num_batch` to it, or Ollama's automatic batch may spill to the CPU.
- Speed is an estimate (core/speed.py) unless the receipts hold a benchmark of that model on this machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from localcodex.adapters.ollama import OllamaServer, normalize_name, same_model
from localcodex.core.detect import compute_budget
from localcodex.core.ports import Live
from localcodex.core.recommend.budget import FreeNow, free_now, stable_budget
from localcodex.core.recommend.context import ContextChoice, choose_context
from localcodex.core.recommend.explain import params_label, why_lines
from localcodex.core.recommend.fit import (
    DEFAULT_CONTEXT,
    DEFAULT_SETTINGS,
    MIN_CONTEXT,
    Fit,
    GiB,
    MemoryNeed,
    Settings,
    budget_of,
    place,
)
from localcodex.core.recommend.ladder import COMFORTABLE_TPS, beaten_rungs, context_bucket, is_low_quant
from localcodex.core.recommend.live import LiveModel, Resolved, resolve_installed
from localcodex.core.recommend.speed import RamBandwidth, SpeedEstimate, estimate_speed
from localcodex.core.recommend.verdict import PREFERENCES, SLOW_FLOOR_TPS, Alternative, judge
from localcodex.core.variant import base_of
from localcodex.domain.catalog import Catalog, CatalogModel, load_catalog, normalize_tag
from localcodex.domain.machine import Machine
from localcodex.errors import LocalcodexError, NotFound, UsageError

USABLE_TPS = 8.0
USABLE_PROMPT_TPS = 50.0
DISK_SPARE = 1 * GiB

TEXT_TOOL_CALLS = "tool calls come out as text (Ollama lists `tools`, but no structured call reaches Codex)"

MeasuredLookup = Callable[[str], "float | None"]


@dataclass(frozen=True)
class RecommendRequest:
    machine: Machine
    context: int | None = None  # target context; None = DEFAULT_CONTEXT
    include_all: bool = False  # list every catalog model, with the reason it is not offered
    include_no_tools: bool = False  # list models without tool calling (never picked)
    model: str | None = None  # evaluate this one model only
    installed: tuple[LiveModel, ...] | None = None  # live data; None = ask `server` (or catalog only)
    server: OllamaServer | None = None
    unreachable: str | None = None  # why Ollama could not be asked (detect already tried): catalog only
    settings: Settings = DEFAULT_SETTINGS
    ram_bandwidth: RamBandwidth | None = None
    measured: MeasuredLookup | None = None  # receipts: measured decode tok/s of a model on this machine
    usable_tps: float = USABLE_TPS
    usable_prompt_tps: float = USABLE_PROMPT_TPS
    catalog: Catalog | None = None
    prefer: str = "balanced"  # balanced | speed | quality (core/recommend/verdict.py)
    stable: bool = True  # fit against installed memory minus a reserve (budget.py), not what is free this second


@dataclass(frozen=True)
class Candidate:
    """One model evaluated on this machine."""

    model: str
    family: str
    params: str  # "27B", "30B-A3B"
    params_total: int
    quantization: str
    size: int  # download size (installed size for installed models)
    installed: bool
    capabilities: tuple[str, ...]
    coding_tier: int | None  # 1 = best … 5; None = unrated (installed, not in the catalog)
    coding_source: str
    source: str  # where the numbers came from: catalog, live /api/show, …
    placement: str  # unified | gpu | multi_gpu | partial | cpu | none
    gpu_fraction: float
    num_ctx: int | None
    num_batch: int | None  # PARAMETER num_batch the variant must set (None: Ollama's automatic batch)
    target_context: int
    meets_target: bool
    memory: int | None  # bytes the placement takes on all devices, reserves included
    need: MemoryNeed | None
    fit: Fit | None
    speed: SpeedEstimate | None
    decode_tps: float | None
    prompt_tps: float | None
    tps_basis: str  # measured | estimate | assumed
    offered: bool  # can be recommended (tools, fits at >= 16k, disk)
    usable: bool
    group: int  # ranking group (1 best); 9 = not offered
    rank: int | None
    why: tuple[str, ...]
    excluded: str | None = None  # why it is not offered
    notes: tuple[str, ...] = ()
    ladder: str = ""  # the default tag of its quantization ladder when it is another rung of one
    low_quant: bool = False  # a 2-3-bit rung: ranked after full-quality quantizations of the same tier
    swe_bench: float | None = None  # SWE-bench Verified figure the catalog cites (orders one tier)
    dense_params: int = 0  # size for comparing models of one tier (a MoE: sqrt(total x active))
    tier_unconfirmed: bool = False  # the catalog marks its coding tier uncertain: after confirmed ones of its tier


@dataclass(frozen=True)
class Recommendation:
    pick: Candidate | None
    candidates: tuple[Candidate, ...]  # offered ones ranked, then listed-but-not-offered ones
    target_context: int
    minimum_context: int
    budget: str  # detect's explanation of the budget
    settings: Settings
    catalog_updated: str
    ollama: str  # "live: 3 installed models read" | "not reachable: …" | "not asked"
    usable_tps: float
    evaluated: str | None = None  # the one model asked about with `model`
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    usable: bool = False  # the pick reaches usable speed and coding quality (verdict.py)
    verdict: str = ""  # one sentence: usable, or why local Codex will be poor here
    alternatives: tuple[Alternative, ...] = ()  # what to do instead when not usable
    prefer: str = "balanced"
    free_now: str = ""  # detect's budget: what is free this second
    fits_now: bool | None = None  # would the pick load right now (None: no pick / not measured)
    today: str = ""  # what free memory means for the pick today


# -- public entry point ---------------------------------------------------------------------------------


def recommend(request: RecommendRequest) -> Recommendation:
    """Evaluate every catalog model (and every installed one) on the machine; rank; pick."""
    catalog = request.catalog or load_catalog()
    target = request.context or DEFAULT_CONTEXT
    if target < MIN_CONTEXT:
        raise UsageError(
            f"--context {target:,} is below the {MIN_CONTEXT:,} tokens Codex needs",
            f"use --context {MIN_CONTEXT} or more (default {DEFAULT_CONTEXT:,})",
        )
    if request.prefer not in PREFERENCES:
        raise UsageError(f"--prefer {request.prefer!r} is not one of {', '.join(PREFERENCES)}",
                         "use --prefer balanced (default), speed or quality")
    measured_now = request.machine
    if request.stable:
        stable = stable_budget(measured_now, request.settings.gpu_overhead)
        request = dataclasses.replace(request, machine=dataclasses.replace(measured_now, budget=stable))
    warnings: list[str] = []
    installed, ollama = _installed(request, warnings)
    resolved = _resolve_all(catalog, installed, warnings)
    if request.model:
        resolved = [_one(request.model, resolved, catalog)]
    candidates = [_evaluate(r, request, target) for r in resolved]
    if not request.model:
        candidates = _one_rung_per_ladder(candidates, {r.model.tag: r.model for r in resolved}, catalog)
    ranked = _rank(candidates, request.prefer)
    shown = _shown(ranked, request)
    pick = next((c for c in ranked if c.offered), None)
    budget = budget_of(request.machine, request.settings)
    verdict = judge(pick, ranked, request.usable_tps, request.usable_prompt_tps)
    if not verdict.usable and not request.model:
        warnings.insert(0, verdict.headline)
    parts = tuple((p.device, p.bytes) for p in pick.fit.parts) if pick is not None and pick.fit else None
    now = free_now(measured_now, parts) if request.stable else FreeNow(budget.explanation, None, "")
    return Recommendation(
        pick, tuple(shown), target, MIN_CONTEXT, budget.explanation, request.settings, catalog.updated, ollama,
        request.usable_tps, request.model, tuple(warnings), request.settings.notes,
        verdict.usable, verdict.headline, verdict.alternatives, request.prefer, now.explanation, now.fits_now,
        now.summary,
    )


def recommend_here(
    machine: Machine,
    live: Live,
    *,
    context: int | None = None,
    model: str | None = None,
    include_all: bool = False,
    include_no_tools: bool = False,
    prefer: str = "balanced",
) -> Recommendation:
    """`recommend` for a machine `detect` just measured, with everything this machine can add: Ollama's live
    model data, its version-dependent settings (from the invocation's environment), the cached RAM bandwidth
    probe and measured receipts.

    The `recommend` command and `setup` both call this, so they cannot disagree about the pick.
    """
    state = machine.ollama
    version = state.version if state and state.reachable else None
    unreachable = None
    if state is not None and not state.reachable:
        unreachable = f"Ollama is not reachable ({state.error or state.host})"
    ram = RamBandwidth.probed(live.ram_bandwidth(machine))
    return recommend(
        RecommendRequest(
            machine, context=context, include_all=include_all, include_no_tools=include_no_tools, model=model,
            server=live.ollama(), unreachable=unreachable, settings=Settings.from_env(live.inv.env, version),
            ram_bandwidth=ram, measured=live.measured_speeds(machine), prefer=prefer,
        )
    )  # fmt: skip


def ram_bandwidth_here(machine: Machine, live: Live) -> RamBandwidth | None:
    """This machine's RAM bandwidth (the cached probe), for `plan` as for `recommend`."""
    return RamBandwidth.probed(live.ram_bandwidth(machine))


# -- live data ------------------------------------------------------------------------------------------


def gather_installed(server: OllamaServer) -> tuple[LiveModel, ...]:
    """`/api/tags` plus `/api/show` of each installed model (a show that fails leaves details None)."""
    models = []
    for item in server.list():
        try:
            details = server.show(item.name)
        except LocalcodexError:
            details = None
        models.append(LiveModel(item, details))
    return tuple(models)


def _installed(request: RecommendRequest, warnings: list[str]) -> tuple[tuple[LiveModel, ...], str]:
    if request.installed is not None:
        return request.installed, f"live: {len(request.installed)} installed model(s) read"
    if request.unreachable:
        warnings.append(f"{request.unreachable}: recommending from the catalog alone (installed models not considered)")
        return (), f"not reachable: {request.unreachable}"
    if request.server is None:
        return (), "not asked: catalog only"
    try:
        found = gather_installed(request.server)
    except LocalcodexError as exc:
        warnings.append(f"{exc.message}: recommending from the catalog alone (installed models not considered)")
        return (), f"not reachable: {exc.message}"
    return found, f"live: {len(found)} installed model(s) read from {request.server.host.native}"


def _resolve_all(catalog: Catalog, installed: Sequence[LiveModel], warnings: list[str]) -> list[Resolved]:
    by_tag: dict[str, Resolved] = {m.tag: Resolved(m, False, "catalog") for m in catalog}
    for live in installed:
        if live.installed.name.endswith("-cloud") or ":cloud" in live.installed.name:
            continue
        resolved = resolve_installed(live, catalog)
        if resolved is None:
            warnings.append(f"{live.installed.name}: /api/show gave too little to evaluate it; left out")
            continue
        by_tag[resolved.model.tag] = _mark_text_tool_calls(resolved, catalog)
    return list(by_tag.values())


def _mark_text_tool_calls(resolved: Resolved, catalog: Catalog) -> Resolved:
    """An installed model of a family the catalog knows writes tool calls as text carries that fact too."""
    marked = catalog.text_tool_calls(resolved.model.tag)
    if marked is None or resolved.model.tool_calls_as_text:
        return resolved
    model = dataclasses.replace(resolved.model, tool_calls="text", tool_calls_source=marked.tool_calls_source)
    return dataclasses.replace(resolved, model=model)


def _one(name: str, resolved: Sequence[Resolved], catalog: Catalog) -> Resolved:
    key = normalize_tag(normalize_name(name))
    entry = catalog.get(name)
    for r in resolved:
        if normalize_tag(r.model.tag) == key or (entry is not None and r.model.tag == entry.tag):
            return r
    raise NotFound(
        f"model {name!r} is neither in the catalog nor installed in Ollama",
        "pull it first (`ollama pull NAME`) to evaluate it from its own numbers, or see `localcodex recommend --all`",
    )


# -- evaluating one model -------------------------------------------------------------------------------


def machine_without(machine: Machine, model: str, settings: Settings = DEFAULT_SETTINGS) -> Machine:
    """The machine as `model` would find it: if Ollama has that model (or a context variant of it) loaded now,
    the memory it holds is counted as free (loading it again at another context replaces it), so a running
    model never looks as if it did not fit. Other loaded models stay subtracted."""

    state = machine.ollama
    ours = [m for m in state.loaded if same_model(m.name, model) or same_model(base_of(m.name), model)] if state else []
    if not ours or state is None:
        return machine

    rest = tuple(m for m in state.loaded if m not in ours)
    freed = dataclasses.replace(machine, ollama=dataclasses.replace(state, loaded=rest))
    return dataclasses.replace(freed, budget=compute_budget(freed, gpu_overhead=settings.gpu_overhead))


def _evaluate(resolved: Resolved, request: RecommendRequest, target: int) -> Candidate:
    model = resolved.model
    if not request.stable:  # the stable budget does not subtract Ollama's loaded models in the first place
        machine = machine_without(request.machine, model.tag, request.settings)
        request = dataclasses.replace(request, machine=machine)
    choice = choose_context(model, request.machine, request.settings, target=target)
    fit = choice.fit
    measured = request.measured(model.tag) if (request.measured and fit is not None) else None
    speed = None
    if fit is not None:
        speed = estimate_speed(model, fit, request.machine, ram=request.ram_bandwidth, measured_tps=measured)
    usable = _usable(speed, request)
    excluded = _excluded(resolved, choice, request.machine)
    offered = excluded is None
    group = _group(fit, usable) if offered else 9
    return Candidate(
        model=model.tag, family=model.family, params=params_label(model), params_total=model.params_total,
        quantization=model.quantization,
        size=model.download_bytes, installed=resolved.installed, capabilities=model.capabilities,
        coding_tier=model.coding_tier if resolved.rated else None, coding_source=model.coding_source,
        source=resolved.source, placement=fit.placement if fit else "none",
        gpu_fraction=fit.gpu_fraction if fit else 0.0, num_ctx=choice.num_ctx, num_batch=choice.num_batch,
        target_context=target,
        meets_target=bool(fit and fit.need.num_ctx >= min(target, model.context_length) and not choice.reduced),
        memory=fit.total if fit else None, need=fit.need if fit else _need_at_minimum(model, request),
        fit=fit, speed=speed, decode_tps=speed.decode_tps if speed else None,
        prompt_tps=speed.prompt_tps if speed else None, tps_basis=speed.basis if speed else "estimate",
        offered=offered, usable=usable, group=group, rank=None,
        why=why_lines(resolved, choice, speed, usable, request.usable_tps, request.usable_prompt_tps, excluded),
        excluded=excluded, notes=(*choice.notes, *resolved.notes),
        ladder=model.quant_of and normalize_tag(model.quant_of), low_quant=is_low_quant(model.quantization),
        swe_bench=model.swe_bench_verified if resolved.rated else None, dense_params=model.dense_equivalent_params,
        tier_unconfirmed=resolved.rated and model.is_uncertain("coding_tier"),
    )  # fmt: skip


def _need_at_minimum(model: CatalogModel, request: RecommendRequest) -> MemoryNeed | None:
    """For a model that fits nowhere: what it would need at the minimum context (for the breakdown)."""

    if model.context_length < MIN_CONTEXT:
        return None
    return place(model, MIN_CONTEXT, request.machine, request.settings).need


def _one_rung_per_ladder(
    candidates: Sequence[Candidate], models: Mapping[str, CatalogModel], catalog: Catalog
) -> list[Candidate]:
    """Only the best published quantization of a model stays offered (ladder.py); the others say why not."""
    beaten = beaten_rungs(candidates, models, catalog)
    return [
        dataclasses.replace(c, offered=False, group=9, excluded=beaten[c.model], why=(beaten[c.model], *c.why))
        if c.model in beaten
        else c
        for c in candidates
    ]


def _usable(speed: SpeedEstimate | None, request: RecommendRequest) -> bool:
    if speed is None or speed.decode_tps is None:
        return False
    if speed.decode_tps < request.usable_tps:
        return False
    return speed.basis == "measured" or speed.prompt_tps is None or speed.prompt_tps >= request.usable_prompt_tps


def _group(fit: Fit | None, usable: bool) -> int:
    if fit is None:
        return 9
    if fit.full:
        return 1 if usable else 2
    return 3


def _excluded(resolved: Resolved, choice: ContextChoice, machine: Machine) -> str | None:
    model = resolved.model
    if "tools" not in model.capabilities:
        return "no tool calling (`tools` capability): Codex cannot use it"
    if model.tool_calls_as_text:
        return f"{TEXT_TOOL_CALLS}: Codex cannot run commands or edit files with it"
    if choice.fit is None:
        return _no_fit_reason(choice)
    if not resolved.installed and machine.disk is not None and machine.disk.free is not None:
        room = machine.disk.free - DISK_SPARE
        if model.download_bytes_max > room:
            return (
                f"download of {model.download_bytes / 1e9:.1f} GB does not fit on disk: "
                f"{machine.disk.free / 1e9:.1f} GB free in {machine.disk.path} (1 GiB kept spare)"
            )
    return None


def _no_fit_reason(choice: ContextChoice) -> str:
    last = choice.notes[-1] if choice.notes else "does not fit"
    return f"does not fit at {MIN_CONTEXT:,} tokens: {last}" if "minimum" not in last else last


# -- ranking --------------------------------------------------------------------------------------------


def _sort_key(c: Candidate, prefer: str = "balanced") -> tuple:
    tps = c.decode_tps or 0.0
    tier = c.coding_tier if c.coding_tier is not None else 6
    group = c.group
    if prefer == "quality" and group == 2 and tps >= SLOW_FLOOR_TPS:
        group = 1  # a slower, stronger model competes with the usable ones on quality
    swe, size = -(c.swe_bench or 0.0), -(c.dense_params or c.params_total)
    if group == 1:
        if prefer == "speed":
            return (1, context_bucket(c), -tps, tier, c.low_quant, not c.installed)
        # A tier the catalog could not confirm for this very model (e.g. a figure borrowed from its predecessor)
        # never outranks a confirmed one of the same tier: the pick is what the evidence supports.
        if prefer == "quality":
            return (1, tier, c.tier_unconfirmed, c.low_quant, context_bucket(c), not c.installed, swe, size, -tps)
        comfortable = min(tps, COMFORTABLE_TPS)
        return (1, tier, c.tier_unconfirmed, c.low_quant, context_bucket(c), not c.installed, -comfortable, swe,
                size, -tps)
    return (group, -tps, tier)


def _rank(candidates: Sequence[Candidate], prefer: str = "balanced") -> list[Candidate]:
    from dataclasses import replace

    ordered = sorted(candidates, key=lambda c: _sort_key(c, prefer))
    ranked, position = [], 0
    for c in ordered:
        if c.offered:
            position += 1
            ranked.append(replace(c, rank=position))
        else:
            ranked.append(c)
    return ranked


def _shown(ranked: Sequence[Candidate], request: RecommendRequest) -> list[Candidate]:
    if request.model or request.include_all:
        return list(ranked)
    shown = [c for c in ranked if c.offered]
    if request.include_no_tools:
        shown += [c for c in ranked if not c.offered and "tools" not in c.capabilities and c.fit is not None]
    return shown
