"""Ollama model names: ``[scheme://]host/namespace/model:tag`` with defaults.

Rules follow the fact sheet section 7.1: every part starts with a letter, digit or
underscore; later characters may also be ``-`` ``_`` ``.`` (no dot in a namespace),
and ``:`` only in a host.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_LIMITS = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


def _valid_part(kind: str, part: str) -> bool:
    if not 1 <= len(part) <= _LIMITS[kind]:
        return False
    if not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    for ch in part[1:]:
        if ch.isascii() and (ch.isalnum() or ch in "_-"):
            continue
        if ch == "." and kind != "namespace":
            continue
        if ch == ":" and kind == "host":
            continue
        return False
    return True


@dataclass(frozen=True)
class Name:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """DisplayShortest: drop the default host (and ``library``), always keep the tag.

        >>> parse_name("qwen3").display
        'qwen3:latest'
        >>> parse_name("hf.co/user/repo:Q4_K_M").display
        'hf.co/user/repo:Q4_K_M'
        """
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """``registry.ollama.ai/library/qwen3:latest``, as used in capability errors."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Case-insensitive identity (Ollama matches existing names ignoring case)."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def manifest_parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)


def parse_name(text: str) -> Name | None:
    """Parse and fill defaults; ``None`` when the name is invalid.

    >>> parse_name("user/m:1b").full
    'registry.ollama.ai/user/m:1b'
    >>> parse_name("bad name") is None
    True
    """
    if not isinstance(text, str) or not text:
        return None
    rest = text
    if "://" in rest:
        rest = rest.split("://", 1)[1]
    if "@" in rest:
        rest = rest.split("@", 1)[0]
    tag = DEFAULT_TAG
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = rest.rsplit(":", 1)
    parts = rest.split("/")
    if len(parts) > 3:
        return None
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
    name = Name(host, namespace, model, tag)
    for kind in ("host", "namespace", "model", "tag"):
        if not _valid_part(kind, getattr(name, kind)):
            return None
    return name
