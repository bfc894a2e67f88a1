"""Fake models: what the emulator's registry offers and what gets written to the store.

A :class:`FakeModel` becomes a manifest plus blobs (:func:`blob_specs`):

* the ``model`` layer is a GGUF file whose header carries the model's metadata
  (architecture, context length, head counts, ...). For ordinary models the rest of
  the file is zeros (a sparse file of the full download size); the digest is the real
  sha256 of that content, looked up rather than hashed again (digests.py).
  ``materialize=True`` models get a small real GGUF with tensors.
* ``template``, ``params``, ``license`` (and ``system``) layers and the config blob are
  small real files with real digests.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import digests, gguf

MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_MESSAGES = "application/vnd.ollama.image.messages"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class FakeModel:
    """A model the emulator can serve. Only ``name`` is required.

    ``decode_rate`` / ``prompt_rate`` / ``load_time`` override the emulator's defaults
    for this model. ``extra_info`` adds GGUF metadata keys. ``size`` is the total
    download size (all layers + config); for ``materialize=True`` the real blob decides.
    """

    name: str
    family: str = "llama"
    architecture: str = "llama"
    parameter_size: str = "1.2B"
    parameter_count: int = 1_235_814_400
    quantization_level: str = "Q4_K_M"
    size: int = 807_694_464
    context_length: int = 131072
    block_count: int = 16
    head_count: int = 32
    head_count_kv: int = 8
    embedding_length: int = 2048
    key_length: int = 64
    value_length: int = 64
    feed_forward_length: int = 8192
    capabilities: list[str] = field(default_factory=lambda: ["completion", "tools"])
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    system: str = ""
    license: str = ""
    tool_style: str = "call"
    materialize: bool = False
    decode_rate: float | None = None
    prompt_rate: float | None = None
    load_time: float | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)
    renders_developer: bool | None = None
    native_template: bool = False
    context_shift: bool = True


@dataclass(frozen=True)
class BlobSpec:
    """One blob of a model: real ``data``, or a sparse file starting with ``head``."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    head: bytes = b""

    @property
    def sparse(self) -> bool:
        return self.data is None

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def _real(media_type: str, data: bytes) -> BlobSpec:
    return BlobSpec(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data), data)


