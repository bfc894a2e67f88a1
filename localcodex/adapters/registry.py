"""The model registry Ollama pulls from (a Docker-registry-style API), asked directly for one thing only: a
model's manifest, so the download size is known before Ollama starts pulling.

Ollama itself does the pull; this lookup is best effort. Every failure (no network, DNS, a 404, a registry
that wants a token, a body that is not a manifest) is reported as a `RegistryLookup` with `size=None` and a
reason, never raised: not knowing the size must not stop a pull, it only means the disk check is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_REGISTRY_HOST = "registry.ollama.ai"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class ManifestLayer:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class RegistryLookup:
    url: str
    size: int | None  # sum of every layer plus the config blob; None when unknown
    layers: tuple[ManifestLayer, ...] = ()
    error: str | None = None  # why the size is unknown


@dataclass(frozen=True)
class NameParts:
    host: str
    namespace: str
    model: str
    tag: str


def split_name(name: str) -> NameParts:
    """Split a (normalized) model name into registry host, namespace, model and tag.

    >>> split_name("qwen3.5:27b")
    NameParts(host='registry.ollama.ai', namespace='library', model='qwen3.5', tag='27b')
    >>> split_name("user/m")
    NameParts(host='registry.ollama.ai', namespace='user', model='m', tag='latest')
    >>> split_name("hf.co/bartowski/Qwen-GGUF:Q4_K_M")
    NameParts(host='hf.co', namespace='bartowski', model='Qwen-GGUF', tag='Q4_K_M')
    """
    base, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    parts = base.split("/")
    host = parts[0] if len(parts) == 3 else DEFAULT_REGISTRY_HOST
    namespace = parts[-2] if len(parts) >= 2 else "library"
    return NameParts(host=host, namespace=namespace, model=parts[-1], tag=tag or "latest")


def registry_base(host: str, env: Mapping[str, str] | None = None) -> str:
    """Where to ask: `$LOCALCODEX_REGISTRY` replaces the default registry (tests and mirrors); any other host
    named in a model name (e.g. `hf.co`) is asked over https as Ollama does."""
    e = os.environ if env is None else env
    override = e.get("LOCALCODEX_REGISTRY", "").strip().rstrip("/")
    if host == DEFAULT_REGISTRY_HOST and override:
        return override
    return f"https://{host}"


def manifest_url(name: str, env: Mapping[str, str] | None = None) -> str:
    p = split_name(name)
    return f"{registry_base(p.host, env)}/v2/{p.namespace}/{p.model}/manifests/{p.tag}"


def lookup_manifest(name: str, *, timeout: float = 8.0, env: Mapping[str, str] | None = None) -> RegistryLookup:
    """Fetch the manifest of `name` and add up its blob sizes. Never raises."""
    import httpx

    url = manifest_url(name, env)
    try:
        reply = httpx.get(url, headers={"Accept": MANIFEST_MEDIA_TYPE}, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        return RegistryLookup(url=url, size=None, error=f"registry not reachable ({type(exc).__name__}: {exc})")
    if reply.status_code != 200:
        return RegistryLookup(url=url, size=None, error=f"registry answered HTTP {reply.status_code}")
    try:
        doc = reply.json()
        blobs = [doc["config"], *doc["layers"]]
        layers = tuple(
            ManifestLayer(digest=str(b["digest"]), size=int(b["size"]), media_type=str(b.get("mediaType", "")))
            for b in blobs
        )
    except (ValueError, KeyError, TypeError) as exc:
        return RegistryLookup(url=url, size=None, error=f"registry sent something that is not a manifest ({exc})")
    return RegistryLookup(url=url, size=sum(layer.size for layer in layers), layers=layers)


def blob_url(name: str, digest: str, env: Mapping[str, str] | None = None) -> str:
    p = split_name(name)
    return f"{registry_base(p.host, env)}/v2/{p.namespace}/{p.model}/blobs/{digest}"


@dataclass(frozen=True)
class RangeRead:
    url: str
    data: bytes | None  # None when the read failed
    total: int | None  # the blob's size from Content-Range
    error: str | None = None


def read_blob_range(
    name: str, digest: str, start: int, end: int, *, timeout: float = 15.0, env: Mapping[str, str] | None = None
) -> RangeRead:
    """Bytes START..END (inclusive) of a blob, with an HTTP Range request. Never raises.

    A registry that ignores the Range header and starts sending the whole blob is cut off after END + 1 bytes,
    so a multi-gigabyte model is never downloaded by accident.
    """
    import httpx

    url = blob_url(name, digest, env)
    want = end - start + 1
    try:
        with httpx.stream("GET", url, headers={"Range": f"bytes={start}-{end}"}, timeout=timeout,
                          follow_redirects=True) as reply:  # fmt: skip
            if reply.status_code not in (200, 206):
                return RangeRead(url, None, None, f"registry answered HTTP {reply.status_code}")
            total = _range_total(reply.headers.get("content-range"))
            if reply.status_code == 200:
                length = reply.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                start = 0  # the whole blob from its start: keep only what was asked for
            chunks, got = [], 0
            for chunk in reply.iter_bytes():
                chunks.append(chunk)
                got += len(chunk)
                if got >= want:
                    break
            return RangeRead(url, b"".join(chunks)[:want], total)
    except httpx.HTTPError as exc:
        return RangeRead(url, None, None, f"registry not reachable ({type(exc).__name__}: {exc})")


def _range_total(header: str | None) -> int | None:
    """`bytes 0-99/12345` -> 12345."""
    if not header or "/" not in header:
        return None
    total = header.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
