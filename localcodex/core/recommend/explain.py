"""The words `recommend` attaches to each candidate: parameters, where it fits, how fast, and why."""

from __future__ import annotations

from localcodex.core.recommend.context import ContextChoice
from localcodex.core.recommend.fit import Fit, GiB
from localcodex.core.recommend.live import Resolved
from localcodex.core.recommend.speed import SpeedEstimate
from localcodex.domain.catalog import CatalogModel


def params_label(model: CatalogModel) -> str:
    total = billions(model.params_total)
    if model.params_active and model.params_active < model.params_total:
        return f"{total}-A{billions(model.params_active)}"
    return total


def billions(n: int) -> str:
    if n >= 10**9:
        value = n / 1e9
        return f"{value:.0f}B" if value >= 10 else f"{value:.1f}B".replace(".0B", "B")
    return f"{n / 1e6:.0f}M"


def why_lines(
    resolved: Resolved,
    choice: ContextChoice,
    speed: SpeedEstimate | None,
    usable: bool,
    usable_tps: float,
    usable_prompt_tps: float,
    excluded: str | None,
) -> tuple[str, ...]:
    model, fit = resolved.model, choice.fit
    lines: list[str] = []
    if excluded:
        lines.append(excluded)
    if model.tool_calls_as_text:
        lines.append(f"source: {model.tool_calls_source}")
    if resolved.rated:
        lines.append(f"coding tier {model.coding_tier} ({model.coding_source})")
        if model.is_uncertain("coding_tier"):
            lines.append("its coding tier is not confirmed by a figure for this model: ranked after the confirmed "
                         "models of its tier")
    else:
        lines.append("unrated for coding: not in the catalog, evaluated from its /api/show numbers")
    lines.extend(rung_lines(model))
    if fit is not None:
        lines.append(where_line(fit))
        if choice.reduced and fit.need.num_ctx < choice.target:
            reduced = fit.need.num_ctx
            lines.append(f"the {choice.target:,}-token target does not fit; {reduced:,} is the largest that fits")
    lines.append("installed: no download" if resolved.installed else f"download {model.download_bytes / 1e9:.1f} GB")
    if speed is not None and speed.decode_tps is not None:
        lines.append(speed_line(speed))
        if not usable:
            lines.append(f"below usable speed ({usable_tps:g} tok/s decode, {usable_prompt_tps:g} tok/s prompt)")
    return tuple(lines)


def rung_lines(model: CatalogModel) -> list[str]:
    """What a user should know about a non-default quantization before pulling it."""
    if not model.quant_of:
        return []
    lines = [f"{model.quantization} quantization of {model.quant_of} ({model.download_bytes / 1e9:.0f} GB)"]
    if model.quantization.upper().startswith(("Q2", "Q3", "IQ")):
        lines[0] += ": fewer bits per weight, some quality lost"
    if model.is_uncertain("tag"):
        lines.append(
            f"tag not confirmed on ollama.com (seen in public setups): if `ollama pull` refuses it, "
            f"use {model.quant_of} with a smaller context"
        )
    return lines


def where_line(fit: Fit) -> str:
    num_ctx = fit.need.num_ctx
    if fit.placement in ("gpu", "unified"):
        part = fit.parts[0]
        where = "unified memory" if fit.placement == "unified" else part.device.upper()
        return f"fits in {where} at {num_ctx:,} tokens: {part.bytes / GiB:.1f} of {part.budget / GiB:.1f} GiB"
    if fit.placement == "multi_gpu":
        split = " + ".join(f"{p.bytes / GiB:.1f}/{p.budget / GiB:.1f} GiB" for p in fit.parts)
        return f"split across {len(fit.parts)} GPUs at {num_ctx:,} tokens: {split}"
    if fit.placement == "partial":
        return f"partial offload at {num_ctx:,} tokens: {fit.gpu_fraction:.0%} on the GPU, the rest on the CPU (slow)"
    return f"{fit.reason} at {num_ctx:,} tokens: {fit.total / GiB:.1f} GiB"


def speed_line(speed: SpeedEstimate) -> str:
    if speed.basis == "measured":
        est = f"; estimate was {speed.estimated_tps:.0f}" if speed.estimated_tps else ""
        return f"measured {speed.decode_tps:.1f} tok/s on this machine (bench receipt{est})"
    label = "assumed" if speed.basis == "assumed" else "est."
    prompt = f", prompt ~{speed.prompt_tps:,.0f} tok/s" if speed.prompt_tps else ""
    return f"{label} ~{speed.decode_tps:.0f} tok/s decode{prompt}"
