"""Ollama's on-disk model store ($OLLAMA_MODELS), read and written without a server.

Layout (fact sheet §6): `manifests/<host>/<namespace>/<model>/<tag>` (JSON) and `blobs/sha256-<hex>`.
The trap: at start-up Ollama deletes every blob no manifest references, so blobs copied in without their
manifest vanish on the next restart. Writers here therefore put blobs in place first and the manifest last,
each through a temporary file and an atomic rename, so the store never holds a manifest whose blobs are
missing, and a manifest that is present always owns its blobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcodex.adapters.registry import split_name
from localcodex.errors import LocalcodexError, NotFound

CHUNK = 1024 * 1024


class StoreError(LocalcodexError):
    """The store cannot be read or written as needed (permissions, a broken manifest, a missing blob)."""

    code = "store"


@dataclass(frozen=True)
class StoredManifest:
    name: str  # the display name, e.g. qwen3.5:27b
    path: Path
    raw: bytes  # the manifest file's bytes (its sha256 is the model digest `ollama list` shows)
    doc: dict[str, Any]

    @property
    def blobs(self) -> list[dict[str, Any]]:
        """The config blob and every layer, each `{"digest", "size", "mediaType"}`."""
        config = self.doc.get("config") or {}
        return ([config] if config.get("digest") else []) + list(self.doc.get("layers") or [])


def blob_path(models_dir: Path, digest: str) -> Path:
    return models_dir / "blobs" / digest.replace(":", "-")


def has_blob(models_dir: Path, digest: str) -> bool:
    return blob_path(models_dir, digest).is_file()


def manifest_path(models_dir: Path, name: str) -> Path:
    p = split_name(name)
    return models_dir / "manifests" / p.host / p.namespace / p.model / p.tag


def _find_case_insensitive(base: Path, parts: Iterable[str]) -> Path | None:
    """Ollama matches existing names case-insensitively; so does this."""
    current = base
    for part in parts:
        exact = current / part
        if exact.exists():
            current = exact
            continue
        if not current.is_dir():
            return None
        match = next((c for c in current.iterdir() if c.name.lower() == part.lower()), None)
        if match is None:
            return None
        current = match
    return current


def read_manifest(models_dir: Path, name: str) -> StoredManifest:
    p = split_name(name)
    path = _find_case_insensitive(models_dir / "manifests", (p.host, p.namespace, p.model, p.tag))
    if path is None or not path.is_file():
        raise NotFound(
            f"model {name!r} is not in the Ollama store at {models_dir}",
            "check the name with `localcodex models list`, or point --models-dir / OLLAMA_MODELS at the "
            "folder the Ollama server uses",
        )
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}", "check the file permissions") from exc
    except ValueError as exc:
        raise StoreError(f"the manifest {path} is not valid JSON ({exc})", "re-pull the model") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise StoreError(f"the manifest {path} has no layers", "re-pull the model")
    return StoredManifest(name=name, path=path, raw=raw, doc=doc)


def read_chunks(path: Path, *, chunk: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            yield block


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """`sha256:<hex>` of a file, read in 1 MiB blocks (never the whole file in memory)."""
    digest = hashlib.sha256()
    for block in read_chunks(path):
        digest.update(block)
        if on_bytes:
            on_bytes(len(block))
    return f"sha256:{digest.hexdigest()}"


def _atomic_write(dest: Path, chunks: Iterable[bytes]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.localcodex-tmp")
    try:
        with tmp.open("wb") as fh:
            for block in chunks:
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_blob(models_dir: Path, digest: str, chunks: Iterable[bytes]) -> None:
    """Put one blob in place (skipped when present). The caller has verified its checksum."""
    dest = blob_path(models_dir, digest)
    if dest.is_file():
        return
    try:
        _atomic_write(dest, chunks)
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}", _write_hint(models_dir)) from exc


def write_manifest(models_dir: Path, name: str, raw: bytes) -> Path:
    """Write a manifest last, after its blobs; refuses if any blob it references is missing."""
    doc = json.loads(raw)
    blobs = [doc.get("config") or {}, *doc.get("layers", [])]
    missing = [b["digest"] for b in blobs if b.get("digest") and not has_blob(models_dir, b["digest"])]
    if missing:
        raise StoreError(f"refusing to write the manifest of {name}: blob {missing[0]} is not in the store")
    dest = manifest_path(models_dir, name)
    try:
        _atomic_write(dest, [raw])
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}", _write_hint(models_dir)) from exc
    return dest


def writable(models_dir: Path) -> bool:
    target = models_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    return os.access(target, os.W_OK)


def _write_hint(models_dir: Path) -> str:
    return f"run as the user that owns {models_dir} (the Ollama service user), or free disk space there"


def free_disk(path: Path) -> tuple[Path, int]:
    """Free bytes on the file system holding `path` (its nearest existing parent when it does not exist yet)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    return target, shutil.disk_usage(target).free
