"""The model store on disk, in Ollama's layout (fact sheet section 6).

``manifests/<host>/<namespace>/<model>/<tag>`` hold JSON manifests; ``blobs/sha256-<hex>``
hold the layers and config. The store is the only source of truth for installed models,
so a restarted emulator on the same folder sees the same models.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import gguf
from .models import (
    MEDIA_LICENSE,
    MEDIA_MANIFEST,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    BlobSpec,
    FakeModel,
    blob_specs,
    go_json,
)
from .names import Name, parse_name

_BLOB_NAME = re.compile(r"^sha256-[0-9a-f]{64}$")


def blob_name(digest: str) -> str:
    """``sha256:abc`` or ``sha256-abc`` -> ``sha256-abc``."""
    return digest.replace(":", "-", 1)


def derive_capabilities(template: str, info: gguf.GGUFInfo | None) -> list[str]:
    """Capabilities of a model whose config does not list them (created from a GGUF)."""
    caps = ["completion"]
    if ".Tools" in template:
        caps.append("tools")
    if ".Suffix" in template:
        caps.append("insert")
    if info is not None and info.arch_value("vision.block_count"):
        caps.append("vision")
    if ".Think" in template:
        caps.append("thinking")
    return caps


@dataclass
class Installed:
    """One installed model, read from its manifest."""

    store: Store
    name: Name
    path: Path
    manifest: dict[str, Any]
    digest: str
    mtime_ns: int

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    @property
    def size(self) -> int:
        return sum(layer["size"] for layer in self.layers) + self.manifest["config"]["size"]

    def layer(self, media_type: str) -> dict[str, Any] | None:
        return next((layer for layer in self.layers if layer["mediaType"] == media_type), None)

    def _text(self, media_type: str) -> str:
        parts = [self.store.read_text(layer["digest"]) for layer in self.layers
                 if layer["mediaType"] == media_type]
        return "\n".join(parts)

    @property
    def config(self) -> dict[str, Any]:
        return self.store.read_json(self.manifest["config"]["digest"]) or {}

    @property
    def template(self) -> str:
        return self._text(MEDIA_TEMPLATE)

    @property
    def system(self) -> str:
        return self._text(MEDIA_SYSTEM)

    @property
    def license(self) -> str:
        return self._text(MEDIA_LICENSE)

    @property
    def params(self) -> dict[str, Any]:
        layer = self.layer(MEDIA_PARAMS)
        return dict(self.store.read_json(layer["digest"]) or {}) if layer else {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        layer = self.layer(MEDIA_MESSAGES)
        return list(self.store.read_json(layer["digest"]) or []) if layer else []

    @property
    def model_path(self) -> Path | None:
        layer = self.layer(MEDIA_MODEL)
        return self.store.blob_path(layer["digest"]) if layer else None

    @property
    def model_blob_size(self) -> int:
        layer = self.layer(MEDIA_MODEL)
        return int(layer["size"]) if layer else 0

    @property
    def info(self) -> gguf.GGUFInfo | None:
        layer = self.layer(MEDIA_MODEL)
        return self.store.read_gguf(layer["digest"]) if layer else None

    @property
    def capabilities(self) -> list[str]:
        listed = self.config.get("capabilities")
        if listed:
            return list(listed)
        return derive_capabilities(self.template, self.info)

    @property
    def emulator_extras(self) -> dict[str, Any]:
        return dict(self.config.get("emulator") or {})

    def details(self) -> dict[str, Any]:
        config = self.config
        family = config.get("model_family", "")
        return {
            "parent_model": "",
            "format": config.get("model_format", "gguf"),
            "family": family,
            "families": config.get("model_families") or ([family] if family else None),
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }


class Store:
    """Thread-safe access to one models folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._parsed: dict[str, Any] = {}
        self._digest_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def digest_lock(self, digest: str, stopping: Callable[[], bool]) -> Iterator[None]:
        """One download per blob at a time (a concurrent pull waits, then finds the blob)."""
        with self.lock:
            lock = self._digest_locks.setdefault(blob_name(digest), threading.Lock())
        while not lock.acquire(timeout=0.05):
            if stopping():
                raise InterruptedError("server stopping")
        try:
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------ blobs

    def blob_path(self, digest: str) -> Path:
        return self.blobs / blob_name(digest)

    def prune_stale(self, grace: float = 3600.0) -> list[str]:
        """Ollama's start-up ``PruneLayers`` (server/images.go ~874-919, called from
        server/routes.go ~1963): files in ``blobs/`` whose names are not valid digests,
        ``-partial`` downloads included, are deleted once older than an hour."""
        removed = []
        cutoff = time.time() - grace
        for path in self.blobs.iterdir():
            if _BLOB_NAME.match(path.name) or not path.is_file():
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def partial_path(self, digest: str) -> Path:
        return self.blobs / (blob_name(digest) + "-partial")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def write_blob(self, spec: BlobSpec) -> None:
        """Write a whole blob at once (real bytes, or a sparse file behind its header)."""
        path = self.blob_path(spec.digest)
        if path.is_file() and path.stat().st_size == spec.size:
            return
        tmp = path.with_name(path.name + f".tmp{threading.get_ident()}")
        with open(tmp, "wb") as out:
            out.write(spec.data if spec.data is not None else spec.head)
            if spec.data is None:
                out.truncate(spec.size)
        os.replace(tmp, path)

    def partial_size(self, digest: str) -> int:
        path = self.partial_path(digest)
        return path.stat().st_size if path.is_file() else 0

    def grow_partial(self, spec: BlobSpec, size: int) -> None:
        """Extend a download in progress to ``size`` bytes (content = the blob's prefix)."""
        path = self.partial_path(spec.digest)
        current = self.partial_size(spec.digest)
        if size <= current:
            return
        content = spec.data if spec.data is not None else spec.head
        with open(path, "ab") as out:
            if current < len(content):
                out.write(content[current:size])
            out.truncate(size)

    def finish_partial(self, spec: BlobSpec) -> None:
        self.grow_partial(spec, spec.size)
        os.replace(self.partial_path(spec.digest), self.blob_path(spec.digest))

    def read_text(self, digest: str) -> str:
        return self.blob_path(digest).read_text(encoding="utf-8", errors="replace")

    def read_json(self, digest: str) -> Any:
        key = "json:" + digest
        if key not in self._parsed:
            try:
                self._parsed[key] = json.loads(self.blob_path(digest).read_bytes() or b"null")
            except (OSError, ValueError):
                return None
        return self._parsed[key]

    def read_gguf(self, digest: str) -> gguf.GGUFInfo | None:
        key = "gguf:" + digest
        if key not in self._parsed:
            try:
                self._parsed[key] = gguf.read(self.blob_path(digest))
            except (OSError, ValueError):
                return None
        return self._parsed[key]

    def add_bytes(self, media_type: str, data: bytes) -> tuple[dict[str, Any], bool]:
        """Store small content; return its descriptor and whether the blob is new."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        new = not self.has_blob(digest)
        if new:
            self.write_blob(BlobSpec(media_type, digest, len(data), data))
        return {"mediaType": media_type, "digest": digest, "size": len(data)}, new

    # ------------------------------------------------------------ manifests

    def manifest_path(self, name: Name) -> Path:
        return self.manifests.joinpath(*name.manifest_parts())

    def _load(self, name: Name, path: Path) -> Installed | None:
        try:
            raw = path.read_bytes()
            stat = path.stat()
            manifest = json.loads(raw)
        except (OSError, ValueError):
            return None
        return Installed(self, name, path, manifest, hashlib.sha256(raw).hexdigest(), stat.st_mtime_ns)

    def list(self) -> list[Installed]:
        """Every installed model, newest first (like ``/api/tags``)."""
        found = []
        with self.lock:
            for path in self.manifests.glob("*/*/*/*"):
                if path.is_file():
                    host, namespace, model, tag = path.relative_to(self.manifests).parts
                    item = self._load(Name(host, namespace, model, tag), path)
                    if item is not None:
                        found.append(item)
        found.sort(key=lambda item: item.mtime_ns, reverse=True)
        return found

    def find(self, name: Name | str | None) -> Installed | None:
        """Look a model up, ignoring case like Ollama does."""
        parsed = parse_name(name) if isinstance(name, str) else name
        if parsed is None:
            return None
        exact = self.manifest_path(parsed)
        if exact.is_file():
            return self._load(parsed, exact)
        return next((item for item in self.list() if item.name.key == parsed.key), None)

    def existing_name(self, name: Name) -> Name:
        found = self.find(name)
        return found.name if found else name

    def write_manifest(self, name: Name, config: dict[str, Any], layers: list[dict[str, Any]]) -> Installed:
        body = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": config, "layers": layers}
        with self.lock:
            path = self.manifest_path(self.existing_name(name))
            self._write_manifest_file(path, go_json(body))
            loaded = self._load(self.existing_name(name), path)
        assert loaded is not None
        return loaded

    def install(self, model: FakeModel) -> Installed:
        """Put ``model`` in the store at once, as if it had been pulled."""
        parsed = parse_name(model.name)
        if parsed is None:
            raise ValueError(f"invalid model name {model.name!r}")
        layers, config = blob_specs(model)
        with self.lock:
            for spec in [*layers, config]:
                self.write_blob(spec)
            existing = self.find(parsed)
            wanted = [spec.descriptor() for spec in layers]
            if existing and existing.layers == wanted and existing.manifest["config"] == config.descriptor():
                return existing
            return self.write_manifest(parsed, config.descriptor(), wanted)

    def referenced_digests(self) -> set[str]:
        digests = set()
        for item in self.list():
            digests.add(item.manifest["config"]["digest"])
            digests.update(layer["digest"] for layer in item.layers)
        return digests

    def delete(self, item: Installed) -> None:
        """Remove a manifest, then every blob no other manifest references."""
        with self.lock:
            owned = {item.manifest["config"]["digest"], *(layer["digest"] for layer in item.layers)}
            item.path.unlink(missing_ok=True)
            parent = item.path.parent
            while parent != self.manifests and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
            for digest in owned - self.referenced_digests():
                self.blob_path(digest).unlink(missing_ok=True)
                self._parsed.pop("json:" + digest, None)
                self._parsed.pop("gguf:" + digest, None)

    def copy(self, item: Installed, destination: Name) -> None:
        with self.lock:
            path = self.manifest_path(self.existing_name(destination))
            self._write_manifest_file(path, item.path.read_bytes())

    def _write_manifest_file(self, path: Path, data: bytes) -> None:
        """Atomically; the temporary file sits in blobs/ so a listing never sees it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.blobs / f".manifest-{threading.get_ident()}"
        tmp.write_bytes(data)
        os.replace(tmp, path)

