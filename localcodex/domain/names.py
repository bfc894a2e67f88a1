"""Ollama model names: one `ModelName` type and the rules every step uses to compare and derive names.

Ollama matches names case-insensitively with `:latest` implied, but it stores and lists them as typed
(`hf.co/Org/Model:Q4_K_M`). So `key` (lower-case) is for look-ups and comparisons only; `display` keeps the
spelling and is what a profile, a variant name or a message shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from localcodex.errors import UsageError

# Ollama's model-name rules (types/model/name.go): [host/][namespace/]model[:tag]
_NAME_RE = re.compile(
    r"^(?:(?P<host>[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349})/)?"
    r"(?:(?P<namespace>[A-Za-z0-9_][A-Za-z0-9_-]{0,79})/)?"
    r"(?P<model>[A-Za-z0-9_][A-Za-z0-9_.-]{0,79})"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}))?$"
)
_CTX_SUFFIX = re.compile(r"-ctx(\d+)(k?)$")
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"


def _parts(name: str) -> list[str]:
    """The name split at `/`, without digest, scheme, the default registry and namespace, `:latest` added."""
    text = name.strip()
    if "@" in text:
        text = text.split("@", 1)[0]
    if "://" in text:
        text = text.split("://", 1)[1]
    parts = text.split("/")
    if ":" not in parts[-1]:
        parts[-1] = f"{parts[-1]}:latest"
    if len(parts) == 3 and parts[0].lower() == DEFAULT_REGISTRY:
        parts = parts[1:]
    if len(parts) == 2 and parts[0].lower() == DEFAULT_NAMESPACE:
        parts = parts[1:]
    return parts


@dataclass(frozen=True)
class ModelName:
    """A valid Ollama model name, as typed (case kept).

    >>> n = ModelName.parse("hf.co/Org/Model-GGUF:Q4_K_M-ctx48k")
    >>> n.registry, n.namespace, n.model, n.tag, n.variant_ctx
    ('hf.co', 'Org', 'Model-GGUF', 'Q4_K_M-ctx48k', 49152)
    >>> str(n.base), n.key
    ('hf.co/Org/Model-GGUF:Q4_K_M', 'hf.co/org/model-gguf:q4_k_m-ctx48k')
    >>> str(ModelName.parse("registry.ollama.ai/library/qwen3:8b")), str(ModelName.parse("qwen3.5"))
    ('qwen3:8b', 'qwen3.5:latest')
    """

    registry: str | None
    namespace: str | None
    model: str
    tag: str

    @classmethod
    def parse(cls, name: str) -> ModelName:
        parts = _parts(name)
        text = "/".join(parts)
        match = _NAME_RE.match(text) if len(parts) <= 3 and all(parts) else None
        if match is None:
            raise UsageError(
                f"invalid model name {name!r}",
                "use an Ollama name such as `qwen3.5:27b`, `user/model:tag` or `hf.co/user/repo:Q4_K_M`",
            )
        host, namespace = match["host"], match["namespace"]
        if host is not None and namespace is None and len(parts) == 2:
            host, namespace = None, host
        return cls(host, namespace, match["model"], match["tag"] or "latest")

    @property
    def display(self) -> str:
        head = "/".join(p for p in (self.registry, self.namespace) if p)
        return f"{head}/{self.model}:{self.tag}" if head else f"{self.model}:{self.tag}"

    def __str__(self) -> str:
        return self.display

    @property
    def key(self) -> str:
        """What Ollama compares: the display form, lower-cased."""
        return self.display.lower()

    @property
    def variant_ctx(self) -> int | None:
        """The context a `-ctxNk` variant has baked in, or None for a plain model."""
        match = _CTX_SUFFIX.search(self.tag)
        if match is None:
            return None
        return int(match[1]) * (1024 if match[2] else 1)

    @property
    def base(self) -> ModelName:
        """The model a context variant was made from (itself when it is not one)."""
        return ModelName(self.registry, self.namespace, self.model, _CTX_SUFFIX.sub("", self.tag) or self.tag)


def normalize_name(name: str) -> str:
    """The display form Ollama uses: default host and `library/` dropped, `:latest` added when no tag; case kept.

    >>> normalize_name("qwen3.5")
    'qwen3.5:latest'
    >>> normalize_name("hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M")
    'hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M'
    >>> normalize_name("user/model")
    'user/model:latest'
    >>> normalize_name("bad name")
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: invalid model name 'bad name'
    """
    return ModelName.parse(name).display


def model_key(name: str) -> str:
    """How names are compared and looked up (receipts, the catalog): Ollama's rules, any case. A name Ollama
    would refuse (an OpenAI-compatible server's model id) is its text lower-cased, as receipts stored it.

    >>> model_key("Qwen3"), model_key("registry.ollama.ai/library/qwen3:8b"), model_key("org/Some Model")
    ('qwen3:latest', 'qwen3:8b', 'org/some model')
    >>> model_key("hf.co/user/repo:Q4_K_M"), model_key(" Devstral "), model_key("localhost:5000/foo")
    ('hf.co/user/repo:q4_k_m', 'devstral:latest', 'localhost:5000/foo:latest')
    """
    try:
        return ModelName.parse(name).key
    except UsageError:
        return name.strip().lower()


def display_name(name: str) -> str:
    """The name as a profile or message shows it: normalised with its spelling kept; a name Ollama would
    refuse is returned stripped (installed names come from Ollama, so that does not happen in practice).

    >>> display_name("hf.co/Org/Model:Q4_K_M"), display_name("registry.ollama.ai/library/Qwen3")
    ('hf.co/Org/Model:Q4_K_M', 'Qwen3:latest')
    """
    try:
        return ModelName.parse(name).display
    except UsageError:
        return name.strip()


def same_model(a: str, b: str) -> bool:
    """Ollama matches existing names case-insensitively, with `:latest` implied.

    >>> same_model("Qwen3", "qwen3:latest"), same_model("qwen3:8b", "qwen3:4b")
    (True, False)
    """
    return model_key(a) == model_key(b)


def base_of(name: str) -> str:
    """The model a context variant was made from (a name without a -ctx suffix is returned as it is).

    >>> base_of("qwen3.5:27b-ctx64k"), base_of("qwen3.5:27b"), base_of("user/coder:7b-q8_0-ctx100000")
    ('qwen3.5:27b', 'qwen3.5:27b', 'user/coder:7b-q8_0')
    """
    return _CTX_SUFFIX.sub("", name)


MAX_MODEL_NAME = 256


def validate_model_name(name: str, *, ollama: bool) -> str:
    """A model name that can reach a server: Ollama's own rules for Ollama; for any other server, no spaces,
    control characters or `..` path parts, and a sane length.

    >>> validate_model_name("anthropic/claude-sonnet-4", ollama=False)
    'anthropic/claude-sonnet-4'
    >>> validate_model_name("../etc", ollama=False)
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: invalid model name '../etc'
    """
    shown = name if len(name) <= 60 else name[:57] + "..."
    bad = (not name.strip() or len(name) > MAX_MODEL_NAME or any(c.isspace() or ord(c) < 32 for c in name)
           or ".." in name.split("/") or name.startswith("/"))
    if not bad and ollama:
        try:
            normalize_name(name)
        except UsageError:
            bad = True
    if bad:
        raise UsageError(f"invalid model name {shown!r}",
                         "use the name the server lists, e.g. `qwen3-coder:30b` (no spaces, no `..`, "
                         f"at most {MAX_MODEL_NAME} characters)")
    return name
