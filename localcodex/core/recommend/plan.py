"""`plan`: what a model would take and how fast it would run, on this machine or on one described, before
anything is downloaded.

The model can be
- a GGUF file on disk: its header is read (core/transfer/gguf.py);
- a catalog tag: the catalog's figures;
- any other registry tag: its manifest is read from the registry, then the GGUF header from the start of
  its model blob with HTTP range requests (first `FIRST_READ` bytes, doubling up to `MAX_READ` while the
  header - the vocabulary is most of it - goes on), and its template blob for the capabilities. A few MB
  at most, never the weights. Without the registry, the tag cannot be judged before download: Offline.

For each context in `CONTEXTS` (up to the model's trained context) the plan gives the memory (weights, KV
cache, compute buffer), where it would run against the stable budget (core/recommend/budget.py), and the
estimated prompt and decode speed (core/recommend/speed.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.ollama import InstalledModel, ModelDetails
from localcodex.core.recommend.budget import stable_budget
from localcodex.core.recommend.chips import Chip, is_unified, lookup, memory_gib, vendor_of
from localcodex.core.recommend.fit import DEFAULT_CONTEXT, DEFAULT_SETTINGS, GiB, MemoryNeed, Settings, place
from localcodex.core.recommend.live import from_show
from localcodex.core.recommend.speed import RamBandwidth, estimate_speed
from localcodex.domain.catalog import Catalog, CatalogModel, load_catalog
from localcodex.domain.machine import GPU, Machine
from localcodex.errors import NotFound, Offline, UsageError

CONTEXTS = (4_096, 16_384, 32_768, 65_536, 131_072, 262_144)
FIRST_READ = 512 * 1024
MAX_READ = 64 * 1024**2
MODEL_MEDIA = "application/vnd.ollama.image.model"
TEMPLATE_MEDIA = "application/vnd.ollama.image.template"


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "catalog" | "gguf file" | "registry header"
    detail: str
    bytes_read: int | None = None  # registry: bytes fetched from the model blob
    blob_size: int | None = None  # registry: the model blob's size


@dataclass(frozen=True)
class PlanRow:
    num_ctx: int
    need: MemoryNeed
    placement: str  # gpu | multi_gpu | unified | partial | cpu | none
    gpu_fraction: float
    total: int  # bytes on all devices, reserves included
    where: str
    decode_tps: float | None
    prompt_tps: float | None


@dataclass(frozen=True)
class Plan:
    model: str
    architecture: str
    params_total: int
    params_active: int
    quantization: str
    size: int
    context_length: int
    capabilities: tuple[str, ...]
    source: ModelSource
    machine: str  # what it was planned for, in words
    budget: str
    rows: tuple[PlanRow, ...]
    notes: tuple[str, ...] = ()


# -- the machine --------------------------------------------------------------------------------------------


def described_machine(base: Machine, gpu: str, vram: int | None = None, ram: int | None = None) -> Machine:
    """`base` with its GPUs replaced by one `gpu` from the hardware table (chips.py), e.g. "RTX 4090", "M4 Max"."""
    chip = lookup(gpu)
    if chip is None:
        raise UsageError(f"--gpu {gpu!r} is not in the hardware table",
                         "see `localcodex plan --gpus` for the names (e.g. --gpu 'RTX 4090', --gpu 'M4 Max'), "
                         "or describe the memory with --vram")  # fmt: skip
    known = memory_gib(chip)
    vendor, backend = vendor_of(chip)
    if is_unified(chip):
        total = ram or vram or (int(known * GiB) if known else None)
        if total is None:
            raise UsageError(f"the memory of {chip.name} is not in the table", "pass --ram SIZE")
        working = _working_set(total) if vendor == "apple" else total
        unit = GPU(0, vendor, chip.name, working, working, backend, integrated=True, unified_memory=True,
                   source="described")  # fmt: skip
        return dataclasses.replace(base, gpus=(unit,), ram_total=total, ram_available=total, budget=None,
                                   cgroup_limit=None, ollama=None, remote=False)  # fmt: skip
    memory = vram or (int(known * GiB) if known else None)
    if memory is None:
        raise UsageError(f"the memory of {chip.name} is not in the table", "pass --vram SIZE")
    card = GPU(0, vendor, chip.name, memory, memory, backend, source="described")
    ram_total = ram or base.ram_total
    return dataclasses.replace(base, gpus=(card,), ram_total=ram_total, ram_available=ram_total, budget=None,
                               ollama=None, remote=False)  # fmt: skip


def _working_set(ram: int) -> int:
    from localcodex.adapters.probes.apple import default_working_set

    return default_working_set(ram)


def describe(machine: Machine, chip: Chip | None = None) -> str:
    gpus = [g for g in machine.gpus if g.used_by_ollama]
    ram = f"{machine.ram_total / GiB:.0f} GiB RAM"
    if not gpus:
        return f"CPU only, {ram}"
    parts = [f"{g.name} ({(g.memory_total or 0) / GiB:.0f} GiB{', unified' if g.unified_memory else ''})"
             for g in gpus]  # fmt: skip
    return ", ".join(parts) + f", {ram}"


# -- the model ----------------------------------------------------------------------------------------------


def resolve_model(target: str, catalog: Catalog | None = None, env: Mapping[str, str] | None = None):
    """(CatalogModel, ModelSource, notes) for a GGUF path, a catalog tag, or a registry tag."""
    catalog = catalog or load_catalog()
    path = Path(target).expanduser()
    if target.lower().endswith(".gguf") or path.is_file():
        return _from_file(path)
    entry = catalog.get(target)
    if entry is not None:
        return entry, ModelSource("catalog", f"catalog of {catalog.updated}"), ()
    return _from_registry(target, catalog, env)


def _from_file(path: Path):
    from localcodex.core.transfer.gguf import read_gguf

    info = read_gguf(path)
    template = str(info.get("tokenizer.chat_template") or "")
    caps = ["completion", *(["tools"] if "tool" in template else [])]
    model, notes = model_from_gguf(info, path.stem, info.file_size, caps)
    return model, ModelSource("gguf file", str(path)), notes


def _from_registry(target: str, catalog: Catalog, env: Mapping[str, str] | None):
    from localcodex.adapters.registry import lookup_manifest, read_blob_range
    from localcodex.core.transfer.gguf import read_gguf_head

    found = lookup_manifest(target, env=env)
    if found.error is not None:
        if "HTTP 404" in found.error:
            raise NotFound(f"{target} is neither in the catalog nor in the registry ({found.url})",
                           "check the name on ollama.com/library, or pass a .gguf file")  # fmt: skip
        raise Offline(f"{target} is not in the catalog and the registry cannot be reached ({found.error}): it "
                      "cannot be judged before download",
                      "connect to the network and run plan again, or pull it (`localcodex pull NAME`) and use "
                      "`localcodex recommend --model NAME`")  # fmt: skip
    blob = next((layer for layer in found.layers if layer.media_type == MODEL_MEDIA), None)
    if blob is None:
        raise NotFound(f"the manifest of {target} has no model layer", "is it a GGUF model?")
    length, info, read = FIRST_READ, None, 0
    while info is None:
        part = read_blob_range(target, blob.digest, 0, min(length, blob.size) - 1, env=env)
        if part.data is None:
            raise Offline(f"reading the header of {target} failed ({part.error}): it cannot be judged before "
                          "download", "try again, or pull it first")  # fmt: skip
        read += len(part.data)
        info = read_gguf_head(part.data, blob.size, f"{target} (registry blob)")
        if info is None:
            if length >= min(MAX_READ, blob.size):
                raise UsageError(f"the GGUF header of {target} is longer than {MAX_READ // 1024**2} MiB",
                                 "pull it and use `localcodex recommend --model NAME`")  # fmt: skip
            length *= 2
    caps = _capabilities(target, found.layers, info, env)
    model, notes = model_from_gguf(info, target, found.size or blob.size, caps)
    marked = catalog.text_tool_calls(target)
    if marked is not None:
        model = dataclasses.replace(model, tool_calls="text", tool_calls_source=marked.tool_calls_source)
    detail = f"registry manifest + GGUF header: {read:,} of {blob.size:,} bytes read ({read / blob.size:.3%})"
    return model, ModelSource("registry header", detail, read, blob.size), notes


def _capabilities(target: str, layers, info, env) -> list[str]:
    """As Ollama derives them: tools/thinking from the template, vision from the GGUF's vision keys."""
    from localcodex.adapters.registry import read_blob_range

    caps = ["completion"]
    template = next((layer for layer in layers if layer.media_type == TEMPLATE_MEDIA), None)
    text = ""
    if template is not None and template.size <= 1024**2:
        part = read_blob_range(target, template.digest, 0, template.size - 1, env=env)
        text = part.data.decode("utf-8", "replace") if part.data else ""
    if ".Tools" in text:
        caps.append("tools")
    if ".Think" in text:
        caps.append("thinking")
    arch = info.architecture or ""
    if any(k.startswith(f"{arch}.vision.") for k in info.metadata):
        caps.append("vision")
    return caps