def go_json(value: Any) -> bytes:
    """Compact JSON the way Go's encoding/json writes it (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def default_template(capabilities: list[str]) -> str:
    """A ChatML-like Go template; ``.Tools`` / ``.Think`` appear when the model has them."""
    parts = ["{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"]
    if "tools" in capabilities:
        parts.append("{{- if .Tools }}<|im_start|>system\n# Tools\n{{ range .Tools }}{{ . }}\n"
                     "{{ end }}<|im_end|>\n{{ end }}")
    parts.append("{{- range .Messages }}<|im_start|>{{ .Role }}\n")
    if "thinking" in capabilities:
        parts.append("{{ if and $.Think .Thinking }}<think>{{ .Thinking }}</think>\n{{ end }}")
    parts.append("{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n")
    return "".join(parts)


# Architectures whose renderer or library template handles role ``developer`` (Ollama
# model/renderers/qwen35.go ~143, gemma4.go ~38). The others (qwen3, qwen2.5-coder Go templates,
# GLM-4.7: model/renderers/glm47.go ~73-100) render only system/user/assistant/tool, so a
# developer message vanishes from the prompt and counts zero (server/prompt.go ~23-90).
# gpt-oss's harmony renderer has a developer role of its own.
DEVELOPER_ARCHITECTURES = frozenset({"qwen35", "qwen35moe", "gemma4", "gptoss"})


def renders_developer(architecture: str, explicit: Any = None) -> bool:
    """Whether a model's prompt keeps ``developer`` messages.

    >>> renders_developer("qwen3"), renders_developer("qwen35"), renders_developer("qwen3", True)
    (False, True, True)
    """
    if explicit is not None:
        return bool(explicit)
    return architecture in DEVELOPER_ARCHITECTURES


def gguf_metadata(model: FakeModel) -> dict[str, Any]:
    arch = model.architecture
    info: dict[str, Any] = {
        "general.architecture": arch,
        "general.type": "model",
        "general.name": model.name,
        "general.basename": model.name.split(":")[0].split("/")[-1],
        "general.size_label": model.parameter_size,
        "general.file_type": gguf.FILE_TYPES.get(model.quantization_level, 15),
        "general.parameter_count": gguf.Uint64(model.parameter_count),
        "general.quantization_version": 2,
        f"{arch}.block_count": model.block_count,
        f"{arch}.context_length": model.context_length,
        f"{arch}.embedding_length": model.embedding_length,
        f"{arch}.feed_forward_length": model.feed_forward_length,
        f"{arch}.attention.head_count": model.head_count,
        f"{arch}.attention.head_count_kv": model.head_count_kv,
        f"{arch}.attention.key_length": model.key_length,
        f"{arch}.attention.value_length": model.value_length,
        f"{arch}.rope.freq_base": 1000000.0,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }
    info.update(model.extra_info)
    return info


def _tiny_tensors(model: FakeModel) -> list[tuple[str, tuple[int, ...], bytes]]:
    """Small deterministic f32 tensors so a materialized GGUF is structurally complete."""
    width = max(1, min(model.embedding_length, 64))
    tensors = []
    for name, rows in (("token_embd.weight", 8), ("output_norm.weight", 1)):
        values = [((i * 37) % 101) / 101.0 for i in range(width * rows)]
        tensors.append((name, (width, rows), struct.pack(f"<{len(values)}f", *values)))
    return tensors


def config_blob(model: FakeModel) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model_format": "gguf",
        "model_family": model.family,
        "model_families": [model.family],
        "model_type": model.parameter_size,
        "file_type": model.quantization_level,
        "capabilities": list(model.capabilities),
        "architecture": "amd64",
        "os": "linux",
    }
    extras = {key: getattr(model, key) for key in ("decode_rate", "prompt_rate", "load_time")
              if getattr(model, key) is not None}
    if model.tool_style != "call":
        extras["tool_style"] = model.tool_style
    if model.renders_developer is not None:
        extras["renders_developer"] = model.renders_developer
    if model.native_template:
        extras["native_template"] = True
    if not model.context_shift:
        extras["context_shift"] = False
    if extras:
        config["emulator"] = extras
    return config


def blob_specs(model: FakeModel) -> tuple[list[BlobSpec], BlobSpec]:
    """The manifest layers (model first) and the config blob of ``model``."""
    extra, config = _small_layers(model)
    sparse = sparse_weights(model, extra, config)
    if sparse is None:
        weights = _real(MEDIA_MODEL, gguf.encode(gguf_metadata(model), _tiny_tensors(model)))
    else:
        head, size = sparse
        weights = BlobSpec(MEDIA_MODEL, digests.zero_tail_digest(head, size), size, None, head)
    return [weights, *extra], config


def _small_layers(model: FakeModel) -> tuple[list[BlobSpec], BlobSpec]:
    extra: list[BlobSpec] = [_real(MEDIA_TEMPLATE, (model.template or default_template(model.capabilities))
                                   .encode())]
    if model.system:
        extra.append(_real(MEDIA_SYSTEM, model.system.encode()))
    if model.parameters:
        extra.append(_real(MEDIA_PARAMS, go_json(model.parameters)))
    if model.license:
        extra.append(_real(MEDIA_LICENSE, model.license.encode()))
    return extra, _real(MEDIA_CONFIG, go_json(config_blob(model)))


def sparse_weights(model: FakeModel, extra: list[BlobSpec] | None = None,
                   config: BlobSpec | None = None) -> tuple[bytes, int] | None:
    """The GGUF header and the size of a model layer that is its header then zeros (None: ``materialize``).
    The size makes the whole download (every layer and the config) ``model.size``."""
    if model.materialize:
        return None
    if extra is None or config is None:
        extra, config = _small_layers(model)
    head = gguf.encode(gguf_metadata(model))
    target = model.size - sum(b.size for b in extra) - config.size
    return head, max(target, len(head))


QWEN_LICENSE = "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/"
QWEN3_STOP = ["<|im_start|>", "<|im_end|>"]


def preset_models() -> list[FakeModel]:
    """Realistic models (sizes from ollama.com tag tables, shapes from the model configs)."""
    return [
        FakeModel(name="qwen3.5:27b", family="qwen35", architecture="qwen35", parameter_size="27.8B",
                parameter_count=27_781_427_200, size=17_383_020_544, context_length=262144,
                block_count=64, head_count=24, head_count_kv=4, embedding_length=5120,
                key_length=256, value_length=256, feed_forward_length=17408,
                capabilities=["completion", "vision", "tools", "thinking"],
                parameters={"presence_penalty": 1.5, "temperature": 1, "top_k": 20, "top_p": 0.95},
                license=QWEN_LICENSE,
                extra_info={"qwen35.full_attention_interval": 4, "qwen35.ssm.conv_kernel": 4,
                            "qwen35.ssm.state_size": 128, "qwen35.ssm.group_count": 16,
                            "qwen35.ssm.inner_size": 6144, "qwen35.vision.block_count": 27}),
        FakeModel(name="qwen3-coder:30b", family="qwen3moe", architecture="qwen3moe",
                parameter_size="30.5B", parameter_count=30_532_122_624, size=18_556_689_568,
                context_length=262144, block_count=48, head_count=32, head_count_kv=4,
                embedding_length=2048, key_length=128, value_length=128, feed_forward_length=6144,
                capabilities=["completion", "tools"],
                parameters={"repeat_penalty": 1.05, "stop": [*QWEN3_STOP, "<|endoftext|>"],
                            "temperature": 0.7, "top_k": 20, "top_p": 0.8},
                license=QWEN_LICENSE,
                extra_info={"qwen3moe.expert_count": 128, "qwen3moe.expert_used_count": 8,
                            "qwen3moe.expert_feed_forward_length": 768}),
        FakeModel(name="gpt-oss:20b", family="gptoss", architecture="gptoss", parameter_size="20.9B",
                parameter_count=20_914_757_184, quantization_level="MXFP4", size=13_793_441_244,
                context_length=131072, block_count=24, head_count=64, head_count_kv=8,
                embedding_length=2880, key_length=64, value_length=64, feed_forward_length=2880,
                capabilities=["completion", "tools", "thinking"], parameters={"temperature": 1},
                license=QWEN_LICENSE,
                extra_info={"gptoss.expert_count": 32, "gptoss.expert_used_count": 4,
                            "gptoss.attention.sliding_window": 128}),
        FakeModel(name="qwen2.5-coder:7b", family="qwen2", architecture="qwen2", parameter_size="7.6B",
                parameter_count=7_615_616_512, size=4_683_087_332, context_length=32768,
                block_count=28, head_count=28, head_count_kv=4, embedding_length=3584,
                key_length=128, value_length=128, feed_forward_length=18944,
                capabilities=["completion", "tools", "insert"], tool_style="prose",
                license=QWEN_LICENSE),
        FakeModel(name="gemma3:4b", family="gemma3", architecture="gemma3", parameter_size="4.3B",
                parameter_count=4_300_079_472, size=3_338_801_804, context_length=131072,
                block_count=34, head_count=8, head_count_kv=4, embedding_length=2560,
                key_length=256, value_length=256, feed_forward_length=10240,
                capabilities=["completion", "vision"],
                parameters={"stop": ["<end_of_turn>"], "temperature": 1, "top_k": 64, "top_p": 0.95},
                license="Gemma Terms of Use\nLast modified: February 21, 2024",
                extra_info={"gemma3.vision.block_count": 27}),
        FakeModel(name="llama3.2:3b", family="llama", architecture="llama", parameter_size="3.2B",
                parameter_count=3_212_749_888, size=2_019_393_189, context_length=131072,
                block_count=28, head_count=24, head_count_kv=8, embedding_length=3072,
                key_length=128, value_length=128, feed_forward_length=8192,
                capabilities=["completion", "tools"],
                parameters={"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
                license="LLAMA 3.2 COMMUNITY LICENSE AGREEMENT"),
        FakeModel(name="qwen3:0.6b", family="qwen3", architecture="qwen3", parameter_size="751.63M",
                parameter_count=751_632_384, size=522_653_767, context_length=40960,
                block_count=28, head_count=16, head_count_kv=8, embedding_length=1024,
                key_length=128, value_length=128, feed_forward_length=3072,
                capabilities=["completion", "tools", "thinking"],
                parameters={"repeat_penalty": 1, "stop": QWEN3_STOP, "temperature": 0.6,
                            "top_k": 20, "top_p": 0.95},
                license=QWEN_LICENSE),
        FakeModel(name="tiny-coder:1b", family="llama", architecture="llama", parameter_size="1.1B",
                parameter_count=1_100_048_384, size=4096, context_length=8192, block_count=4,
                head_count=4, head_count_kv=2, embedding_length=64, key_length=16, value_length=16,
                feed_forward_length=256, capabilities=["completion", "tools"],
                parameters={"num_ctx": 8192, "temperature": 0.2}, materialize=True,
                license="MIT License"),
    ]


def catalog_models(path: Path | None = None) -> list[FakeModel]:
    """Every model of localcodex's packaged catalog that can call tools, as the registry serves it: so the
    emulator can serve whatever `recommend` picks for the machine it pretends to be (sizes and shapes from
    the catalog; a hybrid's attention interval and SSM sizes, a MoE's expert counts, a sliding window)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: only the presets
        return []
    path = path or Path(__file__).resolve().parents[2] / "localcodex" / "data" / "catalog.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [_from_catalog(entry) for entry in doc.get("model", []) if "tools" in entry.get("capabilities", [])]


