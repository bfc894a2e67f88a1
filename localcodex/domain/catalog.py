"""The packaged model catalog (``localcodex/data/catalog.toml``) and its typed loader.

The catalog lists Ollama tags usable for coding, with the facts the fit / speed / recommend steps need:
download size, parameter counts, quantization, and the attention layout that decides how much memory the
KV cache takes at a given context. It ships inside the package, is dated (``Catalog.updated``), and is
never fetched at run time.

The entry type and the KV-cache rules live in ``catalog_model.py``.

>>> cat = load_catalog()
>>> cat.updated >= "2026-12-01", cat.get("qwen3.6:27b-q8_0").quant_of
(True, 'qwen3.6:27b')
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from typing import Any

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport installed
    import tomli as _toml  # type: ignore[no-redef]

from localcodex.domain.catalog_model import (
    CACHE_BYTES_PER_ELEMENT,
    DEFAULT_UBATCH,
    CatalogModel,
    cache_bytes_per_element,
)
from localcodex.domain.names import model_key

__all__ = [
    "CACHE_BYTES_PER_ELEMENT",
    "DEFAULT_UBATCH",
    "REQUIRED_FIELDS",
    "Catalog",
    "CatalogError",
    "CatalogModel",
    "cache_bytes_per_element",
    "load_catalog",
    "normalize_tag",
    "parse_catalog",
]

TOOL_CALL_KINDS = ("native", "text")


class CatalogError(ValueError):
    """The catalog file is malformed (missing or mistyped field, duplicate tag, ...)."""


def normalize_tag(name: str) -> str:
    """The catalog's look-up key for a name: domain.names.model_key (Ollama's rules, lower-cased).

    >>> normalize_tag("Qwen3.5")
    'qwen3.5:latest'
    >>> normalize_tag("registry.ollama.ai/library/gpt-oss:20b")
    'gpt-oss:20b'
    """
    return model_key(name)


_FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(CatalogModel)}

#: Fields every [[model]] table must carry (the rest have defaults: 0, false, empty).
REQUIRED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(CatalogModel) if f.default is MISSING and f.default_factory is MISSING
)


def _check_type(tag: str, key: str, value: Any) -> Any:
    kind = _FIELD_TYPES[key]
    where = f"catalog entry {tag!r}, field {key!r}"
    if kind in ("int", "int | None"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CatalogError(f"{where}: expected a non-negative integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CatalogError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise CatalogError(f"{where}: expected true/false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise CatalogError(f"{where}: expected a string, got {value!r}")
        return value
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CatalogError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise CatalogError(f"{where}: unsupported field type {kind}")  # pragma: no cover


def _model_from_table(table: Mapping[str, Any], index: int) -> CatalogModel:
    tag = table.get("tag", f"#{index}")
    unknown = sorted(set(table) - set(_FIELD_TYPES))
    if unknown:
        raise CatalogError(f"catalog entry {tag!r}: unknown field(s) {', '.join(unknown)}")
    missing = [k for k in REQUIRED_FIELDS if k not in table]
    if missing:
        raise CatalogError(f"catalog entry {tag!r}: missing field(s) {', '.join(missing)}")
    values = {k: _check_type(str(tag), k, v) for k, v in table.items()}
    values["tag"] = values["tag"].lower()
    values["aliases"] = tuple(a.lower() for a in values.get("aliases", ()))
    values["capabilities"] = tuple(c.lower() for c in values["capabilities"])
    if values.get("tool_calls", "native") not in TOOL_CALL_KINDS:
        raise CatalogError(f"catalog entry {tag!r}: tool_calls must be one of {', '.join(TOOL_CALL_KINDS)}")
    if values.get("tool_calls") == "text" and not values.get("tool_calls_source"):
        raise CatalogError(f"catalog entry {tag!r}: tool_calls = \"text\" needs a tool_calls_source")
    return CatalogModel(**values)


@dataclass(frozen=True)
class Catalog:
    """All catalog entries, in file order, plus the date the facts were collected."""

    updated: str
    models: tuple[CatalogModel, ...]
    method: str = ""
    _index: Mapping[str, CatalogModel] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, CatalogModel] = {}
        for m in self.models:
            for name in (m.tag, *m.aliases):
                key = normalize_tag(name)
                if key in index and index[key] is not m:
                    raise CatalogError(f"tag or alias {name!r} appears twice in the catalog")
                index[key] = m
        object.__setattr__(self, "_index", index)

    def get(self, tag: str) -> CatalogModel | None:
        """Look a model up by Ollama name, case-insensitively.

        An untagged name means ``:latest``, which matches an entry only if that entry declares it in
        ``aliases`` (or is itself tagged ``:latest``).

        >>> cat = load_catalog()
        >>> cat.get("Qwen3.5").tag
        'qwen3.5:9b'
        >>> cat.get("qwen3.5:27B").tag
        'qwen3.5:27b'
        >>> cat.get("no-such-model") is None
        True
        """
        return self._index.get(normalize_tag(tag))

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and self.get(tag) is not None

    def __iter__(self) -> Iterator[CatalogModel]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(m.tag for m in self.models)

    def text_tool_call_families(self) -> tuple[str, ...]:
        """Families whose tool calls come out as text (``tool_calls = "text"``), in file order.

        >>> load_catalog().text_tool_call_families()
        ('qwen2.5-coder',)
        """
        return tuple(dict.fromkeys(m.family for m in self.models if m.tool_calls_as_text))

    def text_tool_calls(self, name: str) -> CatalogModel | None:
        """The catalog entry that says ``name`` writes its tool calls as text, or None.

        Matches the tag itself, or any tag or GGUF repository of a family marked so (an installed
        ``qwen2.5-coder:7b-instruct-q8_0`` or ``hf.co/bartowski/Qwen2.5-Coder-7B-GGUF`` included).

        >>> cat = load_catalog()
        >>> cat.text_tool_calls("hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M").family
        'qwen2.5-coder'
        >>> cat.text_tool_calls("qwen3-coder:30b") is None
        True
        """
        entry = self.get(name)
        if entry is not None:
            return entry if entry.tool_calls_as_text else None
        base = normalize_tag(name).rsplit(":", 1)[0].rsplit("/", 1)[-1]
        for m in self.models:
            if m.tool_calls_as_text and base.startswith(m.family):
                return m
        return None

    def ladder_root(self, model: CatalogModel) -> str:
        """The default tag of the quantization ladder a model belongs to (itself when it is the default).

        >>> cat = load_catalog()
        >>> cat.ladder_root(cat.get("qwen3.5:27b-q8_0")), cat.ladder_root(cat.get("qwen3.5:27b"))
        ('qwen3.5:27b', 'qwen3.5:27b')
        """
        return normalize_tag(model.quant_of) if model.quant_of else model.tag

    def family(self, name: str) -> tuple[CatalogModel, ...]:
        """All entries of one Ollama library name (``qwen3.5``, ``gemma4``, ...), in file order."""
        name = name.lower()
        return tuple(m for m in self.models if m.family == name)


def parse_catalog(data: bytes | str) -> Catalog:
    """Build a ``Catalog`` from TOML text (the packaged file or a user-supplied one)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        doc = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise CatalogError(f"catalog is not valid TOML: {exc}") from exc
    updated = doc.get("updated")
    if not isinstance(updated, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", updated):
        raise CatalogError('catalog needs a top-level updated = "YYYY-MM-DD"')
    tables = doc.get("model")
    if not isinstance(tables, list) or not tables:
        raise CatalogError("catalog has no [[model]] entries")
    models = tuple(_model_from_table(t, i) for i, t in enumerate(tables))
    meta = doc.get("meta", {})
    method = meta.get("method", "") if isinstance(meta, dict) else ""
    return Catalog(updated=updated, models=models, method=str(method).strip())


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped inside the package (read once, then cached)."""
    from importlib.resources import files

    data = files("localcodex").joinpath("data").joinpath("catalog.toml").read_bytes()
    return parse_catalog(data)