def model_from_gguf(info, name: str, size: int, capabilities: list[str]) -> tuple[CatalogModel, tuple[str, ...]]:
    """A CatalogModel from a GGUF header, through the same path as an installed model's /api/show numbers."""
    from localcodex.core.transfer.gguf import GGUFArray

    def plain(value):
        if isinstance(value, GGUFArray):
            return list(value.values) if value.values is not None else None
        return value

    model_info = {k: plain(v) for k, v in info.metadata.items() if not k.startswith("tokenizer.")}
    details = ModelDetails(
        name=name, architecture=info.architecture, parameter_count=info.parameter_count or None,
        context_length=info.context_length, num_ctx=None, capabilities=tuple(capabilities),
        family=info.architecture, quantization_level=info.quantization, block_count=info.block_count,
        head_count=info.head_count, head_count_kv=info.head_count_kv, embedding_length=info.embedding_length,
        key_length=info.key_length, value_length=info.value_length, model_info=model_info,
    )  # fmt: skip
    model, notes = from_show(InstalledModel(name, size, "", ""), details)
    if model is None:
        raise UsageError(f"{name}: the GGUF header has no layer, head or width figures", "is it a language model?")
    vocab = info.get("tokenizer.ggml.tokens")
    if isinstance(vocab, GGUFArray) and vocab.count:
        notes = (*notes, f"vocabulary {vocab.count:,} tokens")
    return model, notes


