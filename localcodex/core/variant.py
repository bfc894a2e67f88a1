"""Context variants: a copy of a model that carries its own `num_ctx`.

Codex sends 4–6k tokens of instructions before any work and Ollama's `/v1` cannot raise the context per
request, so the model itself must carry `PARAMETER num_ctx`. `ensure_variant` creates `<base>-ctx64k` with
`/api/create` (`from` the base, every base parameter kept, `num_ctx` set), and does nothing when a variant with
that context and the same weights is there already. `verify_variant` proves it: one tiny request loads the
model, then `/api/ps` must report `context_length == num_ctx`, and how much of it sits in VRAM.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from localcodex.adapters.ollama import ModelDetails, OllamaServer, RunningModel
from localcodex.domain.names import base_of, normalize_name, same_model  # noqa: F401 (base_of re-exported)
from localcodex.domain.units import format_bytes
from localcodex.errors import NotFound, ServerError, UsageError

CODEX_MIN_CONTEXT = 16384  # below this a Codex session runs out of room within a few turns
_CTX_SUFFIX = re.compile(r"-ctx\d+k?$")
_BLOB = re.compile(r"sha256[-:]([0-9a-fA-F]{64})")
MAX_TAG = 80
# `/api/create` from an installed model writes a manifest and copies no weights: seconds. A server that streams
# its statuses and never says `success` (or trickles bytes) is cut off here: exit 10 naming the step and limit.
CREATE_LIMIT = 600.0


@dataclass(frozen=True)
class VariantResult:
    name: str  # the variant, e.g. qwen3.5:27b-ctx64k
    base: str
    num_ctx: int
    action: Literal["created", "unchanged", "updated"]
    trained_context: int | None
    parameters: dict[str, Any]  # what the variant carries (base parameters + num_ctx)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    name: str
    num_ctx: int
    status: Literal["ok", "mismatch", "unverifiable", "not_loaded"]
    context_length: int | None  # what /api/ps reports the model was loaded with
    size: int | None
    size_vram: int | None
    message: str
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def gpu_fraction(self) -> float | None:
        return (self.size_vram or 0) / self.size if self.size else None


def ctx_label(num_ctx: int) -> str:
    """
    >>> ctx_label(65536), ctx_label(32768), ctx_label(40960), ctx_label(100000), ctx_label(1048576)
    ('64k', '32k', '40k', '100000', '1024k')
    """
    return f"{num_ctx // 1024}k" if num_ctx % 1024 == 0 else str(num_ctx)


def variant_name(base: str, num_ctx: int) -> str:
    """The predictable name of `base` with `num_ctx` baked in (an existing -ctx suffix is replaced).

    >>> variant_name("qwen3.5:27b", 65536)
    'qwen3.5:27b-ctx64k'
    >>> variant_name("qwen3.5", 32768)
    'qwen3.5:latest-ctx32k'
    >>> variant_name("user/coder:7b-q8_0", 100000)
    'user/coder:7b-q8_0-ctx100000'
    >>> variant_name("hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M", 49152)
    'hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M-ctx48k'
    >>> variant_name("qwen3.5:27b-ctx32k", 65536)
    'qwen3.5:27b-ctx64k'
    """
    if num_ctx <= 0:
        raise UsageError(f"context size must be a positive number of tokens, not {num_ctx}", "e.g. --ctx 65536")
    name = normalize_name(base)
    stem, _, tag = name.rpartition(":")
    tag = f"{_CTX_SUFFIX.sub('', tag)}-ctx{ctx_label(num_ctx)}"
    if len(tag) > MAX_TAG:
        raise UsageError(f"the variant tag {tag!r} is longer than Ollama allows ({MAX_TAG} characters)",
                         f"copy the model to a shorter name first: `ollama cp {name} {stem}:short`")
    return f"{stem}:{tag}"


# -- parameters ----------------------------------------------------------------------------------------------


def _go_value(text: str) -> Any:
    """One value as `/api/show` prints it (Go `%#v`): quoted strings, numbers, booleans."""
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            return text.strip('"')
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)  # Go prints 1,000,000 and above as 1.048576e+06 (server/routes.go ~1496-1508)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "e" in text.lower() else number


def base_parameters(details: ModelDetails) -> dict[str, Any]:
    """The base model's parameters as `/api/create` takes them (`stop` and other repeated keys as lists).

    >>> from localcodex.adapters.ollama import parse_parameters
    >>> d = ModelDetails("m", None, None, None, None, (), parameters=parse_parameters(
    ...     'stop "<|im_start|>"\\nstop "<|im_end|>"\\ntemperature 0.6\\nnum_ctx 4096'))
    >>> base_parameters(d)
    {'stop': ['<|im_start|>', '<|im_end|>'], 'temperature': 0.6, 'num_ctx': 4096}
    """
    result: dict[str, Any] = {}
    for key, raw in details.parameters.items():
        values = [_go_value(line) for line in raw.split("\n")]
        result[key] = values if key == "stop" or len(values) > 1 else values[0]
    return result


def weights_blob(details: ModelDetails) -> str | None:
    """The digest of the weights blob, from the `FROM` line of the model's Modelfile."""
    for line in (details.modelfile or "").splitlines():
        if line.upper().startswith("FROM "):
            match = _BLOB.search(line)
            if match:
                return match.group(1).lower()
    return None


