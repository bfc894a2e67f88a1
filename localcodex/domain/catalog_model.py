"""One catalog entry (``CatalogModel``) and how its KV cache is counted.

KV cache: how it is counted here
--------------------------------
Since v0.30 Ollama runs every GGML model through llama.cpp's ``llama-server``, so the cache is sized the
way llama.cpp sizes it. Per sequence (one request slot; Ollama's ``num_parallel`` multiplies it):

* **Full-attention layers** (``kv_layers``) keep ``num_ctx`` cells (rounded up to a multiple of 256),
  each holding K and V for every KV head::

      full bytes/token = kv_layers * head_count_kv * (head_dim_k + head_dim_v) * bytes_per_element

  Worked example, llama3.1:8b at f16: 32 layers * 8 KV heads * (128 + 128) * 2 B = 131,072 B per token,
  so a 32,768-token context needs exactly 4 GiB of KV cache.

* **MLA layers** (DeepSeek-V2 style, ``mla_cache = true``): llama.cpp caches only the compressed latent
  plus the RoPE part, K only, no V (``has_v = !is_mla``): ``kv_layers * (kv_lora_rank + rope_dim) * bpe``.
  glm-4.7-flash: 47 * (512 + 64) * 2 B = 54,144 B/token. A DeepSeek-V2 GGUF converted before llama.cpp
  learned MLA caching (no ``key_length_mla``; ``mla_cache = false``) runs the legacy path and caches full
  per-head K (192) and V (128): deepseek-coder-v2:16b needs 27 * 16 * (192 + 128) * 2 = 276,480 B/token.

* **Sliding-window layers** (``sliding_layers``, gemma3/gemma4/gpt-oss) keep at most
  ``pad256(min(num_ctx, sliding_window + ubatch))`` cells (llama-kv-cache-iswa.cpp), whatever ``num_ctx``
  is. Gemma 4 local layers use their own head count and width (``sliding_head_count_kv``,
  ``sliding_head_dim``).

* **Linear-attention / Mamba layers** (``recurrent_layers``, qwen3.5 / qwen3-next Gated DeltaNet,
  Nemotron-H Mamba-2) keep a fixed f32 state per sequence, independent of ``num_ctx`` and of the cache
  type: ``recurrent_state_bytes`` (``4 * ((conv-1) * (inner + 2*groups*state) + state*inner)`` per layer).

* **KV-sharing layers** (Gemma 4 E-models, ``kv_shared_layers``) reuse an earlier layer's cache and add
  nothing.

Worked example, qwen3.5:27b at f16: only every 4th layer has full attention, so 16 * 4 * (256 + 256) * 2
= 65,536 B/token; at 32,768 tokens that is 2 GiB, plus 48 linear layers * 3,268,608 B = 149.6 MiB of
fixed state.

Ollama's own pre-flight estimate (fact sheet §4.3, ``PredictServerVRAM``) is
``2 * block_count * head_count_kv(min) * (embedding_length / head_count) * num_ctx * 2`` bytes. It counts
every layer as a full-attention layer with ``embedding_length / head_count`` as head width, so it
over-counts hybrid models (sliding-window, linear attention, shared KV) and misjudges models whose head
width is not ``embedding_length / head_count``; for qwen3.5 blobs that store ``head_count_kv`` per layer
with zeros for linear layers the minimum collapses to 1 and it under-counts instead. It also ignores the
compute buffer. ``CatalogModel.ollama_preflight_kv_bytes`` reproduces it so callers can predict whether
Ollama's scheduler will admit a model; ``kv_cache_bytes`` is the better estimate of real memory.

Quantized cache types (Ollama's ``OLLAMA_KV_CACHE_TYPE``) use llama.cpp block sizes: q8_0 stores 32
values in 34 bytes (1.0625 B/element), q4_0 stores 32 in 18 bytes (0.5625 B/element).

>>> from localcodex.domain.catalog import load_catalog
>>> cat = load_catalog()
>>> m = cat.get("llama3.1:8b")
>>> m.kv_bytes_per_token()
131072.0
>>> m.kv_cache_bytes(32768) == 4 * 1024**3
True
>>> m.kv_bytes_per_token("q8_0")
69632.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CACHE_BYTES_PER_ELEMENT", "CTX_PAD", "DEFAULT_UBATCH", "SWA_PAD", "CatalogModel", "cache_bytes_per_element"]

#: Bytes per cached element for llama.cpp KV cache types (block size / values per block for quants).
CACHE_BYTES_PER_ELEMENT: Mapping[str, float] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}

#: llama.cpp pads the sliding-window cache to a multiple of this many cells.
SWA_PAD = 256
#: llama.cpp pads the context (``n_ctx``) to a multiple of this many cells.
CTX_PAD = 256

DEFAULT_UBATCH = 512

_DISPLAY_RE = re.compile(r"^(\d+)(?:\.(\d+))?(MB|GB|TB)$")
_SWE_RE = re.compile(r"SWE-bench Verified (\d+(?:\.\d+)?)")
_UNIT = {"MB": 10**6, "GB": 10**9, "TB": 10**12}


def cache_bytes_per_element(cache_type: str) -> float:
    """Bytes one cached K or V value takes for a llama.cpp cache type.

    >>> cache_bytes_per_element("f16"), cache_bytes_per_element("q8_0"), cache_bytes_per_element("q4_0")
    (2.0, 1.0625, 0.5625)
    """
    try:
        return CACHE_BYTES_PER_ELEMENT[cache_type.strip().lower()]
    except KeyError:
        known = ", ".join(CACHE_BYTES_PER_ELEMENT)
        raise ValueError(f"unknown KV cache type {cache_type!r} (known: {known})") from None


def _pad(n: int, to: int) -> int:
    return ((n + to - 1) // to) * to


@dataclass(frozen=True)
class CatalogModel:
    """One Ollama tag. Field names mirror ``catalog.toml``; lists become tuples.

    Attention-layout fields follow GGUF keys: ``block_count``, ``head_count``, ``head_count_kv``,
    ``head_dim_k`` / ``head_dim_v`` (``attention.key_length`` / ``value_length``), ``embedding_length``.
    For models with two kinds of attention layers, ``head_count_kv`` / ``head_dim_*`` describe the
    full-attention layers and ``sliding_head_count_kv`` / ``sliding_head_dim`` the sliding ones (0 = same).
    Layer accounting: ``kv_layers + sliding_layers + recurrent_layers + kv_shared_layers +
    ffn_only_layers == block_count``; ``nextn_layers`` (MTP heads) come on top.
    """

    tag: str
    family: str
    architecture: str
    download_bytes: int
    download_display: str
    params_total: int
    params_active: int
    quantization: str
    bits_per_weight: float
    block_count: int
    head_count: int
    head_count_kv: int
    head_dim_k: int
    head_dim_v: int
    embedding_length: int
    kv_layers: int
    context_length: int
    capabilities: tuple[str, ...]
    license: str
    coding_tier: int
    coding_source: str
    sources: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    expert_count: int = 0
    expert_used_count: int = 0
    sliding_window: int = 0
    sliding_layers: int = 0
    sliding_head_count_kv: int = 0
    sliding_head_dim: int = 0
    kv_shared_layers: int = 0
    ffn_only_layers: int = 0
    nextn_layers: int = 0
    recurrent_layers: int = 0
    recurrent_state_bytes: int = 0
    ssm_conv_kernel: int = 0
    ssm_inner_size: int = 0
    ssm_state_size: int = 0
    ssm_group_count: int = 0
    kv_lora_rank: int = 0
    rope_dim: int = 0
    mla_cache: bool = False
    gguf_head_count_kv_min: int | None = None
    uncertain: tuple[str, ...] = ()
    notes: str = ""
    tool_calls: str = "native"  # "native": structured tool calls; "text": the template's calls come out as text
    tool_calls_source: str = ""  # evidence for tool_calls = "text" (required then)
    quant_of: str = ""  # another published quantization of this tag (the quantization ladder); "" = the default
    unread_bytes: int = 0  # bytes of the download decode does not read per token (vision tower, per-layer tables)
    unread_source: str = ""  # where unread_bytes comes from

    # ---- classification -------------------------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        """Mixture of experts: only ``params_active`` weights are read per token."""
        return self.expert_count > 0 or self.params_active < self.params_total

    @property
    def is_hybrid(self) -> bool:
        """Some layers hold no full-length KV cache (sliding window, linear attention, shared KV)."""
        return self.kv_layers < self.block_count

    @property
    def uses_mla(self) -> bool:
        """Multi-head latent attention in the model (whether or not the GGUF lets llama.cpp cache it)."""
        return self.kv_lora_rank > 0

    def supports(self, capability: str) -> bool:
        """True if ``/api/show`` lists the capability (``tools``, ``thinking``, ``vision``, ...)."""
        return capability.lower() in self.capabilities

    @property
    def has_tools(self) -> bool:
        """Codex needs tool calls; models without ``tools`` cannot drive it."""
        return self.supports("tools")

    @property
    def tool_calls_as_text(self) -> bool:
        """Ollama lists ``tools`` but the model writes its calls as text (JSON in ``content``, no
        ``tool_calls``): Codex then cannot run a command or edit a file. ``tool_calls_source`` says who saw it.

        >>> from localcodex.domain.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.get("qwen2.5-coder:7b").tool_calls_as_text, cat.get("qwen3-coder:30b").tool_calls_as_text
        (True, False)
        """
        return self.tool_calls == "text"

    def is_uncertain(self, field_name: str) -> bool:
        return field_name in self.uncertain

    @property
    def swe_bench_verified(self) -> float | None:
        """The SWE-bench Verified figure ``coding_source`` cites, if any (orders models of one tier).

        >>> from localcodex.domain.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.get("qwen3.6:27b").swe_bench_verified, cat.get("qwen3.5:4b").swe_bench_verified
        (77.2, None)
        """
        m = _SWE_RE.search(self.coding_source)
        return float(m.group(1)) if m else None

    @property
    def dense_equivalent_params(self) -> int:
        """Size used to compare models of one tier: a MoE counts as sqrt(total x active) (the usual rule of
        thumb for what it knows), a dense model as its parameter count.

        >>> from localcodex.domain.catalog import load_catalog
        >>> load_catalog().get("qwen3.6:35b-a3b").dense_equivalent_params // 10**9
        10
        """
        if self.params_active and self.params_active < self.params_total:
            return math.isqrt(self.params_total * self.params_active)
        return self.params_total

    # ---- size -----------------------------------------------------------------------------------

    @property
    def download_rounding(self) -> int:
        """Half the rounding step of ``download_display`` ("17GB" -> 0.5 GB, "6.6GB" -> 0.05 GB)."""
        m = _DISPLAY_RE.match(self.download_display)
        if not m:
            return 0
        decimals = len(m.group(2) or "")
        return _UNIT[m.group(3)] // (2 * 10**decimals)

    @property
    def download_bytes_max(self) -> int:
        """Largest download size consistent with the rounded figure ollama.com shows."""
        return self.download_bytes + self.download_rounding

    # ---- KV cache -------------------------------------------------------------------------------

    def kv_bytes_per_token(self, cache_type: str = "f16") -> float:
        """KV bytes each token of context adds, per sequence, counting full-length layers only.

        Sliding-window layers, recurrent state and shared layers do not grow with the context and are
        left out (see ``kv_cache_bytes``). Formula: ``kv_layers * head_count_kv * (head_dim_k +
        head_dim_v) * bytes_per_element``, or ``kv_layers * (kv_lora_rank + rope_dim) * bpe`` when
        llama.cpp caches the MLA latent.

        >>> from localcodex.domain.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.get("qwen3-coder:30b").kv_bytes_per_token()  # 48 * 4 * (128 + 128) * 2
        98304.0
        >>> cat.get("qwen3.5:27b").kv_bytes_per_token()  # 16 full layers of 64
        65536.0
        >>> cat.get("glm-4.7-flash").kv_bytes_per_token()  # MLA: 47 * (512 + 64) * 2
        54144.0
        """
        bpe = cache_bytes_per_element(cache_type)
        if self.mla_cache:
            return float(self.kv_layers * (self.kv_lora_rank + self.rope_dim) * bpe)
        return float(self.kv_layers * self.head_count_kv * (self.head_dim_k + self.head_dim_v) * bpe)

    def sliding_kv_bytes_per_cell(self, cache_type: str = "f16") -> float:
        """Bytes of one cached position across all sliding-window layers (K and V)."""
        if not self.sliding_layers:
            return 0.0
        heads = self.sliding_head_count_kv or self.head_count_kv
        dim = self.sliding_head_dim or self.head_dim_k
        return float(self.sliding_layers * heads * 2 * dim * cache_bytes_per_element(cache_type))

    def sliding_cells(self, num_ctx: int, ubatch: int = DEFAULT_UBATCH) -> int:
        """Cells llama.cpp gives each sequence in the sliding-window cache.

        ``pad256(min(num_ctx, sliding_window + ubatch))``. Ollama passes ``-ub`` only when ``num_batch``
        is set (its automatic batch is 512, 1024 or 2048 by context size); llama.cpp's default is 512.

        >>> from localcodex.domain.catalog import load_catalog
        >>> load_catalog().get("gpt-oss:20b").sliding_cells(32768)  # 128 + 512 padded to 256
        768
        """
        if not self.sliding_layers:
            return 0
        return _pad(min(num_ctx, self.sliding_window + ubatch), SWA_PAD)

    def kv_cache_bytes(
        self,
        num_ctx: int,
        cache_type: str = "f16",
        parallel: int = 1,
        *,
        ubatch: int = DEFAULT_UBATCH,
        include_nextn: bool = False,
    ) -> int:
        """Total cache bytes llama.cpp allocates for ``parallel`` sequences of ``num_ctx`` tokens.

        = ``kv_bytes_per_token * num_ctx * parallel``
        + ``sliding_kv_bytes_per_cell * sliding_cells(num_ctx, ubatch) * parallel``
        + ``recurrent_state_bytes * parallel`` (always f32, not affected by ``cache_type``).

        ``num_ctx`` is first rounded up to a multiple of 256, as llama.cpp pads ``n_ctx``. Sliding caches
        are counted per sequence (llama-server's non-unified layout); with a unified cache they are
        slightly smaller. Compute buffers and weights are not included. ``include_nextn`` also counts
        MTP / next-token-prediction blocks (``nextn_layers``, beyond ``block_count``) as full-attention
        layers, a conservative bound for runtimes that give them a cache.

        >>> from localcodex.domain.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.get("gpt-oss:20b").kv_cache_bytes(32768)  # 24576*32768 + 24576*768
        824180736
        >>> cat.get("qwen3.5:27b").kv_cache_bytes(32768) - 2 * 1024**3  # fixed Gated DeltaNet state
        156893184
        """
        if num_ctx <= 0:
            raise ValueError("num_ctx must be positive")
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        cells = _pad(num_ctx, CTX_PAD)
        per_token = self.kv_bytes_per_token(cache_type)
        if include_nextn and self.nextn_layers:
            per_token *= (self.kv_layers + self.nextn_layers) / self.kv_layers
        full = per_token * cells
        swa = self.sliding_kv_bytes_per_cell(cache_type) * self.sliding_cells(cells, ubatch)
        return math.ceil((full + swa) * parallel) + self.recurrent_state_bytes * parallel

    def ollama_preflight_kv_bytes(self, num_ctx: int, parallel: int = 1) -> int:
        """Ollama's pre-flight KV estimate (``llm/llama_server.go PredictServerVRAM``), for comparison.

        ``2 * block_count * max(1, min head_count_kv in the blob) * (embedding_length // head_count)
        * num_ctx * parallel * 2``. It treats every layer as full attention.

        >>> from localcodex.domain.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.get("llama3.1:8b").ollama_preflight_kv_bytes(1)  # exact for plain GQA models
        131072
        >>> cat.get("gemma3:27b").ollama_preflight_kv_bytes(1)  # 62 layers counted as global
        666624
        """
        kv_min = self.gguf_head_count_kv_min
        if kv_min is None:
            kv_min = min(self.head_count_kv, self.sliding_head_count_kv or self.head_count_kv)
        kv_min = max(kv_min, 1)
        head_dim = self.embedding_length // self.head_count
        return 2 * self.block_count * kv_min * head_dim * num_ctx * parallel * 2

    def computed_recurrent_state_bytes(self) -> int:
        """Recurrent state recomputed from the ``ssm_*`` fields (llama.cpp ``n_embd_r + n_embd_s``, f32)."""
        if not self.recurrent_layers:
            return 0
        conv = max(self.ssm_conv_kernel - 1, 0) * (
            self.ssm_inner_size + 2 * self.ssm_group_count * self.ssm_state_size
        )
        state = self.ssm_state_size * self.ssm_inner_size
        return 4 * (conv + state) * self.recurrent_layers
