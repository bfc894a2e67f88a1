"""The registry side of Ollama's world, as `registry.ollama.ai` serves it: manifests and blobs.

`GET /v2/<namespace>/<model>/manifests/<tag>` answers the manifest of a model in the emulator's registry (the
same digests and sizes a pull writes); `GET|HEAD /v2/<namespace>/<model>/blobs/<digest>` answers a blob and
honours a single `Range: bytes=START-END` (206 Partial Content with `Content-Range`, 416 when unsatisfiable),
as the real registry's blob store does. Sparse blobs (a GGUF header followed by zeros up to the download
size) are served without building them in memory. `Emulator.registry_bytes` counts the body bytes sent.
"""

from __future__ import annotations

import re

from .httpbase import ApiError, Exchange
from .models import BlobSpec, blob_specs, go_json
from .names import parse_name

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _model(ex: Exchange, namespace: str, model: str, tag: str):
    name = parse_name(f"{namespace}/{model}:{tag}")
    found = ex.emu.registry.get(name.key) if name is not None else None
    if found is None:
        raise ApiError(404, "manifest unknown")  # the registry's error code, in Ollama's error shape
    return found


def manifest(ex: Exchange, namespace: str, model: str, tag: str) -> None:
    layers, config = blob_specs(_model(ex, namespace, model, tag))
    doc = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": config.descriptor(),
           "layers": [spec.descriptor() for spec in layers]}
    ex.send(200, go_json(doc), MANIFEST_TYPE)


def _blob(ex: Exchange, namespace: str, model: str, digest: str) -> BlobSpec:
    # Only the repository's own models: working out every registry model's digests would hash the big ones.
    for key, fake in ex.emu.registry.items():
        if key[1:3] != (namespace.lower(), model.lower()):
            continue
        layers, config = blob_specs(fake)
        for spec in (*layers, config):
            if spec.digest == digest:
                return spec
    raise ApiError(404, "blob unknown")


def _slice(spec: BlobSpec, start: int, end: int) -> bytes:
    """Bytes [start, end] (inclusive) of the blob; a sparse blob is its head then zeros."""
    if spec.data is not None:
        return spec.data[start : end + 1]
    head = spec.head[start : end + 1] if start < len(spec.head) else b""
    return head + bytes(end + 1 - start - len(head))


def blob(ex: Exchange, namespace: str, model: str, digest: str) -> None:
    spec = _blob(ex, namespace, model, digest)
    wanted = ex.handler.headers.get("Range")
    if not wanted:
        if ex.method != "HEAD" and spec.size > 64 * 1024**2:
            raise ApiError(400, "the emulator serves large blobs by range only")
        body = _slice(spec, 0, spec.size - 1) if ex.method != "HEAD" else b""
        ex.emu.registry_bytes += len(body)
        ex.send(200, body, "application/octet-stream", (("Accept-Ranges", "bytes"),))
        return
    match = _RANGE.match(wanted.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise ApiError(416, "invalid range")
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else spec.size - 1, spec.size - 1)
    else:  # bytes=-N: the last N bytes
        start, end = max(0, spec.size - int(match.group(2))), spec.size - 1
    if start >= spec.size or end < start:
        raise ApiError(416, "range not satisfiable")
    body = _slice(spec, start, end)
    ex.emu.registry_bytes += len(body)
    ex.send(206, body, "application/octet-stream",
            (("Content-Range", f"bytes {start}-{end}/{spec.size}"), ("Accept-Ranges", "bytes")))