# -- the plan -----------------------------------------------------------------------------------------------


def plan(
    target: str,
    machine: Machine,
    *,
    settings: Settings = DEFAULT_SETTINGS,
    ram_bandwidth: RamBandwidth | None = None,
    catalog: Catalog | None = None,
    env: Mapping[str, str] | None = None,
) -> Plan:
    model, source, notes = resolve_model(target, catalog, env)
    stable = dataclasses.replace(machine, budget=stable_budget(machine, settings.gpu_overhead))
    rows = []
    for num_ctx in CONTEXTS:
        if num_ctx > model.context_length:
            break
        fit = place(model, num_ctx, stable, settings)
        speed = estimate_speed(model, fit, stable, ram=ram_bandwidth) if fit.fits else None
        rows.append(PlanRow(
            num_ctx, fit.need, fit.placement, fit.gpu_fraction, fit.total, fit.reason,
            speed.decode_tps if speed else None, speed.prompt_tps if speed else None,
        ))  # fmt: skip
    extra = list(notes)
    if "tools" not in model.capabilities:
        extra.append("no tool calling (`tools`): Codex cannot use it")
    elif model.tool_calls_as_text:
        extra.append(f"tool calls come out as text ({model.tool_calls_source}): Codex cannot use it")
    if model.context_length < DEFAULT_CONTEXT:
        extra.append(f"trained context {model.context_length:,} is below the {DEFAULT_CONTEXT:,} Codex wants")
    return Plan(
        model.tag, model.architecture, model.params_total, model.params_active, model.quantization,
        model.download_bytes, model.context_length, model.capabilities, source, describe(stable),
        stable.budget.explanation if stable.budget else "", tuple(rows), tuple(extra),
    )  # fmt: skip