def _from_catalog(e: dict[str, Any]) -> FakeModel:
    arch = e["architecture"]
    info: dict[str, Any] = {}
    if (e.get("recurrent_layers") or e.get("sliding_layers")) and e.get("kv_layers"):
        # only the full-attention layers grow with num_ctx; a sliding-window layer's few cells, like a linear
        # layer's fixed state, are left out of the emulated KV cache
        info[f"{arch}.full_attention_interval"] = max(1, e["block_count"] // e["kv_layers"])
    for key in ("ssm_conv_kernel", "ssm_state_size", "ssm_group_count", "ssm_inner_size"):
        if e.get(key):
            info[f"{arch}.ssm.{key[4:]}"] = e[key]
    for key in ("expert_count", "expert_used_count"):
        if e.get(key):
            info[f"{arch}.{key}"] = e[key]
    if e.get("sliding_window"):
        info[f"{arch}.attention.sliding_window"] = e["sliding_window"]
    total = int(e["params_total"])
    return FakeModel(
        name=e["tag"], family=e.get("family", arch), architecture=arch,
        parameter_size=f"{total / 1e9:.1f}B" if total >= 1e9 else f"{total / 1e6:.0f}M", parameter_count=total,
        quantization_level=e.get("quantization", "Q4_K_M"), size=int(e["download_bytes"]),
        context_length=int(e["context_length"]), block_count=int(e["block_count"]), head_count=int(e["head_count"]),
        head_count_kv=int(e["head_count_kv"]), embedding_length=int(e["embedding_length"]),
        key_length=int(e["head_dim_k"]), value_length=int(e["head_dim_v"]),
        feed_forward_length=4 * int(e["embedding_length"]), capabilities=list(e["capabilities"]),
        license=str(e.get("license", "")), extra_info=info,
    )