# -- ensure --------------------------------------------------------------------------------------------------


def ensure_variant(server: OllamaServer, base: str, num_ctx: int, *, num_batch: int | None = None) -> VariantResult:
    """Make sure `variant_name(base, num_ctx)` exists with exactly the base's weights and parameters plus
    `num_ctx` (and `num_batch`, when the fit engine pinned one so the context fits). Creates it when missing,
    re-creates it when stale, and otherwise sends no `/api/create`."""
    name = variant_name(base, num_ctx)
    base_name = normalize_name(base)
    base_details = server.show(base_name)
    warnings = _context_warnings(base_name, base_details, num_ctx)
    if num_batch is not None and num_batch <= 0:
        raise UsageError(f"num_batch must be a positive number of tokens, not {num_batch}", "e.g. 512")
    wanted = {**base_parameters(base_details), "num_ctx": num_ctx}
    if num_batch:
        wanted["num_batch"] = num_batch
    existing = server.find(name)
    if existing is not None and _matches(server.show(name), base_details, wanted):
        return VariantResult(name, base_name, num_ctx, "unchanged", base_details.context_length, wanted, warnings)
    with server.deadline(CREATE_LIMIT, f"creating {name}"):
        statuses = list(server.create(name, from_=base_name, parameters=wanted))
    if statuses and statuses[-1] != "success":
        raise ServerError(f"creating {name} did not finish: Ollama's last status was {statuses[-1]!r}")
    action: Literal["created", "updated"] = "updated" if existing is not None else "created"
    return VariantResult(name, base_name, num_ctx, action, base_details.context_length, wanted, warnings)


def _context_warnings(base: str, details: ModelDetails, num_ctx: int) -> tuple[str, ...]:
    trained = details.context_length
    if trained and num_ctx > trained:
        raise UsageError(
            f"{base} was trained for {trained} tokens of context; {num_ctx} is more than it can use "
            "(Ollama would silently cut it down)",
            f"use --ctx {trained} or less",
        )
    warnings = []
    if num_ctx < CODEX_MIN_CONTEXT:
        warnings.append(f"{num_ctx} tokens is little for Codex, which sends 4–6k tokens of instructions "
                        f"before any work; {CODEX_MIN_CONTEXT} or more is advised")
    return tuple(warnings)


def _matches(variant: ModelDetails, base: ModelDetails, wanted: dict[str, Any]) -> bool:
    if variant.num_ctx != wanted["num_ctx"]:
        return False
    if base_parameters(variant) != wanted:
        return False
    base_blob, variant_blob = weights_blob(base), weights_blob(variant)
    if base_blob and variant_blob:
        return base_blob == variant_blob
    # Servers whose Modelfile does not name the blob: fall back to what describes the weights.
    return (variant.model_info == base.model_info and variant.template == base.template
            and variant.quantization_level == base.quantization_level)


# -- verify --------------------------------------------------------------------------------------------------


def loaded_runner(server: OllamaServer, name: str) -> RunningModel | None:
    """The `/api/ps` entry of the runner serving `name`: by name, else by the weights blob.

    Ollama keys runners by the weights file and reuses one whose options are equal without renaming it
    (server/sched.go ~109-117, ~201-202, ~475-491), so after `MODEL` was loaded with the same num_ctx, a
    request for `MODEL-ctx32k` leaves `/api/ps` showing `MODEL`. Its `context_length` is the variant's.
    """
    running = server.ps()
    named = next((m for m in running if same_model(m.name, name)), None)
    if named is not None or not running:
        return named
    wanted = weights_blob(server.show(name))
    if wanted is None:
        return None
    for entry in running:
        try:
            if weights_blob(server.show(entry.name)) == wanted:
                return entry
        except (ServerError, NotFound):
            continue
    return None


def verify_variant(server: OllamaServer, name: str, num_ctx: int, *, load_timeout: float = 600.0) -> Verification:
    """Load `name` with one tiny request (no options: the model's own `num_ctx` must apply), then read
    `/api/ps`: the loaded context must equal `num_ctx`; report how much of the model is in VRAM."""
    name = normalize_name(name)
    loader = server.with_timeout(max(server.timeout or 0.0, load_timeout))
    loader.generate(name, "Reply with OK.", options={"num_predict": 1})
    running = loaded_runner(server, name)
    if running is None:
        return Verification(name, num_ctx, "not_loaded", None, None, None,
                            f"{name} answered but is not listed by /api/ps (unloaded at once? keep_alive 0?)")
    warnings = _placement_warnings(running)
    if running.context_length is None or running.context_length == 0:
        return Verification(name, num_ctx, "unverifiable", None, running.size, running.size_vram,
                            "this Ollama does not report the loaded context (/api/ps context_length needs "
                            "Ollama 0.10 or newer); the variant carries num_ctx but it cannot be verified",
                            warnings)
    if running.context_length != num_ctx:
        return Verification(name, num_ctx, "mismatch", running.context_length, running.size, running.size_vram,
                            f"{name} loaded with {running.context_length} tokens of context, not {num_ctx}",
                            warnings)
    return Verification(name, num_ctx, "ok", running.context_length, running.size, running.size_vram,
                        f"{name} loaded with {num_ctx} tokens of context; {_placement(running)}", warnings)


def _placement(running: RunningModel) -> str:
    if not running.size:
        return "size unknown"
    if running.size_vram >= running.size:
        return f"{format_bytes(running.size)} all in VRAM"
    if running.size_vram == 0:
        return f"{format_bytes(running.size)} all on the CPU"
    pct = round(100 * running.size_vram / running.size)
    return f"{format_bytes(running.size_vram)} of {format_bytes(running.size)} in VRAM ({pct}% GPU)"


def _placement_warnings(running: RunningModel) -> tuple[str, ...]:
    if not running.size or running.size_vram >= running.size:
        return ()
    if running.size_vram == 0:
        return (f"{running.name} runs entirely on the CPU ({format_bytes(running.size)}): expect slow answers; "
                "a smaller model or context would let a GPU hold it",)
    spilled = running.size - running.size_vram
    return (f"{running.name} spilled {format_bytes(spilled)} of {format_bytes(running.size)} to the CPU "
            f"({round(100 * spilled / running.size)}%): generation slows down a lot; "
            "pick a smaller context (--ctx) or model",)


@dataclass(frozen=True)
class ContextVariant:
    """`models context`: the variant, and its verification (None with --no-verify)."""

    variant: VariantResult
    verification: Verification | None


def make_context_variant(server: OllamaServer, base: str, num_ctx: int, *, verify: bool = True) -> ContextVariant:
    variant = ensure_variant(server, base, num_ctx)
    checked = verify_variant(server, variant.name, num_ctx) if verify else None
    return ContextVariant(variant, checked)
